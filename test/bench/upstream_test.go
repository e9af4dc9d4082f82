package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
)

// The upstream benchmarks' dimensions, scaled down from their 150,000 pods
// so that the whole run fits in minutes on two cores: 10,000 pods in 50
// namespaces of 200, on 500 nodes (20 pods each).
const (
	benchNamespaces       = 50
	benchPodsPerNamespace = 200
	benchNodes            = 500
	benchPods             = benchNamespaces * benchPodsPerNamespace
)

// BenchmarkWriteThroughput is upstream's RunBenchmarkWriteThroughput (25
// writers per GOMAXPROCS doing delete+create or patch, beside background
// watchers or listers) on each store, with the same pods.
func BenchmarkWriteThroughput(b *testing.B) {
	data := storagetesting.PrepareBenchmarkData(benchNamespaces, benchPodsPerNamespace, benchNodes)
	for _, backend := range storeBackends {
		b.Run("backend="+backend, func(b *testing.B) {
			ctx := context.Background()
			store := newStore(b, backend)
			// Upstream creates the pods one by one first; creating them
			// concurrently beforehand only saves time (its own creates then
			// find them there).
			precreate(ctx, b, store, data)
			storagetesting.RunBenchmarkWriteThroughput(ctx, b, store, data, false, nil)
		})
	}
}

// BenchmarkList creates the same 10,000 pods in each store, then runs
// upstream's RunBenchmarkStoreList (4 concurrent listers per GOMAXPROCS) and
// single lists of all 10,000.
func BenchmarkList(b *testing.B) {
	data := storagetesting.PrepareBenchmarkData(benchNamespaces, benchPodsPerNamespace, benchNodes)
	for _, backend := range storeBackends {
		b.Run("backend="+backend, func(b *testing.B) {
			ctx := context.Background()
			store := newStore(b, backend)
			precreate(ctx, b, store, data)
			b.Run("StoreList", func(b *testing.B) {
				storagetesting.RunBenchmarkStoreList(ctx, b, store, data, false)
			})
			b.Run("Full", func(b *testing.B) { benchmarkFullList(ctx, b, store, len(data.Pods)) })
		})
	}
}

// benchmarkFullList times one list of every pod at a time: the latest
// state, an exact (historical) revision, and in pages of 500.
func benchmarkFullList(ctx context.Context, b *testing.B, store storage.Interface, want int) {
	head, err := store.GetCurrentResourceVersion(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name  string
		rv    string
		match metav1.ResourceVersionMatch
		limit int64
	}{
		{name: "RV=latest"},
		{name: "RV=exact", rv: fmt.Sprint(head), match: metav1.ResourceVersionMatchExact},
		{name: "RV=latest/Paginate=500", limit: 500},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ResetTimer()
			for range b.N {
				opts := storage.ListOptions{
					Recursive:            true,
					ResourceVersion:      c.rv,
					ResourceVersionMatch: c.match,
					Predicate:            storage.Everything,
				}
				opts.Predicate.Limit = c.limit
				got := 0
				for {
					out := &example.PodList{}
					if err := store.GetList(ctx, "/pods/", opts, out); err != nil {
						b.Fatalf("listing pods: %v", err)
					}
					got += len(out.Items)
					if out.Continue == "" {
						break
					}
					opts.Predicate.Continue = out.Continue
					opts.ResourceVersion, opts.ResourceVersionMatch = "", ""
				}
				if got != want {
					b.Fatalf("listed %d pods, want %d", got, want)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/list")
		})
	}
}

// precreate creates data's pods with 16 concurrent writers. Each create is
// one revision from revision 2 on, as with upstream's PrecreateBenchmarkPods
// (whose list benchmark reads at exact revisions up to 1+len(pods)), only
// faster.
func precreate(ctx context.Context, b *testing.B, store storage.Interface, data storagetesting.BenchmarkData) {
	b.Helper()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(data.Pods) {
					return
				}
				if err := store.Create(ctx, data.PodKeys[i], data.Pods[i], &example.Pod{}, 0); err != nil {
					errs <- fmt.Errorf("creating %s: %w", data.PodKeys[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	if rv, err := store.GetCurrentResourceVersion(ctx); err != nil || rv != uint64(1+len(data.Pods)) {
		b.Fatalf("after creating %d pods the revision is %d (%v), want %d", len(data.Pods), rv, err, 1+len(data.Pods))
	}
	b.Logf("created %d pods in %v", len(data.Pods), time.Since(start).Round(time.Millisecond))
}
