// Package console is the server side of the core web UI (cmd/core): it serves the embedded
// assets and forwards the UI's API calls to kube-apiserver under the caller's own identity, so
// RBAC and audit apply and the UI has no users of its own.
//
// A caller is known either by a bearer token given at the login page, kept only in an HttpOnly,
// SameSite=Strict cookie and sent on as the Authorization header, or, behind an authenticating
// proxy, by the proxy's user and group headers, trusted only on requests that present the
// proxy's client certificate (as kube-apiserver trusts its front proxy) and sent on as
// impersonation with the server's own credentials. Writes need a CSRF token.
package console

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// Paths the server answers itself; everything else under APIPrefix goes to kube-apiserver and
// the rest is the UI.
const (
	// APIPrefix is where the UI reaches kube-apiserver: /k8s/apis/... is /apis/... there.
	APIPrefix  = "/k8s"
	authPrefix = "/auth/"

	// SessionCookie holds the bearer token of a user who logged in at the login page.
	SessionCookie = "core_session"
	// CSRFCookie holds the CSRF token, which writes must repeat in CSRFHeader. It is readable
	// by the UI's scripts (and only by this origin's).
	CSRFCookie = "core_csrf"
	// CSRFHeader carries the CSRF token on writes.
	CSRFHeader = "X-CSRF-Token"
)

// AuthProxy says whom to trust for user and group headers.
type AuthProxy struct {
	// ClientCA verifies the client certificate the proxy presents; only requests with a
	// certificate it verifies (for client auth) have their headers read.
	ClientCA *x509.CertPool
	// AllowedNames are the common names the proxy's certificate may have; empty allows any
	// certificate ClientCA verifies.
	AllowedNames []string
	// UsernameHeaders are read in order for the user name, GroupHeaders (every value of each)
	// for groups, and headers starting with ExtraHeaderPrefixes for extra attributes.
	UsernameHeaders     []string
	GroupHeaders        []string
	ExtraHeaderPrefixes []string
}

// Config configures a Server.
type Config struct {
	// Kube is kube-apiserver: its host and TLS settings are used for every call; its
	// credentials only to impersonate users the auth proxy vouches for.
	Kube *rest.Config
	// Assets is the built UI (index.html at its root). Nil or without index.html, the server
	// answers a page saying the UI was not built.
	Assets fs.FS
	// SecureCookie marks cookies Secure. Turn it off only for plain HTTP on a host that is not
	// loopback (browsers keep Secure cookies of http://localhost).
	SecureCookie bool
	// AuthProxy, when set, enables mode (b): identities from an authenticating proxy.
	AuthProxy *AuthProxy
}

// Server is the UI's HTTP handler.
type Server struct {
	cfg       Config
	apiURL    *url.URL
	anonymous http.RoundTripper // TLS to kube-apiserver, no credentials of its own
	own       http.RoundTripper // the server's own credentials, for impersonation
	proxyAuth authenticator.Request
	proxy     *httputil.ReverseProxy
	mux       *http.ServeMux
}

// New builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.Kube == nil {
		return nil, errors.New("no kube-apiserver config")
	}
	u, err := url.Parse(cfg.Kube.Host)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("kube-apiserver host %q: not a URL", cfg.Kube.Host)
	}
	if u.Scheme == "" {
		u.Scheme = "https"
	}
	anon := rest.AnonymousClientConfig(cfg.Kube)
	s := &Server{cfg: cfg, apiURL: u, mux: http.NewServeMux()}
	if s.anonymous, err = rest.TransportFor(anon); err != nil {
		return nil, fmt.Errorf("transport to kube-apiserver: %w", err)
	}
	if cfg.AuthProxy != nil {
		own := rest.CopyConfig(cfg.Kube)
		own.Impersonate = rest.ImpersonationConfig{}
		if s.own, err = rest.TransportFor(own); err != nil {
			return nil, fmt.Errorf("transport to kube-apiserver with the server's credentials: %w", err)
		}
		p := cfg.AuthProxy
		if p.ClientCA == nil {
			return nil, errors.New("auth proxy: no client CA")
		}
		if len(p.UsernameHeaders) == 0 {
			return nil, errors.New("auth proxy: no username header")
		}
		opts := x509request.DefaultVerifyOptions()
		opts.Roots = p.ClientCA
		s.proxyAuth = headerrequest.NewDynamicVerifyOptionsSecure(
			x509request.StaticVerifierFn(opts),
			headerrequest.StaticStringSlice(p.AllowedNames),
			headerrequest.StaticStringSlice(p.UsernameHeaders),
			headerrequest.StaticStringSlice(nil),
			headerrequest.StaticStringSlice(p.GroupHeaders),
			headerrequest.StaticStringSlice(p.ExtraHeaderPrefixes),
		)
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(s.apiURL)
			r.Out.Host = s.apiURL.Host
		},
		Transport: upstream{s},
		// Watches stream: pass every event on as it comes.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			klog.FromContext(r.Context()).Error(err, "Forwarding to kube-apiserver failed", "method", r.Method, "path", r.URL.Path)
			writeStatus(w, http.StatusBadGateway, "ServiceUnavailable", "kube-apiserver could not be reached")
		},
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	s.mux.HandleFunc("GET /healthz", ok)
	s.mux.HandleFunc("GET /readyz", ok)
	s.mux.HandleFunc("GET /auth/session", s.session)
	s.mux.HandleFunc("POST /auth/login", s.login)
	s.mux.HandleFunc("POST /auth/logout", s.logout)
	s.mux.HandleFunc(APIPrefix+"/", s.forward)
	s.mux.Handle("/", s.assets())
}

