// Package framework runs a real control plane for end-to-end tests and local runs:
// etcd, kube-apiserver with aggregation configured, kube-controller-manager (for
// ClusterRole aggregation, namespaces, service accounts, garbage collection and the
// workload controllers), kube-scheduler, kwok with fake nodes on which pods reach
// Running without a container runtime, and cloud-api registered through an
// APIService. Everything runs as child processes on loopback ports with
// certificates generated per run.
package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/calyptia/core-management-plane/internal/testpki"
)

const (
	// FrontProxyClientName is the CN of kube-apiserver's front-proxy client
	// certificate and the only name aggregated servers accept it under.
	FrontProxyClientName = "front-proxy-client"
	// ServiceAccountIssuer is the issuer and audience of service account tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

	startTimeout = 2 * time.Minute
	stopGrace    = 15 * time.Second
	startTries   = 3
)

// ClusterOptions configures StartCluster.
type ClusterOptions struct {
	// Dir holds certificates, data, kubeconfigs and logs. It must exist.
	Dir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
	// kwok and kwok's stages (KwokStagesDir), as `make tools` builds them.
	BinDir string
	// Logf reports progress; nil means silent.
	Logf func(format string, args ...any)
	// Profiling serves kube-apiserver's /debug/pprof (to system:masters), for benchmarks.
	Profiling bool
	// EtcdFsync makes etcd sync its writes to disk as PostgreSQL does, for benchmarks that
	// compare the two; tests run etcd without (--unsafe-no-fsync).
	EtcdFsync bool
}

// Cluster is a running etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// and kwok, with kwok's fake nodes.
type Cluster struct {
	Dir    string
	BinDir string

	// ClusterCA signs kube-apiserver's serving certificate and every client
	// certificate kube-apiserver accepts (--client-ca-file).
	ClusterCA *testpki.CA
	// FrontProxyCA is a separate CA for the front-proxy client certificate: with
	// one CA for both, any user certificate could claim to be the front proxy.
	FrontProxyCA *testpki.CA
	// FrontProxyClient is the certificate kube-apiserver presents to aggregated servers.
	FrontProxyClient *testpki.KeyPair

	EtcdURL         string
	APIServerURL    string
	AdminKubeconfig string
	AuditLogFile    string
	SAKeyFile       string
	SAPubFile       string
	// Nodes are the names of the fake nodes, all Ready and untainted once
	// StartCluster returns (see NodeCount).
	Nodes []string

	logf                                  func(format string, args ...any)
	profiling, etcdFsync                  bool
	etcd, apiserver, controllerManager    *Process
	scheduler, kwok                       *Process
	adminConfig                           *rest.Config
	stopped                               bool
	etcdPort, etcdPeerPort, apiserverPort int
	pendingKubeconfigs                    map[string]*testpki.KeyPair
}

