package apiserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

func TestRejectAnonymous(t *testing.T) {
	anonymous := &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}
	forwardedUnauthenticated := &user.DefaultInfo{Name: "someone", Groups: []string{user.AllUnauthenticated}}
	admin := &user.DefaultInfo{Name: "admin", Groups: []string{user.SystemPrivilegedGroup, user.AllAuthenticated}}
	tests := []struct {
		name   string
		user   user.Info // what the wrapped authenticators decide; nil: not authenticated
		path   string
		wantOK bool
	}{
		{name: "admin", user: admin, path: "/apis/core.calyptia.com/v1/pipelines", wantOK: true},
		{name: "anonymous API request", user: anonymous, path: "/apis/core.calyptia.com/v1/pipelines"},
		{name: "anonymous discovery", user: anonymous, path: "/apis"},
		{name: "anonymous metrics", user: anonymous, path: "/metrics"},
		{name: "unauthenticated group", user: forwardedUnauthenticated, path: "/api"},
		{name: "anonymous livez", user: anonymous, path: "/livez", wantOK: true},
		{name: "anonymous readyz check", user: anonymous, path: "/readyz/postgres", wantOK: true},
		{name: "anonymous healthz", user: anonymous, path: "/healthz", wantOK: true},
		{name: "probe-like prefix", user: anonymous, path: "/healthzfoo"},
		{name: "nobody", path: "/livez"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			delegate := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
				if tt.user == nil {
					return nil, false, nil
				}
				return &authenticator.Response{User: tt.user}, true, nil
			})
			resp, ok, err := rejectAnonymous{delegate: delegate}.AuthenticateRequest(httptest.NewRequest("GET", tt.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Fatalf("authenticated = %v, want %v", ok, tt.wantOK)
			}
			if ok && resp.User.GetName() != tt.user.GetName() {
				t.Errorf("user = %q, want %q", resp.User.GetName(), tt.user.GetName())
			}
		})
	}
}
