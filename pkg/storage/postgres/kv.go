package postgres

import (
	"context"
	"errors"
	"fmt"

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
// statement in it sees one snapshot (the revision and the rows agree).
func (b *Backend) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// revisions reads the current and the compacted revision.
func revisions(ctx context.Context, q pgx.Tx) (current, compacted int64, err error) {
	err = q.QueryRow(ctx, "SELECT m.current_rev, c.rev FROM meta m, compaction c").Scan(&current, &compacted)
	if err != nil {
		return 0, 0, fmt.Errorf("reading revision: %w", err)
	}
	return current, compacted, nil
}

// get reads key at the current revision. It returns the current revision and
// the row, nil when the key does not exist.
func (b *Backend) get(ctx context.Context, key []byte) (*kvRow, int64, error) {
	var rev int64
	var row kvRow
	var modRev, createRev *int64
	err := b.pool.QueryRow(ctx, `SELECT m.current_rev, kv.mod_rev, kv.create_rev, kv.value
		FROM meta m LEFT JOIN kv ON kv.key = $1 WHERE m.id = 1`, key).Scan(&rev, &modRev, &createRev, &row.value)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %q: %w", key, err)
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
}

type rangeResponse struct {
	rows  []*kvRow
	rev   int64 // the revision the read saw
	count int64 // keys in the range, including those past limit
	more  bool
}

// rangeRead reads like etcd's Range: from the current state, or from the
// history at an older revision until that revision is compacted.
func (b *Backend) rangeRead(ctx context.Context, r rangeRequest) (*rangeResponse, error) {
	if b.onRangeRead != nil && r.end != nil {
		b.onRangeRead(ctx, string(r.start), r.rev, r.limit)
	}
	var resp rangeResponse
	err := b.readTx(ctx, func(tx pgx.Tx) error {
		current, compacted, err := revisions(ctx, tx)
		if err != nil {
			return err
		}
		switch {
		case r.rev > current:
			return errFutureRev
		case r.rev > 0 && r.rev < compacted:
			return errCompacted
		}
		resp.rev = current
		historic := r.rev > 0 && r.rev < current
		if historic {
			resp.rev = r.rev
		}
		end := r.end
		if end == nil {
			// A single key: the range [key, key+"\x00").
			end = append(append([]byte{}, r.start...), 0)
		}
		var from, counted string
		if historic {
			// The newest version of each key at or before rev, unless it is a deletion.
			from = `(SELECT DISTINCT ON (key) key, rev AS mod_rev, create_rev, deleted, value FROM kv_log
				WHERE key >= $1 AND key < $2 AND rev <= $3 ORDER BY key, rev DESC) s WHERE NOT deleted`
			counted = `SELECT count(*) FROM ` + from
		} else {
			from = `kv WHERE key >= $1 AND key < $2 AND $3::bigint >= 0`
			counted = `SELECT count(*) FROM ` + from
		}
		query := `SELECT key, mod_rev, create_rev, value FROM ` + from + ` ORDER BY key`
		args := []any{r.start, end, r.rev}
		if r.limit > 0 {
			query += ` LIMIT $4`
			args = append(args, r.limit+1)
		}
		rows, err := tx.Query(ctx, query, args...)
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
		if r.limit > 0 && int64(len(resp.rows)) > r.limit {
			resp.rows = resp.rows[:r.limit]
			resp.more = true
			if err := tx.QueryRow(ctx, counted, r.start, end, r.rev).Scan(&resp.count); err != nil {
				return fmt.Errorf("counting %q: %w", r.start, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// currentRevision reads the current global revision.
func (b *Backend) currentRevision(ctx context.Context) (int64, error) {
	var rev int64
	if err := b.pool.QueryRow(ctx, "SELECT current_rev FROM meta WHERE id = 1").Scan(&rev); err != nil {
		return 0, fmt.Errorf("reading current revision: %w", err)
	}
	return rev, nil
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
