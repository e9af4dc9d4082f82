package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

// TestWriteAfterClose submits writes while and after the backend closes:
// every one returns (ErrClosed, or committed if it was queued before
// Close), none hangs.
func TestWriteAfterClose(t *testing.T) {
	b, _ := newTestBackend(t, testOptions)
	const n = 40
	var (
		wg       sync.WaitGroup
		returned atomic.Int32
		mu       sync.Mutex
		errs     []string
	)
	start, closed := make(chan struct{}), make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			after := i >= n/2
			if after {
				<-closed
			}
			// No deadline: only the backend can make this return.
			r := b.submit(context.Background(), &write{key: fmt.Appendf(nil, "/close/%d", i), value: []byte("v"), expect: anyRevision})
			returned.Add(1)
			if (after && !errors.Is(r.err, ErrClosed)) || (r.err != nil && !errors.Is(r.err, ErrClosed)) {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("write %d (after Close: %v): %v", i, after, r.err))
				mu.Unlock()
			}
		}()
	}
	close(start)
	b.Close()
	close(closed)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d of %d writes submitted around Close never returned", n-int(returned.Load()), n)
	}
	for _, e := range errs {
		t.Error(e)
	}
}

// TestQueuedWriteHonoursContext queues a write behind a batch that waits for
// the revision lock: when its context ends it returns at once, saying it
// was not applied, and it is never applied afterwards.
func TestQueuedWriteHonoursContext(t *testing.T) {
	opts := testOptions
	opts.LockTimeout, opts.CommitTimeout = 10*time.Second, 15*time.Second
	sent := make(chan struct{})
	var once sync.Once
	opts.hooks = &testHooks{beforeCommit: func(int) { once.Do(func() { close(sent) }) }}
	b, url := newTestBackend(t, opts)
	ctx := context.Background()
	release := holdRevisionLock(t, ctx, url)

	first := make(chan writeResult, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		first <- b.submit(wctx, &write{key: []byte("/queued/first"), value: []byte("1"), expect: 0})
	}()
	// The committer has taken the first write and sends it; it blocks on
	// the lock, so the next write stays queued.
	select {
	case <-sent:
	case <-time.After(30 * time.Second):
		t.Fatal("the committer did not send the first write in 30s")
	}

	qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	start := time.Now()
	r := b.submit(qctx, &write{key: []byte("/queued/second"), value: []byte("2"), expect: 0})
	cancel()
	took := time.Since(start)
	if r.err == nil || !strings.Contains(r.err.Error(), "not applied") || !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("queued write whose context ended: err %v, want a deadline error saying it was not applied", r.err)
	}
	if took > 500*time.Millisecond+overrunSlack {
		t.Errorf("queued write with a 500ms deadline returned after %v", took)
	}

	pause(ctx, time.Second)
	release()
	if r := <-first; r.err != nil || !r.ok {
		t.Fatalf("the write waiting for the lock: ok %v, err %v", r.ok, r.err)
	}
	// One more write goes through the committer: the withdrawn one is not
	// in a later batch either.
	if r := b.submit(ctx, &write{key: []byte("/queued/third"), value: []byte("3"), expect: 0}); r.err != nil {
		t.Fatal(r.err)
	}
	if row, _, err := b.get(ctx, []byte("/queued/second")); err != nil || row != nil {
		t.Fatalf("the withdrawn write was applied (row %v, err %v)", row != nil, err)
	}
}

