package postgres

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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

	wake chan struct{} // a poll is wanted
	// pollMu makes polls one at a time: the poller's and those of
	// watch-progress requests.
	pollMu sync.Mutex
}

const (
	eventLogMaxEvents = 16384
	eventLogMaxBytes  = 128 << 20
	pollPage          = 1000
)

func newEventLog(b *Backend, head int64) *eventLog {
	return &eventLog{b: b, head: head, changed: make(chan struct{}), wake: make(chan struct{}, 1)}
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
		if err := l.poll(ctx); err != nil && ctx.Err() == nil {
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

// poll reads every event after head.
func (l *eventLog) poll(ctx context.Context) error {
	l.pollMu.Lock()
	defer l.pollMu.Unlock()
	for {
		l.mu.Lock()
		head := l.head
		l.mu.Unlock()
		evs, err := l.b.readEvents(ctx, head, pollPage)
		if err == errCompacted {
			// This process fell behind compaction (e.g. it was cut off from
			// PostgreSQL for longer than the history window). Watches that
			// need the lost events end with "too old" and relist.
			cur, err := l.b.currentRevision(ctx)
			if err != nil {
				return err
			}
			klog.InfoS("Storage event log fell behind compaction; skipping to the current revision", "from", head, "to", cur)
			l.reset(cur)
			continue
		}
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		l.append(evs)
		if len(evs) < pollPage {
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
// has seen the current revision.
func (l *eventLog) requestProgress(ctx context.Context) error {
	rev, err := l.b.currentRevision(ctx)
	if err != nil {
		return err
	}
	if err := l.poll(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if rev > l.progressRev {
		l.progressRev = rev
	}
	l.progressGen++
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

// readEvents reads up to limit events after rev from kv_log, with the
// previous value of each updated or deleted key. It fails with errCompacted
// when events after rev are gone.
func (b *Backend) readEvents(ctx context.Context, after int64, limit int) ([]*event, error) {
	var evs []*event
	err := b.readTx(ctx, func(tx pgx.Tx) error {
		_, compacted, err := revisions(ctx, tx)
		if err != nil {
			return err
		}
		// Events after a compaction revision keep their previous values, so a
		// watch may start at the compaction revision itself.
		if after < compacted {
			return errCompacted
		}
		rows, err := tx.Query(ctx, `SELECT l.rev, l.key, l.value, p.value, l.prev_rev = 0, l.deleted
			FROM kv_log l LEFT JOIN kv_log p ON p.rev = l.prev_rev
			WHERE l.rev > $1 ORDER BY l.rev LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		now := time.Now()
		next := after + 1
		for rows.Next() {
			e := &event{recorded: now}
			if err := rows.Scan(&e.rev, &e.key, &e.value, &e.prevValue, &e.created, &e.deleted); err != nil {
				return err
			}
			if e.rev != next {
				// Revisions commit in order under the revision lock, so this
				// cannot happen; stop at the gap rather than skip an event.
				klog.ErrorS(nil, "Gap in storage revisions; waiting for it to fill", "want", next, "got", e.rev)
				break
			}
			next++
			evs = append(evs, e)
		}
		return rows.Err()
	})
	if err != nil && err != errCompacted {
		return nil, fmt.Errorf("reading events after revision %d: %w", after, err)
	}
	return evs, err
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
			if _, err := b.pool.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, strconv.FormatInt(rev, 10)); err != nil && ctx.Err() == nil {
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

// listen LISTENs until the connection fails; connected tells whether it got that far.
func (b *Backend) listen(ctx context.Context) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, b.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return false, err
	}
	b.events.poke()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
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
