package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

// createWriters are the concurrencies of BenchmarkCreates.
var createWriters = []int{1, 16, 64}

// Backends of BenchmarkCreates besides the two stores. PostgreSQL commits
// with fsync here while the embedded etcd runs with UnsafeNoFsync (see
// testserver.NewTestConfig), so the PostgreSQL ones also run with
// synchronous_commit=off (set on their own sessions only): the comparison
// with etcd3 on equal durability.
const (
	backendPostgresAsync = "postgres-async"
	backendInsertAsync   = "insert-async"
)

// insertTable is "a similar table" to the store's kv: the ceiling is one
// autocommitted single-row INSERT per create, the least work a durable
// create can be.
const insertTable = `CREATE TABLE bench_kv (
	key        bytea PRIMARY KEY,
	mod_rev    bigint NOT NULL,
	create_rev bigint NOT NULL,
	value      bytea NOT NULL
)`

// BenchmarkCreates measures creates per second at 1, 16 and 64 concurrent
// writers on each store and with plain pgx INSERTs of the same encoded pod
// on the same database server.
func BenchmarkCreates(b *testing.B) {
	pod := storagetesting.PrepareBenchmarkData(1, 1, 1).Pods[0]
	for _, backend := range []string{backendPostgres, backendEtcd, backendInsert, backendPostgresAsync, backendInsertAsync} {
		b.Run("backend="+backend, func(b *testing.B) {
			create := newCreator(b, backend, pod)
			for _, writers := range createWriters {
				b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
					runCreates(b, writers, create)
				})
			}
		})
	}
}

// A creator creates the i-th object; i is unique over the whole benchmark.
type creator func(ctx context.Context, i int64) error

var createSeq atomic.Int64

func newCreator(b *testing.B, backend string, pod *example.Pod) creator {
	maxWriters := int32(createWriters[len(createWriters)-1])
	switch backend {
	case backendPostgres, backendEtcd:
		return storeCreator(newStore(b, backend), pod)
	case backendPostgresAsync:
		pool := newPoolWith(b, pgtest.NewDatabase(b), poolConns, asyncCommit)
		return storeCreator(newPostgresStore(b, pool), pod)
	case backendInsert, backendInsertAsync:
		var opts []func(*pgxpool.Config)
		if backend == backendInsertAsync {
			opts = append(opts, asyncCommit)
		}
		pool := newPoolWith(b, pgtest.NewDatabase(b), maxWriters, opts...)
		if _, err := pool.Exec(context.Background(), insertTable); err != nil {
			b.Fatalf("creating table: %v", err)
		}
		// The same bytes the stores write for this pod.
		value, err := runtime.Encode(codec(), pod)
		if err != nil {
			b.Fatal(err)
		}
		return func(ctx context.Context, i int64) error {
			key := fmt.Sprintf("/pods/%s/bench-%d", pod.Namespace, i)
			_, err := pool.Exec(ctx, "INSERT INTO bench_kv (key, mod_rev, create_rev, value) VALUES ($1, $2, $2, $3)",
				[]byte(key), i, value)
			return err
		}
	}
	b.Fatalf("unknown backend %q", backend)
	return nil
}

func asyncCommit(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["synchronous_commit"] = "off" }

func storeCreator(store storage.Interface, pod *example.Pod) creator {
	return func(ctx context.Context, i int64) error {
		p := pod.DeepCopy()
		p.Name = fmt.Sprintf("bench-%d", i)
		return store.Create(ctx, fmt.Sprintf("/pods/%s/%s", p.Namespace, p.Name), p, &example.Pod{}, 0)
	}
}

// runCreates makes b.N creates with the given number of concurrent writers
// and reports creates per second.
func runCreates(b *testing.B, writers int, create creator) {
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	b.ResetTimer()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) && !failed.Load() {
				if err := create(ctx, createSeq.Add(1)); err != nil {
					b.Errorf("create: %v", err)
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
