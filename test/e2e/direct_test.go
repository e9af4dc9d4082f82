//go:build e2e

package e2e

import (
	"crypto/tls"
	"github.com/calyptia/core-management-plane/internal/testpki"
	"io"
	"net/http"
	"testing"

	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// TestDirectCallsRefused calls cloud-api directly, bypassing kube-apiserver, the
// ways an attacker inside the network could: it must trust X-Remote-* headers
// only from kube-apiserver's front-proxy client certificate.
func TestDirectCallsRefused(t *testing.T) {
	s := primaryCloudAPI(t)
	const ns = "e2e-direct"
	mustRun(t, admin, "create", "namespace", ns)
	mustRunStdin(t, admin, rbacFixtures, "apply", "-n", ns, "-f", "-")
	url := s.URL + "/apis/core.calyptia.com/v1/namespaces/" + ns + "/pipelinesecrets"

	dir := t.TempDir()
	rogueCA, err := testpki.NewCA(dir, "rogue-ca")
	if err != nil {
		t.Fatal(err)
	}
	// A certificate from an unknown CA naming the front proxy.
	rogueProxy, err := rogueCA.Issue(dir, "rogue-proxy", testpki.CertRequest{CommonName: framework.FrontProxyClientName, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	// Signed by the real front-proxy CA, but not a name cloud-api accepts.
	wrongName, err := cluster.FrontProxyCA.Issue(dir, "wrong-name", testpki.CertRequest{CommonName: "not-the-front-proxy", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	// A real user certificate (kube-apiserver's client CA), presented directly.
	_, mallory, err := cluster.NewUser("mallory")
	if err != nil {
		t.Fatal(err)
	}

	forged := http.Header{"X-Remote-User": {"kubernetes-admin"}, "X-Remote-Group": {"system:masters"}}
	for _, tc := range []struct {
		name   string
		cert   *testpki.KeyPair
		header http.Header
		want   []int
	}{
		// Positive control: this is how kube-apiserver calls, and it works.
		{"front-proxy certificate with headers", cluster.FrontProxyClient, forged, []int{http.StatusOK}},
		{"anonymous", nil, nil, []int{http.StatusUnauthorized, http.StatusForbidden}},
		{"forged headers without a certificate", nil, forged, []int{http.StatusUnauthorized, http.StatusForbidden}},
		{"forged headers with an unknown CA's certificate", rogueProxy, forged, []int{http.StatusUnauthorized, http.StatusForbidden}},
		{"forged headers with a front-proxy CA certificate of another name", wrongName, forged, []int{http.StatusUnauthorized, http.StatusForbidden}},
		// The certificate authenticates mallory; the headers must not turn her into an admin.
		{"forged headers with a user certificate", mallory, forged, []int{http.StatusForbidden}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: aggregation.ServingRoots(), MinVersion: tls.VersionTLS12}
			if tc.cert != nil {
				c, err := tls.X509KeyPair(tc.cert.CertPEM, tc.cert.KeyPEM)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Certificates = []tls.Certificate{c}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tc.header {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				// A refused TLS handshake is a refusal too, but only for certificates
				// the server cannot verify.
				if tc.cert == rogueProxy {
					return
				}
				t.Fatalf("GET %s: %v", url, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !containsInt(tc.want, resp.StatusCode) {
				t.Fatalf("status %d, want one of %v; body: %s", resp.StatusCode, tc.want, body)
			}
		})
	}
}

func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}
