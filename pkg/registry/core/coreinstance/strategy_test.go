package coreinstance

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/apis/core/install"
)

func newScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	return scheme
}

func TestStrategies(t *testing.T) {
	s := NewStrategy(newScheme())
	ci := &core.CoreInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default", ResourceVersion: "3"},
		Spec:       core.CoreInstanceSpec{Mode: core.CoreInstanceModeKubernetes, Environment: "prod"},
		Status:     core.CoreInstanceStatus{Phase: core.CoreInstancePhaseRunning, Pipelines: 4},
	}
	s.PrepareForCreate(context.Background(), ci)
	if ci.Status.Phase != core.CoreInstancePhaseWaiting || ci.Status.Pipelines != 0 || ci.Generation != 1 {
		t.Fatalf("after create: status %+v generation %d, want Waiting and generation 1", ci.Status, ci.Generation)
	}

	// An agent heartbeat through the status subresource changes status only.
	status := NewStatusStrategy(s)
	beat := ci.DeepCopy()
	beat.Spec.Environment = "hijacked"
	beat.Status = core.CoreInstanceStatus{Phase: core.CoreInstancePhaseRunning, LastHeartbeatTime: &metav1.Time{Time: time.Now()}, Pipelines: 2}
	status.PrepareForUpdate(context.Background(), beat, ci)
	if beat.Spec.Environment != "prod" || beat.Status.Pipelines != 2 {
		t.Errorf("status update: spec.environment %q pipelines %d, want prod and 2", beat.Spec.Environment, beat.Status.Pipelines)
	}
	if errs := status.ValidateUpdate(context.Background(), beat, ci); len(errs) != 0 {
		t.Errorf("valid heartbeat refused: %v", errs)
	}
	beat.Status.Phase = "Lost"
	if errs := status.ValidateUpdate(context.Background(), beat, ci); len(errs) != 1 || errs[0].Field != "status.phase" {
		t.Errorf("errors = %v, want one on status.phase", errs)
	}

	// A spec update keeps the reported status and bumps the generation.
	upd := beat.DeepCopy()
	upd.Spec.Environment = "staging"
	upd.Status = core.CoreInstanceStatus{}
	s.PrepareForUpdate(context.Background(), upd, beat)
	if upd.Status.Pipelines != 2 || upd.Generation != 2 {
		t.Errorf("spec update: pipelines %d generation %d, want 2 and 2", upd.Status.Pipelines, upd.Generation)
	}
}

func TestPhaseAndTable(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(-ago)} }
	tests := []struct {
		name      string
		status    core.CoreInstanceStatus
		wantPhase string
		wantBeat  string
	}{
		{name: "never reported", status: core.CoreInstanceStatus{}, wantPhase: "Waiting", wantBeat: "<never>"},
		{name: "fresh heartbeat", status: core.CoreInstanceStatus{Phase: core.CoreInstancePhaseRunning, LastHeartbeatTime: at(30 * time.Second)}, wantPhase: "Running", wantBeat: "30s"},
		{name: "stale heartbeat shows unreachable", status: core.CoreInstanceStatus{Phase: core.CoreInstancePhaseRunning, LastHeartbeatTime: at(36 * time.Second)}, wantPhase: "Unreachable", wantBeat: "36s"},
		{name: "recorded unreachable", status: core.CoreInstanceStatus{Phase: core.CoreInstancePhaseUnreachable, LastHeartbeatTime: at(time.Hour)}, wantPhase: "Unreachable", wantBeat: "60m"},
	}
	conv := newTableConvertor(func() time.Time { return now })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci := &core.CoreInstance{
				ObjectMeta: metav1.ObjectMeta{Name: "edge", CreationTimestamp: metav1.NewTime(now.Add(-48 * time.Hour))},
				Spec:       core.CoreInstanceSpec{Environment: "prod", Mode: core.CoreInstanceModeKubernetes},
				Status:     tt.status,
			}
			ci.Status.Pipelines = 3
			tbl, err := conv.ConvertToTable(context.Background(), ci, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range tbl.ColumnDefinitions {
				if c.Priority == 0 {
					names = append(names, c.Name)
				}
			}
			if got := names; len(got) != 5 || got[0] != "Name" || got[1] != "Environment" || got[2] != "Pipelines" || got[3] != "Status" || got[4] != "Age" {
				t.Errorf("columns = %v, want Name Environment Pipelines Status Age", got)
			}
			cells := tbl.Rows[0].Cells
			want := []any{"edge", "prod", int64(3), tt.wantPhase, "", "Kubernetes", tt.wantBeat, "2d"}
			for i := range want {
				if cells[i] != want[i] {
					t.Errorf("cell %d (%s) = %v, want %v", i, tbl.ColumnDefinitions[i].Name, cells[i], want[i])
				}
			}
		})
	}
}
