package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apiserver/pkg/storage"
)

// A fault cluster is two replicas of the store (two backends, as two
// cloud-api processes would run) on one database, each through a
// faultProxy of its own, with compaction running throughout, writers that
// alternate between the replicas and a reflector-like watcher on each. A
// scenario injects a fault and heals it; the cluster then checks what must
// hold after any fault: no acknowledged write lost, every watch delivered
// every committed pod write once and in order (or got 410 and relisted
// across it), and no call outlived its deadline by more than overrunSlack.

// faultTestOptions are short timeouts, so that faults show within seconds,
// and a compaction every two seconds, so that watches cut off for longer
// fall behind compaction and must relist.
func faultTestOptions() Options {
	return Options{
		CompactionInterval:     2 * time.Second,
		PollInterval:           250 * time.Millisecond,
		ProgressNotifyInterval: time.Second,
		RequestTimeout:         5 * time.Second,
		CommitTimeout:          3 * time.Second,
		LockTimeout:            2 * time.Second,
		PollTimeout:            2 * time.Second,
		ReadyMaxPollAge:        4 * time.Second,
	}
}

// writeDeadline is the deadline of each write attempt in fault scenarios.
const writeDeadline = 3 * time.Second

type replica struct {
	name  string
	proxy *faultProxy
	b     *Backend
	s     storage.Interface
}

type faultCluster struct {
	t        *testing.T
	dbURL    string
	replicas []*replica

	mu sync.Mutex
	// podWrites are the pod writes the replicas committed, by revision
	// (from the committer's hook), whether or not their callers heard.
	podWrites map[int64]string

	startRev  int64
	acks      [2]atomic.Int64
	writers   []*faultWriter
	recorders []*watchRecorder
	stop      chan struct{}
	wg        sync.WaitGroup
	stopWatch context.CancelFunc
}

func newFaultCluster(t *testing.T, dbURL string, opts Options) *faultCluster {
	t.Helper()
	c := &faultCluster{t: t, dbURL: dbURL, podWrites: map[int64]string{}}
	for i := range 2 {
		r := &replica{name: fmt.Sprintf("replica-%d", i)}
		var url string
		r.proxy, url = startFaultProxy(t, dbURL)
		o := opts
		o.hooks = &testHooks{onCommit: c.recordCommit}
		r.b = newBackendAt(t, url, o)
		r.s = newPodStore(t, r.b)
		c.replicas = append(c.replicas, r)
	}
	return c
}

func (c *faultCluster) recordCommit(key []byte, rev int64) {
	if !strings.HasPrefix(string(key), "/pods/") {
		return
	}
	c.mu.Lock()
	c.podWrites[rev] = string(key)
	c.mu.Unlock()
}

func (c *faultCluster) stores() []storage.Interface {
	return []storage.Interface{c.replicas[0].s, c.replicas[1].s}
}

// start starts the watchers and n writers.
func (c *faultCluster) start(ctx context.Context, n int) {
	t := c.t
	rev, err := c.replicas[0].s.GetCurrentResourceVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.startRev = int64(rev)
	watchCtx, cancel := context.WithCancel(ctx)
	c.stopWatch = cancel
	for _, r := range c.replicas {
		c.recorders = append(c.recorders, startGapWatchRecorder(watchCtx, r.name, r.s, c.startRev))
	}
	c.stop = make(chan struct{})
	for i := range n {
		w := &faultWriter{id: i, stores: c.stores(), acks: &c.acks, model: map[string]podModel{}, timeout: writeDeadline}
		c.writers = append(c.writers, w)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			w.run(ctx, c.stop)
		}()
	}
	t.Cleanup(c.stopAll)
}

func (c *faultCluster) stopWriters() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.wg.Wait()
}

func (c *faultCluster) stopAll() {
	c.stopWriters()
	if c.stopWatch != nil {
		c.stopWatch()
		for _, r := range c.recorders {
			<-r.done
		}
		c.stopWatch = nil
	}
}

// progress waits until each replica acknowledged n more writes.
func (c *faultCluster) progress(n int64, timeout time.Duration, when string) {
	c.t.Helper()
	waitProgress(c.t, &c.acks, n, timeout, c.writers, when)
}

// verify stops the writers and checks everything that must hold after a fault.
func (c *faultCluster) verify(ctx context.Context) {
	t := c.t
	t.Helper()
	c.stopWriters()
	failures := 0
	for _, w := range c.writers {
		if w.err != nil {
			t.Fatalf("writer %d: %v", w.id, w.err)
		}
		for _, o := range w.overruns {
			t.Errorf("writer %d: a write outlived its deadline: %s", w.id, o)
		}
		failures += w.failures
	}
	for _, r := range c.replicas {
		if err := waitReady(ctx, r.b, 30*time.Second); err != nil {
			t.Fatalf("%s is not ready again after the fault: %v", r.name, err)
		}
	}
	final, err := c.replicas[0].s.GetCurrentResourceVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d+%d writes acknowledged, %d failed attempts retried, revisions %d..%d",
		c.acks[0].Load(), c.acks[1].Load(), failures, c.startRev+1, final)

	// Every acknowledged write is there.
	checkAcknowledged(ctx, t, []storage.Interface{c.replicas[0].s, c.replicas[1].s}, c.writers)
	for i, r := range c.replicas {
		list, listRev, err := listPods(ctx, r.s)
		if err != nil {
			t.Fatal(err)
		}
		if listRev < int64(final) {
			t.Fatalf("list of %s at revision %d, before %d", r.name, listRev, final)
		}
		for _, w := range c.writers {
			for key, m := range w.model {
				if _, listed := list[key]; m.exists != listed {
					t.Errorf("%s: list of %s has it %v, the acknowledged writes say %v", key, r.name, listed, m.exists)
				}
			}
		}
		rec := c.recorders[i]
		rec.waitFor(t, int64(final), time.Minute)
		rec.check(t, list)
		c.mu.Lock()
		writes := make(map[int64]string, len(c.podWrites))
		for k, v := range c.podWrites {
			writes[k] = v
		}
		c.mu.Unlock()
		rec.checkCoverage(t, c.startRev, int64(final), writes)
	}
}

// waitReady waits until b's ReadyCheck passes.
func waitReady(ctx context.Context, b *Backend, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := b.ReadyCheck(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		pause(ctx, 100*time.Millisecond)
	}
}

// holdRevisionLock opens a session of its own on dbURL that takes the
// revision lock and keeps it until release is called: an operator's
// psql left in a transaction, or any stalled lock holder.
func holdRevisionLock(t *testing.T, ctx context.Context, dbURL string) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rev int64
	if err := tx.QueryRow(ctx, "SELECT current_rev FROM meta WHERE id = 1 FOR UPDATE").Scan(&rev); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(context.Background())
			_ = conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}
