// Package postgres is the embedded metric store: tables in the schema "metrics" of cloud-api's
// own PostgreSQL database, so metrics need no extra service. Each scrape becomes one row of
// increases (a counter's value minus the pod's previous one, or its value after a restart) in
// hourly partitions; the leader rolls finished hours up into daily-partitioned hourly totals,
// drops raw hours past the raw retention and everything past the retention.
package postgres

import (
	"context"
	_ "embed"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/calyptia/core-management-plane/internal/pgmigrate"
	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/metricstore"
)

//go:embed schema.sql
var schemaSQL string

var schema = pgmigrate.Schema{
	Name:         "metrics",
	SQL:          schemaSQL,
	VersionTable: "metrics.schema_migrations",
	Prelude:      "CREATE SCHEMA IF NOT EXISTS metrics",
	LockID:       0x636f72655f6d6d, // "core_mm"
}

// partitionLockID serialises partition DDL between replicas.
const partitionLockID = 0x636f72655f6d70 + 1

// Options are the store's retention settings; zero values take the defaults.
type Options struct {
	// Retention is how long metrics are kept at all (default 30 days).
	Retention time.Duration
	// RawRetention is how long each scrape is kept before only hourly totals remain (default 6 h).
	RawRetention time.Duration
	// RollupDelay is how long after an hour ends it is rolled up (default 5 min), so that
	// scrapes sent late still count.
	RollupDelay time.Duration
}

// Store is the PostgreSQL metric store.
type Store struct {
	pool *pgxpool.Pool
	opts Options

	mu     sync.RWMutex
	ids    map[seriesKey]int32
	byID   map[int32]seriesKey
	hours  map[time.Time]bool // samples partitions known to exist
	days   map[time.Time]bool // hourly partitions known to exist
	oldest struct {
		at      time.Time // the oldest raw hour, as last read
		checked time.Time
	}
}

type seriesKey struct {
	measurement, plugin, name string
}

var (
	_ metricstore.Store      = &Store{}
	_ metricstore.Maintainer = &Store{}
)

// New applies the metrics schema's migrations and returns the store.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	if opts.Retention <= 0 {
		opts.Retention = 30 * 24 * time.Hour
	}
	if opts.RawRetention <= 0 {
		opts.RawRetention = 6 * time.Hour
	}
	if opts.RollupDelay <= 0 {
		opts.RollupDelay = 5 * time.Minute
	}
	if opts.RawRetention > opts.Retention {
		return nil, fmt.Errorf("raw retention %s is longer than retention %s", opts.RawRetention, opts.Retention)
	}
	if err := schema.Apply(ctx, pool); err != nil {
		return nil, err
	}
	return &Store{
		pool: pool, opts: opts,
		ids: map[seriesKey]int32{}, byID: map[int32]seriesKey{},
		hours: map[time.Time]bool{}, days: map[time.Time]bool{},
	}, nil
}

// seriesIDs interns the counter names of keys.
func (s *Store) seriesIDs(ctx context.Context, keys map[seriesKey]bool) (map[seriesKey]int32, error) {
	out := make(map[seriesKey]int32, len(keys))
	var missing []seriesKey
	s.mu.RLock()
	for k := range keys {
		if id, ok := s.ids[k]; ok {
			out[k] = id
		} else {
			missing = append(missing, k)
		}
	}
	s.mu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	ms, ps, ns, gs := make([]string, len(missing)), make([]string, len(missing)), make([]string, len(missing)), make([]bool, len(missing))
	for i, k := range missing {
		ms[i], ps[i], ns[i], gs[i] = k.measurement, k.plugin, k.name, metricstore.IsGauge(k.measurement)
	}
	if _, err := s.pool.Exec(ctx, sqlInternSeries, ms, ps, ns, gs); err != nil {
		return nil, fmt.Errorf("interning counter names: %w", err)
	}
	err := s.learn(ctx, func(id int32, k seriesKey) { out[k] = id }, sqlSeriesByKey, ms, ps, ns)
	if err != nil {
		return nil, fmt.Errorf("reading counter ids: %w", err)
	}
	return out, nil
}

// learn runs a query of (id, measurement, plugin, name) rows, caches them and hands each to fn.
func (s *Store) learn(ctx context.Context, fn func(int32, seriesKey), sql string, args ...any) error {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for rows.Next() {
		var id int32
		var k seriesKey
		if err := rows.Scan(&id, &k.measurement, &k.plugin, &k.name); err != nil {
			return err
		}
		s.ids[k], s.byID[id] = id, k
		fn(id, k)
	}
	return rows.Err()
}

