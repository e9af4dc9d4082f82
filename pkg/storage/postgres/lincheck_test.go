package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

// TestLinearizable records a history of concurrent creates, updates,
// deletes, gets and lists on a few keys through two replicas, while their
// connections to PostgreSQL are cut and frozen and compaction runs, and
// checks with porcupine that the history is linearizable against the model
// in linmodel_test.go.
//
// A write whose outcome is unknown (it timed out, its connection died) may
// have applied; it is fenced by its deadline (commit_writes refuses a write
// that reaches the revision lock later), so it is modelled as pending until
// its deadline plus linFenceSlack, not until the end of the history: a
// write that applied after its caller gave up, and is then read, makes the
// history fail too. (Here a late write mostly fails its own condition,
// since others changed the key meanwhile; TestWriteFencedByDeadline checks
// the fence itself.)
func TestLinearizable(t *testing.T) {
	const (
		clients = 6
		keys    = 4
		// Each client runs until the faults are over and it has done at
		// least minOps, pausing a little between operations so that the
		// history spans the faults without growing past what porcupine
		// checks quickly.
		minOps     = 40
		opPause    = 40 * time.Millisecond
		opDeadline = 2 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := newFaultCluster(t, pgtest.NewDatabase(t), faultTestOptions())
	stores := c.stores()

	origin := time.Now()
	stamp := func() int64 { return int64(time.Since(origin)) }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		unknown int
	)
	record := func(op porcupine.Operation) {
		mu.Lock()
		defer mu.Unlock()
		if op.Output.(linOutput).outcome == linUnknown {
			unknown++
		}
		history = append(history, op)
	}

	// Faults while the clients run: every connection of one replica cut,
	// then the other's frozen for longer than an operation's deadline and
	// its fence, so that writes caught in the frozen connection would
	// apply after their fence if the store let them.
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		for i := 0; ctx.Err() == nil && i < 6; i++ {
			pause(ctx, 700*time.Millisecond)
			r := c.replicas[i%2]
			if i%3 == 2 {
				r.proxy.setMode(proxyFreeze)
				pause(ctx, opDeadline+linFenceSlack+time.Second)
				r.proxy.setMode(proxyPass)
				continue
			}
			r.proxy.cut()
		}
	}()

	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(id), 12))
			for n := 0; n < minOps || !closed(faultsDone); n++ {
				if ctx.Err() != nil {
					return
				}
				pause(ctx, time.Duration(rnd.Int64N(int64(opPause))))
				s := stores[rnd.IntN(2)]
				in := linInput{key: fmt.Sprintf("k%d", rnd.IntN(keys))}
				switch p := rnd.IntN(100); {
				case p < 25:
					in.op = linCreate
				case p < 55:
					in.op = linUpdate
				case p < 70:
					in.op = linDelete
				case p < 88:
					in.op = linGet
				default:
					in.op = linList
				}
				if in.op == linCreate || in.op == linUpdate {
					in.value = fmt.Sprintf("c%d-%d", id, n)
				}
				octx, cancel := context.WithTimeout(ctx, opDeadline)
				call := stamp()
				out, applied := linApply(octx, s, in)
				ret := stamp()
				cancel()
				switch {
				case !applied:
					// Surely had no effect (a read that failed, a write
					// refused before it was applied): not part of the history.
					continue
				case out.outcome == linUnknown:
					// It may apply until its deadline, never after.
					ret = call + int64(opDeadline+linFenceSlack)
				}
				record(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
			}
		}()
	}
	wg.Wait()
	<-faultsDone
	// The last unknown writes are pending until their fence: no read may
	// come after the history ends, so nothing more is needed.
	t.Logf("%d operations recorded, %d of unknown outcome", len(history), unknown)
	if len(history) < clients*minOps {
		t.Fatalf("only %d operations had a known effect: the store did not recover from the faults", len(history))
	}
	if unknown == 0 {
		t.Log("no operation had an unknown outcome: the faults did not catch a write in flight this time")
	}

	res, info := porcupine.CheckOperationsVerbose(linModel, history, 2*time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		out := filepath.Join(t.TempDir(), "history.html")
		if dir := os.Getenv("LINCHECK_OUT"); dir != "" {
			out = filepath.Join(dir, "history.html")
		}
		if err := porcupine.VisualizePath(linModel, info, out); err != nil {
			t.Logf("writing the visualisation: %v", err)
		}
		t.Fatalf("the history of %d operations is not linearizable (visualisation: %s; set LINCHECK_OUT to keep it)", len(history), out)
	default:
		t.Fatalf("porcupine could not decide within its time limit (%d operations)", len(history))
	}
}

// linFenceSlack is how long after its caller's deadline a write that got
// the revision lock in time may still become visible: the rest of its
// statement and the commit, plus the error of the clock offset estimate.
const linFenceSlack = 2 * time.Second

