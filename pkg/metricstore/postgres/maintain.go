package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/klog/v2"
)

const (
	sqlRollup = `
INSERT INTO metrics.hourly (namespace, core_instance, pipeline, hour, series, sums, counts)
SELECT namespace, core_instance, pipeline, $1, array_agg(id ORDER BY id), array_agg(s ORDER BY id), array_agg(c ORDER BY id)
FROM (
    SELECT namespace, core_instance, pipeline, x.id, sum(x.v)::bigint AS s, count(*)::bigint AS c
    FROM metrics.samples, unnest(series, deltas) AS x(id, v)
    WHERE ts >= $1 AND ts < $2
    GROUP BY 1, 2, 3, 4
) g
GROUP BY namespace, core_instance, pipeline
ON CONFLICT (namespace, pipeline, core_instance, hour) DO NOTHING`
	sqlMarkRolled    = `INSERT INTO metrics.rollups (hour) VALUES ($1) ON CONFLICT DO NOTHING`
	sqlRolledHours   = `SELECT hour FROM metrics.rollups WHERE hour >= $1`
	sqlForgetRollups = `DELETE FROM metrics.rollups WHERE hour < $1`
	sqlForgetLast    = `DELETE FROM metrics.last WHERE ts < $1`
)

// Maintain creates the partitions the next writes need, rolls finished hours up, and drops what
// is past retention. The leading cloud-api runs it every few minutes; running it twice, or on two
// replicas at once, does no harm.
func (s *Store) Maintain(ctx context.Context, at time.Time) error {
	logger := klog.FromContext(ctx)
	cur := hourOf(at)
	if err := s.ensureHours(ctx, map[time.Time]bool{cur: true, cur.Add(time.Hour): true}); err != nil {
		return err
	}
	if err := s.ensureDay(ctx, dayOf(at)); err != nil {
		return err
	}
	hours, err := s.partitions(ctx, "metrics.samples", "samples_", "2006010215")
	if err != nil {
		return err
	}
	if len(hours) == 0 {
		return nil
	}
	rolled := map[time.Time]bool{}
	rows, err := s.pool.Query(ctx, sqlRolledHours, hours[0])
	if err != nil {
		return fmt.Errorf("reading rolled-up hours: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return fmt.Errorf("reading rolled-up hours: %w", err)
	}
	for _, h := range done {
		rolled[h.UTC()] = true
	}
	for _, h := range hours {
		if rolled[h] || h.Add(time.Hour+s.opts.RollupDelay).After(at) {
			continue
		}
		if err := s.ensureDay(ctx, dayOf(h)); err != nil {
			return err
		}
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, sqlRollup, h, h.Add(time.Hour)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sqlMarkRolled, h)
			return err
		})
		if err != nil {
			return fmt.Errorf("rolling up %s: %w", h.Format(time.RFC3339), err)
		}
		rolled[h] = true
		logger.V(2).Info("Rolled up metrics", "hour", h)
	}
	// Raw hours go once rolled up and past the raw retention.
	for _, h := range hours {
		if !rolled[h] || h.Add(time.Hour).After(at.Add(-s.opts.RawRetention)) {
			continue
		}
		if err := s.ddl(ctx, "DROP TABLE IF EXISTS metrics."+hourPartition(h)); err != nil {
			return fmt.Errorf("dropping the scrapes of %s: %w", h.Format(time.RFC3339), err)
		}
		s.mu.Lock()
		delete(s.hours, h)
		s.mu.Unlock()
		s.forgetOldest()
		logger.V(2).Info("Dropped raw metrics", "hour", h)
	}
	days, err := s.partitions(ctx, "metrics.hourly", "hourly_", "20060102")
	if err != nil {
		return err
	}
	horizon := at.Add(-s.opts.Retention)
	for _, d := range days {
		if d.Add(24 * time.Hour).After(horizon) {
			continue
		}
		if err := s.ddl(ctx, "DROP TABLE IF EXISTS metrics."+dayPartition(d)); err != nil {
			return fmt.Errorf("dropping the hourly metrics of %s: %w", d.Format("2006-01-02"), err)
		}
		s.mu.Lock()
		delete(s.days, d)
		s.mu.Unlock()
		logger.V(2).Info("Dropped hourly metrics", "day", d)
	}
	if _, err := s.pool.Exec(ctx, sqlForgetRollups, horizon); err != nil {
		return fmt.Errorf("forgetting old rollups: %w", err)
	}
	// Pods gone longer than the retention leave no state behind.
	if _, err := s.pool.Exec(ctx, sqlForgetLast, horizon); err != nil {
		return fmt.Errorf("forgetting old pods: %w", err)
	}
	return nil
}
