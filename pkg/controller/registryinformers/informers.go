// Package registryinformers feeds the in-process controllers' shared informers
// from this server's own REST storage instead of from its HTTP API.
//
// Over the loopback connection every pipeline write reached the controllers as
// a JSON watch event that cloud-api had encoded, sent through TLS and HTTP/2 to
// itself and decoded again: 10-12 % of its CPU under creates. Read from the
// registry, an event costs a copy and a conversion to v1. The listers, event
// handlers and resync behave as before; only the transport changes. Writes
// (status updates) still go through the API, with its admission and audit.
package registryinformers

import (
	"context"
	"fmt"
	"time"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/tools/cache"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	informers "github.com/calyptia/core-management-plane/pkg/generated/informers/externalversions"
)

// Resources the controllers inform on, by their key in the v1 storage map and
// the v1 type the factory knows their informer by.
var resources = []struct {
	name string
	obj  runtime.Object
}{
	{"pipelines", &corev1.Pipeline{}},
	{"coreinstances", &corev1.CoreInstance{}},
	{"resourceprofiles", &corev1.ResourceProfile{}},
	{"pipelinesecrets", &corev1.PipelineSecret{}},
}

// Storage is what an informer reads: the List and Watch of a resource's REST
// storage, as the API's handlers call them.
type Storage interface {
	rest.Lister
	rest.Watcher
}

// Register makes factory's informers of pipelines, core instances, resource
// profiles and pipeline secrets read from storage (the v1 storage map the API
// group was installed with). Call it before anything asks factory for those
// informers: the factory keeps the first informer of each type.
func Register(factory informers.SharedInformerFactory, scheme *runtime.Scheme, storage map[string]rest.Storage) error {
	for _, r := range resources {
		s, ok := storage[r.name].(Storage)
		if !ok {
			return fmt.Errorf("storage of %s cannot be listed and watched", r.name)
		}
		lw := ListWatch(s, scheme)
		obj := r.obj
		factory.InformerFor(obj, func(_ versioned.Interface, resync time.Duration) cache.SharedIndexInformer {
			return cache.NewSharedIndexInformer(lw, obj, resync,
				cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		})
	}
	return nil
}

// ListWatch lists and watches s across all namespaces, handing out v1 objects
// that share no memory with the storage's caches.
func ListWatch(s Storage, scheme *runtime.Scheme) *cache.ListWatch {
	toV1 := func(obj runtime.Object) (runtime.Object, error) {
		// The watch cache hands one object to every watcher, wrapped so that each
		// encoding is made once; GetObject returns a copy of it, which is ours to
		// convert in place.
		if c, ok := obj.(runtime.CacheableObject); ok {
			return scheme.UnsafeConvertToVersion(c.GetObject(), corev1.SchemeGroupVersion)
		}
		// Copies: informers' objects must be theirs alone, and a list's items
		// come from the watch cache as shallow copies.
		return scheme.ConvertToVersion(obj, corev1.SchemeGroupVersion)
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			in, err := internalOptions(opts)
			if err != nil {
				return nil, err
			}
			list, err := s.List(allNamespaces(ctx), in)
			if err != nil {
				return nil, err
			}
			return toV1(list)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			in, err := internalOptions(opts)
			if err != nil {
				return nil, err
			}
			w, err := s.Watch(allNamespaces(ctx), in)
			if err != nil {
				return nil, err
			}
			return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				if e.Type == watch.Error {
					return e, true // a *metav1.Status, as the API sends it
				}
				obj, err := toV1(e.Object)
				if err != nil {
					// The reflector turns an error event into a new list and watch.
					return watch.Event{Type: watch.Error, Object: &metav1.Status{
						Status: metav1.StatusFailure, Code: 500, Reason: metav1.StatusReasonInternalError,
						Message: fmt.Sprintf("converting a watch event to %s: %v", corev1.SchemeGroupVersion, err),
					}}, true
				}
				e.Object = obj
				return e, true
			}), nil
		},
	}
}

// internalOptions converts the reflector's options as the API's handlers do,
// selectors parsed.
func internalOptions(opts metav1.ListOptions) (*metainternalversion.ListOptions, error) {
	var in metainternalversion.ListOptions
	if err := metainternalversion.Convert_v1_ListOptions_To_internalversion_ListOptions(&opts, &in, nil); err != nil {
		return nil, fmt.Errorf("converting list options: %w", err)
	}
	return &in, nil
}

func allNamespaces(ctx context.Context) context.Context {
	return genericapirequest.WithNamespace(ctx, metav1.NamespaceAll)
}
