package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// TestFaults kills every PostgreSQL connection and restarts PostgreSQL
// while writers and watchers run on two backends, and checks that the
// backends recover on their own, that no acknowledged write is lost, and
// that watches either keep delivering or end with an error a reflector
// acts on, so that after re-watching (or relisting) they hold the final state.
func TestFaults(t *testing.T) {
	const (
		writers         = 4
		progressWrites  = 10 // acknowledged writes per backend that show it works
		recoveryTimeout = 90 * time.Second
		deliveryTimeout = 2 * time.Minute
	)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	pg := startPrivatePostgres(t)
	opts := Options{CompactionInterval: -1} // every revision must stay a pod write
	stores := []storage.Interface{
		newPodStore(t, newBackendAt(t, pg.url(), opts)),
		newPodStore(t, newBackendAt(t, pg.url(), opts)),
	}
	start, err := stores[0].GetCurrentResourceVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	recorders := []*watchRecorder{
		startWatchRecorder(watchCtx, "instance-0", stores[0], int64(start), true),
		startWatchRecorder(watchCtx, "instance-1", stores[1], int64(start), true),
	}

	var acks [2]atomic.Int64 // acknowledged writes per backend
	stop := make(chan struct{})
	ws := make([]*faultWriter, writers)
	var wg sync.WaitGroup
	for i := range ws {
		// A short deadline: after a write of unknown outcome a writer waits
		// out its deadline before retrying (see faultWriter.do).
		ws[i] = &faultWriter{id: i, stores: stores, acks: &acks, model: map[string]podModel{}, timeout: writeDeadline}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws[i].run(ctx, stop)
		}()
	}
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopWriters()

	faults := []struct {
		name   string
		inject func(context.Context) error
	}{
		{"terminate every backend connection", func(ctx context.Context) error {
			var killed int
			err := pg.query(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE pid <> pg_backend_pid() AND backend_type = 'client backend') k`, &killed)
			if err != nil {
				return err
			}
			// At least each backend's LISTEN connection was open.
			if killed < 2 {
				return fmt.Errorf("terminated %d connections, want at least 2", killed)
			}
			t.Logf("terminated %d connections", killed)
			return nil
		}},
		{"restart with fast shutdown", restartWith(t, pg, "fast", stores[0])},
		{"restart with immediate shutdown (crash recovery)", restartWith(t, pg, "immediate", stores[1])},
		{"terminate every backend connection again", func(ctx context.Context) error {
			var killed int
			return pg.query(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE pid <> pg_backend_pid() AND backend_type = 'client backend') k`, &killed)
		}},
	}
	waitProgress(t, &acks, progressWrites, recoveryTimeout, ws, "before the first fault")
	for _, f := range faults {
		if err := f.inject(ctx); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		// The store recovers without a restart: both backends write again.
		waitProgress(t, &acks, progressWrites, recoveryTimeout, ws, "after "+f.name)
	}
	stopWriters()
	for _, w := range ws {
		if w.err != nil {
			t.Fatalf("writer %d: %v", w.id, w.err)
		}
	}

	final, err := stores[0].GetCurrentResourceVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	failures := 0
	for _, w := range ws {
		failures += w.failures
	}
	t.Logf("%d+%d writes acknowledged, %d failed attempts retried, revisions %d..%d",
		acks[0].Load(), acks[1].Load(), failures, start+1, final)
	if failures == 0 {
		t.Fatal("no write attempt failed: the faults did not reach the writers")
	}

	// Every acknowledged write is there: each key holds its last acknowledged
	// version, and acknowledged deletions stay deleted.
	want := checkAcknowledged(ctx, t, stores, ws)
	for i, r := range recorders {
		list, listRev, err := listPods(ctx, stores[i])
		if err != nil {
			t.Fatal(err)
		}
		if listRev != int64(final) {
			t.Fatalf("list of instance %d at revision %d, want %d", i, listRev, final)
		}
		if d := diffPods(want, list); d != "" {
			t.Errorf("list of instance %d differs from the acknowledged writes: %s", i, d)
		}
		r.waitFor(t, int64(final), deliveryTimeout)
		r.check(t, list)
		r.mu.Lock()
		t.Logf("watcher %s: %d events, %d relists, watch errors: %v", r.name, len(r.events), r.relists, r.errorsSeen)
		r.mu.Unlock()
	}
	stopWatching()
	for _, r := range recorders {
		<-r.done
	}
}

