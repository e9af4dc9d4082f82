package host

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/calyptia/core-management-plane/pkg/dataplane"
	"github.com/calyptia/core-management-plane/pkg/dataplane/fbapi"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
)

// desired is what should run for a pipeline.
type desired struct {
	revision  string
	rendered  *render.Pipeline
	uid       string
	run       bool // replicas > 0
	configDir string
}

func (d *desired) configPath() string {
	name := "fluent-bit.conf"
	if d.rendered.Format == "yaml" {
		name = "fluent-bit.yaml"
	}
	return filepath.Join(d.configDir, name)
}

// supervisor runs one pipeline's process: starts it, restarts it with backoff when it crashes,
// reloads or restarts it on new configs, checks its health, and stops it.
type supervisor struct {
	rt   *Runtime
	key  dataplane.Key
	dir  string
	wake chan struct{}
	// done is closed once the pipeline is removed.
	done      chan struct{}
	startOnce sync.Once

	mu        sync.Mutex
	state     *state
	want      *desired
	removing  bool
	removeErr error
	proc      *process
	healthy   bool
	crashes   int
	nextStart time.Time
	failure   *dataplane.Failure
	events    []dataplane.Event
	// written is the revision whose files are on disk.
	written    string
	lastHealth time.Time
}

func (s *supervisor) logPath() string { return filepath.Join(s.dir, "fluent-bit.log") }

func (s *supervisor) start(ctx context.Context) {
	s.startOnce.Do(func() {
		s.rt.stopWG.Add(1)
		go func() {
			defer s.rt.stopWG.Done()
			s.loop(ctx)
		}()
	})
}

func (s *supervisor) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *supervisor) setWant(d *desired) {
	s.mu.Lock()
	if s.want == nil || s.want.revision != d.revision || s.want.run != d.run {
		// A new config deserves a prompt start, whatever the last one did.
		s.crashes, s.failure, s.nextStart = 0, nil, time.Time{}
	}
	s.want = d
	s.mu.Unlock()
	s.poke()
}

func (s *supervisor) remove() {
	s.mu.Lock()
	s.removing = true
	s.mu.Unlock()
	s.poke()
}

func (s *supervisor) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if s.step(ctx) {
			close(s.done)
			return
		}
		var exited <-chan struct{}
		s.mu.Lock()
		if s.proc != nil {
			exited = s.proc.exited
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			// The agent stops; its pipelines do not.
			return
		case <-s.wake:
		case <-tick.C:
		case <-exited:
		}
	}
}

