// Package inuse refuses to delete what a pipeline needs: a pipeline secret
// whose keys its config reads, or the resource profile it runs with. The
// refusal is a 409 Conflict naming the pipelines.
//
// The check runs as the delete's rest.ValidateObjectFunc, so the storage runs
// it as a precondition on the object as stored, and every way of deleting
// goes through it: single deletes, dry runs, graceful deletions and each item
// of a DeleteCollection (genericregistry.Store deletes those through its own
// Delete, not through the REST wrapping it).
//
// Pipelines that are being deleted need nothing any more. Without that
// exception a terminating namespace, whose objects the namespace controller
// deletes in no particular order, would never empty while its pipelines wait
// on finalizers; with it, a refused delete succeeds on the controller's next
// pass, once the pipelines are gone or going.
//
// The check is not transactional with pipeline writes: a pipeline created, or
// changed to refer to the object, between the check and the delete is not
// seen, and the delete goes ahead. The pipeline then has a dangling
// reference, which the pipelinerefs controller reports in its conditions, as
// for references created before what they refer to.
package inuse

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

// PipelineLister lists the pipelines of the context's namespace. The
// pipelines storage is one; its lists are served by the watch cache.
type PipelineLister interface {
	List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error)
}

// Guard refuses to delete an object of one resource while a pipeline of its
// namespace uses it.
type Guard struct {
	resource  schema.GroupResource
	pipelines PipelineLister
	// uses tells whether p uses obj, the stored object being deleted.
	uses func(p *core.Pipeline, obj runtime.Object) bool
}

// maxNamed bounds how many pipelines a refusal names: a profile every
// pipeline of a namespace runs with would otherwise make a message as long as
// the namespace.
const maxNamed = 10

// DeleteValidation returns the ValidateObjectFunc to delete with: validate
// (admission; nil for none), then the refusal if a pipeline uses the object.
func (g *Guard) DeleteValidation(validate rest.ValidateObjectFunc) rest.ValidateObjectFunc {
	return func(ctx context.Context, obj runtime.Object) error {
		if validate != nil {
			if err := validate(ctx, obj); err != nil {
				return err
			}
		}
		return g.check(ctx, obj)
	}
}

// check returns a 409 Conflict naming the pipelines that use obj, or nil.
func (g *Guard) check(ctx context.Context, obj runtime.Object) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("checking whether pipelines use a %s: %w", g.resource, err))
	}
	// The object's namespace, not the request's: they are the same for a
	// namespaced delete, but the object's is the one that matters.
	ctx = genericapirequest.WithNamespace(ctx, m.GetNamespace())
	// The default resourceVersion is a consistent read: the watch cache
	// answers once it has caught up with storage, so every pipeline written
	// before this delete started is seen.
	list, err := g.pipelines.List(ctx, &metainternalversion.ListOptions{})
	if err != nil {
		// Status errors (429 while the cache warms up, ...) mean the same
		// to the client whatever it was doing; anything else gets context.
		if _, ok := err.(apierrors.APIStatus); ok {
			return err
		}
		return apierrors.NewInternalError(fmt.Errorf("listing the pipelines of namespace %s that may use %s %q: %w",
			m.GetNamespace(), g.resource, m.GetName(), err))
	}
	pipelines, ok := list.(*core.PipelineList)
	if !ok {
		return apierrors.NewInternalError(fmt.Errorf("listing pipelines returned a %T", list))
	}
	var users []string
	for i := range pipelines.Items {
		p := &pipelines.Items[i]
		if p.DeletionTimestamp == nil && g.uses(p, obj) {
			users = append(users, p.Name)
		}
	}
	if len(users) == 0 {
		return nil
	}
	return inUseError(g.resource, m.GetName(), users)
}

// inUseError is the 409 Conflict refusing to delete name while pipelines use it.
func inUseError(resource schema.GroupResource, name string, pipelines []string) *apierrors.StatusError {
	slices.Sort(pipelines)
	named := pipelines[:min(len(pipelines), maxNamed)]
	who := "pipeline "
	if len(pipelines) > 1 {
		who = "pipelines "
	}
	who += strings.Join(named, ", ")
	if more := len(pipelines) - len(named); more > 0 {
		who += fmt.Sprintf(" and %d more", more)
	}
	err := apierrors.NewConflict(resource, name, fmt.Errorf("referenced by %s", who))
	// NewConflict's "Operation cannot be fulfilled on ..." reads like a lost
	// race worth retrying; retrying does not help until the pipelines change.
	err.ErrStatus.Message = fmt.Sprintf("%s %q cannot be deleted: referenced by %s", resource.Resource, name, who)
	return err
}
