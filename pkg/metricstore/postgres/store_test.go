package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calyptia/core-management-plane/internal/pgtest"
	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/metricstore"
)

func newStore(t *testing.T, opts Options) *Store {
	t.Helper()
	pool, _ := pgtest.NewPool(t)
	s, err := New(context.Background(), pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// at pins the store's clock for a test.
func at(t *testing.T, tm time.Time) {
	t.Helper()
	prev := now
	now = func() time.Time { return tm }
	t.Cleanup(func() { now = prev })
}

func scrape(pipeline, pod string, ts time.Time, start time.Time, inRecords, outRecords int64) core.MetricsScrape {
	st := metav1.NewTime(start)
	return core.MetricsScrape{
		Pipeline: pipeline, Pod: pod, Time: metav1.NewMicroTime(ts), StartTime: &st,
		Counters: []core.MetricsCounter{
			{Measurement: core.MeasurementInput, Plugin: "dummy.0", Name: "records_total", Value: inRecords},
			{Measurement: core.MeasurementOutput, Plugin: "es.0", Name: "proc_records_total", Value: outRecords},
			{Measurement: core.MeasurementStorage, Name: "chunks", Value: inRecords % 7},
		},
	}
}

func query(t *testing.T, s *Store, q metricstore.Query) *core.Metrics {
	t.Helper()
	rows, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return metricstore.Assemble(q, rows)
}

func write(t *testing.T, s *Store, ci string, scrapes ...core.MetricsScrape) (int, int) {
	t.Helper()
	a, d, err := s.Write(context.Background(), "ns", ci, scrapes)
	if err != nil {
		t.Fatal(err)
	}
	return a, d
}

func TestWriteQueryIncreases(t *testing.T) {
	s := newStore(t, Options{})
	base := time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
	at(t, base.Add(30*time.Minute))
	start := base.Add(-time.Minute)
	// Two pods of one pipeline, and a pipeline of another core instance.
	if a, d := write(t, s, "ci",
		scrape("p", "pod-a", base, start, 100, 90),
		scrape("p", "pod-b", base, start, 10, 10),
		scrape("other", "pod-c", base, start, 5000, 5000),
	); a != 3 || d != 0 {
		t.Fatalf("accepted %d, duplicates %d", a, d)
	}
	write(t, s, "elsewhere", scrape("elsewhere", "pod-z", base, start, 7, 7))
	write(t, s, "ci",
		scrape("p", "pod-a", base.Add(30*time.Second), start, 160, 150),
		// pod-b restarted: a new start time; its counters start over.
		scrape("p", "pod-b", base.Add(30*time.Second), base.Add(20*time.Second), 4, 3),
	)
	// pod-a reloaded: its counters went down.
	write(t, s, "ci", scrape("p", "pod-a", base.Add(90*time.Second), start, 20, 20))

	q := metricstore.Query{Namespace: "ns", Pipeline: "p", Start: base.Add(-time.Hour), End: base.Add(30 * time.Minute), Interval: time.Minute}
	m := query(t, s, q)
	// pod-a: 100 + 60 + 20 (after the reload); pod-b: 10 + 4 (after the restart).
	if got := m.Summary.Input.Records.Total; got != 194 {
		t.Errorf("input records total %d, want 194", got)
	}
	if got := m.Summary.Output.Records.Total; got != 90+60+20+10+3 {
		t.Errorf("output records total %d, want 183", got)
	}
	if len(m.Series) != 2 {
		t.Fatalf("series has %d points, want 2 (minutes with data): %+v", len(m.Series), m.Series)
	}
	if m.Series[0].Input.Records.Total != 174 || m.Series[1].Input.Records.Total != 20 {
		t.Errorf("per-minute input records %d, %d; want 174, 20", m.Series[0].Input.Records.Total, m.Series[1].Input.Records.Total)
	}
	if r := m.Series[0].Input.Records.PerSecond; r != 174.0/60 {
		t.Errorf("per-second rate of the first minute %v, want 174/60", r)
	}
	var in, storage *core.PluginMetrics
	for i := range m.Plugins {
		switch m.Plugins[i].Measurement {
		case core.MeasurementInput:
			in = &m.Plugins[i]
		case core.MeasurementStorage:
			storage = &m.Plugins[i]
		}
	}
	if in == nil || in.Plugin != "dummy.0" || in.Totals["records_total"] != 194 || len(in.Series) != 2 {
		t.Errorf("input plugin %+v", in)
	}
	// The gauge is averaged over the pods' scrapes of the last minute: pod-a's 20%7=6.
	if storage == nil || storage.Totals["chunks"] != 6 {
		t.Errorf("storage %+v", storage)
	}

	ciq := q
	ciq.Pipeline, ciq.CoreInstance = "", "ci"
	m = query(t, s, ciq)
	if got := m.Summary.Input.Records.Total; got != 194+5000 {
		t.Errorf("core instance input records %d, want %d", got, 194+5000)
	}
	pipelines := map[string]bool{}
	for _, p := range m.Plugins {
		pipelines[p.Pipeline] = true
	}
	if !pipelines["p"] || !pipelines["other"] || pipelines["elsewhere"] {
		t.Errorf("core instance plugins name pipelines %v", pipelines)
	}
}

func TestWriteIsIdempotent(t *testing.T) {
	s := newStore(t, Options{})
	base := time.Now().UTC().Add(-time.Minute)
	batch := []core.MetricsScrape{scrape("p", "pod", base, base.Add(-time.Hour), 10, 10), scrape("p", "pod", base.Add(30*time.Second), base.Add(-time.Hour), 25, 25)}
	if a, d := write(t, s, "ci", batch...); a != 2 || d != 0 {
		t.Fatalf("first: accepted %d, duplicates %d", a, d)
	}
	if a, d := write(t, s, "ci", batch...); a != 0 || d != 2 {
		t.Fatalf("retry: accepted %d, duplicates %d", a, d)
	}
	// A batch mixing a retried scrape with a new one keeps only the new one.
	if a, d := write(t, s, "ci", batch[1], scrape("p", "pod", base.Add(50*time.Second), base.Add(-time.Hour), 30, 30)); a != 1 || d != 1 {
		t.Fatalf("mixed: accepted %d, duplicates %d", a, d)
	}
	m := query(t, s, metricstore.Query{Namespace: "ns", Pipeline: "p", Start: base.Add(-time.Hour), End: base.Add(time.Hour), Interval: time.Hour})
	if got := m.Summary.Input.Records.Total; got != 30 {
		t.Errorf("input records %d after retries, want 30", got)
	}
}

func TestWriteRefusesTooOld(t *testing.T) {
	s := newStore(t, Options{RawRetention: time.Hour})
	old := time.Now().Add(-2 * time.Hour)
	_, _, err := s.Write(context.Background(), "ns", "ci", []core.MetricsScrape{scrape("p", "pod", old, old, 1, 1)})
	if !errors.Is(err, metricstore.ErrTooOld) {
		t.Fatalf("err = %v, want ErrTooOld", err)
	}
}

func TestRetentionAndDownsampling(t *testing.T) {
	s := newStore(t, Options{RawRetention: 2 * time.Hour, Retention: 48 * time.Hour})
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-30 * time.Hour)
	start := t0.Add(-time.Minute)
	at(t, t0.Add(time.Minute))
	write(t, s, "ci", scrape("p", "pod", t0.Add(10*time.Minute), start, 100, 100), scrape("p", "pod", t0.Add(40*time.Minute), start, 300, 300))
	at(t, t0.Add(61*time.Minute))
	write(t, s, "ci", scrape("p", "pod", t0.Add(70*time.Minute), start, 350, 350))

	at(t, t0.Add(3*time.Hour+11*time.Minute))
	write(t, s, "ci", scrape("p", "pod", t0.Add(3*time.Hour+10*time.Minute), start, 360, 360))

	q := metricstore.Query{Namespace: "ns", Pipeline: "p", Start: t0.Add(-time.Hour), End: t0.Add(5 * time.Hour), Interval: time.Hour}
	before := query(t, s, q)
	if before.Summary.Input.Records.Total != 360 {
		t.Fatalf("raw total %d, want 360", before.Summary.Input.Records.Total)
	}

	// Hours later: both hours are rolled up and their scrapes dropped.
	at(t, t0.Add(5*time.Hour))
	if err := s.Maintain(ctx, now()); err != nil {
		t.Fatal(err)
	}
	hours, err := s.partitions(ctx, "metrics.samples", "samples_", "2006010215")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hours {
		if !h.After(t0.Add(time.Hour)) {
			t.Errorf("raw partition of %s kept past the raw retention", h)
		}
	}
	// Hours t0 and t0+1 come from the hourly totals, hour t0+3 still from its scrapes.
	after := query(t, s, q)
	if after.Summary.Input.Records.Total != 360 || len(after.Series) != 3 ||
		after.Series[0].Input.Records.Total != 300 || after.Series[1].Input.Records.Total != 50 || after.Series[2].Input.Records.Total != 10 {
		t.Errorf("from hourly totals and scrapes: total %d, series %+v", after.Summary.Input.Records.Total, after.Series)
	}
	// A scrape arriving late for a rolled-up hour is not counted twice or half.
	if a, d := write(t, s, "ci", scrape("p", "late", t0.Add(3*time.Hour+50*time.Minute), start, 1, 1)); a != 0 || d != 1 {
		t.Errorf("late scrape: accepted %d, duplicates %d", a, d)
	}
	if err := s.Maintain(ctx, now()); err != nil {
		t.Fatalf("maintaining twice: %v", err)
	}

	// Past the retention, nothing is left.
	at(t, t0.Add(80*time.Hour))
	if err := s.Maintain(ctx, now()); err != nil {
		t.Fatal(err)
	}
	gone := query(t, s, metricstore.Query{Namespace: "ns", Pipeline: "p", Start: t0.Add(-time.Hour), End: now(), Interval: time.Hour})
	if gone.Summary.Input.Records.Total != 0 || len(gone.Series) != 0 {
		t.Errorf("after the retention: %+v", gone.Summary.Input)
	}
	var last int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM metrics.last").Scan(&last); err != nil || last != 0 {
		t.Errorf("%d pods' last scrapes kept past the retention (%v)", last, err)
	}
}

