package host

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/calyptia/core-management-plane/internal/fluentbittest"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane"
	"github.com/calyptia/core-management-plane/pkg/dataplane/fbapi"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
)

const dummyConfig = `[INPUT]
    name  dummy
    tag   test
    dummy {"token":"{{ secrets.token }}"}

[OUTPUT]
    name  null
    match *
`

type fixture struct {
	t      *testing.T
	dir    string
	binary string
	rt     *Runtime
	cancel context.CancelFunc
	notes  chan dataplane.Key
}

// newFixture runs a Runtime on dir until the test ends (or stop is called).
func newFixture(t *testing.T, dir string) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: dir, binary: fluentbittest.Binary(t), notes: make(chan dataplane.Key, 1000)}
	f.start()
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rt, err := New(ctx, Options{
		StateDir: f.dir, Binary: f.binary, AdvertiseAddress: "agent.example",
		Notify:     func(k dataplane.Key) { f.notes <- k },
		CrashLimit: 2, BackoffMax: 2 * time.Second, StopGrace: 5 * time.Second, HealthInterval: time.Second,
	})
	if err != nil {
		cancel()
		f.t.Fatalf("New: %v", err)
	}
	f.rt, f.cancel = rt, cancel
	f.t.Cleanup(f.stop)
}

// stop ends supervision, as an agent that exits does; processes keep running.
func (f *fixture) stop() {
	f.cancel()
	f.rt.stopWG.Wait()
}

func testPipeline(name, config string, mod ...func(*v1.Pipeline)) *v1.Pipeline {
	p := &v1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1},
		Spec: v1.PipelineSpec{
			CoreInstance: "edge", Config: config, ConfigFormat: v1.ConfigFormatClassic, Kind: v1.PipelineKindDeployment,
			Replicas: ptr.To[int32](1), Secrets: []string{"creds"}, DeploymentStrategy: v1.DeploymentStrategyHotReload,
		},
	}
	for _, m := range mod {
		m(p)
	}
	return p
}

var creds = &v1.PipelineSecret{ObjectMeta: metav1.ObjectMeta{Name: "creds", UID: "s", ResourceVersion: "1"},
	Data: map[string][]byte{"token": []byte("tok-3f9a-secret")}}

// apply renders p the way the agent does and hands it to the runtime.
func (f *fixture) apply(p *v1.Pipeline) (*dataplane.Spec, *dataplane.Observation) {
	f.t.Helper()
	opts, err := f.rt.RenderOptions(p)
	if err != nil {
		f.t.Fatalf("RenderOptions: %v", err)
	}
	r, err := render.Render(p, nil, []*v1.PipelineSecret{creds}, opts)
	if err != nil {
		f.t.Fatalf("Render: %v", err)
	}
	spec := &dataplane.Spec{Pipeline: p, Rendered: r}
	obs, err := f.rt.Apply(context.Background(), spec)
	if err != nil {
		f.t.Fatalf("Apply: %v", err)
	}
	return spec, obs
}

// waitFor re-applies spec until cond holds for the observation, collecting events.
func (f *fixture) waitFor(spec *dataplane.Spec, what string, cond func(*dataplane.Observation) bool) (*dataplane.Observation, []dataplane.Event) {
	f.t.Helper()
	var events []dataplane.Event
	deadline := time.After(45 * time.Second)
	for {
		obs, err := f.rt.Apply(context.Background(), spec)
		if err != nil {
			f.t.Fatalf("Apply: %v", err)
		}
		events = append(events, obs.Events...)
		if cond(obs) {
			return obs, events
		}
		select {
		case <-f.notes:
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			f.t.Fatalf("timed out waiting for %s; last observation %+v (failure %v), events %+v", what, obs, obs.Failure, events)
		}
	}
}

func ready(o *dataplane.Observation) bool {
	return o.ReadyReplicas == 1 && o.UpdatedReplicas == 1 && o.RolledOut
}

func (f *fixture) state(name string) *state {
	f.t.Helper()
	st, err := readState(filepath.Join(f.dir, "ns", name, stateFile))
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// processesFor counts the live processes running a config file.
func processesFor(t *testing.T, config string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), config) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid); err == nil && running(pid, 0) {
			n++
		}
	}
	return n
}

