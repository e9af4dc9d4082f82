package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

// ackedWrite is a write the store reported as done.
type ackedWrite struct {
	typ watch.EventType
	key string
	rev int64
	op  string // the "op" label written, "" for deletions
}

// TestOrderUnderConcurrency runs concurrent writers against two backends on
// one database and checks that a watcher on each backend sees every
// committed write exactly once, in revision order, with no revision missing,
// and that replaying its events gives the final list.
func TestOrderUnderConcurrency(t *testing.T) {
	const (
		writers         = 8
		opsPerWriter    = 500
		keysPerNS       = 16
		attemptsPerOp   = 6
		deliveryTimeout = 2 * time.Minute
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	url := pgtest.NewDatabase(t)
	opts := Options{CompactionInterval: -1} // every revision must stay a pod write
	stores := []storage.Interface{
		newPodStore(t, newBackendAt(t, url, opts)),
		newPodStore(t, newBackendAt(t, url, opts)),
	}

	start, err := stores[0].GetCurrentResourceVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	startRev := int64(start)
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	recorders := []*watchRecorder{
		startWatchRecorder(watchCtx, "instance-0", stores[0], startRev, false),
		startWatchRecorder(watchCtx, "instance-1", stores[1], startRev, false),
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	var (
		mu    sync.Mutex
		acked = map[int64]ackedWrite{}
		wg    sync.WaitGroup
		errs  = make(chan error, writers)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range opsPerWriter {
				// Spread each writer's operations over both instances.
				s := stores[(w+i)%2]
				ns := fmt.Sprintf("ns-%d", rng.IntN(2))
				name := fmt.Sprintf("pod-%d", rng.IntN(keysPerNS))
				op := fmt.Sprintf("w%d-op%d", w, i)
				kind := []watch.EventType{watch.Added, watch.Modified, watch.Deleted}[rng.IntN(3)]
				// Other writers share the keys: when the chosen operation
				// does not apply to the key's state, do one that does.
				for range attemptsPerOp {
					a, err := writePod(ctx, s, kind, ns, name, op)
					switch {
					case err == nil:
						mu.Lock()
						if prev, dup := acked[a.rev]; dup {
							mu.Unlock()
							errs <- fmt.Errorf("revision %d acknowledged twice: %+v and %+v", a.rev, prev, a)
							return
						}
						acked[a.rev] = a
						mu.Unlock()
					case storage.IsExist(err):
						kind = []watch.EventType{watch.Modified, watch.Deleted}[rng.IntN(2)]
						continue
					case storage.IsNotFound(err):
						kind = watch.Added
						continue
					default:
						errs <- fmt.Errorf("writer %d: %s %s/%s: %w", w, kind, ns, name, err)
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	final, err := stores[1].GetCurrentResourceVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finalRev := int64(final)
	t.Logf("%d writes acknowledged, revisions %d..%d", len(acked), startRev+1, finalRev)
	if got := int64(len(acked)); got != finalRev-startRev {
		t.Fatalf("%d writes acknowledged but the revision moved by %d", got, finalRev-startRev)
	}
	if len(acked) < writers*opsPerWriter*3/4 {
		t.Fatalf("only %d of %d operations wrote; the test does not exercise enough writes", len(acked), writers*opsPerWriter)
	}

	for i, r := range recorders {
		r.waitFor(t, finalRev, deliveryTimeout)
		want, listRev, err := listPods(ctx, stores[i])
		if err != nil {
			t.Fatal(err)
		}
		if listRev != finalRev {
			t.Fatalf("list of instance %d at revision %d, want %d", i, listRev, finalRev)
		}
		r.check(t, want)
		checkEventsMatchAcks(t, r, startRev, finalRev, acked)
	}
	stopWatching()
	for _, r := range recorders {
		<-r.done
	}
}

// checkEventsMatchAcks checks that r saw exactly one event per revision
// after startRev up to finalRev, each the write acknowledged at that revision.
func checkEventsMatchAcks(t *testing.T, r *watchRecorder, startRev, finalRev int64, acked map[int64]ackedWrite) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[int64]int, len(r.events))
	bad := 0
	for _, e := range r.events {
		seen[e.rev]++
		want, ok := acked[e.rev]
		opLabel := ""
		if e.typ != watch.Deleted {
			opLabel = e.pod.Labels["op"]
		}
		if !ok || want.typ != e.typ || want.key != e.key || want.op != opLabel {
			if bad++; bad <= 10 {
				t.Errorf("watcher %s: %s %s at %d (op %q), but the write acknowledged at that revision is %+v (found %v)",
					r.name, e.typ, e.key, e.rev, opLabel, want, ok)
			}
		}
	}
	var missing, repeated []int64
	for rev := startRev + 1; rev <= finalRev; rev++ {
		switch n := seen[rev]; {
		case n == 0:
			missing = append(missing, rev)
		case n > 1:
			repeated = append(repeated, rev)
		}
	}
	if len(missing) > 0 {
		t.Errorf("watcher %s missed %d revisions, first %v", r.name, len(missing), missing[:min(len(missing), 10)])
	}
	if len(repeated) > 0 {
		t.Errorf("watcher %s saw %d revisions more than once, first %v", r.name, len(repeated), repeated[:min(len(repeated), 10)])
	}
	if got, want := int64(len(r.events)), finalRev-startRev; got != want {
		t.Errorf("watcher %s saw %d events, want %d", r.name, got, want)
	}
}

// writePod does one create, update or delete of pod namespace/name and
// returns the write as acknowledged.
func writePod(ctx context.Context, s storage.Interface, kind watch.EventType, namespace, name, op string) (ackedWrite, error) {
	key := podKey(namespace, name)
	out := &example.Pod{}
	var err error
	switch kind {
	case watch.Added:
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"op": op}}}
		err = s.Create(ctx, key, pod, out, 0)
	case watch.Modified:
		err = s.GuaranteedUpdate(ctx, key, out, false, nil, func(in runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			p := in.(*example.Pod).DeepCopy()
			// A new label value every time: an update that changes nothing writes nothing.
			p.Labels = map[string]string{"op": op}
			return p, nil, nil
		}, nil)
	case watch.Deleted:
		op = ""
		err = s.Delete(ctx, key, out, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
	}
	if err != nil {
		return ackedWrite{}, err
	}
	rev, perr := metaRev(out)
	if perr != nil {
		return ackedWrite{}, fmt.Errorf("%s %s returned an object without a revision: %w", kind, key, perr)
	}
	return ackedWrite{typ: kind, key: key, rev: rev, op: op}, nil
}