// ServeHTTP checks CSRF on writes, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if !safeMethod(r.Method) {
		if err := checkCSRF(r); err != nil {
			klog.FromContext(r.Context()).V(2).Info("Refused a write", "path", r.URL.Path, "reason", err.Error())
			writeStatus(w, http.StatusForbidden, "Forbidden", "request refused: "+err.Error())
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// identity is how a request is sent on to kube-apiserver.
type identity struct {
	// token is the bearer token of a logged-in user.
	token string
	// user, groups and extra come from the auth proxy, for impersonation.
	user   string
	groups []string
	extra  map[string][]string
}

func (id identity) viaProxy() bool { return id.user != "" }

// identify finds who is calling, stripping every header that could claim an identity.
// A request with the proxy's certificate but no user header falls back to the cookie.
func (s *Server) identify(r *http.Request) (identity, error) {
	var id identity
	if s.proxyAuth != nil {
		resp, ok, err := s.proxyAuth.AuthenticateRequest(r)
		if err != nil {
			// A certificate that does not verify: never fall back, the caller is confused or hostile.
			return id, fmt.Errorf("client certificate not accepted: %w", err)
		}
		if ok {
			u := resp.User
			id = identity{user: u.GetName(), groups: u.GetGroups(), extra: u.GetExtra()}
		}
	}
	var token string
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		token = c.Value
	}
	stripIdentityHeaders(r.Header, s.cfg.AuthProxy)
	if !id.viaProxy() {
		id.token = token
	}
	return id, nil
}

// stripIdentityHeaders removes what a browser (or anyone) could send to pass as someone else.
func stripIdentityHeaders(h http.Header, p *AuthProxy) {
	h.Del("Authorization")
	h.Del("Cookie")
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "impersonate-") || strings.HasPrefix(lk, "x-remote-") {
			delete(h, k)
		}
	}
	if p != nil {
		headerrequest.ClearAuthenticationHeaders(h,
			headerrequest.StaticStringSlice(p.UsernameHeaders), headerrequest.StaticStringSlice(nil),
			headerrequest.StaticStringSlice(p.GroupHeaders), headerrequest.StaticStringSlice(p.ExtraHeaderPrefixes))
	}
}

type identityKey struct{}

// forward sends a UI call on to kube-apiserver as the caller.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, APIPrefix)
	if !(path == "/version" || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/apis/")) || strings.Contains(path, "/../") {
		writeStatus(w, http.StatusNotFound, "NotFound", "only /api, /apis and /version are served under "+APIPrefix)
		return
	}
	// exec, attach and port-forward upgrade the connection; the UI has no use for them.
	if strings.EqualFold(r.Header.Get("Connection"), "upgrade") || r.Header.Get("Upgrade") != "" {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "connection upgrades are not forwarded")
		return
	}
	id, err := s.identify(r)
	if err != nil {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", err.Error())
		return
	}
	if id.token == "" && !id.viaProxy() {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "not logged in")
		return
	}
	r2 := r.Clone(context.WithValue(r.Context(), identityKey{}, id))
	r2.URL.Path = path
	r2.URL.RawPath = ""
	s.proxy.ServeHTTP(w, r2)
}

// upstream attaches the caller's identity to a forwarded request.
type upstream struct{ s *Server }

func (u upstream) RoundTrip(r *http.Request) (*http.Response, error) {
	id, _ := r.Context().Value(identityKey{}).(identity)
	return u.s.roundTrip(r, id)
}

func (s *Server) roundTrip(r *http.Request, id identity) (*http.Response, error) {
	switch {
	case id.viaProxy():
		setImpersonation(r.Header, id)
		return s.own.RoundTrip(r)
	case id.token != "":
		r.Header.Set("Authorization", "Bearer "+id.token)
		return s.anonymous.RoundTrip(r)
	default:
		return nil, errors.New("no identity")
	}
}

// setImpersonation names the user the auth proxy vouched for, as kube-apiserver's impersonation
// headers do (extra keys percent-encoded).
func setImpersonation(h http.Header, id identity) {
	h.Set("Impersonate-User", id.user)
	for _, g := range id.groups {
		h.Add("Impersonate-Group", g)
	}
	for k, vs := range id.extra {
		for _, v := range vs {
			h.Add("Impersonate-Extra-"+url.PathEscape(k), v)
		}
	}
}

// cookie builds one of the server's cookies.
func (s *Server) cookie(name, value string, httpOnly bool, maxAge time.Duration) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/",
		HttpOnly: httpOnly, Secure: s.cfg.SecureCookie, SameSite: http.SameSiteStrictMode,
		MaxAge: int(maxAge.Seconds()),
	}
}
