package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// TestMain runs the benchmarks with their standard output copied through a
// parser of the Go benchmark format, so that the figures every benchmark
// reports (including those of the upstream benchmark functions, which only
// reach b.ReportMetric) can be set side by side in a summary at the end.
func TestMain(m *testing.M) {
	// The etcd3 store traces slow requests through klog, as upstream's
	// benchmarks discard it for; errors reach the benchmarks as return values.
	klog.SetLogger(logr.Discard())

	stdout := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating pipe: %v\n", err)
		os.Exit(2)
	}
	os.Stdout = w
	var results resultSet
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		results.scan(io.TeeReader(r, stdout))
	}()

	code := m.Run()

	os.Stdout = stdout
	w.Close()
	wg.Wait()
	if len(results.byName) > 0 {
		// make bench runs the benchmarks in several go test runs (with
		// different -benchtime); BENCH_RESULTS names a file that gathers
		// their results, so that the last run's summary has them all.
		if file := os.Getenv("BENCH_RESULTS"); file != "" {
			if err := results.mergeFile(file); err != nil {
				fmt.Fprintf(os.Stderr, "gathering results in %s: %v\n", file, err)
				code = 1
			}
		}
		printSummary(stdout, &results)
	}
	os.Exit(code)
}

// mergeFile adds the results saved in file before this run's (which win),
// then saves them all there.
func (rs *resultSet) mergeFile(file string) error {
	var saved struct {
		Order  []string
		ByName map[string]map[string][]float64
	}
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(data, &saved); err != nil {
			return fmt.Errorf("decoding: %w", err)
		}
	}
	order := slices.DeleteFunc(saved.Order, func(name string) bool { _, ok := rs.byName[name]; return ok })
	rs.order = append(order, rs.order...)
	for name, m := range saved.ByName {
		if _, ok := rs.byName[name]; !ok {
			rs.byName[name] = m
		}
	}
	saved.Order, saved.ByName = rs.order, rs.byName
	data, err = json.MarshalIndent(saved, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// resultSet holds the metrics of every benchmark result line seen, by
// benchmark name without the GOMAXPROCS suffix: every sample (one per
// -count), of which the summary uses the median.
type resultSet struct {
	byName map[string]map[string][]float64
	order  []string
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// scan reads Go benchmark format lines:
// "BenchmarkName-2   <N>   <value> <unit>   <value> <unit> ...".
func (rs *resultSet) scan(r io.Reader) {
	rs.byName = map[string]map[string][]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		metrics := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				metrics = nil
				break
			}
			metrics[f[i+1]] = v
		}
		if metrics == nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(f[0], "")
		samples, seen := rs.byName[name]
		if !seen {
			rs.order = append(rs.order, name)
			samples = map[string][]float64{}
			rs.byName[name] = samples
		}
		for unit, v := range metrics {
			samples[unit] = append(samples[unit], v)
		}
	}
	// Keep draining so that writers never block on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// get returns the median of a metric of a result and whether it was reported.
func (rs *resultSet) get(name, unit string) (float64, bool) {
	vs := rs.byName[name][unit]
	if len(vs) == 0 {
		return 0, false
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// metrics returns the medians of every metric of a result (nil: no result).
func (rs *resultSet) metrics(name string) map[string]float64 {
	samples, ok := rs.byName[name]
	if !ok {
		return nil
	}
	m := map[string]float64{}
	for unit := range samples {
		m[unit], _ = rs.get(name, unit)
	}
	return m
}
