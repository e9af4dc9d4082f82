// Package metricstore keeps the Fluent Bit metrics data plane agents report and answers the
// metrics subresources. Two stores implement it: PostgreSQL tables in cloud-api's own database
// (package postgres, the default) and InfluxDB 2 (package influx). Both return the same rows,
// which Assemble turns into the API's Metrics, so clients see the same JSON whichever is behind.
package metricstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

// Store keeps and queries metrics.
type Store interface {
	// Write stores the scrapes of one batch of a core instance's agent, all or none. A scrape
	// already stored (same pipeline, pod and time) is counted as a duplicate, not stored twice.
	Write(ctx context.Context, namespace, coreInstance string, scrapes []core.MetricsScrape) (accepted, duplicates int, err error)
	// Query returns the increases (gauges: averages) of every counter of the pipeline, or of every
	// pipeline of the core instance, per bucket of q.Interval over [q.Start, q.End).
	Query(ctx context.Context, q Query) ([]Row, error)
}

// Maintainer is a store with housekeeping (retention, downsampling) for the leader to run.
type Maintainer interface {
	Maintain(ctx context.Context, now time.Time) error
}

// Query selects metrics. Exactly one of Pipeline and CoreInstance is set.
type Query struct {
	Namespace    string
	Pipeline     string
	CoreInstance string
	Start, End   time.Time
	Interval     time.Duration
}

// Row is one counter of one plugin of one pipeline in one bucket.
type Row struct {
	// Time is the bucket's start (a multiple of the interval since BucketOrigin).
	Time        time.Time
	Pipeline    string
	Measurement string
	Plugin      string
	Name        string
	// Gauge is set for storage gauges: Value is their average, not an increase.
	Gauge bool
	Value int64
}

// ErrTooOld refuses scrapes older than a store keeps.
var ErrTooOld = errors.New("scrape is older than the metric store keeps")

// BucketOrigin aligns buckets: bucket starts are BucketOrigin plus multiples of the interval.
var BucketOrigin = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// BucketOf returns the start of the bucket holding t.
func BucketOf(t time.Time, interval time.Duration) time.Time {
	d := t.Sub(BucketOrigin)
	return BucketOrigin.Add(d - d%interval).UTC()
}

// IsGauge tells the measurements whose values are levels, not counters.
func IsGauge(measurement string) bool { return measurement == core.MeasurementStorage }

// Limits of queries: enough for a month at an hour or a day at a minute, and a bound on the
// answer's size.
const (
	MaxBuckets  = 2000
	MinInterval = 10 * time.Second
)

// Validate checks a query's period and interval.
func (q Query) Validate() error {
	switch {
	case !q.Start.Before(q.End):
		return fmt.Errorf("start %s is not before end %s", q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339))
	case q.Interval < MinInterval:
		return fmt.Errorf("interval %s is shorter than %s", q.Interval, MinInterval)
	case q.End.Sub(q.Start)/q.Interval > MaxBuckets:
		return fmt.Errorf("%s at %s is more than %d points; use a longer interval", q.End.Sub(q.Start), q.Interval, MaxBuckets)
	}
	return nil
}

