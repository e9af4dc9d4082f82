// Package apiserver assembles the core.calyptia.com API server: the scheme,
// the generic server configuration and the installed API group. Flags and
// process wiring live in cmd/cloud-api; resource behaviour lives in
// pkg/registry/core.
package apiserver

import (
	"context"
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/apis/core/install"
	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/metricstore"
	coreregistry "github.com/calyptia/core-management-plane/pkg/registry/core"
)

var (
	// Scheme holds every type the server serves, internal and versioned.
	Scheme = runtime.NewScheme()
	// Codecs serialises the Scheme's types.
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	install.Install(Scheme)

	// The generic server decodes list and watch options in the "v1" version
	// of the empty group, and answers with unversioned meta types.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned,
		&metav1.Status{},
		&metav1.APIVersions{},
		&metav1.APIGroupList{},
		&metav1.APIGroup{},
		&metav1.APIResourceList{},
	)
}

// StorageBackend is what the server needs from the object store (the
// PostgreSQL backend in production).
type StorageBackend interface {
	// Decorator builds the storage.Interface of one resource, with the watch
	// cache in front of it.
	Decorator() generic.StorageDecorator
	// ReadyCheck reports whether the store can serve requests.
	ReadyCheck(ctx context.Context) error
}

// ExtraConfig is the configuration specific to this server.
type ExtraConfig struct {
	// Storage holds every object. Required.
	Storage StorageBackend
	// DeleteCollectionWorkers is how many goroutines a DELETE on a collection uses.
	DeleteCollectionWorkers int
	// EnableGarbageCollection lets the garbage collector of the cluster
	// handle owner references (finalizers orphan/foreground).
	EnableGarbageCollection bool
	// Metrics keeps what agents report and answers the metrics subresources; nil leaves them out.
	Metrics metricstore.Store
}

// Config is the whole server configuration.
type Config struct {
	GenericConfig *genericapiserver.RecommendedConfig
	ExtraConfig   ExtraConfig
}

// Server is the running core.calyptia.com API server.
type Server struct {
	GenericAPIServer *genericapiserver.GenericAPIServer
	// Storage is the v1 REST storage of every resource, keyed as installed
	// ("pipelines", "pipelines/status", ...), for in-process readers.
	Storage map[string]rest.Storage
}

type completedConfig struct {
	GenericConfig genericapiserver.CompletedConfig
	ExtraConfig   *ExtraConfig
}

// CompletedConfig is a Config after Complete. Its private embedded pointer
// makes Complete the only way to get one.
type CompletedConfig struct {
	*completedConfig
}

// Complete fills in the fields derived from others: the REST options that
// put every resource on the storage backend, the storage health checks, the
// cached verification of the front proxy's certificate and the refusal of
// anonymous requests.
// It mutates the receiver.
func (cfg *Config) Complete() CompletedConfig {
	if cfg.ExtraConfig.Storage != nil {
		cfg.GenericConfig.RESTOptionsGetter = &restOptionsGetter{
			backend:                 cfg.ExtraConfig.Storage,
			transformers:            cfg.GenericConfig.ResourceTransformers,
			countTracker:            cfg.GenericConfig.StorageObjectCountTracker,
			deleteCollectionWorkers: cfg.ExtraConfig.DeleteCollectionWorkers,
			enableGarbageCollection: cfg.ExtraConfig.EnableGarbageCollection,
		}
		// Not a liveness check: restarting replicas does not bring a database back.
		check := healthz.NamedCheck("postgres", func(r *http.Request) error {
			return cfg.ExtraConfig.Storage.ReadyCheck(r.Context())
		})
		cfg.GenericConfig.HealthzChecks = append(cfg.GenericConfig.HealthzChecks, check)
		cfg.GenericConfig.ReadyzChecks = append(cfg.GenericConfig.ReadyzChecks, check)
	}
	if a := cfg.GenericConfig.Authentication.Authenticator; a != nil {
		// Requests forwarded by kube-apiserver, nearly all of them, skip re-verifying its
		// certificate's chain every time.
		if rh := cfg.GenericConfig.Authentication.RequestHeaderConfig; rh != nil {
			a = newFrontProxyFirst(rh, a)
		}
		cfg.GenericConfig.Authentication.Authenticator = rejectAnonymous{delegate: a}
	}
	c := completedConfig{
		GenericConfig: cfg.GenericConfig.Complete(),
		ExtraConfig:   &cfg.ExtraConfig,
	}
	return CompletedConfig{&c}
}

// New builds the server and installs the core.calyptia.com API group.
func (c completedConfig) New() (*Server, error) {
	if c.ExtraConfig.Storage == nil {
		return nil, fmt.Errorf("no storage backend configured")
	}
	genericServer, err := c.GenericConfig.New("cloud-api", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("creating generic API server: %w", err)
	}

	// The group's own parameter codec: the metrics subresources take options of their own
	// (start, interval), which metav1's codec does not know.
	apiGroupInfo := genericapiserver.NewDefaultAPIGroupInfo(core.GroupName, Scheme, runtime.NewParameterCodec(Scheme), Codecs)
	apiGroupInfo.NegotiatedSerializer = withoutProtobuf{Codecs}
	storage, err := coreregistry.NewStorage(Scheme, c.GenericConfig.RESTOptionsGetter, c.ExtraConfig.Metrics)
	if err != nil {
		return nil, fmt.Errorf("creating %s storage: %w", core.GroupName, err)
	}
	apiGroupInfo.VersionedResourcesStorageMap[corev1.SchemeGroupVersion.Version] = storage
	if err := genericServer.InstallAPIGroup(&apiGroupInfo); err != nil {
		return nil, fmt.Errorf("installing %s: %w", core.GroupName, err)
	}
	return &Server{GenericAPIServer: genericServer, Storage: storage}, nil
}

// withoutProtobuf offers every media type of its serializer but protobuf.
// The group's types have no protobuf encoding (like custom resources), so a
// client that prefers protobuf with a JSON fallback — kube-controller-manager's
// namespace controller among them — must be answered in JSON rather than
// fail to encode, or namespaces holding these objects never finish deleting.
type withoutProtobuf struct{ runtime.NegotiatedSerializer }

func (w withoutProtobuf) SupportedMediaTypes() []runtime.SerializerInfo {
	var out []runtime.SerializerInfo
	for _, info := range w.NegotiatedSerializer.SupportedMediaTypes() {
		if info.MediaType != runtime.ContentTypeProtobuf {
			out = append(out, info)
		}
	}
	return out
}
