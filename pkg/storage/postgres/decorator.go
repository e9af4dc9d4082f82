package postgres

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	cacherstorage "k8s.io/apiserver/pkg/storage/cacher"
	storagefeature "k8s.io/apiserver/pkg/storage/feature"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"
)

// Decorator builds, for each resource, a PostgreSQL store with the upstream
// watch cache in front of it, as registry.StorageWithCacher does for etcd.
func (b *Backend) Decorator() generic.StorageDecorator {
	return func(config *storagebackend.ConfigForResource, resourcePrefix string,
		keyFunc func(obj runtime.Object) (string, error), newFunc, newListFunc func() runtime.Object,
		getAttrsFunc storage.AttrFunc, triggerFuncs storage.IndexerFuncs, indexers *cache.Indexers) (storage.Interface, factory.DestroyFunc, error) {
		s, err := b.RawDecorator()(config, resourcePrefix, keyFunc, newFunc, newListFunc, getAttrsFunc, triggerFuncs, indexers)
		if err != nil {
			return nil, func() {}, err
		}
		window := config.EventsHistoryWindow
		if window < cacherstorage.DefaultEventFreshDuration {
			window = cacherstorage.DefaultEventFreshDuration
		}
		cacher, err := cacherstorage.NewCacherFromConfig(cacherstorage.Config{
			Storage:             s,
			Versioner:           storage.APIObjectVersioner{},
			GroupResource:       config.GroupResource,
			EventsHistoryWindow: window,
			ResourcePrefix:      resourcePrefix,
			KeyFunc:             keyFunc,
			NewFunc:             newFunc,
			NewListFunc:         newListFunc,
			GetAttrsFunc:        getAttrsFunc,
			IndexerFuncs:        triggerFuncs,
			Indexers:            indexers,
			Codec:               config.Codec,
		})
		if err != nil {
			return nil, func() {}, err
		}
		delegator := cacherstorage.NewCacheDelegator(cacher, s)
		var once sync.Once
		return delegator, func() {
			once.Do(func() {
				delegator.Stop()
				cacher.Stop()
			})
		}, nil
	}
}

// RawDecorator builds a PostgreSQL store per resource without a watch cache.
func (b *Backend) RawDecorator() func(config *storagebackend.ConfigForResource, resourcePrefix string,
	keyFunc func(obj runtime.Object) (string, error), newFunc, newListFunc func() runtime.Object,
	getAttrsFunc storage.AttrFunc, triggerFuncs storage.IndexerFuncs, indexers *cache.Indexers) (storage.Interface, error) {
	return func(config *storagebackend.ConfigForResource, resourcePrefix string,
		_ func(obj runtime.Object) (string, error), newFunc, newListFunc func() runtime.Object,
		_ storage.AttrFunc, _ storage.IndexerFuncs, _ *cache.Indexers) (storage.Interface, error) {
		return b.NewStore(StoreConfig{
			Codec:          config.Codec,
			NewFunc:        newFunc,
			NewListFunc:    newListFunc,
			Prefix:         config.Prefix,
			ResourcePrefix: resourcePrefix,
			GroupResource:  config.GroupResource,
			Transformer:    config.Transformer,
			// As the etcd3 storage factory does when the feature is on.
			ReportCorruptObjects: unsafeDeletionEnabled(),
		})
	}
}

// The watch cache serves consistent reads itself only when
// storagefeature.DefaultFeatureSupportChecker says the backend supports
// RequestWatchProgress, and that checker only knows how to ask etcd. This
// backend does support it (see eventLog.requestProgress), so it answers the
// checker's version probe as an etcd that has the feature would.
type progressSupport struct{}

const progressSupportEndpoint = "postgres://core-management-plane"

func (progressSupport) Endpoints() []string { return []string{progressSupportEndpoint} }
func (progressSupport) Status(context.Context, string) (*clientv3.StatusResponse, error) {
	return &clientv3.StatusResponse{Version: "3.6.0"}, nil
}

var announceOnce sync.Once

func announceWatchProgressSupport() {
	announceOnce.Do(func() {
		storagefeature.DefaultFeatureSupportChecker.CheckClient(context.Background(), progressSupport{}, storage.RequestWatchProgress)
	})
}
