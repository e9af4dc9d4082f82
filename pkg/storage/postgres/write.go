package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
)

// objState is an object as read from storage.
type objState struct {
	obj   runtime.Object
	meta  *storage.ResponseMeta
	rev   int64
	data  []byte
	stale bool
}

// tooLarge refuses values over MaxObjectSize before anything is written.
func (s *store) tooLarge(key string, n int) error {
	if n <= MaxObjectSize {
		return nil
	}
	return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("object %q is %d bytes, over the %d byte limit of the storage", key, n, MaxObjectSize))
}

// Create implements storage.Interface.
func (s *store) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	preparedKey, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	if version, err := s.versioner.ObjectResourceVersion(obj); err == nil && version != 0 {
		return storage.ErrResourceVersionSetOnCreate
	}
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return fmt.Errorf("PrepareObjectForStorage failed: %v", err)
	}
	data, err := runtime.Encode(s.codec, obj)
	if err != nil {
		return err
	}
	newData, err := s.getTransformer().TransformToStorage(ctx, data, authenticatedData(preparedKey))
	if err != nil {
		return storage.NewInternalError(err)
	}
	if err := s.tooLarge(preparedKey, len(newData)); err != nil {
		return err
	}
	r := s.b.submit(ctx, &write{key: []byte(preparedKey), value: newData, expect: 0, ttl: int64(ttl)})
	if r.err != nil {
		return r.err
	}
	if !r.ok {
		return storage.NewKeyExistsError(preparedKey, 0)
	}
	if out != nil {
		return s.decoder.Decode(data, out, r.rev)
	}
	return nil
}

// Get implements storage.Interface.
func (s *store) Get(ctx context.Context, key string, opts storage.GetOptions, out runtime.Object) error {
	preparedKey, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	row, rev, err := s.b.get(ctx, []byte(preparedKey))
	if err != nil {
		return err
	}
	if err := s.validateMinimumResourceVersion(opts.ResourceVersion, uint64(rev)); err != nil {
		return err
	}
	if row == nil {
		if opts.IgnoreNotFound {
			return runtime.SetZeroValue(out)
		}
		return storage.NewKeyNotFoundError(preparedKey, 0)
	}
	data, _, err := s.getTransformer().TransformFromStorage(ctx, row.value, authenticatedData(preparedKey))
	if err == nil {
		err = s.decoder.Decode(data, out, row.modRev)
	} else {
		err = storage.NewInternalError(err)
	}
	var corrupt *corruptObjectError
	if errors.As(err, &corrupt) {
		// The registry offers unsafe deletion for exactly this error.
		return storage.NewCorruptObjError(preparedKey, corrupt)
	}
	return err
}

// Delete implements storage.Interface.
func (s *store) Delete(ctx context.Context, key string, out runtime.Object, preconditions *storage.Preconditions,
	validateDeletion storage.ValidateObjectFunc, cachedExistingObject runtime.Object, opts storage.DeleteOptions) error {
	preparedKey, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(out)
	if err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %v", err)
	}
	expectCorrupt := utilfeature.DefaultFeatureGate.Enabled(features.AllowUnsafeMalformedObjectDeletion) && opts.ExpectTransformOrDecodeError

	getCurrentState := s.currentState(ctx, preparedKey, v, false, expectCorrupt)
	var origState *objState
	var origStateIsCurrent bool
	if cachedExistingObject != nil && !expectCorrupt {
		origState, err = s.getStateFromObject(cachedExistingObject)
	} else {
		origState, err = getCurrentState()
		origStateIsCurrent = true
	}
	if err != nil {
		return err
	}
	for {
		// Preconditions and validation may have run on stale (cached) data:
		// on failure, re-read and retry unless the data was current.
		check := func() error {
			if preconditions != nil {
				if err := preconditions.Check(preparedKey, origState.obj); err != nil {
					return err
				}
			}
			return validateDeletion(ctx, origState.obj)
		}
		if checkErr := check(); checkErr != nil {
			if origStateIsCurrent {
				return checkErr
			}
			cachedRev := origState.rev
			origState, err = getCurrentState()
			if err != nil {
				return err
			}
			origStateIsCurrent = true
			if cachedRev == origState.rev {
				return checkErr
			}
			continue
		}
		r := s.b.submit(ctx, &write{key: []byte(preparedKey), delete: true, expect: origState.rev, getOnFailure: true})
		if r.err != nil {
			return r.err
		}
		if !r.ok {
			klog.V(4).InfoS("Deletion conflicted; retrying", "key", preparedKey)
			origState, err = s.getState(ctx, r.cur, preparedKey, v, false, expectCorrupt)
			if err != nil {
				return err
			}
			origStateIsCurrent = true
			continue
		}
		if !expectCorrupt {
			return s.decoder.Decode(origState.data, out, r.rev)
		}
		return nil
	}
}