func hasEvent(events []dataplane.Event, reason string) bool {
	for _, e := range events {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

func TestHostRunsAndHotReloads(t *testing.T) {
	f := newFixture(t, t.TempDir())
	p := testPipeline("reload", dummyConfig)
	spec, _ := f.apply(p)
	obs, events := f.waitFor(spec, "a healthy fluent-bit", ready)
	if !hasEvent(events, "Started") {
		t.Errorf("no Started event: %+v", events)
	}
	if obs.Desired != 1 || obs.Replicas != 1 {
		t.Errorf("observation %+v, want 1 desired, 1 running", obs)
	}
	st := f.state("reload")
	client := fbapi.New(httpAddress(spec.Rendered))
	ctx := context.Background()
	if ok, err := client.Healthy(ctx); !ok {
		t.Fatalf("/api/v2/health: ok=%v err=%v", ok, err)
	}
	before, err := client.ReloadCount(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The config holds the secret's value (host mode), readable by the agent's user only.
	cfgFile := filepath.Join(f.dir, "ns", "reload", "fluent-bit.conf")
	fi, err := os.Stat(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(cfgFile); !strings.Contains(string(b), "tok-3f9a-secret") {
		t.Errorf("config lacks the secret value:\n%s", b)
	}

	p2 := testPipeline("reload", strings.Replace(dummyConfig, "tag   test", "tag   edited", 1))
	spec2, _ := f.apply(p2)
	_, events = f.waitFor(spec2, "the new revision", ready)
	if !hasEvent(events, "Reloaded") {
		t.Errorf("no Reloaded event: %+v", events)
	}
	if got := f.state("reload"); got.PID != st.PID || got.Revision != spec2.Rendered.Revision() {
		t.Errorf("after a hot reload: pid %d (was %d), revision %s (want %s)", got.PID, st.PID, got.Revision, spec2.Rendered.Revision())
	}
	after, err := client.ReloadCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("hot_reload_count %d after the edit, was %d", after, before)
	}

	// Scaled to zero, the process stops; back to one, it starts again.
	p3 := p2.DeepCopy()
	p3.Spec.Replicas = ptr.To[int32](0)
	spec3, _ := f.apply(p3)
	f.waitFor(spec3, "no process", func(o *dataplane.Observation) bool { return o.Replicas == 0 && o.Desired == 0 })
	if n := processesFor(t, cfgFile); n != 0 {
		t.Errorf("%d processes run a pipeline with 0 replicas", n)
	}

	done, err := f.rt.Remove(ctx, dataplane.Key{Namespace: "ns", Name: "reload"})
	for err == nil && !done {
		time.Sleep(100 * time.Millisecond)
		done, err = f.rt.Remove(ctx, dataplane.Key{Namespace: "ns", Name: "reload"})
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "ns", "reload")); !os.IsNotExist(err) {
		t.Errorf("pipeline directory still there after Remove: %v", err)
	}
	if keys := f.rt.Pipelines(); len(keys) != 0 {
		t.Errorf("Pipelines() = %v after Remove", keys)
	}
}

func TestHostRestartStrategyRestarts(t *testing.T) {
	f := newFixture(t, t.TempDir())
	p := testPipeline("restart", dummyConfig, func(p *v1.Pipeline) { p.Spec.DeploymentStrategy = v1.DeploymentStrategyRollingUpdate })
	spec, _ := f.apply(p)
	f.waitFor(spec, "a healthy fluent-bit", ready)
	first := f.state("restart").PID

	p2 := p.DeepCopy()
	p2.Spec.Config = strings.Replace(dummyConfig, "tag   test", "tag   edited", 1)
	spec2, _ := f.apply(p2)
	_, events := f.waitFor(spec2, "the new revision", ready)
	if got := f.state("restart").PID; got == first {
		t.Errorf("pid %d unchanged: a RollingUpdate pipeline restarts on a new config", got)
	}
	if !hasEvent(events, "Restarted") {
		t.Errorf("no Restarted event: %+v", events)
	}
	cfgFile := filepath.Join(f.dir, "ns", "restart", "fluent-bit.conf")
	if n := processesFor(t, cfgFile); n != 1 {
		t.Errorf("%d processes run the pipeline, want 1", n)
	}
	removeAll(t, f)
}

func TestHostCrashLoopFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	config := fmt.Sprintf("[INPUT]\n    name   tcp\n    listen 127.0.0.1\n    port   %d\n    tag    {{ secrets.token }}\n\n[OUTPUT]\n    name  null\n    match *\n", port)
	f := newFixture(t, t.TempDir())
	spec, _ := f.apply(testPipeline("taken", config))
	obs, events := f.waitFor(spec, "Failed", func(o *dataplane.Observation) bool { return o.Failure != nil })
	if obs.Failure.Reason != "CrashLoopBackOff" {
		t.Errorf("failure reason %q, want CrashLoopBackOff", obs.Failure.Reason)
	}
	if want := fmt.Sprintf("could not bind address 127.0.0.1:%d", port); !strings.Contains(obs.Failure.Message, want) {
		t.Errorf("failure message %q does not say %q", obs.Failure.Message, want)
	}
	if !hasEvent(events, "Crashed") {
		t.Errorf("no Crashed event: %+v", events)
	}
	for _, e := range events {
		if strings.Contains(e.Message, "tok-3f9a-secret") {
			t.Errorf("event shows a secret value: %s", e.Message)
		}
	}
	if obs.ReadyReplicas != 0 {
		t.Errorf("a crashing pipeline has %d ready replicas", obs.ReadyReplicas)
	}

	// Fixing the config clears the failure at once, without waiting for the backoff.
	l.Close()
	spec2, _ := f.apply(testPipeline("taken", strings.Replace(config, "tag    {{ secrets.token }}", "tag    fixed", 1)))
	f.waitFor(spec2, "recovery", func(o *dataplane.Observation) bool { return ready(o) && o.Failure == nil })
	removeAll(t, f)
}

func TestHostAdoptsAfterAgentRestart(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, dir)
	p := testPipeline("adopt", dummyConfig)
	spec, _ := f.apply(p)
	f.waitFor(spec, "a healthy fluent-bit", ready)
	pid := f.state("adopt").PID
	cfgFile := filepath.Join(dir, "ns", "adopt", "fluent-bit.conf")

	// Another agent on the same state directory is refused while this one runs.
	if _, err := New(context.Background(), Options{StateDir: dir, Binary: f.binary}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second agent on one state directory: err = %v, want in use", err)
	}

	f.stop()
	if !running(pid, 0) {
		t.Fatalf("fluent-bit %d ended with the agent; pipelines must outlive it", pid)
	}
	f.start()
	if keys := f.rt.Pipelines(); len(keys) != 1 || keys[0].Name != "adopt" {
		t.Errorf("Pipelines() after restart = %v", keys)
	}
	spec, _ = f.apply(p)
	f.waitFor(spec, "the adopted process healthy", ready)
	if got := f.state("adopt").PID; got != pid {
		t.Errorf("pid %d after agent restart, want the adopted %d", got, pid)
	}
	if n := processesFor(t, cfgFile); n != 1 {
		t.Errorf("%d processes run the pipeline after an agent restart, want 1", n)
	}

	// A new config reaches the adopted process by hot reload.
	p2 := testPipeline("adopt", strings.Replace(dummyConfig, "tag   test", "tag   edited", 1))
	spec2, _ := f.apply(p2)
	_, events := f.waitFor(spec2, "the new revision", ready)
	if got := f.state("adopt").PID; got != pid || !hasEvent(events, "Reloaded") {
		t.Errorf("after reloading an adopted process: pid %d (want %d), events %+v", got, pid, events)
	}

	// A process that died while no agent ran is started again, once.
	f.stop()
	signalGroup(pid, 9)
	for running(pid, 0) {
		time.Sleep(50 * time.Millisecond)
	}
	f.start()
	spec2, _ = f.apply(p2)
	f.waitFor(spec2, "a new process", ready)
	if got := f.state("adopt").PID; got == pid {
		t.Errorf("pid %d is the killed process", got)
	}
	if n := processesFor(t, cfgFile); n != 1 {
		t.Errorf("%d processes run the pipeline, want 1", n)
	}
	removeAll(t, f)
}