// TestCompactionMarkerAfterDelete makes compaction's delete fail: no marker
// may be written then, so no replica believes history gone that is still
// there; once the delete succeeds, every replica learns of it.
func TestCompactionMarkerAfterDelete(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(t)
	opts := testOptions
	opts.CompactionTimeout = time.Second
	opts.PollInterval = 100 * time.Millisecond
	a, other := newBackendAt(t, url, opts), newBackendAt(t, url, opts)
	sa, sOther := newPodStore(t, a), newPodStore(t, other)
	for i := range 5 {
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "c", Name: fmt.Sprintf("p%d", i)}}
		if err := sa.Create(ctx, podKey("c", pod.Name), pod, &example.Pod{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	early := currentRev(t, a) - 2
	for i := range 5 {
		if _, err := writePod(ctx, sa, "MODIFIED", "c", fmt.Sprintf("p%d", i), "second"); err != nil {
			t.Fatal(err)
		}
	}
	target := currentRev(t, a)

	// Another session holds the compaction row: the delete times out.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT rev FROM compaction WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	if err := a.Compact(ctx, target); err == nil {
		t.Fatal("compaction succeeded while another session holds the compaction row")
	}
	var markers int
	if err := a.pool.QueryRow(ctx, "SELECT count(*) FROM kv_log WHERE key = $1", []byte(compactRevKey)).Scan(&markers); err != nil {
		t.Fatal(err)
	}
	if markers != 0 {
		t.Errorf("a failed compaction wrote %d compaction markers", markers)
	}
	pause(ctx, 500*time.Millisecond) // several polls of the other replica
	for name, b := range map[string]*Backend{"compacting": a, "other": other} {
		if got := b.CompactRevision(); got >= target {
			t.Errorf("%s replica believes history before %d is gone after a failed compaction (CompactRevision %d)", name, target, got)
		}
	}
	list := &example.PodList{}
	if err := sOther.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything,
		ResourceVersion: fmt.Sprint(early), ResourceVersionMatch: metav1.ResourceVersionMatchExact}, list); err != nil {
		t.Errorf("reading at revision %d after a failed compaction: %v", early, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	if err := a.Compact(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := a.pool.QueryRow(ctx, "SELECT count(*) FROM kv_log WHERE key = $1", []byte(compactRevKey)).Scan(&markers); err != nil {
		t.Fatal(err)
	}
	if markers != 1 {
		t.Errorf("%d compaction markers after a compaction, want 1", markers)
	}
	deadline := time.Now().Add(10 * time.Second)
	for other.CompactRevision() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the other replica did not learn of the compaction to %d (it has %d)", target, other.CompactRevision())
		}
		pause(ctx, 50*time.Millisecond)
	}
	err = sOther.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything,
		ResourceVersion: fmt.Sprint(early), ResourceVersionMatch: metav1.ResourceVersionMatchExact}, list)
	if err == nil || !strings.Contains(err.Error(), "too old") {
		t.Errorf("reading at revision %d after compacting to %d: %v, want too old", early, target, err)
	}
}

// TestEventPageByteCap checks that one read of the event log carries at
// most EventPageBytes (a single bigger event alone), for the poller and for
// watches behind the memory window alike (both read through readEvents),
// and that paging through still yields every event once, in order.
func TestEventPageByteCap(t *testing.T) {
	opts := testOptions
	opts.EventPageBytes = 1 << 20
	b, _ := newTestBackend(t, opts)
	ctx := context.Background()
	start := currentRev(t, b)
	value := strings.Repeat("v", 300<<10)
	const keys = 8
	for round := range 2 { // creates, then updates: events with previous values
		for i := range keys {
			r := b.submit(ctx, &write{key: fmt.Appendf(nil, "/cap/%d", i), value: []byte(fmt.Sprint(round) + value), expect: anyRevision})
			if r.err != nil {
				t.Fatal(r.err)
			}
		}
	}
	huge := strings.Repeat("h", MaxObjectSize-1024) // alone over the cap
	if r := b.submit(ctx, &write{key: []byte("/cap/huge"), value: []byte(huge), expect: anyRevision}); r.err != nil {
		t.Fatal(r.err)
	}
	end := currentRev(t, b)

	after, pages := start, 0
	for after < end {
		page, err := b.readEvents(ctx, b.pool, after, pollPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.events) == 0 {
			t.Fatalf("no events after %d, though the log goes to %d", after, end)
		}
		total := 0
		for i, e := range page.events {
			if e.rev != after+1 {
				t.Fatalf("event at %d after %d", e.rev, after)
			}
			after = e.rev
			if i > 0 && total+e.size() > opts.EventPageBytes+64*len(page.events) {
				t.Errorf("page %d: %d events carry %d bytes, over the %d byte cap", pages, len(page.events), total+e.size(), opts.EventPageBytes)
			}
			total += e.size()
		}
		if page.more != (after < end) {
			t.Errorf("page %d ends at %d of %d but says more=%v", pages, after, end, page.more)
		}
		pages++
	}
	// 16 events of about 300 KiB (the updates carry twice that) and one of
	// 1.5 MiB cannot come in fewer pages than this under a 1 MiB cap.
	if pages < 9 {
		t.Errorf("%d events in %d pages: the byte cap did not cut them", end-start, pages)
	}
}

