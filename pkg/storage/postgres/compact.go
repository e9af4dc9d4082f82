package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/klog/v2"
)

// compactRevKey is the key whose writes mark compactions, as in etcd3: the
// marker takes a revision like any write, and every instance learns of a
// compaction from its event.
const compactRevKey = "compact_rev_key"

// Compact removes the history before rev: reads and watches at older
// revisions fail with "too old" afterwards. The newest version of each key
// at or before rev stays.
func (b *Backend) Compact(ctx context.Context, rev int64) error {
	if r := b.submit(ctx, &write{key: []byte(compactRevKey), value: []byte(strconv.FormatInt(rev, 10)), expect: anyRevision}); r.err != nil {
		return fmt.Errorf("marking compaction at %d: %w", rev, r.err)
	}
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		var done int64
		// The row lock on compaction serialises compactors, not writers.
		if err := tx.QueryRow(ctx, "SELECT rev FROM compaction WHERE id = 1 FOR UPDATE").Scan(&done); err != nil {
			return err
		}
		if rev <= done {
			return nil
		}
		// A version goes when a newer one of the same key is at or before rev;
		// a deletion at or before rev goes with everything before it.
		if _, err := tx.Exec(ctx, `DELETE FROM kv_log l WHERE l.rev < $1 AND (l.deleted OR EXISTS (
			SELECT 1 FROM kv_log n WHERE n.key = l.key AND n.rev > l.rev AND n.rev <= $1))`, rev); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM kv_log WHERE rev = $1 AND deleted", rev); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE compaction SET rev = $1 WHERE id = 1", rev)
		return err
	})
	if err != nil {
		return fmt.Errorf("compacting to %d: %w", rev, err)
	}
	b.observeCompaction(rev)
	klog.V(4).InfoS("Compacted storage history", "revision", rev)
	return nil
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
	if err := b.pool.QueryRow(ctx, "SELECT rev FROM compaction WHERE id = 1").Scan(&rev); err != nil {
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
