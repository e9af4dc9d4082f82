package core_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/apis/core/install"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/controller/registryinformers"
	informers "github.com/calyptia/core-management-plane/pkg/generated/informers/externalversions"
)

func v1Scheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	return scheme
}

// The controllers' informers read the registry itself: they must see what the API serves, as v1
// objects, and what they hand out must not be the watch cache's own memory.
func TestRegistryInformers(t *testing.T) {
	storage := newStorage(t)
	pipelines := storage["pipelines"].(rest.StandardStorage)
	ctx := nsContext("team-a")
	create := func(name string) {
		t.Helper()
		p := newPipeline("team-a", name, "edge")
		// A map the watch cache's object and an informer's could share.
		p.Labels = map[string]string{"app": name}
		if _, err := pipelines.Create(ctx, p, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create("before")

	factory := informers.NewSharedInformerFactory(nil, 0)
	if err := registryinformers.Register(factory, v1Scheme(), storage); err != nil {
		t.Fatal(err)
	}
	lister := factory.Core().V1().Pipelines().Lister()
	coreInstances := factory.Core().V1().CoreInstances().Lister()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); factory.Shutdown() })
	factory.Start(stop)
	for typ, ok := range factory.WaitForCacheSync(stop) {
		if !ok {
			t.Fatalf("informer of %v never synced", typ)
		}
	}

	eventually := func(what string, cond func() bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, wait.ForeverTestTimeout, true,
			func(context.Context) (bool, error) { return cond(), nil })
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	got, err := lister.Pipelines("team-a").Get("before")
	if err != nil {
		t.Fatalf("a pipeline created before the informer started: %v", err)
	}
	if got.Spec.Config != config || got.Spec.CoreInstance != "edge" || got.ResourceVersion == "" {
		t.Fatalf("informer's pipeline = %+v", got)
	}

	ci := &core.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "team-a"}, Spec: core.CoreInstanceSpec{Mode: core.CoreInstanceModeKubernetes}}
	if _, err := storage["coreinstances"].(rest.Creater).Create(ctx, ci, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("core instance in its informer", func() bool {
		_, err := coreInstances.CoreInstances("team-a").Get("edge")
		return err == nil
	})

	create("after")
	eventually("pipeline created after the start", func() bool {
		_, err := lister.Pipelines("team-a").Get("after")
		return err == nil
	})
	obj, err := pipelines.Get(ctx, "after", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	edit := obj.(*core.Pipeline).DeepCopy()
	edit.Spec.Image = "ghcr.io/calyptia/core/calyptia-fluent-bit:26.8.5"
	if _, _, err := pipelines.Update(ctx, "after", rest.DefaultUpdatedObjectInfo(edit), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("updated image", func() bool {
		p, err := lister.Pipelines("team-a").Get("after")
		return err == nil && p.Spec.Image == edit.Spec.Image
	})
	if _, _, err := pipelines.Delete(ctx, "before", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("deleted pipeline gone", func() bool {
		_, err := lister.Pipelines("team-a").Get("before")
		return err != nil
	})

	// Writing into what an informer handed out must not change what the API serves from its
	// watch cache (resourceVersion=0), from a list or from a watch event.
	assertUntouched := func(how string) {
		t.Helper()
		obj, err := pipelines.Get(ctx, "after", &metav1.GetOptions{ResourceVersion: "0"})
		if err != nil {
			t.Fatal(err)
		}
		if l := obj.(*core.Pipeline).Labels; l["mutated"] != "" {
			t.Fatalf("a change to the object of an informer's %s reached the watch cache: labels %v", how, l)
		}
	}
	p, err := lister.Pipelines("team-a").Get("after")
	if err != nil {
		t.Fatal(err)
	}
	mutate(p)
	assertUntouched("watch event")

	lw := registryinformers.ListWatch(pipelines, v1Scheme())
	listed, err := lw.ListWithContext(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	list := listed.(*v1.PipelineList)
	items := list.Items
	if len(items) != 1 || items[0].Name != "after" {
		t.Fatalf("list = %v, want the pipeline after alone", items)
	}
	mutate(&items[0])
	assertUntouched("list")

	// Selectors reach the storage.
	listed, err = lw.ListWithContext(context.Background(), metav1.ListOptions{LabelSelector: labels.Set{"team": "none"}.String()})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(listed.(*v1.PipelineList).Items); n != 0 {
		t.Fatalf("list with a label selector no pipeline matches returned %d", n)
	}

	// From the list's revision, not the item's: events after the item's
	// last write (the delete of "before") would come first.
	w, err := lw.WatchWithContext(context.Background(), metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, _, err := pipelines.Delete(ctx, "after", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.ResultChan():
		p, ok := e.Object.(*v1.Pipeline)
		if e.Type != watch.Deleted || !ok || p.Name != "after" {
			name := ""
			if ok {
				name = p.Name
			}
			t.Fatalf("watch event = %s %T %q, want Deleted *v1.Pipeline \"after\"", e.Type, e.Object, name)
		}
	case <-time.After(wait.ForeverTestTimeout):
		t.Fatal("no watch event for the delete")
	}
	eventually("informer empty after the deletes", func() bool {
		all, err := lister.List(labels.Everything())
		return err == nil && len(all) == 0
	})
}

func mutate(p *v1.Pipeline) { p.Labels["mutated"] = "yes" }
