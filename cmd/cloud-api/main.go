// Command cloud-api serves the core.calyptia.com API with its objects in
// PostgreSQL, as a Kubernetes aggregated API server (or standalone for local
// development, see --standalone).
package main

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"

	"github.com/calyptia/core-management-plane/cmd/cloud-api/app"
	"github.com/calyptia/core-management-plane/internal/command"
)

func main() {
	os.Exit(cli.Run(newCommand()))
}

func newCommand() *cobra.Command {
	o := app.NewOptions()
	return command.New(command.Spec{
		Use:   "cloud-api",
		Short: "Serve the core.calyptia.com API (Calyptia Core management plane) from PostgreSQL",
		Long: "cloud-api serves core instances, pipelines, pipeline secrets and resource profiles " +
			"(group core.calyptia.com) as a Kubernetes aggregated API server whose objects live in PostgreSQL.",
		Flags:    o.Flags(),
		Complete: o.Complete,
		Validate: o.Validate,
		Run:      o.Run,
	})
}
