package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Metrics of pipelines: what data plane agents report (MetricsBatch, created on a core
// instance's metrics subresource) and what the metrics subresources of pipelines and core
// instances answer (Metrics).

// Measurements of Fluent Bit's metrics, as the hosted product names them.
const (
	MeasurementInput   = "input"
	MeasurementFilter  = "filter"
	MeasurementOutput  = "output"
	MeasurementStorage = "storage"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// MetricsBatch is one round of scrapes of a core instance's pipelines, sent by its agent to
// POST coreinstances/{name}/metrics. Sending the same scrape again (same pod and time) is a
// no-op, so agents retry freely.
type MetricsBatch struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// scrapes are the pipelines' metrics, one entry per pod (or host process) and scrape.
	// +listType=atomic
	Scrapes []MetricsScrape `json:"scrapes"`
	// status says what the server kept.
	// +optional
	Status MetricsBatchStatus `json:"status,omitempty"`
}

// MetricsScrape is one scrape of one Fluent Bit.
type MetricsScrape struct {
	// pipeline is the name of the pipeline, on the batch's core instance.
	Pipeline string `json:"pipeline"`
	// pod is the pod (Kubernetes mode) or host (External mode) the Fluent Bit runs on.
	Pod string `json:"pod"`
	// time is when the scrape was taken.
	Time metav1.MicroTime `json:"time"`
	// startTime is when the scraped Fluent Bit started; a new one means its counters restarted.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// counters are the values read, counters since startTime (input, filter, output) or gauges
	// (storage).
	// +listType=atomic
	Counters []MetricsCounter `json:"counters"`
}

// MetricsCounter is one value of one plugin.
type MetricsCounter struct {
	// measurement is input, filter, output or storage.
	Measurement string `json:"measurement"`
	// plugin is the plugin instance (e.g. "forward.0" or its alias); empty for storage.
	// +optional
	Plugin string `json:"plugin,omitempty"`
	// name is Fluent Bit's counter name without prefix, e.g. "records_total" or "proc_bytes_total".
	Name string `json:"name"`
	// value is the counter's value.
	Value int64 `json:"value"`
}

// MetricsBatchStatus says what happened to a batch.
type MetricsBatchStatus struct {
	// accepted is the number of scrapes stored.
	Accepted int32 `json:"accepted"`
	// duplicates is the number of scrapes already stored (retries).
	Duplicates int32 `json:"duplicates"`
	// rejected is the number of scrapes of pipelines that are not (or no longer) on this core
	// instance, deleted or moved since the agent scraped them; they are not stored.
	Rejected int32 `json:"rejected"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Metrics is what GET pipelines/{name}/metrics and coreinstances/{name}/metrics answer:
// the pipeline's (or all the core instance's pipelines') records and bytes in and out,
// errors and retries, in total and per plugin over [start, end], and over time in buckets of
// interval. Counts are increases over the period (counter restarts are accounted for); rates
// are per second.
type Metrics struct {
	metav1.TypeMeta `json:",inline"`
	// metadata names the pipeline or core instance.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// start and end bound the period.
	Start metav1.Time `json:"start"`
	End   metav1.Time `json:"end"`
	// interval is the width of each point of series.
	Interval metav1.Duration `json:"interval"`
	// summary is the whole period.
	Summary MetricsSummary `json:"summary"`
	// series is the period in buckets of interval, oldest first; buckets without data are left out.
	// +optional
	// +listType=atomic
	Series []MetricsPoint `json:"series,omitempty"`
	// plugins are the totals and series of each plugin.
	// +optional
	// +listType=atomic
	Plugins []PluginMetrics `json:"plugins,omitempty"`
}

// MetricsSummary is records and bytes in and out, errors and retries, over a period.
type MetricsSummary struct {
	Input  InputMetrics  `json:"input"`
	Filter FilterMetrics `json:"filter"`
	Output OutputMetrics `json:"output"`
}

// InputMetrics are what inputs read.
type InputMetrics struct {
	Records MetricValue `json:"records"`
	Bytes   MetricValue `json:"bytes"`
}

// FilterMetrics are what filters saw and changed.
type FilterMetrics struct {
	Records     MetricValue `json:"records"`
	Bytes       MetricValue `json:"bytes"`
	AddRecords  MetricValue `json:"addRecords"`
	DropRecords MetricValue `json:"dropRecords"`
	EmitRecords MetricValue `json:"emitRecords"`
}

// OutputMetrics are what outputs delivered and failed to.
type OutputMetrics struct {
	Records        MetricValue `json:"records"`
	Bytes          MetricValue `json:"bytes"`
	Errors         MetricValue `json:"errors"`
	Retries        MetricValue `json:"retries"`
	RetriedRecords MetricValue `json:"retriedRecords"`
	RetriesFailed  MetricValue `json:"retriesFailed"`
	DroppedRecords MetricValue `json:"droppedRecords"`
}

// MetricValue is an increase over a period and its rate.
type MetricValue struct {
	// total is the increase over the period.
	Total int64 `json:"total"`
	// perSecond is total divided by the seconds of the period the data covers.
	PerSecond float64 `json:"perSecond"`
}

// MetricsPoint is one bucket of a series.
type MetricsPoint struct {
	// time is the start of the bucket.
	Time           metav1.Time `json:"time"`
	MetricsSummary `json:",inline"`
}

// PluginMetrics are one plugin's values.
type PluginMetrics struct {
	// pipeline is the plugin's pipeline (set in core instance metrics).
	// +optional
	Pipeline string `json:"pipeline,omitempty"`
	// measurement is input, filter, output or storage.
	Measurement string `json:"measurement"`
	// plugin is the plugin instance, e.g. "forward.0" or its alias; empty for storage.
	// +optional
	Plugin string `json:"plugin,omitempty"`
	// totals maps Fluent Bit's counter names (records_total, proc_bytes_total, ...) to their
	// increase over the period; storage gauges (chunks, fs_chunks_up, ...) to their last average.
	Totals map[string]int64 `json:"totals"`
	// series are the same values per bucket.
	// +optional
	// +listType=atomic
	Series []PluginPoint `json:"series,omitempty"`
}

// PluginPoint is one bucket of a plugin's series.
type PluginPoint struct {
	Time   metav1.Time      `json:"time"`
	Values map[string]int64 `json:"values"`
}

// +k8s:conversion-gen:explicit-from=net/url.Values
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// MetricsOptions are the query parameters of the metrics subresources.
type MetricsOptions struct {
	metav1.TypeMeta `json:",inline"`

	// start is a negative duration before now, e.g. "-24h" (default) or "-30m".
	// +optional
	Start string `json:"start,omitempty"`
	// interval is the width of the buckets of series, e.g. "1h" (default) or "1m".
	// +optional
	Interval string `json:"interval,omitempty"`
}
