package tap

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

type pipelines map[string]*core.Pipeline

func (p pipelines) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	if pl, ok := p[name]; ok {
		return pl, nil
	}
	return nil, apierrors.NewNotFound(core.Resource("pipelines"), name)
}

// recorded serves testdata/NAME.{headers,ndjson}, recorded from the real Fluent Bit 5.1.1's
// vivo_exporter (dummy and fluentbit_metrics inputs), and remembers the last request.
func recorded(t *testing.T, last *string) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*last = r.URL.String()
		name := strings.TrimPrefix(r.URL.Path, "/api/v1/")
		body, err := os.ReadFile("testdata/" + name + ".ndjson")
		if err != nil {
			// Traces: nothing recorded, as the exporter answers without any.
			w.Header().Set("Vivo-Stream-Next-Id", "0")
			return
		}
		h, _ := os.Open("testdata/" + name + ".headers")
		defer h.Close()
		sc := bufio.NewScanner(h)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ": "); ok && strings.HasPrefix(k, "vivo-") {
				w.Header().Set(k, strings.TrimSpace(v))
			}
		}
		_, _ = w.Write(body)
	}))
}

func get(t *testing.T, r *REST, name string, o *core.PipelineTapOptions) (*core.PipelineTap, error) {
	t.Helper()
	ctx := genericapirequest.WithNamespace(context.Background(), "ns")
	obj, err := r.Get(ctx, name, o)
	if err != nil {
		return nil, err
	}
	return obj.(*core.PipelineTap), nil
}

func TestTapReadsTheExporter(t *testing.T) {
	var last string
	srv := recorded(t, &last)
	defer srv.Close()
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	r := NewREST(pipelines{"p": {ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: core.PipelineStatus{TapEndpoint: endpoint}}})

	from := int64(2)
	tap, err := get(t, r, "p", &core.PipelineTapOptions{From: &from, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if last != "/api/v1/logs?from=2&limit=3" {
		t.Errorf("asked the exporter %q", last)
	}
	if tap.Name != "p" || tap.Namespace != "ns" || tap.Signal != "logs" || tap.StartID != 0 || tap.EndID != 4 || tap.NextID != 5 || tap.Truncated {
		t.Errorf("tap %s/%s %s ids %d..%d next %d truncated %v", tap.Namespace, tap.Name, tap.Signal, tap.StartID, tap.EndID, tap.NextID, tap.Truncated)
	}
	records := 0
	for _, c := range tap.Chunks {
		if c.SourceName != "dummy.0" || c.Tag != "app.log" || c.Data != nil {
			t.Errorf("chunk %+v", c)
		}
		for _, rec := range c.Records {
			records++
			var body map[string]string
			if err := json.Unmarshal(rec.Record.Raw, &body); err != nil || body["message"] != "dummy" {
				t.Errorf("record %s: %v", rec.Record.Raw, err)
			}
			if rec.Time.Year() != 2026 || rec.Metadata != nil {
				t.Errorf("record time %v, metadata %v", rec.Time, rec.Metadata)
			}
		}
	}
	if len(tap.Chunks) != 5 || records != 9 {
		t.Errorf("%d chunks, %d records; want the 5 chunks and 9 records recorded", len(tap.Chunks), records)
	}

	// Metrics are not log records: each chunk comes as Fluent Bit wrote it.
	m, err := get(t, r, "p", &core.PipelineTapOptions{Signal: "metrics"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(strings.TrimSpace(string(must(os.ReadFile("testdata/metrics.ndjson")))), "\n") + 1
	if len(m.Chunks) != lines {
		t.Errorf("%d metrics chunks, want the %d recorded", len(m.Chunks), lines)
	}
	for i, c := range m.Chunks {
		if c.Data == nil || len(c.Records) != 0 || !strings.Contains(string(c.Data.Raw), `"name":"uptime"`) {
			t.Errorf("metrics chunk %d is not the cmetrics JSON Fluent Bit wrote (%d bytes)", i, len(c.Data.Raw))
		}
	}
	if tr, err := get(t, r, "p", &core.PipelineTapOptions{Signal: "traces"}); err != nil || len(tr.Chunks) != 0 {
		t.Errorf("traces: %+v, %v", tr, err)
	}
}

func TestTapRefuses(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>the metadata of a cloud instance, or any other service</html>\n"))
	}))
	defer bad.Close()
	r := NewREST(pipelines{
		"new":       {ObjectMeta: metav1.ObjectMeta{Name: "new"}},
		"wrong":     {Status: core.PipelineStatus{TapEndpoint: strings.TrimPrefix(bad.URL, "http://")}},
		"metadata":  {Status: core.PipelineStatus{TapEndpoint: "169.254.169.254:80"}},
		"down":      {Status: core.PipelineStatus{TapEndpoint: "127.0.0.1:1"}},
		"reachable": {Status: core.PipelineStatus{TapEndpoint: "127.0.0.1:1"}},
	})
	tests := []struct {
		name     string
		pipeline string
		opts     core.PipelineTapOptions
		code     int32
		not      string
	}{
		{"missing pipeline", "nope", core.PipelineTapOptions{}, http.StatusNotFound, ""},
		{"no endpoint yet", "new", core.PipelineTapOptions{}, http.StatusServiceUnavailable, ""},
		{"not an exporter", "wrong", core.PipelineTapOptions{}, http.StatusBadGateway, "metadata of a cloud"},
		{"link-local", "metadata", core.PipelineTapOptions{}, http.StatusBadGateway, ""},
		{"nothing listens", "down", core.PipelineTapOptions{}, http.StatusBadGateway, ""},
		{"bad signal", "reachable", core.PipelineTapOptions{Signal: "events"}, http.StatusBadRequest, ""},
		{"bad limit", "reachable", core.PipelineTapOptions{Limit: 5000}, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := get(t, r, tt.pipeline, &tt.opts)
			var se apierrors.APIStatus
			if err == nil || !errorsAs(err, &se) || se.Status().Code != tt.code {
				t.Fatalf("err = %v, want HTTP %d", err, tt.code)
			}
			if tt.not != "" && strings.Contains(err.Error(), tt.not) {
				t.Errorf("the error repeats what the endpoint said: %v", err)
			}
		})
	}
}

func errorsAs(err error, target *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	if ok {
		*target = s
	}
	return ok
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
