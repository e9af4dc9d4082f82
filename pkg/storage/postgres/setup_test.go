package postgres

import (
	"context"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
}

func newPod() runtime.Object     { return &example.Pod{} }
func newPodList() runtime.Object { return &example.PodList{} }

// testOptions are the backend options of the conformance tests: no
// automatic compaction (tests compact explicitly) and quick bookmarks.
var testOptions = Options{CompactionInterval: -1, ProgressNotifyInterval: time.Second}

func newTestBackend(t testing.TB, opts Options) (*Backend, string) {
	t.Helper()
	pool, url := pgtest.NewPool(t)
	b, err := NewBackend(context.Background(), pool, opts)
	if err != nil {
		t.Fatalf("starting backend: %v", err)
	}
	t.Cleanup(b.Close)
	return b, url
}

type setupConfig struct {
	codec       runtime.Codec
	transformer value.Transformer
	opts        Options
}

type setupOption func(*setupConfig)

func withCodec(c runtime.Codec) setupOption { return func(s *setupConfig) { s.codec = c } }
func withTransformer(t value.Transformer) setupOption {
	return func(s *setupConfig) { s.transformer = t }
}

func testSetup(t testing.TB, opts ...setupOption) (context.Context, *store, *Backend) {
	t.Helper()
	cfg := setupConfig{
		codec:       apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion),
		transformer: storagetesting.NewPrefixTransformer([]byte("test!"), false),
		opts:        testOptions,
	}
	for _, o := range opts {
		o(&cfg)
	}
	b, _ := newTestBackend(t, cfg.opts)
	s, err := b.newStore(StoreConfig{
		Codec:          cfg.codec,
		NewFunc:        newPod,
		NewListFunc:    newPodList,
		ResourcePrefix: "/pods/",
		GroupResource:  schema.GroupResource{Resource: "pods"},
		Transformer:    cfg.transformer,
	})
	if err != nil {
		t.Fatal(err)
	}
	return context.Background(), s, b
}

// compaction compacts the backend as etcd3's compactStorage test helper does.
func compaction(b *Backend) storagetesting.Compaction {
	return func(ctx context.Context, t *testing.T, resourceVersion string) {
		rv, err := strconv.ParseInt(resourceVersion, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Compact(ctx, rv); err != nil {
			t.Fatal(err)
		}
	}
}

// increaseRV writes a key outside every resource, as etcd3's test helper does.
func increaseRV(b *Backend) storagetesting.IncreaseRVFunc {
	return func(ctx context.Context, t *testing.T) int64 {
		r := b.submit(ctx, &write{key: []byte("increaseRV"), value: []byte("ok"), expect: anyRevision})
		if r.err != nil || !r.ok {
			t.Fatalf("increasing revision: %v", r.err)
		}
		return r.rev
	}
}

// storeWithPrefixTransformer lets tests swap the prefix transformer.
type storeWithPrefixTransformer struct{ *store }

func (s *storeWithPrefixTransformer) UpdatePrefixTransformer(modifier storagetesting.PrefixTransformerModifier) func() {
	s.mu.RLock()
	orig := s.transformer.(*storagetesting.PrefixTransformer)
	s.mu.RUnlock()
	copied := *orig
	return s.setTransformer(modifier(&copied))
}

// storeWithTransformerOverride lets tests swap any transformer.
type storeWithTransformerOverride struct {
	storage.Interface
	store *store
}

func (s *storeWithTransformerOverride) UpdateTransformer(modifier storagetesting.TransformerModifier) func() {
	s.store.mu.RLock()
	cur := s.store.transformer
	s.store.mu.RUnlock()
	return s.store.setTransformer(modifier(cur))
}

// checkStorageInvariants checks that a created object is stored encoded and
// transformed, reading the row itself.
func checkStorageInvariants(b *Backend, s *store) storagetesting.KeyValidation {
	return func(ctx context.Context, t *testing.T, key string) {
		row, _, err := b.get(ctx, []byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if row == nil {
			t.Fatalf("key %q not stored", key)
		}
		const prefix = "test!"
		if string(row.value[:len(prefix)]) != prefix {
			t.Fatalf("stored value of %q lacks the transformer's prefix: %q", key, row.value)
		}
		if _, _, err := codecs.UniversalDeserializer().Decode(row.value[len(prefix):], nil, nil); err != nil {
			t.Fatalf("stored value of %q does not decode: %v", key, err)
		}
	}
}
