package postgres

import (
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The model of the store for the linearizability check (lincheck_test.go):
// a map of keys to values with mod revisions, and a lower bound of the
// current revision. Every value written is unique, so a read names the
// write it saw.

type linOp string

const (
	linCreate linOp = "create"
	linUpdate linOp = "update"
	linDelete linOp = "delete"
	linGet    linOp = "get"
	linList   linOp = "list"
)

type linInput struct {
	op    linOp
	key   string
	value string // create, update
}

// linOutcome is what the store answered.
type linOutcome int

const (
	linOK       linOutcome = iota // applied (writes), found or listed (reads)
	linExists                     // create: the key exists
	linNotFound                   // update, delete, get: the key does not exist
	// linUnknown: the call failed (timeout, lost connection); a write may
	// or may not have applied. Its return time is the end of the history.
	linUnknown
)

type linItem struct {
	value  string
	modRev int64 // 0: not known (written by a call whose outcome was unknown)
	// For a value of unknown revision, revisions commit in linearization
	// order: it is above after (the state's revision where it was
	// linearized) and below before (the lowest revision of a write
	// linearized after it, 0 while there is none).
	after, before int64
}

type linOutput struct {
	outcome linOutcome
	rev     int64  // writes: the revision written; get: the mod revision
	value   string // get: the value; delete: the value deleted
	listRev int64
	list    map[string]linItem
}

type linState struct {
	kv  map[string]linItem
	rev int64 // no write after this point can have a revision at or below it
}

// with is s after a write of key; rev is the write's revision, 0 when
// unknown.
func (s linState) with(key string, it linItem, rev int64) linState {
	kv := maps.Clone(s.kv)
	bound(kv, rev)
	kv[key] = it
	return linState{kv: kv, rev: max(s.rev, rev)}
}

func (s linState) without(key string, rev int64) linState {
	kv := maps.Clone(s.kv)
	bound(kv, rev)
	delete(kv, key)
	return linState{kv: kv, rev: max(s.rev, rev)}
}

// bound tells every value of unknown revision in kv that a write at rev
// (when known) comes after it.
func bound(kv map[string]linItem, rev int64) {
	if rev <= 0 {
		return
	}
	for k, it := range kv {
		if it.modRev == 0 && (it.before == 0 || rev < it.before) {
			it.before = rev
			kv[k] = it
		}
	}
}

// learn records a mod revision a read revealed for a value written by a
// call whose outcome was unknown; ok is false when that revision cannot be
// where the write was linearized.
func (s linState) learn(key string, modRev int64) (next linState, ok bool) {
	it := s.kv[key]
	if it.modRev != 0 {
		return s, true
	}
	if modRev <= it.after || (it.before != 0 && modRev >= it.before) {
		return s, false
	}
	kv := maps.Clone(s.kv)
	kv[key] = linItem{value: it.value, modRev: modRev}
	return linState{kv: kv, rev: max(s.rev, modRev)}, true
}

func sameItem(model linItem, got linItem) bool {
	return model.value == got.value && (model.modRev == 0 || model.modRev == got.modRev)
}

// linStep gives the states the store can be in after op, none when op
// cannot have happened in state s.
func linStep(state, input, output any) []any {
	s, in, out := state.(linState), input.(linInput), output.(linOutput)
	cur, present := s.kv[in.key]
	switch in.op {
	case linCreate:
		switch out.outcome {
		case linOK:
			if !present && out.rev > s.rev {
				return []any{s.with(in.key, linItem{value: in.value, modRev: out.rev}, out.rev)}
			}
		case linExists:
			if present {
				return []any{s}
			}
		case linUnknown:
			if present {
				return []any{s}
			}
			return []any{s, s.with(in.key, linItem{value: in.value, after: s.rev}, 0)}
		}
	case linUpdate:
		switch out.outcome {
		case linOK:
			if present && out.rev > s.rev {
				return []any{s.with(in.key, linItem{value: in.value, modRev: out.rev}, out.rev)}
			}
		case linNotFound:
			if !present {
				return []any{s}
			}
		case linUnknown:
			if !present {
				return []any{s}
			}
			return []any{s, s.with(in.key, linItem{value: in.value, after: s.rev}, 0)}
		}
	case linDelete:
		switch out.outcome {
		case linOK:
			if present && cur.value == out.value && out.rev > s.rev {
				return []any{s.without(in.key, out.rev)}
			}
		case linNotFound:
			if !present {
				return []any{s}
			}
		case linUnknown:
			if !present {
				return []any{s}
			}
			return []any{s, s.without(in.key, 0)}
		}
	case linGet:
		switch out.outcome {
		case linOK:
			if present && sameItem(cur, linItem{value: out.value, modRev: out.rev}) {
				if next, ok := s.learn(in.key, out.rev); ok {
					return []any{next}
				}
			}
		case linNotFound:
			if !present {
				return []any{s}
			}
		case linUnknown:
			return []any{s}
		}
	case linList:
		switch out.outcome {
		case linOK:
			if out.listRev < s.rev || len(out.list) != len(s.kv) {
				return nil
			}
			next := s
			for k, it := range s.kv {
				got, ok := out.list[k]
				if !ok || !sameItem(it, got) {
					return nil
				}
				if next, ok = next.learn(k, got.modRev); !ok {
					return nil
				}
			}
			next = linState{kv: next.kv, rev: max(next.rev, out.listRev)}
			return []any{next}
		case linUnknown:
			return []any{s}
		}
	}
	return nil
}

func linEqual(a, b any) bool {
	x, y := a.(linState), b.(linState)
	return x.rev == y.rev && maps.Equal(x.kv, y.kv)
}

func describeLinState(state any) string {
	s := state.(linState)
	keys := make([]string, 0, len(s.kv))
	for k := range s.kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "rev>=%d", s.rev)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s@%d", k, s.kv[k].value, s.kv[k].modRev)
	}
	return b.String()
}

func describeLinOp(input, output any) string {
	in, out := input.(linInput), output.(linOutput)
	res := map[linOutcome]string{linOK: "ok", linExists: "exists", linNotFound: "not found", linUnknown: "unknown"}[out.outcome]
	switch in.op {
	case linList:
		return fmt.Sprintf("list -> %s rev %d, %d items", res, out.listRev, len(out.list))
	case linGet:
		return fmt.Sprintf("get %s -> %s %s@%d", in.key, res, out.value, out.rev)
	case linDelete:
		return fmt.Sprintf("delete %s -> %s %s@%d", in.key, res, out.value, out.rev)
	}
	return fmt.Sprintf("%s %s=%s -> %s @%d", in.op, in.key, in.value, res, out.rev)
}

// linModel is the store as porcupine checks it. Lists read every key, so
// the history cannot be partitioned by key.
var linModel = (&porcupine.NondeterministicModel{
	Init:              func() []any { return []any{linState{kv: map[string]linItem{}}} },
	Step:              linStep,
	Equal:             linEqual,
	DescribeOperation: describeLinOp,
	DescribeState:     describeLinState,
}).ToModel()
