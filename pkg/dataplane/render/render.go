// Package render turns a pipeline, its resource profile and its pipeline secrets into what a
// data plane runs: the Fluent Bit config with the profile's settings applied, the files next to
// it, the secret values it needs, the ports it exposes and a revision that changes exactly when
// any of those does. Both data plane modes (Kubernetes workloads and host processes) use it, so
// a pipeline renders the same way wherever it runs.
package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/fluentbit"
)

// DefaultHTTPPort is Fluent Bit's HTTP server port when the config names none.
const DefaultHTTPPort = 2020

// SecretEnvPrefix starts the names of the environment variables that carry secret values in
// Kubernetes mode.
const SecretEnvPrefix = "CALYPTIA_SECRET_"

// Options says where the rendered pipeline will live.
type Options struct {
	// FilesDir is the directory the pipeline's files are placed in: `{{ files.NAME }}` renders
	// as FilesDir/NAME.
	FilesDir string
	// StoragePath is the service storage.path, used when the profile buffers on disk.
	StoragePath string
	// InlineSecrets writes secret values into the config itself (host mode: the file is private
	// to the agent's user). Otherwise each value becomes a ${CALYPTIA_SECRET_...} reference that
	// Fluent Bit resolves from its environment, and the values are returned in SecretEnv, so the
	// config can live in a ConfigMap.
	InlineSecrets bool
	// HTTPListen is the HTTP server's listen address when the config sets none ("" keeps
	// Fluent Bit's default, all interfaces).
	HTTPListen string
	// HTTPPort is the HTTP server's port when the config sets none (0: DefaultHTTPPort, or the
	// next free port when a plugin listens there).
	HTTPPort int32
	// TapListen and TapPort place the vivo_exporter output added for the pipeline's tap
	// (0: DefaultTapPort, or the next free one).
	TapListen string
	TapPort   int32
}

// DefaultTapPort is vivo_exporter's own default port.
const DefaultTapPort = 2025

// TapAlias names the vivo_exporter output the data plane adds.
const TapAlias = "calyptia-tap"

// Pipeline is a rendered pipeline.
type Pipeline struct {
	// Format is the config's syntax (the pipeline's own).
	Format fluentbit.Format
	// Config is the config to run.
	Config []byte
	// Files maps file names to their content.
	Files map[string]string
	// SecretEnv maps environment variable names to secret values (empty with InlineSecrets).
	SecretEnv map[string]string
	// SecretValues are the secret values the config uses, to redact from anything shown to
	// people (Fluent Bit's log lines, say). Never log them.
	SecretValues []string
	// Ports are the ports the pipeline exposes, resolved from the config and spec.ports.
	Ports []v1.PipelinePortStatus
	// HTTPPort is where Fluent Bit's HTTP server (health, metrics, reload) listens.
	HTTPPort int32
	// HTTPListen is the HTTP server's listen address ("" for all interfaces).
	HTTPListen string
	// TapPort is where its vivo_exporter (the tap) listens.
	TapPort int32
	// HotReload is set when the pipeline picks up config changes by reloading.
	HotReload bool
	// ConfigRevision identifies the config, files and profile settings; it never depends on
	// secret values, so it may be shown to anyone who can read the pipeline.
	ConfigRevision string
	// SecretsRevision identifies the versions of the pipeline secrets the config uses (their UIDs
	// and resource versions, never their values).
	SecretsRevision string
}

// Revision combines both revisions: what the running pods or process must match.
func (p *Pipeline) Revision() string {
	return digest(func(h hash.Hash) { writeFields(h, p.ConfigRevision, p.SecretsRevision) })
}

// MissingSecretsError says which secret keys a config references that no pipeline secret holds.
// It names keys, never values.
type MissingSecretsError struct {
	Keys []string
}

func (e *MissingSecretsError) Error() string {
	return fmt.Sprintf("undefined pipeline secrets: %s", strings.Join(e.Keys, ", "))
}

