package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/klog/v2"
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

	done chan writeResult
}

const anyRevision = -1

// commitTimeout bounds one batch's transaction.
const commitTimeout = 30 * time.Second

type writeResult struct {
	ok  bool
	rev int64  // the write's revision when ok, else the current revision
	cur *kvRow // the key's current row when !ok (nil: it does not exist)
	err error
}

// ErrClosed is returned for writes submitted after the backend closed.
var ErrClosed = errors.New("postgres storage backend is closed")

// submit queues w for the committer and waits for its outcome.
func (b *Backend) submit(ctx context.Context, w *write) writeResult {
	w.done = make(chan writeResult, 1)
	select {
	case b.writes <- w:
	case <-ctx.Done():
		return writeResult{err: ctx.Err()}
	case <-b.stopped:
		return writeResult{err: ErrClosed}
	}
	// Once queued the write will be decided; wait for it even if ctx ends, so a
	// caller never reports failure for a write that committed.
	return <-w.done
}

// runCommitter is the group-commit loop: it takes every write waiting and
// commits them in one transaction, the way etcd batches raft proposals. One
// transaction holds the revision lock at a time, so batching is what lets
// throughput grow with concurrent writers.
func (b *Backend) runCommitter() {
	defer b.wg.Done()
	batch := make([]*write, 0, b.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case w := <-b.writes:
			batch = append(batch, w)
		case <-b.stopped:
			b.failPending(ErrClosed)
			return
		}
	drain:
		for len(batch) < b.opts.MaxBatch {
			select {
			case w := <-b.writes:
				batch = append(batch, w)
			default:
				break drain
			}
		}
		// A connection that stops answering must not stall every writer.
		ctx, cancel := context.WithTimeout(b.ctx, commitTimeout)
		results, head, err := b.commit(ctx, batch)
		cancel()
		for i, w := range batch {
			if err != nil {
				w.done <- writeResult{err: err}
				continue
			}
			w.done <- results[i]
		}
		if err == nil {
			b.events.committed(head)
			b.notifyPeers(head)
		}
	}
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

// commit applies batch in one transaction and returns each write's outcome
// and the revision after the batch.
func (b *Backend) commit(ctx context.Context, batch []*write) ([]writeResult, int64, error) {
	keys := make([][]byte, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	for _, w := range batch {
		if !seen[string(w.key)] {
			seen[string(w.key)] = true
			keys = append(keys, w.key)
		}
	}

	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("acquiring connection for writes: %w", err)
	}
	// BEGIN travels with the first batch and COMMIT with the second, so the
	// whole transaction is two round trips. Whatever did not commit is rolled
	// back here; a connection left inside a transaction is dropped by the pool.
	finished := false
	defer func() {
		if !finished {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
				klog.V(2).InfoS("Rolling back write transaction", "err", err)
			}
			cancel()
		}
		conn.Release()
	}()

	// Take the revision lock, then read the current rows of every key in the
	// batch: all of it in one round trip.
	pre := &pgx.Batch{}
	pre.Queue("BEGIN")
	var base int64
	pre.Queue("SELECT current_rev FROM meta WHERE id = 1 FOR UPDATE").QueryRow(func(r pgx.Row) error {
		return r.Scan(&base)
	})
	state := make(map[string]*kvRow, len(keys))
	pre.Queue("SELECT key, mod_rev, create_rev, value FROM kv WHERE key = ANY($1)", keys).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			row := &kvRow{}
			if err := rows.Scan(&row.key, &row.modRev, &row.createRev, &row.value); err != nil {
				return err
			}
			state[string(row.key)] = row
		}
		return rows.Err()
	})
	if err := conn.SendBatch(ctx, pre).Close(); err != nil {
		return nil, 0, fmt.Errorf("locking revision: %w", err)
	}

	results := make([]writeResult, len(batch))
	var log logRows
	ttls := make(map[string]int64)
	touched := make(map[string]bool)
	rev := base
	for i, w := range batch {
		k := string(w.key)
		cur := state[k]
		if !w.allowed(cur) {
			results[i] = writeResult{cur: cur}
			continue
		}
		rev++
		touched[k] = true
		if w.delete {
			log.add(rev, w.key, cur.createRev, cur.modRev, true, nil)
			state[k] = nil
		} else {
			next := &kvRow{key: w.key, value: w.value, modRev: rev, createRev: rev}
			var prev int64
			if cur != nil {
				next.createRev, prev = cur.createRev, cur.modRev
			}
			log.add(rev, w.key, next.createRev, prev, false, w.value)
			state[k] = next
			ttls[k] = w.ttl
		}
		results[i] = writeResult{ok: true, rev: rev}
	}
	for i := range results {
		if !results[i].ok {
			results[i].rev = rev
		}
	}
	if rev == base {
		// Every write failed its condition: nothing to commit (the deferred
		// ROLLBACK ends the transaction).
		return results, rev, nil
	}

	var delKeys [][]byte
	var put struct {
		keys, values           [][]byte
		modRevs, createRevs, t []int64
	}
	for _, key := range keys {
		if !touched[string(key)] {
			continue
		}
		row := state[string(key)]
		if row == nil {
			delKeys = append(delKeys, key)
			continue
		}
		put.keys = append(put.keys, key)
		put.values = append(put.values, row.value)
		put.modRevs = append(put.modRevs, row.modRev)
		put.createRevs = append(put.createRevs, row.createRev)
		put.t = append(put.t, ttls[string(key)])
	}

	apply := &pgx.Batch{}
	apply.Queue(`INSERT INTO kv_log (rev, key, create_rev, prev_rev, deleted, value)
		SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::bigint[], $5::boolean[], $6::bytea[])`,
		log.revs, log.keys, log.createRevs, log.prevRevs, log.deleted, log.values)
	if len(delKeys) > 0 {
		apply.Queue("DELETE FROM kv WHERE key = ANY($1)", delKeys)
	}
	if len(put.keys) > 0 {
		apply.Queue(`INSERT INTO kv (key, value, mod_rev, create_rev, expires_at)
			SELECT k, v, m, c, CASE WHEN t > 0 THEN now() + t * interval '1 second' END
			FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(k, v, m, c, t)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev,
				create_rev = excluded.create_rev, expires_at = excluded.expires_at`,
			put.keys, put.values, put.modRevs, put.createRevs, put.t)
	}
	apply.Queue("UPDATE meta SET current_rev = $1 WHERE id = 1", rev)
	apply.Queue("COMMIT")
	if err := conn.SendBatch(ctx, apply).Close(); err != nil {
		return nil, 0, fmt.Errorf("committing revisions %d-%d: %w", base+1, rev, err)
	}
	finished = true
	return results, rev, nil
}

func (w *write) allowed(cur *kvRow) bool {
	switch {
	case w.delete:
		return cur != nil && (w.expect == anyRevision || cur.modRev == w.expect)
	case w.expect == anyRevision:
		return true
	case w.expect == 0:
		return cur == nil
	default:
		return cur != nil && cur.modRev == w.expect
	}
}

// logRows are the kv_log rows of a batch, column by column for unnest.
type logRows struct {
	revs, createRevs, prevRevs []int64
	keys, values               [][]byte
	deleted                    []bool
}

func (l *logRows) add(rev int64, key []byte, createRev, prevRev int64, deleted bool, value []byte) {
	l.revs = append(l.revs, rev)
	l.keys = append(l.keys, key)
	l.createRevs = append(l.createRevs, createRev)
	l.prevRevs = append(l.prevRevs, prevRev)
	l.deleted = append(l.deleted, deleted)
	l.values = append(l.values, value)
}
