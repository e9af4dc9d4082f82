package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/calyptia/core-management-plane/pkg/metricstore"
)

// The raw scrapes answer for the hours they are kept; the hourly totals for older ones, at an
// hour's granularity. %[1]s is the column selecting the scrapes, a constant of this file.
const sqlQueryTemplate = `
SELECT date_bin($3::interval, ts, $6::timestamptz) AS bucket, pipeline, x.id, sum(x.v)::bigint, count(*)
FROM metrics.samples, unnest(series, deltas) AS x(id, v)
WHERE namespace = $1 AND %[1]s = $2 AND ts >= $4 AND ts < $5
GROUP BY 1, 2, 3
UNION ALL
SELECT date_bin($3::interval, hour, $6::timestamptz), pipeline, x.id, sum(x.s)::bigint, sum(x.c)::bigint
FROM metrics.hourly, unnest(series, sums, counts) AS x(id, s, c)
WHERE namespace = $1 AND %[1]s = $2 AND hour >= $7 AND hour < $8
GROUP BY 1, 2, 3`

var (
	sqlQueryPipeline     = fmt.Sprintf(sqlQueryTemplate, "pipeline")
	sqlQueryCoreInstance = fmt.Sprintf(sqlQueryTemplate, "core_instance")
)

// Query returns one row per bucket, pipeline and counter.
func (s *Store) Query(ctx context.Context, q metricstore.Query) ([]metricstore.Row, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	oldest, err := s.oldestRaw(ctx, now())
	if err != nil {
		return nil, err
	}
	// Raw scrapes from the oldest kept hour on; hourly totals before it.
	rawStart := q.Start
	if rawStart.Before(oldest) {
		rawStart = oldest
	}
	hourlyEnd := oldest
	if q.End.Before(hourlyEnd) {
		hourlyEnd = q.End
	}
	sql, who := sqlQueryPipeline, q.Pipeline
	if q.Pipeline == "" {
		sql, who = sqlQueryCoreInstance, q.CoreInstance
	}
	rows, err := s.pool.Query(ctx, sql, q.Namespace, who, q.Interval, rawStart, q.End, metricstore.BucketOrigin,
		hourOf(q.Start), hourlyEnd)
	if err != nil {
		return nil, fmt.Errorf("querying metrics: %w", err)
	}
	defer rows.Close()
	type key struct {
		bucket   time.Time
		pipeline string
		id       int32
	}
	type agg struct{ sum, count int64 }
	sums := map[key]*agg{}
	ids := map[int32]bool{}
	for rows.Next() {
		var k key
		var sum, count int64
		if err := rows.Scan(&k.bucket, &k.pipeline, &k.id, &sum, &count); err != nil {
			return nil, fmt.Errorf("reading metrics: %w", err)
		}
		a := sums[k]
		if a == nil {
			a = &agg{}
			sums[k] = a
		}
		a.sum += sum
		a.count += count
		ids[k.id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	names, err := s.names(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]metricstore.Row, 0, len(sums))
	for k, a := range sums {
		n := names[k.id]
		r := metricstore.Row{Time: k.bucket.UTC(), Pipeline: k.pipeline, Measurement: n.measurement, Plugin: n.plugin, Name: n.name,
			Gauge: metricstore.IsGauge(n.measurement), Value: a.sum}
		if r.Gauge && a.count > 0 {
			r.Value = a.sum / a.count
		}
		out = append(out, r)
	}
	return out, nil
}
