package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// compactRevKey is the key whose writes mark compactions, as in etcd3: the
// marker takes a revision like any write, and every instance learns of a
// compaction from its event.
const compactRevKey = "compact_rev_key"

// Compact removes the history before rev: reads and watches at older
// revisions fail with "too old" afterwards. The newest version of each key
// at or before rev stays. The history goes first and the compaction marker
// (a write of compact_rev_key, as etcd3's compactor makes, so every
// instance learns of it from its event) comes only once that delete has
// committed: a failed delete must not leave replicas believing history is
// gone that is still there, or the other way round.
func (b *Backend) Compact(ctx context.Context, rev int64) error {
	if err := b.regressionErr(); err != nil {
		return err
	}
	done, err := b.deleteHistory(ctx, rev)
	if err != nil {
		return fmt.Errorf("compacting to %d: %w", rev, err)
	}
	if rev <= done {
		// Another instance compacted this far already, and announced it.
		b.observeCompaction(done)
		return nil
	}
	// The compaction table already says so: this instance's reads and
	// watches refuse older revisions from now on, and other instances learn
	// of it from the table on their next poll even if the marker fails.
	b.observeCompaction(rev)
	b.vacuumWithoutAutovacuum(ctx)
	mctx, cancel := context.WithTimeout(ctx, b.opts.CommitTimeout)
	defer cancel()
	if r := b.submit(mctx, &write{key: []byte(compactRevKey), value: []byte(strconv.FormatInt(rev, 10)), expect: anyRevision}); r.err != nil {
		return fmt.Errorf("compacted to %d, but writing the compaction marker failed: %w", rev, r.err)
	}
	klog.V(4).InfoS("Compacted storage history", "revision", rev)
	return nil
}

// deleteHistory deletes what compacting to rev removes and records rev, in
// one transaction that never holds the revision lock. It returns the
// compaction revision found before, and does nothing if that is rev or later.
func (b *Backend) deleteHistory(ctx context.Context, rev int64) (done int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.CompactionTimeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		// The request sessions' statement timeout is too short for a large history.
		if _, err := tx.Exec(ctx, sqlLocalStmtTimeout, millis(b.opts.CompactionTimeout)); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, sqlCompactionLock).Scan(&done); err != nil {
			return err
		}
		if rev <= done {
			return nil
		}
		if _, err := tx.Exec(ctx, sqlCompactSuperseded, rev); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlCompactDeletionAt, rev); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlCompactionSet, rev)
		return err
	})
	return done, err
}

// vacuumWithoutAutovacuum vacuums the store's tables after a compaction when the server's
// autovacuum is off: else the dead rows of deletes and compaction pile up and every list scans
// them, slowing a plane with history but not a fresh one. With autovacuum on (any production
// server) it does nothing. A failure is logged: it slows reads, it loses nothing.
func (b *Backend) vacuumWithoutAutovacuum(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.CompactionTimeout)
	defer cancel()
	err := func() error {
		conn, err := b.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		var off bool
		if err := conn.QueryRow(ctx, sqlAutovacuumOff).Scan(&off); err != nil || !off {
			return err
		}
		// The request sessions' statement timeout is too short for a large table; RESET
		// brings back the one the session started with.
		if _, err := conn.Exec(ctx, sqlSessionStmtTimeout, millis(b.opts.CompactionTimeout)); err != nil {
			return err
		}
		_, verr := conn.Exec(ctx, sqlVacuum)
		if _, err := conn.Exec(ctx, sqlResetStmtTimeout); err != nil {
			// A session left with the long timeout must not go back to the pool.
			conn.Conn().Close(context.Background())
			return errors.Join(verr, err)
		}
		return verr
	}()
	if err != nil && !errors.Is(err, context.Canceled) {
		klog.ErrorS(err, "Vacuuming storage tables after compaction (the server's autovacuum is off)")
	}
}

func (b *Backend) observeCompaction(rev int64) {
	for {
		cur := b.compact.Load()
		if rev <= cur || b.compact.CompareAndSwap(cur, rev) {
			return
		}
	}
}

func (b *Backend) refreshCompactRevision(ctx context.Context) error {
	var rev int64
	if err := b.pool.QueryRow(ctx, sqlCompactionRevision).Scan(&rev); err != nil {
		return fmt.Errorf("reading compaction revision: %w", err)
	}
	b.observeCompaction(rev)
	return nil
}

// CompactRevision is the newest compaction revision this instance knows of.
func (b *Backend) CompactRevision() int64 { return b.compact.Load() }

// runCompactor compacts, every interval, to the revision that was current
// one interval earlier, as kube-apiserver's compactor does for etcd.
func (b *Backend) runCompactor(ctx context.Context) {
	defer b.wg.Done()
	if b.opts.CompactionInterval < 0 {
		return
	}
	t := time.NewTicker(b.opts.CompactionInterval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if last > 0 {
			if err := b.Compact(ctx, last); err != nil && !errors.Is(err, context.Canceled) {
				klog.ErrorS(err, "Compacting storage history")
			}
		}
		rev, err := b.currentRevision(ctx)
		if err != nil {
			klog.V(2).InfoS("Reading revision for compaction", "err", err)
			continue
		}
		last = rev
	}
}

// runAnalyzer keeps the planner's statistics of kv and kv_log current on a server whose
// autovacuum is off, by autovacuum's own rule. Without statistics the planner takes a range
// of revisions or keys to hold a third of the table: the event log's poll hashed all of kv_log
// and a page of a list sorted its whole namespace, on every call, until the first compaction
// (ten minutes after start) analyzed them. With autovacuum on it does nothing.
func (b *Backend) runAnalyzer(ctx context.Context) {
	defer b.wg.Done()
	if b.opts.AnalyzeInterval < 0 {
		return
	}
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := b.analyzeStale(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Analyzing storage tables (the server's autovacuum is off)")
		}
	}, b.opts.AnalyzeInterval)
}

func (b *Backend) analyzeStale(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.CompactionTimeout)
	defer cancel()
	rows, err := b.pool.Query(ctx, sqlStaleStatistics)
	if err != nil {
		return fmt.Errorf("finding stale statistics: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("finding stale statistics: %w", err)
	}
	for _, table := range tables {
		stmt := sqlAnalyzeKV
		if table == "kv_log" {
			stmt = sqlAnalyzeKVLog
		}
		if _, err := b.pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("analyzing %s: %w", table, err)
		}
		klog.V(4).InfoS("Analyzed storage table", "table", table)
	}
	return nil
}
