package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3/testserver"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

// watchSamples is the least number of writes whose delivery is timed per
// case, so that the 99th percentile rests on enough samples.
const watchSamples = 1000

// watchWriters are the concurrencies of BenchmarkWatchLatency: an idle
// store with one writer, and one under write load.
var watchWriters = []int{1, 16}

// BenchmarkWatchLatency measures cross-instance watch delivery: two store
// instances on one database (for etcd3: two stores with their own clients on
// one etcd); a watch on B, creates on A; the time from just before each
// Create is called, and from when it returned, until B's watch delivers its
// event.
func BenchmarkWatchLatency(b *testing.B) {
	pod := storagetesting.PrepareBenchmarkData(1, 1, 1).Pods[0]
	for _, backend := range storeBackends {
		b.Run("backend="+backend, func(b *testing.B) {
			a, other := newInstancePair(b, backend)
			for _, writers := range watchWriters {
				b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
					runWatchLatency(b, a, other, writers, pod)
				})
			}
		})
	}
}

// newInstancePair returns two stores that share their data but nothing else,
// as two API server replicas do.
func newInstancePair(b *testing.B, backend string) (a, other storage.Interface) {
	switch backend {
	case backendPostgres:
		url := pgtest.NewDatabase(b)
		return newPostgresStore(b, newPool(b, url, poolConns)), newPostgresStore(b, newPool(b, url, poolConns))
	case backendEtcd:
		client := testserver.RunEtcd(b, nil)
		second, err := kubernetes.New(clientv3.Config{Endpoints: client.Endpoints(), DialTimeout: 10 * time.Second})
		if err != nil {
			b.Fatalf("connecting a second etcd client: %v", err)
		}
		b.Cleanup(func() { _ = second.Close() })
		return newEtcdStoreOn(b, client), newEtcdStoreOn(b, second)
	}
	b.Fatalf("unknown backend %q", backend)
	return nil, nil
}

var watchRun atomic.Int64

func runWatchLatency(b *testing.B, a, other storage.Interface, writers int, pod *example.Pod) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := max(b.N, watchSamples)
	run := watchRun.Add(1)
	prefix := fmt.Sprintf("lat-%d-", run)

	rv, err := a.GetCurrentResourceVersion(ctx)
	if err != nil {
		b.Fatal(err)
	}
	w, err := other.Watch(ctx, "/pods/", storage.ListOptions{
		Recursive:       true,
		ResourceVersion: strconv.FormatUint(rv, 10),
		Predicate:       storage.Everything,
	})
	if err != nil {
		b.Fatalf("watching: %v", err)
	}
	defer w.Stop()

	before := make([]time.Time, n)
	after := make([]time.Time, n)
	received := make([]time.Time, n)
	done := make(chan error, 1)
	go func() {
		got := 0
		for got < n {
			ev, ok := <-w.ResultChan()
			now := time.Now()
			if !ok {
				done <- fmt.Errorf("watch ended after %d of %d events", got, n)
				return
			}
			if ev.Type == watch.Error {
				done <- fmt.Errorf("watch error after %d events: %v", got, ev.Object)
				return
			}
			p, isPod := ev.Object.(*example.Pod)
			if ev.Type != watch.Added || !isPod || !strings.HasPrefix(p.Name, prefix) {
				continue
			}
			i, err := strconv.Atoi(strings.TrimPrefix(p.Name, prefix))
			if err != nil || i < 0 || i >= n || !received[i].IsZero() {
				done <- fmt.Errorf("unexpected or repeated event for %q", p.Name)
				return
			}
			received[i] = now
			got++
		}
		done <- nil
	}()

	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	b.ResetTimer()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p := pod.DeepCopy()
				p.Name = prefix + strconv.Itoa(i)
				key := fmt.Sprintf("/pods/%s/%s", p.Namespace, p.Name)
				before[i] = time.Now()
				if err := a.Create(ctx, key, p, &example.Pod{}, 0); err != nil {
					b.Errorf("create: %v", err)
					failed.Store(true)
				}
				after[i] = time.Now()
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		return
	}
	select {
	case err := <-done:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(time.Minute):
		b.Fatal("watch did not deliver every event within a minute")
	}
	b.StopTimer()

	fromBefore := make([]time.Duration, n)
	fromReturn := make([]time.Duration, n)
	for i := range n {
		fromBefore[i] = received[i].Sub(before[i])
		fromReturn[i] = received[i].Sub(after[i])
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(n), "ns/op")
	b.ReportMetric(percentileMs(fromBefore, 50), "p50-ms")
	b.ReportMetric(percentileMs(fromBefore, 99), "p99-ms")
	b.ReportMetric(percentileMs(fromBefore, 100), "max-ms")
	b.ReportMetric(percentileMs(fromReturn, 50), "p50-after-return-ms")
	b.ReportMetric(percentileMs(fromReturn, 99), "p99-after-return-ms")
}

// percentileMs is the p-th percentile (nearest rank) of ds in milliseconds.
func percentileMs(ds []time.Duration, p int) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100 // ceil(p/100 * n)
	rank = min(max(rank, 1), len(s))
	return float64(s[rank-1]) / float64(time.Millisecond)
}
