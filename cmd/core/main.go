// Command core serves the Calyptia Core web UI: core instances, pipelines, their config, status,
// metrics and live records (Vivo), through the Kubernetes API under the caller's own identity.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/component-base/cli"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	"k8s.io/component-base/term"

	"github.com/calyptia/core-management-plane/cmd/core/app"
)

func main() {
	os.Exit(cli.Run(newCommand()))
}

func newCommand() *cobra.Command {
	o := app.NewOptions()
	logging := logs.NewOptions()
	fss := o.Flags()
	logsapi.AddFlags(logging, fss.FlagSet("logging"))
	globalflag.AddGlobalFlags(fss.FlagSet("global"), "core", logs.SkipLoggingConfigurationFlags())

	cmd := &cobra.Command{
		Use:   "core",
		Short: "Serve the Calyptia Core web UI",
		Long: "core serves the web UI of the Calyptia Core management plane. It has no users of its own: " +
			"every call goes to kube-apiserver as the caller, with the bearer token given at the login page " +
			"(kept in an HttpOnly cookie) or, behind an authenticating proxy, by impersonating the user the " +
			"proxy names (--auth-proxy-*), so RBAC and audit apply.",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments: %q", args)
			}
			if err := logsapi.ValidateAndApply(logging, nil); err != nil {
				return err
			}
			if errs := o.Validate(); len(errs) > 0 {
				return utilerrors.NewAggregate(errs)
			}
			// Not k8s.io/apiserver's SetupSignalContext: it would link the whole API server in.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.Run(ctx)
		},
	}
	fs := cmd.Flags()
	for _, f := range fss.FlagSets {
		fs.AddFlagSet(f)
	}
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, fss, cols)
	return cmd
}
