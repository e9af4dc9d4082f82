package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A write is one conditional put or delete, as an etcd transaction
// "if mod_revision(key) = expect then put/delete".
type write struct {
	key    []byte
	value  []byte // nil: delete
	delete bool
	// expect is the mod revision the key must have: 0 means the key must not
	// exist (create), anyRevision means any existing revision (or none, for puts).
	expect int64
	ttl    int64 // seconds; 0 means no expiry
	// getOnFailure: when the condition fails, return the key's current row
	// (read after the batch, outside the revision lock).
	getOnFailure bool

	// deadline is the caller's, if it has one: a batch whose every caller
	// has given up is not worth committing.
	deadline    time.Time
	hasDeadline bool
	// state moves from queued to taken when the committer puts the write in
	// a batch, or to abandoned when its caller gives up first; whichever
	// happens first wins, so an abandoned write is never applied.
	state atomic.Int32
	done  chan writeResult
}

const (
	writeQueued int32 = iota
	writeTaken
	writeAbandoned
)

const anyRevision = -1

type writeResult struct {
	ok  bool
	rev int64  // the write's revision when ok, else the current revision
	cur *kvRow // the key's current row when !ok and getOnFailure (nil: it does not exist)
	err error
}

// ErrClosed is returned for writes submitted after the backend closed.
var ErrClosed = errors.New("postgres storage backend is closed")

// SQLSTATE codes the committer tells apart.
const (
	sqlstateRevisionRegressed = "CMR01" // raised by commit_writes
	sqlstateLockNotAvailable  = "55P03" // lock_timeout
	sqlstateQueryCanceled     = "57014" // statement_timeout or a cancel request
)

// submit queues w for the committer and waits for its outcome, or for ctx
// to end. A write still queued when ctx ends is withdrawn and never
// applied; one already being committed may or may not apply, and the error
// says which of the two happened.
func (b *Backend) submit(ctx context.Context, w *write) writeResult {
	if err := b.regressionErr(); err != nil {
		return writeResult{err: err}
	}
	if err := ctx.Err(); err != nil {
		return writeResult{err: fmt.Errorf("write to %q not submitted: %w", w.key, err)}
	}
	w.done = make(chan writeResult, 1)
	w.deadline, w.hasDeadline = ctx.Deadline()
	b.closeMu.RLock()
	if b.closed {
		b.closeMu.RUnlock()
		return writeResult{err: ErrClosed}
	}
	select {
	case b.writes <- w:
	case <-ctx.Done():
		b.closeMu.RUnlock()
		return writeResult{err: fmt.Errorf("write to %q not applied: gave up before it was queued: %w", w.key, ctx.Err())}
	}
	b.closeMu.RUnlock()

	var r writeResult
	select {
	case r = <-w.done:
	case <-ctx.Done():
		select {
		case r = <-w.done:
		default:
			if w.state.CompareAndSwap(writeQueued, writeAbandoned) {
				return writeResult{err: fmt.Errorf("write to %q not applied: gave up while it was queued: %w", w.key, ctx.Err())}
			}
			return writeResult{err: fmt.Errorf("write to %q: gave up waiting for its commit, which may or may not apply: %w", w.key, ctx.Err())}
		}
	}
	if r.err == nil && !r.ok && w.getOnFailure {
		// The row as of now, not as of the failed condition: at least as
		// new, which is all a caller that retries needs.
		row, _, err := b.get(ctx, w.key)
		if err != nil {
			return writeResult{err: fmt.Errorf("reading %q after a failed condition: %w", w.key, err)}
		}
		r.cur = row
	}
	return r
}

