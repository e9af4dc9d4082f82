package integration

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	calyptiav1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

// fluentBitStart is when the scraped Fluent Bits started; a different one would be a restart.
var fluentBitStart = metav1.NewTime(time.Now().Add(-2 * time.Hour).Truncate(time.Second))

func metricsScrape(pipeline, pod string, at time.Time, records, bytes int64) calyptiav1.MetricsScrape {
	start := fluentBitStart
	return calyptiav1.MetricsScrape{
		Pipeline: pipeline, Pod: pod, Time: metav1.NewMicroTime(at), StartTime: &start,
		Counters: []calyptiav1.MetricsCounter{
			{Measurement: "input", Plugin: "forward.0", Name: "records_total", Value: records},
			{Measurement: "input", Plugin: "forward.0", Name: "bytes_total", Value: bytes},
			{Measurement: "output", Plugin: "es.0", Name: "proc_records_total", Value: records},
			{Measurement: "output", Plugin: "es.0", Name: "errors_total", Value: 1},
		},
	}
}

// getMetrics reads a metrics subresource through the REST client, with its query parameters.
func getMetrics(ctx context.Context, t *testing.T, ns, resource, name string, params map[string]string) (*calyptiav1.Metrics, error) {
	t.Helper()
	req := env.client.CoreV1().RESTClient().Get().Namespace(ns).Resource(resource).Name(name).SubResource("metrics")
	for k, v := range params {
		req = req.Param(k, v)
	}
	var m calyptiav1.Metrics
	raw, err := req.DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return &m, nil
}

