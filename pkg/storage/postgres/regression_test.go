package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"github.com/calyptia/core-management-plane/internal/pgtest"
)

// TestRevisionRegression restores the database to an earlier state under a
// running backend (as a point-in-time restore or a failover to a stale
// asynchronous standby does): the backend must refuse writes, reads,
// watches and readiness instead of handing out revisions again, write
// nothing, end its watches with an error, and serve again once the
// revision is raised and history marked compacted as docs/storage.md says,
// with watches from before then told to relist.
func TestRevisionRegression(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(t)
	opts := testOptions
	opts.PollInterval = 100 * time.Millisecond
	b := newBackendAt(t, url, opts)
	s := newPodStore(t, b)
	create := func(name string) (*example.Pod, error) {
		out := &example.Pod{}
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "r", Name: name}}
		return out, s.Create(ctx, podKey("r", name), pod, out, 0)
	}
	for i := range 3 {
		if _, err := create(fmt.Sprintf("before-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// The "backup".
	exec(`CREATE TABLE meta_bak AS SELECT * FROM meta; CREATE TABLE kv_bak AS SELECT * FROM kv;
		CREATE TABLE kv_log_bak AS SELECT * FROM kv_log`)
	backupRev := currentRev(t, b)
	for i := range 3 {
		if _, err := create(fmt.Sprintf("after-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	seen := currentRev(t, b)
	w, err := s.Watch(ctx, "/pods/", storage.ListOptions{ResourceVersion: fmt.Sprint(seen), Recursive: true, Predicate: storage.Everything})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// The "restore".
	exec(`BEGIN; DELETE FROM kv; DELETE FROM kv_log; INSERT INTO kv SELECT * FROM kv_bak;
		INSERT INTO kv_log SELECT * FROM kv_log_bak; UPDATE meta SET current_rev = (SELECT current_rev FROM meta_bak); COMMIT`)

	// A write must not reuse a revision the backend has seen.
	_, err = create("during")
	var regressed *RevisionRegressedError
	if !errors.As(err, &regressed) || !errors.Is(err, ErrRevisionRegressed) {
		t.Fatalf("create after the database lost revisions: %v, want a RevisionRegressedError", err)
	}
	if regressed.Database != backupRev || regressed.Seen != seen {
		t.Errorf("regression reported as database %d, seen %d; want %d and %d", regressed.Database, regressed.Seen, backupRev, seen)
	}
	var dbRev int64
	if err := conn.QueryRow(ctx, "SELECT current_rev FROM meta").Scan(&dbRev); err != nil {
		t.Fatal(err)
	}
	if dbRev != backupRev {
		t.Errorf("the refused write moved the database's revision from %d to %d", backupRev, dbRev)
	}
	for name, call := range map[string]func() error{
		"ReadyCheck":     func() error { return b.ReadyCheck(ctx) },
		"ReadinessCheck": s.ReadinessCheck,
		"Get":            func() error { return s.Get(ctx, podKey("r", "before-0"), storage.GetOptions{}, &example.Pod{}) },
		"GetList": func() error {
			return s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, &example.PodList{})
		},
		"Watch": func() error {
			w, err := s.Watch(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything})
			if err == nil {
				w.Stop()
			}
			return err
		},
	} {
		if err := call(); !errors.Is(err, ErrRevisionRegressed) {
			t.Errorf("%s while the revision is behind: %v, want the regression error", name, err)
		}
	}
	// The open watch ends with an error rather than going silent.
	select {
	case ev, ok := <-w.ResultChan():
		if !ok || ev.Type != watch.Error {
			t.Errorf("open watch on a regressed database: got %v (open %v), want an error event", ev.Type, ok)
		}
	case <-time.After(10 * time.Second):
		t.Error("open watch got nothing in 10s after the regression")
	}

	// Recovery, as docs/storage.md says.
	exec(`BEGIN; UPDATE meta SET current_rev = current_rev + 1000 WHERE id = 1;
		UPDATE compaction SET rev = (SELECT current_rev FROM meta WHERE id = 1) WHERE id = 1; COMMIT`)
	var out *example.Pod
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = create("recovered")
		if err == nil {
			break
		}
		if !errors.Is(err, ErrRevisionRegressed) || time.Now().After(deadline) {
			t.Fatalf("create after recovery: %v", err)
		}
		pause(ctx, 50*time.Millisecond)
	}
	if got := podRev(out); got <= seen {
		t.Errorf("write after recovery at revision %d, not past the %d seen before", got, seen)
	}
	if err := b.ReadyCheck(ctx); err != nil {
		t.Errorf("not ready after recovery: %v", err)
	}
	// A client that holds a revision from before must relist.
	old, err := s.Watch(ctx, "/pods/", storage.ListOptions{ResourceVersion: fmt.Sprint(seen), Recursive: true, Predicate: storage.Everything})
	switch {
	case err != nil && !strings.Contains(err.Error(), "too old"):
		t.Errorf("watch from revision %d after recovery: %v, want too old", seen, err)
	case err == nil:
		defer old.Stop()
		select {
		case ev := <-old.ResultChan():
			if st, ok := ev.Object.(*metav1.Status); !ok || !strings.Contains(st.Message, "too old") {
				t.Errorf("watch from revision %d after recovery: %s %v, want too old", seen, ev.Type, ev.Object)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("watch from revision %d after recovery got nothing, want too old", seen)
		}
	}
}

// TestOwnConnections takes every request connection: commits and watch
// delivery must go on, since the committer and the event log have
// connections of their own.
func TestOwnConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, _ := newTestBackend(t, testOptions)
	s := newPodStore(t, b)
	w, err := s.Watch(ctx, "/pods/", storage.ListOptions{ResourceVersion: fmt.Sprint(currentRev(t, b)), Recursive: true, Predicate: storage.Everything})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for range b.pool.Config().MaxConns {
		c, err := b.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
	}
	for i := range 3 {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		name := fmt.Sprintf("p%d", i)
		err := s.Create(wctx, podKey("own", name), &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "own", Name: name}}, &example.Pod{}, 0)
		cancel()
		if err != nil {
			t.Fatalf("create with every request connection taken: %v", err)
		}
		select {
		case ev := <-w.ResultChan():
			if p, ok := ev.Object.(*example.Pod); ev.Type != watch.Added || !ok || p.Name != name {
				t.Fatalf("watch delivered %s %v, want ADDED %s", ev.Type, ev.Object, name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watch delivered nothing in 10s with every request connection taken")
		}
	}
}