func removeAll(t *testing.T, f *fixture) {
	t.Helper()
	var wg sync.WaitGroup
	for _, k := range f.rt.Pipelines() {
		wg.Go(func() {
			for {
				done, err := f.rt.Remove(context.Background(), k)
				if err != nil {
					t.Errorf("Remove %s: %v", k, err)
					return
				}
				if done {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
}

func TestLastLinesRedactsSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log := "Fluent Bit v5.1.1\n* banner\n[2026/01/01] [ info] starting\n[2026/01/01] [error] auth failed for hunter22\n[2026/01/01] [ warn] retry\n"
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got := lastLines(path, 0, []string{"hunter22", "ab"})
	if len(got) != 1 || got[0] != "[2026/01/01] [error] auth failed for [redacted]" {
		t.Errorf("lastLines = %q", got)
	}
	if err := os.WriteFile(path, []byte("[a] [ info] one\n[b] [ info] two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := lastLines(path, 0, nil); len(got) != 2 || got[1] != "[b] [ info] two" {
		t.Errorf("without errors, lastLines = %q, want the last lines", got)
	}
}

func TestParseStat(t *testing.T) {
	stat := []byte("4242 (fluent-bit (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 9 0 123456 1000 10 18446744073709551615")
	state, ticks, err := parseStat(stat)
	if err != nil || state != "S" || ticks != 123456 {
		t.Errorf("parseStat = %q, %d, %v; want S, 123456", state, ticks, err)
	}
	if _, _, err := parseStat([]byte("garbage")); err == nil {
		t.Error("parseStat accepted garbage")
	}
}
