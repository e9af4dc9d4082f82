package core_test

import (
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

// reader is a pipeline whose config reads {{ secrets.KEY }} from the secrets it lists.
func reader(ns, name, key string, secrets ...string) *core.Pipeline {
	p := newPipeline(ns, name, "edge")
	p.Spec.Secrets = secrets
	p.Spec.Config = fmt.Sprintf(`[INPUT]
    name dummy

[OUTPUT]
    name        http
    match       *
    host        collector.example.com
    http_passwd {{ secrets.%s }}
`, key)
	return p
}

// runningWith is a pipeline that runs with the resource profile named profile.
func runningWith(ns, name, profile string) *core.Pipeline {
	p := newPipeline(ns, name, "edge")
	p.Spec.ResourceProfile = profile
	return p
}

// TestDeleteInUse checks that a pipeline secret whose keys a pipeline reads,
// and a resource profile a pipeline runs with, cannot be deleted — singly,
// dry run or by collection — while pipelines that are going away do not count.
func TestDeleteInUse(t *testing.T) {
	storage := newStorage(t)
	pipelines := storage["pipelines"].(rest.StandardStorage)

	type deletion int
	const (
		single deletion = iota
		dryRun
		collection
	)
	tests := []struct {
		name     string
		resource string // pipelinesecrets or resourceprofiles; the object is named "es" or "custom"
		// pipelines are created in the test's namespace first (or in their own, when set).
		pipelines   []*core.Pipeline
		terminating []string // pipelines given a finalizer and deleted, so they stay with a deletionTimestamp
		how         deletion
		wantErr     string // the 409 message; empty when the delete is allowed
	}{
		{
			name: "secret read by pipelines", resource: "pipelinesecrets",
			pipelines: []*core.Pipeline{reader("", "other", "password", "es"), reader("", "forward-to-elasticsearch", "user", "tokens", "es")},
			wantErr:   `pipelinesecrets "es" cannot be deleted: referenced by pipelines forward-to-elasticsearch, other`,
		},
		{
			name: "secret no pipeline lists", resource: "pipelinesecrets",
			pipelines: []*core.Pipeline{newPipeline("", "plain", "edge"), reader("", "reads-tokens", "password", "tokens")},
		},
		{
			name: "secret listed but no key of it read", resource: "pipelinesecrets",
			pipelines: []*core.Pipeline{reader("", "reads-token", "token", "es")},
		},
		{
			name: "secret read only by a terminating pipeline", resource: "pipelinesecrets",
			pipelines:   []*core.Pipeline{reader("", "going", "password", "es")},
			terminating: []string{"going"},
		},
		{
			name: "secret read only in another namespace", resource: "pipelinesecrets",
			pipelines: []*core.Pipeline{reader("elsewhere", "other", "password", "es")},
		},
		{
			name: "secret in use, dry run", resource: "pipelinesecrets", how: dryRun,
			pipelines: []*core.Pipeline{reader("", "logs", "password", "es")},
			wantErr:   `pipelinesecrets "es" cannot be deleted: referenced by pipeline logs`,
		},
		{
			name: "secret unused, dry run", resource: "pipelinesecrets", how: dryRun,
		},
		{
			name: "secret in use, delete collection", resource: "pipelinesecrets", how: collection,
			pipelines: []*core.Pipeline{reader("", "logs", "password", "es")},
			wantErr:   `pipelinesecrets "es" cannot be deleted: referenced by pipeline logs`,
		},
		{
			name: "secret used by a terminating pipeline, delete collection", resource: "pipelinesecrets", how: collection,
			pipelines:   []*core.Pipeline{reader("", "going", "password", "es")},
			terminating: []string{"going"},
		},
		{
			name: "profile in use", resource: "resourceprofiles",
			pipelines: []*core.Pipeline{runningWith("", "b", "custom"), runningWith("", "a", "custom"), newPipeline("", "default-profile", "edge")},
			wantErr:   `resourceprofiles "custom" cannot be deleted: referenced by pipelines a, b`,
		},
		{
			name: "profile unused", resource: "resourceprofiles",
			pipelines: []*core.Pipeline{newPipeline("", "default-profile", "edge"), runningWith("", "other", core.ResourceProfileHighPerformanceOptimalThroughput)},
		},
		{
			name: "profile used only by a terminating pipeline", resource: "resourceprofiles",
			pipelines:   []*core.Pipeline{runningWith("", "going", "custom"), runningWith("", "also-going", "custom")},
			terminating: []string{"going", "also-going"},
		},
		{
			name: "profile in use, dry run", resource: "resourceprofiles", how: dryRun,
			pipelines: []*core.Pipeline{runningWith("", "a", "custom")},
			wantErr:   `resourceprofiles "custom" cannot be deleted: referenced by pipeline a`,
		},
		{
			name: "profile in use, delete collection", resource: "resourceprofiles", how: collection,
			pipelines: []*core.Pipeline{runningWith("", "a", "custom")},
			wantErr:   `resourceprofiles "custom" cannot be deleted: referenced by pipeline a`,
		},
		{
			name: "profile unused, delete collection", resource: "resourceprofiles", how: collection,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := fmt.Sprintf("in-use-%d", i)
			ctx := nsContext(ns)
			for _, p := range tt.pipelines {
				p = p.DeepCopy()
				if p.Namespace == "" {
					p.Namespace = ns
				}
				for _, name := range tt.terminating {
					if p.Name == name {
						p.Finalizers = []string{"test.calyptia.com/keep"}
					}
				}
				if _, err := pipelines.Create(nsContext(p.Namespace), p, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil {
					t.Fatalf("creating pipeline %s: %v", p.Name, err)
				}
			}
			for _, name := range tt.terminating {
				obj, _, err := pipelines.Delete(ctx, name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
				if err != nil {
					t.Fatalf("deleting pipeline %s: %v", name, err)
				}
				if obj.(*core.Pipeline).DeletionTimestamp == nil {
					t.Fatalf("pipeline %s is gone, want it terminating", name)
				}
			}

			var obj runtime.Object
			var name string
			switch tt.resource {
			case "pipelinesecrets":
				name = "es"
				obj = &core.PipelineSecret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
					Data: map[string][]byte{"user": []byte("elastic"), "password": []byte("s3cret")}}
			case "resourceprofiles":
				name = "custom"
				obj = &core.ResourceProfile{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: core.ResourceProfileSpec{StorageMaxChunksUp: 64}}
			}
			objects := storage[tt.resource].(rest.StandardStorage)
			if _, err := objects.Create(ctx, obj, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}

			var err error
			switch tt.how {
			case single:
				_, _, err = objects.Delete(ctx, name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
			case dryRun:
				_, _, err = objects.Delete(ctx, name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
			case collection:
				_, err = objects.DeleteCollection(ctx, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}, &metainternalversion.ListOptions{})
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("delete refused: %v", err)
			case tt.wantErr != "" && !apierrors.IsConflict(err):
				t.Fatalf("delete: err = %v, want 409 Conflict", err)
			case tt.wantErr != "" && err.Error() != tt.wantErr:
				t.Fatalf("delete: message = %q\nwant              %q", err.Error(), tt.wantErr)
			}

			_, err = objects.Get(ctx, name, &metav1.GetOptions{})
			switch kept := tt.wantErr != "" || tt.how == dryRun; {
			case kept && err != nil:
				t.Errorf("after the delete: get = %v, want the object kept", err)
			case !kept && !apierrors.IsNotFound(err):
				t.Errorf("after the delete: get = %v, want 404", err)
			}
		})
	}
}
