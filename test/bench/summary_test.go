package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printSummary sets the figures of the run side by side: ours against
// etcd3 and against the INSERT ceiling, and the goals.
func printSummary(out io.Writer, rs *resultSet) {
	fmt.Fprintln(out, "\n==== Summary: PostgreSQL store (ours) vs etcd3 store (embedded etcd, fsync off) ====")
	fmt.Fprintln(out, "(medians where a benchmark ran several times, -count)")

	upstream := []struct{ prefix, unit string }{
		{"BenchmarkWriteThroughput/backend=" + backendPostgres + "/", "writes/s"},
		{"BenchmarkList/backend=" + backendPostgres + "/StoreList/", "list-calls/s"},
	}
	for _, u := range upstream {
		tw := newTable(out, "\nUpstream "+strings.TrimPrefix(strings.Split(u.prefix, "/")[0], "Benchmark")+" ("+u.unit+", higher is better)",
			"case", "ours", "etcd3", "ours/etcd3")
		for _, name := range rs.order {
			if !strings.HasPrefix(name, u.prefix) {
				continue
			}
			ours, _ := rs.get(name, u.unit)
			etcd, ok := rs.get(counterpart(name, backendEtcd), u.unit)
			if !ok {
				continue
			}
			row(tw, strings.TrimPrefix(name, u.prefix), num(ours), num(etcd), ratio(ours, etcd))
		}
		tw.Flush()
	}

	tw := newTable(out, "\nCreates/s (higher is better); -async: synchronous_commit=off on the benchmark's sessions",
		"writers", "ours", "etcd3", "INSERT", "ours/etcd3", "ours/INSERT", "ours-async", "INSERT-async", "ours-async/etcd3")
	for _, wr := range createWriters {
		get := func(backend string) float64 {
			v, _ := rs.get(fmt.Sprintf("BenchmarkCreates/backend=%s/writers=%d", backend, wr), "creates/s")
			return v
		}
		ours, etcd, ins := get(backendPostgres), get(backendEtcd), get(backendInsert)
		oursAsync, insAsync := get(backendPostgresAsync), get(backendInsertAsync)
		if ours+etcd+ins+oursAsync+insAsync == 0 {
			continue
		}
		row(tw, fmt.Sprint(wr), num(ours), num(etcd), num(ins), ratio(ours, etcd), ratio(ours, ins),
			num(oursAsync), num(insAsync), ratio(oursAsync, etcd))
	}
	tw.Flush()

	tw = newTable(out, "\nCross-instance watch delivery latency, ms (create on instance A, watch on instance B)",
		"backend", "writers", "p50", "p99", "max", "p50 after return", "p99 after return")
	for _, backend := range storeBackends {
		for _, wr := range watchWriters {
			name := fmt.Sprintf("BenchmarkWatchLatency/backend=%s/writers=%d", backend, wr)
			m := rs.metrics(name)
			if m == nil {
				continue
			}
			row(tw, backend, fmt.Sprint(wr), ms(m["p50-ms"]), ms(m["p99-ms"]), ms(m["max-ms"]),
				ms(m["p50-after-return-ms"]), ms(m["p99-after-return-ms"]))
		}
	}
	tw.Flush()

	tw = newTable(out, fmt.Sprintf("\nOne list of all %d pods, ms per list (lower is better)", benchPods),
		"case", "ours", "etcd3", "ours/etcd3")
	listPrefix := "BenchmarkList/backend=" + backendPostgres + "/Full/"
	for _, name := range rs.order {
		if !strings.HasPrefix(name, listPrefix) {
			continue
		}
		ours, _ := rs.get(name, "ms/list")
		etcd, ok := rs.get(counterpart(name, backendEtcd), "ms/list")
		if !ok {
			continue
		}
		row(tw, strings.TrimPrefix(name, listPrefix), ms(ours), ms(etcd), ratio(ours, etcd))
	}
	tw.Flush()

	tw = newTable(out, "\nOur store's round trips per create (BenchmarkCreatesSQL)",
		"writers", "creates/s", "statements/create", "creates/commit")
	for _, wr := range []int{1, 16} {
		name := fmt.Sprintf("BenchmarkCreatesSQL/writers=%d", wr)
		if m := rs.metrics(name); m != nil {
			row(tw, fmt.Sprint(wr), num(m["creates/s"]), ms(m["stmts/create"]), ms(m["creates/commit"]))
		}
	}
	tw.Flush()
	printSQLReports(out)

	printGoals(out, rs)
}

// printGoals reports the goals as met or not; the benchmarks do not
// assert them (timings depend on the machine).
func printGoals(out io.Writer, rs *resultSet) {
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	creates := func(backend string) (float64, bool) {
		return rs.get(fmt.Sprintf("BenchmarkCreates/backend=%s/writers=16", backend), "creates/s")
	}
	if ours, ok := creates(backendPostgres); ok {
		if etcd, ok := creates(backendEtcd); ok {
			goal(tw, "16 writers: creates/s >= etcd3", ours >= etcd, fmt.Sprintf("%s vs %s", num(ours), num(etcd)))
		}
		if ins, ok := creates(backendInsert); ok {
			goal(tw, "16 writers: creates/s >= INSERT/2", ours >= ins/2, fmt.Sprintf("%s vs %s/2", num(ours), num(ins)))
		}
	}
	for _, wr := range watchWriters {
		if p99, ok := rs.get(fmt.Sprintf("BenchmarkWatchLatency/backend=%s/writers=%d", backendPostgres, wr), "p99-ms"); ok {
			goal(tw, fmt.Sprintf("watch p99 < 100 ms across instances (%d writers)", wr), p99 < 100, ms(p99)+" ms")
		}
	}
	name := "BenchmarkList/backend=" + backendPostgres + "/Full/RV=latest"
	if ours, ok := rs.get(name, "ms/list"); ok {
		if etcd, ok := rs.get(counterpart(name, backendEtcd), "ms/list"); ok {
			goal(tw, fmt.Sprintf("list of %d no slower than etcd3", benchPods), ours <= etcd, fmt.Sprintf("%s ms vs %s ms", ms(ours), ms(etcd)))
		}
	}
	tw.Flush()
	if buf.Len() > 0 {
		fmt.Fprintf(out, "\nGoals of the issue (reported, not asserted)\n%s", buf.String())
	}
}

func goal(tw *tabwriter.Writer, what string, met bool, detail string) {
	verdict := "MET"
	if !met {
		verdict = "NOT MET"
	}
	fmt.Fprintf(tw, "  %s\t%s\t%s\n", what, verdict, detail)
}

// counterpart is name with its backend=... element replaced.
func counterpart(name, backend string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "backend=") {
			parts[i] = "backend=" + backend
		}
	}
	return strings.Join(parts, "/")
}

// table is printed only when it has rows, so that a run of some of the
// benchmarks prints only their tables.
type table struct {
	out    io.Writer
	title  string
	header []string
	rows   [][]string
}

func newTable(out io.Writer, title string, header ...string) *table {
	return &table{out: out, title: title, header: header}
}

func row(t *table, cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) Flush() {
	if len(t.rows) == 0 {
		return
	}
	fmt.Fprintln(t.out, t.title)
	tw := tabwriter.NewWriter(t.out, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, r := range append([][]string{t.header}, t.rows...) {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
}

// num formats a rate with three significant digits at least.
func num(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func ms(v float64) string { return fmt.Sprintf("%.2f", v) }

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}
