// Command core-operator is the Calyptia Core data plane agent: it runs the pipelines of one core
// instance, as Kubernetes workloads or as fluent-bit processes on its host, following them
// through the management plane's Kubernetes API. `core-operator reload` is the HotReload
// sidecar of Kubernetes-mode pipelines.
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

	"github.com/calyptia/core-management-plane/cmd/core-operator/app"
)

func main() {
	os.Exit(cli.Run(newCommand()))
}

func newCommand() *cobra.Command {
	o := app.NewOptions()
	logging := logs.NewOptions()
	fss := o.Flags()
	logsapi.AddFlags(logging, fss.FlagSet("logging"))
	globalflag.AddGlobalFlags(fss.FlagSet("global"), "core-operator", logs.SkipLoggingConfigurationFlags())

	cmd := &cobra.Command{
		Use:   "core-operator",
		Short: "Run the pipelines of a Calyptia Core instance (the data plane agent)",
		Long: "core-operator runs the pipelines of one core instance (core.calyptia.com/v1 CoreInstance): " +
			"as Deployments, DaemonSets or StatefulSets in a Kubernetes cluster (mode Kubernetes), or as " +
			"supervised fluent-bit processes on this host (mode External). It reports their status, holds a " +
			"finalizer on each pipeline and heartbeats the core instance, through the Kubernetes API only.",
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
			return o.Run(genericapiserver.SetupSignalContext())
		},
	}
	fs := cmd.Flags()
	for _, f := range fss.FlagSets {
		fs.AddFlagSet(f)
	}
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, fss, cols)
	cmd.AddCommand(newReloadCommand())
	return cmd
}

func newReloadCommand() *cobra.Command {
	o := app.NewReloadOptions()
	logging := logs.NewOptions()
	var fss cliflag.NamedFlagSets
	o.AddFlags(fss.FlagSet("reload"))
	logsapi.AddFlags(logging, fss.FlagSet("logging"))
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Hot-reload the Fluent Bit beside this container when its mounted config changes (HotReload sidecar)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := logsapi.ValidateAndApply(logging, nil); err != nil {
				return err
			}
			return o.Run(genericapiserver.SetupSignalContext())
		},
	}
	for _, f := range fss.FlagSets {
		cmd.Flags().AddFlagSet(f)
	}
	return cmd
}
