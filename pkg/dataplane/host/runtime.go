// Package host runs pipelines as fluent-bit processes on the agent's host (core instances of
// mode External): one supervised process per pipeline, its rendered config (secret values
// included, so readable by the agent's user only) in a directory of its own under the state
// directory. Processes outlive the agent: a restarted agent adopts the ones that still run, so
// an agent upgrade interrupts no pipeline and never starts one twice.
package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
	"github.com/calyptia/core-management-plane/pkg/dataplane/scrape"
)

// Options configures a Runtime.
type Options struct {
	// StateDir holds a directory per pipeline; created 0700 when missing.
	StateDir string
	// Binary is the fluent-bit executable (a path, or a name looked up in PATH).
	Binary string
	// AdvertiseAddress is the host name or address in the pipelines' endpoints (default: the
	// host name).
	AdvertiseAddress string
	// TapListen is where the pipelines' taps (vivo_exporter) listen (default 127.0.0.1: only
	// a management plane on the same host reads them).
	TapListen string
	// Notify is called with a pipeline's key whenever what runs it changed.
	Notify func(dataplane.Key)

	// Supervision settings; zero values take the defaults.
	CrashLimit     int           // consecutive crashes before Failed (5)
	BackoffMax     time.Duration // longest wait between restarts (1 min)
	StopGrace      time.Duration // SIGTERM to SIGKILL (10 s)
	HealthInterval time.Duration // between health checks (5 s)
}

// Runtime supervises the fluent-bit processes of one agent.
type Runtime struct {
	opts   Options
	binary string
	lock   *os.File

	ctx    context.Context
	mu     sync.Mutex
	pipes  map[dataplane.Key]*supervisor
	stopWG sync.WaitGroup
}

var _ dataplane.Runtime = &Runtime{}

// New takes the state directory (one agent at a time: it is locked) and adopts the processes an
// earlier agent left running. Supervision runs until ctx ends; the processes keep running then.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.CrashLimit <= 0 {
		opts.CrashLimit = 5
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Minute
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 10 * time.Second
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = 5 * time.Second
	}
	if opts.AdvertiseAddress == "" {
		opts.AdvertiseAddress, _ = os.Hostname()
	}
	if opts.TapListen == "" {
		opts.TapListen = "127.0.0.1"
	}
	if opts.Notify == nil {
		opts.Notify = func(dataplane.Key) {}
	}
	binary, err := exec.LookPath(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("finding fluent-bit: %w", err)
	}
	if binary, err = filepath.Abs(binary); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.StateDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the state lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("state directory %s is in use by another agent: %w", opts.StateDir, err)
	}
	r := &Runtime{opts: opts, binary: binary, lock: lock, ctx: ctx, pipes: map[dataplane.Key]*supervisor{}}
	if err := r.adoptAll(ctx); err != nil {
		lock.Close()
		return nil, err
	}
	go func() {
		<-ctx.Done()
		r.stopWG.Wait()
		lock.Close()
	}()
	return r, nil
}

// Binary is the fluent-bit the runtime runs.
func (r *Runtime) Binary() string { return r.binary }

// FluentBitVersion asks the binary for its version ("5.1.1").
func (r *Runtime) FluentBitVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, r.binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", r.binary, err)
	}
	if m := versionRE.FindStringSubmatch(string(out)); m != nil {
		return m[1], nil
	}
	return strings.TrimSpace(string(out)), nil
}

var versionRE = regexp.MustCompile(`Fluent Bit v?([0-9][^\s]*)`)

// dirOf is a pipeline's state directory.
func (r *Runtime) dirOf(key dataplane.Key) string {
	return filepath.Join(r.opts.StateDir, key.Namespace, key.Name)
}

// adoptAll starts supervising every pipeline directory, adopting processes still running.
func (r *Runtime) adoptAll(ctx context.Context) error {
	dirs, err := filepath.Glob(filepath.Join(r.opts.StateDir, "*", "*", stateFile))
	if err != nil {
		return err
	}
	for _, f := range dirs {
		st, err := readState(f)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Ignoring unreadable pipeline state", "file", f)
			continue
		}
		key := dataplane.Key{Namespace: st.Namespace, Name: st.Name}
		if r.dirOf(key) != filepath.Dir(f) {
			continue
		}
		s := r.supervise(key, st)
		if p, ok := adoptProcess(st.PID, st.StartTicks, r.binary, st.ConfigPath, s.logPath()); ok {
			p.revision, p.hotReload = st.Revision, st.HotReload
			s.proc = p
			s.written = st.Revision
			klog.FromContext(ctx).Info("Adopted running fluent-bit", "pipeline", key, "pid", p.pid, "revision", st.Revision)
		}
		s.start(ctx)
	}
	return nil
}

