package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

// BenchmarkCreatesSQL is BenchmarkCreates on our store with every statement
// the backend sends timed from the client (a pgx tracer on its pool): where
// a create's time goes, without pg_stat_statements. It reports statements
// (round trips) per create and creates per write transaction (the group
// commit's batch size), and prints the statements by total time.
func BenchmarkCreatesSQL(b *testing.B) {
	pod := storagetesting.PrepareBenchmarkData(1, 1, 1).Pods[0]
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			tracer := newSQLTracer()
			pool := newPoolWith(b, pgtest.NewDatabase(b), poolConns, func(c *pgxpool.Config) { c.ConnConfig.Tracer = tracer })
			create := storeCreator(newPostgresStore(b, pool), pod)
			tracer.reset() // not the migration's statements
			start := time.Now()
			runCreates(b, writers, create)
			wall := time.Since(start)
			stmts, writeTxs := tracer.totals()
			b.ReportMetric(float64(stmts)/float64(b.N), "stmts/create")
			if writeTxs > 0 {
				b.ReportMetric(float64(b.N)/float64(writeTxs), "creates/commit")
			}
			var report strings.Builder
			tracer.print(&report, b.Name(), wall)
			sqlReports.Store(b.Name(), report.String()) // the last run's, printed in the summary
		})
	}
}

// sqlReports holds BenchmarkCreatesSQL's statement tables by benchmark name.
var sqlReports sync.Map

// printSQLReports prints the statement tables, by benchmark name.
func printSQLReports(out io.Writer) {
	var names []string
	sqlReports.Range(func(k, _ any) bool { names = append(names, k.(string)); return true })
	sort.Strings(names)
	for _, name := range names {
		r, _ := sqlReports.Load(name)
		fmt.Fprint(out, "\n", r)
	}
}

// sqlTracer times statements and batches (a batch is one round trip).
type sqlTracer struct {
	mu    sync.Mutex
	stats map[string]*sqlStat
}

type sqlStat struct {
	n     int
	total time.Duration
}

type sqlTraceKey struct{}

type sqlTraceStart struct {
	sql   string
	start time.Time
}

func newSQLTracer() *sqlTracer { return &sqlTracer{stats: map[string]*sqlStat{}} }

func (t *sqlTracer) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats = map[string]*sqlStat{}
}

// shortSQL is a statement's first words, whitespace collapsed.
func shortSQL(sql string, n int) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > n {
		s = s[:n]
	}
	return s
}

func (t *sqlTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, sqlTraceKey{}, sqlTraceStart{shortSQL(d.SQL, 60), time.Now()})
}

func (t *sqlTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.end(ctx)
}

func (t *sqlTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	var names []string
	for _, q := range d.Batch.QueuedQueries {
		names = append(names, shortSQL(q.SQL, 24))
	}
	return context.WithValue(ctx, sqlTraceKey{}, sqlTraceStart{"batch: " + strings.Join(names, "; "), time.Now()})
}

func (t *sqlTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *sqlTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	t.end(ctx)
}

func (t *sqlTracer) end(ctx context.Context) {
	s, ok := ctx.Value(sqlTraceKey{}).(sqlTraceStart)
	if !ok {
		return
	}
	d := time.Since(s.start)
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.stats[s.sql]
	if st == nil {
		st = &sqlStat{}
		t.stats[s.sql] = st
	}
	st.n++
	st.total += d
}

// totals returns the statements (round trips) sent and the write
// transactions among them: the batches that append to kv_log.
func (t *sqlTracer) totals() (stmts, writeTxs int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for sql, st := range t.stats {
		stmts += st.n
		if strings.Contains(sql, "INSERT INTO kv_log") {
			writeTxs += st.n
		}
	}
	return stmts, writeTxs
}

func (t *sqlTracer) print(out io.Writer, name string, wall time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	type entry struct {
		sql string
		st  *sqlStat
	}
	var all []entry
	for sql, st := range t.stats {
		all = append(all, entry{sql, st})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].st.total > all[j].st.total })
	fmt.Fprintf(out, "Statements (round trips) of %s over %v, client-side times:\n", name, wall.Round(time.Millisecond))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  count\tper s\tavg ms\ttotal s\tstatement")
	for _, e := range all {
		fmt.Fprintf(tw, "  %d\t%.0f\t%.3f\t%.2f\t%s\n", e.st.n, float64(e.st.n)/wall.Seconds(),
			e.st.total.Seconds()*1000/float64(e.st.n), e.st.total.Seconds(), e.sql)
	}
	tw.Flush()
}
