// Package postgres implements k8s.io/apiserver's storage.Interface on
// PostgreSQL, with the semantics of the etcd3 store: one dense global
// revision in commit order, history for exact-revision reads and watches
// until compaction, TTLs, and value transformers (encryption at rest).
package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/klog/v2"
)

// Options tune the backend. The zero value gives the defaults.
type Options struct {
	// CompactionInterval is how often history is compacted; each compaction
	// removes what was superseded before the previous one, so about one to
	// two intervals of history stay readable. Negative disables compaction.
	CompactionInterval time.Duration
	// PollInterval bounds how long a change made by another instance can go
	// unseen if its notification is lost.
	PollInterval time.Duration
	// ProgressNotifyInterval is how often idle progress-notify watches get a bookmark.
	ProgressNotifyInterval time.Duration
	// TTLInterval is how often expired keys are deleted.
	TTLInterval time.Duration
	// MaxBatch is the most writes committed in one transaction.
	MaxBatch int
}

func (o Options) withDefaults() Options {
	if o.CompactionInterval == 0 {
		o.CompactionInterval = 5 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.ProgressNotifyInterval <= 0 {
		o.ProgressNotifyInterval = 5 * time.Second
	}
	if o.TTLInterval <= 0 {
		o.TTLInterval = 250 * time.Millisecond
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	return o
}

// MaxObjectSize is the largest value stored, as etcd's default request limit.
const MaxObjectSize = 3 * 512 * 1024 // 1.5 MiB

// Backend is one process's connection to the store: it owns the committer,
// the event log that feeds every watch, compaction and TTL expiry. Create
// one per process and a store per resource from it.
type Backend struct {
	pool *pgxpool.Pool
	opts Options

	writes chan *write
	notify chan struct{} // a commit wants announcing
	// committedRev is the newest revision this instance committed; the
	// notifier announces it, so a coalesced announcement is never stale.
	committedRev atomic.Int64
	events       *eventLog
	compact      atomic.Int64 // compaction revision last seen

	// onRangeRead, when set (tests), is told of every range read.
	onRangeRead func(ctx context.Context, start string, rev, limit int64)

	ctx     context.Context
	cancel  context.CancelFunc
	stopped chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// NewBackend migrates the schema and starts the backend's loops.
func NewBackend(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Backend, error) {
	if err := Migrate(ctx, pool); err != nil {
		return nil, fmt.Errorf("migrating storage schema: %w", err)
	}
	b := &Backend{
		pool:    pool,
		opts:    opts.withDefaults(),
		writes:  make(chan *write, 1024),
		notify:  make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	head, err := b.currentRevision(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.refreshCompactRevision(ctx); err != nil {
		return nil, err
	}
	b.events = newEventLog(b, head)
	announceWatchProgressSupport()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(6)
	go b.runCommitter()
	go b.runNotifier(b.ctx)
	go b.runListener(b.ctx)
	go func() { defer b.wg.Done(); b.events.run(b.ctx) }()
	go b.runTTL(b.ctx)
	go b.runCompactor(b.ctx)
	return b, nil
}

// Close stops the backend's loops; it does not close the pool.
func (b *Backend) Close() {
	b.once.Do(func() {
		close(b.stopped)
		b.cancel()
		b.wg.Wait()
	})
}

// ReadyCheck tells whether PostgreSQL answers.
func (b *Backend) ReadyCheck(ctx context.Context) error {
	if _, err := b.currentRevision(ctx); err != nil {
		return fmt.Errorf("postgres storage: %w", err)
	}
	return nil
}

// runTTL deletes expired keys, each as an ordinary delete with its own
// revision, so that watches see them go.
func (b *Backend) runTTL(ctx context.Context) {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.TTLInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rows, err := b.pool.Query(ctx, "SELECT key, mod_rev FROM kv WHERE expires_at <= now() ORDER BY expires_at LIMIT 1000")
		if err != nil {
			if ctx.Err() == nil {
				klog.V(2).InfoS("Looking for expired keys", "err", err)
			}
			continue
		}
		type expired struct {
			key []byte
			rev int64
		}
		var due []expired
		for rows.Next() {
			var e expired
			if err := rows.Scan(&e.key, &e.rev); err != nil {
				break
			}
			due = append(due, e)
		}
		rows.Close()
		for _, e := range due {
			// Conditional on the revision seen: a key updated meanwhile has a new TTL.
			if r := b.submit(ctx, &write{key: e.key, delete: true, expect: e.rev}); r.err != nil && ctx.Err() == nil {
				klog.V(2).InfoS("Deleting expired key", "err", r.err)
			}
		}
	}
}