// GuaranteedUpdate implements storage.Interface.
func (s *store) GuaranteedUpdate(ctx context.Context, key string, destination runtime.Object, ignoreNotFound bool,
	preconditions *storage.Preconditions, tryUpdate storage.UpdateFunc, cachedExistingObject runtime.Object) error {
	preparedKey, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(destination)
	if err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %v", err)
	}
	getCurrentState := s.currentState(ctx, preparedKey, v, ignoreNotFound, false)

	var origState *objState
	var origStateIsCurrent bool
	if cachedExistingObject != nil {
		origState, err = s.getStateFromObject(cachedExistingObject)
	} else {
		origState, err = getCurrentState()
		origStateIsCurrent = true
	}
	if err != nil {
		return err
	}

	for {
		if err := preconditions.Check(preparedKey, origState.obj); err != nil {
			if origStateIsCurrent {
				return err
			}
			if origState, err = getCurrentState(); err != nil {
				return err
			}
			origStateIsCurrent = true
			continue
		}

		ret, ttl, err := s.updateState(origState, tryUpdate)
		if err != nil {
			if origStateIsCurrent {
				return err
			}
			cachedRev, cachedUpdateErr := origState.rev, err
			if origState, err = getCurrentState(); err != nil {
				return err
			}
			origStateIsCurrent = true
			if cachedRev == origState.rev {
				return cachedUpdateErr
			}
			continue
		}

		data, err := runtime.Encode(s.codec, ret)
		if err != nil {
			return err
		}
		if !origState.stale && bytes.Equal(data, origState.data) {
			// Nothing changes. If the original came from a cache, make sure
			// storage really holds these bytes before skipping the write.
			if !origStateIsCurrent {
				if origState, err = getCurrentState(); err != nil {
					return err
				}
				origStateIsCurrent = true
				if !bytes.Equal(data, origState.data) {
					continue
				}
			}
			if !origState.stale {
				return s.decoder.Decode(origState.data, destination, origState.rev)
			}
		}

		newData, err := s.getTransformer().TransformToStorage(ctx, data, authenticatedData(preparedKey))
		if err != nil {
			return storage.NewInternalError(err)
		}
		if err := s.tooLarge(preparedKey, len(newData)); err != nil {
			return err
		}
		r := s.b.submit(ctx, &write{key: []byte(preparedKey), value: newData, expect: origState.rev, ttl: int64(ttl), getOnFailure: true})
		if r.err != nil {
			return r.err
		}
		if !r.ok {
			klog.V(4).InfoS("GuaranteedUpdate conflicted; retrying", "key", preparedKey)
			if origState, err = s.getState(ctx, r.cur, preparedKey, v, ignoreNotFound, false); err != nil {
				return err
			}
			origStateIsCurrent = true
			continue
		}
		return s.decoder.Decode(data, destination, r.rev)
	}
}

// currentState returns a function that reads key's current state.
func (s *store) currentState(ctx context.Context, key string, v reflect.Value, ignoreNotFound, expectCorrupt bool) func() (*objState, error) {
	return func() (*objState, error) {
		row, _, err := s.b.get(ctx, []byte(key))
		if err != nil {
			return nil, err
		}
		return s.getState(ctx, row, key, v, ignoreNotFound, expectCorrupt)
	}
}

// getState builds an objState from a stored row (nil: the key does not exist).
// With expectCorrupt, an object that does transform and decode is an error,
// and one that does not is returned without obj.
func (s *store) getState(ctx context.Context, row *kvRow, key string, v reflect.Value, ignoreNotFound, expectCorrupt bool) (*objState, error) {
	state := &objState{meta: &storage.ResponseMeta{}}
	if u, ok := v.Addr().Interface().(runtime.Unstructured); ok {
		state.obj = u.NewEmptyInstance()
	} else {
		state.obj = reflect.New(v.Type()).Interface().(runtime.Object)
	}
	if row == nil {
		if !ignoreNotFound {
			return nil, storage.NewKeyNotFoundError(key, 0)
		}
		if err := runtime.SetZeroValue(state.obj); err != nil {
			return nil, err
		}
		return state, nil
	}
	state.rev = row.modRev
	state.meta.ResourceVersion = uint64(state.rev)
	data, stale, err := s.getTransformer().TransformFromStorage(ctx, row.value, authenticatedData(key))
	if err != nil {
		if !expectCorrupt {
			return nil, storage.NewInternalError(err)
		}
		state.obj, state.stale = nil, true
		return state, nil
	}
	state.data, state.stale = data, stale
	if err := s.decoder.Decode(state.data, state.obj, state.rev); err != nil {
		if !expectCorrupt {
			return nil, err
		}
		state.obj = nil
		return state, nil
	}
	if expectCorrupt {
		return nil, storage.NewInvalidObjError(key, "unsafe deletion is not allowed because the object is decodable from storage")
	}
	return state, nil
}

func (s *store) getStateFromObject(obj runtime.Object) (*objState, error) {
	state := &objState{obj: obj, meta: &storage.ResponseMeta{}}
	rv, err := s.versioner.ObjectResourceVersion(obj)
	if err != nil {
		return nil, fmt.Errorf("couldn't get resource version: %v", err)
	}
	state.rev = int64(rv)
	state.meta.ResourceVersion = rv
	// The stored bytes carry no resource version: clear it to encode, then restore.
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return nil, fmt.Errorf("PrepareObjectForStorage failed: %v", err)
	}
	state.data, err = runtime.Encode(s.codec, obj)
	if err != nil {
		return nil, err
	}
	if err := s.versioner.UpdateObject(state.obj, rv); err != nil {
		klog.ErrorS(err, "Failed to update object version")
	}
	return state, nil
}

func (s *store) updateState(st *objState, userUpdate storage.UpdateFunc) (runtime.Object, uint64, error) {
	ret, ttlPtr, err := userUpdate(st.obj, *st.meta)
	if err != nil {
		return nil, 0, err
	}
	if err := s.versioner.PrepareObjectForStorage(ret); err != nil {
		return nil, 0, fmt.Errorf("PrepareObjectForStorage failed: %v", err)
	}
	var ttl uint64
	if ttlPtr != nil {
		ttl = *ttlPtr
	}
	return ret, ttl, nil
}