// restartWith stops the server in the given shutdown mode, leaves it down
// for a moment so that writes and reads fail, and starts it again. While it
// is down, it opens a watch with initial events on s, which cannot be
// served then: the watch must end with an error event, or deliver once the
// server is back.
func restartWith(t *testing.T, pg *privatePostgres, mode string, s storage.Interface) func(context.Context) error {
	return func(ctx context.Context) error {
		var before time.Time
		if err := pg.query(ctx, "SELECT pg_postmaster_start_time()", &before); err != nil {
			return err
		}
		if err := pg.stop(mode); err != nil {
			return err
		}
		w, err := s.Watch(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything})
		if err != nil {
			return fmt.Errorf("a watch call may fail while the server is down, but only as the upstream stores fail: %w", err)
		}
		outcome := make(chan error, 1)
		go func() {
			desc, err := watchOutcome(ctx, w, time.Minute)
			t.Logf("watch opened during the %s restart: %s", mode, desc)
			outcome <- err
		}()
		pause(ctx, 500*time.Millisecond)
		if err := pg.start(); err != nil {
			return err
		}
		if err := <-outcome; err != nil {
			return fmt.Errorf("watch opened while the server was down: %w", err)
		}
		var after time.Time
		if err := pg.query(ctx, "SELECT pg_postmaster_start_time()", &after); err != nil {
			return err
		}
		if !after.After(before) {
			return fmt.Errorf("server start time %v did not move past %v: the restart did not happen", after, before)
		}
		return nil
	}
}

