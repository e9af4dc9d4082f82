// Package pipeline holds the server-side behaviour of pipelines: how they are created, updated,
// validated, selected, printed and scaled.
package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/apis/core/validation"
	"github.com/calyptia/core-management-plane/pkg/registry/core/namespaced"
	"github.com/calyptia/core-management-plane/pkg/registry/core/table"
)

// Strategy is how pipelines are created and updated through the main resource: users own spec,
// the data plane owns status (through the status subresource).
type Strategy struct {
	namespaced.Defaults
	// refs sets the reference conditions on writes; nil leaves them to the controller.
	refs *Referenced
}

// NewStrategy returns the main resource's strategy; refs may be nil.
func NewStrategy(typer runtime.ObjectTyper, refs *Referenced) Strategy {
	return Strategy{Defaults: namespaced.NewDefaults(typer), refs: refs}
}

// GetResetFields tells server-side apply that the main resource never changes status.
func (Strategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(v1.SchemeGroupVersion.String()): fieldpath.NewSet(fieldpath.MakePathOrDie("status")),
	}
}

// PrepareForCreate drops any status the client sent: a new pipeline is New until the data plane
// says otherwise, with its reference conditions as things stand.
func (s Strategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	p := obj.(*core.Pipeline)
	p.Status = core.PipelineStatus{Phase: core.PipelinePhaseNew}
	p.Generation = 1
	s.refs.setConditions(ctx, p)
}

// PrepareForUpdate keeps the stored status and bumps the generation when the spec changed, so the
// data plane can tell (status.observedGeneration) whether it has caught up; a new spec gets its
// reference conditions checked again.
func (s Strategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	p, oldP := obj.(*core.Pipeline), old.(*core.Pipeline)
	p.Status = oldP.Status
	if !apiequality.Semantic.DeepEqual(p.Spec, oldP.Spec) {
		p.Generation = oldP.Generation + 1
		// The old object's conditions stay as they were.
		p.Status.Conditions = slices.Clone(oldP.Status.Conditions)
		s.refs.setConditions(ctx, p)
	}
}

// Validate checks a new pipeline, config included.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validation.ValidatePipeline(obj.(*core.Pipeline))
}

// WarningsOnCreate warns about settings that are valid but probably unintended.
func (Strategy) WarningsOnCreate(_ context.Context, obj runtime.Object) []string {
	return warnings(obj.(*core.Pipeline))
}

// ValidateUpdate checks the new spec and what may not change (kind, StatefulSet storage class).
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidatePipelineUpdate(obj.(*core.Pipeline), old.(*core.Pipeline))
}

// WarningsOnUpdate warns about settings that are valid but probably unintended.
func (Strategy) WarningsOnUpdate(_ context.Context, obj, _ runtime.Object) []string {
	return warnings(obj.(*core.Pipeline))
}

func warnings(p *core.Pipeline) []string {
	var w []string
	if p.Spec.Autoscaling != nil && p.Spec.Replicas != nil && *p.Spec.Replicas == 0 {
		w = append(w, "spec.replicas is 0: the pipeline is stopped and autoscaling does not start it")
	}
	return w
}

// StatusStrategy is how the data plane reports status: only status changes, whatever else the
// request carries.
type StatusStrategy struct {
	Strategy
}

// NewStatusStrategy returns the status subresource's strategy.
func NewStatusStrategy(s Strategy) StatusStrategy { return StatusStrategy{s} }

// GetResetFields tells server-side apply that the status subresource never changes spec or labels.
func (StatusStrategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(v1.SchemeGroupVersion.String()): fieldpath.NewSet(
			fieldpath.MakePathOrDie("spec"),
			fieldpath.MakePathOrDie("metadata", "labels"),
		),
	}
}

// PrepareForUpdate keeps the stored spec and labels.
func (StatusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	p, oldP := obj.(*core.Pipeline), old.(*core.Pipeline)
	p.Spec = oldP.Spec
	p.Labels = oldP.Labels
}

// ValidateUpdate checks the new status.
func (StatusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidatePipelineStatusUpdate(obj.(*core.Pipeline), old.(*core.Pipeline))
}

// WarningsOnUpdate has nothing to say about status.
func (StatusStrategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

// GetAttrs returns the labels and the selectable fields of a pipeline.
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	p, ok := obj.(*core.Pipeline)
	if !ok {
		return nil, nil, fmt.Errorf("not a pipeline: %T", obj)
	}
	return p.Labels, SelectableFields(p), nil
}

// SelectableFields are the fields field selectors can use: metadata.name, metadata.namespace,
// spec.coreInstance (the data plane watches its own pipelines) and status.phase.
func SelectableFields(p *core.Pipeline) fields.Set {
	return generic.AddObjectMetaFieldsSet(fields.Set{
		v1.PipelineCoreInstanceField: p.Spec.CoreInstance,
		v1.PipelinePhaseField:        string(p.Status.Phase),
	}, &p.ObjectMeta, true)
}

// MatchPipeline selects pipelines by labels and fields.
func MatchPipeline(label labels.Selector, field fields.Selector) storage.SelectionPredicate {
	return storage.SelectionPredicate{Label: label, Field: field, GetAttrs: GetAttrs}
}

// coreInstanceTrigger lets the watch cache send each event only to the watchers of the
// pipeline's core instance, instead of testing every watcher's selector.
func coreInstanceTrigger(obj runtime.Object) string {
	return obj.(*core.Pipeline).Spec.CoreInstance
}

// tableConvertor prints NAME, CORE-INSTANCE, KIND, REPLICAS (ready/wanted), STATUS, AGE; -o wide
// adds CONFIG-FORMAT, RESOURCE-PROFILE and STRATEGY.
var tableConvertor = &table.Convertor[*core.Pipeline]{
	Columns: []metav1.TableColumnDefinition{
		{Name: "Core-Instance", Type: "string", Description: "The core instance that runs the pipeline."},
		{Name: "Kind", Type: "string", Description: "The workload kind: Deployment, DaemonSet or StatefulSet."},
		{Name: "Replicas", Type: "string", Description: "Ready pods / wanted pods; for DaemonSets, ready pods / pods the data plane reports."},
		{Name: "Status", Type: "string", Description: "The phase the data plane reports."},
		{Name: "Config-Format", Type: "string", Priority: 1, Description: "classic or yaml."},
		{Name: "Resource-Profile", Type: "string", Priority: 1, Description: "The resource profile."},
		{Name: "Strategy", Type: "string", Priority: 1, Description: "How pods pick up a new config."},
	},
	Cells: func(p *core.Pipeline) []any {
		wanted := p.Status.Replicas
		if p.Spec.Replicas != nil {
			wanted = *p.Spec.Replicas
		}
		replicas := strconv.Itoa(int(p.Status.ReadyReplicas)) + "/" + strconv.Itoa(int(wanted))
		phase := string(p.Status.Phase)
		if phase == "" {
			phase = string(core.PipelinePhaseNew)
		}
		return []any{p.Spec.CoreInstance, string(p.Spec.Kind), replicas, phase,
			string(p.Spec.ConfigFormat), p.Spec.ResourceProfile, string(p.Spec.DeploymentStrategy)}
	},
}
