//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	applyv1 "github.com/calyptia/core-management-plane/pkg/generated/applyconfiguration/core/v1"
	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	"github.com/calyptia/core-management-plane/pkg/generated/informers/externalversions"
)

const dummyConfig = "[INPUT]\n    name dummy\n[OUTPUT]\n    name stdout\n    match *\n"

// TestClientsetThroughKubeAPIServer uses the generated typed clientset,
// informers and apply configurations against kube-apiserver.
func TestClientsetThroughKubeAPIServer(t *testing.T) {
	primaryCloudAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "e2e-clientset"
	mustRun(t, admin, "create", "namespace", ns)
	cs, err := versioned.NewForConfig(cluster.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	pipelines := cs.CoreV1().Pipelines(ns)

	// Objects that exist before the informer starts arrive in its initial list.
	for i := range 3 {
		if _, err := pipelines.Create(ctx, newPipeline(fmt.Sprintf("before-%d", i), 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	factory := externalversions.NewSharedInformerFactoryWithOptions(cs, 0, externalversions.WithNamespace(ns))
	informer := factory.Core().V1().Pipelines()
	events := make(chan string, 100)
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { events <- "add " + obj.(*corev1.Pipeline).Name },
		UpdateFunc: func(_, obj any) {
			p := obj.(*corev1.Pipeline)
			events <- fmt.Sprintf("update %s replicas=%d", p.Name, *p.Spec.Replicas)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			events <- "delete " + obj.(*corev1.Pipeline).Name
		},
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	// Deferred calls run last-first: stop the informers, then wait for them.
	defer factory.Shutdown()
	defer close(stop)
	for typ, ok := range factory.WaitForCacheSync(stop) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}
	listed, err := informer.Lister().Pipelines(ns).List(everything())
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 3 {
		t.Fatalf("informer cache holds %d pipelines after sync, want 3", len(listed))
	}
	// The initial list comes in no particular order.
	expectEventSet(t, events, "add before-0", "add before-1", "add before-2")

	// A plain watch from the list's resource version sees each change once, in order.
	list, err := pipelines.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pipelines.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	created, err := pipelines.Create(ctx, newPipeline("live", 1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setReplicas(ctx, t, cs, ns, "live", 4)
	// An update from the copy the create returned is stale by now and conflicts.
	created.Spec.Replicas = ptr(int32(5))
	if _, err := pipelines.Update(ctx, created, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("update from a stale resourceVersion: err = %v, want 409 Conflict", err)
	}
	if err := pipelines.Delete(ctx, "live", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectWatch(t, w, "live", watchStep{watch.Added, 1}, watchStep{watch.Modified, 4}, watchStep{watch.Deleted, 4})
	expectEvents(t, events, "add live", "update live replicas=4", "delete live")

	t.Run("server-side apply", func(t *testing.T) {
		apply := applyv1.Pipeline("applied", ns).WithSpec(applyv1.PipelineSpec().
			WithCoreInstance("production").WithConfig(dummyConfig).WithReplicas(2))
		p, err := pipelines.Apply(ctx, apply, metav1.ApplyOptions{FieldManager: "e2e-owner"})
		if err != nil {
			t.Fatal(err)
		}
		if *p.Spec.Replicas != 2 || p.Spec.Kind != corev1.PipelineKindDeployment {
			t.Fatalf("applied pipeline spec = %+v, want 2 replicas and the default kind", p.Spec)
		}
		// Another manager changing a field the first owns conflicts, unless forced.
		other := applyv1.Pipeline("applied", ns).WithSpec(applyv1.PipelineSpec().
			WithCoreInstance("production").WithConfig(dummyConfig).WithReplicas(7))
		_, err = pipelines.Apply(ctx, other, metav1.ApplyOptions{FieldManager: "e2e-other"})
		if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "e2e-owner") {
			t.Fatalf("conflicting apply: err = %v, want a conflict naming e2e-owner", err)
		}
		p, err = pipelines.Apply(ctx, other, metav1.ApplyOptions{FieldManager: "e2e-other", Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if *p.Spec.Replicas != 7 {
			t.Fatalf("replicas after forced apply = %d, want 7", *p.Spec.Replicas)
		}
		managers := map[string]bool{}
		for _, m := range p.ManagedFields {
			managers[m.Manager] = true
		}
		if !managers["e2e-other"] {
			t.Fatalf("managed fields %v lack e2e-other", managers)
		}
	})
}

func newPipeline(name string, replicas int32) *corev1.Pipeline {
	return &corev1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PipelineSpec{CoreInstance: "production", Config: dummyConfig, Replicas: ptr(replicas)},
	}
}

func ptr[T any](v T) *T { return &v }

// setReplicas updates a pipeline's replicas, retrying on conflicts: cloud-api's
// references controller writes the status of new pipelines concurrently.
func setReplicas(ctx context.Context, t *testing.T, cs versioned.Interface, ns, name string, n int32) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := cs.CoreV1().Pipelines(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Spec.Replicas = ptr(n)
		_, err = cs.CoreV1().Pipelines(ns).Update(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("setting replicas of %s/%s to %d: %v", ns, name, n, err)
	}
}

// expectEvents waits for the informer events want, in order, ignoring others
// (the references controller also updates status).
func expectEvents(t *testing.T, events <-chan string, want ...string) {
	t.Helper()
	timeout := time.After(time.Minute)
	var seen []string
	for len(want) > 0 {
		select {
		case e := <-events:
			seen = append(seen, e)
			if e == want[0] {
				want = want[1:]
			}
		case <-timeout:
			t.Fatalf("informer events %v never came; saw %v", want, seen)
		}
	}
}

// watchStep is one event a watch must deliver: its type and the replicas of the
// pipeline it carries.
type watchStep struct {
	typ      watch.EventType
	replicas int32
}

// expectEventSet waits for the informer events want, in any order, ignoring others.
func expectEventSet(t *testing.T, events <-chan string, want ...string) {
	t.Helper()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	timeout := time.After(time.Minute)
	var seen []string
	for len(missing) > 0 {
		select {
		case e := <-events:
			seen = append(seen, e)
			delete(missing, e)
		case <-timeout:
			t.Fatalf("informer events %v never came; saw %v", missing, seen)
		}
	}
}

// expectWatch waits for steps on the pipeline name, in order, skipping other
// events between them (the references controller writes status too).
func expectWatch(t *testing.T, w watch.Interface, name string, steps ...watchStep) {
	t.Helper()
	timeout := time.After(time.Minute)
	var seen []string
	for len(steps) > 0 {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed; saw %v, still want %v", seen, steps)
			}
			p, isPipeline := e.Object.(*corev1.Pipeline)
			if !isPipeline {
				t.Fatalf("watch event %s carries %T: %v", e.Type, e.Object, e.Object)
			}
			seen = append(seen, fmt.Sprintf("%s %s replicas=%d", e.Type, p.Name, *p.Spec.Replicas))
			if p.Name == name && e.Type == steps[0].typ && *p.Spec.Replicas == steps[0].replicas {
				steps = steps[1:]
			}
		case <-timeout:
			t.Fatalf("watch events %v on %s never came; saw %v", steps, name, seen)
		}
	}
}
