//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// One control plane serves the whole suite: starting kube-apiserver takes far
// longer than any test. Tests keep to namespaces and names of their own.
var (
	repoRoot string
	cluster  *framework.Cluster
	admin    framework.Kubectl
	kubectl  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	if repoRoot, err = framework.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir := framework.BinDir(repoRoot)
	if kubectl, err = framework.KubectlBinary(binDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "cmp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...) }
	// E2E_PROFILING serves kube-apiserver's /debug/pprof and E2E_ETCD_FSYNC makes etcd as
	// durable as PostgreSQL, for make bench-e2e.
	cluster, err = framework.StartCluster(ctx, framework.ClusterOptions{Dir: dir, BinDir: binDir, Logf: logf,
		Profiling: os.Getenv("E2E_PROFILING") != "", EtcdFsync: os.Getenv("E2E_ETCD_FSYNC") != ""})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane: %v\n", err)
		dumpLogs(dir)
		return 1
	}
	admin = framework.Kubectl{Binary: kubectl, Kubeconfig: cluster.AdminKubeconfig}

	code := m.Run()

	stopCloudAPI()
	cluster.Stop()
	switch {
	case code != 0:
		dumpLogs(dir)
		fmt.Fprintf(os.Stderr, "e2e: state and logs kept in %s\n", dir)
	case os.Getenv("E2E_KEEP") != "":
		fmt.Fprintf(os.Stderr, "e2e: state and logs kept in %s (E2E_KEEP)\n", dir)
	default:
		os.RemoveAll(dir)
	}
	return code
}

// dumpLogs prints the end of every process log, so a CI failure can be read
// without the machine.
func dumpLogs(dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, l := range logs {
		if filepath.Base(l) == "audit.log" {
			continue
		}
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(os.Stderr, "==== last lines of %s\n%s\n", l, strings.Join(lines, "\n"))
	}
}
