// Command local-plane runs the whole management plane on this machine, the way
// a cluster runs it: etcd, kube-apiserver with aggregation configured,
// kube-controller-manager, and cloud-api on PostgreSQL registered through an
// APIService, with the manifests of artifacts/deploy applied. It prints an
// admin kubeconfig and runs until interrupted.
//
// State: the cluster (etcd, certificates) is new on every run; cloud-api's
// objects persist in the PostgreSQL database, and the key that encrypts
// pipeline secrets persists beside the run directory so they stay readable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/klog/v2"

	"github.com/calyptia/core-management-plane/internal/fluentbittest"
	"github.com/calyptia/core-management-plane/internal/pgtest"
	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

func main() {
	dir := flag.String("dir", ".run/plane", "directory for certificates, kubeconfigs, data and logs (emptied on start)")
	dbURL := flag.String("database-url", os.Getenv("DATABASE_URL"),
		"PostgreSQL database for cloud-api; default: database calyptia_core_plane on the local server, created when missing")
	replicas := flag.Int("replicas", 1, "cloud-api replicas on the database (the APIService points at the first)")
	flag.StringVar(&uiListen, "ui-listen", "127.0.0.1:3000", "address of the web UI (core)")
	klog.InitFlags(nil)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *dbURL, *replicas); err != nil {
		klog.ErrorS(err, "local plane failed")
		os.Exit(1)
	}
}

// uiListen is where core serves the UI.
var uiListen string

func run(ctx context.Context, dir, dbURL string, replicas int) error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("emptying %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if dbURL == "" {
		if dbURL, err = ensureDatabase(ctx, pgtest.ServerURL(), "calyptia_core_plane"); err != nil {
			return err
		}
	}
	binDir := framework.BinDir(root)
	kubectl, err := framework.KubectlBinary(binDir)
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) { klog.InfoS(fmt.Sprintf(format, args...)) }

	logf("building cloud-api")
	binary, err := framework.BuildCloudAPI(ctx, root, binDir)
	if err != nil {
		return err
	}
	cluster, err := framework.StartCluster(ctx, framework.ClusterOptions{Dir: dir, BinDir: binDir, Logf: logf})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	admin := framework.Kubectl{Binary: kubectl, Kubeconfig: cluster.AdminKubeconfig}
	agg, err := cluster.InstallCloudAPI(ctx, admin, framework.InstallOptions{
		DeployDir:        filepath.Join(root, "artifacts", "deploy"),
		EncryptionConfig: filepath.Join(filepath.Dir(dir), filepath.Base(dir)+"-encryption.yaml"),
	})
	if err != nil {
		return err
	}
	var servers []*framework.CloudAPI
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	for i := range max(replicas, 1) {
		s, err := agg.Start(ctx, fmt.Sprintf("cloud-api-%d", i), binary, dbURL)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	if err := agg.Register(ctx, servers[0]); err != nil {
		return err
	}

	// Data plane agents for the example core instances, so that the examples' pipelines run:
	// "production" as workloads on the fake nodes, "edge-store-042" as fluent-bit processes on
	// this machine when a Fluent Bit is at hand.
	logf("building core-operator")
	operator, err := framework.BuildCommand(ctx, root, binDir, "core-operator")
	if err != nil {
		return err
	}
	agents := []string{"production (Kubernetes mode, workloads in namespace calyptia-pipelines)"}
	k8sAgent, err := cluster.StartAgent(ctx, operator, framework.AgentOptions{
		Namespace: "default", CoreInstance: "production", TargetNamespace: "calyptia-pipelines",
	})
	if err != nil {
		return err
	}
	defer k8sAgent.Stop(15 * time.Second)
	if fluentBit, _ := fluentbittest.Find(); fluentBit != "" {
		hostAgent, err := cluster.StartAgent(ctx, operator, framework.AgentOptions{
			Namespace: "default", CoreInstance: "edge-store-042",
			Args: []string{"--fluent-bit=" + fluentBit, "--state-dir=" + filepath.Join(dir, "host-pipelines"), "--advertise-address=127.0.0.1"},
		})
		if err != nil {
			return err
		}
		defer func() {
			hostAgent.Stop(15 * time.Second)
			// Pipelines outlive their agent by design, but not the local plane.
			framework.StopHostPipelines(filepath.Join(dir, "host-pipelines"))
		}()
		agents = append(agents, "edge-store-042 (External mode, fluent-bit processes under "+filepath.Join(dir, "host-pipelines")+")")
	} else {
		agents = append(agents, "none for edge-store-042: no Fluent Bit in $FLUENT_BIT, bin/ or PATH (make fluent-bit)")
	}

	// The web UI, and a token of a cluster-admin ServiceAccount to log in with.
	logf("building core (the web UI)")
	coreBin, err := framework.BuildCommand(ctx, root, binDir, "core")
	if err != nil {
		return err
	}
	ui, err := cluster.StartCore(ctx, coreBin, framework.CoreOptions{Listen: uiListen})
	if err != nil {
		return err
	}
	defer ui.Stop(15 * time.Second)
	adminToken, err := cluster.ServiceAccountUser(ctx, "default", "local-admin", "cluster-admin", true)
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(dir, "local-admin.token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		return err
	}

	// Name the kubectl `make tools` built when it did: the one on PATH is then
	// too far from this kube-apiserver's version.
	k := "kubectl"
	if rel, err := filepath.Rel(root, kubectl); err == nil && kubectl == filepath.Join(binDir, "kubectl") {
		k = rel
	}
	fmt.Printf(`
The management plane is up: kube-apiserver %s, cloud-api %s behind it.
Data plane agents in namespace default: %s.
Logs are in %s. In another terminal, from %s:

  export KUBECONFIG=%s
  %s apply -f artifacts/examples/
  %s get calyptia
  %s get pipelines

The web UI is at %s (UI_LISTEN to change); log in as the local admin (cluster-admin) with the
token in %s:

  %s

Stop it with Ctrl-C.
`, cluster.APIServerURL, servers[0].URL, strings.Join(agents, "; "), filepath.Join(dir, "logs"), root, cluster.AdminKubeconfig, k, k, k,
		ui.URL, tokenFile, adminToken)

	exited := make(chan error, len(servers)+1)
	go func() {
		<-ui.Exited()
		exited <- fmt.Errorf("core exited (log: %s)", ui.LogFile)
	}()
	for _, s := range servers {
		go func() {
			<-s.Exited()
			exited <- fmt.Errorf("%s exited (log: %s)", s.Name, s.LogFile())
		}()
	}
	select {
	case <-ctx.Done():
		logf("stopping")
		return nil
	case err := <-exited:
		return err
	case <-cluster.Exited():
		return errors.New("a control plane process exited; see the logs")
	}
}

// ensureDatabase returns the URL of database name on the server, creating it when missing.
func ensureDatabase(ctx context.Context, serverURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("looking up database %s: %w", name, err)
	}
	if !exists {
		// Identifiers cannot be parameters; name is a constant of this program.
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("creating database %s: %w", name, err)
		}
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}
