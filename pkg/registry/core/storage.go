// Package core assembles the REST storage of every core.calyptia.com resource. Each resource's
// behaviour lives in its own package (pipeline, coreinstance, pipelinesecret, resourceprofile;
// metrics and tap for those subresources; inuse for the refusal to delete what pipelines use);
// this package hands the pipelines storage to the resources that need it and keys them the way
// the API group installer wants.
package core

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/metricstore"
	"github.com/calyptia/core-management-plane/pkg/registry/core/coreinstance"
	"github.com/calyptia/core-management-plane/pkg/registry/core/metrics"
	"github.com/calyptia/core-management-plane/pkg/registry/core/pipeline"
	"github.com/calyptia/core-management-plane/pkg/registry/core/pipelinesecret"
	"github.com/calyptia/core-management-plane/pkg/registry/core/resourceprofile"
	"github.com/calyptia/core-management-plane/pkg/registry/core/tap"
)

// NewStorage returns the v1 REST storage of every resource, keyed as
// APIGroupInfo.VersionedResourcesStorageMap["v1"] wants: "coreinstances", "coreinstances/status",
// "pipelines", "pipelines/status", "pipelines/scale", "pipelines/tap", "pipelinesecrets",
// "resourceprofiles", and, with a metric store, "pipelines/metrics" and "coreinstances/metrics".
// The storage backend comes in through optsGetter.
func NewStorage(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter, metricStore metricstore.Store) (map[string]rest.Storage, error) {
	coreInstances, coreInstanceStatus, err := coreinstance.NewStorage(scheme, optsGetter)
	if err != nil {
		return nil, fmt.Errorf("core instances: %w", err)
	}
	refs := &pipeline.Referenced{}
	pipelines, err := pipeline.NewStorage(scheme, optsGetter, refs)
	if err != nil {
		return nil, fmt.Errorf("pipelines: %w", err)
	}
	// Secrets and profiles a pipeline uses cannot be deleted; the pipelines storage says which.
	secrets, err := pipelinesecret.NewStorage(scheme, optsGetter, pipelines.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("pipeline secrets: %w", err)
	}
	profiles, err := resourceprofile.NewStorage(scheme, optsGetter, pipelines.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("resource profiles: %w", err)
	}
	// Pipelines are written with their reference conditions set, read from these stores.
	refs.CoreInstances, refs.ResourceProfiles, refs.PipelineSecrets = coreInstances, profiles, secrets
	out := map[string]rest.Storage{
		"coreinstances":        coreInstances,
		"coreinstances/status": coreInstanceStatus,
		"pipelines":            pipelines.Pipeline,
		"pipelines/status":     pipelines.Status,
		"pipelines/scale":      pipelines.Scale,
		"pipelines/tap":        tap.NewREST(pipelines.Pipeline),
		"pipelinesecrets":      secrets,
		"resourceprofiles":     profiles,
	}
	if metricStore != nil {
		out["pipelines/metrics"] = metrics.NewPipelineREST(metricStore, pipelines.Pipeline)
		out["coreinstances/metrics"] = metrics.NewCoreInstanceREST(metricStore, coreInstances, pipelines.Pipeline)
	}
	return out, nil
}
