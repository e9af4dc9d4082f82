// Command core-operator is the Calyptia Core data plane agent: it runs the pipelines of one core
// instance, as Kubernetes workloads or as fluent-bit processes on its host, following them
// through the management plane's Kubernetes API. `core-operator reload` is the HotReload
// sidecar of Kubernetes-mode pipelines.
package main

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/calyptia/core-management-plane/cmd/core-operator/app"
	"github.com/calyptia/core-management-plane/internal/command"
)

func main() {
	os.Exit(cli.Run(newCommand()))
}

func newCommand() *cobra.Command {
	o := app.NewOptions()
	cmd := command.New(command.Spec{
		Use:   "core-operator",
		Short: "Run the pipelines of a Calyptia Core instance (the data plane agent)",
		Long: "core-operator runs the pipelines of one core instance (core.calyptia.com/v1 CoreInstance): " +
			"as Deployments, DaemonSets or StatefulSets in a Kubernetes cluster (mode Kubernetes), or as " +
			"supervised fluent-bit processes on this host (mode External). It reports their status, holds a " +
			"finalizer on each pipeline and heartbeats the core instance, through the Kubernetes API only.",
		Flags:    o.Flags(),
		Validate: o.Validate,
		Run:      o.Run,
	})
	cmd.AddCommand(newReloadCommand())
	return cmd
}

func newReloadCommand() *cobra.Command {
	o := app.NewReloadOptions()
	var fss cliflag.NamedFlagSets
	o.AddFlags(fss.FlagSet("reload"))
	return command.New(command.Spec{
		Use:   "reload",
		Short: "Hot-reload the Fluent Bit beside this container when its mounted config changes (HotReload sidecar)",
		Flags: fss,
		Run:   o.Run,
	})
}
