// Command cloud-api serves the core.calyptia.com API with its objects in
// PostgreSQL, as a Kubernetes aggregated API server (or standalone for local
// development, see --standalone).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	"k8s.io/component-base/term"

	"github.com/calyptia/core-management-plane/cmd/cloud-api/app"
)

func main() {
	os.Exit(cli.Run(newCommand()))
}

func newCommand() *cobra.Command {
	o := app.NewOptions()
	logging := logs.NewOptions()
	fss := o.Flags()
	logsapi.AddFlags(logging, fss.FlagSet("logging"))
	globalflag.AddGlobalFlags(fss.FlagSet("global"), "cloud-api", logs.SkipLoggingConfigurationFlags())

	cmd := &cobra.Command{
		Use:   "cloud-api",
		Short: "Serve the core.calyptia.com API (Calyptia Core management plane) from PostgreSQL",
		Long: "cloud-api serves core instances, pipelines, pipeline secrets and resource profiles " +
			"(group core.calyptia.com) as a Kubernetes aggregated API server whose objects live in PostgreSQL.",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments: %q", args)
			}
			if err := logsapi.ValidateAndApply(logging, nil); err != nil {
				return err
			}
			if err := o.Complete(); err != nil {
				return err
			}
			if errs := o.Validate(); len(errs) > 0 {
				return utilerrors.NewAggregate(errs)
			}
			return o.Run(genericapiserver.SetupSignalContext())
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