// Render renders p with profile and the pipeline secrets named in p.Spec.Secrets (secrets may
// hold others too; missing ones are simply absent). The result depends only on its inputs.
func Render(p *v1.Pipeline, profile *v1.ResourceProfileSpec, secrets []*v1.PipelineSecret, opts Options) (*Pipeline, error) {
	format := fluentbit.Format(v1.PipelineConfigFormat(&p.Spec))
	cfg, err := fluentbit.Parse([]byte(p.Spec.Config), format)
	if err != nil {
		return nil, fmt.Errorf("parsing the config: %w", err)
	}
	out := &Pipeline{
		Format:    format,
		Files:     map[string]string{},
		HotReload: p.Spec.DeploymentStrategy == v1.DeploymentStrategyHotReload,
	}
	for _, f := range p.Spec.Files {
		out.Files[f.Name] = f.Content
	}
	out.Ports = ResolvePorts(&p.Spec, cfg)

	values, used, err := secretValues(cfg, p.Spec.Secrets, secrets)
	if err != nil {
		return nil, err
	}
	out.SecretsRevision = secretsRevision(used)

	run := cfg.Clone()
	out.HTTPListen, out.HTTPPort = applyService(run, cfg, opts, out.HotReload)
	applyWorkers(run, profile)
	out.TapPort = addTap(run, cfg, opts, out.HTTPPort)
	storage := storageSettings(profile, opts.StoragePath)

	files := map[string]string{}
	for name := range out.Files {
		files[name] = path.Join(opts.FilesDir, name)
	}
	// The revision is taken from the form with references, so it never depends on values.
	refs, env := secretReferences(values)
	withRefs, err := fluentbit.Render(run, format, fluentbit.RenderOptions{Secrets: refs, Files: files, Storage: storage})
	if err != nil {
		return nil, fmt.Errorf("rendering the config: %w", err)
	}
	out.ConfigRevision = configRevision(format, withRefs, out.Files, profile)
	if !opts.InlineSecrets {
		out.Config, out.SecretEnv = withRefs, env
		for _, v := range env {
			out.SecretValues = append(out.SecretValues, v)
		}
		sort.Strings(out.SecretValues)
		return out, nil
	}
	inline := map[string]string{}
	for k, v := range values {
		inline[k] = v.value
		out.SecretValues = append(out.SecretValues, v.value)
	}
	sort.Strings(out.SecretValues)
	if out.Config, err = fluentbit.Render(run, format, fluentbit.RenderOptions{Secrets: inline, Files: files, Storage: storage}); err != nil {
		return nil, fmt.Errorf("rendering the config with secret values: %w", err)
	}
	out.SecretEnv = map[string]string{}
	return out, nil
}

// secretValue is a key's value and the secret it came from.
type secretValue struct {
	value  string
	secret *v1.PipelineSecret
}

