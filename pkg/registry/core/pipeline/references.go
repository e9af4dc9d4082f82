package pipeline

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/fluentbit"
	"github.com/calyptia/core-management-plane/pkg/registry/core/pipeline/references"
)

// Referenced reads the objects pipelines refer to, so that a pipeline is stored with its
// ReferencesResolved and ConfigValid conditions already set. Without them the pipelinerefs
// controller wrote the pipeline's status right after every create and spec change: a second
// write through the whole server and database for each, which cost about as much as the
// write itself. The controller stays, for references that come and go later.
//
// The stores are set after NewStorage, since secrets and profiles need the pipelines store for
// their in-use checks; until then (and in unit tests) pipelines are stored without conditions
// and the controller sets them.
type Referenced struct {
	CoreInstances    rest.Getter
	ResourceProfiles rest.Getter
	PipelineSecrets  rest.Getter
}

var _ references.Lookup = &Referenced{}

// fromCache reads at any resourceVersion, from the watch cache: a reference created a moment
// before may not be seen yet, and the controller corrects that as it would a later one.
var fromCache = &metav1.GetOptions{ResourceVersion: "0"}

func (r *Referenced) get(ctx context.Context, g rest.Getter, ns, name string) (runtime.Object, bool, error) {
	obj, err := g.Get(genericapirequest.WithNamespace(ctx, ns), name, fromCache)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return obj, true, nil
}

// CoreInstanceExists reports whether the core instance exists.
func (r *Referenced) CoreInstanceExists(ctx context.Context, ns, name string) (bool, error) {
	_, ok, err := r.get(ctx, r.CoreInstances, ns, name)
	return ok, err
}

// ResourceProfileExists reports whether the (stored or built-in) resource profile exists.
func (r *Referenced) ResourceProfileExists(ctx context.Context, ns, name string) (bool, error) {
	_, ok, err := r.get(ctx, r.ResourceProfiles, ns, name)
	return ok, err
}

// SecretKeys returns the keys of a pipeline secret.
func (r *Referenced) SecretKeys(ctx context.Context, ns, name string) ([]string, bool, error) {
	obj, ok, err := r.get(ctx, r.PipelineSecrets, ns, name)
	if !ok || err != nil {
		return nil, ok, err
	}
	s, isSecret := obj.(*core.PipelineSecret)
	if !isSecret {
		return nil, false, nil
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	return keys, true, nil
}

func (r *Referenced) ready() bool {
	return r != nil && r.CoreInstances != nil && r.ResourceProfiles != nil && r.PipelineSecrets != nil
}

// setConditions sets p's reference conditions from what exists now. A failed lookup leaves
// them as they are: the write goes ahead and the controller catches up.
func (r *Referenced) setConditions(ctx context.Context, p *core.Pipeline) {
	if !r.ready() {
		return
	}
	res, err := references.Check(ctx, pipelineOf(p), r)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Could not check pipeline references; leaving them to the controller",
			"pipeline", klog.KObj(p), "err", err)
		return
	}
	references.Apply(&p.Status.Conditions, res)
}

// pipelineOf is what the reference checks read of p, defaults applied as the v1 API documents.
func pipelineOf(p *core.Pipeline) references.Pipeline {
	profile := p.Spec.ResourceProfile
	if profile == "" {
		profile = v1.DefaultResourceProfile
	}
	format := v1.ConfigFormat(p.Spec.ConfigFormat)
	if format == "" {
		format = v1.InferConfigFormat(p.Spec.Config)
	}
	files := make([]string, len(p.Spec.Files))
	for i, f := range p.Spec.Files {
		files[i] = f.Name
	}
	return references.Pipeline{
		Namespace:       p.Namespace,
		Generation:      p.Generation,
		CoreInstance:    p.Spec.CoreInstance,
		ResourceProfile: profile,
		BuiltinProfile:  v1.IsBuiltinResourceProfile(profile),
		Secrets:         p.Spec.Secrets,
		Files:           files,
		Config:          p.Spec.Config,
		Format:          fluentbit.Format(format),
		// Both strategies that call this validate the config on the same write.
		Validating: true,
	}
}
