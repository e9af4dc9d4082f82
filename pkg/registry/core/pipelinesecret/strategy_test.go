package pipelinesecret

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

func TestTableNeverShowsValues(t *testing.T) {
	const value = "s3cr3t-value"
	list := &core.PipelineSecretList{Items: []core.PipelineSecret{
		{ObjectMeta: metav1.ObjectMeta{Name: "es"}, Data: map[string][]byte{"password": []byte(value), "user": []byte(value)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "empty"}},
	}}
	tbl, err := tableConvertor.ConvertToTable(context.Background(), list, &metav1.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []int64{2, 0}
	for i, row := range tbl.Rows {
		for _, cell := range row.Cells {
			if strings.Contains(fmt.Sprint(cell), value) || strings.Contains(fmt.Sprint(cell), "password") {
				t.Errorf("row %d prints %q", i, cell)
			}
		}
		if row.Cells[1] != wantKeys[i] {
			t.Errorf("row %d keys = %v, want %d", i, row.Cells[1], wantKeys[i])
		}
	}
}

func TestValidationNeverEchoesValues(t *testing.T) {
	s := NewStrategy(nil)
	obj := &core.PipelineSecret{ObjectMeta: metav1.ObjectMeta{Name: "es", Namespace: "default"}, Data: map[string][]byte{"bad/key": []byte("s3cr3t-value")}}
	errs := s.Validate(context.Background(), obj)
	if len(errs) != 1 {
		t.Fatalf("errors = %v, want one for the key", errs)
	}
	if strings.Contains(errs.ToAggregate().Error(), "s3cr3t-value") {
		t.Errorf("validation error reveals the value: %v", errs)
	}
}
