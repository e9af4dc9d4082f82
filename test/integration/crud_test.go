package integration

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	calyptiav1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	informers "github.com/calyptia/core-management-plane/pkg/generated/informers/externalversions"
)

// crudOps drives one resource through the typed client.
type crudOps struct {
	create func(ctx context.Context, ns, name string) (metav1.Object, error)
	get    func(ctx context.Context, ns, name string) (metav1.Object, error)
	// update sets label "updated=yes" on a fresh copy.
	update func(ctx context.Context, ns, name string) (metav1.Object, error)
	list   func(ctx context.Context, ns string) ([]string, error)
	delete func(ctx context.Context, ns, name string) error
}

func TestCRUD(t *testing.T) {
	c := env.client.CoreV1()
	tests := map[string]crudOps{
		"pipelines": {
			create: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				return c.Pipelines(ns).Create(ctx, newPipeline(ns, name, "ci"), metav1.CreateOptions{})
			},
			get: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				return c.Pipelines(ns).Get(ctx, name, metav1.GetOptions{})
			},
			update: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				p, err := c.Pipelines(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				p.Labels = map[string]string{"updated": "yes"}
				return c.Pipelines(ns).Update(ctx, p, metav1.UpdateOptions{})
			},
			list: func(ctx context.Context, ns string) ([]string, error) {
				l, err := c.Pipelines(ns).List(ctx, metav1.ListOptions{})
				return names(l, err)
			},
			delete: func(ctx context.Context, ns, name string) error {
				return c.Pipelines(ns).Delete(ctx, name, metav1.DeleteOptions{})
			},
		},
		"coreinstances": {
			create: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				return c.CoreInstances(ns).Create(ctx, &calyptiav1.CoreInstance{
					ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec:       calyptiav1.CoreInstanceSpec{Environment: "test"},
				}, metav1.CreateOptions{})
			},
			get: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				return c.CoreInstances(ns).Get(ctx, name, metav1.GetOptions{})
			},
			update: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				o, err := c.CoreInstances(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				o.Labels = map[string]string{"updated": "yes"}
				return c.CoreInstances(ns).Update(ctx, o, metav1.UpdateOptions{})
			},
			list: func(ctx context.Context, ns string) ([]string, error) {
				l, err := c.CoreInstances(ns).List(ctx, metav1.ListOptions{})
				return names(l, err)
			},
			delete: func(ctx context.Context, ns, name string) error {
				return c.CoreInstances(ns).Delete(ctx, name, metav1.DeleteOptions{})
			},
		},
		"pipelinesecrets": {
			create: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				return c.PipelineSecrets(ns).Create(ctx, &calyptiav1.PipelineSecret{
					ObjectMeta: metav1.ObjectMeta{Name: name},
					Data:       map[string][]byte{"token": []byte("t0ken")},
				}, metav1.CreateOptions{})
			},
			get: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				return c.PipelineSecrets(ns).Get(ctx, name, metav1.GetOptions{})
			},
			update: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				o, err := c.PipelineSecrets(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				o.Labels = map[string]string{"updated": "yes"}
				return c.PipelineSecrets(ns).Update(ctx, o, metav1.UpdateOptions{})
			},
			list: func(ctx context.Context, ns string) ([]string, error) {
				l, err := c.PipelineSecrets(ns).List(ctx, metav1.ListOptions{})
				return names(l, err)
			},
			delete: func(ctx context.Context, ns, name string) error {
				return c.PipelineSecrets(ns).Delete(ctx, name, metav1.DeleteOptions{})
			},
		},
		"resourceprofiles": {
			create: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				return c.ResourceProfiles(ns).Create(ctx, &calyptiav1.ResourceProfile{
					ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec:       calyptiav1.ResourceProfileSpec{StorageMaxChunksUp: 64, StorageBacklogMemLimit: "16M"},
				}, metav1.CreateOptions{})
			},
			get: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				return c.ResourceProfiles(ns).Get(ctx, name, metav1.GetOptions{})
			},
			update: func(ctx context.Context, ns, name string) (metav1.Object, error) {
				o, err := c.ResourceProfiles(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				o.Labels = map[string]string{"updated": "yes"}
				return c.ResourceProfiles(ns).Update(ctx, o, metav1.UpdateOptions{})
			},
			list: func(ctx context.Context, ns string) ([]string, error) {
				l, err := c.ResourceProfiles(ns).List(ctx, metav1.ListOptions{})
				return names(l, err)
			},
			delete: func(ctx context.Context, ns, name string) error {
				return c.ResourceProfiles(ns).Delete(ctx, name, metav1.DeleteOptions{})
			},
		},
	}
	for resource, ops := range tests {
		t.Run(resource, func(t *testing.T) {
			ctx := context.Background()
			ns := namespace(t)
			created, err := ops.create(ctx, ns, "one")
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if created.GetUID() == "" || created.GetResourceVersion() == "" || created.GetCreationTimestamp().Time.IsZero() {
				t.Errorf("created object lacks uid/resourceVersion/creationTimestamp: %+v", created)
			}
			if _, err := ops.create(ctx, ns, "one"); !apierrors.IsAlreadyExists(err) {
				t.Errorf("second create: got %v, want AlreadyExists", err)
			}
			got, err := ops.get(ctx, ns, "one")
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got.GetUID() != created.GetUID() {
				t.Errorf("get returned uid %s, created %s", got.GetUID(), created.GetUID())
			}
			// Get and update again on conflict: the references controller
			// writes pipeline status concurrently.
			var updated metav1.Object
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				updated, err = ops.update(ctx, ns, "one")
				return err
			})
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if updated.GetLabels()["updated"] != "yes" || updated.GetResourceVersion() == created.GetResourceVersion() {
				t.Errorf("update: labels %v, resourceVersion %s (was %s)", updated.GetLabels(), updated.GetResourceVersion(), created.GetResourceVersion())
			}
			if _, err := ops.create(ctx, ns, "two"); err != nil {
				t.Fatalf("create two: %v", err)
			}
			if _, err := ops.create(ctx, namespace(t), "elsewhere"); err != nil {
				t.Fatalf("create in another namespace: %v", err)
			}
			listed, err := ops.list(ctx, ns)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			want := []string{"one", "two"}
			if !slices.Equal(listed, want) {
				t.Errorf("list = %v, want %v", listed, want)
			}
			if err := ops.delete(ctx, ns, "one"); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, err := ops.get(ctx, ns, "one"); !apierrors.IsNotFound(err) {
				t.Errorf("get after delete: got %v, want NotFound", err)
			}
			if err := ops.delete(ctx, ns, "one"); !apierrors.IsNotFound(err) {
				t.Errorf("second delete: got %v, want NotFound", err)
			}
		})
	}
}

