package pipeline

import (
	"context"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

// REST is the pipelines resource.
type REST struct {
	*genericregistry.Store
}

var (
	_ rest.ShortNamesProvider       = &REST{}
	_ rest.CategoriesProvider       = &REST{}
	_ rest.Patcher                  = &StatusREST{}
	_ rest.Patcher                  = &ScaleREST{}
	_ rest.GroupVersionKindProvider = &ScaleREST{}
)

// ShortNames lets `kubectl get pl` work.
func (*REST) ShortNames() []string { return []string{"pl"} }

// Categories puts pipelines in `kubectl get calyptia`.
func (*REST) Categories() []string { return []string{"calyptia"} }

// Storage is the pipelines resource and its subresources.
type Storage struct {
	Pipeline *REST
	Status   *StatusREST
	Scale    *ScaleREST
}

// NewStorage returns the pipelines resource, its status subresource and its scale subresource.
// refs (may be nil) reads what pipelines refer to; see Referenced.
func NewStorage(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter, refs *Referenced) (*Storage, error) {
	strategy := NewStrategy(scheme, refs)
	store := &genericregistry.Store{
		NewFunc:                   func() runtime.Object { return &core.Pipeline{} },
		NewListFunc:               func() runtime.Object { return &core.PipelineList{} },
		PredicateFunc:             MatchPipeline,
		DefaultQualifiedResource:  core.Resource("pipelines"),
		SingularQualifiedResource: core.Resource("pipeline"),

		CreateStrategy:      strategy,
		UpdateStrategy:      strategy,
		DeleteStrategy:      strategy,
		ResetFieldsStrategy: strategy,
		TableConvertor:      tableConvertor,
	}
	options := &generic.StoreOptions{
		RESTOptions: optsGetter,
		AttrFunc:    GetAttrs,
		TriggerFunc: storage.IndexerFuncs{v1.PipelineCoreInstanceField: coreInstanceTrigger},
	}
	if err := store.CompleteWithOptions(options); err != nil {
		return nil, fmt.Errorf("pipelines storage: %w", err)
	}

	statusStore := *store
	statusStrategy := NewStatusStrategy(strategy)
	statusStore.UpdateStrategy = statusStrategy
	statusStore.ResetFieldsStrategy = statusStrategy

	return &Storage{
		Pipeline: &REST{store},
		Status:   &StatusREST{store: &statusStore},
		Scale:    &ScaleREST{store: store},
	}, nil
}

// StatusREST is the pipelines/status subresource the data plane reports through.
type StatusREST struct {
	store *genericregistry.Store
}

// New returns an empty pipeline.
func (r *StatusREST) New() runtime.Object { return &core.Pipeline{} }

// Destroy does nothing: the main resource owns the storage.
func (r *StatusREST) Destroy() {}

// Get returns the pipeline.
func (r *StatusREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

// Update changes the status only.
func (r *StatusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	// Subresources never create: a status update of a missing pipeline is 404.
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// GetResetFields is the status strategy's.
func (r *StatusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

// ConvertToTable prints the pipeline as the main resource does.
func (r *StatusREST) ConvertToTable(ctx context.Context, object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}

// ScaleREST is the pipelines/scale subresource: `kubectl scale` and HorizontalPodAutoscalers
// read and write spec.replicas through it and find the pods through status.selector.
type ScaleREST struct {
	store *genericregistry.Store
}

// GroupVersionKind says the subresource speaks autoscaling/v1 Scale.
func (r *ScaleREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return autoscalingv1.SchemeGroupVersion.WithKind("Scale")
}

// New returns an empty Scale.
func (r *ScaleREST) New() runtime.Object { return &autoscalingv1.Scale{} }

// Destroy does nothing: the main resource owns the storage.
func (r *ScaleREST) Destroy() {}

// Get returns the pipeline's Scale.
func (r *ScaleREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	obj, err := r.store.Get(ctx, name, options)
	if err != nil {
		return nil, err
	}
	return scaleFromPipeline(obj.(*core.Pipeline)), nil
}

// Update sets spec.replicas from a Scale. The whole pipeline goes through the main strategy, so
// replicas rules (not for DaemonSets, not negative) are the same as for a direct update.
func (r *ScaleREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	obj, _, err := r.store.Update(ctx, name,
		&scaleUpdatedObjectInfo{name: name, reqObjInfo: objInfo},
		toScaleCreateValidation(createValidation),
		toScaleUpdateValidation(updateValidation),
		false, options)
	if err != nil {
		return nil, false, err
	}
	return scaleFromPipeline(obj.(*core.Pipeline)), false, nil
}

// ConvertToTable prints the Scale with the default columns.
func (r *ScaleREST) ConvertToTable(ctx context.Context, object, tableOptions runtime.Object) (*metav1.Table, error) {
	return rest.NewDefaultTableConvertor(core.Resource("pipelines/scale")).ConvertToTable(ctx, object, tableOptions)
}

func scaleFromPipeline(p *core.Pipeline) *autoscalingv1.Scale {
	var replicas int32
	if p.Spec.Replicas != nil {
		replicas = *p.Spec.Replicas
	}
	return &autoscalingv1.Scale{
		// The Scale shares the pipeline's identity so optimistic concurrency carries over.
		ObjectMeta: metav1.ObjectMeta{
			Name:              p.Name,
			Namespace:         p.Namespace,
			UID:               p.UID,
			ResourceVersion:   p.ResourceVersion,
			CreationTimestamp: p.CreationTimestamp,
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: replicas},
		Status: autoscalingv1.ScaleStatus{Replicas: p.Status.Replicas, Selector: p.Status.Selector},
	}
}

func toScaleCreateValidation(f rest.ValidateObjectFunc) rest.ValidateObjectFunc {
	return func(ctx context.Context, obj runtime.Object) error {
		return f(ctx, scaleFromPipeline(obj.(*core.Pipeline)))
	}
}

func toScaleUpdateValidation(f rest.ValidateObjectUpdateFunc) rest.ValidateObjectUpdateFunc {
	return func(ctx context.Context, obj, old runtime.Object) error {
		return f(ctx, scaleFromPipeline(obj.(*core.Pipeline)), scaleFromPipeline(old.(*core.Pipeline)))
	}
}

// scaleUpdatedObjectInfo turns the Scale of a request into the updated pipeline.
type scaleUpdatedObjectInfo struct {
	name       string
	reqObjInfo rest.UpdatedObjectInfo
}

func (i *scaleUpdatedObjectInfo) Preconditions() *metav1.Preconditions {
	return i.reqObjInfo.Preconditions()
}

// replicasPath maps the Scale's spec.replicas to the pipeline's, so server-side apply tracks who
// set the replicas through the scale subresource (an HPA, kubectl scale) on the pipeline itself.
var replicasPath = managedfields.ResourcePathMappings{
	v1.SchemeGroupVersion.String(): fieldpath.MakePathOrDie("spec", "replicas"),
}

func (i *scaleUpdatedObjectInfo) UpdatedObject(ctx context.Context, oldObj runtime.Object) (runtime.Object, error) {
	p, ok := oldObj.DeepCopyObject().(*core.Pipeline)
	// A zero resourceVersion means there is no stored pipeline.
	if !ok || p == nil || p.ResourceVersion == "" {
		return nil, apierrors.NewNotFound(core.Resource("pipelines/scale"), i.name)
	}
	managedFields := managedfields.NewScaleHandler(p.ManagedFields, v1.SchemeGroupVersion, replicasPath)
	oldScale := scaleFromPipeline(p)
	scaleManagedFields, err := managedFields.ToSubresource()
	if err != nil {
		return nil, fmt.Errorf("converting managed fields to the scale subresource: %w", err)
	}
	oldScale.ManagedFields = scaleManagedFields

	obj, err := i.reqObjInfo.UpdatedObject(ctx, oldScale)
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, apierrors.NewBadRequest("nil update passed to Scale")
	}
	scale, ok := obj.(*autoscalingv1.Scale)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("expected an autoscaling/v1 Scale, got %T", obj))
	}
	gk := autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind()
	fld := field.NewPath("spec", "replicas")
	if scale.Spec.Replicas < 0 {
		return nil, apierrors.NewInvalid(gk, i.name, field.ErrorList{field.Invalid(fld, scale.Spec.Replicas, "must be greater than or equal to 0")})
	}
	if p.Spec.Kind == core.PipelineKindDaemonSet {
		return nil, apierrors.NewInvalid(gk, i.name, field.ErrorList{field.Forbidden(fld, "DaemonSet pipelines run one pod per node and cannot be scaled")})
	}
	if scale.UID != "" && scale.UID != p.UID {
		return nil, apierrors.NewConflict(core.Resource("pipelines/scale"), i.name,
			fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", scale.UID, p.UID))
	}
	// The Scale's resourceVersion is the pipeline's: storage checks it as a precondition.
	p.ResourceVersion = scale.ResourceVersion
	replicas := scale.Spec.Replicas
	p.Spec.Replicas = &replicas
	p.ManagedFields, err = managedFields.ToParent(scale.ManagedFields)
	if err != nil {
		return nil, fmt.Errorf("converting managed fields from the scale subresource: %w", err)
	}
	return p, nil
}