func TestMetricsSubresources(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := namespace(t)
	c := env.client.CoreV1()
	for _, ci := range []string{"edge", "other"} {
		if _, err := c.CoreInstances(ns).Create(ctx, &calyptiav1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: ci}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, ci := range map[string]string{"fwd": "edge", "tail": "edge", "foreign": "other"} {
		if _, err := c.Pipelines(ns).Create(ctx, newPipeline(ns, name, ci), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	now := time.Now()
	batch := &calyptiav1.MetricsBatch{Scrapes: []calyptiav1.MetricsScrape{
		metricsScrape("fwd", "fwd-0", now.Add(-90*time.Second), 100, 1000),
		metricsScrape("fwd", "fwd-1", now.Add(-90*time.Second), 50, 500),
		metricsScrape("tail", "tail-0", now.Add(-90*time.Second), 7, 70),
		// Not this core instance's pipeline, or no pipeline at all: left out.
		metricsScrape("foreign", "foreign-0", now.Add(-90*time.Second), 9999, 9999),
		metricsScrape("gone", "gone-0", now.Add(-90*time.Second), 9999, 9999),
	}}
	got, err := c.CoreInstances(ns).CreateMetrics(ctx, "edge", batch, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Accepted != 3 || got.Status.Duplicates != 0 || got.Status.Rejected != 2 {
		t.Errorf("status %+v, want 3 accepted, 2 rejected", got.Status)
	}
	// A retry stores nothing twice.
	if got, err = c.CoreInstances(ns).CreateMetrics(ctx, "edge", batch, metav1.CreateOptions{}); err != nil || got.Status.Duplicates != 3 || got.Status.Accepted != 0 {
		t.Errorf("retry: status %+v, err %v", got.Status, err)
	}
	second := &calyptiav1.MetricsBatch{Scrapes: []calyptiav1.MetricsScrape{
		metricsScrape("fwd", "fwd-0", now.Add(-30*time.Second), 160, 1600),
		metricsScrape("fwd", "fwd-1", now.Add(-30*time.Second), 80, 800),
	}}
	if _, err := c.CoreInstances(ns).CreateMetrics(ctx, "edge", second, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	m, err := getMetrics(ctx, t, ns, "pipelines", "fwd", map[string]string{"start": "-1h", "interval": "1m"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "fwd" || m.Interval.Duration != time.Minute || m.End.Sub(m.Start.Time) != time.Hour {
		t.Errorf("metrics of %q over %s..%s at %s", m.Name, m.Start, m.End, m.Interval.Duration)
	}
	if m.Summary.Input.Records.Total != 160+80 || m.Summary.Input.Bytes.Total != 2400 || m.Summary.Output.Errors.Total != 2 {
		t.Errorf("summary input %+v, output errors %+v", m.Summary.Input, m.Summary.Output.Errors)
	}
	if m.Summary.Input.Records.PerSecond <= 0 {
		t.Errorf("no rate: %+v", m.Summary.Input.Records)
	}
	if len(m.Plugins) != 2 || m.Plugins[0].Measurement != "input" || m.Plugins[0].Plugin != "forward.0" || m.Plugins[0].Totals["records_total"] != 240 {
		t.Errorf("plugins %+v", m.Plugins)
	}
	var points int64
	for _, p := range m.Series {
		points += p.Input.Records.Total
	}
	if points != 240 || len(m.Series) < 1 {
		t.Errorf("series %+v add up to %d", m.Series, points)
	}

	// Defaults: the last 24 hours at an hour.
	d, err := getMetrics(ctx, t, ns, "pipelines", "fwd", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Interval.Duration != time.Hour || d.End.Sub(d.Start.Time) != 24*time.Hour || d.Summary.Input.Records.Total != 240 {
		t.Errorf("defaults: %s over %s, total %d", d.Interval.Duration, d.End.Sub(d.Start.Time), d.Summary.Input.Records.Total)
	}

	ci, err := getMetrics(ctx, t, ns, "coreinstances", "edge", map[string]string{"start": "-2h"})
	if err != nil {
		t.Fatal(err)
	}
	if ci.Summary.Input.Records.Total != 247 {
		t.Errorf("core instance input records %d, want 247 (fwd and tail, not foreign)", ci.Summary.Input.Records.Total)
	}

	// kubectl reads it the way the docs say.
	out, err := kubectl(t, "get", "--raw", "/apis/core.calyptia.com/v1/namespaces/"+ns+"/pipelines/fwd/metrics?start=-1h&interval=1m")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"kind":"Metrics"`) || !strings.Contains(out, `"records":{"total":240`) {
		t.Errorf("kubectl get --raw: %s", out)
	}

	tests := []struct {
		name   string
		params map[string]string
		target string
		want   func(error) bool
	}{
		{"positive start", map[string]string{"start": "1h"}, "fwd", apierrors.IsBadRequest},
		{"unparsable interval", map[string]string{"interval": "often"}, "fwd", apierrors.IsBadRequest},
		{"too many points", map[string]string{"start": "-720h", "interval": "1m"}, "fwd", apierrors.IsBadRequest},
		{"no such pipeline", nil, "nope", apierrors.IsNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := getMetrics(ctx, t, ns, "pipelines", tt.target, tt.params)
			if !tt.want(err) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestMetricsBadBatchStoresNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := namespace(t)
	c := env.client.CoreV1()
	if _, err := c.CoreInstances(ns).Create(ctx, &calyptiav1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "edge"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pipelines(ns).Create(ctx, newPipeline(ns, "fwd", "edge"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := metricsScrape("fwd", "fwd-0", now, 10, 10)
	bad := metricsScrape("fwd", "fwd-1", now, 10, 10)
	bad.Counters[1].Measurement = "inputs"
	bad.Counters[2].Value = -1
	old := metricsScrape("fwd", "fwd-2", now.Add(-30*24*time.Hour), 10, 10)
	for name, batch := range map[string][]calyptiav1.MetricsScrape{
		"bad counters": {good, bad},
		"too old":      {good, old},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.CoreInstances(ns).CreateMetrics(ctx, "edge", &calyptiav1.MetricsBatch{Scrapes: batch}, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("err = %v, want 422", err)
			}
			if name == "bad counters" {
				for _, want := range []string{"scrapes[1].counters[1].measurement", "scrapes[1].counters[2].value"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %s", err, want)
					}
				}
			}
		})
	}
	m, err := getMetrics(ctx, t, ns, "pipelines", "fwd", map[string]string{"start": "-1h", "interval": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Summary.Input.Records.Total != 0 {
		t.Errorf("a refused batch stored %d records", m.Summary.Input.Records.Total)
	}
	if _, err := c.CoreInstances(ns).CreateMetrics(ctx, "nope", &calyptiav1.MetricsBatch{Scrapes: []calyptiav1.MetricsScrape{good}}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("metrics for a missing core instance: %v", err)
	}
}
