package render

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/fluentbit"
)

const forwardConfig = `[SERVICE]
    flush 1

[INPUT]
    name       forward
    port       24224
    shared_key {{ secrets.key }}

[OUTPUT]
    name        es
    match       *
    http_passwd {{ secrets.es-password }}
    parsers     {{ files.parsers }}
`

func pipeline(config string, mod ...func(*v1.Pipeline)) *v1.Pipeline {
	p := &v1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec: v1.PipelineSpec{
			CoreInstance: "ci", Config: config, ConfigFormat: v1.ConfigFormatClassic,
			Secrets:            []string{"first", "second"},
			Files:              []v1.PipelineFile{{Name: "parsers", Content: "[PARSER]\n    name x\n"}},
			DeploymentStrategy: v1.DeploymentStrategyRollingUpdate,
		},
	}
	for _, m := range mod {
		m(p)
	}
	return p
}

func secret(name, rv string, data map[string]string) *v1.PipelineSecret {
	s := &v1.PipelineSecret{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: rv}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

var (
	lowProfile = &v1.ResourceProfileSpec{
		StorageMaxChunksUp: 32, StorageBacklogMemLimit: "5M", StorageMaxChunksPause: true, CPUBufferWorkers: 2,
		StorageVolumeSize: ptr.To(resource.MustParse("256Mi")),
	}
	memoryProfile = &v1.ResourceProfileSpec{StorageMaxChunksUp: 512, StorageSyncFull: true}
	kubeOptions   = Options{FilesDir: "/etc/pipeline", StoragePath: "/storage"}
	bothSecrets   = []*v1.PipelineSecret{
		secret("first", "10", map[string]string{"key": "s3cr3t-key"}),
		secret("second", "11", map[string]string{"key": "shadowed", "es-password": "hunter2!"}),
	}
)

func mustRender(t *testing.T, p *v1.Pipeline, profile *v1.ResourceProfileSpec, secrets []*v1.PipelineSecret, opts Options) *Pipeline {
	t.Helper()
	r, err := Render(p, profile, secrets, opts)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return r
}

func TestRenderKeepsSecretValuesOutOfTheConfig(t *testing.T) {
	r := mustRender(t, pipeline(forwardConfig), lowProfile, bothSecrets, kubeOptions)
	cfg := string(r.Config)
	for _, v := range []string{"s3cr3t-key", "hunter2!", "shadowed"} {
		if strings.Contains(cfg, v) {
			t.Errorf("config holds secret value %q:\n%s", v, cfg)
		}
	}
	want := map[string]string{"CALYPTIA_SECRET_KEY": "s3cr3t-key", "CALYPTIA_SECRET_ES_PASSWORD": "hunter2!"}
	if len(r.SecretEnv) != len(want) {
		t.Errorf("SecretEnv has %d entries, want %d: %v", len(r.SecretEnv), len(want), keys(r.SecretEnv))
	}
	for k, v := range want {
		if r.SecretEnv[k] != v {
			t.Errorf("SecretEnv[%s] = %q, want %q (the first listed secret holding a key wins)", k, r.SecretEnv[k], v)
		}
		if !strings.Contains(cfg, "${"+k+"}") {
			t.Errorf("config does not reference ${%s}:\n%s", k, cfg)
		}
	}
	if !strings.Contains(cfg, "/etc/pipeline/parsers") {
		t.Errorf("file reference not rendered as its path:\n%s", cfg)
	}
	if got := strings.Join(r.SecretValues, ","); got != "hunter2!,s3cr3t-key" {
		t.Errorf("SecretValues = %q", got)
	}
}

func TestRenderInlineSecrets(t *testing.T) {
	opts := kubeOptions
	opts.InlineSecrets = true
	r := mustRender(t, pipeline(forwardConfig), lowProfile, bothSecrets, opts)
	if !strings.Contains(string(r.Config), "s3cr3t-key") || !strings.Contains(string(r.Config), "hunter2!") {
		t.Errorf("inline config lacks the values:\n%s", r.Config)
	}
	if len(r.SecretEnv) != 0 {
		t.Errorf("SecretEnv = %v, want none with inline secrets", keys(r.SecretEnv))
	}
	ref := mustRender(t, pipeline(forwardConfig), lowProfile, bothSecrets, kubeOptions)
	if r.ConfigRevision != ref.ConfigRevision {
		t.Errorf("the revision depends on how secrets are delivered: %s vs %s", r.ConfigRevision, ref.ConfigRevision)
	}
}

func TestRenderMissingSecretsNamesKeysOnly(t *testing.T) {
	_, err := Render(pipeline(forwardConfig), lowProfile, []*v1.PipelineSecret{secret("first", "1", map[string]string{"other": "v4lue"})}, kubeOptions)
	var missing *MissingSecretsError
	if !errors.As(err, &missing) {
		t.Fatalf("err = %v, want a MissingSecretsError", err)
	}
	if got := strings.Join(missing.Keys, ","); got != "es-password,key" {
		t.Errorf("missing keys = %q", got)
	}
	if strings.Contains(err.Error(), "v4lue") {
		t.Errorf("error shows a value: %v", err)
	}
}

func TestRenderServiceSettings(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		strategy   v1.DeploymentStrategy
		opts       Options
		wantPort   int32
		wantListen string
		want       []string
		notWant    []string
	}{
		{
			name:     "http server turned on at the default port",
			config:   "[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n    match *\n",
			wantPort: 2020,
			want:     []string{"http_server on", "http_port   2020"},
			notWant:  []string{"hot_reload"},
		},
		{
			name:     "default port taken by a plugin",
			config:   "[INPUT]\n    name http\n    port 2020\n[OUTPUT]\n    name null\n    match *\n",
			wantPort: 2021,
		},
		{
			name:       "the config's own port and address stay",
			config:     "[SERVICE]\n    http_server on\n    http_listen 10.0.0.1\n    http_port 2999\n[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n    match *\n",
			opts:       Options{HTTPListen: "127.0.0.1", HTTPPort: 40000},
			wantPort:   2999,
			wantListen: "10.0.0.1",
		},
		{
			name:       "a port while the server is off is kept",
			config:     "[SERVICE]\n    http_port 2888\n[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n    match *\n",
			opts:       Options{HTTPListen: "127.0.0.1", HTTPPort: 40000},
			wantPort:   2888,
			wantListen: "127.0.0.1",
		},
		{
			name:       "host mode port and address",
			config:     "[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n    match *\n",
			opts:       Options{HTTPListen: "127.0.0.1", HTTPPort: 40000},
			wantPort:   40000,
			wantListen: "127.0.0.1",
		},
		{
			name:     "a later service section cannot turn the server off",
			config:   "[SERVICE]\n    flush 1\n[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n    match *\n[SERVICE]\n    http_server off\n",
			wantPort: 2020,
			notWant:  []string{"http_server off"},
		},
		{
			name:     "hot reload",
			config:   "[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n    match *\n",
			strategy: v1.DeploymentStrategyHotReload,
			wantPort: 2020,
			want:     []string{"hot_reload  on"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pipeline(tt.config, func(p *v1.Pipeline) {
				p.Spec.Secrets, p.Spec.Files = nil, nil
				if tt.strategy != "" {
					p.Spec.DeploymentStrategy = tt.strategy
				}
			})
			r := mustRender(t, p, nil, nil, tt.opts)
			if r.HTTPPort != tt.wantPort || r.HTTPListen != tt.wantListen {
				t.Errorf("HTTP server %q:%d, want %q:%d", r.HTTPListen, r.HTTPPort, tt.wantListen, tt.wantPort)
			}
			cfg, err := fluentbit.Parse(r.Config, fluentbit.FormatClassic)
			if err != nil {
				t.Fatalf("rendered config does not parse: %v\n%s", err, r.Config)
			}
			var gotPort int32
			for _, port := range cfg.Ports() {
				if port.Section == fluentbit.KindService {
					gotPort = port.Port
				}
			}
			if gotPort != tt.wantPort {
				t.Errorf("rendered config's HTTP server port = %d, want %d:\n%s", gotPort, tt.wantPort, r.Config)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(r.Config), w) {
					t.Errorf("config lacks %q:\n%s", w, r.Config)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(string(r.Config), w) {
					t.Errorf("config has %q:\n%s", w, r.Config)
				}
			}
		})
	}
}

