package resourceprofile

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/apis/core/validation"
)

func TestBuiltins(t *testing.T) {
	names := map[string]bool{}
	for _, p := range Builtins("team-a") {
		names[p.Name] = true
		if errs := validation.ValidateResourceProfile(&p); len(errs) != 0 {
			t.Errorf("built-in %s is invalid: %v", p.Name, errs)
		}
		if p.Namespace != "team-a" || p.Labels[BuiltinLabel] != "true" {
			t.Errorf("built-in %s: namespace %q labels %v", p.Name, p.Namespace, p.Labels)
		}
		other, _ := Builtin("team-b", p.Name)
		again, _ := Builtin("team-a", p.Name)
		if p.UID == other.UID || p.UID != again.UID || len(p.UID) != 36 {
			t.Errorf("built-in %s: UID %q must be stable per namespace and differ across namespaces (%q)", p.Name, p.UID, other.UID)
		}
	}
	for _, want := range []string{core.ResourceProfileBestEffortLowResource, core.ResourceProfileHighPerformanceOptimalThroughput, core.ResourceProfileHighPerformanceGuaranteedDelivery} {
		if !names[want] || !IsBuiltin(want) {
			t.Errorf("%s is not built in", want)
		}
	}
	if IsBuiltin("custom") {
		t.Error("custom is built in")
	}
	// Callers get copies: changing one must not change what the next caller sees.
	p, _ := Builtin("x", core.ResourceProfileBestEffortLowResource)
	p.Spec.Resources.Limits["memory"] = p.Spec.Resources.Requests["cpu"]
	again, _ := Builtin("x", core.ResourceProfileBestEffortLowResource)
	if again.Spec.Resources.Limits.Memory().String() != "256Mi" {
		t.Errorf("built-in spec was modified through a returned copy: %v", again.Spec.Resources.Limits)
	}
}

// TestBuiltinReadOnly checks the REST paths that answer for built-in names before storage is
// consulted; the stored paths are covered by the storage integration tests.
func TestBuiltinReadOnly(t *testing.T) {
	r := &REST{}
	ctx := genericapirequest.WithNamespace(context.Background(), "team-a")
	obj, err := r.Get(ctx, core.ResourceProfileHighPerformanceGuaranteedDelivery, &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := obj.(*core.ResourceProfile); p.Namespace != "team-a" || !p.Spec.StorageSyncFull {
		t.Errorf("got %+v", p)
	}
	if _, _, err := r.Delete(ctx, core.ResourceProfileBestEffortLowResource, nil, nil); err == nil || !isForbidden(err) {
		t.Errorf("delete of a built-in: err = %v, want 403", err)
	}
	if _, _, err := r.Update(ctx, core.ResourceProfileBestEffortLowResource, nil, nil, nil, false, nil); err == nil || !isForbidden(err) {
		t.Errorf("update of a built-in: err = %v, want 403", err)
	}
	create := &core.ResourceProfile{ObjectMeta: metav1.ObjectMeta{Name: core.ResourceProfileBestEffortLowResource, Namespace: "team-a"}}
	if _, err := r.Create(ctx, create, nil, nil); err == nil || !isAlreadyExists(err) {
		t.Errorf("create of a built-in name: err = %v, want 409", err)
	}
}

func isForbidden(err error) bool     { return apierrors.IsForbidden(err) }
func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }
