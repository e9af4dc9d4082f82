package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/klog/v2"
)

// event is one committed change, as read from kv_log.
type event struct {
	rev       int64
	key       []byte
	value     []byte // nil for deletions
	prevValue []byte // nil for creations
	created   bool
	deleted   bool
	recorded  time.Time
}

func (e *event) size() int { return len(e.key) + len(e.value) + len(e.prevValue) + 64 }

// eventLog tails kv_log in revision order and keeps the newest events in
// memory, so that every watch of this process reads from one poller instead
// of querying PostgreSQL on its own. A watch that starts before the memory
// window reads the older part from kv_log itself.
type eventLog struct {
	b *Backend

	mu      sync.Mutex
	events  []*event // contiguous revisions ending at head
	bytes   int
	head    int64         // newest revision read
	changed chan struct{} // closed and replaced when head advances or progress is asked for
	// progressRev is the revision a watch-progress request wants bookmarks at.
	progressRev int64
	progressGen uint64
	// lastPoll is when a poll last completed; readiness fails when it is
	// too long ago, because every watch of this process is then behind.
	lastPoll time.Time
	lastErr  error

	wake chan struct{} // a poll is wanted
}

// The memory window serves the watches of this process, which are the watch caches' reflectors
// and stay at the head; a watch that falls further behind reads kv_log. Each event holds its
// value and previous value as read, so the window is raw bytes beside the watch cache's objects:
// 16,384 events of 2.6 KB pipelines were a quarter of the heap that 10,000 pipelines cost.
const (
	eventLogMaxEvents = 4096
	eventLogMaxBytes  = 32 << 20
	pollPage          = 1000
)

func newEventLog(b *Backend, head int64) *eventLog {
	return &eventLog{b: b, head: head, changed: make(chan struct{}), wake: make(chan struct{}, 1), lastPoll: time.Now()}
}

// committed tells the log a local write committed up to rev, so that it
// polls now instead of waiting for a notification.
func (l *eventLog) committed(rev int64) {
	l.mu.Lock()
	behind := rev > l.head
	l.mu.Unlock()
	if behind {
		l.poke()
	}
}

func (l *eventLog) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// wakeAll makes every watch look at the log again (e.g. to end on a
// revision regression).
func (l *eventLog) wakeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
}

// pollAge is how long ago a poll last completed, and the error of the
// polls since, if any.
func (l *eventLog) pollAge() (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.lastPoll), l.lastErr
}

func (l *eventLog) pollDone(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.lastPoll = time.Now()
	}
	l.lastErr = err
}

// run polls kv_log whenever woken (a local commit, a NOTIFY from another
// instance) and at least every PollInterval.
func (l *eventLog) run(ctx context.Context) {
	t := time.NewTicker(l.b.opts.PollInterval)
	defer t.Stop()
	var lastLogged time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-t.C:
		}
		err := l.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		l.pollDone(err)
		if err != nil {
			// Retried every 100ms while PostgreSQL is away: log once a second.
			if time.Since(lastLogged) > time.Second {
				klog.ErrorS(err, "Reading storage events")
				lastLogged = time.Now()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			l.poke()
		}
	}
}

// poll reads every event after head, a bounded page at a time, each read
// bounded by PollTimeout on the event log's own connections.
func (l *eventLog) poll(ctx context.Context) error {
	b := l.b
	for {
		l.mu.Lock()
		head := l.head
		l.mu.Unlock()
		before := max(b.seen.Load(), head)
		pctx, cancel := context.WithTimeout(ctx, b.opts.PollTimeout)
		page, err := b.readEvents(pctx, b.eventPool, head, pollPage)
		cancel()
		if page == nil {
			return err
		}
		b.observeCompaction(page.compacted)
		if b.regressionErr() != nil {
			if !b.recoverRegression(page.current, page.compacted) {
				// Keep polling, so that recovery is noticed, but deliver nothing.
				return nil
			}
			// Every revision seen is compacted now: watches behind it end
			// with "too old" and relist.
			l.reset(page.current)
			continue
		}
		if page.current < before {
			b.regress(page.current, before)
			return nil
		}
		b.raiseSeen(page.current)
		if errors.Is(err, errCompacted) {
			// This process fell behind compaction (e.g. it was cut off from
			// PostgreSQL for longer than the history window). Watches that
			// need the lost events end with "too old" and relist.
			klog.InfoS("Storage event log fell behind compaction; skipping to the current revision", "from", head, "to", page.current)
			l.reset(page.current)
			continue
		}
		if len(page.events) == 0 {
			return nil
		}
		l.append(page.events)
		if !page.more {
			return nil
		}
	}
}

func (l *eventLog) reset(head int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events, l.bytes, l.head = nil, 0, head
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *eventLog) append(evs []*event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range evs {
		if e.rev != l.head+1 {
			// Polls are serialised and readEvents returns only contiguous
			// runs after head, so this is a bug; never deliver out of order.
			klog.ErrorS(nil, "Storage event out of order; dropped", "revision", e.rev, "head", l.head)
			break
		}
		if string(e.key) == compactRevKey {
			// Another instance (or this one) compacted.
			if rev, err := strconv.ParseInt(string(e.value), 10, 64); err == nil {
				l.b.observeCompaction(rev)
			}
		}
		l.events = append(l.events, e)
		l.bytes += e.size()
		l.head = e.rev
	}
	drop := 0
	for len(l.events)-drop > eventLogMaxEvents || (l.bytes > eventLogMaxBytes && len(l.events)-drop > 1) {
		l.bytes -= l.events[drop].size()
		drop++
	}
	if drop > 0 {
		l.events = append([]*event(nil), l.events[drop:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// since returns the events after rev that are in memory, the head, and a
// channel closed when there is more. inMemory is false when rev is older
// than the memory window: read kv_log instead.
func (l *eventLog) since(rev int64) (evs []*event, head int64, changed <-chan struct{}, progress uint64, inMemory bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rev < l.head && (len(l.events) == 0 || rev < l.events[0].rev-1) {
		return nil, l.head, l.changed, l.progressGen, false
	}
	if rev < l.head {
		i := int(rev - (l.events[0].rev - 1))
		evs = l.events[i:]
	}
	return evs, l.head, l.changed, l.progressGen, true
}

// requestProgress makes every progress-notify watch send a bookmark once it
// has seen the current revision. It waits for nothing but the one read of
// the current revision, which honours ctx: the poller, woken here, brings
// the log up to that revision, and each watch sends its bookmark when it
// gets there.
func (l *eventLog) requestProgress(ctx context.Context) error {
	rev, err := l.b.currentRevision(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if rev > l.progressRev {
		l.progressRev = rev
	}
	l.progressGen++
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	l.poke()
	return nil
}

// eventPage is one read of kv_log.
type eventPage struct {
	events             []*event
	current, compacted int64 // of the read's snapshot
	more               bool  // events after the page exist
}

// readEvents reads up to limit events after rev from kv_log, at most
// EventPageBytes of them, with the previous value of each updated or
// deleted key. It fails with errCompacted, and a page holding only the
// revisions, when events after rev are gone.
func (b *Backend) readEvents(ctx context.Context, pool *pgxpool.Pool, after int64, limit int) (*eventPage, error) {
	page := &eventPage{}
	rows, err := pool.Query(ctx, sqlEventsPage, after, limit, b.opts.EventPageBytes)
	if err != nil {
		return nil, fmt.Errorf("reading events after revision %d: %w", after, err)
	}
	defer rows.Close()
	now := time.Now()
	next := after + 1
	for rows.Next() {
		var (
			rev              *int64
			key, value, prev []byte
			created, deleted *bool
		)
		if err := rows.Scan(&page.current, &page.compacted, &rev, &key, &value, &prev, &created, &deleted); err != nil {
			return nil, fmt.Errorf("reading events after revision %d: %w", after, err)
		}
		if rev == nil {
			continue // the revisions alone: no events
		}
		if *rev != next {
			// Revisions commit in order under the revision lock, so this
			// cannot happen; stop at the gap rather than skip an event.
			klog.ErrorS(nil, "Gap in storage revisions; waiting for it to fill", "want", next, "got", *rev)
			break
		}
		next++
		page.events = append(page.events, &event{rev: *rev, key: key, value: value, prevValue: prev,
			created: *created, deleted: *deleted, recorded: now})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading events after revision %d: %w", after, err)
	}
	// Events after a compaction revision keep their previous values, so a
	// watch may start at the compaction revision itself.
	if after < page.compacted {
		return page, errCompacted
	}
	page.more = after+int64(len(page.events)) < page.current
	return page, nil
}

// notifyChannel is the PostgreSQL channel on which instances announce commits.
const notifyChannel = "core_mp_revisions"

// notifyPeers tells other instances (and this one's listener) that
// revisions up to rev committed. It runs outside the write transaction:
// a NOTIFY inside it would serialise every commit on PostgreSQL's
// notification queue lock.
func (b *Backend) notifyPeers(rev int64) {
	for {
		cur := b.committedRev.Load()
		if rev <= cur || b.committedRev.CompareAndSwap(cur, rev) {
			break
		}
	}
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

func (b *Backend) runNotifier(ctx context.Context) {
	defer b.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.notify:
			rev := b.committedRev.Load()
			nctx, cancel := context.WithTimeout(ctx, b.opts.PollTimeout)
			_, err := b.eventPool.Exec(nctx, sqlNotify, notifyChannel, strconv.FormatInt(rev, 10))
			cancel()
			if err != nil && ctx.Err() == nil {
				klog.V(2).InfoS("Announcing commit to other instances", "err", err)
			}
		}
	}
}

// runListener LISTENs for other instances' commits and wakes the event log.
func (b *Backend) runListener(ctx context.Context) {
	defer b.wg.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		connected, err := b.listen(ctx)
		if connected {
			backoff = 100 * time.Millisecond
		}
		if ctx.Err() != nil {
			return
		}
		klog.V(2).InfoS("Storage commit listener disconnected; reconnecting", "err", err)
		// Whatever was announced while disconnected is found by this poll.
		b.events.poke()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenCheckInterval is how long the listener waits for a notification
// before checking that its connection still answers: a connection frozen
// without a reset would otherwise be waited on forever, and other
// instances' commits seen only by the once-a-PollInterval poll.
const listenCheckInterval = 15 * time.Second

// listen LISTENs until the connection fails; connected tells whether it got that far.
func (b *Backend) listen(ctx context.Context) (connected bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, b.opts.PollTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, b.listenConf.ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("connecting the commit listener: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(cctx, sqlListen); err != nil {
		return false, fmt.Errorf("listening for commits: %w", err)
	}
	b.events.poke()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheckInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil || !pgconn.Timeout(err) {
				return true, err
			}
			// Nothing for a while: make sure the connection is alive. A
			// timeout leaves a pgx connection usable.
			pctx, cancel := context.WithTimeout(ctx, b.opts.PollTimeout)
			_, err := conn.Exec(pctx, sqlPing)
			cancel()
			if err != nil {
				return true, fmt.Errorf("commit listener connection check: %w", err)
			}
			continue
		}
		// The payload is the announced revision: no poll when the event log
		// has it already (as for this instance's own commits).
		if rev, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			b.events.committed(rev)
		} else {
			b.events.poke()
		}
	}
}
