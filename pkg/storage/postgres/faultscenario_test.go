package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

// Fault scenarios on a two-replica cluster (faultcluster_test.go). Each is
// bounded: the context below, and every wait has its own limit.

const scenarioTimeout = 4 * time.Minute

// timedCreate creates a pod on s with the given deadline and returns the
// error and how long the call took.
func timedCreate(ctx context.Context, s storage.Interface, name string, deadline time.Duration) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "probe", Name: name}}
	err := s.Create(cctx, podKey("probe", name), pod, &example.Pod{}, 0)
	return time.Since(start), err
}

// mustNotExist checks that a write that failed never applied, not even later.
func mustNotExist(ctx context.Context, t *testing.T, s storage.Interface, name string) {
	t.Helper()
	err := s.Get(ctx, podKey("probe", name), storage.GetOptions{}, &example.Pod{})
	if !storage.IsNotFound(err) {
		t.Errorf("probe/%s: its create failed, yet it exists now (err %v): a write applied after its caller gave up", name, err)
	}
}

// TestFaultFrozenReplica freezes (or blackholes) every connection between
// one replica and PostgreSQL, new ones included, for longer than the
// readiness limit, while writers and watchers run on both replicas.
func TestFaultFrozenReplica(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode proxyMode
	}{{"freeze", proxyFreeze}, {"blackhole", proxyBlackhole}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
			defer cancel()
			opts := faultTestOptions()
			c := newFaultCluster(t, pgtest.NewDatabase(t), opts)
			c.start(ctx, 4)
			c.progress(10, time.Minute, "before the fault")
			bad, good := c.replicas[0], c.replicas[1]

			bad.proxy.setMode(mode.mode)
			faultStart := time.Now()

			// The healthy replica keeps committing: the frozen one holds no
			// lock it needs (no client round trip happens under it). Were
			// the lock held, these would fail by the lock timeout, so the
			// deadline can be generous for a loaded machine.
			for i := range 5 {
				took, err := timedCreate(ctx, good.s, fmt.Sprintf("%s-good-%d", mode.name, i), 3*writeDeadline)
				if err != nil {
					t.Fatalf("a write on the healthy replica failed %v into the fault: %v (took %v)", time.Since(faultStart), err, took)
				}
			}
			// A write on the frozen replica returns by its deadline, and
			// never applies later.
			const frozenWrite = 2 * time.Second
			took, err := timedCreate(ctx, bad.s, mode.name+"-frozen", frozenWrite)
			if err == nil {
				t.Fatalf("a write through a %s connection succeeded", mode.name)
			}
			if took > frozenWrite+overrunSlack {
				t.Errorf("a write with a %v deadline returned after %v: %v", frozenWrite, took, err)
			}
			// RequestWatchProgress honours its context (the request
			// timeout, the next bound, is later than this one plus the slack).
			const progressDeadline = time.Second
			if opts.RequestTimeout <= progressDeadline+overrunSlack {
				t.Fatalf("RequestTimeout %v too short to tell whether RequestWatchProgress honours its context", opts.RequestTimeout)
			}
			pctx, pcancel := context.WithTimeout(ctx, progressDeadline)
			start := time.Now()
			perr := bad.s.RequestWatchProgress(pctx)
			pcancel()
			if perr == nil {
				t.Error("RequestWatchProgress succeeded through a frozen connection")
			}
			if took := time.Since(start); took > progressDeadline+overrunSlack {
				t.Errorf("RequestWatchProgress with a %v context returned after %v (err %v)", progressDeadline, took, perr)
			}
			// Readiness fails once the event log has not read for the limit.
			notReadyBy := opts.ReadyMaxPollAge + opts.PollTimeout + overrunSlack
			var readyErr error
			for time.Since(faultStart) < notReadyBy+overrunSlack {
				rctx, rcancel := context.WithTimeout(ctx, time.Second)
				readyErr = bad.b.ReadyCheck(rctx)
				rcancel()
				if readyErr != nil {
					break
				}
				pause(ctx, 100*time.Millisecond)
			}
			if readyErr == nil {
				t.Fatalf("the frozen replica was still ready %v into the fault", time.Since(faultStart))
			}
			t.Logf("frozen replica not ready after %v: %v", time.Since(faultStart).Round(time.Millisecond), readyErr)
			if wait := time.Until(faultStart.Add(opts.ReadyMaxPollAge + 2*time.Second)); wait > 0 {
				pause(ctx, wait)
			}

			bad.proxy.setMode(proxyPass)
			c.progress(10, time.Minute, "after the fault")
			mustNotExist(ctx, t, good.s, mode.name+"-frozen")
			c.verify(ctx)
		})
	}
}

