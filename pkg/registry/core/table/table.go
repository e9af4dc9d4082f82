// Package table turns objects into the metav1.Table that `kubectl get` prints: each resource
// declares its columns and how one object fills a row, and this package does the rest (lists,
// list metadata, NAME and AGE).
package table

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Convertor is a rest.TableConvertor for objects of type T.
type Convertor[T runtime.Object] struct {
	// Columns are the columns between NAME and AGE.
	Columns []metav1.TableColumnDefinition
	// Cells returns the cells of those columns for one object.
	Cells func(obj T) []any
	// Now is the clock for AGE; nil means time.Now.
	Now func() time.Time
}

var (
	nameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: "Name must be unique within a namespace."}
	ageColumn  = metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: "Time since the object was created."}
)

// ConvertToTable implements rest.TableConvertor for a single object or a list of them.
func (c *Convertor[T]) ConvertToTable(_ context.Context, object runtime.Object, options runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{}
	if opts, ok := options.(*metav1.TableOptions); !ok || !opts.NoHeaders {
		t.ColumnDefinitions = make([]metav1.TableColumnDefinition, 0, len(c.Columns)+2)
		t.ColumnDefinitions = append(t.ColumnDefinitions, nameColumn)
		t.ColumnDefinitions = append(t.ColumnDefinitions, c.Columns...)
		t.ColumnDefinitions = append(t.ColumnDefinitions, ageColumn)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	row := func(obj runtime.Object) (metav1.TableRow, error) {
		typed, ok := obj.(T)
		if !ok {
			return metav1.TableRow{}, fmt.Errorf("table: unexpected object type %T", obj)
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return metav1.TableRow{}, fmt.Errorf("table: %w", err)
		}
		cells := make([]any, 0, len(c.Columns)+2)
		cells = append(cells, m.GetName())
		cells = append(cells, c.Cells(typed)...)
		cells = append(cells, Age(m.GetCreationTimestamp(), now()))
		return metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: obj}}, nil
	}

	if meta.IsListType(object) {
		// Keep the list's paging state so `kubectl get --chunk-size` and watches continue from it.
		if l, err := meta.ListAccessor(object); err == nil {
			t.ResourceVersion = l.GetResourceVersion()
			t.Continue = l.GetContinue()
			t.RemainingItemCount = l.GetRemainingItemCount()
		}
		items, err := meta.ExtractList(object)
		if err != nil {
			return nil, fmt.Errorf("table: %w", err)
		}
		t.Rows = make([]metav1.TableRow, 0, len(items))
		for _, item := range items {
			r, err := row(item)
			if err != nil {
				return nil, err
			}
			t.Rows = append(t.Rows, r)
		}
		return t, nil
	}

	if m, err := meta.Accessor(object); err == nil {
		t.ResourceVersion = m.GetResourceVersion()
	}
	r, err := row(object)
	if err != nil {
		return nil, err
	}
	t.Rows = []metav1.TableRow{r}
	return t, nil
}

// Age renders the time since ts the way kubectl does ("5m", "3d"), or "<unknown>".
func Age(ts metav1.Time, now time.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(ts.Time))
}
