package influx

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calyptia/core-management-plane/internal/testbin"
	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/metricstore"
)

var victoriaMetrics = testbin.Program{Name: "victoria-metrics", Env: "VICTORIA_METRICS", Make: "victoria-metrics"}

// startVictoriaMetrics runs Debian's VictoriaMetrics, which accepts InfluxDB 2's write API
// (/api/v2/write) and reads back through its export API.
func startVictoriaMetrics(t *testing.T) string {
	t.Helper()
	bin := victoriaMetrics.Path(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-httpListenAddr="+addr, "-storageDataPath="+t.TempDir(), "-search.latencyOffset=0s", "-loggerLevel=ERROR",
		// InfluxDB keeps one value per series and time; so does VictoriaMetrics with deduplication.
		"-dedup.minScrapeInterval=1ms")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("victoria-metrics did not start on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type exported struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

func export(t *testing.T, base string) []exported {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/export?match[]=" + url.QueryEscape(`{__name__=~"fluentbit_.*"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []exported
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e exported
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("decoding %s: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestWriteReachesAnInfluxDBWriteAPI(t *testing.T) {
	base := startVictoriaMetrics(t)
	s, err := New(Options{URL: base, Org: "cloud-api", Bucket: "cloud-api", Token: "token"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Now().Truncate(time.Millisecond)
	start := metav1.NewTime(at.Add(-time.Hour))
	scrapes := []core.MetricsScrape{{
		Pipeline: "fwd", Pod: "fwd-0", Time: metav1.NewMicroTime(at), StartTime: &start,
		Counters: []core.MetricsCounter{
			{Measurement: "input", Plugin: "forward.0", Name: "records_total", Value: 1234},
			{Measurement: "input", Plugin: "forward.0", Name: "bytes_total", Value: 56789},
			{Measurement: "output", Plugin: "es.0", Name: "proc_records_total", Value: 1200},
			{Measurement: "storage", Name: "chunks", Value: 3},
		},
	}}
	ctx := context.Background()
	if a, d, err := s.Write(ctx, "team-a", "edge", scrapes); err != nil || a != 1 || d != 0 {
		t.Fatalf("Write: %d, %d, %v", a, d, err)
	}
	// The same scrape again is the same point.
	if _, _, err := s.Write(ctx, "team-a", "edge", scrapes); err != nil {
		t.Fatal(err)
	}

	want := map[string]float64{
		"fluentbit_input_records_total":       1234,
		"fluentbit_input_bytes_total":         56789,
		"fluentbit_output_proc_records_total": 1200,
		"fluentbit_storage_chunks":            3,
	}
	var got []exported
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got = export(t, base); len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(got) != len(want) {
		t.Fatalf("exported %d series, want %d: %+v", len(got), len(want), got)
	}
	for _, e := range got {
		name := e.Metric["__name__"]
		v, ok := want[name]
		if !ok {
			t.Errorf("unexpected series %s", name)
			continue
		}
		if len(e.Values) != 1 || e.Values[0] != v || e.Timestamps[0] != at.UnixMilli() {
			t.Errorf("%s: values %v at %v, want one %v at %d (a repeated write must not add a point)", name, e.Values, e.Timestamps, v, at.UnixMilli())
		}
		for k, v := range map[string]string{"namespace": "team-a", "core_instance": "edge", "pipeline": "fwd", "pod": "fwd-0"} {
			if e.Metric[k] != v {
				t.Errorf("%s: tag %s=%q, want %q", name, k, e.Metric[k], v)
			}
		}
		if name != "fluentbit_storage_chunks" && e.Metric["plugin"] == "" {
			t.Errorf("%s has no plugin tag", name)
		}
	}
}

// syntheticAnswer is an InfluxDB 2 /api/v2/query answer in annotated CSV, written by hand to
// the format InfluxDB documents (no InfluxDB can run here): the counters' running increases per
// bucket of two pods, and a storage gauge's means. Pod fwd-1 restarts in the third bucket, which
// increase() has already accounted for.
const syntheticAnswer = `#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,long,string,string,string,string,string,string,string
#group,false,false,true,true,false,false,true,true,true,true,true,true,true
#default,_result,,,,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,core_instance,namespace,pipeline,plugin,pod
,,0,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T09:59:00Z,0,records_total,fluentbit_input,edge,team-a,fwd,forward.0,fwd-0
,,0,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T10:00:00Z,100,records_total,fluentbit_input,edge,team-a,fwd,forward.0,fwd-0
,,0,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T10:01:00Z,160,records_total,fluentbit_input,edge,team-a,fwd,forward.0,fwd-0
,,0,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T10:02:00Z,220,records_total,fluentbit_input,edge,team-a,fwd,forward.0,fwd-0
,,1,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T10:00:00Z,0,records_total,fluentbit_input,edge,team-a,fwd,forward.0,fwd-1
,,1,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T10:01:00Z,30,records_total,fluentbit_input,edge,team-a,fwd,forward.0,fwd-1
,,1,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T10:02:00Z,35,records_total,fluentbit_input,edge,team-a,fwd,forward.0,fwd-1
,,2,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T10:01:00Z,4,errors_total,fluentbit_output,edge,team-a,fwd,es.0,fwd-0

#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string,string,string
#group,false,false,true,true,false,false,true,true,true,true,true,true
#default,_result,,,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,core_instance,namespace,pipeline,pod
,,3,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T10:01:00Z,2.5,chunks,fluentbit_storage,edge,team-a,fwd,fwd-0
,,3,2026-12-01T09:58:00Z,2026-12-01T10:03:00Z,2026-12-01T10:02:00Z,4,chunks,fluentbit_storage,edge,team-a,fwd,fwd-0

`

func TestQueryFromAnnotatedCSV(t *testing.T) {
	var flux string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/query" || r.URL.Query().Get("org") != "cloud-api" {
			http.Error(w, `{"code":"not found","message":"no such endpoint"}`, http.StatusNotFound)
			return
		}
		var body struct {
			Query string `json:"query"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		flux = body.Query
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		fmt.Fprint(w, syntheticAnswer)
	}))
	defer srv.Close()
	s, err := New(Options{URL: srv.URL, Org: "cloud-api", Bucket: "cloud-api", Token: "token"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	q := metricstore.Query{Namespace: "team-a", Pipeline: "fwd", Start: start, End: start.Add(3 * time.Minute), Interval: time.Minute}
	rows, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`from(bucket: "cloud-api")`, `r.namespace == "team-a" and r.pipeline == "fwd"`, "increase()",
		`range(start: 2026-12-01T09:58:00Z`, `stop: 2026-12-01T10:03:00Z`, "every: 60000000us", `r._measurement == "fluentbit_storage"`} {
		if !strings.Contains(flux, want) {
			t.Errorf("Flux lacks %q:\n%s", want, flux)
		}
	}
	m := metricstore.Assemble(q, rows)
	// fwd-0: 100, 60, 60; fwd-1: 30, 5 (the 09:59 lead-in bucket only gives fwd-0's baseline).
	if m.Summary.Input.Records.Total != 255 || m.Summary.Output.Errors.Total != 4 {
		t.Errorf("summary input %+v, output errors %+v", m.Summary.Input.Records, m.Summary.Output.Errors)
	}
	var totals []int64
	for _, p := range m.Series {
		totals = append(totals, p.Input.Records.Total)
	}
	if fmt.Sprint(totals) != "[100 90 65]" {
		t.Errorf("per-minute input records %v, want [100 90 65]", totals)
	}
	for _, p := range m.Plugins {
		if p.Measurement == "storage" && p.Totals["chunks"] != 4 {
			t.Errorf("storage chunks %v, want the latest mean 4", p.Totals)
		}
	}

	// A core instance's query filters by it instead.
	if f := s.Flux(metricstore.Query{Namespace: "team-a", CoreInstance: `ed"ge`, Start: start, End: start.Add(time.Hour), Interval: time.Hour}); !strings.Contains(f, `r.core_instance == "ed\"ge"`) {
		t.Errorf("core instance query does not filter by it, quoted:\n%s", f)
	}
}

func TestQueryError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"unauthorized","message":"unauthorized access"}`)
	}))
	defer srv.Close()
	s, _ := New(Options{URL: srv.URL, Org: "cloud-api", Bucket: "cloud-api", Token: "bad"})
	defer s.Close()
	start := time.Now().Add(-time.Hour)
	_, err := s.Query(context.Background(), metricstore.Query{Namespace: "n", Pipeline: "p", Start: start, End: start.Add(time.Hour), Interval: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("err = %v, want InfluxDB's unauthorized", err)
	}
}
