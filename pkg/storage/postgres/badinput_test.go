package postgres

import (
	"context"
	"strconv"
	"strings"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// bigPod is a pod whose encoding is about size bytes.
func bigPod(namespace, name string, size int) *example.Pod {
	return &example.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace:   namespace,
		Name:        name,
		Annotations: map[string]string{"payload": strings.Repeat("x", size)},
	}}
}

func currentRev(t *testing.T, b *Backend) int64 {
	t.Helper()
	rev, err := b.currentRevision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// TestObjectSizeLimit checks that objects over 1.5 MiB are refused with a
// 413 that names the limit, by Create and by GuaranteedUpdate, and that a
// refused write stores nothing and takes no revision.
func TestObjectSizeLimit(t *testing.T) {
	ctx, s, b := testSetup(t)
	const (
		under = MaxObjectSize - 100*1024 // stored with codec and transformer overhead, still under
		over  = MaxObjectSize + 100*1024
	)
	existing := podKey("size", "existing")
	orig := &example.Pod{}
	if err := s.Create(ctx, existing, &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "size", Name: "existing"}}, orig, 0); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		key     string
		write   func(key string) error
		refused bool
		// existed: the key held orig before the write.
		existed bool
	}{{
		name:    "create over the limit",
		key:     podKey("size", "big"),
		write:   func(key string) error { return s.Create(ctx, key, bigPod("size", "big", over), &example.Pod{}, 0) },
		refused: true,
	}, {
		name: "create far over the limit",
		key:  podKey("size", "huge"),
		write: func(key string) error {
			return s.Create(ctx, key, bigPod("size", "huge", 4*MaxObjectSize), &example.Pod{}, 0)
		},
		refused: true,
	}, {
		name: "update over the limit",
		key:  existing,
		write: func(key string) error {
			return s.GuaranteedUpdate(ctx, key, &example.Pod{}, false, nil, func(in runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
				return bigPod("size", "existing", over), nil, nil
			}, nil)
		},
		refused: true,
		existed: true,
	}, {
		name:  "create under the limit",
		key:   podKey("size", "large"),
		write: func(key string) error { return s.Create(ctx, key, bigPod("size", "large", under), &example.Pod{}, 0) },
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			revBefore := currentRev(t, b)
			err := tc.write(tc.key)
			revAfter := currentRev(t, b)
			got := &example.Pod{}
			getErr := s.Get(ctx, tc.key, storage.GetOptions{}, got)
			if !tc.refused {
				if err != nil {
					t.Fatalf("write refused: %v", err)
				}
				if getErr != nil || len(got.Annotations["payload"]) != under {
					t.Fatalf("stored object not read back whole: %v", getErr)
				}
				return
			}
			if !apierrors.IsRequestEntityTooLargeError(err) {
				t.Fatalf("got error %v (%T), want a 413 RequestEntityTooLarge StatusError", err, err)
			}
			if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(MaxObjectSize)) {
				t.Errorf("error %q does not say what the limit is", msg)
			}
			if revAfter != revBefore {
				t.Errorf("refused write moved the revision from %d to %d", revBefore, revAfter)
			}
			switch {
			case tc.existed && getErr != nil:
				t.Errorf("object gone after a refused update: %v", getErr)
			case tc.existed && !apiequality.Semantic.DeepEqual(orig, got):
				t.Errorf("refused update changed the object: rv %s -> %s, %d annotations", orig.ResourceVersion, got.ResourceVersion, len(got.Annotations))
			case !tc.existed && !storage.IsNotFound(getErr):
				t.Errorf("refused create left something at %s: %v", tc.key, getErr)
			}
		})
	}
}