// Assemble builds the API's answer from a store's rows. The summary's rates are over the part of
// the period the data covers (a pipeline younger than the period has a shorter one).
func Assemble(q Query, rows []Row) *core.Metrics {
	m := &core.Metrics{
		Start:    metav1.NewTime(q.Start),
		End:      metav1.NewTime(q.End),
		Interval: metav1.Duration{Duration: q.Interval},
	}
	if len(rows) == 0 {
		return m
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Time.Before(rows[j].Time) })
	first := rows[0].Time
	if first.Before(q.Start) {
		first = q.Start
	}
	covered := q.End.Sub(first).Seconds()

	type pluginKey struct{ pipeline, measurement, plugin string }
	points := map[time.Time]*core.MetricsPoint{}
	plugins := map[pluginKey]*core.PluginMetrics{}
	pluginPoints := map[pluginKey]map[time.Time]map[string]int64{}
	var totals core.MetricsSummary
	for _, r := range rows {
		p := points[r.Time]
		if p == nil {
			p = &core.MetricsPoint{Time: metav1.NewTime(r.Time)}
			points[r.Time] = p
		}
		key := pluginKey{r.Pipeline, r.Measurement, r.Plugin}
		if q.Pipeline != "" {
			key.pipeline = ""
		}
		pm := plugins[key]
		if pm == nil {
			pm = &core.PluginMetrics{Pipeline: key.pipeline, Measurement: r.Measurement, Plugin: r.Plugin, Totals: map[string]int64{}}
			plugins[key] = pm
			pluginPoints[key] = map[time.Time]map[string]int64{}
		}
		vals := pluginPoints[key][r.Time]
		if vals == nil {
			vals = map[string]int64{}
			pluginPoints[key][r.Time] = vals
		}
		vals[r.Name] += r.Value
		if r.Gauge {
			// A level's total is its latest value (rows come oldest first).
			pm.Totals[r.Name] = r.Value
			continue
		}
		pm.Totals[r.Name] += r.Value
		addTo(&p.MetricsSummary, r)
		addTo(&totals, r)
	}

	keys := make([]time.Time, 0, len(points))
	for t := range points {
		keys = append(keys, t)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Before(keys[j]) })
	for _, t := range keys {
		p := points[t]
		span := q.Interval.Seconds()
		if end := t.Add(q.Interval); end.After(q.End) {
			span = q.End.Sub(t).Seconds() // the current bucket is not over yet
		}
		if t.Before(q.Start) {
			span -= q.Start.Sub(t).Seconds()
		}
		rates(&p.MetricsSummary, span)
		m.Series = append(m.Series, *p)
	}
	rates(&totals, covered)
	m.Summary = totals

	pkeys := make([]pluginKey, 0, len(plugins))
	for k := range plugins {
		pkeys = append(pkeys, k)
	}
	sort.Slice(pkeys, func(i, j int) bool {
		a, b := pkeys[i], pkeys[j]
		if a.pipeline != b.pipeline {
			return a.pipeline < b.pipeline
		}
		if a.measurement != b.measurement {
			return measurementOrder[a.measurement] < measurementOrder[b.measurement]
		}
		return a.plugin < b.plugin
	})
	for _, k := range pkeys {
		pm := plugins[k]
		ts := make([]time.Time, 0, len(pluginPoints[k]))
		for t := range pluginPoints[k] {
			ts = append(ts, t)
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		for _, t := range ts {
			pm.Series = append(pm.Series, core.PluginPoint{Time: metav1.NewTime(t), Values: pluginPoints[k][t]})
		}
		m.Plugins = append(m.Plugins, *pm)
	}
	return m
}

var measurementOrder = map[string]int{core.MeasurementInput: 0, core.MeasurementFilter: 1, core.MeasurementOutput: 2, core.MeasurementStorage: 3}

// addTo adds a counter row to the summary field it feeds, if any.
func addTo(s *core.MetricsSummary, r Row) {
	if v := field(s, r.Measurement, r.Name); v != nil {
		v.Total += r.Value
	}
}

// field maps Fluent Bit's counter names to the summary, as the hosted product's summary does.
func field(s *core.MetricsSummary, measurement, name string) *core.MetricValue {
	switch measurement {
	case core.MeasurementInput:
		switch name {
		case "records_total":
			return &s.Input.Records
		case "bytes_total":
			return &s.Input.Bytes
		}
	case core.MeasurementFilter:
		switch name {
		case "records_total":
			return &s.Filter.Records
		case "bytes_total":
			return &s.Filter.Bytes
		case "add_records_total":
			return &s.Filter.AddRecords
		case "drop_records_total":
			return &s.Filter.DropRecords
		case "emit_records_total":
			return &s.Filter.EmitRecords
		}
	case core.MeasurementOutput:
		switch name {
		case "proc_records_total":
			return &s.Output.Records
		case "proc_bytes_total":
			return &s.Output.Bytes
		case "errors_total":
			return &s.Output.Errors
		case "retries_total":
			return &s.Output.Retries
		case "retried_records_total":
			return &s.Output.RetriedRecords
		case "retries_failed_total":
			return &s.Output.RetriesFailed
		case "dropped_records_total":
			return &s.Output.DroppedRecords
		}
	}
	return nil
}

func rates(s *core.MetricsSummary, seconds float64) {
	for _, v := range []*core.MetricValue{
		&s.Input.Records, &s.Input.Bytes,
		&s.Filter.Records, &s.Filter.Bytes, &s.Filter.AddRecords, &s.Filter.DropRecords, &s.Filter.EmitRecords,
		&s.Output.Records, &s.Output.Bytes, &s.Output.Errors, &s.Output.Retries, &s.Output.RetriedRecords,
		&s.Output.RetriesFailed, &s.Output.DroppedRecords,
	} {
		if seconds > 0 {
			v.PerSecond = float64(v.Total) / seconds
		}
	}
}