// runCommitter is the group-commit loop: it takes every write waiting and
// commits them in one statement, the way etcd batches raft proposals. One
// batch holds the revision lock at a time, so batching is what lets
// throughput grow with concurrent writers.
func (b *Backend) runCommitter() {
	defer b.wg.Done()
	var carry []*write
	for {
		var batch []*write
		batch, carry = b.nextBatch(carry)
		if batch == nil {
			for _, w := range carry {
				w.done <- writeResult{err: ErrClosed}
			}
			b.failPending(ErrClosed)
			return
		}
		deadline := batchDeadline(batch, b.opts.CommitTimeout)
		ctx, cancel := context.WithDeadline(b.ctx, deadline)
		results, head, err := b.commit(ctx, batch, deadline)
		cancel()
		for i, w := range batch {
			if err != nil {
				w.done <- writeResult{err: err}
				continue
			}
			w.done <- results[i]
		}
		if err == nil {
			b.raiseSeen(head)
			b.events.committed(head)
			b.notifyPeers(head)
		}
	}
}

// nextBatch takes up to MaxBatch writes: first those carried over, then
// whatever is queued, blocking only when there is nothing at all. A batch
// holds each key once, so its conditions are independent of each other
// (commit_writes decides them all against the rows before the batch); a
// second write to a key is carried to the next batch, keeping per-key
// order. Abandoned writes are dropped. It returns a nil batch once the
// backend is stopping.
func (b *Backend) nextBatch(carry []*write) (batch, next []*write) {
	keys := make(map[string]bool, len(carry))
	add := func(w *write) {
		if w.state.Load() == writeAbandoned {
			return
		}
		if keys[string(w.key)] || len(batch) >= b.opts.MaxBatch {
			next = append(next, w)
			return
		}
		if !w.state.CompareAndSwap(writeQueued, writeTaken) {
			return
		}
		keys[string(w.key)] = true
		batch = append(batch, w)
	}
	for _, w := range carry {
		add(w)
	}
	// A carried write lands in next only beside one in batch, so an empty
	// batch means nothing is carried: wait for a write.
	for len(batch) == 0 {
		select {
		case w := <-b.writes:
			add(w)
		case <-b.stopped:
			return nil, next
		}
	}
	for len(batch) < b.opts.MaxBatch {
		select {
		case w := <-b.writes:
			add(w)
		default:
			return batch, next
		}
	}
	return batch, next
}

// batchDeadline is the latest deadline of the batch's callers when every
// one has a deadline, capped by the commit timeout: nobody waits for the
// batch after that, and cancelling it then keeps it from applying late.
func batchDeadline(batch []*write, commitTimeout time.Duration) time.Time {
	limit := time.Now().Add(commitTimeout)
	var latest time.Time
	for _, w := range batch {
		if !w.hasDeadline {
			return limit
		}
		if w.deadline.After(latest) {
			latest = w.deadline
		}
	}
	if latest.Before(limit) {
		return latest
	}
	return limit
}

func (b *Backend) failPending(err error) {
	for {
		select {
		case w := <-b.writes:
			w.done <- writeResult{err: err}
		default:
			return
		}
	}
}