// waitProgress waits until each backend acknowledged n more writes.
func waitProgress(t *testing.T, acks *[2]atomic.Int64, n int64, timeout time.Duration, ws []*faultWriter, when string) {
	t.Helper()
	base := [2]int64{acks[0].Load(), acks[1].Load()}
	deadline := time.Now().Add(timeout)
	for acks[0].Load()-base[0] < n || acks[1].Load()-base[1] < n {
		for _, w := range ws {
			// err is written before failed is set, so it is safe to read here.
			if w.failed.Load() {
				t.Fatalf("writer %d gave up %s: %v", w.id, when, w.err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("backends acknowledged %d and %d writes in %v %s, want %d each",
				acks[0].Load()-base[0], acks[1].Load()-base[1], timeout, when, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// podModel is what a writer knows a key holds.
type podModel struct {
	exists bool
	seq    int
}

// checkAcknowledged reads every writer's keys, alternating between stores: each must hold its
// last acknowledged version, and acknowledged deletions must stay deleted. It returns the pods
// that exist, by key.
func checkAcknowledged(ctx context.Context, t *testing.T, stores []storage.Interface, writers []*faultWriter) map[string]*example.Pod {
	t.Helper()
	want := map[string]*example.Pod{}
	i := 0
	for _, w := range writers {
		for key, m := range w.model {
			s := stores[i%len(stores)]
			i++
			got := &example.Pod{}
			err := s.Get(ctx, key, storage.GetOptions{}, got)
			switch {
			case !m.exists && !storage.IsNotFound(err):
				t.Errorf("%s: deletion was acknowledged, Get returns %v (err %v)", key, got.Labels, err)
			case m.exists && err != nil:
				t.Errorf("%s: seq %d was acknowledged, Get fails: %v", key, m.seq, err)
			case m.exists && got.Labels["seq"] != strconv.Itoa(m.seq):
				t.Errorf("%s: seq %d was acknowledged, Get returns seq %q", key, m.seq, got.Labels["seq"])
			}
			if m.exists {
				want[key] = got
			}
		}
	}
	return want
}

// faultWriter writes keys of its own (so it knows what each must hold),
// each created, updated twice and, for every other key, deleted; every step
// alternates between the backends and is retried until acknowledged.
type faultWriter struct {
	id       int
	stores   []storage.Interface
	acks     *[2]atomic.Int64
	model    map[string]podModel
	failures int
	err      error
	failed   atomic.Bool
	// timeout is each attempt's deadline (default 30s); an attempt that
	// returns later than timeout plus overrunSlack is recorded in overruns.
	timeout  time.Duration
	overruns []string
	// ns names the writer's keys' namespace (default writer-<id>).
	ns string
}

// overrunSlack is how late after its deadline a call may return: generous,
// since the machine is shared, but far below what a call that ignores its
// deadline takes (a lock held for the length of the fault, a TCP timeout).
const overrunSlack = 3 * time.Second

// notApplied tells errors after which the write surely did not happen.
func notApplied(err error) bool {
	return strings.Contains(err.Error(), "not applied") || errors.Is(err, ErrClosed)
}

func (w *faultWriter) run(ctx context.Context, stop <-chan struct{}) {
	ns := w.ns
	if ns == "" {
		ns = fmt.Sprintf("writer-%d", w.id)
	}
	for j := 0; ; j++ {
		select {
		case <-stop:
			return
		default:
		}
		name := fmt.Sprintf("pod-%d", j)
		steps := []watch.EventType{watch.Added, watch.Modified, watch.Modified}
		if j%2 == 0 {
			steps = append(steps, watch.Deleted)
		}
		for k, kind := range steps {
			if err := w.do(ctx, (j+k)%2, kind, ns, name, k); err != nil {
				w.err = err
				w.failed.Store(true)
				return
			}
		}
	}
}

// do retries one step until it is acknowledged. A retried create that finds
// the key, or a retried delete that does not, means an earlier attempt
// committed although it reported an error (the connection died at commit).
func (w *faultWriter) do(ctx context.Context, storeIdx int, kind watch.EventType, ns, name string, seq int) error {
	s := w.stores[storeIdx]
	key := podKey(ns, name)
	var lastErr error
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s not acknowledged in time; last error: %v", kind, key, lastErr)
		}
		timeout := w.timeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		started := time.Now()
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := w.attempt(actx, s, kind, ns, name, seq)
		cancel()
		if took := time.Since(started); took > timeout+overrunSlack {
			w.overruns = append(w.overruns, fmt.Sprintf("%s %s took %v with a %v deadline (err %v)", kind, key, took.Round(time.Millisecond), timeout, err))
		}
		switch {
		case err == nil:
		case attempt > 0 && kind == watch.Added && storage.IsExist(err):
			got := &example.Pod{}
			if gerr := s.Get(ctx, key, storage.GetOptions{}, got); gerr != nil {
				lastErr = gerr
				continue
			}
			if got.Labels["seq"] != strconv.Itoa(seq) {
				return fmt.Errorf("create of %s reported an error, then the key holds seq %q, not %d", key, got.Labels["seq"], seq)
			}
		case attempt > 0 && kind == watch.Deleted && storage.IsNotFound(err):
		case storage.IsExist(err) || storage.IsNotFound(err) || storage.IsConflict(err):
			// Only this writer writes these keys: the store lost or invented a write.
			return fmt.Errorf("%s %s (attempt %d): %w", kind, key, attempt, err)
		default:
			w.failures++
			lastErr = err
			if notApplied(err) {
				pause(ctx, 50*time.Millisecond)
			} else {
				// The write may still be on its way to the database; it is
				// fenced by its deadline (commit_writes refuses it after), so
				// retrying after the deadline cannot let an old attempt land
				// after a newer step. A second covers the clock estimate.
				pause(ctx, time.Until(started.Add(timeout))+time.Second)
			}
			continue
		}
		w.model[key] = podModel{exists: kind != watch.Deleted, seq: seq}
		w.acks[storeIdx].Add(1)
		return nil
	}
}

func (w *faultWriter) attempt(ctx context.Context, s storage.Interface, kind watch.EventType, ns, name string, seq int) error {
	key := podKey(ns, name)
	out := &example.Pod{}
	labels := map[string]string{"seq": strconv.Itoa(seq)}
	switch kind {
	case watch.Added:
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
		return s.Create(ctx, key, pod, out, 0)
	case watch.Modified:
		return s.GuaranteedUpdate(ctx, key, out, false, nil, func(in runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			p := in.(*example.Pod).DeepCopy()
			p.Labels = labels
			return p, nil, nil
		}, nil)
	default:
		return s.Delete(ctx, key, out, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
	}
}

// watchOutcome reads w for at most d and checks that it either delivers
// events or ends with an error event followed by the channel closing, as a
// reflector expects; a channel that closes without an error, or events after
// an error, are failures.
func watchOutcome(ctx context.Context, w watch.Interface, d time.Duration) (string, error) {
	defer w.Stop()
	timeout := time.After(d)
	var sawError *metav1.Status
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-timeout:
			if sawError != nil {
				return "", fmt.Errorf("channel still open %v after error event %q", d, sawError.Message)
			}
			return "", fmt.Errorf("neither an event nor an error in %v", d)
		case ev, ok := <-w.ResultChan():
			switch {
			case !ok && sawError == nil:
				return "", fmt.Errorf("channel closed without an error event")
			case !ok:
				if sawError.Code < 500 && sawError.Reason != metav1.StatusReasonExpired && sawError.Reason != metav1.StatusReasonGone {
					return "", fmt.Errorf("ended with %d %s: %s; a reflector would not retry a client error", sawError.Code, sawError.Reason, sawError.Message)
				}
				return fmt.Sprintf("ended with error %d %s: %s", sawError.Code, sawError.Reason, sawError.Message), nil
			case sawError != nil:
				return "", fmt.Errorf("%s event after error event %q", ev.Type, sawError.Message)
			case ev.Type == watch.Error:
				st, isStatus := ev.Object.(*metav1.Status)
				if !isStatus {
					return "", fmt.Errorf("error event carries %T, not a Status", ev.Object)
				}
				sawError = st
			default:
				// It delivers: the watch survived the outage.
				return fmt.Sprintf("delivered a %s event", ev.Type), nil
			}
		}
	}
}