// names returns the sorted names of a list's items.
func names(list any, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	var out []string
	switch l := list.(type) {
	case *calyptiav1.PipelineList:
		for _, i := range l.Items {
			out = append(out, i.Name)
		}
	case *calyptiav1.CoreInstanceList:
		for _, i := range l.Items {
			out = append(out, i.Name)
		}
	case *calyptiav1.PipelineSecretList:
		for _, i := range l.Items {
			out = append(out, i.Name)
		}
	case *calyptiav1.ResourceProfileList:
		for _, i := range l.Items {
			out = append(out, i.Name)
		}
	default:
		return nil, fmt.Errorf("unexpected list type %T", list)
	}
	slices.Sort(out)
	return out, nil
}

func TestConflictOnStaleUpdate(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createPipeline(t, newPipeline(ns, "stale", "ci"))
	// After this the controller has nothing more to write: the updates
	// below only race each other.
	p := waitSettled(t, ns, "stale")

	first := p.DeepCopy()
	first.Labels = map[string]string{"writer": "first"}
	if _, err := env.client.CoreV1().Pipelines(ns).Update(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("first update: %v", err)
	}
	second := p.DeepCopy() // still carries the old resourceVersion
	second.Labels = map[string]string{"writer": "second"}
	_, err := env.client.CoreV1().Pipelines(ns).Update(ctx, second, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale update: got %v, want 409 Conflict", err)
	}
	got, err := env.client.CoreV1().Pipelines(ns).Get(ctx, "stale", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["writer"] != "first" {
		t.Errorf("labels after conflict = %v, want the first writer's", got.Labels)
	}
}

func TestInformerSyncAndWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := namespace(t)
	for _, name := range []string{"pre-a", "pre-b", "pre-c"} {
		createPipeline(t, newPipeline(ns, name, "ci"))
	}

	type event struct{ kind, name string }
	events := make(chan event, 100)
	factory := informers.NewSharedInformerFactoryWithOptions(env.client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pipelines()
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { events <- event{"add", obj.(*calyptiav1.Pipeline).Name} },
		UpdateFunc: func(_, obj any) {
			events <- event{"update", obj.(*calyptiav1.Pipeline).Name}
		},
		DeleteFunc: func(obj any) {
			if p, ok := obj.(*calyptiav1.Pipeline); ok {
				events <- event{"delete", p.Name}
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	// Shutdown waits for the informers, which stop when ctx ends.
	defer factory.Shutdown()
	defer cancel()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}
	synced, err := inf.Lister().Pipelines(ns).List(everything)
	if err != nil {
		t.Fatal(err)
	}
	if len(synced) != 3 {
		t.Fatalf("lister has %d pipelines after sync, want 3", len(synced))
	}

	// Raw watch from the informer's point in time, beside the informer.
	list, err := env.client.CoreV1().Pipelines(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := env.client.CoreV1().Pipelines(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	createPipeline(t, newPipeline(ns, "live", "ci"))
	updatePipeline(t, ns, "live", metav1.UpdateOptions{}, func(p *calyptiav1.Pipeline) {
		p.Labels = map[string]string{"touched": "yes"}
	})
	if err := env.client.CoreV1().Pipelines(ns).Delete(ctx, "live", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// The informer sees the three initial adds, then live's add, update, delete
	// (status updates by the references controller may add updates).
	var gotLive []string
	seenInitial := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(gotLive) == 0 || gotLive[len(gotLive)-1] != "delete" {
		select {
		case e := <-events:
			if e.name == "live" {
				if len(gotLive) == 0 || gotLive[len(gotLive)-1] != e.kind {
					gotLive = append(gotLive, e.kind)
				}
			} else if e.kind == "add" {
				seenInitial[e.name] = true
			}
		case <-deadline:
			t.Fatalf("informer events for live: %v, want add, update, delete", gotLive)
		}
	}
	if !slices.Equal(gotLive, []string{"add", "update", "delete"}) {
		t.Errorf("informer events for live = %v, want [add update delete]", gotLive)
	}
	if len(seenInitial) != 3 {
		t.Errorf("informer added %v, want the three pre-existing pipelines", seenInitial)
	}

	var rawKinds []watch.EventType
	var lastRV uint64
	for len(rawKinds) == 0 || rawKinds[len(rawKinds)-1] != watch.Deleted {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %v", rawKinds)
			}
			p, isPipeline := e.Object.(*calyptiav1.Pipeline)
			if !isPipeline || p.Name != "live" {
				continue
			}
			rv, err := strconv.ParseUint(p.ResourceVersion, 10, 64)
			if err != nil || rv <= lastRV {
				t.Errorf("watch resourceVersion %q after %d, want a larger integer", p.ResourceVersion, lastRV)
			}
			lastRV = rv
			if len(rawKinds) == 0 || rawKinds[len(rawKinds)-1] != e.Type {
				rawKinds = append(rawKinds, e.Type)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("watch events for live: %v", rawKinds)
		}
	}
	if !slices.Equal(rawKinds, []watch.EventType{watch.Added, watch.Modified, watch.Deleted}) {
		t.Errorf("watch events = %v, want ADDED MODIFIED DELETED", rawKinds)
	}
}
