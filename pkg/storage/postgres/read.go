package postgres

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/value"
)

// maxLimit caps how far a filtered list grows its page size, as etcd3 does.
const maxLimit = 10000

// The texts of etcd3's errors, which clients and tests match on.
const (
	expired         = "The resourceVersion for the provided list is too old."
	continueExpired = "The provided continue parameter is too old " +
		"to display a consistent list result. You can start a new list without " +
		"the continue parameter."
	inconsistentContinue = "The provided continue parameter is too old " +
		"to display a consistent list result. You can start a new list without " +
		"the continue parameter, or use the continue token in this response to " +
		"retrieve the remainder of the results. Continuing with the provided " +
		"token results in an inconsistent list - objects that were created, " +
		"modified, or deleted between the time the first chunk was returned " +
		"and now may show up in the list."
)

func interpretListError(err error, paging bool, continueKey, keyPrefix string) error {
	if !errors.Is(err, errCompacted) {
		return err
	}
	if !paging {
		return apierrors.NewResourceExpired(expired)
	}
	// A continue token at revision -1 lets the client go on at the latest revision.
	newToken, tokenErr := storage.EncodeContinue(continueKey, keyPrefix, -1)
	if tokenErr != nil {
		utilruntime.HandleError(tokenErr)
		return apierrors.NewResourceExpired(continueExpired)
	}
	statusError := apierrors.NewResourceExpired(inconsistentContinue)
	statusError.ErrStatus.ListMeta.Continue = newToken
	return statusError
}

// GetList implements storage.Interface.
func (s *store) GetList(ctx context.Context, key string, opts storage.ListOptions, listObj runtime.Object) error {
	keyPrefix, err := s.prepareKey(key, opts.Recursive)
	if err != nil {
		return err
	}
	listPtr, err := meta.GetItemsPtr(listObj)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(listPtr)
	if err != nil || v.Kind() != reflect.Slice {
		return fmt.Errorf("need ptr to slice: %v", err)
	}
	limit := opts.Predicate.Limit
	paging := limit > 0
	newItemFunc := itemMaker(v)

	withRev, continueKey, err := storage.ValidateListOptions(keyPrefix, s.versioner, opts)
	if err != nil {
		return err
	}
	// RemainingItemCount is reported for unfiltered pages only (as upstream),
	// so only those need the count.
	req := rangeRequest{start: []byte(keyPrefix), rev: withRev, limit: limit, count: paging && opts.Predicate.Empty()}
	if opts.Recursive {
		req.end = prefixEnd([]byte(keyPrefix))
		if continueKey != "" {
			req.start = []byte(continueKey)
		}
	}
	if !opts.Recursive {
		// A non-recursive list reads one key; paging does not apply.
		req.limit = 0
	}

	transformer := s.getTransformer()
	aggregator := s.listErrorAggregator()
	var lastKey []byte
	var hasMore bool
	var count int64
	for {
		resp, err := s.b.rangeRead(ctx, req)
		if err != nil {
			if errors.Is(err, errFutureRev) {
				cur, _ := s.b.currentRevision(ctx)
				return storage.NewTooLargeResourceVersionError(uint64(req.rev), uint64(cur), 0)
			}
			return interpretListError(err, len(opts.Predicate.Continue) > 0, continueKey, keyPrefix)
		}
		if req.rev == 0 {
			if err := s.validateMinimumResourceVersion(opts.ResourceVersion, uint64(resp.rev)); err != nil {
				return err
			}
			// Later pages read at the same revision.
			req.rev = resp.rev
		}
		hasMore = resp.more
		count = resp.count
		if len(resp.rows) == 0 && hasMore {
			return fmt.Errorf("no results were found, but the storage indicated there were more values remaining")
		}
		growSlice(v, 2048, len(resp.rows))
		limitReached := false
		for i, row := range resp.rows {
			if paging && int64(v.Len()) >= opts.Predicate.Limit {
				limitReached = true
				break
			}
			lastKey = row.key
			if err := s.appendItem(ctx, transformer, row, opts, newItemFunc, aggregator, v); err != nil {
				return err
			}
			resp.rows[i] = nil
		}
		if limitReached {
			hasMore = true
			break
		}
		if !hasMore || (paging && int64(v.Len()) >= opts.Predicate.Limit) {
			break
		}
		// A selector dropped items: read on from the last key with a
		// larger page, doubling as etcd3 does.
		if req.limit < maxLimit {
			req.limit = min(req.limit*2, maxLimit)
		}
		req.start = append(append([]byte{}, lastKey...), 0)
	}
	if err := aggregator.Aggregate(); err != nil {
		return s.listError(err)
	}
	if v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	continueValue, remainingItemCount, err := storage.PrepareContinueToken(string(lastKey), keyPrefix, req.rev, count, hasMore, opts)
	if err != nil {
		return err
	}
	return s.versioner.UpdateList(listObj, uint64(req.rev), continueValue, remainingItemCount)
}

