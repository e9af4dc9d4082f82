// Command core serves the Calyptia Core web UI: core instances, pipelines, their config, status,
// metrics and live records (Vivo), through the Kubernetes API under the caller's own identity.
package main

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"

	"github.com/calyptia/core-management-plane/cmd/core/app"
	"github.com/calyptia/core-management-plane/internal/command"
)

func main() {
	os.Exit(cli.Run(newCommand()))
}

func newCommand() *cobra.Command {
	o := app.NewOptions()
	return command.New(command.Spec{
		Use:   "core",
		Short: "Serve the Calyptia Core web UI",
		Long: "core serves the web UI of the Calyptia Core management plane. It has no users of its own: " +
			"every call goes to kube-apiserver as the caller, with the bearer token given at the login page " +
			"(kept in an HttpOnly cookie) or, behind an authenticating proxy, by impersonating the user the " +
			"proxy names (--auth-proxy-*), so RBAC and audit apply.",
		Flags:    o.Flags(),
		Validate: o.Validate,
		Run:      o.Run,
	})
}
