// Package scrape collects the data plane's metrics: it reads each pipeline's Fluent Bit
// (GET /api/v2/metrics/prometheus on its HTTP server) and sends what it read, one batch per
// round for the agent's core instance (split in parts when large), to the management plane's
// coreinstances/{name}/metrics.
package scrape

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
	clientset "github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
)

// Target is one Fluent Bit to scrape.
type Target struct {
	Pipeline dataplane.Key
	// Pod is the pod (or host) it runs on.
	Pod string
	// Address is its HTTP server, host:port.
	Address string
}

// Targets lists what to scrape now.
type Targets interface {
	MetricsTargets() []Target
}

// Parse reads Fluent Bit's Prometheus text: the counters of its inputs, filters and outputs,
// its storage gauges, and its start time.
func Parse(r io.Reader) ([]v1.MetricsCounter, *metav1.Time, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing Prometheus text: %w", err)
	}
	var out []v1.MetricsCounter
	var start *metav1.Time
	for name, f := range families {
		if name == "fluentbit_process_start_time_seconds" {
			for _, m := range f.GetMetric() {
				if g := m.GetGauge(); g != nil && g.GetValue() > 0 {
					t := metav1.NewTime(time.Unix(int64(g.GetValue()), 0))
					start = &t
				}
			}
			continue
		}
		measurement, counter, ok := split(name)
		if !ok {
			continue
		}
		gauge := measurement == v1.MeasurementStorage
		if (gauge && f.GetType() != dto.MetricType_GAUGE) || (!gauge && f.GetType() != dto.MetricType_COUNTER) {
			continue // e.g. inputs' rate gauges
		}
		for _, m := range f.GetMetric() {
			var v float64
			if gauge {
				v = m.GetGauge().GetValue()
			} else {
				v = m.GetCounter().GetValue()
			}
			plugin := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" {
					plugin = l.GetValue()
				}
			}
			if v < 0 {
				continue
			}
			// The tap is the agent's, not the user's: counting it would double every
			// pipeline's output records and bytes.
			if measurement == v1.MeasurementOutput && plugin == render.TapAlias {
				continue
			}
			out = append(out, v1.MetricsCounter{Measurement: measurement, Plugin: plugin, Name: counter, Value: int64(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Measurement != b.Measurement {
			return a.Measurement < b.Measurement
		}
		if a.Plugin != b.Plugin {
			return a.Plugin < b.Plugin
		}
		return a.Name < b.Name
	})
	return out, start, nil
}

// split cuts fluentbit_<measurement>_<counter>.
func split(name string) (measurement, counter string, ok bool) {
	rest, ok := strings.CutPrefix(name, "fluentbit_")
	if !ok {
		return "", "", false
	}
	for _, m := range []string{v1.MeasurementInput, v1.MeasurementFilter, v1.MeasurementOutput, v1.MeasurementStorage} {
		if c, ok := strings.CutPrefix(rest, m+"_"); ok && c != "" {
			return m, c, true
		}
	}
	return "", "", false
}

// Scraper reads every target on a timer and reports to the core instance.
type Scraper struct {
	Client       clientset.Interface
	Namespace    string
	CoreInstance string
	Targets      Targets
	Interval     time.Duration
	// BatchSize caps the scrapes of one request (default 500).
	BatchSize int
	// Parallel is how many Fluent Bits are read at once (default 16).
	Parallel int
	HTTP     *http.Client
}

// Run scrapes every Interval until ctx ends.
func (s *Scraper) Run(ctx context.Context) {
	if s.BatchSize <= 0 {
		s.BatchSize = 500
	}
	if s.Parallel <= 0 {
		s.Parallel = 16
	}
	if s.HTTP == nil {
		s.HTTP = &http.Client{Timeout: 5 * time.Second}
	}
	wait.UntilWithContext(ctx, s.Round, s.Interval)
}

// Round scrapes every target once and sends the result.
func (s *Scraper) Round(ctx context.Context) {
	logger := klog.FromContext(ctx)
	targets := s.Targets.MetricsTargets()
	if len(targets) == 0 {
		return
	}
	scrapes := make([]*v1.MetricsScrape, len(targets))
	sem := make(chan struct{}, s.Parallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sc, err := s.scrape(ctx, t)
			if err != nil {
				// A pod not ready yet or a process restarting: the next round tries again.
				logger.V(4).Info("Scrape failed", "pipeline", t.Pipeline, "pod", t.Pod, "err", err)
				return
			}
			scrapes[i] = sc
		})
	}
	wg.Wait()
	var batch []v1.MetricsScrape
	for _, sc := range scrapes {
		if sc == nil {
			continue
		}
		batch = append(batch, *sc)
		if len(batch) == s.BatchSize {
			s.send(ctx, batch)
			batch = nil
		}
	}
	if len(batch) > 0 {
		s.send(ctx, batch)
	}
}

func (s *Scraper) scrape(ctx context.Context, t Target) (*v1.MetricsScrape, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.Address+"/api/v2/metrics/prometheus", nil)
	if err != nil {
		return nil, err
	}
	at := time.Now()
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v2/metrics/prometheus: %s", resp.Status)
	}
	counters, start, err := Parse(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	return &v1.MetricsScrape{Pipeline: t.Pipeline.Name, Pod: t.Pod, Time: metav1.NewMicroTime(at), StartTime: start, Counters: counters}, nil
}

// send posts one batch, retrying a few times: the server keeps a scrape once however often it
// is sent.
func (s *Scraper) send(ctx context.Context, scrapes []v1.MetricsScrape) {
	batch := &v1.MetricsBatch{Scrapes: scrapes}
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Steps: 4}
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		got, err := s.Client.CoreV1().CoreInstances(s.Namespace).CreateMetrics(ctx, s.CoreInstance, batch, metav1.CreateOptions{})
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return false, err // sending it again cannot help
		}
		if err != nil {
			last = err
			return false, nil
		}
		klog.FromContext(ctx).V(4).Info("Sent metrics", "scrapes", len(scrapes), "accepted", got.Status.Accepted,
			"duplicates", got.Status.Duplicates, "rejected", got.Status.Rejected)
		return true, nil
	})
	if err != nil {
		if last == nil || !wait.Interrupted(err) {
			last = err
		}
		klog.FromContext(ctx).Error(last, "Sending metrics failed; this round's are lost", "scrapes", len(scrapes))
	}
}