// TestKeysAreData checks that names with quotes, wildcards, backslashes and
// SQL round-trip as plain bytes: each is created, read back and listed, and
// a prefix list returns exactly its own namespace, never a neighbour that a
// LIKE pattern would match.
func TestKeysAreData(t *testing.T) {
	ctx, s, b := testSetup(t)
	names := []string{
		`it's`,
		`''`,
		`say "hi"`,
		`100%`,
		`%`,
		`a_c`,
		`_`,
		`back\slash`,
		`\`,
		`\x00`,
		"nul\x00byte",
		`'; DROP TABLE kv; --`,
		`"; DROP TABLE kv_log; --`,
		`$1`,
		`?`,
		`SELECT * FROM meta`,
		`ключ-名前`,
		`tab	and space`,
	}
	t.Run("round trip", func(t *testing.T) {
		for _, name := range names {
			key := podKey("odd", name)
			out := &example.Pod{}
			if err := s.Create(ctx, key, &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "odd", Name: name}}, out, 0); err != nil {
				t.Fatalf("creating %q: %v", key, err)
			}
			got := &example.Pod{}
			if err := s.Get(ctx, key, storage.GetOptions{}, got); err != nil {
				t.Fatalf("getting %q: %v", key, err)
			}
			if got.Name != name || got.ResourceVersion != out.ResourceVersion {
				t.Errorf("%q read back as name %q rv %s, want rv %s", key, got.Name, got.ResourceVersion, out.ResourceVersion)
			}
			// A single-key list reads exactly that key.
			list := &example.PodList{}
			if err := s.GetList(ctx, key, storage.ListOptions{Predicate: storage.Everything}, list); err != nil {
				t.Fatalf("listing %q: %v", key, err)
			}
			if len(list.Items) != 1 || list.Items[0].Name != name {
				t.Errorf("list of %q returned %v", key, podNames(list))
			}
		}
		list := &example.PodList{}
		if err := s.GetList(ctx, "/pods/odd/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
			t.Fatal(err)
		}
		if got := podNames(list); len(got) != len(names) {
			t.Errorf("listing /pods/odd/ returned %d pods %q, want %d", len(got), got, len(names))
		}
		// The SQL in the names stayed data: the tables are all there.
		var tables int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()
			AND tablename IN ('kv', 'kv_log', 'meta', 'compaction')`).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 4 {
			t.Errorf("%d of the 4 storage tables left", tables)
		}
	})

	// Namespaces that a LIKE pattern (or an unescaped wildcard) built from
	// one of them would confuse with another.
	namespaces := []string{"a_c", "abc", "aXc", "a%", "a%c", "azzz", `a\`, `a\_c`, `a\\c`, "a", "a_", "a_cd"}
	for _, ns := range namespaces {
		key := podKey(ns, "p")
		if err := s.Create(ctx, key, &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}}, &example.Pod{}, 0); err != nil {
			t.Fatalf("creating %q: %v", key, err)
		}
	}
	for _, ns := range namespaces {
		t.Run("prefix "+ns, func(t *testing.T) {
			list := &example.PodList{}
			if err := s.GetList(ctx, "/pods/"+ns+"/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 1 || list.Items[0].Namespace != ns {
				var got []string
				for _, p := range list.Items {
					got = append(got, p.Namespace+"/"+p.Name)
				}
				t.Errorf("listing /pods/%s/ returned %q, want only %s/p", ns, got, ns)
			}
			// Counting and paging use the same range.
			paged := &example.PodList{}
			pred := storage.Everything
			pred.Limit = 1
			if err := s.GetList(ctx, "/pods/"+ns+"/", storage.ListOptions{Recursive: true, Predicate: pred}, paged); err != nil {
				t.Fatal(err)
			}
			if len(paged.Items) != 1 || paged.Continue != "" || paged.RemainingItemCount != nil {
				t.Errorf("first page of /pods/%s/ has %d items, continue %q, remaining %v; want the one item and no more",
					ns, len(paged.Items), paged.Continue, paged.RemainingItemCount)
			}
		})
	}
}

func podNames(l *example.PodList) []string {
	var out []string
	for _, p := range l.Items {
		out = append(out, p.Name)
	}
	return out
}

// TestInvalidKeys checks that keys that escape or lack the resource prefix
// are refused by every operation and write nothing.
func TestInvalidKeys(t *testing.T) {
	ctx, s, b := testSetup(t)
	keys := []struct {
		name, key string
	}{
		{"empty", ""},
		{"root", "/"},
		{"dot dot", ".."},
		{"parent segment", "/pods/a/../b"},
		{"escaping the prefix", "/pods/../secrets/x"},
		{"trailing dot dot", "/pods/a/.."},
		{"leading dot dot", "../pods/a"},
		{"dot segment", "/pods/./a"},
		{"trailing dot", "/pods/a/."},
		{"leading dot", "./pods/a"},
		{"other resource", "/secrets/ns/a"},
		{"prefix without slash", "pods/ns/a"},
		{"resource prefix lookalike", "/podsx/ns/a"},
	}
	ops := []struct {
		name string
		do   func(key string) error
	}{
		{"Create", func(key string) error {
			return s.Create(ctx, key, &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, &example.Pod{}, 0)
		}},
		{"Get", func(key string) error {
			return s.Get(ctx, key, storage.GetOptions{IgnoreNotFound: true}, &example.Pod{})
		}},
		{"GetList", func(key string) error {
			return s.GetList(ctx, key, storage.ListOptions{Recursive: true, Predicate: storage.Everything}, &example.PodList{})
		}},
		{"GuaranteedUpdate", func(key string) error {
			return s.GuaranteedUpdate(ctx, key, &example.Pod{}, true, nil, func(in runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
				return &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, nil, nil
			}, nil)
		}},
		{"Delete", func(key string) error {
			return s.Delete(ctx, key, &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
		}},
		{"Watch", func(key string) error {
			w, err := s.Watch(ctx, key, storage.ListOptions{Recursive: true, Predicate: storage.Everything})
			if err == nil {
				w.Stop()
			}
			return err
		}},
	}
	for _, k := range keys {
		for _, op := range ops {
			t.Run(k.name+"/"+op.name, func(t *testing.T) {
				before := currentRev(t, b)
				err := op.do(k.key)
				if err == nil {
					t.Fatalf("%s(%q) succeeded", op.name, k.key)
				}
				if msg := err.Error(); !strings.Contains(msg, "invalid key") && !strings.Contains(msg, "empty key") {
					t.Errorf("%s(%q) failed with %q, not an invalid key error", op.name, k.key, msg)
				}
				if after := currentRev(t, b); after != before {
					t.Errorf("%s(%q) moved the revision from %d to %d", op.name, k.key, before, after)
				}
			})
		}
	}
	var rows int
	if err := b.pool.QueryRow(ctx, "SELECT count(*) FROM kv").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("%d keys stored by refused writes", rows)
	}
}