// TestCommitterReadsNoValues overwrites keys that hold large values: the
// committer's connection must not carry those values back (only failed
// conditions need the current row, and callers read it themselves, outside
// the revision lock).
func TestCommitterReadsNoValues(t *testing.T) {
	ctx := context.Background()
	proxy, url := startFaultProxy(t, pgtest.NewDatabase(t))
	b := newBackendAt(t, url, testOptions)
	big := []byte(strings.Repeat("b", 1<<20))
	const keys = 12
	for i := range keys {
		if r := b.submit(ctx, &write{key: fmt.Appendf(nil, "/big/%d", i), value: big, expect: anyRevision}); r.err != nil {
			t.Fatal(r.err)
		}
	}
	before := proxy.toClientOf("commit_writes")
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Unconditional, and conditional on a wrong revision: neither needs the value.
			if r := b.submit(ctx, &write{key: fmt.Appendf(nil, "/big/%d", i), value: []byte("small"), expect: anyRevision}); r.err != nil {
				t.Error(r.err)
			}
			if r := b.submit(ctx, &write{key: fmt.Appendf(nil, "/big/%d", i), value: []byte("x"), expect: 1}); r.err != nil || r.ok {
				t.Errorf("conditional write on a wrong revision: ok %v, err %v", r.ok, r.err)
			}
		}()
	}
	wg.Wait()
	got := proxy.toClientOf("commit_writes") - before
	if before == 0 {
		t.Fatal("no traffic seen on the committer's connection; the test does not measure it")
	}
	if got > 256<<10 {
		t.Errorf("the committer's connection received %d bytes for %d writes over %d MiB of current values", got, 2*keys, keys)
	}
	t.Logf("committer connection: %d bytes back for %d writes", got, 2*keys)
}

// countingTracer counts the statements a pool sends, by SQL text.
type countingTracer struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.mu.Lock()
	c.n[d.SQL]++
	c.mu.Unlock()
	return ctx
}
func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *countingTracer) count(sql string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[sql]
}

