package apiserver

import (
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// probePaths may be requested anonymously, so that kubelet probes work
// without credentials. They reveal only health, never objects.
var probePaths = []string{"/healthz", "/livez", "/readyz"}

// rejectAnonymous turns anonymous authentication into an authentication
// failure (401) everywhere but the probe paths.
//
// The delegating authentication options always append the anonymous
// authenticator (their Anonymous field is ignored by ApplyTo), and a user
// forwarded by kube-apiserver may itself be system:anonymous; this server
// serves nothing to either.
type rejectAnonymous struct {
	delegate authenticator.Request
}

var _ authenticator.Request = rejectAnonymous{}

func (a rejectAnonymous) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	resp, ok, err := a.delegate.AuthenticateRequest(req)
	if err != nil || !ok {
		return resp, ok, err
	}
	if resp.User.GetName() != user.Anonymous && !isUnauthenticated(resp.User) {
		return resp, ok, nil
	}
	if isProbePath(req.URL.Path) {
		return resp, ok, nil
	}
	return nil, false, nil
}

func isUnauthenticated(u user.Info) bool {
	for _, g := range u.GetGroups() {
		if g == user.AllUnauthenticated {
			return true
		}
	}
	return false
}

func isProbePath(p string) bool {
	for _, probe := range probePaths {
		if p == probe || strings.HasPrefix(p, probe+"/") {
			return true
		}
	}
	return false
}