// names resolves series ids, reading those this replica has not seen.
func (s *Store) names(ctx context.Context, ids map[int32]bool) (map[int32]seriesKey, error) {
	out := make(map[int32]seriesKey, len(ids))
	var missing []int32
	s.mu.RLock()
	for id := range ids {
		if k, ok := s.byID[id]; ok {
			out[id] = k
		} else {
			missing = append(missing, id)
		}
	}
	s.mu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	if err := s.learn(ctx, func(id int32, k seriesKey) { out[id] = k }, sqlSeriesByID, missing); err != nil {
		return nil, fmt.Errorf("reading counter names: %w", err)
	}
	return out, nil
}

func hourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
func dayOf(t time.Time) time.Time  { return t.UTC().Truncate(24 * time.Hour) }

// ensureHours creates the samples partitions of the given hours.
func (s *Store) ensureHours(ctx context.Context, hours map[time.Time]bool) error {
	for h := range hours {
		s.mu.RLock()
		known := s.hours[h]
		s.mu.RUnlock()
		if known {
			continue
		}
		// Partition bounds cannot be parameters; the name and bounds come from h alone.
		ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS metrics.%s PARTITION OF metrics.samples FOR VALUES FROM ('%s') TO ('%s')`,
			hourPartition(h), h.Format(time.RFC3339), h.Add(time.Hour).Format(time.RFC3339))
		if err := s.ddl(ctx, ddl); err != nil {
			return fmt.Errorf("creating the samples partition of %s: %w", h.Format(time.RFC3339), err)
		}
		s.mu.Lock()
		s.hours[h] = true
		s.mu.Unlock()
	}
	return nil
}

func (s *Store) ensureDay(ctx context.Context, d time.Time) error {
	s.mu.RLock()
	known := s.days[d]
	s.mu.RUnlock()
	if known {
		return nil
	}
	ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS metrics.%s PARTITION OF metrics.hourly FOR VALUES FROM ('%s') TO ('%s')`,
		dayPartition(d), d.Format(time.RFC3339), d.Add(24*time.Hour).Format(time.RFC3339))
	if err := s.ddl(ctx, ddl); err != nil {
		return fmt.Errorf("creating the hourly partition of %s: %w", d.Format("2006-01-02"), err)
	}
	s.mu.Lock()
	s.days[d] = true
	s.mu.Unlock()
	return nil
}

// ddl runs partition DDL under a transaction-scoped advisory lock: two replicas creating the
// same partition at once would otherwise collide in the catalog.
func (s *Store) ddl(ctx context.Context, stmt string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(partitionLockID)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, stmt)
		return err
	})
}

func hourPartition(h time.Time) string { return "samples_" + h.UTC().Format("2006010215") }
func dayPartition(d time.Time) string  { return "hourly_" + d.UTC().Format("20060102") }

