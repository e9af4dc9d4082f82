package bench

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	"k8s.io/apiserver/pkg/storage/etcd3/testserver"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	"k8s.io/utils/clock"

	"github.com/calyptia/core-management-plane/internal/pgtest"
	"github.com/calyptia/core-management-plane/pkg/storage/postgres"
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

// Backend names, as they appear in benchmark names ("backend=...").
const (
	backendPostgres = "postgres"
	backendEtcd     = "etcd3"
	backendInsert   = "insert"
)

// storeBackends are the two storage.Interface implementations compared.
var storeBackends = []string{backendPostgres, backendEtcd}

// poolConns is the pool size of the PostgreSQL store: enough that the
// benchmarks' readers never wait for a connection (the upstream write
// benchmark runs 25×GOMAXPROCS writers, each read-modify-write reads first).
const poolConns = 32

func newPod() runtime.Object     { return &example.Pod{} }
func newPodList() runtime.Object { return &example.PodList{} }

// Both stores get the same codec and the transformer an API server without
// encryption at rest uses, so they store the same bytes.
func codec() runtime.Codec { return apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion) }

func transformer() value.Transformer { return identity.NewEncryptCheckTransformer() }

// newStore returns a fresh, empty pod store of the named backend.
func newStore(b *testing.B, backend string) storage.Interface {
	b.Helper()
	switch backend {
	case backendPostgres:
		pool := newPool(b, pgtest.NewDatabase(b), poolConns)
		return newPostgresStore(b, pool)
	case backendEtcd:
		return newEtcdStore(b)
	}
	b.Fatalf("unknown backend %q", backend)
	return nil
}

// newPool connects to the database at url with at most conns connections.
func newPool(b *testing.B, url string, conns int32) *pgxpool.Pool {
	b.Helper()
	return newPoolWith(b, url, conns)
}

func newPoolWith(b *testing.B, url string, conns int32, opts ...func(*pgxpool.Config)) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatalf("parsing database URL: %v", err)
	}
	cfg.MaxConns = conns
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatalf("connecting to benchmark database: %v", err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// newPostgresStore starts a backend on pool (one "instance" of the server)
// and returns its pod store. Compaction is off, as the etcd3 store's is, so
// that the upstream list benchmark's exact-revision reads find their history.
func newPostgresStore(b *testing.B, pool *pgxpool.Pool) storage.Interface {
	b.Helper()
	backend, err := postgres.NewBackend(context.Background(), pool, postgres.Options{CompactionInterval: -1})
	if err != nil {
		b.Fatalf("starting postgres backend: %v", err)
	}
	b.Cleanup(backend.Close)
	s, err := backend.NewStore(postgres.StoreConfig{
		Codec:          codec(),
		NewFunc:        newPod,
		NewListFunc:    newPodList,
		ResourcePrefix: "/pods/",
		GroupResource:  schema.GroupResource{Resource: "pods"},
		Transformer:    transformer(),
	})
	if err != nil {
		b.Fatalf("creating postgres store: %v", err)
	}
	return s
}

// newEtcdStore starts an embedded etcd (as etcd3/store_test.go's testSetup
// does: fsync off, see testserver.NewTestConfig) and returns an etcd3 pod store on it.
func newEtcdStore(b *testing.B) storage.Interface {
	b.Helper()
	return newEtcdStoreOn(b, testserver.RunEtcd(b, nil))
}

// newEtcdStoreOn returns an etcd3 pod store on client; several stores on one
// client stand for several API server instances on one etcd.
func newEtcdStoreOn(b *testing.B, client *kubernetes.Client) storage.Interface {
	b.Helper()
	versioner := storage.APIObjectVersioner{}
	// A zero interval disables compaction, as in upstream's testSetup.
	compactor := etcd3.NewCompactor(client.Client, 0, clock.RealClock{}, nil)
	b.Cleanup(compactor.Stop)
	c := codec()
	s, err := etcd3.New(client, compactor, c, newPod, newPodList, "", "/pods/",
		schema.GroupResource{Resource: "pods"}, transformer(), etcd3.NewDefaultLeaseManagerConfig(),
		etcd3.NewDefaultDecoder(c, versioner), versioner)
	if err != nil {
		b.Fatalf("creating etcd3 store: %v", err)
	}
	b.Cleanup(s.Close)
	return s
}
