package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
)

// Unsafe deletion of corrupt objects (the AllowUnsafeMalformedObjectDeletion
// feature), as the etcd3 store offers it: a value that cannot be transformed
// or decoded is reported as corrupt, lists collect such items instead of
// failing on the first, and a delete with ExpectTransformOrDecodeError can
// remove it.

const (
	untransformable = iota + 1
	undecodable
)

// corruptObjectError marks data in storage that does not transform or decode.
type corruptObjectError struct {
	err      error
	errType  int
	revision int64
}

func (e *corruptObjectError) Unwrap() error { return e.err }
func (e *corruptObjectError) Error() string {
	what := "data from the storage is not transformable"
	if e.errType == undecodable {
		what = "object not decodable"
	}
	return fmt.Sprintf("%s revision=%d: %v", what, e.revision, e.err)
}

func unsafeDeletionEnabled() bool {
	return utilfeature.DefaultFeatureGate.Enabled(features.AllowUnsafeMalformedObjectDeletion)
}

// corruptInterpretingTransformer reports every transform failure as corrupt data.
type corruptInterpretingTransformer struct{ value.Transformer }

func (t corruptInterpretingTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	out, stale, err := t.Transformer.TransformFromStorage(ctx, data, dataCtx)
	if err != nil {
		var c *corruptObjectError
		if !errors.As(err, &c) {
			err = &corruptObjectError{err: err, errType: untransformable}
		}
	}
	return out, stale, err
}

// corruptInterpretingDecoder reports every decode failure as corrupt data.
type corruptInterpretingDecoder struct{ etcd3.Decoder }

func (d corruptInterpretingDecoder) Decode(value []byte, objPtr runtime.Object, rev int64) error {
	if err := d.Decoder.Decode(value, objPtr, rev); err != nil {
		return &corruptObjectError{err: err, errType: undecodable, revision: rev}
	}
	return nil
}

func (d corruptInterpretingDecoder) DecodeListItem(ctx context.Context, data []byte, rev uint64, newItemFunc func() runtime.Object) (runtime.Object, error) {
	obj, err := d.Decoder.DecodeListItem(ctx, data, rev, newItemFunc)
	if err != nil {
		err = &corruptObjectError{err: err, errType: undecodable, revision: int64(rev)}
	}
	return obj, err
}

// maxCorruptObjErrsToAggregate caps the corrupt items one list reports.
const maxCorruptObjErrsToAggregate = 100

var errTooMany = errors.New("too many errors, the list is truncated")

// corruptObjErrAggregator collects corrupt items and stops on anything else.
type corruptObjErrAggregator struct {
	errs     []error
	abortErr error
}

func (a *corruptObjErrAggregator) Append(key string, err error) bool {
	if a.abortErr != nil {
		return true
	}
	var c *corruptObjectError
	if !errors.As(err, &c) {
		a.abortErr = err
		return true
	}
	a.errs = append(a.errs, storage.NewCorruptObjError(key, c))
	if len(a.errs) >= maxCorruptObjErrsToAggregate {
		a.abortErr = errTooMany
		return true
	}
	return false
}

func (a *corruptObjErrAggregator) Aggregate() error {
	switch {
	case len(a.errs) == 0:
		return a.abortErr
	default:
		return &aggregatedStorageError{errs: utilerrors.NewAggregate(a.errs), abortErr: a.abortErr}
	}
}

type aggregatedStorageError struct {
	errs     utilerrors.Aggregate
	abortErr error
}

func (e *aggregatedStorageError) Error() string {
	var b strings.Builder
	errs := e.errs.Errors()
	fmt.Fprintf(&b, "unable to transform or decode %d objects: {\n", len(errs))
	for _, err := range errs {
		fmt.Fprintf(&b, "\t%s\n", err.Error())
	}
	b.WriteString("}")
	if e.abortErr != nil {
		fmt.Fprintf(&b, ", aborted: %v", e.abortErr)
	}
	return b.String()
}

// statusError is the API error of a list with corrupt items: one cause per item.
func (e *aggregatedStorageError) statusError(gr schema.GroupResource) *apierrors.StatusError {
	errs := e.errs.Errors()
	var causes []metav1.StatusCause
	for _, err := range errs {
		var se *storage.StorageError
		if errors.As(err, &se) {
			causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeUnexpectedServerResponse, Field: se.Key, Message: err.Error()})
		}
	}
	switch {
	case errors.Is(e.abortErr, errTooMany):
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeTooMany, Message: errTooMany.Error()})
	case e.abortErr != nil:
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeUnexpectedServerResponse, Message: e.abortErr.Error()})
	}
	message := fmt.Sprintf("failed to read one or more %s from the storage: %v", gr.String(), errs[0])
	if len(errs) > 1 {
		message = fmt.Sprintf("%s (and %d more)", message, len(errs)-1)
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusInternalServerError,
		Reason:  metav1.StatusReasonStoreReadError,
		Details: &metav1.StatusDetails{Group: gr.Group, Kind: gr.Resource, Name: "list", Causes: causes},
		Message: message,
	}}
}

// corruptObjectDeletedError: a DELETED event whose object does not decode.
type corruptObjectDeletedError struct{ err error }

func (e *corruptObjectDeletedError) Error() string {
	return fmt.Sprintf("saw a DELETED event, but object data is corrupt - %v", e.err)
}
func (e *corruptObjectDeletedError) Unwrap() error { return e.err }

func (e *corruptObjectDeletedError) status() *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusInternalServerError,
		Reason:  metav1.StatusReasonStoreReadError,
		Message: e.Error(),
	}}
}