// TestFaultCutConnections resets every connection of a replica, again and
// again, while writes and watches run.
func TestFaultCutConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	c := newFaultCluster(t, pgtest.NewDatabase(t), faultTestOptions())
	c.start(ctx, 4)
	c.progress(10, time.Minute, "before the fault")
	cut := 0
	for i := range 6 {
		cut += c.replicas[i%2].proxy.cut()
		pause(ctx, 400*time.Millisecond)
	}
	if cut < 6 {
		t.Fatalf("cut %d connections; the fault did not reach the replicas", cut)
	}
	t.Logf("cut %d connections", cut)
	c.progress(10, time.Minute, "after the cuts")
	c.verify(ctx)
}

// TestFaultStalledLockHolder has another session take the revision lock and
// sit on it: writes on both replicas must fail by their deadlines instead
// of queueing behind it, a write that fails must never apply later, and
// everything resumes once the holder lets go.
func TestFaultStalledLockHolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	dbURL := pgtest.NewDatabase(t)
	c := newFaultCluster(t, dbURL, faultTestOptions())
	c.start(ctx, 4)
	c.progress(10, time.Minute, "before the lock is taken")

	release := holdRevisionLock(t, ctx, dbURL)
	held := time.Now()
	for i, r := range c.replicas {
		const deadline = 2 * time.Second
		took, err := timedCreate(ctx, r.s, fmt.Sprintf("stalled-%d", i), deadline)
		if err == nil {
			t.Fatalf("%s: a create succeeded while another session holds the revision lock", r.name)
		}
		if took > deadline+overrunSlack {
			t.Errorf("%s: a create with a %v deadline returned after %v: %v", r.name, deadline, took, err)
		}
		t.Logf("%s: create with the lock held elsewhere: %v after %v", r.name, err, took.Round(time.Millisecond))
	}
	// A write queued behind a batch that waits for the lock honours its
	// context: it returns by its deadline and is withdrawn.
	b := c.replicas[1].b
	qctx, qcancel := context.WithTimeout(ctx, time.Second)
	start := time.Now()
	r := b.submit(qctx, &write{key: []byte(podKey("probe", "queued")), value: []byte("x"), expect: 0})
	qcancel()
	if r.err == nil {
		t.Fatal("a write succeeded while another session holds the revision lock")
	}
	if took := time.Since(start); took > time.Second+overrunSlack {
		t.Errorf("a queued write with a 1s deadline returned after %v: %v", took, r.err)
	}
	if wait := time.Until(held.Add(6 * time.Second)); wait > 0 {
		pause(ctx, wait)
	}
	release()

	c.progress(10, time.Minute, "after the lock holder let go")
	for i := range c.replicas {
		mustNotExist(ctx, t, c.replicas[0].s, fmt.Sprintf("stalled-%d", i))
	}
	if row, _, err := b.get(ctx, []byte(podKey("probe", "queued"))); err != nil || row != nil {
		t.Errorf("the queued write that gave up exists now (row %v, err %v)", row != nil, err)
	}
	c.verify(ctx)
}

// TestFaultPostgresRestart restarts PostgreSQL (fast shutdown, then an
// immediate one with crash recovery) under the cluster.
func TestFaultPostgresRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	pg := startPrivatePostgres(t)
	c := newFaultCluster(t, pg.url(), faultTestOptions())
	c.start(ctx, 4)
	c.progress(10, time.Minute, "before the restarts")
	for _, mode := range []string{"fast", "immediate"} {
		if err := pg.stop(mode); err != nil {
			t.Fatal(err)
		}
		pause(ctx, time.Second)
		if err := pg.start(); err != nil {
			t.Fatal(err)
		}
		c.progress(10, time.Minute, "after a "+mode+" restart")
	}
	c.verify(ctx)
}
