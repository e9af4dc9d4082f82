package postgres

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/apimachinery/pkg/api/apitesting"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
)

// Helpers shared by the order, fault and bad-input tests: backends on a
// given database, pod stores, and a watch recorder that behaves like a
// reflector (re-watch from the last revision seen, relist on 410) while
// checking the watch contract on every event.

// newBackendAt starts a backend on its own pool to the database at url; the
// backend is closed before the pool when the test ends.
func newBackendAt(t testing.TB, url string, opts Options) *Backend {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := NewBackend(ctx, pool, opts)
	if err != nil {
		t.Fatalf("starting backend: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// newPodStore is the pods store of the conformance tests on b.
func newPodStore(t testing.TB, b *Backend) storage.Interface {
	t.Helper()
	s, err := b.NewStore(StoreConfig{
		Codec:          apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion),
		NewFunc:        newPod,
		NewListFunc:    newPodList,
		ResourcePrefix: "/pods/",
		GroupResource:  schema.GroupResource{Resource: "pods"},
		Transformer:    storagetesting.NewPrefixTransformer([]byte("test!"), false),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func podKey(namespace, name string) string { return "/pods/" + namespace + "/" + name }

func keyOfPod(p *example.Pod) string { return podKey(p.Namespace, p.Name) }

// listPods lists every pod at the current revision and returns them by key
// with the list's revision.
func listPods(ctx context.Context, s storage.Interface) (map[string]*example.Pod, int64, error) {
	list := &example.PodList{}
	if err := s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
		return nil, 0, err
	}
	rev, err := strconv.ParseInt(list.ResourceVersion, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("list resource version %q: %w", list.ResourceVersion, err)
	}
	pods := make(map[string]*example.Pod, len(list.Items))
	for i := range list.Items {
		pods[keyOfPod(&list.Items[i])] = &list.Items[i]
	}
	return pods, rev, nil
}

// diffPods describes how got differs from want, "" when they are equal.
func diffPods(want, got map[string]*example.Pod) string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s missing (want rv %s)", k, w.ResourceVersion))
		case !apiequality.Semantic.DeepEqual(w, g):
			out = append(out, fmt.Sprintf("%s differs: want rv %s labels %v, got rv %s labels %v", k, w.ResourceVersion, w.Labels, g.ResourceVersion, g.Labels))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s unexpected (rv %s)", k, g.ResourceVersion))
		}
	}
	if len(out) == 0 {
		return ""
	}
	sort.Strings(out)
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("... and %d more", len(out)-20))
	}
	return fmt.Sprint(out)
}

// recordedEvent is one watch event as the recorder saw it.
type recordedEvent struct {
	typ watch.EventType
	key string
	rev int64
	pod *example.Pod
}

// watchRecorder watches every pod the way a reflector does and checks the
// watch contract on each event: revisions rise by exactly one per event
// (every write in these tests is a pod write, so any gap is a lost event),
// ADDED only for absent keys, MODIFIED and DELETED only for present ones,
// nothing after an error event, and a channel never closes without one.
type watchRecorder struct {
	name string
	s    storage.Interface

	// allowGaps: revisions that are not pod writes exist (compaction
	// markers), so a skipped revision is recorded in gaps and judged at the
	// end (checkCoverage) instead of being a violation.
	allowGaps bool

	mu         sync.Mutex
	rev        int64 // newest revision applied
	state      map[string]*example.Pod
	events     []recordedEvent
	violations []string
	errorsSeen []string // error events and failed watch calls, with reason
	relists    int
	// gaps are revisions skipped inside one watch (allowGaps), and
	// relisted the revision ranges (from, to] a relist jumped over.
	gaps     []int64
	relisted [][2]int64
	done     chan struct{}
}

// startWatchRecorder watches s from startRev until ctx ends. allowErrors
// says whether watch errors are tolerated (then it re-watches or relists).
func startWatchRecorder(ctx context.Context, name string, s storage.Interface, startRev int64, allowErrors bool) *watchRecorder {
	r := &watchRecorder{name: name, s: s, rev: startRev, state: map[string]*example.Pod{}, done: make(chan struct{})}
	go r.run(ctx, allowErrors)
	return r
}