// StartCluster starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok, and waits until kube-apiserver is ready, its RBAC bootstrap policy is in place
// and the fake nodes are Ready.
func StartCluster(ctx context.Context, opts ClusterOptions) (_ *Cluster, err error) {
	c := &Cluster{Dir: opts.Dir, BinDir: opts.BinDir, logf: opts.Logf, profiling: opts.Profiling, etcdFsync: opts.EtcdFsync}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s (run `make tools`): %w", b, c.BinDir, err)
		}
	}
	if err := c.checkKwokStages(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	for _, d := range []string{"pki", "etcd", "logs"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := c.writePKI(); err != nil {
		return nil, err
	}
	if err := c.startEtcd(ctx); err != nil {
		return nil, err
	}
	if err := c.startAPIServer(ctx); err != nil {
		return nil, err
	}
	if err := c.startControllerManager(ctx); err != nil {
		return nil, err
	}
	if err := c.startScheduler(); err != nil {
		return nil, err
	}
	if err := c.startKwok(); err != nil {
		return nil, err
	}
	if err := c.startNodes(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) pki(name string) string { return filepath.Join(c.Dir, "pki", name) }

func (c *Cluster) writePKI() error {
	dir := filepath.Join(c.Dir, "pki")
	var err error
	if c.ClusterCA, err = testpki.NewCA(dir, "ca"); err != nil {
		return err
	}
	if c.FrontProxyCA, err = testpki.NewCA(dir, "front-proxy-ca"); err != nil {
		return err
	}
	if _, err = c.ClusterCA.Issue(dir, "apiserver", testpki.CertRequest{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:        []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		Server:     true,
	}); err != nil {
		return err
	}
	if c.FrontProxyClient, err = c.FrontProxyCA.Issue(dir, "front-proxy-client", testpki.CertRequest{CommonName: FrontProxyClientName, Client: true}); err != nil {
		return err
	}
	if c.SAKeyFile, c.SAPubFile, err = testpki.NewServiceAccountKey(dir); err != nil {
		return err
	}
	admin, err := c.ClusterCA.Issue(dir, "admin", testpki.CertRequest{CommonName: "kubernetes-admin", Organizations: []string{"system:masters"}, Client: true})
	if err != nil {
		return err
	}
	c.AdminKubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	kcm, err := c.ClusterCA.Issue(dir, "controller-manager", testpki.CertRequest{CommonName: "system:kube-controller-manager", Client: true})
	if err != nil {
		return err
	}
	scheduler, err := c.ClusterCA.Issue(dir, "scheduler", testpki.CertRequest{CommonName: "system:kube-scheduler", Client: true})
	if err != nil {
		return err
	}
	// The API server URL is known only once its port is, so kubeconfigs are
	// written in startAPIServer; keep the pairs for it.
	c.pendingKubeconfigs = map[string]*testpki.KeyPair{
		c.AdminKubeconfig: admin,
		filepath.Join(c.Dir, "controller-manager.kubeconfig"): kcm,
		filepath.Join(c.Dir, "scheduler.kubeconfig"):          scheduler,
	}
	return nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	var lastErr error
	for range startTries {
		ports, err := FreePorts(2)
		if err != nil {
			return err
		}
		c.etcdPort, c.etcdPeerPort = ports[0], ports[1]
		c.EtcdURL = "http://127.0.0.1:" + itoa(c.etcdPort)
		peer := "http://127.0.0.1:" + itoa(c.etcdPeerPort)
		dataDir := filepath.Join(c.Dir, "etcd")
		if err := os.RemoveAll(dataDir); err != nil {
			return fmt.Errorf("clearing etcd data: %w", err)
		}
		c.logf("starting etcd on %s", c.EtcdURL)
		args := []string{
			"--name=e2e",
			"--data-dir=" + dataDir,
			"--listen-client-urls=" + c.EtcdURL,
			"--advertise-client-urls=" + c.EtcdURL,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=e2e=" + peer,
			"--log-level=warn",
		}
		if !c.etcdFsync {
			// A throwaway cluster: durability is not wanted, speed is.
			args = append(args, "--unsafe-no-fsync")
		}
		c.etcd, err = StartProcess("etcd", filepath.Join(c.Dir, "logs", "etcd.log"), filepath.Join(c.BinDir, "etcd"), args...)
		if err != nil {
			return err
		}
		lastErr = waitFor(ctx, c.etcd, func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, c.EtcdURL+"/health")
		})
		if lastErr == nil {
			return nil
		}
		c.etcd.Stop(stopGrace)
		if !portInUse(c.etcd.LogFile) {
			break
		}
	}
	return fmt.Errorf("etcd did not become healthy: %w", lastErr)
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	c.AuditLogFile = filepath.Join(c.Dir, "logs", "audit.log")
	policy := filepath.Join(c.Dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return fmt.Errorf("writing audit policy: %w", err)
	}
	var lastErr error
	for range startTries {
		port, err := FreePort()
		if err != nil {
			return err
		}
		c.apiserverPort = port
		c.APIServerURL = "https://127.0.0.1:" + itoa(port)
		for path, kp := range c.pendingKubeconfigs {
			if err := WriteKubeconfig(path, c.APIServerURL, c.ClusterCA.CertPEM(), kp, ""); err != nil {
				return err
			}
		}
		c.logf("starting kube-apiserver on %s", c.APIServerURL)
		c.apiserver, err = StartProcess("kube-apiserver", filepath.Join(c.Dir, "logs", "kube-apiserver.log"), filepath.Join(c.BinDir, "kube-apiserver"),
			"--etcd-servers="+c.EtcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port="+itoa(port),
			"--tls-cert-file="+c.pki("apiserver.crt"),
			"--tls-private-key-file="+c.pki("apiserver.key"),
			"--client-ca-file="+c.ClusterCA.CertFile,
			"--service-account-key-file="+c.SAPubFile,
			"--service-account-signing-key-file="+c.SAKeyFile,
			"--service-account-issuer="+ServiceAccountIssuer,
			"--api-audiences="+ServiceAccountIssuer,
			"--service-cluster-ip-range=10.96.0.0/16",
			"--authorization-mode=Node,RBAC",
			// Aggregation: kube-apiserver authenticates users, then forwards
			// requests with the user in X-Remote-* headers over the front-proxy
			// client certificate.
			"--requestheader-client-ca-file="+c.FrontProxyCA.CertFile,
			"--requestheader-allowed-names="+FrontProxyClientName,
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file="+c.FrontProxyClient.CertFile,
			"--proxy-client-key-file="+c.FrontProxyClient.KeyFile,
			// cloud-api runs on loopback outside any cluster network: the
			// APIService's ExternalName Service resolves to localhost only with
			// aggregator routing off.
			"--enable-aggregator-routing=false",
			"--audit-policy-file="+policy,
			"--audit-log-path="+c.AuditLogFile,
			"--audit-log-format=json",
			"--audit-log-mode=blocking",
			// No kube-proxy and only fake nodes: the kubernetes Service needs no
			// endpoints, and loopback addresses are not valid endpoints anyway.
			"--endpoint-reconciler-type=none",
			"--allow-privileged=true",
			"--profiling="+strconv.FormatBool(c.profiling),
		)
		if err != nil {
			return err
		}
		if c.adminConfig, err = clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig); err != nil {
			return fmt.Errorf("loading admin kubeconfig: %w", err)
		}
		lastErr = waitFor(ctx, c.apiserver, func(ctx context.Context) error {
			return c.readyz(ctx)
		})
		if lastErr == nil {
			return nil
		}
		c.apiserver.Stop(stopGrace)
		if !portInUse(c.apiserver.LogFile) {
			break
		}
	}
	return fmt.Errorf("kube-apiserver did not become ready (log: %s): %w", filepath.Join(c.Dir, "logs", "kube-apiserver.log"), lastErr)
}