func TestRenderProfile(t *testing.T) {
	p := pipeline("[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n    match *\n[OUTPUT]\n    name stdout\n    match *\n    workers 7\n",
		func(p *v1.Pipeline) { p.Spec.Secrets, p.Spec.Files = nil, nil })
	disk := string(mustRender(t, p, lowProfile, nil, kubeOptions).Config)
	for _, w := range []string{"storage.path              /storage", "storage.type                      filesystem",
		"storage.backlog.mem_limit 5M", "storage.pause_on_chunks_overlimit on", "workers 2", "workers 7"} {
		if !strings.Contains(disk, w) {
			t.Errorf("disk profile: config lacks %q:\n%s", w, disk)
		}
	}
	mem := string(mustRender(t, p, memoryProfile, nil, kubeOptions).Config)
	for _, w := range []string{"storage.type memory", "storage.sync              full", "storage.max_chunks_up     512"} {
		if !strings.Contains(strings.Join(strings.Fields(mem), " "), strings.Join(strings.Fields(w), " ")) {
			t.Errorf("memory profile: config lacks %q:\n%s", w, mem)
		}
	}
	if strings.Contains(mem, "storage.path") {
		t.Errorf("memory profile sets a storage path:\n%s", mem)
	}
}

func TestRevisions(t *testing.T) {
	base := func() (*v1.Pipeline, *v1.ResourceProfileSpec, []*v1.PipelineSecret) {
		return pipeline(forwardConfig), lowProfile.DeepCopy(), []*v1.PipelineSecret{bothSecrets[0].DeepCopy(), bothSecrets[1].DeepCopy()}
	}
	p0, prof0, sec0 := base()
	ref := mustRender(t, p0, prof0, sec0, kubeOptions)
	tests := []struct {
		name                    string
		change                  func(p *v1.Pipeline, prof *v1.ResourceProfileSpec, secs []*v1.PipelineSecret)
		configSame, secretsSame bool
	}{
		{"nothing", func(*v1.Pipeline, *v1.ResourceProfileSpec, []*v1.PipelineSecret) {}, true, true},
		{"config", func(p *v1.Pipeline, _ *v1.ResourceProfileSpec, _ []*v1.PipelineSecret) {
			p.Spec.Config = strings.Replace(p.Spec.Config, "flush 1", "flush 2", 1)
		}, false, true},
		{"file", func(p *v1.Pipeline, _ *v1.ResourceProfileSpec, _ []*v1.PipelineSecret) {
			p.Spec.Files[0].Content += "    format json\n"
		}, false, true},
		{"profile resources", func(_ *v1.Pipeline, prof *v1.ResourceProfileSpec, _ []*v1.PipelineSecret) {
			prof.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
		}, false, true},
		{"a used secret's new version", func(_ *v1.Pipeline, _ *v1.ResourceProfileSpec, secs []*v1.PipelineSecret) {
			secs[1].ResourceVersion = "99"
		}, true, false},
		{"a secret value alone (the version is what changes)", func(_ *v1.Pipeline, _ *v1.ResourceProfileSpec, secs []*v1.PipelineSecret) {
			secs[0].Data["key"] = []byte("other")
		}, true, true},
		{"labels of the pipeline", func(p *v1.Pipeline, _ *v1.ResourceProfileSpec, _ []*v1.PipelineSecret) {
			p.Labels = map[string]string{"a": "b"}
		}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, prof, secs := base()
			tt.change(p, prof, secs)
			got := mustRender(t, p, prof, secs, kubeOptions)
			if (got.ConfigRevision == ref.ConfigRevision) != tt.configSame {
				t.Errorf("ConfigRevision %s vs %s: same = %v, want %v", got.ConfigRevision, ref.ConfigRevision, !tt.configSame, tt.configSame)
			}
			if (got.SecretsRevision == ref.SecretsRevision) != tt.secretsSame {
				t.Errorf("SecretsRevision %s vs %s: same = %v, want %v", got.SecretsRevision, ref.SecretsRevision, !tt.secretsSame, tt.secretsSame)
			}
			if (got.Revision() == ref.Revision()) != (tt.configSame && tt.secretsSame) {
				t.Errorf("Revision %s vs %s", got.Revision(), ref.Revision())
			}
		})
	}
}

