// Package resourceprofile holds the server-side behaviour of resource profiles, including the
// three built-in profiles every namespace has.
package resourceprofile

import (
	"context"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/apis/core/validation"
	"github.com/calyptia/core-management-plane/pkg/registry/core/namespaced"
	"github.com/calyptia/core-management-plane/pkg/registry/core/table"
)

// Strategy is how resource profiles are created and updated.
type Strategy struct {
	namespaced.Defaults
}

// NewStrategy returns the strategy.
func NewStrategy(typer runtime.ObjectTyper) Strategy {
	return Strategy{namespaced.NewDefaults(typer)}
}

// PrepareForCreate starts the generation at 1.
func (Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*core.ResourceProfile).Generation = 1
}

// PrepareForUpdate bumps the generation when the spec changed.
func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	p, oldP := obj.(*core.ResourceProfile), old.(*core.ResourceProfile)
	if !apiequality.Semantic.DeepEqual(p.Spec, oldP.Spec) {
		p.Generation = oldP.Generation + 1
	}
}

// Validate checks a new profile.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validation.ValidateResourceProfile(obj.(*core.ResourceProfile))
}

// ValidateUpdate checks an update.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidateResourceProfileUpdate(obj.(*core.ResourceProfile), old.(*core.ResourceProfile))
}

// tableConvertor prints NAME, BUILTIN, BUFFERING, BACKLOG-MEM-LIMIT, AGE.
var tableConvertor = &table.Convertor[*core.ResourceProfile]{
	Columns: []metav1.TableColumnDefinition{
		{Name: "Builtin", Type: "boolean", Description: "Whether this is one of the profiles every namespace has."},
		{Name: "Buffering", Type: "string", Description: "memory, or the size of the filesystem buffer volume."},
		{Name: "Backlog-Mem-Limit", Type: "string", Description: "Fluent Bit's storage.backlog.mem_limit."},
		{Name: "Sync", Type: "string", Priority: 1, Description: "Fluent Bit's storage.sync: full or normal."},
		{Name: "Workers", Type: "integer", Priority: 1, Description: "Fluent Bit workers per output."},
	},
	Cells: func(p *core.ResourceProfile) []any {
		buffering := "memory"
		if p.Spec.StorageVolumeSize != nil {
			buffering = "filesystem " + p.Spec.StorageVolumeSize.String()
		}
		sync := "normal"
		if p.Spec.StorageSyncFull {
			sync = "full"
		}
		return []any{IsBuiltin(p.Name) && p.Labels[BuiltinLabel] == "true", buffering, p.Spec.StorageBacklogMemLimit, sync, int64(p.Spec.CPUBufferWorkers)}
	},
}
