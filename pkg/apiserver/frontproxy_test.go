package apiserver

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"

	"github.com/calyptia/core-management-plane/internal/testpki"
)

// TestFrontProxyFirst checks that cached verification of the front proxy's certificate decides
// as the request-header authenticator does: only certificates of the request-header CA with an
// allowed name, only while they and the CA bundle last; everything else goes to the full chain.
func TestFrontProxyFirst(t *testing.T) {
	dir := t.TempDir()
	frontProxyCA, err := testpki.NewCA(dir, "front-proxy-ca")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := testpki.NewCA(dir, "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *testpki.CA, name, cn string) *x509.Certificate {
		kp, err := ca.Issue(dir, name, testpki.CertRequest{CommonName: cn, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		return kp.Cert
	}
	proxy := issue(frontProxyCA, "proxy", "front-proxy-client")
	wrongName := issue(frontProxyCA, "wrong-name", "someone-else")
	rogue := issue(otherCA, "rogue", "front-proxy-client")
	rotatedProxy := issue(otherCA, "rotated", "front-proxy-client")
	provider := func(ca *testpki.CA) dynamiccertificates.CAContentProvider {
		p, err := dynamiccertificates.NewStaticCAContent("request-header", ca.CertPEM())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	fromHeaders := &user.DefaultInfo{Name: "alice", Groups: []string{"team-a", user.AllAuthenticated}}
	forwarded := http.Header{"X-Remote-User": {"alice"}, "X-Remote-Group": {"team-a"}}

	tests := []struct {
		name string
		// steps run in order on one authenticator, so that a cached verification is in play.
		steps []step
	}{
		{name: "front proxy with a user", steps: []step{
			{cert: proxy, header: forwarded, want: fromHeaders},
			{cert: proxy, header: forwarded, want: fromHeaders},
		}},
		{name: "front proxy without a user header", steps: []step{{cert: proxy, wantNext: true}}},
		{name: "not an allowed name", steps: []step{{cert: wrongName, header: forwarded, wantNext: true}}},
		{name: "another CA", steps: []step{{cert: rogue, header: forwarded, wantNext: true}}},
		{name: "no client certificate", steps: []step{{header: forwarded, wantNext: true}}},
		{name: "expired, after a cached verification", steps: []step{
			{cert: proxy, header: forwarded, want: fromHeaders},
			{cert: proxy, header: forwarded, after: 8 * 24 * time.Hour, wantNext: true},
		}},
		{name: "CA rotated, after a cached verification", steps: []step{
			{cert: proxy, header: forwarded, want: fromHeaders},
			{cert: proxy, header: forwarded, rotate: true, wantNext: true},
			{cert: rotatedProxy, header: forwarded, want: fromHeaders},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := &authenticatorfactory.RequestHeaderConfig{
				UsernameHeaders:     headerrequest.StaticStringSlice{"X-Remote-User"},
				UIDHeaders:          headerrequest.StaticStringSlice{"X-Remote-Uid"},
				GroupHeaders:        headerrequest.StaticStringSlice{"X-Remote-Group"},
				ExtraHeaderPrefixes: headerrequest.StaticStringSlice{"X-Remote-Extra-"},
				CAContentProvider:   provider(frontProxyCA),
				AllowedClientNames:  headerrequest.StaticStringSlice{"front-proxy-client"},
			}
			nextCalls := 0
			next := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
				nextCalls++
				return nil, false, nil
			})
			a := newFrontProxyFirst(config, next)
			start := time.Now()
			for i, s := range tt.steps {
				if s.rotate {
					config.CAContentProvider = provider(otherCA)
				}
				a.now = func() time.Time { return start.Add(s.after) }
				req := httptest.NewRequest(http.MethodGet, "/apis/core.calyptia.com/v1/pipelines", nil)
				for k, v := range s.header {
					req.Header[k] = slices.Clone(v)
				}
				if s.cert != nil {
					req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{s.cert}}
				}
				before := nextCalls
				resp, ok, err := a.AuthenticateRequest(req)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if s.wantNext {
					if nextCalls != before+1 {
						t.Errorf("step %d: not handed to the delegating chain", i)
					}
					continue
				}
				if !ok || nextCalls != before {
					t.Fatalf("step %d: ok %v, delegated %v; want authenticated from the headers", i, ok, nextCalls != before)
				}
				got := resp.User
				if got.GetName() != s.want.GetName() || !slices.Equal(got.GetGroups(), s.want.GetGroups()) {
					t.Errorf("step %d: user %q groups %v, want %q %v", i, got.GetName(), got.GetGroups(), s.want.GetName(), s.want.GetGroups())
				}
				if req.Header.Get("X-Remote-User") != "" {
					t.Errorf("step %d: X-Remote-User left on the request", i)
				}
			}
		})
	}
}

type step struct {
	cert   *x509.Certificate
	header http.Header
	// after moves the clock on from the test's start.
	after time.Duration
	// rotate replaces the request-header CA with another before the step.
	rotate   bool
	want     user.Info
	wantNext bool
}