// TestPagedListCost pages through a large collection at an older revision
// and checks that the work per page is the page (plus the writes since that
// revision), not the rest of the collection: the page query's plan touches
// O(page) rows, the remaining item count is exact on every page, and the
// collection is counted once, not once per page.
func TestPagedListCost(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	tracer := &countingTracer{n: map[string]int{}}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b, err := NewBackend(ctx, pool, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s := newPodStore(t, b)

	const total, limit, changed = 3000, 100, 50
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range total {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("p%05d", i)
			pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "big", Name: name}}
			if err := s.Create(ctx, podKey("big", name), pod, &example.Pod{}, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	listRev := currentRev(t, b)
	// Changes after the list's revision: updates and deletions the pages
	// must look through history for.
	for i := range changed {
		name := fmt.Sprintf("p%05d", i*7)
		if i%2 == 0 {
			if _, err := writePod(ctx, s, "MODIFIED", "big", name, "later"); err != nil {
				t.Fatal(err)
			}
		} else if _, err := writePod(ctx, s, "DELETED", "big", name, ""); err != nil {
			t.Fatal(err)
		}
	}

	// The plan of one page, read at the old revision and at the current one,
	// with statistics as autovacuum keeps them (a table filled a moment ago
	// looks empty to the planner, which then sorts the whole range).
	if _, err := b.pool.Exec(ctx, "ANALYZE kv, kv_log"); err != nil {
		t.Fatal(err)
	}
	for _, rev := range []int64{listRev, currentRev(t, b)} {
		rows := planRows(t, b, sqlRangePage, []byte("/pods/big/"), prefixEnd([]byte("/pods/big/")), rev, int64(limit+1))
		if bound := 10 * (limit + changed); rows > bound {
			t.Errorf("one page of %d at revision %d touches %d rows (bound %d): the cost grows with the collection", limit, rev, rows, bound)
		}
		t.Logf("page plan at revision %d: %d rows", rev, rows)
	}

	countsBefore := tracer.count(sqlRangeCount)
	opts := storage.ListOptions{Recursive: true, ResourceVersion: fmt.Sprint(listRev), ResourceVersionMatch: metav1.ResourceVersionMatchExact,
		Predicate: storage.SelectionPredicate{Label: storage.Everything.Label, Field: storage.Everything.Field, Limit: limit}}
	seen := 0
	for page := 0; ; page++ {
		list := &example.PodList{}
		if err := s.GetList(ctx, "/pods/big/", opts, list); err != nil {
			t.Fatal(err)
		}
		seen += len(list.Items)
		for _, p := range list.Items {
			if p.Labels["op"] == "later" {
				t.Fatalf("page %d at revision %d holds %s as updated after it", page, listRev, p.Name)
			}
		}
		if list.Continue == "" {
			if list.RemainingItemCount != nil {
				t.Errorf("last page reports %d remaining", *list.RemainingItemCount)
			}
			break
		}
		if list.RemainingItemCount == nil || *list.RemainingItemCount != int64(total-seen) {
			t.Fatalf("page %d: remainingItemCount %v, want %d", page, list.RemainingItemCount, total-seen)
		}
		opts.Predicate.Continue = list.Continue
		opts.ResourceVersion, opts.ResourceVersionMatch = "", ""
	}
	if seen != total {
		t.Errorf("pages at revision %d held %d pods, want %d", listRev, seen, total)
	}
	if n := tracer.count(sqlRangeCount) - countsBefore; n != 1 {
		t.Errorf("the collection was counted %d times for %d pages, want once", n, total/limit)
	}
}

// planRows runs sql under EXPLAIN ANALYZE and sums the rows every plan node
// produced (times its loops): the work the statement did.
func planRows(t *testing.T, b *Backend, sql string, args ...any) int {
	t.Helper()
	var plan []map[string]any
	if err := b.pool.QueryRow(context.Background(), "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var walk func(n map[string]any) int
	walk = func(n map[string]any) int {
		rows, _ := n["Actual Rows"].(float64)
		loops, _ := n["Actual Loops"].(float64)
		sum := int(rows * max(loops, 1))
		if kids, ok := n["Plans"].([]any); ok {
			for _, k := range kids {
				sum += walk(k.(map[string]any))
			}
		}
		return sum
	}
	return walk(plan[0]["Plan"].(map[string]any))
}

// TestWriteFencedByDeadline sends a write whose bytes are held up in the
// network (a frozen connection) past its caller's deadline and then
// delivered: the caller has been told it failed, so the database must
// refuse it when it finally arrives rather than apply it late.
func TestWriteFencedByDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := pgtest.NewDatabase(t)
	proxy, url := startFaultProxy(t, dbURL)
	b := newBackendAt(t, url, testOptions)
	// The committer's statement is prepared on its connection now, so the
	// write below goes out in one flight that the proxy holds whole.
	if r := b.submit(ctx, &write{key: []byte("/fence/warm-up"), value: []byte("v"), expect: anyRevision}); r.err != nil {
		t.Fatal(r.err)
	}
	proxy.setMode(proxyFreeze)
	const deadline = time.Second
	wctx, wcancel := context.WithTimeout(ctx, deadline)
	start := time.Now()
	r := b.submit(wctx, &write{key: []byte("/fence/late"), value: []byte("v"), expect: 0})
	wcancel()
	if r.err == nil {
		t.Fatal("a write through a frozen connection succeeded")
	}
	if took := time.Since(start); took > deadline+overrunSlack {
		t.Errorf("a write with a %v deadline returned after %v: %v", deadline, took, r.err)
	}
	// Long enough for the client to give up on the connection too; then
	// the held bytes reach PostgreSQL.
	pause(ctx, 3*time.Second)
	proxy.setMode(proxyPass)
	pause(ctx, 2*time.Second)

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM kv WHERE key = $1", []byte("/fence/late")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("the write was applied after its caller's deadline (it failed with %v)", r.err)
	}
	// The backend recovers its committer connection and writes again.
	deadlineAt := time.Now().Add(30 * time.Second)
	for {
		r := b.submit(ctx, &write{key: []byte("/fence/after"), value: []byte("v"), expect: anyRevision})
		if r.err == nil {
			break
		}
		if time.Now().After(deadlineAt) {
			t.Fatalf("no write succeeded after the connection thawed: %v", r.err)
		}
		pause(ctx, 100*time.Millisecond)
	}
}

