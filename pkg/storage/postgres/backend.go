// Package postgres implements k8s.io/apiserver's storage.Interface on
// PostgreSQL, with the semantics of the etcd3 store: one dense global
// revision in commit order, history for exact-revision reads and watches
// until compaction, TTLs, and value transformers (encryption at rest).
package postgres

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
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

	// RequestTimeout bounds every database call made for a request (reads,
	// out-of-window watch reads, readiness), whatever the caller's context,
	// and is the statement and idle-in-transaction timeout of the request
	// connections, so the server side gives up too.
	RequestTimeout time.Duration
	// CommitTimeout bounds one batch commit, waiting for the revision lock
	// included; it is the statement timeout of the committer's connection.
	CommitTimeout time.Duration
	// LockTimeout bounds how long a commit waits for the revision lock (held
	// by another replica's commit, or by a stalled session).
	LockTimeout time.Duration
	// PollTimeout bounds one read of the event log.
	PollTimeout time.Duration
	// CompactionTimeout bounds one compaction's delete of old history.
	CompactionTimeout time.Duration
	// AnalyzeInterval is how often, on a server whose autovacuum is off, the
	// backend looks for tables whose statistics have gone stale and analyzes
	// them, as autovacuum would. Negative disables it.
	AnalyzeInterval time.Duration
	// ReadyMaxPollAge: readiness fails when the event log has not read from
	// PostgreSQL successfully for this long, since every watch of this
	// process is then silently behind.
	ReadyMaxPollAge time.Duration
	// EventPageBytes caps the bytes (keys, values and previous values) one
	// read of the event log brings in, for the poller and for watches that
	// read history older than the in-memory window. A single larger event
	// is still read, alone.
	EventPageBytes int

	// hooks lets tests of this package observe the committer.
	hooks *testHooks
}

// testHooks are called by the committer when set (tests only).
type testHooks struct {
	// beforeCommit is called just before a batch is sent.
	beforeCommit func(writes int)
	// onCommit is told of every write a batch applied.
	onCommit func(key []byte, rev int64)
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
	if o.RequestTimeout <= 0 {
		// kube-apiserver's default request timeout.
		o.RequestTimeout = time.Minute
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 10 * time.Second
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 5 * time.Second
	}
	if o.LockTimeout > o.CommitTimeout {
		o.LockTimeout = o.CommitTimeout
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 5 * time.Second
	}
	if o.CompactionTimeout <= 0 {
		o.CompactionTimeout = 5 * time.Minute
	}
	if o.AnalyzeInterval == 0 {
		o.AnalyzeInterval = 30 * time.Second
	}
	if o.ReadyMaxPollAge <= 0 {
		o.ReadyMaxPollAge = 15 * time.Second
	}
	if o.EventPageBytes <= 0 {
		o.EventPageBytes = 4 << 20
	}
	return o
}

// MaxObjectSize is the largest value stored, as etcd's default request limit.
const MaxObjectSize = 3 * 512 * 1024 // 1.5 MiB

// Backend is one process's connection to the store: it owns the committer,
// the event log that feeds every watch, compaction and TTL expiry. Create
// one per process and a store per resource from it.
type Backend struct {
	opts Options

	// Three pools, so that one kind of work cannot starve another: slow
	// lists queueing for request connections never delay commits or watch
	// delivery, and a stuck commit never delays reads.
	pool       *pgxpool.Pool // requests: reads, out-of-window watch reads, TTL scans, compaction
	commitPool *pgxpool.Pool // the committer's one connection
	eventPool  *pgxpool.Pool // the event log poller and the commit announcer
	listenConf *pgxpool.Config

	writes chan *write
	notify chan struct{} // a commit wants announcing
	// committedRev is the newest revision this instance committed; the
	// notifier announces it, so a coalesced announcement is never stale.
	committedRev atomic.Int64
	events       *eventLog
	compact      atomic.Int64 // compaction revision last seen

	// seen is the newest revision this process has observed (committed,
	// read or delivered). The database's revision must never be behind it.
	seen      atomic.Int64
	regressed atomic.Pointer[RevisionRegressedError]

	// clockOffset is the server's clock minus this process's, in nanoseconds.
	clockOffset atomic.Int64

	// counts remembers, per list page served, how many keys the next page's
	// range held at the list's revision (see rangeRead).
	counts countMemo

	// onRangeRead, when set (tests), is told of every range read.
	onRangeRead func(ctx context.Context, start string, rev, limit int64)

	ctx     context.Context
	cancel  context.CancelFunc
	stopped chan struct{}
	// closeMu and closed make Close and submit agree: a write is either
	// queued before Close starts (and then answered) or refused.
	closeMu sync.RWMutex
	closed  bool
	once    sync.Once
	wg      sync.WaitGroup
}

