// Package dataplane is the contract between the data plane agent (core-operator), which follows
// its core instance's pipelines through the management plane's API, and the runtimes that run
// them: Kubernetes workloads (package kube) or fluent-bit processes on a host (package host).
package dataplane

import (
	"context"

	"k8s.io/client-go/tools/cache"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
)

// Key names a pipeline in the management plane: its namespace and name.
type Key = cache.ObjectName

// Spec is one pipeline to run, rendered for the runtime that runs it.
type Spec struct {
	Pipeline *v1.Pipeline
	// Instance is the core instance the pipeline runs on (its default image, whether to
	// create Services).
	Instance *v1.CoreInstance
	Rendered *render.Pipeline
	Profile  *v1.ResourceProfileSpec
}

// Event is something a runtime saw happen to a pipeline, for the pipeline's Events.
type Event struct {
	// Type is "Normal" or "Warning".
	Type    string
	Reason  string
	Message string
}

// Observation is what runs of a pipeline now.
type Observation struct {
	// Desired is how many replicas should run; Replicas how many do, ReadyReplicas how many are
	// ready and UpdatedReplicas how many run the spec's revision.
	Desired, Replicas, ReadyReplicas, UpdatedReplicas int32
	// RolledOut is set when the runtime runs the spec's revision everywhere and nothing older.
	RolledOut bool
	// Selector selects the pipeline's pods (Kubernetes mode).
	Selector string
	// Ports are the exposed ports with their endpoints.
	Ports []v1.PipelinePortStatus
	// TapEndpoint is where the management plane can read the pipeline's tap (host:port).
	TapEndpoint string
	// Failure, when set, is why the pipeline cannot run as asked.
	Failure *Failure
	// Waiting, when set, says what the pipeline waits for (e.g. no node fits its pods).
	Waiting string
	// Events happened since the last observation.
	Events []Event
}

// Failure is a reason (CamelCase, for conditions and Events) and a message for people.
type Failure struct {
	Reason  string
	Message string
}

func (f *Failure) Error() string { return f.Reason + ": " + f.Message }

// Runtime runs pipelines.
type Runtime interface {
	// RenderOptions says how to render p for this runtime.
	RenderOptions(p *v1.Pipeline) (render.Options, error)
	// Apply makes the runtime run spec and returns what runs now. It costs little when nothing
	// changed, as the agent calls it on every change it hears of.
	Apply(ctx context.Context, spec *Spec) (*Observation, error)
	// Remove stops the pipeline and deletes everything the runtime made for it. done is false
	// while that is still under way; the runtime notifies the agent when it is worth asking again.
	Remove(ctx context.Context, key Key) (done bool, err error)
	// Pipelines lists the pipelines the runtime holds anything of, so that the agent can remove
	// what belongs to pipelines deleted or moved while it was not running.
	Pipelines() []Key
}
