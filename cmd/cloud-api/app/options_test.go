package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
)

func TestValidate(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		// wantErrs are substrings of the expected errors, one each; none means valid.
		wantErrs []string
	}{
		{
			name: "standalone with client certificates",
			args: []string{"--standalone", "--postgres-url=postgres://db/x", "--client-ca-file=" + caFile, "--authentication-skip-lookup"},
		},
		{
			name: "aggregated",
			args: []string{"--postgres-url=postgres://db/x"},
		},
		{
			name: "every problem at once",
			args: []string{"--standalone", "--postgres-url=", "--postgres-max-conns=-1", "--encryption-provider-config=/nonexistent/enc.yaml"},
			wantErrs: []string{
				"--postgres-url (or DATABASE_URL) is required",
				"--postgres-max-conns must not be negative",
				"--encryption-provider-config",
				"--standalone needs --client-ca-file",
				"--standalone needs --authentication-skip-lookup",
			},
		},
		{
			name:     "unparseable postgres url",
			args:     []string{"--postgres-url=postgres://user:pw@host:notaport/db"},
			wantErrs: []string{"--postgres-url"},
		},
		{
			name:     "leader election on something other than leases",
			args:     []string{"--postgres-url=postgres://db/x", "--leader-elect-resource-lock=configmaps"},
			wantErrs: []string{"--leader-elect-resource-lock"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOptions()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			for _, f := range o.Flags().FlagSets {
				fs.AddFlagSet(f)
			}
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := o.Complete(); err != nil {
				t.Fatal(err)
			}
			errs := o.Validate()
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("Validate() = %v, want %d errors %q", errs, len(tt.wantErrs), tt.wantErrs)
			}
			for i, want := range tt.wantErrs {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], want)
				}
			}
			if strings.Contains(joinErrs(errs), "pw@") {
				t.Errorf("errors leak the database password: %v", errs)
			}
		})
	}
}

func joinErrs(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error())
	}
	return b.String()
}

func TestStandaloneDropsClusterDependencies(t *testing.T) {
	o := NewOptions()
	o.Standalone = true
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	if o.Recommended.CoreAPI != nil || o.Recommended.Admission != nil ||
		o.Recommended.Features.EnablePriorityAndFairness || o.LeaderElection.LeaderElect {
		t.Errorf("standalone kept something that needs a kube-apiserver: coreAPI %v, admission %v, APF %v, leader election %v",
			o.Recommended.CoreAPI != nil, o.Recommended.Admission != nil,
			o.Recommended.Features.EnablePriorityAndFairness, o.LeaderElection.LeaderElect)
	}
	if o.Recommended.Etcd != nil {
		t.Error("etcd options are set")
	}
}

func TestCheckEncryptedResources(t *testing.T) {
	tests := []struct {
		name    string
		names   []schema.GroupResource
		wantErr bool
	}{
		{name: "pipeline secrets", names: []schema.GroupResource{{Group: "core.calyptia.com", Resource: "pipelinesecrets"}}},
		{name: "wildcard of the group", names: []schema.GroupResource{{Group: "core.calyptia.com", Resource: "*"}}},
		{name: "other groups are not ours to judge", names: []schema.GroupResource{{Group: "", Resource: "secrets"}}},
		{name: "typo", names: []schema.GroupResource{{Group: "core.calyptia.com", Resource: "pipelinesecret"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[schema.GroupResource]value.Transformer{}
			for _, gr := range tt.names {
				m[gr] = identity.NewEncryptCheckTransformer()
			}
			if err := checkEncryptedResources(m); (err != nil) != tt.wantErr {
				t.Errorf("checkEncryptedResources() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
