package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	utilflowcontrol "k8s.io/apiserver/pkg/util/flowcontrol"
	"k8s.io/klog/v2"
)

const watchResultBuffer = 100

// Watch implements storage.Interface.
func (s *store) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	preparedKey, err := s.prepareKey(key, opts.Recursive)
	if err != nil {
		return nil, err
	}
	rev, err := s.versioner.ParseResourceVersion(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	if opts.Recursive && !strings.HasSuffix(preparedKey, "/") {
		return nil, fmt.Errorf(`recursive key needs to end with "/"`)
	}
	if opts.ProgressNotify && s.newFunc == nil {
		return nil, apierrors.NewInternalError(errors.New("progressNotify for watch is unsupported by the storage because no newFunc was provided"))
	}
	if err := s.b.regressionErr(); err != nil {
		return nil, err
	}
	startRev := int64(rev)
	watchList := utilfeature.DefaultFeatureGate.Enabled(features.WatchList)
	if startRev == 0 && watchList && opts.SendInitialEvents != nil && !*opts.SendInitialEvents {
		// Only a stream of events from the most recent revision is wanted.
		if startRev, err = s.b.currentRevision(ctx); err != nil {
			return nil, err
		}
	}
	pred := opts.Predicate
	if pred.Empty() {
		pred = storage.Everything
	}
	w := &watcher{
		s:                s,
		key:              []byte(preparedKey),
		recursive:        opts.Recursive,
		progressNotify:   opts.ProgressNotify,
		recordTimestamps: opts.RecordTimestamps,
		pred:             pred,
		rev:              startRev,
		result:           make(chan watch.Event, watchResultBuffer),
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	initialEvents := (opts.SendInitialEvents == nil && startRev == 0) || (watchList && opts.SendInitialEvents != nil && *opts.SendInitialEvents)
	endBookmark := watchList && opts.SendInitialEvents != nil && *opts.SendInitialEvents && opts.Predicate.AllowWatchBookmarks
	go w.run(initialEvents, endBookmark)
	// Like the etcd3 store, signal initialisation at once: catching up is
	// not tracked at this layer.
	utilflowcontrol.WatchInitialized(ctx)
	return w, nil
}

// watcher is one watch: it reads the backend's event log from its own
// revision on, so a slow watcher never holds up the others.
type watcher struct {
	s                *store
	key              []byte
	recursive        bool
	progressNotify   bool
	recordTimestamps bool
	pred             storage.SelectionPredicate
	rev              int64 // every event up to rev has been handled

	ctx    context.Context
	cancel context.CancelFunc
	result chan watch.Event
}

func (w *watcher) Stop()                          { w.cancel() }
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

func (w *watcher) run(initialEvents, endBookmark bool) {
	defer close(w.result)
	defer w.cancel()
	if initialEvents {
		if w.rev > 0 {
			cur, err := w.s.b.currentRevision(w.ctx)
			if err != nil {
				w.sendError(err)
				return
			}
			if w.rev > cur {
				w.sendError(storage.NewTooLargeResourceVersionError(uint64(w.rev), uint64(cur), 1))
				return
			}
		}
		if err := w.sync(); err != nil {
			w.sendError(err)
			return
		}
	}
	if endBookmark {
		if !w.sendBookmark(true) {
			return
		}
	}
	if err := w.follow(); err != nil {
		w.sendError(err)
	}
}

// sync sends the current state as ADDED events and moves rev to its revision.
func (w *watcher) sync() error {
	req := rangeRequest{start: w.key}
	if w.recursive {
		req.end = prefixEnd(w.key)
		req.limit = maxLimit
	}
	for {
		resp, err := w.s.b.rangeRead(w.ctx, req)
		if err != nil {
			return interpretListError(err, true, string(req.start), string(w.key))
		}
		req.rev = resp.rev
		for _, row := range resp.rows {
			e := &event{rev: row.modRev, key: row.key, value: row.value, created: true}
			if !w.handle(e, true) {
				return w.ctx.Err()
			}
		}
		if !resp.more {
			break
		}
		req.start = append(append([]byte{}, resp.rows[len(resp.rows)-1].key...), 0)
	}
	w.rev = req.rev
	return nil
}

// follow sends the events after rev as they are committed.
func (w *watcher) follow() error {
	log := w.s.b.events
	var ticker <-chan time.Time
	if w.progressNotify {
		t := time.NewTicker(w.s.b.opts.ProgressNotifyInterval)
		defer t.Stop()
		ticker = t.C
	}
	if w.rev < w.s.b.CompactRevision() {
		return apierrors.NewResourceExpired("The resourceVersion for the provided watch is too old.")
	}
	_, _, _, seenProgress, _ := log.since(w.rev)
	for {
		if err := w.s.b.regressionErr(); err != nil {
			// Events at revisions this watch is past would mean something
			// else now: end it rather than go silent.
			return err
		}
		evs, head, changed, progressGen, inMemory := log.since(w.rev)
		if !inMemory {
			// Older than the memory window: read the history itself, a
			// bounded page at a time.
			var err error
			if evs, err = w.readHistory(); err != nil {
				return err
			}
		}
		for _, e := range evs {
			if e.rev <= w.rev {
				continue
			}
			if !w.handle(e, false) {
				return nil
			}
			w.rev = e.rev
		}
		if len(evs) > 0 && w.rev < head {
			continue
		}
		if progressGen != seenProgress && w.progressNotify {
			log.mu.Lock()
			want := log.progressRev
			log.mu.Unlock()
			if w.rev >= want {
				seenProgress = progressGen
				if !w.sendBookmark(false) {
					return nil
				}
			}
		}
		select {
		case <-w.ctx.Done():
			return nil
		case <-changed:
		case <-ticker:
			if w.rev == head {
				if !w.sendBookmark(false) {
					return nil
				}
			}
		}
	}
}

// readHistory reads the events after the watch's revision from kv_log, for
// a watch behind the event log's memory window.
func (w *watcher) readHistory() ([]*event, error) {
	b := w.s.b
	ctx, cancel := b.requestContext(w.ctx)
	defer cancel()
	before := b.seen.Load()
	page, err := b.readEvents(ctx, b.pool, w.rev, pollPage)
	if errors.Is(err, errCompacted) {
		return nil, apierrors.NewResourceExpired("The resourceVersion for the provided watch is too old.")
	}
	if err != nil {
		return nil, err
	}
	if err := b.observeRevision(before, page.current); err != nil {
		return nil, err
	}
	return page.events, nil
}

func (w *watcher) matchesKey(key []byte) bool {
	if w.recursive {
		return bytes.HasPrefix(key, w.key)
	}
	return bytes.Equal(key, w.key)
}

// handle turns a storage event into a watch event and sends it if the
// predicate wants it. It returns false when the watch is over.
func (w *watcher) handle(e *event, initial bool) bool {
	if !w.matchesKey(e.key) {
		return true
	}
	res, err := w.transform(e)
	if err != nil {
		w.sendError(err)
		return false
	}
	if res == nil {
		return true
	}
	if w.recordTimestamps && !initial {
		res.Object = &timedObject{Object: res.Object, recordTime: e.recorded}
	}
	return w.send(*res)
}

func (w *watcher) transform(e *event) (*watch.Event, error) {
	key := authenticatedData(e.key)
	var cur, old runtime.Object
	if !e.deleted {
		data, _, err := w.s.getTransformer().TransformFromStorage(w.ctx, e.value, key)
		if err != nil {
			return nil, err
		}
		if cur, err = decodeObj(w.s, data, e.rev); err != nil {
			return nil, err
		}
	}
	// The previous object is needed for deletions, and to tell whether an
	// update moved the object into or out of a filtered watch.
	if len(e.prevValue) > 0 && (e.deleted || !w.pred.Empty()) {
		data, _, err := w.s.getTransformer().TransformFromStorage(w.ctx, e.prevValue, key)
		if err == nil {
			old, err = decodeObj(w.s, data, e.rev)
		}
		if err != nil {
			var corrupt *corruptObjectError
			if e.deleted && errors.As(err, &corrupt) {
				return nil, &corruptObjectDeletedError{err: corrupt}
			}
			return nil, err
		}
	}
	switch {
	case e.deleted:
		if !w.filter(old) {
			return nil, nil
		}
		return &watch.Event{Type: watch.Deleted, Object: old}, nil
	case e.created:
		if !w.filter(cur) {
			return nil, nil
		}
		return &watch.Event{Type: watch.Added, Object: cur}, nil
	}
	if w.pred.Empty() {
		return &watch.Event{Type: watch.Modified, Object: cur}, nil
	}
	curPasses, oldPasses := w.filter(cur), old != nil && w.filter(old)
	switch {
	case curPasses && oldPasses:
		return &watch.Event{Type: watch.Modified, Object: cur}, nil
	case curPasses:
		return &watch.Event{Type: watch.Added, Object: cur}, nil
	case oldPasses:
		return &watch.Event{Type: watch.Deleted, Object: old}, nil
	}
	return nil, nil
}

func (w *watcher) filter(obj runtime.Object) bool {
	if w.pred.Empty() {
		return true
	}
	matched, err := w.pred.Matches(obj)
	return err == nil && matched
}

func decodeObj(s *store, data []byte, rev int64) (runtime.Object, error) {
	obj, err := runtime.Decode(s.codec, data)
	if err != nil {
		return nil, err
	}
	if err := s.versioner.UpdateObject(obj, uint64(rev)); err != nil {
		return nil, fmt.Errorf("failure to version api object (%d) %#v: %v", rev, obj, err)
	}
	return obj, nil
}

// sendBookmark sends a bookmark at the watcher's revision.
func (w *watcher) sendBookmark(initialEventsEnd bool) bool {
	obj := w.s.newFunc()
	if err := w.s.versioner.UpdateObject(obj, uint64(w.rev)); err != nil {
		w.sendError(fmt.Errorf("failed to propagate object resource version: %w", err))
		return false
	}
	if initialEventsEnd {
		if err := storage.AnnotateInitialEventsEndBookmark(obj); err != nil {
			w.sendError(fmt.Errorf("annotating initial events end bookmark: %w", err))
			return false
		}
	}
	return w.send(watch.Event{Type: watch.Bookmark, Object: obj})
}

func (w *watcher) send(e watch.Event) bool {
	select {
	case w.result <- e:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// sendError sends err as the watch's last event and ends the watch.
func (w *watcher) sendError(err error) {
	defer w.cancel()
	if errors.Is(err, context.Canceled) {
		return
	}
	var deletedCorrupt *corruptObjectDeletedError
	switch {
	case errors.Is(err, errCompacted):
		err = apierrors.NewResourceExpired("The resourceVersion for the provided watch is too old.")
	case errors.As(err, &deletedCorrupt):
		err = deletedCorrupt.status()
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		klog.V(2).InfoS("Watch ended with an error", "err", err)
		status = apierrors.NewInternalError(err)
	}
	st := status.Status()
	select {
	case w.result <- watch.Event{Type: watch.Error, Object: &st}:
	case <-w.ctx.Done():
	}
}

// timedObject carries the time an event was read, for the watch cache's
// latency metrics (storage.WatchEventWithRecordTime).
type timedObject struct {
	runtime.Object
	recordTime time.Time
}

var _ storage.WatchEventWithRecordTime = &timedObject{}

func (t *timedObject) GetObjectMeta() metav1.Object {
	m, _ := meta.Accessor(t.Object)
	return m
}
func (t *timedObject) DeepCopyObject() runtime.Object {
	return &timedObject{Object: t.Object.DeepCopyObject(), recordTime: t.recordTime}
}
func (t *timedObject) RecordTime() time.Time  { return t.recordTime }
func (t *timedObject) Unwrap() runtime.Object { return t.Object }