// commit applies batch in one statement (commit_writes, schema.sql) and
// returns each write's outcome and the revision after the batch. The
// revision lock is taken and released inside that statement: no client
// round trip happens while it is held, and the committer session's
// statement_timeout and lock_timeout bound it. No current value travels
// back: a write that fails its condition learns only that, and its caller
// reads the row afterwards if it needs it.
func (b *Backend) commit(ctx context.Context, batch []*write, deadline time.Time) ([]writeResult, int64, error) {
	n := len(batch)
	keys, values := make([][]byte, n), make([][]byte, n)
	deletes := make([]bool, n)
	expects, ttls := make([]int64, n), make([]int64, n)
	notAfter := make([]time.Time, n)
	offset := time.Duration(b.clockOffset.Load())
	for i, w := range batch {
		keys[i], values[i], deletes[i], expects[i], ttls[i] = w.key, w.value, w.delete, w.expect, w.ttl
		if w.delete {
			values[i] = nil
		}
		// Each write is fenced by its own caller's deadline (the batch's
		// for callers without one), in the server's clock.
		d := deadline
		if w.hasDeadline && w.deadline.Before(d) {
			d = w.deadline
		}
		notAfter[i] = d.Add(offset)
	}
	minRev := b.seen.Load()
	if err := ctx.Err(); err != nil {
		// Every caller gave up (or the backend is closing) before the batch
		// went out: say surely, so that none waits out its deadline to retry.
		return nil, 0, fmt.Errorf("committing %d writes: not applied: ended before the batch was sent: %w", n, err)
	}
	if h := b.opts.hooks; h != nil && h.beforeCommit != nil {
		h.beforeCommit(n)
	}
	sent := time.Now()
	rows, err := b.commitPool.Query(ctx, sqlCommitWrites, keys, values, deletes, expects, ttls, notAfter, minRev)
	if err != nil {
		return nil, 0, b.commitError(err, n, minRev)
	}
	results := make([]writeResult, n)
	var head int64
	var serverNow time.Time
	got := 0
	for rows.Next() {
		var ord, rev int64
		if err := rows.Scan(&ord, &rev, &head, &serverNow); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("reading the outcome of a batch of %d writes: %w", n, err)
		}
		if ord < 1 || ord > int64(n) {
			rows.Close()
			return nil, 0, fmt.Errorf("batch of %d writes: outcome for write %d", n, ord)
		}
		switch {
		case rev < 0:
			results[ord-1] = writeResult{err: fmt.Errorf("write to %q not applied: it reached the revision lock after its deadline", batch[ord-1].key)}
		default:
			results[ord-1] = writeResult{ok: rev > 0, rev: rev}
		}
		got++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, b.commitError(err, n, minRev)
	}
	if got != n {
		return nil, 0, fmt.Errorf("batch of %d writes: %d outcomes", n, got)
	}
	b.sampleClock(sent, time.Now(), serverNow)
	if h := b.opts.hooks; h != nil && h.onCommit != nil {
		for i, r := range results {
			if r.ok {
				h.onCommit(batch[i].key, r.rev)
			}
		}
	}
	for i := range results {
		if !results[i].ok && results[i].err == nil {
			results[i].rev = head
		}
	}
	return results, head, nil
}

// commitError explains why a batch failed.
func (b *Backend) commitError(err error, n int, minRev int64) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case sqlstateRevisionRegressed:
			db, perr := strconv.ParseInt(pgErr.Detail, 10, 64)
			if perr != nil {
				db = -1
			}
			return b.regress(db, minRev)
		case sqlstateLockNotAvailable:
			return fmt.Errorf("committing %d writes: not applied: the revision lock was not free within %s (another session holds the meta row): %w",
				n, b.opts.LockTimeout, err)
		case sqlstateQueryCanceled:
			return fmt.Errorf("committing %d writes: not applied: cancelled or over the %s commit timeout: %w", n, b.opts.CommitTimeout, err)
		}
	}
	return fmt.Errorf("committing %d writes: %w", n, err)
}

// clockSampleMaxRTT: a round trip at most this long gives a usable sample of
// the server's clock (the error of the offset is at most the round trip).
const clockSampleMaxRTT = 20 * time.Millisecond

// sampleClock updates the estimate of the server's clock relative to this
// process's from a round trip sent at sent and answered at received, in
// which the server read its clock as server. Deadlines travel to
// commit_writes in the server's clock, so a skewed client clock neither
// refuses every batch nor lets late ones apply.
func (b *Backend) sampleClock(sent, received, server time.Time) {
	rtt := received.Sub(sent)
	if server.IsZero() || rtt > clockSampleMaxRTT {
		return
	}
	mid := sent.Add(rtt / 2)
	b.clockOffset.Store(int64(server.Sub(mid)))
}

// measureClock takes the best of a few samples of the server's clock.
func (b *Backend) measureClock(ctx context.Context) error {
	best := time.Duration(-1)
	for range 3 {
		var server time.Time
		sent := time.Now()
		if err := b.pool.QueryRow(ctx, sqlClock).Scan(&server); err != nil {
			return fmt.Errorf("reading the database's clock: %w", err)
		}
		received := time.Now()
		if rtt := received.Sub(sent); best < 0 || rtt < best {
			best = rtt
			b.clockOffset.Store(int64(server.Sub(sent.Add(rtt / 2))))
		}
	}
	return nil
}
