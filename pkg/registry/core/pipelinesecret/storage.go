package pipelinesecret

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

// REST is the pipelinesecrets resource. Its values pass through the storage's value transformer,
// so an EncryptionConfiguration for pipelinesecrets.core.calyptia.com encrypts them at rest.
type REST struct {
	*genericregistry.Store
}

var (
	_ rest.ShortNamesProvider = &REST{}
	_ rest.CategoriesProvider = &REST{}
)

// ShortNames lets `kubectl get psec` work.
func (*REST) ShortNames() []string { return []string{"psec"} }

// Categories puts pipeline secrets in `kubectl get calyptia`.
func (*REST) Categories() []string { return []string{"calyptia"} }

// NewStorage returns the pipelinesecrets resource.
func NewStorage(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter) (*REST, error) {
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
	return &REST{store}, nil
}
