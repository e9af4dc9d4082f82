// Package influx keeps metrics in InfluxDB 2, laid out as the hosted product does: measurements
// fluentbit_input, fluentbit_filter, fluentbit_output and fluentbit_storage; fields the Fluent
// Bit counter names (records_total, proc_bytes_total, ...) with the counters' values as
// scraped; tags namespace, core_instance, pipeline, plugin and pod. InfluxDB keeps one value per
// series and time, so a retried write changes nothing; counter restarts are accounted for when
// reading, with Flux's increase().
package influx

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/metricstore"
)

// Options say where the bucket is.
type Options struct {
	URL, Org, Bucket, Token string
	// Timeout bounds each request (default 30 s).
	Timeout time.Duration
}

// Store is the InfluxDB metric store.
type Store struct {
	client influxdb2.Client
	write  api.WriteAPIBlocking
	query  api.QueryAPI
	bucket string
}

var _ metricstore.Store = &Store{}

// New connects to InfluxDB (lazily: the first write or query dials).
func New(opts Options) (*Store, error) {
	if opts.URL == "" || opts.Org == "" || opts.Bucket == "" {
		return nil, fmt.Errorf("InfluxDB needs a URL, an organisation and a bucket")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	c := influxdb2.NewClientWithOptions(opts.URL, opts.Token,
		influxdb2.DefaultOptions().SetHTTPRequestTimeout(uint(opts.Timeout.Seconds())).SetPrecision(time.Microsecond))
	return &Store{client: c, write: c.WriteAPIBlocking(opts.Org, opts.Bucket), query: c.QueryAPI(opts.Org), bucket: opts.Bucket}, nil
}

// Close releases the client's connections.
func (s *Store) Close() { s.client.Close() }

// Points turns scrapes into InfluxDB points: one per scrape, measurement and plugin.
func Points(namespace, coreInstance string, scrapes []core.MetricsScrape) []*write.Point {
	var out []*write.Point
	for _, sc := range scrapes {
		type key struct{ measurement, plugin string }
		byPlugin := map[key]*write.Point{}
		var order []key
		for _, c := range sc.Counters {
			k := key{c.Measurement, c.Plugin}
			p := byPlugin[k]
			if p == nil {
				tags := map[string]string{"namespace": namespace, "core_instance": coreInstance, "pipeline": sc.Pipeline, "pod": sc.Pod}
				if c.Plugin != "" {
					tags["plugin"] = c.Plugin
				}
				p = influxdb2.NewPoint("fluentbit_"+c.Measurement, tags, map[string]any{}, sc.Time.Time)
				byPlugin[k] = p
				order = append(order, k)
			}
			p.AddField(c.Name, c.Value)
		}
		for _, k := range order {
			out = append(out, byPlugin[k])
		}
	}
	return out
}

// Write sends the scrapes in one request. InfluxDB overwrites a point of the same series and
// time, so every scrape counts as accepted and a retry as nothing new.
func (s *Store) Write(ctx context.Context, namespace, coreInstance string, scrapes []core.MetricsScrape) (int, int, error) {
	if len(scrapes) == 0 {
		return 0, 0, nil
	}
	if err := s.write.WritePoint(ctx, Points(namespace, coreInstance, scrapes)...); err != nil {
		return 0, 0, fmt.Errorf("writing to InfluxDB: %w", err)
	}
	return len(scrapes), 0, nil
}

// Flux builds the query: each counter's running increase (restarts accounted for) at the end of
// each bucket, and each gauge's mean per bucket. It starts a little before q.Start so that the
// first bucket's increase is measured from the scrape before it.
func (s *Store) Flux(q metricstore.Query) string {
	who := fmt.Sprintf(`r.pipeline == %s`, fluxString(q.Pipeline))
	if q.Pipeline == "" {
		who = fmt.Sprintf(`r.core_instance == %s`, fluxString(q.CoreInstance))
	}
	lead := max(q.Interval, 2*time.Minute)
	// Buckets start at metricstore.BucketOrigin plus multiples of the interval, as the other store's.
	offset := metricstore.BucketOrigin.Sub(time.Unix(0, 0)) % q.Interval
	base := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r.namespace == %s and %s)`,
		fluxString(s.bucket), q.Start.Add(-lead).UTC().Format(time.RFC3339Nano), q.End.UTC().Format(time.RFC3339Nano),
		fluxString(q.Namespace), who)
	every := fluxDuration(q.Interval)
	return fmt.Sprintf(`counters = %s
  |> filter(fn: (r) => r._measurement == "fluentbit_input" or r._measurement == "fluentbit_filter" or r._measurement == "fluentbit_output")
  |> toInt()
  |> increase()
  |> aggregateWindow(every: %s, offset: %s, fn: last, createEmpty: false, timeSrc: "_start")
gauges = %s
  |> filter(fn: (r) => r._measurement == "fluentbit_storage")
  |> aggregateWindow(every: %s, offset: %s, fn: mean, createEmpty: false, timeSrc: "_start")
union(tables: [counters, gauges])
`, base, every, fluxDuration(offset), base, every, fluxDuration(offset))
}

// Query runs the Flux query and turns running increases into increases per bucket.
func (s *Store) Query(ctx context.Context, q metricstore.Query) ([]metricstore.Row, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	result, err := s.query.Query(ctx, s.Flux(q))
	if err != nil {
		return nil, fmt.Errorf("querying InfluxDB: %w", err)
	}
	defer result.Close()
	var points []point
	for result.Next() {
		r := result.Record()
		measurement, ok := strings.CutPrefix(r.Measurement(), "fluentbit_")
		if !ok {
			continue
		}
		v, ok := number(r.Value())
		if !ok {
			continue
		}
		points = append(points, point{
			series: seriesOf{pipeline: tag(r, "pipeline"), pod: tag(r, "pod"), measurement: measurement, plugin: tag(r, "plugin"), name: r.Field()},
			time:   r.Time().UTC(), value: v,
		})
	}
	if err := result.Err(); err != nil {
		return nil, fmt.Errorf("reading InfluxDB's answer: %w", err)
	}
	return Rows(q, points), nil
}

type seriesOf struct{ pipeline, pod, measurement, plugin, name string }

type point struct {
	series seriesOf
	time   time.Time // the bucket's start
	value  float64   // counters: running increase at the bucket's end; gauges: mean
}

// Rows turns the answer into the store-independent rows: per pod, a counter's increase in a
// bucket is its running increase there less the one in the pod's bucket before; then pods are
// summed (gauges averaged) per bucket.
func Rows(q metricstore.Query, points []point) []metricstore.Row {
	sort.Slice(points, func(i, j int) bool { return points[i].time.Before(points[j].time) })
	prev := map[seriesOf]float64{}
	type key struct {
		t                                   time.Time
		pipeline, measurement, plugin, name string
	}
	type agg struct {
		sum float64
		n   int
	}
	sums := map[key]*agg{}
	var order []key
	first := metricstore.BucketOf(q.Start, q.Interval)
	for _, p := range points {
		v := p.value
		gauge := metricstore.IsGauge(p.series.measurement)
		if !gauge {
			before := prev[p.series]
			prev[p.series] = p.value
			v -= before
		}
		if p.time.Before(first) {
			continue // the lead-in only gives the first bucket its baseline
		}
		k := key{p.time, p.series.pipeline, p.series.measurement, p.series.plugin, p.series.name}
		a := sums[k]
		if a == nil {
			a = &agg{}
			sums[k] = a
			order = append(order, k)
		}
		a.sum += v
		a.n++
	}
	out := make([]metricstore.Row, 0, len(order))
	for _, k := range order {
		a := sums[k]
		r := metricstore.Row{Time: k.t, Pipeline: k.pipeline, Measurement: k.measurement, Plugin: k.plugin, Name: k.name,
			Gauge: metricstore.IsGauge(k.measurement), Value: int64(math.Round(a.sum))}
		if r.Gauge {
			r.Value = int64(math.Round(a.sum / float64(a.n)))
		}
		out = append(out, r)
	}
	return out
}

func tag(r interface{ ValueByKey(string) any }, k string) string {
	s, _ := r.ValueByKey(k).(string)
	return s
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// fluxString quotes s as a Flux string literal.
func fluxString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`)
	return `"` + r.Replace(s) + `"`
}

// fluxDuration writes d as a Flux duration literal in whole microseconds.
func fluxDuration(d time.Duration) string {
	return strconv.FormatInt(d.Microseconds(), 10) + "us"
}
