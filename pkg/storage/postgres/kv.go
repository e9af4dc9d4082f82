package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
)

// kvRow is one version of one key, as etcd's mvccpb.KeyValue.
type kvRow struct {
	key       []byte
	value     []byte
	modRev    int64
	createRev int64
}

var (
	// errCompacted: the revision asked for is older than the compaction revision.
	errCompacted = errors.New("mvcc: required revision has been compacted")
	// errFutureRev: the revision asked for has not happened yet.
	errFutureRev = errors.New("mvcc: required revision is a future revision")
)

// readTx runs fn in a read-only REPEATABLE READ transaction, so that every
// statement in it sees one snapshot (the revision and the rows agree),
// bounded by the request timeout.
func (b *Backend) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	ctx, cancel := b.requestContext(ctx)
	defer cancel()
	return pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// revisions reads the current and the compacted revision.
func revisions(ctx context.Context, q pgx.Tx) (current, compacted int64, err error) {
	err = q.QueryRow(ctx, sqlRevisions).Scan(&current, &compacted)
	if err != nil {
		return 0, 0, fmt.Errorf("reading revision: %w", err)
	}
	return current, compacted, nil
}

// get reads key at the current revision. It returns the current revision and
// the row, nil when the key does not exist.
func (b *Backend) get(ctx context.Context, key []byte) (*kvRow, int64, error) {
	if err := b.regressionErr(); err != nil {
		return nil, 0, err
	}
	ctx, cancel := b.requestContext(ctx)
	defer cancel()
	before := b.seen.Load()
	var rev int64
	var row kvRow
	var modRev, createRev *int64
	err := b.pool.QueryRow(ctx, sqlGet, key).Scan(&rev, &modRev, &createRev, &row.value)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %q: %w", key, err)
	}
	if err := b.observeRevision(before, rev); err != nil {
		return nil, 0, err
	}
	if modRev == nil {
		return nil, rev, nil
	}
	row.key, row.modRev, row.createRev = key, *modRev, *createRev
	return &row, rev, nil
}

// rangeRequest is a read of the keys in [start, end) (end nil: start only),
// at revision rev (0: the current one), at most limit keys (0: all).
type rangeRequest struct {
	start, end []byte
	rev        int64
	limit      int64
	// count asks for the number of keys in the range when there are more
	// than limit (for RemainingItemCount).
	count bool
}

type rangeResponse struct {
	rows  []*kvRow
	rev   int64 // the revision the read saw
	count int64 // keys in the range, including those past limit (when asked for)
	more  bool
}

// rangeRead reads like etcd's Range: at the current revision or, until it is
// compacted, at an older one. Either way one query reads one page (see
// range-page in queries.sql).
func (b *Backend) rangeRead(ctx context.Context, r rangeRequest) (*rangeResponse, error) {
	if err := b.regressionErr(); err != nil {
		return nil, err
	}
	if b.onRangeRead != nil && r.end != nil {
		b.onRangeRead(ctx, string(r.start), r.rev, r.limit)
	}
	end := r.end
	if end == nil {
		// A single key: the range [key, key+"\x00").
		end = append(append([]byte{}, r.start...), 0)
	}
	before := b.seen.Load()
	var resp rangeResponse
	err := b.readTx(ctx, func(tx pgx.Tx) error {
		current, compacted, err := revisions(ctx, tx)
		if err != nil {
			return err
		}
		if err := b.observeRevision(before, current); err != nil {
			return err
		}
		switch {
		case r.rev > current:
			return errFutureRev
		case r.rev > 0 && r.rev < compacted:
			return errCompacted
		}
		resp.rev = current
		if r.rev > 0 {
			resp.rev = r.rev
		}
		var limit any // NULL: no limit
		if r.limit > 0 {
			limit = r.limit + 1
		}
		rows, err := tx.Query(ctx, sqlRangePage, r.start, end, resp.rev, limit)
		if err != nil {
			return fmt.Errorf("listing %q: %w", r.start, err)
		}
		for rows.Next() {
			row := &kvRow{}
			if err := rows.Scan(&row.key, &row.modRev, &row.createRev, &row.value); err != nil {
				rows.Close()
				return fmt.Errorf("listing %q: %w", r.start, err)
			}
			resp.rows = append(resp.rows, row)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("listing %q: %w", r.start, err)
		}
		resp.count = int64(len(resp.rows))
		if r.limit == 0 || int64(len(resp.rows)) <= r.limit {
			return nil
		}
		resp.rows = resp.rows[:r.limit]
		resp.more = true
		if !r.count {
			return nil
		}
		// The next page's range at this revision holds count - limit keys,
		// and pages at one revision read one immutable state, so a
		// remembered count is exact: a client paging through this process
		// pays for one count, on its first page, instead of one per page.
		if n, ok := b.counts.take(r.start, end, resp.rev); ok {
			resp.count = n
		} else if err := tx.QueryRow(ctx, sqlRangeCount, r.start, end, resp.rev).Scan(&resp.count); err != nil {
			return fmt.Errorf("counting %q: %w", r.start, err)
		}
		next := append(append([]byte{}, resp.rows[len(resp.rows)-1].key...), 0)
		b.counts.put(next, end, resp.rev, resp.count-r.limit)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// currentRevision reads the current global revision.
func (b *Backend) currentRevision(ctx context.Context) (int64, error) {
	if err := b.regressionErr(); err != nil {
		return 0, err
	}
	ctx, cancel := b.requestContext(ctx)
	defer cancel()
	before := b.seen.Load()
	var rev int64
	if err := b.pool.QueryRow(ctx, sqlCurrentRevision).Scan(&rev); err != nil {
		return 0, fmt.Errorf("reading current revision: %w", err)
	}
	if err := b.observeRevision(before, rev); err != nil {
		return 0, err
	}
	return rev, nil
}

// countMemo remembers, for the next page of lists this process served,
// how many keys that page's range holds at the list's revision.
type countMemo struct {
	mu    sync.Mutex
	m     map[string]int64
	order []string // oldest first, for eviction
}

// countMemoSize bounds the lists remembered; a forgotten one is counted again.
const countMemoSize = 1024

func countKey(start, end []byte, rev int64) string {
	return strconv.FormatInt(rev, 10) + "\x00" + string(end) + "\x00" + string(start)
}

func (c *countMemo) put(start, end []byte, rev, n int64) {
	k := countKey(start, end, rev)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]int64)
	}
	if _, ok := c.m[k]; !ok {
		c.order = append(c.order, k)
	}
	c.m[k] = n
	for len(c.order) > countMemoSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}

// take returns and forgets the count for a page (each continue token is
// normally used once; a reused one is counted again).
func (c *countMemo) take(start, end []byte, rev int64) (int64, bool) {
	k := countKey(start, end, rev)
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[k]
	if ok {
		delete(c.m, k)
		for i, o := range c.order {
			if o == k {
				c.order = append(c.order[:i], c.order[i+1:]...)
				break
			}
		}
	}
	return n, ok
}

// prefixEnd is the end of the range of keys that start with prefix, as
// clientv3.GetPrefixRangeEnd.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte{}, prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	// Every byte is 0xff: the range runs to the end of the key space.
	return []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
}
