// Package pipelinesecret holds the server-side behaviour of pipeline secrets. Values are only
// ever returned in full objects to callers allowed to read them; tables show key counts.
package pipelinesecret

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/apis/core/validation"
	"github.com/calyptia/core-management-plane/pkg/registry/core/namespaced"
	"github.com/calyptia/core-management-plane/pkg/registry/core/table"
)

// Strategy is how pipeline secrets are created and updated.
type Strategy struct {
	namespaced.Defaults
}

// NewStrategy returns the strategy.
func NewStrategy(typer runtime.ObjectTyper) Strategy {
	return Strategy{namespaced.NewDefaults(typer)}
}

// PrepareForCreate does nothing: a secret is all data.
func (Strategy) PrepareForCreate(context.Context, runtime.Object) {}

// PrepareForUpdate does nothing: a secret is all data.
func (Strategy) PrepareForUpdate(context.Context, runtime.Object, runtime.Object) {}

// Validate checks a new secret without ever echoing a value.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validation.ValidatePipelineSecret(obj.(*core.PipelineSecret))
}

// ValidateUpdate checks an update without ever echoing a value.
func (Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidatePipelineSecretUpdate(obj.(*core.PipelineSecret), old.(*core.PipelineSecret))
}

// tableConvertor prints NAME, KEYS, AGE: how many values, never what they are.
var tableConvertor = &table.Convertor[*core.PipelineSecret]{
	Columns: []metav1.TableColumnDefinition{
		{Name: "Keys", Type: "integer", Description: "The number of keys; values are never printed."},
	},
	Cells: func(s *core.PipelineSecret) []any {
		return []any{int64(len(s.Data))}
	},
}