// supervise returns the pipeline's supervisor, making one (not yet running) if needed.
func (r *Runtime) supervise(key dataplane.Key, st *state) *supervisor {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.pipes[key]; ok {
		return s
	}
	if st == nil {
		st = &state{Namespace: key.Namespace, Name: key.Name}
	}
	s := &supervisor{rt: r, key: key, dir: r.dirOf(key), state: st, wake: make(chan struct{}, 1), done: make(chan struct{})}
	r.pipes[key] = s
	return s
}

// RenderOptions places the pipeline's files, buffers and HTTP server: the server listens on
// loopback on a port of the pipeline's own, kept across restarts, unless the config says where.
func (r *Runtime) RenderOptions(p *v1.Pipeline) (render.Options, error) {
	key := dataplane.Key{Namespace: p.Namespace, Name: p.Name}
	s := r.supervise(key, nil)
	port, tapPort, err := s.ports()
	if err != nil {
		return render.Options{}, err
	}
	return render.Options{
		FilesDir:      filepath.Join(s.dir, "files"),
		StoragePath:   filepath.Join(s.dir, "storage"),
		InlineSecrets: true,
		HTTPListen:    "127.0.0.1",
		HTTPPort:      port,
		TapListen:     r.opts.TapListen,
		TapPort:       tapPort,
	}, nil
}

// Apply hands the supervisor the pipeline's new desired state and returns what runs now; the
// supervisor acts on it in the background and notifies the agent of what follows.
func (r *Runtime) Apply(ctx context.Context, spec *dataplane.Spec) (*dataplane.Observation, error) {
	key := dataplane.Key{Namespace: spec.Pipeline.Namespace, Name: spec.Pipeline.Name}
	s := r.supervise(key, nil)
	s.start(r.ctx)
	want := &desired{
		revision:  spec.Rendered.Revision(),
		rendered:  spec.Rendered,
		uid:       string(spec.Pipeline.UID),
		run:       spec.Pipeline.Spec.Replicas == nil || *spec.Pipeline.Spec.Replicas > 0,
		configDir: s.dir,
	}
	s.setWant(want)
	return s.observe(r.opts.AdvertiseAddress), nil
}

// Remove stops the pipeline's process and deletes its directory.
func (r *Runtime) Remove(ctx context.Context, key dataplane.Key) (bool, error) {
	r.mu.Lock()
	s, ok := r.pipes[key]
	r.mu.Unlock()
	if !ok {
		if err := os.RemoveAll(r.dirOf(key)); err != nil {
			return false, fmt.Errorf("removing %s: %w", r.dirOf(key), err)
		}
		return true, nil
	}
	s.start(r.ctx)
	s.remove()
	select {
	case <-s.done:
	default:
		return false, nil
	}
	r.mu.Lock()
	if r.pipes[key] == s {
		delete(r.pipes, key)
	}
	r.mu.Unlock()
	return true, s.removeErr
}

// Pipelines lists the pipelines that have a directory.
func (r *Runtime) Pipelines() []dataplane.Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]dataplane.Key, 0, len(r.pipes))
	for k := range r.pipes {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// MetricsTargets lists the running processes' HTTP servers.
func (r *Runtime) MetricsTargets() []scrape.Target {
	r.mu.Lock()
	pipes := make([]*supervisor, 0, len(r.pipes))
	for _, s := range r.pipes {
		pipes = append(pipes, s)
	}
	r.mu.Unlock()
	var out []scrape.Target
	for _, s := range pipes {
		s.mu.Lock()
		if s.proc != nil && !s.proc.done() && s.want != nil {
			out = append(out, scrape.Target{Pipeline: s.key, Pod: r.opts.AdvertiseAddress, Address: httpAddress(s.want.rendered)})
		}
		s.mu.Unlock()
	}
	return out
}

// state is what a pipeline directory records of its process, for a later agent to adopt it.
type state struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
	HTTPPort   int32  `json:"httpPort,omitempty"`
	TapPort    int32  `json:"tapPort,omitempty"`
	PID        int    `json:"pid,omitempty"`
	StartTicks uint64 `json:"startTicks,omitempty"`
	Revision   string `json:"revision,omitempty"`
	HotReload  bool   `json:"hotReload,omitempty"`
	ConfigPath string `json:"configPath,omitempty"`
}

const stateFile = "state.json"

func readState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	if st.Namespace == "" || st.Name == "" {
		return nil, fmt.Errorf("%s names no pipeline", path)
	}
	return &st, nil
}

// writeFileAtomic replaces path with data, so that a reading Fluent Bit never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// freePort asks the kernel for a TCP port free on loopback.
func freePort() (int32, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return int32(addr.Port), nil
}