func TestMigrationsTwice(t *testing.T) {
	pool, _ := pgtest.NewPool(t)
	for range 2 {
		if _, err := New(context.Background(), pool, Options{}); err != nil {
			t.Fatal(err)
		}
	}
}

// Batches of the same pods at once (an agent's retry racing the original, two agents after a
// pipeline moved) wait for each other: no deadlock, and each scrape counted once.
func TestConcurrentBatchesOfTheSamePods(t *testing.T) {
	s := newStore(t, Options{})
	base := time.Now().UTC().Add(-10 * time.Minute)
	start := base.Add(-time.Hour)
	var batches [][]core.MetricsScrape
	for r := range 8 {
		var b []core.MetricsScrape
		for p := 20; p > 0; p-- { // in reverse order in half of them
			pod := p
			if r%2 == 0 {
				pod = 21 - p
			}
			b = append(b, scrape("p", "pod-"+string(rune('a'+pod)), base, start, 10, 10))
		}
		batches = append(batches, b)
	}
	errs := make(chan error, len(batches))
	for _, b := range batches {
		go func() {
			_, _, err := s.Write(context.Background(), "ns", "ci", b)
			errs <- err
		}()
	}
	for range batches {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	m := query(t, s, metricstore.Query{Namespace: "ns", Pipeline: "p", Start: base.Add(-time.Hour), End: base.Add(time.Hour), Interval: time.Hour})
	if got := m.Summary.Input.Records.Total; got != 20*10 {
		t.Errorf("input records %d, want 200: each pod's scrape once", got)
	}
}
