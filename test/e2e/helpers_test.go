//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// kubectlRunner is kubectl bound to one kubeconfig.
type kubectlRunner interface {
	Run(ctx context.Context, args ...string) (string, error)
	RunStdin(ctx context.Context, stdin string, args ...string) (string, error)
}

func kubectlFor(kubeconfig string) framework.Kubectl {
	return framework.Kubectl{Binary: kubectl, Kubeconfig: kubeconfig}
}

// mustRun runs kubectl and fails the test when it fails.
func mustRun(t *testing.T, k kubectlRunner, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := k.Run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stderrOf(err error) string { return framework.Stderr(err) }

func everything() labels.Selector { return labels.Everything() }