// secretValues resolves the config's secret references: each key from the first secret in
// names that holds it. used lists the secrets that provided a value, in names order.
func secretValues(cfg *fluentbit.Config, names []string, secrets []*v1.PipelineSecret) (map[string]secretValue, []*v1.PipelineSecret, error) {
	byName := map[string]*v1.PipelineSecret{}
	for _, s := range secrets {
		byName[s.Name] = s
	}
	values := map[string]secretValue{}
	var missing []string
	usedNames := map[string]bool{}
	for _, ref := range cfg.References() {
		if ref.Kind != "secrets" {
			continue
		}
		if _, done := values[ref.Name]; done {
			continue
		}
		found := false
		for _, n := range names {
			s, ok := byName[n]
			if !ok {
				continue
			}
			if v, ok := s.Data[ref.Name]; ok {
				values[ref.Name] = secretValue{value: string(v), secret: s}
				usedNames[n] = true
				found = true
				break
			}
		}
		if !found && !slices.Contains(missing, ref.Name) {
			missing = append(missing, ref.Name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, nil, &MissingSecretsError{Keys: missing}
	}
	var used []*v1.PipelineSecret
	for _, n := range names {
		if usedNames[n] {
			used = append(used, byName[n])
		}
	}
	return values, used, nil
}

var envUnsafe = regexp.MustCompile(`[^A-Z0-9_]`)

// secretEnvName is the environment variable that carries a secret key's value: the key in
// upper case with other characters as '_'.
func secretEnvName(key string) string {
	return SecretEnvPrefix + envUnsafe.ReplaceAllString(strings.ToUpper(key), "_")
}

// secretReferences names a variable for each value. Keys that would share one (such as "a-b"
// and "a_b") each get a digest of the key appended.
func secretReferences(values map[string]secretValue) (refs, env map[string]string) {
	count := map[string]int{}
	for key := range values {
		count[secretEnvName(key)]++
	}
	refs, env = map[string]string{}, map[string]string{}
	for key, v := range values {
		name := secretEnvName(key)
		if count[name] > 1 {
			sum := sha256.Sum256([]byte(key))
			name += "_" + strings.ToUpper(hex.EncodeToString(sum[:4]))
		}
		refs[key] = "${" + name + "}"
		env[name] = v.value
	}
	return refs, env
}

// applyService turns on what the data plane needs of Fluent Bit's HTTP server (health, metrics
// and reload) and hot reload, keeping the config's own port and address when it sets them. The
// keys live in the first service section only, as a later one would override them.
func applyService(run, orig *fluentbit.Config, opts Options, hotReload bool) (listen string, port int32) {
	taken := map[int32]bool{}
	for _, p := range orig.Ports() {
		if p.Section == fluentbit.KindService {
			port, listen = p.Port, p.Address
			continue
		}
		if p.Protocol == "TCP" {
			taken[p.Port] = true
		}
	}
	if port == 0 {
		// The HTTP server is off or its port is an ${ENV} reference: take the config's port
		// when it is a number, else pick one no plugin listens on.
		if svc := orig.Service(); svc != nil {
			last := ""
			for _, p := range svc.Properties {
				if strings.EqualFold(p.Key, "http_port") {
					last = p.Value.Scalar
				}
				if strings.EqualFold(p.Key, "http_listen") {
					listen = p.Value.Scalar
				}
			}
			if n, err := strconv.ParseInt(strings.TrimSpace(last), 10, 32); err == nil && n > 0 && n < 65536 {
				port = int32(n)
			}
		}
	}
	if port == 0 {
		port = opts.HTTPPort
		if port == 0 {
			port = DefaultHTTPPort
			for taken[port] {
				port++
			}
		}
	}
	if listen == "" {
		listen = opts.HTTPListen
	}
	services := run.SectionsOf(fluentbit.KindService)
	if len(services) == 0 {
		services = []*fluentbit.Section{{Kind: fluentbit.KindService}}
		run.Sections = append(services, run.Sections...)
	}
	keys := []string{"http_server", "http_port", "http_listen", "hot_reload"}
	for _, later := range services[1:] {
		for _, k := range keys {
			later.Delete(k)
		}
	}
	svc := services[0]
	svc.Set("http_server", "on")
	svc.Set("http_port", strconv.Itoa(int(port)))
	if listen != "" {
		svc.Set("http_listen", listen)
	} else {
		svc.Delete("http_listen")
	}
	if hotReload {
		svc.Set("hot_reload", "on")
	}
	return listen, port
}

// addTap gives the pipeline a vivo_exporter output holding a small window of everything that
// passes, for its tap; a config with one of its own keeps it. It returns the exporter's port.
// It comes after applyWorkers: the exporter keeps one worker.
func addTap(run, orig *fluentbit.Config, opts Options, httpPort int32) int32 {
	taken := map[int32]bool{httpPort: true}
	for _, p := range orig.Ports() {
		if p.Section == fluentbit.KindOutput && strings.EqualFold(p.Plugin, "vivo_exporter") {
			return p.Port
		}
		if p.Protocol == "TCP" {
			taken[p.Port] = true
		}
	}
	port := opts.TapPort
	if port == 0 {
		port = DefaultTapPort
		for taken[port] {
			port++
		}
	}
	tap := &fluentbit.Section{Kind: fluentbit.KindOutput}
	tap.Set("name", "vivo_exporter")
	tap.Set("alias", TapAlias)
	tap.Set("match", "*")
	if opts.TapListen != "" {
		tap.Set("host", opts.TapListen)
	}
	tap.Set("port", strconv.Itoa(int(port)))
	// Each signal keeps about a megabyte: a window for people watching, not a buffer.
	tap.Set("stream_queue_size", "1M")
	run.Sections = append(run.Sections, tap)
	return port
}

// applyWorkers gives every output that sets no workers of its own the profile's number.
func applyWorkers(cfg *fluentbit.Config, profile *v1.ResourceProfileSpec) {
	if profile == nil || profile.CPUBufferWorkers <= 0 {
		return
	}
	for _, out := range cfg.Outputs() {
		if out.Property("workers") == nil {
			out.Set("workers", strconv.Itoa(int(profile.CPUBufferWorkers)))
		}
	}
}

// storageSettings maps a resource profile to Fluent Bit's buffering settings: filesystem
// buffering under storagePath when the profile has a buffer volume, memory otherwise.
func storageSettings(profile *v1.ResourceProfileSpec, storagePath string) *fluentbit.StorageSettings {
	if profile == nil {
		return nil
	}
	st := &fluentbit.StorageSettings{
		MaxChunksUp:            int(profile.StorageMaxChunksUp),
		BacklogMemLimit:        profile.StorageBacklogMemLimit,
		SyncFull:               &profile.StorageSyncFull,
		PauseOnChunksOverlimit: &profile.StorageMaxChunksPause,
		InputStorageType:       "memory",
	}
	if profile.StorageVolumeSize != nil && !profile.StorageVolumeSize.IsZero() && storagePath != "" {
		st.Path = storagePath
		st.InputStorageType = "filesystem"
	}
	return st
}

// ResolvePorts returns the ports a pipeline exposes: spec.ports, then the ports the config
// listens on (unless spec.disableAutoPorts) that spec.ports does not override, in config order.
func ResolvePorts(spec *v1.PipelineSpec, cfg *fluentbit.Config) []v1.PipelinePortStatus {
	type key struct {
		port     int32
		protocol corev1.Protocol
	}
	var out []v1.PipelinePortStatus
	explicit := map[key]int{}
	for _, p := range spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		svcPort := p.ServicePort
		if svcPort == 0 {
			svcPort = p.Port
		}
		explicit[key{p.Port, proto}] = len(out)
		out = append(out, v1.PipelinePortStatus{Port: p.Port, Protocol: proto, ServicePort: svcPort})
	}
	if spec.DisableAutoPorts || cfg == nil {
		return out
	}
	seen := map[key]bool{}
	for _, p := range cfg.Ports() {
		k := key{p.Port, corev1.Protocol(p.Protocol)}
		if seen[k] {
			continue
		}
		seen[k] = true
		if i, ok := explicit[k]; ok {
			out[i].Plugin = p.Plugin
			continue
		}
		out = append(out, v1.PipelinePortStatus{Port: p.Port, Protocol: k.protocol, ServicePort: p.Port, Plugin: p.Plugin})
	}
	return out
}

func configRevision(format fluentbit.Format, config []byte, files map[string]string, profile *v1.ResourceProfileSpec) string {
	return digest(func(h hash.Hash) {
		writeFields(h, "format", string(format), "config", string(config))
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			writeFields(h, "file", n, files[n])
		}
		if profile != nil {
			// Resources and volume size change the pods, not the config, but a new profile is a
			// new revision to roll out either way.
			b, _ := json.Marshal(struct {
				R corev1.ResourceRequirements
				V any
			}{profile.Resources, profile.StorageVolumeSize})
			writeFields(h, "profile", string(b))
		}
	})
}

func secretsRevision(used []*v1.PipelineSecret) string {
	if len(used) == 0 {
		return ""
	}
	return digest(func(h hash.Hash) {
		for _, s := range used {
			writeFields(h, s.Name, string(s.UID), s.ResourceVersion)
		}
	})
}

// writeFields writes length-prefixed fields, so that no two field lists hash alike.
func writeFields(h hash.Hash, fields ...string) {
	for _, f := range fields {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
}

func digest(write func(h hash.Hash)) string {
	h := sha256.New()
	write(h)
	return hex.EncodeToString(h.Sum(nil))[:16]
}
