package postgres

import (
	"context"
	"fmt"
	"path"
	"reflect"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	"k8s.io/apiserver/pkg/storage/value"
)

// authenticatedData binds a stored value to its key, as the etcd3 store does,
// so an encrypted value cannot be moved to another key.
type authenticatedData string

func (d authenticatedData) AuthenticatedData() []byte { return []byte(d) }

// StoreConfig is what one resource's store needs.
type StoreConfig struct {
	Codec runtime.Codec
	// NewFunc and NewListFunc make the resource's object and list.
	NewFunc, NewListFunc func() runtime.Object
	// Prefix is the storage prefix of every key (e.g. "/registry").
	Prefix string
	// ResourcePrefix is the resource's own prefix (e.g. "/core.calyptia.com/pipelines").
	ResourcePrefix string
	GroupResource  schema.GroupResource
	// Transformer encrypts values at rest; nil stores them as they are.
	Transformer value.Transformer
	// ReportCorruptObjects reports values that fail to transform or decode
	// as corrupt objects, which the registry can then delete unsafely
	// (the AllowUnsafeMalformedObjectDeletion feature).
	ReportCorruptObjects bool
}

// store is a storage.Interface for one resource.
type store struct {
	b              *Backend
	codec          runtime.Codec
	versioner      storage.Versioner
	decoder        etcd3.Decoder
	newFunc        func() runtime.Object
	newListFunc    func() runtime.Object
	pathPrefix     string
	resourcePrefix string
	groupResource  schema.GroupResource

	// reportCorrupt marks data that fails to transform or decode as corrupt,
	// for unsafe deletion.
	reportCorrupt bool

	mu          sync.RWMutex
	transformer value.Transformer
	// estimateSizes: Stats reports the average object size.
	estimateSizes bool
}

var _ storage.Interface = (*store)(nil)

// NewStore returns the store of one resource.
func (b *Backend) NewStore(c StoreConfig) (storage.Interface, error) {
	return b.newStore(c)
}

func (b *Backend) newStore(c StoreConfig) (*store, error) {
	pathPrefix := path.Join("/", c.Prefix)
	if !strings.HasSuffix(pathPrefix, "/") {
		pathPrefix += "/"
	}
	switch {
	case c.ResourcePrefix == "":
		return nil, fmt.Errorf("resourcePrefix cannot be empty")
	case c.ResourcePrefix == "/":
		return nil, fmt.Errorf("resourcePrefix cannot be /")
	case !strings.HasPrefix(c.ResourcePrefix, "/"):
		return nil, fmt.Errorf("resourcePrefix needs to start from /")
	}
	t := c.Transformer
	if t == nil {
		t = identityTransformer{}
	}
	versioner := storage.APIObjectVersioner{}
	var decoder etcd3.Decoder = etcd3.NewDefaultDecoder(c.Codec, versioner)
	corrupt := c.ReportCorruptObjects
	if corrupt {
		decoder = corruptInterpretingDecoder{decoder}
	}
	return &store{
		b:              b,
		codec:          c.Codec,
		versioner:      versioner,
		decoder:        decoder,
		newFunc:        c.NewFunc,
		newListFunc:    c.NewListFunc,
		pathPrefix:     pathPrefix,
		resourcePrefix: c.ResourcePrefix,
		groupResource:  c.GroupResource,
		transformer:    t,
		reportCorrupt:  corrupt,
	}, nil
}

type identityTransformer struct{}

func (identityTransformer) TransformFromStorage(_ context.Context, data []byte, _ value.Context) ([]byte, bool, error) {
	return data, false, nil
}
func (identityTransformer) TransformToStorage(_ context.Context, data []byte, _ value.Context) ([]byte, error) {
	return data, nil
}

func (s *store) getTransformer() value.Transformer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.reportCorrupt {
		return corruptInterpretingTransformer{s.transformer}
	}
	return s.transformer
}

// setTransformer swaps the transformer and returns a function that restores it.
func (s *store) setTransformer(t value.Transformer) func() {
	s.mu.Lock()
	old := s.transformer
	s.transformer = t
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.transformer = old
		s.mu.Unlock()
	}
}

func (s *store) Versioner() storage.Versioner { return s.versioner }

func (s *store) CompactRevision() int64 { return s.b.CompactRevision() }

// ReadinessCheck fails while the backend refuses to serve (its revision
// went backwards) or its event log lags; it sends no query, since the
// registry may call it often.
func (s *store) ReadinessCheck() error { return s.b.watchHealth() }

func (s *store) RequestWatchProgress(ctx context.Context) error {
	return s.b.events.requestProgress(ctx)
}

func (s *store) GetCurrentResourceVersion(ctx context.Context) (uint64, error) {
	rev, err := s.b.currentRevision(ctx)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return 0, fmt.Errorf("the current resource version must be greater than 0")
	}
	return uint64(rev), nil
}

func (s *store) prepareKey(key string, recursive bool) (string, error) {
	key, err := storage.PrepareKey(s.resourcePrefix, key, recursive)
	if err != nil {
		return "", err
	}
	return s.pathPrefix + strings.TrimPrefix(key, "/"), nil
}

// validateMinimumResourceVersion enforces that data returned is at least as
// new as the resource version asked for.
func (s *store) validateMinimumResourceVersion(minimumResourceVersion string, actualRevision uint64) error {
	if minimumResourceVersion == "" {
		return nil
	}
	minimumRV, err := s.versioner.ParseResourceVersion(minimumResourceVersion)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %v", err))
	}
	if minimumRV > actualRevision {
		return storage.NewTooLargeResourceVersionError(minimumRV, actualRevision, 0)
	}
	return nil
}

// itemMaker makes empty items of the list v points into.
func itemMaker(v reflect.Value) func() runtime.Object {
	elem := v.Type().Elem()
	return func() runtime.Object {
		return reflect.New(elem).Interface().(runtime.Object)
	}
}