// startGapWatchRecorder is startWatchRecorder with errors allowed and with
// revisions that are not pod writes expected (see allowGaps).
func startGapWatchRecorder(ctx context.Context, name string, s storage.Interface, startRev int64) *watchRecorder {
	r := &watchRecorder{name: name, s: s, rev: startRev, state: map[string]*example.Pod{}, done: make(chan struct{}), allowGaps: true}
	go r.run(ctx, true)
	return r
}

func (r *watchRecorder) run(ctx context.Context, allowErrors bool) {
	defer close(r.done)
	for ctx.Err() == nil {
		w, err := r.s.Watch(ctx, "/pods/", storage.ListOptions{
			ResourceVersion: strconv.FormatInt(r.currentRev(), 10),
			Recursive:       true,
			Predicate:       storage.Everything,
		})
		if err != nil {
			r.noteError(allowErrors, fmt.Sprintf("starting watch: %v", err))
			pause(ctx, 100*time.Millisecond)
			continue
		}
		relist := r.consume(ctx, w, allowErrors)
		for relist && ctx.Err() == nil {
			pods, rev, err := listPods(ctx, r.s)
			if err != nil {
				r.noteError(allowErrors, fmt.Sprintf("relisting: %v", err))
				pause(ctx, 100*time.Millisecond)
				continue
			}
			r.mu.Lock()
			r.relisted = append(r.relisted, [2]int64{r.rev, rev})
			r.state, r.rev = pods, rev
			r.relists++
			r.mu.Unlock()
			relist = false
		}
	}
}

// consume reads w until it ends and tells whether a relist is needed.
func (r *watchRecorder) consume(ctx context.Context, w watch.Interface, allowErrors bool) (relist bool) {
	defer w.Stop()
	sawError := false
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return false
		case ev, ok = <-w.ResultChan():
		}
		if !ok {
			if !sawError && ctx.Err() == nil {
				r.violate("watch channel closed without an error event")
			}
			return relist
		}
		if sawError {
			r.violate(fmt.Sprintf("%s event after an error event", ev.Type))
			continue
		}
		switch ev.Type {
		case watch.Error:
			sawError = true
			st, isStatus := ev.Object.(*metav1.Status)
			if !isStatus {
				r.violate(fmt.Sprintf("error event carries %T, not a Status", ev.Object))
				continue
			}
			r.noteError(allowErrors, fmt.Sprintf("error event: %d %s: %s", st.Code, st.Reason, st.Message))
			if st.Reason == metav1.StatusReasonExpired || st.Reason == metav1.StatusReasonGone {
				relist = true
			}
		case watch.Bookmark:
			// Not asked for (no progress notify), but harmless if at a seen revision.
			if m, err := metaRev(ev.Object); err != nil || m < r.currentRev() {
				r.violate(fmt.Sprintf("bookmark at revision %d (err %v) behind %d", m, err, r.currentRev()))
			}
		default:
			r.apply(ev)
		}
	}
}

func metaRev(obj runtime.Object) (int64, error) {
	p, ok := obj.(*example.Pod)
	if !ok {
		return 0, fmt.Errorf("object is %T", obj)
	}
	return strconv.ParseInt(p.ResourceVersion, 10, 64)
}