func TestSecretEnvNamesDoNotCollide(t *testing.T) {
	p := pipeline("[INPUT]\n    name dummy\n    tag {{ secrets.a-b }}\n[OUTPUT]\n    name null\n    match {{ secrets.a_b }}\n",
		func(p *v1.Pipeline) { p.Spec.Files = nil })
	r := mustRender(t, p, nil, []*v1.PipelineSecret{secret("first", "1", map[string]string{"a-b": "one", "a_b": "two"})}, kubeOptions)
	if len(r.SecretEnv) != 2 {
		t.Fatalf("SecretEnv = %v, want two variables", keys(r.SecretEnv))
	}
	seen := map[string]bool{}
	for k, v := range r.SecretEnv {
		if !strings.HasPrefix(k, "CALYPTIA_SECRET_A_B_") || seen[v] {
			t.Errorf("variable %s=%s", k, v)
		}
		seen[v] = true
	}
}

func TestResolvePorts(t *testing.T) {
	cfg, err := fluentbit.Parse([]byte("[SERVICE]\n    http_server on\n[INPUT]\n    name forward\n[INPUT]\n    name syslog\n    mode udp\n    port 5514\n[OUTPUT]\n    name null\n    match *\n"), fluentbit.FormatClassic)
	if err != nil {
		t.Fatal(err)
	}
	spec := &v1.PipelineSpec{Ports: []v1.PipelinePort{
		{Port: 24224, Protocol: corev1.ProtocolTCP, ServicePort: 34224},
		{Port: 9000, Protocol: corev1.ProtocolUDP},
	}}
	got := ResolvePorts(spec, cfg)
	want := []v1.PipelinePortStatus{
		{Port: 24224, Protocol: "TCP", ServicePort: 34224, Plugin: "forward"},
		{Port: 9000, Protocol: "UDP", ServicePort: 9000},
		{Port: 2020, Protocol: "TCP", ServicePort: 2020, Plugin: "http_server"},
		{Port: 5514, Protocol: "UDP", ServicePort: 5514, Plugin: "syslog"},
	}
	if len(got) != len(want) {
		t.Fatalf("ports = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("port %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	spec.DisableAutoPorts = true
	if got := ResolvePorts(spec, cfg); len(got) != 2 || got[0].Plugin != "" {
		t.Errorf("with disableAutoPorts: %+v, want only spec.ports", got)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRenderAddsTheTap(t *testing.T) {
	plain := pipeline("[INPUT]\n    name http\n    port 2025\n[OUTPUT]\n    name null\n    match *\n",
		func(p *v1.Pipeline) { p.Spec.Secrets, p.Spec.Files = nil, nil })
	r := mustRender(t, plain, lowProfile, nil, Options{TapListen: "127.0.0.1"})
	cfg, err := fluentbit.Parse(r.Config, fluentbit.FormatClassic)
	if err != nil {
		t.Fatal(err)
	}
	var tap *fluentbit.Section
	for _, o := range cfg.Outputs() {
		if o.Name() == "vivo_exporter" {
			tap = o
		}
	}
	if tap == nil {
		t.Fatalf("no vivo_exporter in:\n%s", r.Config)
	}
	// 2025 is taken by the http input; the tap takes the next port and listens where told.
	if r.TapPort != 2026 {
		t.Errorf("tap port %d, want 2026", r.TapPort)
	}
	for k, want := range map[string]string{"port": "2026", "host": "127.0.0.1", "match": "*", "alias": TapAlias, "workers": ""} {
		if got, _ := tap.Get(k); got != want {
			t.Errorf("tap %s = %q, want %q", k, got, want)
		}
	}
	// The pipeline's own exporter is used, not doubled.
	own := pipeline("[INPUT]\n    name dummy\n[OUTPUT]\n    name vivo_exporter\n    match *\n    port 3000\n",
		func(p *v1.Pipeline) { p.Spec.Secrets, p.Spec.Files = nil, nil })
	r = mustRender(t, own, nil, nil, Options{})
	if r.TapPort != 3000 || strings.Count(string(r.Config), "vivo_exporter") != 1 {
		t.Errorf("own exporter: tap port %d, config:\n%s", r.TapPort, r.Config)
	}
	// The tap is not a port the pipeline exposes.
	for _, p := range r.Ports {
		if p.Port == r.TapPort && p.Plugin == "" {
			t.Errorf("the tap's port became a pipeline port: %+v", r.Ports)
		}
	}
}
