// Package namespaced holds what every core.calyptia.com strategy shares, so
// that each resource's strategy says only what is its own.
package namespaced

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/storage/names"
)

// Defaults is embedded by each resource's strategy: namespaced objects,
// generated names, no create on update, updates accepted without a
// resourceVersion (as for built-in resources), no canonical form and no
// warnings unless the resource overrides them.
type Defaults struct {
	runtime.ObjectTyper
	names.NameGenerator
}

// NewDefaults returns Defaults for the scheme's types.
func NewDefaults(typer runtime.ObjectTyper) Defaults {
	return Defaults{typer, names.SimpleNameGenerator}
}

// NamespaceScoped is true: every core.calyptia.com object lives in a namespace.
func (Defaults) NamespaceScoped() bool { return true }

// Canonicalize does nothing: the stored form is the form sent.
func (Defaults) Canonicalize(runtime.Object) {}

// AllowCreateOnUpdate is false: PUT to a missing object is 404, not a create.
func (Defaults) AllowCreateOnUpdate(context.Context) bool { return false }

// AllowUnconditionalUpdate is true: updates without a resourceVersion are accepted.
func (Defaults) AllowUnconditionalUpdate(context.Context) bool { return true }

// WarningsOnCreate has nothing to warn about.
func (Defaults) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }

// WarningsOnUpdate has nothing to warn about.
func (Defaults) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}
