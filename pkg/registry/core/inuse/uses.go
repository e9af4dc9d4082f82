package inuse

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/fluentbit"
)

// PipelineSecrets guards pipeline secrets: a secret is in use while a pipeline
// names it in spec.secrets and its config reads one of the secret's keys.
func PipelineSecrets(pipelines PipelineLister) *Guard {
	return &Guard{
		resource:  core.Resource("pipelinesecrets"),
		pipelines: pipelines,
		uses: func(p *core.Pipeline, obj runtime.Object) bool {
			s, ok := obj.(*core.PipelineSecret)
			return ok && readsSecret(p, s)
		},
	}
}

// ResourceProfiles guards resource profiles: a profile is in use while a
// pipeline names it in spec.resourceProfile.
func ResourceProfiles(pipelines PipelineLister) *Guard {
	return &Guard{
		resource:  core.Resource("resourceprofiles"),
		pipelines: pipelines,
		uses: func(p *core.Pipeline, obj runtime.Object) bool {
			rp, ok := obj.(*core.ResourceProfile)
			// An empty spec.resourceProfile means the default, a built-in
			// profile, which is never stored and so never deleted.
			return ok && p.Spec.ResourceProfile == rp.Name
		},
	}
}

// readsSecret tells whether p's config reads a value of s: p names s in
// spec.secrets and its config has a {{ secrets.KEY }} reference whose KEY is
// one of s's keys. Which of several listed secrets holding KEY wins does not
// matter: one shadowed today is read as soon as the one shadowing it goes.
func readsSecret(p *core.Pipeline, s *core.PipelineSecret) bool {
	if len(s.Data) == 0 || !slices.Contains(p.Spec.Secrets, s.Name) {
		return false
	}
	cfg, err := fluentbit.Parse([]byte(p.Spec.Config), configFormat(p))
	if err != nil {
		// The API refuses configs that do not parse, so a stored one fails
		// only after the parser changed, and which keys it reads is unknown.
		// Count it as reading them: removing the secret from spec.secrets
		// releases it.
		return true
	}
	for _, ref := range cfg.References() {
		if _, ok := s.Data[ref.Name]; ok && ref.Kind == "secrets" {
			return true
		}
	}
	return false
}

// configFormat is p's config format. Stored pipelines have one (the v1
// defaults infer it on the way in), but the API documents inferring it when
// empty, so do that here too, the way the defaults do.
func configFormat(p *core.Pipeline) fluentbit.Format {
	if p.Spec.ConfigFormat != "" {
		return fluentbit.Format(p.Spec.ConfigFormat)
	}
	return fluentbit.Format(v1.InferConfigFormat(p.Spec.Config))
}
