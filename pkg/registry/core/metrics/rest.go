// Package metrics serves the metrics subresources: GET pipelines/{name}/metrics and
// coreinstances/{name}/metrics read a metric store, and POST coreinstances/{name}/metrics is
// how a core instance's agent reports its pipelines' Fluent Bit counters. They are not stored
// objects, so they are hand-written REST storage beside the generic registry's resources, as
// metrics-server's are.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/apis/core/validation"
	"github.com/calyptia/core-management-plane/pkg/metricstore"
)

// Defaults of the query parameters, as the hosted product's.
const (
	DefaultStart    = -24 * time.Hour
	DefaultInterval = time.Hour
)

// PipelineREST is pipelines/{name}/metrics.
type PipelineREST struct {
	store     metricstore.Store
	pipelines rest.Getter
	now       func() time.Time
}

// CoreInstanceREST is coreinstances/{name}/metrics: GET reads, POST (the agent) writes.
type CoreInstanceREST struct {
	store         metricstore.Store
	coreInstances rest.Getter
	pipelines     rest.Getter
	now           func() time.Time
}

var (
	_ rest.GetterWithOptions = &PipelineREST{}
	_ rest.StorageMetadata   = &PipelineREST{}
	_ rest.GetterWithOptions = &CoreInstanceREST{}
	_ rest.NamedCreater      = &CoreInstanceREST{}
	_ rest.StorageMetadata   = &CoreInstanceREST{}
)

// NewPipelineREST serves pipelines/{name}/metrics from store; pipelines says which pipelines exist.
func NewPipelineREST(store metricstore.Store, pipelines rest.Getter) *PipelineREST {
	return &PipelineREST{store: store, pipelines: pipelines, now: time.Now}
}

// NewCoreInstanceREST serves coreinstances/{name}/metrics.
func NewCoreInstanceREST(store metricstore.Store, coreInstances, pipelines rest.Getter) *CoreInstanceREST {
	return &CoreInstanceREST{store: store, coreInstances: coreInstances, pipelines: pipelines, now: time.Now}
}

// New is what the subresource answers to GET.
func (*PipelineREST) New() runtime.Object { return &core.Metrics{} }

// Destroy has nothing to release.
func (*PipelineREST) Destroy() {}

// NewGetOptions takes the query parameters start and interval.
func (*PipelineREST) NewGetOptions() (runtime.Object, bool, string) {
	return &core.MetricsOptions{}, false, ""
}

// ProducesMIMETypes is only JSON-compatible types.
func (*PipelineREST) ProducesMIMETypes(string) []string { return nil }

// ProducesObject is the answer's type, for OpenAPI.
func (*PipelineREST) ProducesObject(string) any { return &v1.Metrics{} }

// Get answers a pipeline's metrics.
func (r *PipelineREST) Get(ctx context.Context, name string, opts runtime.Object) (runtime.Object, error) {
	ns := genericapirequest.NamespaceValue(ctx)
	// 404 for a pipeline that does not exist, as for its other subresources.
	if _, err := r.pipelines.Get(ctx, name, &metav1.GetOptions{}); err != nil {
		return nil, err
	}
	q, err := query(opts, r.now(), name)
	if err != nil {
		return nil, err
	}
	q.Namespace, q.Pipeline = ns, name
	return answer(ctx, r.store, q)
}

// New is what the subresource takes by POST.
func (*CoreInstanceREST) New() runtime.Object { return &core.MetricsBatch{} }

// Destroy has nothing to release.
func (*CoreInstanceREST) Destroy() {}

// NewGetOptions takes the query parameters start and interval.
func (*CoreInstanceREST) NewGetOptions() (runtime.Object, bool, string) {
	return &core.MetricsOptions{}, false, ""
}

// ProducesMIMETypes is only JSON-compatible types.
func (*CoreInstanceREST) ProducesMIMETypes(string) []string { return nil }

// ProducesObject is the answer's type, for OpenAPI: Metrics to GET, the batch to POST.
func (*CoreInstanceREST) ProducesObject(verb string) any {
	if verb == "GET" {
		return &v1.Metrics{}
	}
	return &v1.MetricsBatch{}
}

// Get answers the metrics of all the core instance's pipelines.
func (r *CoreInstanceREST) Get(ctx context.Context, name string, opts runtime.Object) (runtime.Object, error) {
	ns := genericapirequest.NamespaceValue(ctx)
	if _, err := r.coreInstances.Get(ctx, name, &metav1.GetOptions{}); err != nil {
		return nil, err
	}
	q, err := query(opts, r.now(), name)
	if err != nil {
		return nil, err
	}
	q.Namespace, q.CoreInstance = ns, name
	return answer(ctx, r.store, q)
}

