package command

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		complete error
		validate []error
		wantErr  string
		wantRun  bool
	}{
		{name: "runs with its flag", args: []string{"--name=x"}, wantRun: true},
		{name: "positional arguments", args: []string{"extra"}, wantErr: `unexpected arguments: ["extra"]`},
		{name: "unknown flag", args: []string{"--bogus"}, wantErr: "unknown flag: --bogus"},
		{name: "complete fails", complete: errors.New("no kubeconfig"), wantErr: "no kubeconfig"},
		{name: "validate fails", validate: []error{errors.New("--name is required")}, wantErr: "--name is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Logging is configured once per process; each case is a fresh start.
			if err := logsapi.ResetForTest(nil); err != nil {
				t.Fatal(err)
			}
			var fss cliflag.NamedFlagSets
			name := fss.FlagSet("test").String("name", "", "a name")
			var order []string
			ran := false
			cmd := New(Spec{
				Use:   "test",
				Flags: fss,
				Complete: func() error {
					order = append(order, "complete")
					return tc.complete
				},
				Validate: func() []error {
					order = append(order, "validate")
					return tc.validate
				},
				Run: func(ctx context.Context) error {
					if ctx.Err() != nil {
						t.Error("context already done")
					}
					ran = true
					if *name != "x" {
						t.Errorf("--name = %q", *name)
					}
					return nil
				},
			})
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tc.wantErr == "" && err != nil {
				t.Fatalf("error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if ran != tc.wantRun {
				t.Errorf("ran = %v, want %v", ran, tc.wantRun)
			}
			if ran && strings.Join(order, ",") != "complete,validate" {
				t.Errorf("order %v", order)
			}
			if fs := cmd.Flags(); fs.Lookup("v") == nil || fs.Lookup("logging-format") == nil {
				t.Error("logging flags missing")
			}
		})
	}
}