// TestCommitsWhateverTheDefaultIsolation runs concurrent writes from two
// backends on a database whose default isolation is REPEATABLE READ:
// commit_writes needs a new snapshot once it holds the revision lock, so the
// committer must not inherit that default (every write contending for the
// lock would fail to serialise).
func TestCommitsWhateverTheDefaultIsolation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET default_transaction_isolation = 'repeatable read'"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	backends := []*Backend{newBackendAt(t, url, testOptions), newBackendAt(t, url, testOptions)}
	const writes = 100
	var wg sync.WaitGroup
	errs := make(chan error, writes)
	for i := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := backends[i%2].submit(ctx, &write{key: fmt.Appendf(nil, "/iso/%d", i), value: []byte("v"), expect: 0})
			if r.err != nil || !r.ok {
				errs <- fmt.Errorf("write %d: ok %v, err %v", i, r.ok, r.err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := currentRev(t, backends[0]), int64(1+writes); got != want {
		t.Errorf("revision %d after %d writes from revision 1, want %d", got, writes, want)
	}
}

// TestReadinessFailsWhenEventLogLags stalls only the event log's reads
// (another session locks the compaction table, which every poll reads and
// requests, commits and readiness's own query do not): PostgreSQL answers
// and writes commit, yet every watch of the process is behind, so
// readiness must fail, and pass again once the event log reads.
func TestReadinessFailsWhenEventLogLags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(t)
	opts := testOptions
	opts.PollInterval, opts.PollTimeout, opts.ReadyMaxPollAge = 100*time.Millisecond, time.Second, 2*time.Second
	b := newBackendAt(t, url, opts)
	s := newPodStore(t, b)
	if err := waitReady(ctx, b, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE compaction IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if r := b.submit(ctx, &write{key: []byte("/lag/a"), value: []byte("v"), expect: anyRevision}); r.err != nil {
		t.Fatalf("a write with the event log stalled: %v", r.err)
	}
	var readyErr error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); pause(ctx, 100*time.Millisecond) {
		if readyErr = b.ReadyCheck(ctx); readyErr != nil {
			break
		}
	}
	if readyErr == nil || !strings.Contains(readyErr.Error(), "watch events not read") {
		t.Fatalf("readiness with the event log stalled for 20s: %v, want it to fail for the lag", readyErr)
	}
	if err := s.ReadinessCheck(); err == nil {
		t.Error("the store's ReadinessCheck passes with the event log stalled")
	}
	if _, err := b.currentRevision(ctx); err != nil {
		t.Fatalf("PostgreSQL should still answer requests: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waitReady(ctx, b, 20*time.Second); err != nil {
		t.Fatalf("not ready again once the event log reads: %v", err)
	}
}

// TestLockTimeout holds the revision lock in another session and sends a
// write whose caller set no deadline: the committer session's lock_timeout
// ends the wait, well before the commit timeout, and says the write was
// not applied.
func TestLockTimeout(t *testing.T) {
	opts := testOptions
	opts.LockTimeout, opts.CommitTimeout = time.Second, 30*time.Second
	b, url := newTestBackend(t, opts)
	ctx := context.Background()
	release := holdRevisionLock(t, ctx, url)
	defer release()
	start := time.Now()
	r := b.submit(ctx, &write{key: []byte("/lock/a"), value: []byte("v"), expect: 0})
	took := time.Since(start)
	if r.err == nil || !strings.Contains(r.err.Error(), "revision lock was not free") || !notApplied(r.err) {
		t.Fatalf("write with the revision lock held elsewhere: %v, want a lock timeout saying it was not applied", r.err)
	}
	if took > opts.LockTimeout+overrunSlack {
		t.Errorf("the lock wait ended after %v with a %v lock timeout", took, opts.LockTimeout)
	}
}

// TestCompactionVacuumsWithoutAutovacuum: on a server whose autovacuum is off, the dead rows of
// deletes and compaction would stay in kv and kv_log and slow every list for good (a plane with
// history got slower than a fresh one); compaction vacuums them.
func TestCompactionVacuumsWithoutAutovacuum(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, _ := newTestBackend(t, testOptions)
	skipWithAutovacuum(ctx, t, b, "so compaction leaves vacuuming to it")
	s := newPodStore(t, b)
	for i := range 50 {
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "v", Name: fmt.Sprintf("p%d", i)}}
		if err := s.Create(ctx, podKey("v", pod.Name), pod, &example.Pod{}, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, podKey("v", pod.Name), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Compact(ctx, currentRev(t, b)); err != nil {
		t.Fatal(err)
	}
	// VACUUM reports to the statistics as it ends; they are read here from another session.
	for _, table := range []string{"kv", "kv_log"} {
		var vacuumed bool
		if err := b.pool.QueryRow(ctx, "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = $1", table).Scan(&vacuumed); err != nil {
			t.Fatal(err)
		}
		if !vacuumed {
			t.Errorf("%s not vacuumed by a compaction on a server without autovacuum", table)
		}
	}
}

// skipWithAutovacuum skips a test of what the backend does for a server whose autovacuum is off.
func skipWithAutovacuum(ctx context.Context, t *testing.T, b *Backend, why string) {
	t.Helper()
	var off bool
	if err := b.pool.QueryRow(ctx, sqlAutovacuumOff).Scan(&off); err != nil {
		t.Fatal(err)
	}
	if !off {
		t.Skip("this PostgreSQL server runs autovacuum, " + why)
	}
}

// TestAnalyzesWithoutAutovacuum: on a server whose autovacuum is off, the backend analyzes kv
// and kv_log once enough of them changed, and the event log's poll then reads kv_log by its
// primary key only, however many rows it holds.
func TestAnalyzesWithoutAutovacuum(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := testOptions
	opts.AnalyzeInterval = 100 * time.Millisecond
	b, _ := newTestBackend(t, opts)
	skipWithAutovacuum(ctx, t, b, "which analyzes the tables itself")
	value := make([]byte, 2048)
	for i := range 3000 {
		if r := b.submit(ctx, &write{key: fmt.Appendf(nil, "/analyze/%d", i%300), value: value, expect: anyRevision}); r.err != nil {
			t.Fatal(r.err)
		}
	}
	for _, table := range []string{"kv", "kv_log"} {
		for {
			var analyzed bool
			if err := b.pool.QueryRow(ctx, "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = $1", table).Scan(&analyzed); err != nil {
				t.Fatal(err)
			}
			if analyzed {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never analyzed on a server without autovacuum", table)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	head := currentRev(t, b)
	rows, err := b.eventPool.Query(ctx, "EXPLAIN "+sqlEventsPage, head-1, pollPage, b.opts.EventPageBytes)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if joined := strings.Join(plan, "\n"); strings.Contains(joined, "Seq Scan on kv_log") || strings.Contains(joined, "Hash") {
		t.Errorf("the event log's poll reads kv_log beyond its primary key:\n%s", joined)
	}
}

// TestDoomedWritesSkipRevisionLock: a write conditioned on a revision its key has moved past can
// never apply, so it is refused without the revision lock (writers racing on one object lose
// without each taking the lock and syncing a commit). A write that may apply still waits for it.
func TestDoomedWritesSkipRevisionLock(t *testing.T) {
	opts := testOptions
	opts.LockTimeout, opts.CommitTimeout = time.Second, 30*time.Second
	b, url := newTestBackend(t, opts)
	ctx := context.Background()
	key := []byte("/doomed/k")
	created := b.submit(ctx, &write{key: key, value: []byte("v1"), expect: 0})
	if created.err != nil || !created.ok {
		t.Fatalf("create: %+v", created)
	}
	updated := b.submit(ctx, &write{key: key, value: []byte("v2"), expect: created.rev})
	if updated.err != nil || !updated.ok {
		t.Fatalf("update: %+v", updated)
	}

	release := holdRevisionLock(t, ctx, url)
	tests := []struct {
		name string
		w    *write
	}{
		{"update from a revision the key moved past", &write{key: key, value: []byte("v3"), expect: created.rev, getOnFailure: true}},
		{"delete from a revision the key moved past", &write{key: key, delete: true, expect: created.rev, getOnFailure: true}},
		{"update of a key that does not exist", &write{key: []byte("/doomed/missing"), value: []byte("v"), expect: created.rev, getOnFailure: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.submit(ctx, tt.w)
			if r.err != nil || r.ok {
				t.Fatalf("with the revision lock held elsewhere: %+v, want a failed condition at once", r)
			}
			if string(tt.w.key) == string(key) && (r.cur == nil || r.cur.modRev != updated.rev || string(r.cur.value) != "v2") {
				t.Errorf("current row after the failed condition = %+v, want v2 at revision %d", r.cur, updated.rev)
			}
		})
	}
	if r := b.submit(ctx, &write{key: key, value: []byte("v3"), expect: updated.rev}); r.err == nil || !strings.Contains(r.err.Error(), "revision lock was not free") {
		t.Fatalf("a write that can apply, with the revision lock held elsewhere: %+v, want a lock timeout", r)
	}
	release()
	if r := b.submit(ctx, &write{key: key, value: []byte("v3"), expect: updated.rev}); r.err != nil || !r.ok {
		t.Fatalf("update once the lock is free: %+v", r)
	}
}

// TestCommitLooksUpKeysByIndex: commit_writes must find each key of a batch through kv's primary
// key whatever the planner knows of kv. plpgsql keeps the plan it made while kv was small; on a
// server that never analyzes kv, a plan that scanned kv whole made every commit read every row,
// live and dead, as the plane grew.
func TestCommitLooksUpKeysByIndex(t *testing.T) {
	ctx := context.Background()
	_, url := newTestBackend(t, testOptions)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	commit := func(key string, expect int64) {
		t.Helper()
		_, err := conn.Exec(ctx, sqlCommitWrites, [][]byte{[]byte(key)}, [][]byte{[]byte("v")}, []bool{false},
			[]int64{expect}, []int64{0}, []time.Time{time.Now().Add(time.Minute)}, int64(0))
		if err != nil {
			t.Fatalf("commit_writes(%s): %v", key, err)
		}
	}
	get := func(key string) {
		t.Helper()
		var cur, mod, create *int64
		var value []byte
		if err := conn.QueryRow(ctx, sqlGet, []byte(key)).Scan(&cur, &mod, &create, &value); err != nil {
			t.Fatalf("get(%s): %v", key, err)
		}
	}
	// Plans made while kv is nearly empty, as on a new plane's sessions.
	for i := range 10 {
		commit(fmt.Sprintf("/plan/warm-%d", i), anyRevision)
		get(fmt.Sprintf("/plan/warm-%d", i))
	}
	if _, err := conn.Exec(ctx, `INSERT INTO kv (key, mod_rev, create_rev, value)
		SELECT convert_to('/plan/bulk/' || i, 'UTF8'), 1, 1, '\x00' FROM generate_series(1, 20000) i`); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	commit("/plan/new", anyRevision) // the locked path
	commit("/plan/bulk/7", 2)        // a write from a revision the key does not have: the early path
	get("/plan/bulk/8")
	var seqScans int64
	if err := tx.QueryRow(ctx, "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'kv'").Scan(&seqScans); err != nil {
		t.Fatal(err)
	}
	if seqScans != 0 {
		t.Errorf("two commits and a get on a kv of 20,000 rows scanned kv whole %d times, want none (index lookups)", seqScans)
	}
}
