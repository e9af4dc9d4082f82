package apiserver

import (
	"crypto/sha256"
	"crypto/x509"
	"net/http"
	"slices"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/utils/lru"
)

// Every request kube-apiserver forwards carries its front-proxy client certificate, and the
// request-header authenticator verifies that certificate's chain on every request: an ECDSA
// signature check that was about 8% of cloud-api's CPU under a stream of creates (docs/performance.md).
// The certificate is the same for every request of a connection and for hours, so
// frontProxyFirst remembers which chains it verified, for the CA bundle it verified them with.

const (
	// verifiedTTL bounds how long a verification is reused. A new CA bundle (the front-proxy CA
	// rotated in kube-system's extension-apiserver-authentication ConfigMap) is another key,
	// so it never reuses a verification made with the old one.
	verifiedTTL = time.Minute
	// verifiedEntries is plenty for the few front-proxy certificates a cluster has at once;
	// only chains that verified are kept, so unknown certificates cannot fill it.
	verifiedEntries = 64
)

// frontProxyFirst authenticates requests from the front proxy (kube-apiserver) by their
// X-Remote-* headers once their client certificate verifies against the request-header CA and
// names an allowed client, as the upstream request-header authenticator does, with
// verifications cached. Every other request, and any front-proxy request without a user header,
// goes to next (the full delegating chain), which decides exactly as before.
type frontProxyFirst struct {
	config  *authenticatorfactory.RequestHeaderConfig
	headers authenticator.Request
	next    authenticator.Request

	verified *lru.Cache // verificationKey -> expiry time.Time
	now      func() time.Time
}

type verificationKey struct {
	bundle, chain [sha256.Size]byte
}

func newFrontProxyFirst(config *authenticatorfactory.RequestHeaderConfig, next authenticator.Request) *frontProxyFirst {
	return &frontProxyFirst{
		config: config,
		// The group adder gives the user system:authenticated, as the delegating chain does.
		headers: group.NewAuthenticatedGroupAdder(headerrequest.NewDynamic(
			config.UsernameHeaders, config.UIDHeaders, config.GroupHeaders, config.ExtraHeaderPrefixes)),
		next:     next,
		verified: lru.New(verifiedEntries),
		now:      time.Now,
	}
}

var _ authenticator.Request = &frontProxyFirst{}

func (a *frontProxyFirst) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if a.fromFrontProxy(req) {
		if resp, ok, err := a.headers.AuthenticateRequest(req); ok && err == nil {
			return resp, true, nil
		}
	}
	return a.next.AuthenticateRequest(req)
}

// fromFrontProxy reports whether the request's client certificate chain verifies against the
// request-header CA for client authentication and its subject is an allowed client name.
func (a *frontProxyFirst) fromFrontProxy(req *http.Request) bool {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return false
	}
	leaf := req.TLS.PeerCertificates[0]
	// The allowed names may change at any time: checked on every request.
	if names := a.config.AllowedClientNames.Value(); len(names) > 0 && !slices.Contains(names, leaf.Subject.CommonName) {
		return false
	}
	opts, ok := a.config.CAContentProvider.VerifyOptions()
	if !ok {
		return false
	}
	key := verificationKey{bundle: sha256.Sum256(a.config.CAContentProvider.CurrentCABundleContent())}
	h := sha256.New()
	for _, c := range req.TLS.PeerCertificates {
		h.Write(c.Raw)
	}
	h.Sum(key.chain[:0])
	now := a.now()
	if exp, ok := a.verified.Get(key); ok && now.Before(exp.(time.Time)) {
		return true
	}
	if opts.Intermediates == nil && len(req.TLS.PeerCertificates) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range req.TLS.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	opts.CurrentTime = now
	chains, err := leaf.Verify(opts)
	if err != nil {
		return false
	}
	// Never past the moment any certificate of a verified chain expires.
	exp := now.Add(verifiedTTL)
	for _, chain := range chains {
		for _, c := range chain {
			if c.NotAfter.Before(exp) {
				exp = c.NotAfter
			}
		}
	}
	a.verified.Add(key, exp)
	return true
}
