package apiserver

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	flowcontrolrequest "k8s.io/apiserver/pkg/util/flowcontrol/request"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

// StoragePrefix is the root of every key; keys are
// /registry/core.calyptia.com/<resource>/<namespace>/<name>.
const StoragePrefix = "/registry"

// restOptionsGetter puts every resource of the group on the storage backend.
// It replaces what EtcdOptions.ApplyTo builds for an etcd-backed server.
type restOptionsGetter struct {
	backend StorageBackend
	// transformers encrypt values at rest per resource; nil stores them as they are.
	transformers            value.ResourceTransformers
	countTracker            flowcontrolrequest.StorageObjectCountTracker
	deleteCollectionWorkers int
	enableGarbageCollection bool
}

var _ generic.RESTOptionsGetter = &restOptionsGetter{}

func (g *restOptionsGetter) GetRESTOptions(resource schema.GroupResource, _ runtime.Object) (generic.RESTOptions, error) {
	cfg := storagebackend.NewDefaultConfig(StoragePrefix, Codecs.LegacyCodec(corev1.SchemeGroupVersion))
	// Store every kind of the group in v1, whatever version a request used.
	cfg.EncodeVersioner = runtime.NewMultiGroupVersioner(corev1.SchemeGroupVersion, schema.GroupKind{Group: core.GroupName})
	cfg.StorageObjectCountTracker = g.countTracker
	if g.transformers != nil {
		cfg.Transformer = g.transformers.TransformerForResource(resource)
	} else {
		// Like kube-apiserver without an encryption config: plaintext, but
		// refusing to read values an encryption provider wrote.
		cfg.Transformer = identity.NewEncryptCheckTransformer()
	}
	workers := g.deleteCollectionWorkers
	if workers < 1 {
		workers = 1
	}
	return generic.RESTOptions{
		StorageConfig:             cfg.ForResource(resource),
		Decorator:                 g.backend.Decorator(),
		EnableGarbageCollection:   g.enableGarbageCollection,
		DeleteCollectionWorkers:   workers,
		ResourcePrefix:            resource.Group + "/" + resource.Resource,
		CountMetricPollPeriod:     cfg.CountMetricPollPeriod,
		StorageObjectCountTracker: g.countTracker,
	}, nil
}
