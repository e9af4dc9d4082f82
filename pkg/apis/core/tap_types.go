package core

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Signals a pipeline's tap reads.
const (
	TapSignalLogs    = "logs"
	TapSignalMetrics = "metrics"
	TapSignalTraces  = "traces"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PipelineTap is what GET pipelines/{name}/tap answers: a window of the records (logs), metrics
// or traces passing through the pipeline, as its Fluent Bit's vivo_exporter holds them. Read it
// again from nextID for what came since.
type PipelineTap struct {
	metav1.TypeMeta `json:",inline"`
	// metadata names the pipeline.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// signal is logs, metrics or traces.
	Signal string `json:"signal"`
	// startID and endID are the ids of the oldest and newest chunk the exporter still holds, and
	// nextID the id to read from next time.
	// +optional
	StartID int64 `json:"startID,omitempty"`
	// +optional
	EndID int64 `json:"endID,omitempty"`
	// +optional
	NextID int64 `json:"nextID,omitempty"`
	// truncated is set when the answer was cut at the size cap; read again from nextID.
	// +optional
	Truncated bool `json:"truncated,omitempty"`
	// chunks are what the exporter answered, oldest first.
	// +optional
	// +listType=atomic
	Chunks []TapChunk `json:"chunks,omitempty"`
}

// TapChunk is one chunk of a signal.
type TapChunk struct {
	// sourceType and sourceName are the plugin that produced it, e.g. "dummy" and "dummy.0".
	// +optional
	SourceType string `json:"sourceType,omitempty"`
	// +optional
	SourceName string `json:"sourceName,omitempty"`
	// tag is the records' tag.
	// +optional
	Tag string `json:"tag,omitempty"`
	// records are the log records of the chunk.
	// +optional
	// +listType=atomic
	Records []TapRecord `json:"records,omitempty"`
	// data is the chunk as Fluent Bit wrote it, for metrics and traces.
	// +optional
	Data *runtime.RawExtension `json:"data,omitempty"`
}

// TapRecord is one log record.
type TapRecord struct {
	// time is the record's timestamp.
	Time metav1.MicroTime `json:"time"`
	// metadata is the record's metadata (often empty).
	// +optional
	Metadata *runtime.RawExtension `json:"metadata,omitempty"`
	// record is the record's body.
	Record runtime.RawExtension `json:"record"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PipelineTapOptions are the query parameters of the tap subresource.
type PipelineTapOptions struct {
	metav1.TypeMeta `json:",inline"`

	// signal is logs (default), metrics or traces.
	// +optional
	Signal string `json:"signal,omitempty"`
	// from is the id to read from (the nextID of the previous answer); unset, the oldest held.
	// +optional
	From *int64 `json:"from,omitempty"`
	// limit caps the number of chunks (default 100, at most 1000).
	// +optional
	Limit int32 `json:"limit,omitempty"`
}