// linApply runs in on s. applied is false when the operation surely had no
// effect on the store and revealed nothing (it can be left out of the
// history).
func linApply(ctx context.Context, s storage.Interface, in linInput) (out linOutput, applied bool) {
	key := podKey("lin", in.key)
	unknown := func(err error) (linOutput, bool) {
		if notApplied(err) {
			return linOutput{}, false
		}
		return linOutput{outcome: linUnknown}, true
	}
	switch in.op {
	case linCreate:
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "lin", Name: in.key, Labels: map[string]string{"v": in.value}}}
		got := &example.Pod{}
		err := s.Create(ctx, key, pod, got, 0)
		switch {
		case err == nil:
			return linOutput{outcome: linOK, rev: podRev(got)}, true
		case storage.IsExist(err):
			return linOutput{outcome: linExists}, true
		}
		return unknown(err)
	case linUpdate:
		got := &example.Pod{}
		err := s.GuaranteedUpdate(ctx, key, got, false, nil, func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			p := obj.(*example.Pod).DeepCopy()
			p.Labels = map[string]string{"v": in.value}
			return p, nil, nil
		}, nil)
		switch {
		case err == nil:
			return linOutput{outcome: linOK, rev: podRev(got)}, true
		case storage.IsNotFound(err):
			return linOutput{outcome: linNotFound}, true
		}
		return unknown(err)
	case linDelete:
		got := &example.Pod{}
		err := s.Delete(ctx, key, got, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
		switch {
		case err == nil:
			return linOutput{outcome: linOK, rev: podRev(got), value: got.Labels["v"]}, true
		case storage.IsNotFound(err):
			return linOutput{outcome: linNotFound}, true
		}
		return unknown(err)
	case linGet:
		got := &example.Pod{}
		err := s.Get(ctx, key, storage.GetOptions{}, got)
		switch {
		case err == nil:
			return linOutput{outcome: linOK, rev: podRev(got), value: got.Labels["v"]}, true
		case storage.IsNotFound(err):
			return linOutput{outcome: linNotFound}, true
		}
		return linOutput{}, false
	default:
		list := &example.PodList{}
		err := s.GetList(ctx, "/pods/lin/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list)
		if err != nil {
			return linOutput{}, false
		}
		rev, _ := strconv.ParseInt(list.ResourceVersion, 10, 64)
		out := linOutput{outcome: linOK, listRev: rev, list: map[string]linItem{}}
		for i := range list.Items {
			p := &list.Items[i]
			out.list[p.Name] = linItem{value: p.Labels["v"], modRev: podRev(p)}
		}
		return out, true
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func podRev(p *example.Pod) int64 {
	rev, _ := strconv.ParseInt(p.ResourceVersion, 10, 64)
	return rev
}

// TestLinModel checks the model on small histories, legal and not, so that
// TestLinearizable's verdict means something.
func TestLinModel(t *testing.T) {
	op := func(client int, call, ret int64, in linInput, out linOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	create := func(k, v string) linInput { return linInput{op: linCreate, key: k, value: v} }
	update := func(k, v string) linInput { return linInput{op: linUpdate, key: k, value: v} }
	get := func(k string) linInput { return linInput{op: linGet, key: k} }
	list := linInput{op: linList}
	ok := func(rev int64) linOutput { return linOutput{outcome: linOK, rev: rev} }
	got := func(v string, rev int64) linOutput { return linOutput{outcome: linOK, value: v, rev: rev} }
	unknown := linOutput{outcome: linUnknown}
	for _, tc := range []struct {
		name  string
		ops   []porcupine.Operation
		legal bool
	}{
		{"create then read it", []porcupine.Operation{
			op(0, 0, 1, create("a", "1"), ok(2)),
			op(1, 2, 3, get("a"), got("1", 2)),
		}, true},
		{"read of a value never written", []porcupine.Operation{
			op(0, 0, 1, create("a", "1"), ok(2)),
			op(1, 2, 3, get("a"), got("2", 2)),
		}, false},
		{"stale read after an update returned", []porcupine.Operation{
			op(0, 0, 1, create("a", "1"), ok(2)),
			op(0, 2, 3, update("a", "2"), ok(3)),
			op(1, 4, 5, get("a"), got("1", 2)),
		}, false},
		{"revisions out of real-time order", []porcupine.Operation{
			op(0, 0, 1, create("a", "1"), ok(5)),
			op(1, 2, 3, create("b", "1"), ok(4)),
		}, false},
		{"write of unknown outcome seen later", []porcupine.Operation{
			op(0, 0, 10, create("a", "1"), unknown),
			op(1, 11, 12, get("a"), got("1", 2)),
		}, true},
		{"write of unknown outcome never seen", []porcupine.Operation{
			op(0, 0, 10, create("a", "1"), unknown),
			op(1, 11, 12, get("a"), linOutput{outcome: linNotFound}),
		}, true},
		{"write of unknown outcome seen after its fence, absent before", []porcupine.Operation{
			op(0, 0, 10, create("a", "1"), unknown),
			op(1, 11, 12, get("a"), linOutput{outcome: linNotFound}),
			op(1, 13, 14, get("a"), got("1", 2)),
		}, false},
		{"write of unknown outcome at a revision below a write after its fence", []porcupine.Operation{
			op(0, 0, 10, create("a", "1"), unknown),
			op(1, 11, 12, create("b", "1"), ok(3)),
			op(1, 13, 14, get("a"), got("1", 4)),
		}, false},
		{"list sees every key at its revision", []porcupine.Operation{
			op(0, 0, 1, create("a", "1"), ok(2)),
			op(0, 2, 3, create("b", "1"), ok(3)),
			op(1, 4, 5, list, linOutput{outcome: linOK, listRev: 3, list: map[string]linItem{"a": {value: "1", modRev: 2}, "b": {value: "1", modRev: 3}}}),
		}, true},
		{"list misses a key created before it", []porcupine.Operation{
			op(0, 0, 1, create("a", "1"), ok(2)),
			op(0, 2, 3, create("b", "1"), ok(3)),
			op(1, 4, 5, list, linOutput{outcome: linOK, listRev: 3, list: map[string]linItem{"a": {value: "1", modRev: 2}}}),
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := porcupine.CheckOperationsTimeout(linModel, tc.ops, 10*time.Second); (res == porcupine.Ok) != tc.legal {
				t.Errorf("porcupine says %v, want legal=%v", res, tc.legal)
			}
		})
	}
}
