package scrape

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
)

// testdata/fluent-bit-5.1.1.{prom,json} were recorded from the real Fluent Bit 5.1.1 (dummy
// input, grep and record_modifier filters, null output aliased "sink", filesystem storage),
// /api/v2/metrics/prometheus and /api/v1/metrics read one after the other.
func TestParseAgreesWithFluentBitsJSON(t *testing.T) {
	f, err := os.Open("testdata/fluent-bit-5.1.1.prom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counters, start, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if start == nil || start.Unix() != 1796238272 {
		t.Errorf("start time %v, want fluentbit_process_start_time_seconds", start)
	}
	got := map[string]int64{}
	for _, c := range counters {
		got[c.Measurement+"/"+c.Plugin+"/"+c.Name] = c.Value
	}
	b, err := os.ReadFile("testdata/fluent-bit-5.1.1.json")
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]map[string]map[string]int64
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	n := 0
	for measurement, plugins := range js {
		for plugin, fields := range plugins {
			for field, v := range fields {
				key := measurement + "/" + plugin + "/" + field + "_total"
				if g, ok := got[key]; !ok || g != v {
					t.Errorf("%s = %d (present %v), /api/v1/metrics says %d", key, g, ok, v)
				}
				n++
			}
		}
	}
	if n < 15 {
		t.Fatalf("compared only %d values", n)
	}
	if got["storage//chunks"] != 1 {
		t.Errorf("storage chunks gauge %d, want 1", got["storage//chunks"])
	}
	for k := range got {
		if strings.Contains(k, "rate") || strings.HasPrefix(k, "input/dummy.0/storage") {
			t.Errorf("%s: gauges of inputs are not counters", k)
		}
	}
	for _, c := range counters {
		if c.Measurement != v1.MeasurementStorage && !strings.HasSuffix(c.Name, "_total") {
			t.Errorf("counter %+v", c)
		}
	}
}

// The vivo_exporter the agent adds to every pipeline is not one of the user's outputs.
func TestParseLeavesOutTheTap(t *testing.T) {
	b, err := os.ReadFile("testdata/fluent-bit-5.1.1.prom")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), `fluentbit_output_proc_records_total{name="sink"} 36`,
		`fluentbit_output_proc_records_total{name="sink"} 36`+"\n"+`fluentbit_output_proc_records_total{name="`+render.TapAlias+`"} 36`, 1)
	if text == string(b) {
		t.Fatal("recorded text has no sink output line to add the tap beside")
	}
	counters, _, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	sink := false
	for _, c := range counters {
		if c.Plugin == render.TapAlias {
			t.Errorf("tap counter kept: %+v", c)
		}
		sink = sink || (c.Plugin == "sink" && c.Name == "proc_records_total")
	}
	if !sink {
		t.Error("the user's output went missing with the tap")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, _, err := Parse(strings.NewReader("fluentbit_input_records_total{name=\"x\" 1\n")); err == nil {
		t.Error("malformed text parsed")
	}
}