func (c *Cluster) readyz(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(c.adminConfig)
	if err != nil {
		return err
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("readyz: %w: %s", err, body)
	}
	return nil
}

func (c *Cluster) startControllerManager(ctx context.Context) error {
	kubeconfig := filepath.Join(c.Dir, "controller-manager.kubeconfig")
	c.logf("starting kube-controller-manager")
	var err error
	c.controllerManager, err = StartProcess("kube-controller-manager", filepath.Join(c.Dir, "logs", "kube-controller-manager.log"), filepath.Join(c.BinDir, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		// Only what the tests need. admin/edit/view pick up the aggregated
		// ClusterRoles; namespaces get deleted with their contents (aggregated
		// resources included) and get a default ServiceAccount, without which no
		// pod is admitted, and the kube-root-ca.crt ConfigMap its token volume
		// names; the garbage collector deletes what owners leave behind
		// (ReplicaSets and pods of a deleted Deployment). The workload controllers
		// turn Deployments, DaemonSets and StatefulSets into pods, Services into
		// EndpointSlices, and act on HPAs (without a metrics API they only report
		// that metrics are missing). Not run: node-lifecycle-controller (see
		// startNodes) and the taint-based eviction it drives, and anything for
		// volumes, jobs or certificates.
		"--controllers="+strings.Join([]string{
			"clusterrole-aggregation-controller",
			"namespace-controller",
			"serviceaccount-controller",
			"root-ca-certificate-publisher-controller",
			"garbage-collector-controller",
			"deployment-controller",
			"replicaset-controller",
			"daemonset-controller",
			"statefulset-controller",
			"endpointslice-controller",
			"horizontal-pod-autoscaler-controller",
		}, ","),
		// As kubeadm runs it: each controller acts as its own ServiceAccount,
		// which bootstrap RBAC grants exactly what that controller needs.
		"--use-service-account-credentials=true",
		"--leader-elect=false",
		"--secure-port=0",
		"--root-ca-file="+c.ClusterCA.CertFile,
		"--service-account-private-key-file="+c.SAKeyFile,
	)
	if err != nil {
		return err
	}
	// The aggregation controller fills "view" from system:aggregate-to-view;
	// once it has rules, the controller manager is doing its job.
	cs, err := kubernetes.NewForConfig(c.adminConfig)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, c.controllerManager, func(ctx context.Context) error {
		role, err := cs.RbacV1().ClusterRoles().Get(ctx, "view", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(role.Rules) == 0 {
			return errors.New("ClusterRole view has no aggregated rules yet")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("kube-controller-manager did not aggregate ClusterRoles (log: %s): %w", c.controllerManager.LogFile, err)
	}
	return nil
}

// AdminConfig returns a client config for the cluster administrator (system:masters).
func (c *Cluster) AdminConfig() *rest.Config { return rest.CopyConfig(c.adminConfig) }

// AdminClient returns a clientset for the cluster administrator.
func (c *Cluster) AdminClient() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(c.AdminConfig())
}

// NewUser issues a client certificate for user in groups, signed by the cluster CA,
// and writes a kubeconfig for it into the cluster directory.
func (c *Cluster) NewUser(user string, groups ...string) (kubeconfig string, kp *testpki.KeyPair, err error) {
	name := "user-" + strings.NewReplacer(":", "_", "/", "_").Replace(user)
	kp, err = c.ClusterCA.Issue(filepath.Join(c.Dir, "pki"), name, testpki.CertRequest{CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		return "", nil, err
	}
	kubeconfig = filepath.Join(c.Dir, name+".kubeconfig")
	if err := WriteKubeconfig(kubeconfig, c.APIServerURL, c.ClusterCA.CertPEM(), kp, ""); err != nil {
		return "", nil, err
	}
	return kubeconfig, kp, nil
}

// NewTokenKubeconfig writes a kubeconfig that authenticates with a bearer token.
func (c *Cluster) NewTokenKubeconfig(name, token string) (string, error) {
	path := filepath.Join(c.Dir, name+".kubeconfig")
	return path, WriteKubeconfig(path, c.APIServerURL, c.ClusterCA.CertPEM(), nil, token)
}

// Exited is closed when etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// or kwok has ended.
func (c *Cluster) Exited() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		select {
		case <-c.etcd.Exited():
		case <-c.apiserver.Exited():
		case <-c.controllerManager.Exited():
		case <-c.scheduler.Exited():
		case <-c.kwok.Exited():
		}
		close(ch)
	}()
	return ch
}

// Pids are the process ids of etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok, by those names (for CPU and memory accounting).
func (c *Cluster) Pids() map[string]int {
	pids := map[string]int{}
	for _, p := range []*Process{c.etcd, c.apiserver, c.controllerManager, c.scheduler, c.kwok} {
		if p != nil {
			pids[p.Name] = p.Pid()
		}
	}
	return pids
}

// Stop ends every process, newest first.
func (c *Cluster) Stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	for _, p := range []*Process{c.kwok, c.scheduler, c.controllerManager, c.apiserver, c.etcd} {
		if p != nil {
			p.Stop(stopGrace)
		}
	}
}

