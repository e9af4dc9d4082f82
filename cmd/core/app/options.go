// Package app holds the flags of core (the web UI) and wires them into pkg/console.
package app

import (
	"errors"
	"fmt"
	"net"
	"strings"

	cliflag "k8s.io/component-base/cli/flag"
)

// Options are every flag of core.
type Options struct {
	Listen       string
	TLSCertFile  string
	TLSKeyFile   string
	Kubeconfig   string
	SecureCookie bool

	AuthProxyClientCAFile      string
	AuthProxyAllowedNames      []string
	AuthProxyUsernameHeaders   []string
	AuthProxyGroupHeaders      []string
	AuthProxyExtraHeaderPrefix []string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		Listen:                     ":3000",
		SecureCookie:               true,
		AuthProxyUsernameHeaders:   []string{"X-Remote-User"},
		AuthProxyGroupHeaders:      []string{"X-Remote-Group"},
		AuthProxyExtraHeaderPrefix: []string{"X-Remote-Extra-"},
	}
}

// Flags returns the flags in named sections, for help output.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	fs := fss.FlagSet("serving")
	fs.StringVar(&o.Listen, "listen", o.Listen, "Address to serve the UI and the /healthz and /readyz probes on.")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile,
		"Serving certificate (PEM, with intermediates). With --tls-private-key-file: serve HTTPS. Without: plain HTTP, for TLS ended at an Ingress.")
	fs.StringVar(&o.TLSKeyFile, "tls-private-key-file", o.TLSKeyFile, "Private key of --tls-cert-file.")
	fs.BoolVar(&o.SecureCookie, "secure-cookie", o.SecureCookie,
		"Mark the session and CSRF cookies Secure (sent over HTTPS only; browsers also keep them for http://localhost). "+
			"Turn off only for plain HTTP on another host, e.g. a test cluster without TLS.")

	fs = fss.FlagSet("kubernetes api")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Kubeconfig of the cluster whose kube-apiserver serves core.calyptia.com. Empty: the in-cluster ServiceAccount. "+
			"Users' calls carry their own credentials; these are used only to impersonate the users an auth proxy names.")

	fs = fss.FlagSet("auth proxy")
	fs.StringVar(&o.AuthProxyClientCAFile, "auth-proxy-client-ca-file", o.AuthProxyClientCAFile,
		"CA (PEM) of the authenticating proxy's client certificate. Set, requests presenting a certificate it verifies have "+
			"their user taken from the --auth-proxy-username-headers and acted on by impersonation (the ServiceAccount needs "+
			"the impersonate verb on users and groups). Needs --tls-cert-file: client certificates need TLS.")
	fs.StringSliceVar(&o.AuthProxyAllowedNames, "auth-proxy-allowed-names", o.AuthProxyAllowedNames,
		"Common names the proxy's client certificate may have. Empty: any certificate the CA signed for client auth.")
	fs.StringSliceVar(&o.AuthProxyUsernameHeaders, "auth-proxy-username-headers", o.AuthProxyUsernameHeaders,
		"Headers holding the user name, first non-empty wins (oauth2-proxy: X-Forwarded-User or X-Forwarded-Email).")
	fs.StringSliceVar(&o.AuthProxyGroupHeaders, "auth-proxy-group-headers", o.AuthProxyGroupHeaders,
		"Headers holding groups, one group per header value (oauth2-proxy: X-Forwarded-Groups).")
	fs.StringSliceVar(&o.AuthProxyExtraHeaderPrefix, "auth-proxy-extra-headers-prefix", o.AuthProxyExtraHeaderPrefix,
		"Header prefixes of extra user attributes (the rest of the name is the key).")
	return fss
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() []error {
	var errs []error
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %w", o.Listen, err))
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-private-key-file go together"))
	}
	if o.AuthProxyClientCAFile != "" {
		if o.TLSCertFile == "" {
			errs = append(errs, errors.New("--auth-proxy-client-ca-file needs --tls-cert-file: the proxy's client certificate needs TLS"))
		}
		if len(nonEmpty(o.AuthProxyUsernameHeaders)) == 0 {
			errs = append(errs, errors.New("--auth-proxy-username-headers: at least one header"))
		}
	}
	return errs
}

func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
