package console

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/calyptia/core-management-plane/internal/testpki"
)

const (
	ownToken  = "core-serviceaccount-token"
	userToken = "user-token"
	csrf      = "0123456789abcdef0123456789abcdef0123456789a"
)

// apiserver stands in for kube-apiserver at the HTTP level: it records what core forwards and
// answers as kube-apiserver would for the tokens above.
type apiserver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
}

func newAPIServer(t *testing.T) *apiserver {
	a := &apiserver{}
	a.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests = append(a.requests, r.Clone(r.Context()))
		a.mu.Unlock()
		auth := r.Header.Get("Authorization")
		if auth != "Bearer "+userToken && auth != "Bearer "+ownToken {
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/selfsubjectreviews"):
			name := "user"
			if u := r.Header.Get("Impersonate-User"); u != "" {
				name = u
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","status":{"userInfo":{"username":"`+name+`","groups":["g1"]}}}`)
		case strings.Contains(r.URL.Path, "/pipelinesecrets"):
			writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden, `pipelinesecrets.core.calyptia.com is forbidden: User "user" cannot list resource "pipelinesecrets"`)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"kind":"PipelineList","items":[]}`)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *apiserver) take() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.requests
	a.requests = nil
	return r
}

func (a *apiserver) config() *rest.Config {
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate().Raw})
	return &rest.Config{Host: a.URL, BearerToken: ownToken, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}}
}

func newServer(t *testing.T, a *apiserver, mutate func(*Config)) *Server {
	t.Helper()
	cfg := Config{Kube: a.config(), SecureCookie: true}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func serve(s *Server, r *http.Request) *http.Response {
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w.Result()
}

func statusOf(t *testing.T, resp *http.Response) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding a Status: %v", err)
	}
	return st
}

func cookieOf(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// write is a same-origin write from the UI, with the CSRF token.
func write(method, path, body string) *http.Request {
	r := httptest.NewRequest(method, "http://core.example"+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "http://core.example")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set(CSRFHeader, csrf)
	r.AddCookie(&http.Cookie{Name: CSRFCookie, Value: csrf})
	return r
}

func TestLoginCookie(t *testing.T) {
	a := newAPIServer(t)
	for _, tc := range []struct {
		name       string
		secure     bool
		token      string
		wantCode   int
		wantCookie bool
	}{
		{name: "accepted token, secure", secure: true, token: userToken, wantCode: http.StatusOK, wantCookie: true},
		{name: "accepted token, plain HTTP", secure: false, token: "Bearer " + userToken, wantCode: http.StatusOK, wantCookie: true},
		{name: "refused token", secure: true, token: "wrong", wantCode: http.StatusUnauthorized},
		{name: "empty token", secure: true, token: " ", wantCode: http.StatusBadRequest},
		{name: "header injection", secure: true, token: userToken + "\r\nX-Evil: 1", wantCode: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, a, func(c *Config) { c.SecureCookie = tc.secure })
			body, _ := json.Marshal(map[string]string{"token": tc.token})
			resp := serve(s, write(http.MethodPost, "/auth/login", string(body)))
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			c := cookieOf(resp, SessionCookie)
			if !tc.wantCookie {
				if c != nil {
					t.Fatalf("session cookie set on a refused login: %+v", c)
				}
				return
			}
			if c == nil {
				t.Fatal("no session cookie")
			}
			if c.Value != userToken || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != tc.secure || c.Path != "/" {
				t.Errorf("session cookie %+v: want the token, HttpOnly, SameSite=Strict, Secure=%v, Path=/", c, tc.secure)
			}
			if x := cookieOf(resp, CSRFCookie); x == nil || x.HttpOnly || x.SameSite != http.SameSiteStrictMode || len(x.Value) < 32 {
				t.Errorf("CSRF cookie %+v: want a fresh token scripts can read, SameSite=Strict", x)
			}
			b, _ := io.ReadAll(resp.Body)
			if strings.Contains(string(b), userToken) {
				t.Errorf("the token is in the answer: %s", b)
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	a := newAPIServer(t)
	s := newServer(t, a, nil)
	path := "/k8s/apis/core.calyptia.com/v1/namespaces/ns/pipelines"
	for _, tc := range []struct {
		name   string
		mutate func(r *http.Request)
		want   int
	}{
		{name: "same origin with the token", mutate: func(*http.Request) {}, want: http.StatusOK},
		{name: "no header", mutate: func(r *http.Request) { r.Header.Del(CSRFHeader) }, want: http.StatusForbidden},
		{name: "header differs from the cookie", mutate: func(r *http.Request) { r.Header.Set(CSRFHeader, csrf+"x") }, want: http.StatusForbidden},
		{name: "no cookie", mutate: func(r *http.Request) {
			r.Header.Del("Cookie")
			r.AddCookie(&http.Cookie{Name: SessionCookie, Value: userToken})
		}, want: http.StatusForbidden},
		{name: "cross site", mutate: func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, want: http.StatusForbidden},
		{name: "same site, other origin", mutate: func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") }, want: http.StatusForbidden},
		{name: "other origin", mutate: func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, want: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.take()
			r := write(http.MethodPost, path, `{"kind":"Pipeline"}`)
			r.AddCookie(&http.Cookie{Name: SessionCookie, Value: userToken})
			tc.mutate(r)
			resp := serve(s, r)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			got := a.take()
			if tc.want == http.StatusForbidden {
				if st := statusOf(t, resp); st.Reason != metav1.StatusReasonForbidden || !strings.Contains(st.Message, "request refused") {
					t.Errorf("refusal %+v", st)
				}
				if len(got) != 0 {
					t.Errorf("a refused write reached kube-apiserver: %v %s", got[0].Method, got[0].URL)
				}
			} else if len(got) != 1 || got[0].Method != http.MethodPost || got[0].URL.Path != strings.TrimPrefix(path, APIPrefix) {
				t.Errorf("forwarded %v", got)
			}
		})
	}
	t.Run("reads need no token", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "http://core.example"+path, nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: userToken})
		if resp := serve(s, r); resp.StatusCode != http.StatusOK {
			t.Errorf("GET: %d", resp.StatusCode)
		}
	})
}

// proxyPKI is the auth proxy's CA, a certificate it issued, and one from another CA.
type proxyPKI struct {
	pool           *x509.CertPool
	proxy, other   *x509.Certificate
	wrongName      *x509.Certificate
	serverOnlyCert *x509.Certificate
}

func newProxyPKI(t *testing.T) proxyPKI {
	dir := t.TempDir()
	ca, err := testpki.NewCA(dir, "proxy-ca")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA(dir, "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *testpki.CA, name, cn string, client bool) *x509.Certificate {
		kp, err := ca.Issue(dir, name, testpki.CertRequest{CommonName: cn, Client: client, Server: !client})
		if err != nil {
			t.Fatal(err)
		}
		return kp.Cert
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return proxyPKI{
		pool:           pool,
		proxy:          issue(ca, "proxy", "oauth2-proxy", true),
		other:          issue(other, "other", "oauth2-proxy", true),
		wrongName:      issue(ca, "wrong", "someone-else", true),
		serverOnlyCert: issue(ca, "server", "oauth2-proxy", false),
	}
}

func TestAuthProxyTrust(t *testing.T) {
	a := newAPIServer(t)
	pki := newProxyPKI(t)
	s := newServer(t, a, func(c *Config) {
		c.AuthProxy = &AuthProxy{
			ClientCA: pki.pool, AllowedNames: []string{"oauth2-proxy"},
			UsernameHeaders: []string{"X-Forwarded-User"}, GroupHeaders: []string{"X-Forwarded-Groups"},
			ExtraHeaderPrefixes: []string{"X-Forwarded-Extra-"},
		}
	})
	path := "/k8s/apis/core.calyptia.com/v1/namespaces/ns/pipelines"
	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		cookie bool
		// want is the upstream Authorization and Impersonate-User, or a status core answers itself.
		wantCode          int
		wantAuth, wantImp string
	}{
		{name: "proxy certificate: impersonation with core's credentials", cert: pki.proxy, wantCode: 200, wantAuth: "Bearer " + ownToken, wantImp: "alice@example.com"},
		{name: "proxy certificate wins over a cookie", cert: pki.proxy, cookie: true, wantCode: 200, wantAuth: "Bearer " + ownToken, wantImp: "alice@example.com"},
		{name: "no certificate: headers ignored, cookie used", cookie: true, wantCode: 200, wantAuth: "Bearer " + userToken},
		{name: "no certificate, no cookie", wantCode: http.StatusUnauthorized},
		{name: "certificate of another CA", cert: pki.other, cookie: true, wantCode: http.StatusUnauthorized},
		{name: "certificate with a name not allowed", cert: pki.wrongName, cookie: true, wantCode: http.StatusUnauthorized},
		{name: "certificate not for client auth", cert: pki.serverOnlyCert, cookie: true, wantCode: http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.take()
			r := httptest.NewRequest(http.MethodGet, "http://core.example"+path, nil)
			r.Header.Set("X-Forwarded-User", "alice@example.com")
			r.Header.Add("X-Forwarded-Groups", "team-a")
			r.Header.Add("X-Forwarded-Groups", "team-b")
			r.Header.Set("X-Forwarded-Extra-Scopes", "read")
			// What a browser might add to escalate: never passed on.
			r.Header.Set("Impersonate-User", "system:admin")
			r.Header.Set("X-Remote-User", "system:admin")
			r.Header.Set("Authorization", "Bearer stolen")
			if tc.cert != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.cert}}
			}
			if tc.cookie {
				r.AddCookie(&http.Cookie{Name: SessionCookie, Value: userToken})
			}
			resp := serve(s, r)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			got := a.take()
			if tc.wantCode != 200 {
				if len(got) != 0 {
					t.Errorf("forwarded although refused: %v", got[0].Header)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d requests forwarded", len(got))
			}
			h := got[0].Header
			if h.Get("Authorization") != tc.wantAuth || h.Get("Impersonate-User") != tc.wantImp {
				t.Errorf("upstream Authorization %q Impersonate-User %q, want %q %q", h.Get("Authorization"), h.Get("Impersonate-User"), tc.wantAuth, tc.wantImp)
			}
			for _, k := range []string{"X-Forwarded-User", "X-Forwarded-Groups", "X-Forwarded-Extra-Scopes", "X-Remote-User", "Cookie"} {
				if v := h.Values(k); len(v) > 0 {
					t.Errorf("%s passed on: %v", k, v)
				}
			}
			if tc.wantImp != "" {
				if g := h.Values("Impersonate-Group"); strings.Join(g, ",") != "team-a,team-b" {
					t.Errorf("Impersonate-Group %v", g)
				}
				if e := h.Get("Impersonate-Extra-Scopes"); e != "read" {
					t.Errorf("Impersonate-Extra-Scopes %q", e)
				}
			} else if v := h.Values("Impersonate-User"); len(v) > 0 {
				t.Errorf("the browser's Impersonate-User passed on: %v", v)
			}
		})
	}
	t.Run("session names the proxy's user", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "http://core.example/auth/session", nil)
		r.Header.Set("X-Forwarded-User", "alice@example.com")
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{pki.proxy}}
		resp := serve(s, r)
		var sess Session
		if err := json.NewDecoder(resp.Body).Decode(&sess); err != nil || sess.Mode != "proxy" || sess.Username != "alice@example.com" {
			t.Errorf("session %+v, %v", sess, err)
		}
	})
}

func TestForwarding(t *testing.T) {
	a := newAPIServer(t)
	s := newServer(t, a, nil)
	get := func(path string, cookie bool) *http.Response {
		r := httptest.NewRequest(http.MethodGet, "http://core.example"+path, nil)
		if cookie {
			r.AddCookie(&http.Cookie{Name: SessionCookie, Value: userToken})
		}
		return serve(s, r)
	}
	for _, tc := range []struct {
		name       string
		path       string
		cookie     bool
		wantCode   int
		wantReason metav1.StatusReason
	}{
		// RBAC's 403 reaches the UI as kube-apiserver's Status, for it to say "not allowed".
		{name: "403 passed on as a Status", path: "/k8s/apis/core.calyptia.com/v1/namespaces/ns/pipelinesecrets", cookie: true, wantCode: 403, wantReason: metav1.StatusReasonForbidden},
		{name: "not logged in", path: "/k8s/apis/core.calyptia.com/v1/pipelines", wantCode: 401, wantReason: metav1.StatusReasonUnauthorized},
		{name: "outside /api and /apis", path: "/k8s/metrics", cookie: true, wantCode: 404, wantReason: metav1.StatusReasonNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.take()
			resp := get(tc.path, tc.cookie)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if st := statusOf(t, resp); st.Kind != "Status" || st.Reason != tc.wantReason {
				t.Errorf("body %+v, want a Status with reason %s", st, tc.wantReason)
			}
		})
	}
	t.Run("upgrades refused", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "http://core.example/k8s/api/v1/namespaces/ns/pods/p/exec", nil)
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: userToken})
		if resp := serve(s, r); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d", resp.StatusCode)
		}
		if got := a.take(); len(got) != 0 {
			t.Errorf("forwarded %v", got[0].URL)
		}
	})
}

func TestAssets(t *testing.T) {
	a := newAPIServer(t)
	built := fstest.MapFS{
		"index.html":         {Data: []byte("<!doctype html><div id=app></div>")},
		"assets/index-1.js":  {Data: []byte("console.log(1)")},
		"assets/index-1.css": {Data: []byte("body{}")},
	}
	for _, tc := range []struct {
		name      string
		assets    fstest.MapFS
		path      string
		wantCode  int
		wantBody  string
		wantCache string
	}{
		{name: "not built", path: "/", wantCode: 503, wantBody: "make ui"},
		{name: "index", assets: built, path: "/", wantCode: 200, wantBody: "id=app", wantCache: "no-cache"},
		{name: "any page is the index", assets: built, path: "/pipelines/x", wantCode: 200, wantBody: "id=app"},
		{name: "hashed asset", assets: built, path: "/assets/index-1.js", wantCode: 200, wantBody: "console.log", wantCache: "public, max-age=31536000, immutable"},
		{name: "missing asset", assets: built, path: "/assets/nope.js", wantCode: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, a, func(c *Config) {
				if tc.assets != nil {
					c.Assets = tc.assets
				}
			})
			resp := serve(s, httptest.NewRequest(http.MethodGet, "http://core.example"+tc.path, nil))
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("status %d body %q", resp.StatusCode, b)
			}
			if tc.wantCache != "" && resp.Header.Get("Cache-Control") != tc.wantCache {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
			if csp := resp.Header.Get("Content-Security-Policy"); tc.wantCode != 404 && !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
	}
	t.Run("the page gives a CSRF cookie", func(t *testing.T) {
		s := newServer(t, a, func(c *Config) { c.Assets = built })
		resp := serve(s, httptest.NewRequest(http.MethodGet, "http://core.example/", nil))
		if c := cookieOf(resp, CSRFCookie); c == nil || len(c.Value) < 32 || !c.Secure {
			t.Errorf("CSRF cookie %+v", c)
		}
	})
}
