package resourceprofile

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/registry/core/inuse"
)

// REST is the resourceprofiles resource: the stored profiles of a namespace plus the built-in
// ones, which every namespace has and nobody can change or delete. A stored profile cannot be
// deleted while a pipeline runs with it.
type REST struct {
	*genericregistry.Store
	inUse *inuse.Guard
}

var (
	_                    rest.ShortNamesProvider = &REST{}
	_                    rest.CategoriesProvider = &REST{}
	_                    rest.Getter             = &REST{}
	_                    rest.Lister             = &REST{}
	_                    rest.Creater            = &REST{}
	_                    rest.Updater            = &REST{}
	_                    rest.GracefulDeleter    = &REST{}
	_                    rest.CollectionDeleter  = &REST{}
	errBuiltinIsReadOnly                         = errors.New("built-in resource profiles cannot be changed or deleted; create a profile with another name")
)

// ShortNames lets `kubectl get rp` work.
func (*REST) ShortNames() []string { return []string{"rp"} }

// Categories puts resource profiles in `kubectl get calyptia`.
func (*REST) Categories() []string { return []string{"calyptia"} }

// NewStorage returns the resourceprofiles resource; pipelines tells which profiles are in use.
func NewStorage(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter, pipelines inuse.PipelineLister) (*REST, error) {
	strategy := NewStrategy(scheme)
	store := &genericregistry.Store{
		NewFunc:                   func() runtime.Object { return &core.ResourceProfile{} },
		NewListFunc:               func() runtime.Object { return &core.ResourceProfileList{} },
		DefaultQualifiedResource:  core.Resource("resourceprofiles"),
		SingularQualifiedResource: core.Resource("resourceprofile"),

		CreateStrategy: strategy,
		UpdateStrategy: strategy,
		DeleteStrategy: strategy,
		TableConvertor: tableConvertor,
	}
	if err := store.CompleteWithOptions(&generic.StoreOptions{RESTOptions: optsGetter}); err != nil {
		return nil, fmt.Errorf("resourceprofiles storage: %w", err)
	}
	return &REST{Store: store, inUse: inuse.ResourceProfiles(pipelines)}, nil
}

// Get returns a built-in profile without touching storage, else the stored one.
func (r *REST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	if p, ok := Builtin(genericapirequest.NamespaceValue(ctx), name); ok {
		return p, nil
	}
	return r.Store.Get(ctx, name, options)
}

// Lists come from storage alone: the built-in profiles resolve by name (Get)
// but are not listed. A namespace is deleted once its lists come back empty;
// built-ins that were listed but cannot be deleted would keep every namespace
// Terminating forever.

// Create refuses the built-in names: they already exist.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	if p, ok := obj.(*core.ResourceProfile); ok && IsBuiltin(p.Name) {
		return nil, apierrors.NewAlreadyExists(core.Resource("resourceprofiles"), p.Name)
	}
	return r.Store.Create(ctx, obj, createValidation, options)
}

// Update refuses to change a built-in profile.
func (r *REST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	if IsBuiltin(name) {
		return nil, false, apierrors.NewForbidden(core.Resource("resourceprofiles"), name, errBuiltinIsReadOnly)
	}
	return r.Store.Update(ctx, name, objInfo, createValidation, updateValidation, forceAllowCreate, options)
}

// Delete refuses to delete a built-in profile (403 Forbidden) and a profile a pipeline runs
// with (409 Conflict).
func (r *REST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if IsBuiltin(name) {
		return nil, false, apierrors.NewForbidden(core.Resource("resourceprofiles"), name, errBuiltinIsReadOnly)
	}
	return r.Store.Delete(ctx, name, r.inUse.DeleteValidation(deleteValidation), options)
}

// DeleteCollection deletes the stored profiles (built-ins are not listed, so not deleted),
// refusing those in use as Delete does. The Store deletes each item through its own Delete, not
// this one, so the check travels in the validation function. As for any failed item, the first
// refusal ends the request with its error; the profiles deleted before it stay deleted.
func (r *REST) DeleteCollection(ctx context.Context, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions, listOptions *metainternalversion.ListOptions) (runtime.Object, error) {
	return r.Store.DeleteCollection(ctx, r.inUse.DeleteValidation(deleteValidation), options, listOptions)
}
