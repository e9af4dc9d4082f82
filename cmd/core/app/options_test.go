package app

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(o *Options)
		want   []string
	}{
		{name: "defaults", mutate: func(*Options) {}},
		{name: "TLS", mutate: func(o *Options) { o.TLSCertFile, o.TLSKeyFile = "c", "k" }},
		{name: "auth proxy with TLS", mutate: func(o *Options) { o.TLSCertFile, o.TLSKeyFile, o.AuthProxyClientCAFile = "c", "k", "ca" }},
		{name: "bad listen", mutate: func(o *Options) { o.Listen = "3000" }, want: []string{"--listen"}},
		{name: "certificate without key", mutate: func(o *Options) { o.TLSCertFile = "c" }, want: []string{"--tls-cert-file and --tls-private-key-file"}},
		{name: "auth proxy without TLS", mutate: func(o *Options) { o.AuthProxyClientCAFile = "ca" }, want: []string{"needs --tls-cert-file"}},
		{name: "auth proxy without a username header", mutate: func(o *Options) {
			o.TLSCertFile, o.TLSKeyFile, o.AuthProxyClientCAFile = "c", "k", "ca"
			o.AuthProxyUsernameHeaders = []string{" "}
		}, want: []string{"--auth-proxy-username-headers"}},
		{name: "every problem at once", mutate: func(o *Options) { o.Listen, o.TLSKeyFile, o.AuthProxyClientCAFile = "x", "k", "ca" },
			want: []string{"--listen", "--tls-cert-file and", "needs --tls-cert-file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			tc.mutate(o)
			errs := o.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d naming %v", errs, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d %q does not name %q", i, errs[i], w)
				}
			}
		})
	}
}
