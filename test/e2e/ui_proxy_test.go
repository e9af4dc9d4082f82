//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/calyptia/core-management-plane/internal/testpki"
	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// TestUIAuthProxy runs core behind an "authenticating proxy" (this test, with the proxy's client
// certificate): the user the proxy names reaches kube-apiserver by impersonation, with that
// user's RBAC and in the audit log; headers from anyone without the certificate count for nothing.
func TestUIAuthProxy(t *testing.T) {
	primaryCloudAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := framework.BuildCommand(ctx, repoRoot, filepath.Join(cluster.Dir, "bin"), "core")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cluster.Dir, "ui-proxy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	servingCA, err := testpki.NewCA(dir, "serving-ca")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := servingCA.Issue(dir, "serving", testpki.CertRequest{CommonName: "core", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	proxyCA, err := testpki.NewCA(dir, "proxy-ca")
	if err != nil {
		t.Fatal(err)
	}
	proxyCert, err := proxyCA.Issue(dir, "proxy", testpki.CertRequest{CommonName: "oauth2-proxy", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := proxyCA.Issue(dir, "intruder", testpki.CertRequest{CommonName: "intruder", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	core, err := cluster.StartCore(ctx, bin, framework.CoreOptions{Scheme: "https", Args: []string{
		"--tls-cert-file=" + serving.CertFile, "--tls-private-key-file=" + serving.KeyFile,
		"--auth-proxy-client-ca-file=" + proxyCA.CertFile, "--auth-proxy-allowed-names=oauth2-proxy",
		"--auth-proxy-username-headers=X-Forwarded-User", "--auth-proxy-group-headers=X-Forwarded-Groups",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Stop(15 * time.Second)

	const ns, user = "e2e-ui-proxy", "alice@example.com"
	mustRun(t, admin, "create", "namespace", ns)
	mustRun(t, admin, "create", "rolebinding", "alice-view", "-n", ns, "--clusterrole=view", "--user="+user)
	mustRunStdin(t, admin, `
apiVersion: core.calyptia.com/v1
kind: Pipeline
metadata: {name: seen-by-alice}
spec:
  coreInstance: nowhere
  config: |
    [INPUT]
        name dummy
    [OUTPUT]
        name null
        match *
`, "apply", "-n", ns, "-f", "-")

	client := func(kp *testpki.KeyPair) *http.Client {
		cfg := &tls.Config{RootCAs: servingRoots(servingCA), MinVersion: tls.VersionTLS12}
		if kp != nil {
			cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	const csrf = "e2e-csrf-token-e2e-csrf-token-e2e-csrf"
	do := func(c *http.Client, method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, core.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-User", user)
		req.Header.Add("X-Forwarded-Groups", "team-a")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", csrf)
		req.AddCookie(&http.Cookie{Name: "core_csrf", Value: csrf})
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	list := "/k8s/apis/core.calyptia.com/v1/namespaces/" + ns + "/pipelines"

	t.Run("the proxy's user reads with their own RBAC", func(t *testing.T) {
		code, body := do(client(proxyCert), http.MethodGet, list, "")
		if code != http.StatusOK || !strings.Contains(body, "seen-by-alice") {
			t.Fatalf("%d %s", code, body)
		}
		code, body = do(client(proxyCert), http.MethodGet, "/auth/session", "")
		var sess struct{ Mode, Username string }
		if err := json.Unmarshal([]byte(body), &sess); code != http.StatusOK || err != nil || sess.Mode != "proxy" || sess.Username != user {
			t.Errorf("session: %d %s", code, body)
		}
		// Another namespace: alice has no role there.
		code, body = do(client(proxyCert), http.MethodGet, "/k8s/apis/core.calyptia.com/v1/namespaces/default/pipelines", "")
		if code != http.StatusForbidden || !strings.Contains(body, user) {
			t.Errorf("other namespace: %d %s", code, body)
		}
	})

	t.Run("view may not write, and the write changes nothing", func(t *testing.T) {
		code, body := do(client(proxyCert), http.MethodPost, list, `{"apiVersion":"core.calyptia.com/v1","kind":"Pipeline","metadata":{"name":"by-alice"},"spec":{"coreInstance":"x","config":"[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n    match *\n"}}`)
		if code != http.StatusForbidden || !strings.Contains(body, `"reason":"Forbidden"`) {
			t.Fatalf("%d %s", code, body)
		}
		if _, err := admin.Run(ctx, "get", "pipeline", "by-alice", "-n", ns); err == nil {
			t.Error("the refused pipeline exists")
		}
	})

	t.Run("headers without the proxy's certificate count for nothing", func(t *testing.T) {
		for name, c := range map[string]*http.Client{"no certificate": client(nil), "certificate of a name not allowed": client(intruder)} {
			if code, body := do(c, http.MethodGet, list, ""); code != http.StatusUnauthorized {
				t.Errorf("%s: %d %s", name, code, body)
			}
		}
	})

	t.Run("audit names the user and core", func(t *testing.T) {
		waitUntil(ctx, t, "the impersonated list in the audit log", func(context.Context) error {
			for _, e := range readAuditEvents(t) {
				if e.Stage == auditv1.StageResponseComplete && e.ObjectRef != nil && e.ObjectRef.Resource == "pipelines" && e.ObjectRef.Namespace == ns && e.Verb == "list" &&
					e.ImpersonatedUser != nil && e.ImpersonatedUser.Username == user {
					if want := "system:serviceaccount:" + framework.CloudAPINamespace + ":" + framework.CoreServiceAccount; e.User.Username != want {
						t.Errorf("impersonated by %q, want %q", e.User.Username, want)
					}
					return nil
				}
			}
			return errors.New("no ResponseComplete event of the list impersonating " + user)
		})
	})
}

func servingRoots(ca *testpki.CA) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

func readAuditEvents(t *testing.T) []auditv1.Event {
	t.Helper()
	f, err := os.Open(cluster.AuditLogFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []auditv1.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditv1.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err == nil {
			events = append(events, e)
		}
	}
	return events
}