// NewBackend migrates the schema and starts the backend's loops. pool gives
// the connection settings and the size of the request pool; the backend
// opens pools of its own from its configuration (with the timeouts above set
// on their sessions) and never uses pool itself, which the caller closes.
func NewBackend(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Backend, error) {
	opts = opts.withDefaults()
	b := &Backend{
		opts:       opts,
		writes:     make(chan *write, 1024),
		notify:     make(chan struct{}, 1),
		stopped:    make(chan struct{}),
		listenConf: pool.Config(),
	}
	base := pool.Config()
	var err error
	b.pool, err = newPool(ctx, base, base.MaxConns, map[string]string{
		"statement_timeout":                   millis(opts.RequestTimeout),
		"idle_in_transaction_session_timeout": millis(opts.RequestTimeout),
		// The best plan of a history read depends on how far behind the
		// current revision it reads (few changed keys, or many): a generic
		// plan of a prepared statement would pick one for all.
		"plan_cache_mode": "force_custom_plan",
	}, false)
	if err == nil {
		b.commitPool, err = newPool(ctx, base, 1, map[string]string{
			"statement_timeout":                   millis(opts.CommitTimeout),
			"lock_timeout":                        millis(opts.LockTimeout),
			"idle_in_transaction_session_timeout": millis(opts.CommitTimeout),
			// commit_writes relies on each of its statements taking a new
			// snapshot once the lock is held, which READ COMMITTED gives,
			// whatever default the database or role sets.
			"default_transaction_isolation": "read committed",
		}, true)
	}
	if err == nil {
		b.eventPool, err = newPool(ctx, base, 2, map[string]string{
			"statement_timeout":                   millis(opts.PollTimeout),
			"idle_in_transaction_session_timeout": millis(opts.PollTimeout),
			"plan_cache_mode":                     "force_custom_plan",
		}, false)
	}
	if err != nil {
		b.closePools()
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := Migrate(startCtx, b.pool); err != nil {
		b.closePools()
		return nil, fmt.Errorf("migrating storage schema: %w", err)
	}
	if err := b.measureClock(startCtx); err != nil {
		b.closePools()
		return nil, err
	}
	head, err := b.currentRevision(startCtx)
	if err != nil {
		b.closePools()
		return nil, err
	}
	if err := b.refreshCompactRevision(startCtx); err != nil {
		b.closePools()
		return nil, err
	}
	b.events = newEventLog(b, head)
	announceWatchProgressSupport()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(7)
	go b.runCommitter()
	go b.runNotifier(b.ctx)
	go b.runListener(b.ctx)
	go func() { defer b.wg.Done(); b.events.run(b.ctx) }()
	go b.runTTL(b.ctx)
	go b.runCompactor(b.ctx)
	go b.runAnalyzer(b.ctx)
	return b, nil
}

// newPool opens a pool like base with at most conns connections and params
// set on every session. cancelOnTimeout makes a call whose context ends
// ask the server to cancel the statement (rather than only dropping the
// connection), so an abandoned commit stops instead of running on.
func newPool(ctx context.Context, base *pgxpool.Config, conns int32, params map[string]string, cancelOnTimeout bool) (*pgxpool.Pool, error) {
	cfg := base.Copy()
	cfg.MaxConns = max(conns, 1)
	cfg.MinConns = 0
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	if cancelOnTimeout {
		cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
			// The deadline is the fallback when the cancel request cannot
			// reach the server either (a frozen network).
			return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
		}
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating PostgreSQL pool: %w", err)
	}
	return p, nil
}

func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func (b *Backend) closePools() {
	for _, p := range []*pgxpool.Pool{b.pool, b.commitPool, b.eventPool} {
		if p != nil {
			p.Close()
		}
	}
}

// Close stops the backend's loops and closes its pools. Writes submitted
// after Close starts fail with ErrClosed; those queued before are answered.
func (b *Backend) Close() {
	b.once.Do(func() {
		b.closeMu.Lock()
		b.closed = true
		b.closeMu.Unlock()
		close(b.stopped)
		b.cancel()
		b.wg.Wait()
		b.closePools()
	})
}

// ReadyCheck tells whether this process can serve: PostgreSQL answers, the
// event log that feeds every watch keeps up, and the database's revision
// has not gone backwards.
func (b *Backend) ReadyCheck(ctx context.Context) error {
	if err := b.watchHealth(); err != nil {
		return err
	}
	if _, err := b.currentRevision(ctx); err != nil {
		return fmt.Errorf("postgres storage: %w", err)
	}
	return nil
}

// watchHealth is what readiness knows without asking PostgreSQL: whether
// the revision went backwards and whether the event log keeps up.
func (b *Backend) watchHealth() error {
	if err := b.regressionErr(); err != nil {
		return fmt.Errorf("postgres storage: %w", err)
	}
	if age, lastErr := b.events.pollAge(); age > b.opts.ReadyMaxPollAge {
		return fmt.Errorf("postgres storage: watch events not read from PostgreSQL for %s (limit %s); last error: %v",
			age.Round(time.Millisecond), b.opts.ReadyMaxPollAge, lastErr)
	}
	return nil
}

// requestContext bounds a database call made for a request.
func (b *Backend) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.opts.RequestTimeout)
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
		if b.regressionErr() != nil {
			continue
		}
		due, err := b.expiredKeys(ctx)
		if err != nil {
			if ctx.Err() == nil {
				klog.V(2).InfoS("Looking for expired keys", "err", err)
			}
			continue
		}
		for _, e := range due {
			// Conditional on the revision seen: a key updated meanwhile has a new TTL.
			wctx, cancel := context.WithTimeout(ctx, b.opts.CommitTimeout)
			r := b.submit(wctx, &write{key: e.key, delete: true, expect: e.modRev})
			cancel()
			if r.err != nil && ctx.Err() == nil {
				klog.V(2).InfoS("Deleting expired key", "err", r.err)
			}
		}
	}
}

func (b *Backend) expiredKeys(ctx context.Context) ([]kvRow, error) {
	ctx, cancel := b.requestContext(ctx)
	defer cancel()
	rows, err := b.pool.Query(ctx, sqlExpiredKeys)
	if err != nil {
		return nil, fmt.Errorf("reading expired keys: %w", err)
	}
	defer rows.Close()
	var due []kvRow
	for rows.Next() {
		var e kvRow
		if err := rows.Scan(&e.key, &e.modRev); err != nil {
			return nil, fmt.Errorf("reading expired keys: %w", err)
		}
		due = append(due, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading expired keys: %w", err)
	}
	return due, nil
}