func (r *watchRecorder) apply(ev watch.Event) {
	p, ok := ev.Object.(*example.Pod)
	if !ok {
		r.violate(fmt.Sprintf("%s event carries %T", ev.Type, ev.Object))
		return
	}
	rev, err := strconv.ParseInt(p.ResourceVersion, 10, 64)
	if err != nil {
		r.violate(fmt.Sprintf("%s event with resource version %q", ev.Type, p.ResourceVersion))
		return
	}
	key := keyOfPod(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case rev == r.rev+1:
	case r.allowGaps && rev > r.rev:
		for g := r.rev + 1; g < rev; g++ {
			r.gaps = append(r.gaps, g)
		}
	default:
		r.violations = append(r.violations, fmt.Sprintf("%s %s at revision %d after revision %d (want %d)", ev.Type, key, rev, r.rev, r.rev+1))
	}
	if rev > r.rev {
		r.rev = rev
	}
	_, present := r.state[key]
	switch ev.Type {
	case watch.Added:
		if present {
			r.violations = append(r.violations, fmt.Sprintf("ADDED %s at %d but it exists", key, rev))
		}
		r.state[key] = p
	case watch.Modified:
		if !present {
			r.violations = append(r.violations, fmt.Sprintf("MODIFIED %s at %d but it does not exist", key, rev))
		}
		r.state[key] = p
	case watch.Deleted:
		if !present {
			r.violations = append(r.violations, fmt.Sprintf("DELETED %s at %d but it does not exist", key, rev))
		}
		delete(r.state, key)
	default:
		r.violations = append(r.violations, fmt.Sprintf("unexpected event type %q", ev.Type))
	}
	r.events = append(r.events, recordedEvent{typ: ev.Type, key: key, rev: rev, pod: p})
}

func (r *watchRecorder) currentRev() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rev
}

func (r *watchRecorder) violate(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.violations = append(r.violations, msg)
}

func (r *watchRecorder) noteError(allowed bool, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errorsSeen = append(r.errorsSeen, msg)
	if !allowed {
		r.violations = append(r.violations, msg)
	}
}

// waitFor waits until the recorder has applied revision rev.
func (r *watchRecorder) waitFor(t *testing.T, rev int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.currentRev() < rev {
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("watcher %s reached revision %d, not %d, within %v; errors: %v; violations: %v",
				r.name, r.rev, rev, timeout, r.errorsSeen, r.violations)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check fails t on any contract violation and when the replayed state is not want.
func (r *watchRecorder) check(t *testing.T, want map[string]*example.Pod) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.violations) > 0 {
		n := min(len(r.violations), 20)
		t.Errorf("watcher %s broke the watch contract %d times: %v", r.name, len(r.violations), r.violations[:n])
	}
	if d := diffPods(want, r.state); d != "" {
		t.Errorf("replaying watcher %s's events does not give the final list: %s", r.name, d)
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// checkCoverage checks, for a recorder with allowGaps, that every pod write
// known to have committed (podWrites: revision to key) reached it: either as
// an event at that revision for that key, or inside the range a relist (after
// a 410) jumped over. A skipped revision must be one that is not a pod write.
func (r *watchRecorder) checkCoverage(t *testing.T, from, to int64, podWrites map[int64]string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[int64]string, len(r.events))
	for _, e := range r.events {
		if prev, dup := seen[e.rev]; dup {
			t.Errorf("watcher %s: revision %d delivered twice (%s, %s)", r.name, e.rev, prev, e.key)
		}
		seen[e.rev] = e.key
	}
	inRelist := func(rev int64) bool {
		for _, j := range r.relisted {
			if rev > j[0] && rev <= j[1] {
				return true
			}
		}
		return false
	}
	var missed []string
	for rev, key := range podWrites {
		if rev <= from || rev > to {
			continue
		}
		got, ok := seen[rev]
		switch {
		case ok && got != key:
			t.Errorf("watcher %s: revision %d delivered as %s, but it wrote %s", r.name, rev, got, key)
		case !ok && !inRelist(rev):
			missed = append(missed, fmt.Sprintf("%d (%s)", rev, key))
		}
	}
	sort.Strings(missed)
	if len(missed) > 0 {
		t.Errorf("watcher %s never delivered %d committed pod writes (no relist covers them): %v", r.name, len(missed), missed[:min(len(missed), 10)])
	}
	t.Logf("watcher %s: %d events, %d relists, %d revisions that are not pod writes skipped", r.name, len(r.events), r.relists, len(r.gaps))
}
