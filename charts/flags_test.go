package charts

import (
	"testing"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"

	cloudapi "github.com/calyptia/core-management-plane/cmd/cloud-api/app"
	coreoperator "github.com/calyptia/core-management-plane/cmd/core-operator/app"
	coreui "github.com/calyptia/core-management-plane/cmd/core/app"
)

// flagSet is a binary's command line as its main assembles it: its own sections plus the
// logging flags (--v). A misspelt or removed flag in a template fails to parse here instead
// of crash-looping the pod.
func flagSet(fss cliflag.NamedFlagSets) *pflag.FlagSet {
	logsapi.AddFlags(logs.NewOptions(), fss.FlagSet("logging"))
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	for _, f := range fss.FlagSets {
		fs.AddFlagSet(f)
	}
	return fs
}

// Every combination's container arguments are flags the binaries have, with values they accept.
func TestArgsParse(t *testing.T) {
	for _, values := range []string{
		``,
		`influxdb: {enabled: true}`,
		`influxdb: {external: {url: "https://influx.example.com", tokenSecret: tok}}`,
		`cloudApi: {replicas: 1, leaderElection: {enabled: false}, encryption: {enabled: false}, logLevel: 4, extraArgs: ["--postgres-max-conns=20"]}`,
		`cloudApi: {certManager: {enabled: true}}`,
		`operator: {enabled: true, coreInstance: production, clusterName: eu-1, fluentBitImage: "fluent/fluent-bit:5.1.1", targetNamespace: pipelines}`,
		`core: {authProxy: {enabled: true, clientCASecret: proxy-ca, allowedNames: [proxy, sso], usernameHeaders: [X-Forwarded-User, X-Forwarded-Email]}}`,
		`core: {tls: {enabled: false}, secureCookie: false, logLevel: 3}`,
	} {
		t.Run(values, func(t *testing.T) {
			r := render(t, values)
			for _, bin := range []struct {
				deployment string
				// flags is the binary's command line, and what checks its values once parsed
				// (nil where that reads files the pod mounts).
				flags func() (*pflag.FlagSet, func() []error)
			}{
				{"cloud-api", func() (*pflag.FlagSet, func() []error) { return flagSet(cloudapi.NewOptions().Flags()), nil }},
				{"core-operator", func() (*pflag.FlagSet, func() []error) { return flagSet(coreoperator.NewOptions().Flags()), nil }},
				{"core", func() (*pflag.FlagSet, func() []error) {
					o := coreui.NewOptions()
					return flagSet(o.Flags()), o.Validate
				}},
			} {
				d := r.Find("Deployment", testNamespace, bin.deployment)
				if d == nil {
					continue
				}
				a := args(t, container(t, d, bin.deployment))
				fs, validate := bin.flags()
				if err := fs.Parse(a); err != nil {
					t.Errorf("%s refuses its arguments %q: %v", bin.deployment, a, err)
				}
				if fs.NArg() != 0 {
					t.Errorf("%s: positional arguments %q", bin.deployment, fs.Args())
				}
				if validate != nil {
					if errs := validate(); len(errs) > 0 {
						t.Errorf("%s refuses its arguments %q: %v", bin.deployment, a, errs)
					}
				}
			}
		})
	}
}