// appendItem decodes row and appends it to v when it matches the predicate.
func (s *store) appendItem(ctx context.Context, transformer value.Transformer, row *kvRow, opts storage.ListOptions,
	newItemFunc func() runtime.Object, aggregator listItemErrors, v reflect.Value) error {
	data, _, err := transformer.TransformFromStorage(ctx, row.value, authenticatedData(row.key))
	if err != nil {
		if aggregator.Append(string(row.key), storage.NewInternalError(fmt.Errorf("unable to transform key %q: %w", row.key, err))) {
			return s.listError(aggregator.Aggregate())
		}
		return nil
	}
	if ctx.Err() != nil {
		return storage.NewTimeoutError(string(row.key), "request did not complete within requested timeout")
	}
	obj, err := s.decoder.DecodeListItem(ctx, data, uint64(row.modRev), newItemFunc)
	if err != nil {
		if aggregator.Append(string(row.key), err) {
			return s.listError(aggregator.Aggregate())
		}
		return nil
	}
	if matched, err := opts.Predicate.Matches(obj); err == nil && matched {
		v.Set(reflect.Append(v, reflect.ValueOf(obj).Elem()))
	}
	return nil
}

// listItemErrors collects the errors of a list's items; Append reports
// whether the list must stop.
type listItemErrors interface {
	Append(key string, err error) bool
	Aggregate() error
}

// abortOnFirstError stops a list at its first bad item.
type abortOnFirstError struct{ err error }

func (a *abortOnFirstError) Append(_ string, err error) bool { a.err = err; return true }
func (a *abortOnFirstError) Aggregate() error                { return a.err }

func (s *store) listErrorAggregator() listItemErrors {
	if unsafeDeletionEnabled() {
		return &corruptObjErrAggregator{}
	}
	return &abortOnFirstError{}
}

// growSlice makes room for the expected items, bounded, as etcd3 does.
func growSlice(v reflect.Value, maxCapacity int, size int) {
	c := v.Cap()
	want := min(max(c, size), maxCapacity)
	if want <= c {
		return
	}
	extra := reflect.MakeSlice(v.Type(), v.Len(), want)
	reflect.Copy(extra, v)
	v.Set(extra)
}

// Stats implements storage.Interface.
func (s *store) Stats(ctx context.Context) (storage.Stats, error) {
	prefix, err := s.prepareKey(s.resourcePrefix, true)
	if err != nil {
		return storage.Stats{}, err
	}
	if err := s.b.regressionErr(); err != nil {
		return storage.Stats{}, err
	}
	var st storage.Stats
	ctx, cancel := s.b.requestContext(ctx)
	defer cancel()
	err = s.b.pool.QueryRow(ctx, sqlStats, []byte(prefix), prefixEnd([]byte(prefix))).Scan(&st.ObjectCount, &st.EstimatedAverageObjectSizeBytes)
	if err != nil {
		return storage.Stats{}, fmt.Errorf("counting %s: %w", s.groupResource, err)
	}
	s.mu.RLock()
	estimating := s.estimateSizes
	s.mu.RUnlock()
	if !estimating {
		st.EstimatedAverageObjectSizeBytes = 0
	}
	return st, nil
}

// EnableResourceSizeEstimation implements storage.Interface. The average
// size comes from PostgreSQL with the count, so the keys function is unused.
func (s *store) EnableResourceSizeEstimation(getKeys storage.KeysFunc) error {
	if getKeys == nil {
		return errors.New("KeysFunc cannot be nil")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.estimateSizes {
		return errors.New("resourceSizeEstimator already enabled")
	}
	s.estimateSizes = true
	return nil
}

// listError turns collected corrupt items into their API error.
func (s *store) listError(err error) error {
	var agg *aggregatedStorageError
	if errors.As(err, &agg) {
		return agg.statusError(s.groupResource)
	}
	return err
}
