package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Session is what GET /auth/session answers: who kube-apiserver takes the caller for.
type Session struct {
	// Mode is "token" (logged in at the login page) or "proxy" (the auth proxy's headers).
	Mode     string   `json:"mode"`
	Username string   `json:"username"`
	Groups   []string `json:"groups,omitempty"`
}

// maxTokenBytes bounds a login token: it must fit in a cookie (browsers keep 4 KiB).
const maxTokenBytes = 3500

// login takes a bearer token, checks with kube-apiserver that it authenticates someone, and
// keeps it in the session cookie. The token never goes to a log or back to the browser's scripts.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&in); err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "body: a JSON object with the token")
		return
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(in.Token), "Bearer "))
	switch {
	case token == "":
		writeStatus(w, http.StatusBadRequest, "BadRequest", "token: required")
		return
	case len(token) > maxTokenBytes:
		writeStatus(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("token: longer than %d bytes, too long for a cookie", maxTokenBytes))
		return
	case strings.ContainsAny(token, " \t\r\n;,\"\\"):
		writeStatus(w, http.StatusBadRequest, "BadRequest", "token: not a bearer token (it has spaces or separators)")
		return
	}
	sess, code, err := s.review(r.Context(), identity{token: token})
	if err != nil {
		klog.FromContext(r.Context()).V(2).Info("Login refused", "status", code, "reason", err.Error())
		if code == http.StatusUnauthorized {
			writeStatus(w, http.StatusUnauthorized, "Unauthorized", "kube-apiserver did not accept the token")
			return
		}
		writeStatus(w, http.StatusBadGateway, "ServiceUnavailable", "checking the token with kube-apiserver: "+err.Error())
		return
	}
	klog.FromContext(r.Context()).V(1).Info("Logged in", "user", sess.Username)
	http.SetCookie(w, s.cookie(SessionCookie, token, true, 0))
	// A new CSRF token for the new session.
	http.SetCookie(w, s.cookie(CSRFCookie, newToken(), false, 0))
	writeJSON(w, http.StatusOK, sess)
}

func (s *Server) logout(w http.ResponseWriter, _ *http.Request) {
	http.SetCookie(w, s.cookie(SessionCookie, "", true, -time.Second))
	w.WriteHeader(http.StatusNoContent)
}

// session tells the UI who the caller is, or 401 when it must log in.
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	s.ensureCSRFCookie(w, r)
	id, err := s.identify(r)
	if err != nil {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", err.Error())
		return
	}
	if id.token == "" && !id.viaProxy() {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "not logged in")
		return
	}
	sess, code, err := s.review(r.Context(), id)
	if err != nil {
		if code == http.StatusUnauthorized {
			// An expired or revoked token: forget it.
			http.SetCookie(w, s.cookie(SessionCookie, "", true, -time.Second))
			writeStatus(w, http.StatusUnauthorized, "Unauthorized", "the session's token is no longer accepted; log in again")
			return
		}
		writeStatus(w, http.StatusBadGateway, "ServiceUnavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

// review asks kube-apiserver who id is (SelfSubjectReview), as id.
func (s *Server) review(ctx context.Context, id identity) (*Session, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	u := *s.apiURL
	u.Path = strings.TrimSuffix(u.Path, "/") + "/apis/authentication.k8s.io/v1/selfsubjectreviews"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.roundTrip(req, id)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var st metav1.Status
		msg := resp.Status
		if json.Unmarshal(b, &st) == nil && st.Message != "" {
			msg = st.Message
		}
		return nil, resp.StatusCode, fmt.Errorf("SelfSubjectReview: %s", msg)
	}
	var ssr authenticationv1.SelfSubjectReview
	if err := json.Unmarshal(b, &ssr); err != nil {
		return nil, resp.StatusCode, fmt.Errorf("decoding the SelfSubjectReview: %w", err)
	}
	sess := &Session{Mode: "token", Username: ssr.Status.UserInfo.Username, Groups: ssr.Status.UserInfo.Groups}
	if id.viaProxy() {
		sess.Mode = "proxy"
	}
	return sess, resp.StatusCode, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeStatus answers a Kubernetes Status, as kube-apiserver would, so the UI reads one shape
// of error whoever refused.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	writeJSON(w, code, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	})
}
