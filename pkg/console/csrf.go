package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
)

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF refuses a write that did not come from the UI's own pages: the browser must say it
// is same-origin where it says anything (Sec-Fetch-Site, Origin), and the request must repeat
// the CSRF cookie in a header, which only scripts of this origin can read (double submit).
// SameSite=Strict cookies already keep other sites' requests anonymous; this covers browsers
// and set-ups (sibling subdomains, the auth proxy's own cookie) where that is not enough.
func checkCSRF(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin":
	default:
		return errors.New("cross-site request (Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site") + ")")
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errors.New("cross-origin request (Origin: " + o + ")")
		}
	}
	c, err := r.Cookie(CSRFCookie)
	if err != nil || c.Value == "" {
		return errors.New("no CSRF cookie; reload the page")
	}
	h := r.Header.Get(CSRFHeader)
	if h == "" {
		return errors.New("no " + CSRFHeader + " header")
	}
	if subtle.ConstantTimeCompare([]byte(h), []byte(c.Value)) != 1 {
		return errors.New(CSRFHeader + " does not match the CSRF cookie")
	}
	return nil
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ensureCSRFCookie gives a browser its CSRF token when it has none.
func (s *Server) ensureCSRFCookie(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CSRFCookie); err == nil && len(c.Value) >= 32 {
		return
	}
	http.SetCookie(w, s.cookie(CSRFCookie, newToken(), false, 0))
}
