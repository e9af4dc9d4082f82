package pipelinesecret

import (
	"context"
	"fmt"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/registry/core/inuse"
)

// REST is the pipelinesecrets resource. Its values pass through the storage's value transformer,
// so an EncryptionConfiguration for pipelinesecrets.core.calyptia.com encrypts them at rest.
// A secret cannot be deleted while a pipeline's config reads one of its keys.
type REST struct {
	*genericregistry.Store
	inUse *inuse.Guard
}

var (
	_ rest.ShortNamesProvider = &REST{}
	_ rest.CategoriesProvider = &REST{}
	_ rest.GracefulDeleter    = &REST{}
	_ rest.CollectionDeleter  = &REST{}
)

// ShortNames lets `kubectl get psec` work.
func (*REST) ShortNames() []string { return []string{"psec"} }

// Categories puts pipeline secrets in `kubectl get calyptia`.
func (*REST) Categories() []string { return []string{"calyptia"} }

// NewStorage returns the pipelinesecrets resource; pipelines tells which secrets are in use.
func NewStorage(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter, pipelines inuse.PipelineLister) (*REST, error) {
	strategy := NewStrategy(scheme)
	store := &genericregistry.Store{
		NewFunc:                   func() runtime.Object { return &core.PipelineSecret{} },
		NewListFunc:               func() runtime.Object { return &core.PipelineSecretList{} },
		DefaultQualifiedResource:  core.Resource("pipelinesecrets"),
		SingularQualifiedResource: core.Resource("pipelinesecret"),

		CreateStrategy: strategy,
		UpdateStrategy: strategy,
		DeleteStrategy: strategy,
		TableConvertor: tableConvertor,
	}
	if err := store.CompleteWithOptions(&generic.StoreOptions{RESTOptions: optsGetter}); err != nil {
		return nil, fmt.Errorf("pipelinesecrets storage: %w", err)
	}
	return &REST{Store: store, inUse: inuse.PipelineSecrets(pipelines)}, nil
}

// Delete refuses (409 Conflict) to delete a secret whose keys a pipeline's config reads.
func (r *REST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	return r.Store.Delete(ctx, name, r.inUse.DeleteValidation(deleteValidation), options)
}

// DeleteCollection refuses to delete secrets in use as Delete does. The Store deletes each
// item through its own Delete, not this one, so the check travels in the validation function.
// As for any failed item, the first refusal ends the request with its error; the secrets
// deleted before it stay deleted.
func (r *REST) DeleteCollection(ctx context.Context, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions, listOptions *metainternalversion.ListOptions) (runtime.Object, error) {
	return r.Store.DeleteCollection(ctx, r.inUse.DeleteValidation(deleteValidation), options, listOptions)
}