// Create stores an agent's batch: all or nothing, 422 for a malformed one. Scrapes of pipelines
// that are not on this core instance are left out: an agent reports only its own pipelines.
func (r *CoreInstanceREST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	batch, ok := obj.(*core.MetricsBatch)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a MetricsBatch: %T", obj))
	}
	ns := genericapirequest.NamespaceValue(ctx)
	if errs := validation.ValidateMetricsBatch(batch); len(errs) > 0 {
		return nil, apierrors.NewInvalid(core.Kind("MetricsBatch"), name, errs)
	}
	if _, err := r.coreInstances.Get(ctx, name, &metav1.GetOptions{}); err != nil {
		return nil, err
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj); err != nil {
			return nil, err
		}
	}
	kept := make([]core.MetricsScrape, 0, len(batch.Scrapes))
	owned := map[string]bool{}
	rejected := 0
	for _, sc := range batch.Scrapes {
		mine, seen := owned[sc.Pipeline]
		if !seen {
			mine = r.onInstance(ctx, sc.Pipeline, name)
			owned[sc.Pipeline] = mine
		}
		if !mine {
			rejected++
			continue
		}
		kept = append(kept, sc)
	}
	out := &core.MetricsBatch{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if dryRun(options) {
		out.Status.Accepted, out.Status.Rejected = int32(len(kept)), int32(rejected)
		return out, nil
	}
	accepted, duplicates, err := r.store.Write(ctx, ns, name, kept)
	if err != nil {
		if errors.Is(err, metricstore.ErrTooOld) {
			return nil, apierrors.NewInvalid(core.Kind("MetricsBatch"), name, field.ErrorList{
				field.Invalid(field.NewPath("scrapes"), field.OmitValueType{}, err.Error())})
		}
		return nil, apierrors.NewInternalError(fmt.Errorf("storing metrics: %w", err))
	}
	out.Status = core.MetricsBatchStatus{Accepted: int32(accepted), Duplicates: int32(duplicates), Rejected: int32(rejected)}
	return out, nil
}

// onInstance tells whether the pipeline exists and runs on core instance ci.
func (r *CoreInstanceREST) onInstance(ctx context.Context, pipeline, ci string) bool {
	obj, err := r.pipelines.Get(ctx, pipeline, &metav1.GetOptions{})
	if err != nil {
		return false
	}
	p, ok := obj.(*core.Pipeline)
	return ok && p.Spec.CoreInstance == ci
}

func dryRun(o *metav1.CreateOptions) bool {
	return o != nil && len(o.DryRun) > 0
}

// query reads the options: start a negative duration before now, interval positive.
func query(opts runtime.Object, now time.Time, name string) (metricstore.Query, error) {
	o, ok := opts.(*core.MetricsOptions)
	if !ok {
		return metricstore.Query{}, apierrors.NewBadRequest(fmt.Sprintf("unexpected options %T", opts))
	}
	start, interval := DefaultStart, DefaultInterval
	var errs field.ErrorList
	if o.Start != "" {
		d, err := time.ParseDuration(o.Start)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(field.NewPath("start"), o.Start, "a negative duration such as -24h or -30m"))
		case d >= 0:
			errs = append(errs, field.Invalid(field.NewPath("start"), o.Start, "must be negative: how long before now, e.g. -24h"))
		default:
			start = d
		}
	}
	if o.Interval != "" {
		d, err := time.ParseDuration(o.Interval)
		if err != nil || d <= 0 {
			errs = append(errs, field.Invalid(field.NewPath("interval"), o.Interval, "a positive duration such as 1h or 1m"))
		} else {
			interval = d
		}
	}
	q := metricstore.Query{Start: now.Add(start).UTC(), End: now.UTC(), Interval: interval}
	if len(errs) == 0 {
		if err := q.Validate(); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("interval"), o.Interval, err.Error()))
		}
	}
	if len(errs) > 0 {
		return q, apierrors.NewBadRequest(fmt.Sprintf("metrics of %s: %s", name, errs.ToAggregate().Error()))
	}
	return q, nil
}

func answer(ctx context.Context, store metricstore.Store, q metricstore.Query) (runtime.Object, error) {
	rows, err := store.Query(ctx, q)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("querying metrics: %w", err))
	}
	m := metricstore.Assemble(q, rows)
	m.Name, m.Namespace = q.Pipeline, q.Namespace
	if q.Pipeline == "" {
		m.Name = q.CoreInstance
	}
	return m, nil
}
