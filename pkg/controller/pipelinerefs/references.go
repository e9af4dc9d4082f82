package pipelinerefs

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/fluentbit"
	"github.com/calyptia/core-management-plane/pkg/registry/core/pipeline/references"
)

// ConditionReferencesResolved and the reasons are the references package's, which the API
// server uses too when it writes pipelines.
const (
	ConditionReferencesResolved = references.ConditionReferencesResolved
	ReasonResolved              = references.ReasonResolved
	ReasonCoreInstanceNotFound  = references.ReasonCoreInstanceNotFound
	ReasonProfileNotFound       = references.ReasonProfileNotFound
	ReasonUnresolvedReferences  = references.ReasonUnresolvedReferences
)

// pipelineOf is what the reference checks read of p.
func pipelineOf(p *corev1.Pipeline) references.Pipeline {
	profile := corev1.PipelineResourceProfile(&p.Spec)
	files := make([]string, len(p.Spec.Files))
	for i, f := range p.Spec.Files {
		files[i] = f.Name
	}
	return references.Pipeline{
		Namespace:       p.Namespace,
		Generation:      p.Generation,
		CoreInstance:    p.Spec.CoreInstance,
		ResourceProfile: profile,
		BuiltinProfile:  corev1.IsBuiltinResourceProfile(profile),
		Secrets:         p.Spec.Secrets,
		Files:           files,
		Config:          p.Spec.Config,
		Format:          fluentbit.Format(corev1.PipelineConfigFormat(&p.Spec)),
	}
}

// listerLookup finds references in the informers' caches.
type listerLookup struct{ c *Controller }

func (l listerLookup) CoreInstanceExists(_ context.Context, ns, name string) (bool, error) {
	_, err := l.c.coreInstances.CoreInstances(ns).Get(name)
	return found(err)
}

func (l listerLookup) ResourceProfileExists(_ context.Context, ns, name string) (bool, error) {
	_, err := l.c.profiles.ResourceProfiles(ns).Get(name)
	return found(err)
}

func (l listerLookup) SecretKeys(_ context.Context, ns, name string) ([]string, bool, error) {
	s, err := l.c.secrets.PipelineSecrets(ns).Get(name)
	if ok, err := found(err); !ok {
		return nil, false, err
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	return keys, true, nil
}

func found(err error) (bool, error) {
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
