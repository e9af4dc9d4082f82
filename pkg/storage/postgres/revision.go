package postgres

import (
	"errors"
	"fmt"

	"k8s.io/klog/v2"
)

// Revision regression: the database's revision is behind one this process
// has already seen. That happens when PostgreSQL is restored to an earlier
// point (PITR, a backup) or fails over to an asynchronous standby that had
// not received the latest commits. Carrying on would hand out revisions
// that clients, watch caches and this process's event log already know
// with different contents: new writes would reuse them, watchers at the
// higher revision would never see them, and caches would diverge for good,
// silently. So the backend refuses everything (writes, reads, watches and
// readiness fail with RevisionRegressedError) until an operator raises the
// revision past everything seen and marks the history before it compacted
// (docs/storage.md, "Revision regression"), which forces every watcher and
// cache to relist; the backend notices that on its next poll and serves
// again.

// ErrRevisionRegressed matches every RevisionRegressedError (errors.Is).
var ErrRevisionRegressed = errors.New("storage revision went backwards")

// RevisionRegressedError tells that PostgreSQL's revision is behind the
// newest revision this process has seen.
type RevisionRegressedError struct {
	// Database is the revision PostgreSQL reported (-1 if unknown).
	Database int64
	// Seen is the newest revision this process had seen.
	Seen int64
}

func (e *RevisionRegressedError) Error() string {
	return fmt.Sprintf("%v: PostgreSQL is at revision %d but this process has seen revision %d "+
		"(the database was restored or failed over to a standby that lacks recent commits); "+
		"writes, reads and watches are refused until the revision is raised and history marked compacted "+
		"as docs/storage.md (\"Revision regression\") describes", ErrRevisionRegressed, e.Database, e.Seen)
}

func (e *RevisionRegressedError) Is(target error) bool { return target == ErrRevisionRegressed }

// regressionErr is non-nil while the backend refuses to serve.
func (b *Backend) regressionErr() error {
	if e := b.regressed.Load(); e != nil {
		return e
	}
	return nil
}

// observeRevision records that the database reported revision got for a
// read or write that started when this process had seen before (loaded
// before the call was sent). Any snapshot taken after a revision was seen
// includes it, so got < before can only mean the database lost revisions.
// Comparing with a later value of seen would not do: a commit may land
// between the start of a read and its answer.
func (b *Backend) observeRevision(before, got int64) error {
	if err := b.regressionErr(); err != nil {
		return err
	}
	if got < before {
		return b.regress(got, before)
	}
	b.raiseSeen(got)
	return nil
}

func (b *Backend) raiseSeen(rev int64) {
	for {
		cur := b.seen.Load()
		if rev <= cur || b.seen.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// regress makes the backend refuse to serve and says so loudly.
func (b *Backend) regress(database, seen int64) error {
	e := &RevisionRegressedError{Database: database, Seen: seen}
	if b.regressed.CompareAndSwap(nil, e) {
		klog.ErrorS(e, "PostgreSQL storage revision went backwards; refusing writes, reads and watches until recovered",
			"databaseRevision", database, "seenRevision", seen, "recovery", "docs/storage.md#revision-regression")
		if b.events != nil {
			b.events.wakeAll()
		}
		return e
	}
	return b.regressed.Load()
}

// recoverRegression ends the refusal once the database's compaction
// revision is at or past every revision this process has seen: whatever a
// client or cache holds from before is then "too old" and is relisted, so
// no revision can mean two things to anyone.
func (b *Backend) recoverRegression(current, compacted int64) bool {
	e := b.regressed.Load()
	if e == nil || compacted < b.seen.Load() {
		return false
	}
	klog.InfoS("PostgreSQL storage revision raised past every revision seen and history marked compacted; serving again",
		"databaseRevision", current, "compactedRevision", compacted, "seenRevision", e.Seen)
	b.raiseSeen(current)
	b.regressed.Store(nil)
	return true
}