func (s *supervisor) event(typ, reason, format string, args ...any) {
	s.events = append(s.events, dataplane.Event{Type: typ, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// step does what the pipeline needs now; it reports true once the pipeline is removed.
func (s *supervisor) step(ctx context.Context) bool {
	logger := klog.FromContext(ctx).WithValues("pipeline", s.key)
	s.mu.Lock()
	want, removing, proc := s.want, s.removing, s.proc
	s.mu.Unlock()
	changed := false
	defer func() {
		if changed {
			s.rt.opts.Notify(s.key)
		}
	}()

	if proc != nil && proc.done() {
		s.ended(proc, want)
		proc, changed = nil, true
	}
	if removing {
		if proc != nil {
			proc.stop(s.rt.opts.StopGrace)
			logger.Info("Stopped fluent-bit", "pid", proc.pid)
		}
		err := os.RemoveAll(s.dir)
		s.mu.Lock()
		s.proc, s.removeErr = nil, err
		s.mu.Unlock()
		changed = true
		return true
	}
	if want == nil {
		return false // adopted: wait for the agent to say what should run
	}
	if !want.run {
		if proc != nil {
			proc.stop(s.rt.opts.StopGrace)
			s.mu.Lock()
			s.proc, s.healthy, s.failure = nil, false, nil
			s.event(corev1.EventTypeNormal, "Stopped", "Stopped fluent-bit (pid %d): the pipeline has 0 replicas", proc.pid)
			s.mu.Unlock()
			changed = true
		}
		return false
	}
	if s.written != want.revision {
		if err := s.write(want); err != nil {
			s.mu.Lock()
			s.failure = &dataplane.Failure{Reason: "WriteFailed", Message: err.Error()}
			s.mu.Unlock()
			changed = true
			return false
		}
		s.written = want.revision
	}
	switch {
	case proc == nil:
		if !time.Now().Before(s.nextStart) {
			s.launch(ctx, want, "Started")
			changed = true
		}
	case proc.revision != want.revision:
		if want.rendered.HotReload && proc.hotReload && proc.configPath() == want.configPath() && s.reload(ctx, proc, want) {
			changed = true
			break
		}
		proc.stop(s.rt.opts.StopGrace)
		s.mu.Lock()
		s.proc, s.healthy = nil, false
		s.mu.Unlock()
		s.launch(ctx, want, "Restarted")
		changed = true
	}
	if s.checkHealth(ctx, want) {
		changed = true
	}
	return false
}

// launch starts fluent-bit for want.
func (s *supervisor) launch(ctx context.Context, want *desired, reason string) {
	p, err := startProcess(s.rt.binary, want.configPath(), s.dir, s.logPath())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.crashes++
		s.nextStart = time.Now().Add(s.backoff())
		s.failure = &dataplane.Failure{Reason: "StartFailed", Message: err.Error()}
		s.event(corev1.EventTypeWarning, "StartFailed", "%v", err)
		return
	}
	p.revision, p.hotReload, p.config = want.revision, want.rendered.HotReload, want.configPath()
	s.proc, s.healthy, s.lastHealth = p, false, time.Time{}
	s.state.PID, s.state.StartTicks, s.state.Revision, s.state.HotReload, s.state.ConfigPath, s.state.UID =
		p.pid, p.startTicks, want.revision, p.hotReload, p.config, want.uid
	if err := s.persist(); err != nil {
		klog.FromContext(ctx).Error(err, "Recording the process; a restarted agent will not adopt it", "pipeline", s.key)
	}
	s.event(corev1.EventTypeNormal, reason, "%s fluent-bit (pid %d) with config revision %s", reason, p.pid, want.revision)
	klog.FromContext(ctx).Info(reason+" fluent-bit", "pipeline", s.key, "pid", p.pid, "revision", want.revision)
}

// ended accounts for a process that exited: a crash unless the agent stopped it.
func (s *supervisor) ended(p *process, want *desired) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc, s.healthy = nil, false
	if p.stopping {
		return
	}
	uptime := time.Since(p.started).Round(time.Second)
	if uptime > time.Minute {
		s.crashes = 0 // it ran fine for a while: this is a new problem, not a loop
	}
	s.crashes++
	wait := s.backoff()
	s.nextStart = time.Now().Add(wait)
	var secrets []string
	if want != nil {
		secrets = want.rendered.SecretValues
	}
	msg := fmt.Sprintf("fluent-bit (pid %d) %s after %s", p.pid, p.exitMsg, uptime)
	if lines := lastLines(s.logPath(), p.logOffset, secrets); len(lines) > 0 {
		msg += "; last log lines: " + strings.Join(lines, " | ")
	}
	s.event(corev1.EventTypeWarning, "Crashed", "%s; restarting in %s", msg, wait)
	if s.crashes >= s.rt.opts.CrashLimit {
		s.failure = &dataplane.Failure{Reason: "CrashLoopBackOff", Message: fmt.Sprintf(
			"%s; it exited %d times in a row, restarting in %s", msg, s.crashes, wait)}
	}
}

func (s *supervisor) backoff() time.Duration {
	d := time.Second << min(s.crashes-1, 10)
	return min(d, s.rt.opts.BackoffMax)
}

// reload asks the running process to hot-reload want's config, already on disk.
func (s *supervisor) reload(ctx context.Context, p *process, want *desired) bool {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	n, err := fbapi.New(httpAddress(want.rendered)).Reload(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.event(corev1.EventTypeWarning, "ReloadFailed", "Hot reload of config revision %s failed, restarting instead: %v", want.revision, err)
		return false
	}
	p.revision = want.revision
	s.state.Revision = want.revision
	if err := s.persist(); err != nil {
		klog.FromContext(ctx).Error(err, "Recording the reload", "pipeline", s.key)
	}
	s.event(corev1.EventTypeNormal, "Reloaded", "Hot-reloaded config revision %s (pid %d, reload %d)", want.revision, p.pid, n)
	klog.FromContext(ctx).Info("Hot-reloaded fluent-bit", "pipeline", s.key, "pid", p.pid, "revision", want.revision, "reloads", n)
	return true
}

// checkHealth asks the running process's /api/v2/health when due; it reports a change.
func (s *supervisor) checkHealth(ctx context.Context, want *desired) bool {
	s.mu.Lock()
	p := s.proc
	due := p != nil && time.Since(s.lastHealth) >= s.healthEvery()
	s.mu.Unlock()
	if !due {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ok, _ := fbapi.New(httpAddress(want.rendered)).Healthy(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastHealth = time.Now()
	changed := ok != s.healthy
	s.healthy = ok
	if ok && s.failure != nil && time.Since(p.started) > 30*time.Second {
		s.crashes, s.failure, changed = 0, nil, true
	}
	return changed
}

// healthEvery checks often until the process is first healthy, then at the set interval.
func (s *supervisor) healthEvery() time.Duration {
	if !s.healthy {
		return 500 * time.Millisecond
	}
	return s.rt.opts.HealthInterval
}

// write puts want's config and files on disk, readable by the agent's user only: the config
// holds secret values.
func (s *supervisor) write(want *desired) error {
	filesDir := filepath.Join(s.dir, "files")
	for _, d := range []string{s.dir, filesDir, filepath.Join(s.dir, "storage")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	existing, _ := os.ReadDir(filesDir)
	for _, e := range existing {
		if _, ok := want.rendered.Files[e.Name()]; !ok {
			_ = os.Remove(filepath.Join(filesDir, e.Name()))
		}
	}
	for name, content := range want.rendered.Files {
		if err := writeFileAtomic(filepath.Join(filesDir, name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("writing file %s: %w", name, err)
		}
	}
	if err := writeFileAtomic(want.configPath(), want.rendered.Config, 0o600); err != nil {
		return fmt.Errorf("writing the config: %w", err)
	}
	return nil
}

// ports are the pipeline's own HTTP server and tap ports, chosen once and kept.
func (s *supervisor) ports() (http, tap int32, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.HTTPPort != 0 && s.state.TapPort != 0 {
		return s.state.HTTPPort, s.state.TapPort, nil
	}
	for _, p := range []*int32{&s.state.HTTPPort, &s.state.TapPort} {
		if *p == 0 {
			if *p, err = freePort(); err != nil {
				return 0, 0, fmt.Errorf("choosing a port: %w", err)
			}
		}
	}
	return s.state.HTTPPort, s.state.TapPort, s.persist()
}

// persist writes the state file; s.mu must be held.
func (s *supervisor) persist() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(s.state)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, stateFile), b, 0o600)
}

// observe reports what runs now and the events since the last call.
func (s *supervisor) observe(advertise string) *dataplane.Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &dataplane.Observation{Failure: s.failure, Events: s.events}
	s.events = nil
	want := s.want
	if want.run {
		o.Desired = 1
	}
	if p := s.proc; p != nil && !p.done() {
		o.Replicas = 1
		if s.healthy {
			o.ReadyReplicas = 1
		}
		if p.revision == want.revision {
			o.UpdatedReplicas = 1
		}
	} else if want.run && !s.nextStart.IsZero() && time.Now().Before(s.nextStart) {
		o.Waiting = "fluent-bit restarts in " + time.Until(s.nextStart).Round(time.Second).String()
	}
	o.RolledOut = o.Replicas == o.UpdatedReplicas
	for _, port := range want.rendered.Ports {
		port.Endpoint = net.JoinHostPort(advertise, strconv.Itoa(int(port.Port)))
		o.Ports = append(o.Ports, port)
	}
	if o.ReadyReplicas > 0 {
		host := s.rt.opts.TapListen
		if host == "0.0.0.0" || host == "::" {
			host = advertise
		}
		o.TapEndpoint = net.JoinHostPort(host, strconv.Itoa(int(want.rendered.TapPort)))
	}
	return o
}

// httpAddress is where the agent reaches the pipeline's HTTP server.
func httpAddress(r *render.Pipeline) string {
	host := r.HTTPListen
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(int(r.HTTPPort)))
}

// lastLines returns the last error lines (or last lines) of a run's output, secret values
// redacted: they go into status and Events.
func lastLines(path string, offset int64, secrets []string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	if offset > fi.Size() {
		offset = 0 // rotated
	}
	offset = max(offset, fi.Size()-64<<10)
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	var all, errs []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "[") { // Fluent Bit's banner and blank lines
			continue
		}
		all = append(all, l)
		if strings.Contains(l, "[error]") {
			errs = append(errs, l)
		}
	}
	pick := all
	if len(errs) > 0 {
		pick = errs
	}
	// Fluent Bit states the cause first and its consequences after: five lines keep both.
	if len(pick) > 5 {
		pick = pick[len(pick)-5:]
	}
	out := make([]string, len(pick))
	for i, l := range pick {
		for _, v := range secrets {
			if len(v) >= 3 {
				l = strings.ReplaceAll(l, v, "[redacted]")
			}
		}
		out[i] = l
	}
	return out
}