// WriteKubeconfig writes a kubeconfig for server trusting caPEM, authenticating
// with the client certificate kp or, when kp is nil, with token.
func WriteKubeconfig(path, server string, caPEM []byte, kp *testpki.KeyPair, token string) error {
	user := &clientcmdapi.AuthInfo{Token: token}
	if kp != nil {
		user = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["user"] = user
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "user", Namespace: "default"}
	cfg.CurrentContext = "e2e"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// waitFor polls check until it succeeds, the process exits, or the start timeout passes.
func waitFor(ctx context.Context, p *Process, check func(context.Context) error) error {
	return waitForAll(ctx, []*Process{p}, check)
}

// waitForAll is waitFor for a check that needs several processes: it gives up as soon
// as any of them exits.
func waitForAll(ctx context.Context, procs []*Process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		for _, p := range procs {
			select {
			case <-p.Exited():
				return fmt.Errorf("%s %w (%v); last check: %v; see %s", p.Name, errExited, p.Err(), last, p.LogFile)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last check: %v", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// portInUse reports whether a process's log says it could not bind its port,
// the one start-up failure worth retrying with other ports.
func portInUse(logFile string) bool {
	b, err := os.ReadFile(logFile)
	return err == nil && strings.Contains(string(b), "address already in use")
}

// auditPolicy records who did what to core.calyptia.com, never bodies: kube-apiserver
// does not decode what it proxies to an aggregated server, and pipeline
// secrets' values must not reach the log anyway.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  resources:
  - group: core.calyptia.com
  # The custom resource that benchmarks compare with core.calyptia.com: audited
  # alike, or the comparison would leave out a cost only one side pays.
  - group: bench.e2e.calyptia.com
- level: None
`
