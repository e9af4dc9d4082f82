// Package integration runs cloud-api in-process on a fresh PostgreSQL
// database and exercises it with the generated typed client and the real
// kubectl, as users and the data plane do.
package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/calyptia/core-management-plane/internal/testpki"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/calyptia/core-management-plane/cmd/cloud-api/app"
	"github.com/calyptia/core-management-plane/internal/pgtest"
	clientset "github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
)

// env is the server every test talks to. One per test binary: the generic
// server registers process-wide state (metrics, feature gates).
var env struct {
	pool       *pgxpool.Pool
	admin      *rest.Config // system:masters client certificate
	anonymous  *rest.Config // trusts the server, presents no credentials
	client     clientset.Interface
	kubeconfig string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (code int, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dbURL, err := pgtest.CreateDatabase(ctx, pgtest.ServerURL())
	if err != nil {
		return 0, err
	}
	defer func() {
		if dropErr := pgtest.DropDatabase(context.Background(), pgtest.ServerURL(), dbURL); dropErr != nil {
			fmt.Fprintln(os.Stderr, "integration: dropping database:", dropErr)
		}
	}()
	env.pool, err = pgxpool.New(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer env.pool.Close()

	dir, err := os.MkdirTemp("", "cloud-api-integration-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)

	args, err := prepareFiles(dir)
	if err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port

	o := app.NewOptions()
	fs := pflag.NewFlagSet("cloud-api", pflag.ContinueOnError)
	for _, f := range o.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	args = append(args, "--standalone", "--postgres-url="+dbURL,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port))
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	o.Recommended.SecureServing.Listener = ln
	if err := o.Complete(); err != nil {
		return 0, err
	}
	if errs := o.Validate(); len(errs) > 0 {
		return 0, utilerrors.NewAggregate(errs)
	}

	serverCtx, stopServer := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(serverCtx) }()
	defer func() {
		stopServer()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			fmt.Fprintln(os.Stderr, "integration: server did not stop within 60s")
		}
	}()

	host := "https://127.0.0.1:" + strconv.Itoa(port)
	env.admin = &rest.Config{Host: host, TLSClientConfig: rest.TLSClientConfig{
		CAFile: filepath.Join(dir, "serving-ca.crt"), CertFile: filepath.Join(dir, "admin.crt"), KeyFile: filepath.Join(dir, "admin.key"),
	}}
	env.anonymous = &rest.Config{Host: host, TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(dir, "serving-ca.crt")}}
	if env.client, err = clientset.NewForConfig(env.admin); err != nil {
		return 0, err
	}
	env.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(env.kubeconfig, host, dir); err != nil {
		return 0, err
	}
	if err := waitReady(ctx, done); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// prepareFiles writes the CAs, certificates and encryption configuration
// into dir and returns the matching cloud-api flags.
func prepareFiles(dir string) ([]string, error) {
	servingCA, err := testpki.NewCA(dir, "serving-ca")
	if err != nil {
		return nil, err
	}
	clientCA, err := testpki.NewCA(dir, "client-ca")
	if err != nil {
		return nil, err
	}
	serving, err := servingCA.Issue(dir, "serving", testpki.CertRequest{
		CommonName: "localhost", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	})
	if err != nil {
		return nil, err
	}
	if _, err := clientCA.Issue(dir, "admin", testpki.CertRequest{CommonName: "admin", Organizations: []string{"system:masters"}, Client: true}); err != nil {
		return nil, err
	}
	// An authenticated user outside system:masters, to tell 401 from 403.
	if _, err := clientCA.Issue(dir, "nobody", testpki.CertRequest{CommonName: "nobody", Organizations: []string{"some-team"}, Client: true}); err != nil {
		return nil, err
	}

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	encryption := filepath.Join(dir, "encryption.yaml")
	if err := os.WriteFile(encryption, []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [pipelinesecrets.core.calyptia.com]
    providers:
      - secretbox:
          keys:
            - name: test
              secret: `+base64.StdEncoding.EncodeToString(key)+`
      - identity: {}
`), 0o600); err != nil {
		return nil, err
	}
	return []string{
		"--tls-cert-file=" + serving.CertFile, "--tls-private-key-file=" + serving.KeyFile,
		"--client-ca-file=" + clientCA.CertFile, "--authentication-skip-lookup",
		"--encryption-provider-config=" + encryption,
	}, nil
}

func writeKubeconfig(path, host, dir string) error {
	return os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster: {server: "`+host+`", certificate-authority: "`+filepath.Join(dir, "serving-ca.crt")+`"}
users:
  - name: admin
    user: {client-certificate: "`+filepath.Join(dir, "admin.crt")+`", client-key: "`+filepath.Join(dir, "admin.key")+`"}
contexts:
  - name: test
    context: {cluster: test, user: admin, namespace: default}
current-context: test
`), 0o600)
}

// waitReady polls /readyz until the server answers ok, fails to start, or a
// minute passes.
func waitReady(ctx context.Context, done <-chan error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("server stopped while starting: %w", err)
		default:
		}
		status, body, err := httpGet(ctx, env.admin, "/readyz")
		if err != nil || status != http.StatusOK {
			last = fmt.Errorf("readyz: %d %s %v", status, body, err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return errors.Join(err, last)
	}
	return nil
}

// httpGet requests path with cfg's credentials and returns the status and body.
func httpGet(ctx context.Context, cfg *rest.Config, path string) (int, []byte, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// kubectl runs the real kubectl as the admin user and returns its stdout;
// on failure the error carries stderr.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(kubectlBinary(), append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		return string(out), fmt.Errorf("kubectl %q: %w: %s", args, err, stderr)
	}
	return string(out), nil
}

// kubectlBinary is $KUBECTL, else the bin/kubectl `make tools` may have
// built, else kubectl from PATH.
func kubectlBinary() string {
	if k := os.Getenv("KUBECTL"); k != "" {
		return k
	}
	if _, err := os.Stat("../../bin/kubectl"); err == nil {
		return "../../bin/kubectl"
	}
	return "kubectl"
}

// namespace returns a namespace name no other test uses. Standalone, the
// server needs no Namespace object.
func namespace(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("it-%x", b)
}
