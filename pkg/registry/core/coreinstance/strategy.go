// Package coreinstance holds the server-side behaviour of core instances: users own spec, the
// data plane agent reports liveness through the status subresource.
package coreinstance

import (
	"context"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/apis/core/validation"
	"github.com/calyptia/core-management-plane/pkg/registry/core/namespaced"
	"github.com/calyptia/core-management-plane/pkg/registry/core/table"
)

// HeartbeatTimeout is how old the last heartbeat may be for a core instance to count as running:
// agents beat every 30 seconds, plus 5 seconds of slack.
const HeartbeatTimeout = 35 * time.Second

// Strategy is how core instances are created and updated through the main resource.
type Strategy struct {
	namespaced.Defaults
}

// NewStrategy returns the main resource's strategy.
func NewStrategy(typer runtime.ObjectTyper) Strategy {
	return Strategy{namespaced.NewDefaults(typer)}
}

// GetResetFields tells server-side apply that the main resource never changes status.
func (Strategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(v1.SchemeGroupVersion.String()): fieldpath.NewSet(fieldpath.MakePathOrDie("status")),
	}
}

// PrepareForCreate starts every core instance Waiting for its agent.
func (Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	ci := obj.(*core.CoreInstance)
	ci.Status = core.CoreInstanceStatus{Phase: core.CoreInstancePhaseWaiting}
	ci.Generation = 1
}

// PrepareForUpdate keeps the stored status and bumps the generation on spec changes.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	ci, oldCI := obj.(*core.CoreInstance), old.(*core.CoreInstance)
	ci.Status = oldCI.Status
	if !apiequality.Semantic.DeepEqual(ci.Spec, oldCI.Spec) {
		ci.Generation = oldCI.Generation + 1
	}
}

// Validate checks a new core instance.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validation.ValidateCoreInstance(obj.(*core.CoreInstance))
}

// ValidateUpdate checks an update.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidateCoreInstanceUpdate(obj.(*core.CoreInstance), old.(*core.CoreInstance))
}

// StatusStrategy is how the agent reports: only status changes.
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
	ci, oldCI := obj.(*core.CoreInstance), old.(*core.CoreInstance)
	ci.Spec = oldCI.Spec
	ci.Labels = oldCI.Labels
}

// ValidateUpdate checks the new status.
func (StatusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidateCoreInstanceStatusUpdate(obj.(*core.CoreInstance), old.(*core.CoreInstance))
}

// WarningsOnUpdate has nothing to warn about.
func (StatusStrategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

// Phase is the phase to show: the stored one, except that a Running instance whose heartbeat is
// older than HeartbeatTimeout shows as Unreachable even before the liveness worker records it.
func Phase(ci *core.CoreInstance, now time.Time) core.CoreInstancePhase {
	phase := ci.Status.Phase
	if phase == "" {
		phase = core.CoreInstancePhaseWaiting
	}
	if phase == core.CoreInstancePhaseRunning && ci.Status.LastHeartbeatTime != nil &&
		now.Sub(ci.Status.LastHeartbeatTime.Time) > HeartbeatTimeout {
		phase = core.CoreInstancePhaseUnreachable
	}
	return phase
}

// newTableConvertor prints NAME, ENVIRONMENT, PIPELINES, STATUS, AGE (and more with -o wide).
func newTableConvertor(now func() time.Time) *table.Convertor[*core.CoreInstance] {
	return &table.Convertor[*core.CoreInstance]{
		Now: now,
		Columns: []metav1.TableColumnDefinition{
			{Name: "Environment", Type: "string", Description: "The environment the core instance belongs to."},
			{Name: "Pipelines", Type: "integer", Description: "The number of pipelines on the core instance."},
			{Name: "Status", Type: "string", Description: "Waiting, Running or Unreachable, from the agent's heartbeats."},
			{Name: "Version", Type: "string", Priority: 1, Description: "The agent's version."},
			{Name: "Mode", Type: "string", Priority: 1, Description: "Kubernetes or External."},
			{Name: "Last-Heartbeat", Type: "string", Priority: 1, Description: "Time since the agent last reported."},
		},
		Cells: func(ci *core.CoreInstance) []any {
			t := now()
			heartbeat := "<never>"
			if hb := ci.Status.LastHeartbeatTime; hb != nil {
				heartbeat = table.Age(*hb, t)
			}
			return []any{ci.Spec.Environment, int64(ci.Status.Pipelines), string(Phase(ci, t)),
				ci.Status.AgentVersion, string(ci.Spec.Mode), heartbeat}
		},
	}
}
