// Package metrics benchmarks the metric stores (`make bench-metrics`): ingest at the design's
// scale, 10,000 pipelines each reporting 30 counters every 30 seconds, into the embedded
// PostgreSQL store beside the same writes into an InfluxDB 2 write API (VictoriaMetrics, which
// speaks it; InfluxDB itself cannot run here), with PostgreSQL's cost per scrape; and the
// latency of the two queries users make most, 24 h at 1 h and 1 h at 1 m, over a day of history.
package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calyptia/core-management-plane/internal/pgtest"
	"github.com/calyptia/core-management-plane/internal/testbin"
	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/metricstore"
	"github.com/calyptia/core-management-plane/pkg/metricstore/influx"
	metricspg "github.com/calyptia/core-management-plane/pkg/metricstore/postgres"
)

const (
	batchSize = 500 // what an agent sends per request
	writers   = 4   // agents writing at once
)

// counters are 30 per scrape: three inputs, three filters and three outputs of a pipeline.
func counters(round int64, pipeline int) []core.MetricsCounter {
	var out []core.MetricsCounter
	base := round*1000 + int64(pipeline%97)
	for i := range 3 {
		p := "in." + strconv.Itoa(i)
		out = append(out,
			core.MetricsCounter{Measurement: "input", Plugin: p, Name: "records_total", Value: base},
			core.MetricsCounter{Measurement: "input", Plugin: p, Name: "bytes_total", Value: base * 120})
		f := "filter." + strconv.Itoa(i)
		for _, n := range []string{"records_total", "bytes_total", "add_records_total", "drop_records_total"} {
			out = append(out, core.MetricsCounter{Measurement: "filter", Plugin: f, Name: n, Value: base})
		}
		o := "out." + strconv.Itoa(i)
		for _, n := range []string{"proc_records_total", "proc_bytes_total", "errors_total", "retries_total"} {
			out = append(out, core.MetricsCounter{Measurement: "output", Plugin: o, Name: n, Value: base})
		}
	}
	return out
}

func scrapes(pipelines int, round int64, at time.Time, start metav1.Time) []core.MetricsScrape {
	out := make([]core.MetricsScrape, pipelines)
	for p := range pipelines {
		name := fmt.Sprintf("p%05d", p)
		out[p] = core.MetricsScrape{Pipeline: name, Pod: name + "-0", Time: metav1.NewMicroTime(at), StartTime: &start, Counters: counters(round, p)}
	}
	return out
}

// ingest writes the rounds in batches with a few writers and returns the time it took.
func ingest(b *testing.B, s metricstore.Store, rounds [][]core.MetricsScrape) time.Duration {
	b.Helper()
	work := make(chan []core.MetricsScrape)
	var wg, round sync.WaitGroup
	errs := make(chan error, 1<<16)
	for range writers {
		wg.Go(func() {
			for batch := range work {
				_, _, err := s.Write(context.Background(), "bench", "ci", batch)
				round.Done()
				if err != nil {
					errs <- err
				}
			}
		})
	}
	start := time.Now()
	// A round at a time, as agents send them (a later scrape of a pod stored first would make
	// the earlier one a duplicate); the batches of a round at once.
	for _, r := range rounds {
		for i := 0; i < len(r); i += batchSize {
			round.Add(1)
			work <- r[i:min(i+batchSize, len(r))]
		}
		round.Wait()
	}
	close(work)
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return took
}