// partitions lists the hours (or days) of a partitioned table's partitions, oldest first.
func (s *Store) partitions(ctx context.Context, parent, prefix, layout string) ([]time.Time, error) {
	rows, err := s.pool.Query(ctx, sqlPartitions, parent)
	if err != nil {
		return nil, fmt.Errorf("listing partitions of %s: %w", parent, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing partitions of %s: %w", parent, err)
	}
	var out []time.Time
	for _, n := range names {
		if len(n) <= len(prefix) || n[:len(prefix)] != prefix {
			continue
		}
		t, err := time.Parse(layout, n[len(prefix):])
		if err != nil {
			continue
		}
		out = append(out, t.UTC())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out, nil
}

// oldestRaw is the start of the oldest hour whose scrapes are still kept (now when none is).
func (s *Store) oldestRaw(ctx context.Context, now time.Time) (time.Time, error) {
	s.mu.RLock()
	at, checked := s.oldest.at, s.oldest.checked
	s.mu.RUnlock()
	if now.Sub(checked) < 30*time.Second {
		return at, nil
	}
	hours, err := s.partitions(ctx, "metrics.samples", "samples_", "2006010215")
	if err != nil {
		return time.Time{}, err
	}
	at = hourOf(now)
	if len(hours) > 0 && hours[0].Before(at) {
		at = hours[0]
	}
	s.mu.Lock()
	s.oldest.at, s.oldest.checked = at, now
	s.mu.Unlock()
	return at, nil
}

// forgetOldest makes the next query read the partitions again (after retention dropped some).
func (s *Store) forgetOldest() {
	s.mu.Lock()
	s.oldest.checked = time.Time{}
	s.mu.Unlock()
}

// Queries, all parameterised. Partition DDL is the only SQL built from values, from times.
const (
	sqlInternSeries = `INSERT INTO metrics.series (measurement, plugin, name, gauge)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[]) ON CONFLICT DO NOTHING`
	sqlSeriesByKey = `SELECT s.id, s.measurement, s.plugin, s.name FROM metrics.series s
		JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(m, p, n) ON s.measurement = k.m AND s.plugin = k.p AND s.name = k.n`
	sqlSeriesByID = `SELECT id, measurement, plugin, name FROM metrics.series WHERE id = ANY($1::integer[])`
	sqlPartitions = `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass`
	sqlPlaceholderLast = `INSERT INTO metrics.last (namespace, pipeline, pod, ts, series, vals)
		SELECT $1, k.pipeline, k.pod, '0001-01-01T00:00:00Z', '{}', '{}'
		FROM unnest($2::text[], $3::text[]) AS k(pipeline, pod) ORDER BY k.pipeline, k.pod
		ON CONFLICT (namespace, pipeline, pod) DO NOTHING`
	sqlLastForUpdate = `SELECT l.pipeline, l.pod, l.ts, l.start_time, l.series, l.vals FROM metrics.last l
		JOIN unnest($2::text[], $3::text[]) AS k(pipeline, pod) ON l.pipeline = k.pipeline AND l.pod = k.pod
		WHERE l.namespace = $1 ORDER BY l.pipeline, l.pod FOR UPDATE OF l`
	sqlUpsertLast = `INSERT INTO metrics.last (namespace, pipeline, pod, ts, start_time, series, vals)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (namespace, pipeline, pod) DO UPDATE
		SET ts = excluded.ts, start_time = excluded.start_time, series = excluded.series, vals = excluded.vals`
	sqlRolledThrough = `SELECT max(hour) FROM metrics.rollups`
)

// now is time.Now, replaceable in tests of retention.
var now = time.Now

// Write stores a batch's scrapes in one transaction.
func (s *Store) Write(ctx context.Context, namespace, coreInstance string, scrapes []core.MetricsScrape) (int, int, error) {
	if len(scrapes) == 0 {
		return 0, 0, nil
	}
	keys := map[seriesKey]bool{}
	hours := map[time.Time]bool{}
	limit := now().Add(-s.opts.RawRetention)
	for i := range scrapes {
		sc := &scrapes[i]
		if sc.Time.Time.Before(limit) {
			return 0, 0, fmt.Errorf("scrapes[%d] (pipeline %s, pod %s) at %s: %w", i, sc.Pipeline, sc.Pod, sc.Time.UTC().Format(time.RFC3339), metricstore.ErrTooOld)
		}
		hours[hourOf(sc.Time.Time)] = true
		for _, c := range sc.Counters {
			keys[seriesKey{c.Measurement, c.Plugin, c.Name}] = true
		}
	}
	ids, err := s.seriesIDs(ctx, keys)
	if err != nil {
		return 0, 0, err
	}
	if err := s.ensureHours(ctx, hours); err != nil {
		return 0, 0, err
	}
	// Oldest first, so each pod's increases chain through the batch.
	order := make([]*core.MetricsScrape, len(scrapes))
	for i := range scrapes {
		order[i] = &scrapes[i]
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].Time.Time.Before(order[j].Time.Time) })

	accepted, duplicates := 0, 0
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		accepted, duplicates = 0, 0
		var rolled *time.Time
		if err := tx.QueryRow(ctx, sqlRolledThrough).Scan(&rolled); err != nil {
			return fmt.Errorf("reading rolled-up hours: %w", err)
		}
		last, err := lockLast(ctx, tx, namespace, order)
		if err != nil {
			return err
		}
		var copyRows [][]any
		changed := map[podKey]bool{}
		for _, sc := range order {
			t := timeOf(sc)
			if rolled != nil && t.Before(rolled.Add(time.Hour)) {
				// Its hour is summed up already; counting it now would count it in one place
				// and not the other. Late scrapes are rare: agents send as they scrape.
				duplicates++
				continue
			}
			k := podKey{sc.Pipeline, sc.Pod}
			prev := last[k]
			if prev != nil && !t.After(prev.ts) {
				duplicates++
				continue
			}
			series, deltas, next := increases(sc, ids, prev)
			copyRows = append(copyRows, []any{namespace, coreInstance, sc.Pipeline, sc.Pod, t, series, deltas})
			last[k], changed[k] = next, true
			accepted++
		}
		if len(copyRows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"metrics", "samples"},
				[]string{"namespace", "core_instance", "pipeline", "pod", "ts", "series", "deltas"}, pgx.CopyFromRows(copyRows)); err != nil {
				return fmt.Errorf("storing scrapes: %w", err)
			}
		}
		batch := &pgx.Batch{}
		for k := range changed {
			st := last[k]
			batch.Queue(sqlUpsertLast, namespace, k.pipeline, k.pod, st.ts, st.start, st.series, st.vals)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("recording the last scrapes: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return accepted, duplicates, nil
}

type podKey struct{ pipeline, pod string }

// timeOf is a scrape's time as PostgreSQL keeps it, to the microsecond, so a retry compares
// equal to what was stored.
func timeOf(sc *core.MetricsScrape) time.Time { return sc.Time.Time.UTC().Truncate(time.Microsecond) }

type lastScrape struct {
	ts     time.Time
	start  *time.Time
	series []int32
	vals   []int64
}

func lockLast(ctx context.Context, tx pgx.Tx, namespace string, scrapes []*core.MetricsScrape) (map[podKey]*lastScrape, error) {
	seen := map[podKey]bool{}
	var pipelines, pods []string
	for _, sc := range scrapes {
		k := podKey{sc.Pipeline, sc.Pod}
		if !seen[k] {
			seen[k] = true
			pipelines, pods = append(pipelines, sc.Pipeline), append(pods, sc.Pod)
		}
	}
	// Rows first, so that every pod has one to lock, even a new one; in one order, so that two
	// batches of the same pods (a retry racing the original) wait for each other instead of
	// deadlocking. A placeholder has no previous values.
	if _, err := tx.Exec(ctx, sqlPlaceholderLast, namespace, pipelines, pods); err != nil {
		return nil, fmt.Errorf("preparing the last scrapes: %w", err)
	}
	rows, err := tx.Query(ctx, sqlLastForUpdate, namespace, pipelines, pods)
	if err != nil {
		return nil, fmt.Errorf("reading the last scrapes: %w", err)
	}
	defer rows.Close()
	out := map[podKey]*lastScrape{}
	for rows.Next() {
		var k podKey
		st := &lastScrape{}
		if err := rows.Scan(&k.pipeline, &k.pod, &st.ts, &st.start, &st.series, &st.vals); err != nil {
			return nil, fmt.Errorf("reading the last scrapes: %w", err)
		}
		if st.ts.IsZero() || st.ts.Year() < 1000 {
			continue // a placeholder
		}
		out[k] = st
	}
	return out, rows.Err()
}

// increases turns a scrape into each counter's increase since prev (the pod's previous
// scrape), and the state the next scrape starts from. A counter starts over when its Fluent Bit
// restarted (a new start time) or reloaded (its value went down): its increase is then its value.
func increases(sc *core.MetricsScrape, ids map[seriesKey]int32, prev *lastScrape) (series []int32, deltas []int64, next *lastScrape) {
	var start *time.Time
	if sc.StartTime != nil {
		t := sc.StartTime.Time.UTC().Truncate(time.Microsecond)
		start = &t
	}
	restarted := prev == nil || (start != nil && (prev.start == nil || !prev.start.Equal(*start)))
	before := map[int32]int64{}
	if !restarted {
		for i, id := range prev.series {
			before[id] = prev.vals[i]
		}
	}
	next = &lastScrape{ts: timeOf(sc), start: start}
	for _, c := range sc.Counters {
		id := ids[seriesKey{c.Measurement, c.Plugin, c.Name}]
		d := c.Value
		if b, ok := before[id]; ok && !metricstore.IsGauge(c.Measurement) && c.Value >= b {
			d = c.Value - b
		}
		series, deltas = append(series, id), append(deltas, d)
		next.series, next.vals = append(next.series, id), append(next.vals, c.Value)
	}
	return series, deltas, next
}
