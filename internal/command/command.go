// Package command builds this project's binaries' cobra commands the way Kubernetes components
// build theirs: named flag sets printed by section, the logging flags applied before anything
// runs, options completed and validated, and a context cancelled by SIGINT or SIGTERM.
package command

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	"k8s.io/component-base/term"
)

// Spec is one command.
type Spec struct {
	Use, Short, Long string
	// Flags are the command's own flag sets; logging and global flags are added to them.
	Flags cliflag.NamedFlagSets
	// Complete and Validate, when set, run in that order after the logging flags are applied.
	Complete func() error
	Validate func() []error
	// Run runs until ctx ends (a signal) or it fails.
	Run func(ctx context.Context) error
}

// New returns the command for s. It takes no positional arguments.
func New(s Spec) *cobra.Command {
	logging := logs.NewOptions()
	fss := s.Flags
	logsapi.AddFlags(logging, fss.FlagSet("logging"))
	globalflag.AddGlobalFlags(fss.FlagSet("global"), s.Use, logs.SkipLoggingConfigurationFlags())

	cmd := &cobra.Command{
		Use:          s.Use,
		Short:        s.Short,
		Long:         s.Long,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments: %q", args)
			}
			if err := logsapi.ValidateAndApply(logging, nil); err != nil {
				return err
			}
			if s.Complete != nil {
				if err := s.Complete(); err != nil {
					return err
				}
			}
			if s.Validate != nil {
				if errs := s.Validate(); len(errs) > 0 {
					return utilerrors.NewAggregate(errs)
				}
			}
			ctx, stop := signalContext()
			defer stop()
			return s.Run(ctx)
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

// signalContext ends at the first SIGINT or SIGTERM, so servers shut down gracefully; a second
// one exits at once, as Kubernetes components do. (Not k8s.io/apiserver's SetupSignalContext:
// it would link the whole API server into binaries that are not one.)
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	c := make(chan os.Signal, 2)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-c:
			cancel()
		case <-ctx.Done():
			signal.Stop(c)
			return
		}
		<-c
		os.Exit(1)
	}()
	return ctx, cancel
}