func startVictoriaMetrics(b *testing.B) string {
	b.Helper()
	bin := testbin.Program{Name: "victoria-metrics", Env: "VICTORIA_METRICS", Make: "victoria-metrics"}.Path(b)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-httpListenAddr="+addr, "-storageDataPath="+b.TempDir(), "-loggerLevel=ERROR")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			b.Fatal("victoria-metrics did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func relationBytes(b *testing.B, pool *pgxpool.Pool) int64 {
	b.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'metrics' AND c.relkind = 'r'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func walBytes(b *testing.B, pool *pgxpool.Pool) int64 {
	b.Helper()
	var lsn string
	if err := pool.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		b.Fatal(err)
	}
	var hi, lo int64
	if _, err := fmt.Sscanf(lsn, "%X/%X", &hi, &lo); err != nil {
		b.Fatal(err)
	}
	return hi<<32 | lo
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func BenchmarkMetricStores(b *testing.B) {
	pipelines, rounds := 10000, 6
	if v, err := strconv.Atoi(os.Getenv("BENCH_METRICS_PIPELINES")); err == nil && v > 0 {
		pipelines = v
	}
	ctx := context.Background()
	pool, _ := pgtest.NewPool(b)
	// History first, kept raw for a day, then handed to a store with the default raw retention,
	// whose maintenance rolls it up into hourly totals as production would.
	history, err := metricspg.New(ctx, pool, metricspg.Options{RawRetention: 25 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	pg, err := metricspg.New(ctx, pool, metricspg.Options{})
	if err != nil {
		b.Fatal(err)
	}
	vm, err := influx.New(influx.Options{URL: startVictoriaMetrics(b), Org: "cloud-api", Bucket: "cloud-api", Token: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer vm.Close()

	now := time.Now().UTC()
	started := metav1.NewTime(now.Add(-25 * time.Hour))
	const hot = 20 // pipelines with a full day of scrapes, for the queries
	var day [][]core.MetricsScrape
	for r := int64(0); r < 24*120; r++ {
		day = append(day, scrapes(hot, r, now.Add(-24*time.Hour).Add(time.Duration(r)*30*time.Second), started))
	}
	ingest(b, history, day)
	if err := pg.Maintain(ctx, now); err != nil {
		b.Fatal(err)
	}

	for i := 0; i < b.N; i++ {
		// Rounds of every pipeline, at the present (the stores refuse what they would not keep).
		var load [][]core.MetricsScrape
		for r := int64(0); r < int64(rounds); r++ {
			load = append(load, scrapes(pipelines, 100000+int64(i*rounds)+r, now.Add(time.Duration(r)*time.Second+time.Duration(i)*time.Minute), started))
		}
		bytesBefore, walBefore := relationBytes(b, pool), walBytes(b, pool)
		pgTime := ingest(b, pg, load)
		bytesAfter, walAfter := relationBytes(b, pool), walBytes(b, pool)
		vmTime := ingest(b, vm, load)

		n := float64(pipelines * rounds)
		pgRate, vmRate := n/pgTime.Seconds(), n/vmTime.Seconds()
		need := float64(pipelines) / 30
		b.ReportMetric(pgRate, "pg-scrapes/s")
		b.ReportMetric(vmRate, "influx-api-scrapes/s")
		b.ReportMetric(pgRate/vmRate, "pg/influx-api")
		b.ReportMetric(pgRate/need, "pg-headroom")
		b.ReportMetric(float64(bytesAfter-bytesBefore)/n, "pg-bytes/scrape")
		b.ReportMetric(float64(walAfter-walBefore)/n, "pg-wal-bytes/scrape")

		q := func(start, interval time.Duration) []time.Duration {
			var lat []time.Duration
			for j := range 200 {
				qq := metricstore.Query{Namespace: "bench", Pipeline: fmt.Sprintf("p%05d", j%hot), Start: now.Add(start), End: now, Interval: interval}
				t0 := time.Now()
				rows, err := pg.Query(ctx, qq)
				if err != nil {
					b.Fatal(err)
				}
				_ = metricstore.Assemble(qq, rows)
				lat = append(lat, time.Since(t0))
			}
			return lat
		}
		day, hour := q(-24*time.Hour, time.Hour), q(-time.Hour, time.Minute)
		b.ReportMetric(float64(percentile(day, 0.99).Microseconds())/1000, "query-24h-1h-p99-ms")
		b.ReportMetric(float64(percentile(hour, 0.99).Microseconds())/1000, "query-1h-1m-p99-ms")
		fmt.Printf("\nmetric stores, %d pipelines x 30 counters, %d rounds (%d scrapes), %d writers of %d-scrape batches:\n"+
			"  embedded PostgreSQL: %.0f scrapes/s (%.0f counters/s), %.1fx the %.0f scrapes/s 10,000 pipelines need;\n"+
			"    %.0f bytes of tables and %.0f bytes of WAL per scrape\n"+
			"  InfluxDB 2 write API (VictoriaMetrics): %.0f scrapes/s; PostgreSQL/it %.2f\n"+
			"  queries of a pipeline with a day of history (PostgreSQL): 24h at 1h p50 %s p99 %s; 1h at 1m p50 %s p99 %s\n",
			pipelines, rounds, pipelines*rounds, writers, batchSize,
			pgRate, pgRate*30, pgRate/need, need, float64(bytesAfter-bytesBefore)/n, float64(walAfter-walBefore)/n,
			vmRate, pgRate/vmRate,
			percentile(day, 0.5), percentile(day, 0.99), percentile(hour, 0.5), percentile(hour, 0.99))
	}
}
