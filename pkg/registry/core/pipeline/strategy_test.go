package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/apis/core/install"
	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

const config = `[INPUT]
    name forward

[OUTPUT]
    name  stdout
    match *
`

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	install.Install(scheme)
	return scheme
}

func newPipeline() *core.Pipeline {
	return &core.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "logs", Namespace: "team-a", ResourceVersion: "7", Generation: 3,
			Labels: map[string]string{"team": "a"}},
		Spec: core.PipelineSpec{
			CoreInstance: "edge", Config: config, ConfigFormat: core.ConfigFormatClassic,
			Kind: core.PipelineKindDeployment, Replicas: ptr.To[int32](2), ResourceProfile: core.DefaultResourceProfile,
			DeploymentStrategy: core.DeploymentStrategyRollingUpdate, ServiceType: corev1.ServiceTypeLoadBalancer,
		},
		Status: core.PipelineStatus{Phase: core.PipelinePhaseStarted, Replicas: 2, ReadyReplicas: 1, Selector: "app=logs", ObservedGeneration: 3},
	}
}

func TestPrepareForCreate(t *testing.T) {
	s := NewStrategy(newScheme(t), nil)
	p := newPipeline()
	s.PrepareForCreate(context.Background(), p)
	if p.Status.Phase != core.PipelinePhaseNew || p.Status.Replicas != 0 || p.Status.Selector != "" {
		t.Errorf("status = %+v, want only phase New", p.Status)
	}
	if p.Generation != 1 {
		t.Errorf("generation = %d, want 1", p.Generation)
	}
}

func TestPrepareForUpdate(t *testing.T) {
	tests := []struct {
		name           string
		mutate         func(p *core.Pipeline)
		wantGeneration int64
	}{
		{name: "spec change bumps generation", mutate: func(p *core.Pipeline) { p.Spec.Replicas = ptr.To[int32](5) }, wantGeneration: 4},
		{name: "label change keeps generation", mutate: func(p *core.Pipeline) { p.Labels = map[string]string{"team": "b"} }, wantGeneration: 3},
		{name: "status in the request is ignored", mutate: func(p *core.Pipeline) { p.Status.Phase = core.PipelinePhaseFailed }, wantGeneration: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStrategy(newScheme(t), nil)
			old := newPipeline()
			p := old.DeepCopy()
			tt.mutate(p)
			s.PrepareForUpdate(context.Background(), p, old)
			if p.Generation != tt.wantGeneration {
				t.Errorf("generation = %d, want %d", p.Generation, tt.wantGeneration)
			}
			if p.Status.Phase != old.Status.Phase {
				t.Errorf("status phase = %q, want the stored %q", p.Status.Phase, old.Status.Phase)
			}
		})
	}
}

func TestStatusStrategyKeepsSpecAndLabels(t *testing.T) {
	s := NewStatusStrategy(NewStrategy(newScheme(t), nil))
	old := newPipeline()
	p := old.DeepCopy()
	p.Spec.Replicas = ptr.To[int32](9)
	p.Spec.Kind = core.PipelineKindDaemonSet
	p.Labels = map[string]string{"team": "evil"}
	p.Status.Phase = core.PipelinePhaseScaling
	s.PrepareForUpdate(context.Background(), p, old)
	if *p.Spec.Replicas != 2 || p.Spec.Kind != core.PipelineKindDeployment || p.Labels["team"] != "a" {
		t.Errorf("status update changed spec or labels: replicas %d, kind %s, labels %v", *p.Spec.Replicas, p.Spec.Kind, p.Labels)
	}
	if p.Status.Phase != core.PipelinePhaseScaling {
		t.Errorf("status phase = %q, want Scaling", p.Status.Phase)
	}
	if errs := s.ValidateUpdate(context.Background(), p, old); len(errs) != 0 {
		t.Errorf("unexpected errors: %v", errs)
	}
	p.Status.ReadyReplicas = 7
	if errs := s.ValidateUpdate(context.Background(), p, old); len(errs) != 1 || errs[0].Field != "status.readyReplicas" {
		t.Errorf("errors = %v, want one on status.readyReplicas", errs)
	}
}

func TestResetFields(t *testing.T) {
	main := NewStrategy(newScheme(t), nil)
	status := NewStatusStrategy(main)
	version := fieldpath.APIVersion("core.calyptia.com/v1")
	tests := []struct {
		name     string
		set      *fieldpath.Set
		reset    []fieldpath.Path
		notReset []fieldpath.Path
		strategy string
	}{
		{name: "main resource", set: main.GetResetFields()[version],
			reset: []fieldpath.Path{fieldpath.MakePathOrDie("status")}, notReset: []fieldpath.Path{fieldpath.MakePathOrDie("spec")}},
		{name: "status subresource", set: status.GetResetFields()[version],
			reset: []fieldpath.Path{fieldpath.MakePathOrDie("spec"), fieldpath.MakePathOrDie("metadata", "labels")}, notReset: []fieldpath.Path{fieldpath.MakePathOrDie("status")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set == nil {
				t.Fatalf("no reset fields for %s", version)
			}
			for _, p := range tt.reset {
				if !tt.set.Has(p) {
					t.Errorf("%s is not reset", p)
				}
			}
			for _, p := range tt.notReset {
				if tt.set.Has(p) {
					t.Errorf("%s is reset", p)
				}
			}
		})
	}
}

func TestValidateUpdateKindIsImmutable(t *testing.T) {
	s := NewStrategy(newScheme(t), nil)
	old := newPipeline()
	p := old.DeepCopy()
	p.Spec.Kind = core.PipelineKindDaemonSet
	p.Spec.Replicas = nil
	errs := s.ValidateUpdate(context.Background(), p, old)
	if len(errs) != 1 || errs[0].Field != "spec.kind" || !strings.Contains(errs[0].Error(), "cannot update pipeline kind") {
		t.Errorf("errors = %v, want the kind to be immutable", errs)
	}
}

func TestFieldSelectors(t *testing.T) {
	scheme := newScheme(t)
	gvk := v1.SchemeGroupVersion.WithKind("Pipeline")
	tests := []struct {
		selector string
		match    bool
		badLabel bool
	}{
		{selector: "spec.coreInstance=edge", match: true},
		{selector: "spec.coreInstance=other", match: false},
		{selector: "status.phase=Started,metadata.name=logs", match: true},
		{selector: "status.phase!=Started", match: false},
		{selector: "metadata.namespace=team-a", match: true},
		{selector: "spec.kind=Deployment", badLabel: true},
	}
	p := newPipeline()
	for _, tt := range tests {
		t.Run(tt.selector, func(t *testing.T) {
			sel, err := fields.ParseSelector(tt.selector)
			if err != nil {
				t.Fatal(err)
			}
			// What the API server does with ?fieldSelector= before it reaches storage.
			sel, err = sel.Transform(func(f, v string) (string, string, error) {
				return scheme.ConvertFieldLabel(gvk, f, v)
			})
			if tt.badLabel {
				if err == nil {
					t.Fatalf("field label of %q accepted, want it refused", tt.selector)
				}
				return
			}
			if err != nil {
				t.Fatalf("field label conversion: %v", err)
			}
			pred := MatchPipeline(labels.Everything(), sel)
			got, err := pred.Matches(p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.match {
				t.Errorf("match = %v, want %v", got, tt.match)
			}
		})
	}
	if got := coreInstanceTrigger(p); got != "edge" {
		t.Errorf("watch trigger value = %q, want edge", got)
	}
}

func TestTable(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	daemon := newPipeline()
	daemon.Name = "nodes"
	daemon.Spec.Kind, daemon.Spec.Replicas = core.PipelineKindDaemonSet, nil
	daemon.Status = core.PipelineStatus{Replicas: 3, ReadyReplicas: 3}
	daemon.CreationTimestamp = metav1.NewTime(now.Add(-2 * time.Hour))
	deploy := newPipeline()
	deploy.CreationTimestamp = metav1.NewTime(now.Add(-90 * time.Second))
	list := &core.PipelineList{ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next"}, Items: []core.Pipeline{*deploy, *daemon}}

	conv := *tableConvertor
	conv.Now = func() time.Time { return now }
	tbl, err := conv.ConvertToTable(context.Background(), list, &metav1.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var header []string
	for _, c := range tbl.ColumnDefinitions {
		if c.Priority == 0 {
			header = append(header, strings.ToUpper(c.Name))
		}
	}
	if got, want := strings.Join(header, " "), "NAME CORE-INSTANCE KIND REPLICAS STATUS AGE"; got != want {
		t.Errorf("columns = %q, want %q", got, want)
	}
	if tbl.ResourceVersion != "42" || tbl.Continue != "next" {
		t.Errorf("table list metadata = %q/%q, want 42/next", tbl.ResourceVersion, tbl.Continue)
	}
	want := [][]any{
		{"logs", "edge", "Deployment", "1/2", "Started", "classic", core.DefaultResourceProfile, "RollingUpdate", "90s"},
		{"nodes", "edge", "DaemonSet", "3/3", "New", "classic", core.DefaultResourceProfile, "RollingUpdate", "120m"},
	}
	if len(tbl.Rows) != len(want) {
		t.Fatalf("rows = %d, want %d", len(tbl.Rows), len(want))
	}
	for i, row := range tbl.Rows {
		if len(row.Cells) != len(tbl.ColumnDefinitions) {
			t.Errorf("row %d has %d cells for %d columns", i, len(row.Cells), len(tbl.ColumnDefinitions))
		}
		for j := range want[i] {
			if row.Cells[j] != want[i][j] {
				t.Errorf("row %d cell %d (%s) = %v, want %v", i, j, tbl.ColumnDefinitions[j].Name, row.Cells[j], want[i][j])
			}
		}
		if row.Object.Object == nil {
			t.Errorf("row %d carries no object (needed for -o custom-columns and --show-labels)", i)
		}
	}
}

func TestScaleUpdate(t *testing.T) {
	tests := []struct {
		name         string
		kind         core.PipelineKind
		replicas     int32
		scaleRV      string
		wantReplicas int32
		wantRV       string
		wantInvalid  string
		wrongUID     bool
	}{
		{name: "scale up", kind: core.PipelineKindDeployment, replicas: 3, scaleRV: "7", wantReplicas: 3, wantRV: "7"},
		{name: "scale to zero without a resourceVersion is unconditional", kind: core.PipelineKindStatefulSet, replicas: 0, wantReplicas: 0, wantRV: ""},
		{name: "resourceVersion is a precondition", kind: core.PipelineKindDeployment, replicas: 4, scaleRV: "5", wantReplicas: 4, wantRV: "5"},
		{name: "negative", kind: core.PipelineKindDeployment, replicas: -1, wantInvalid: "spec.replicas: Invalid value: -1"},
		{name: "daemonset", kind: core.PipelineKindDaemonSet, replicas: 2, wantInvalid: "spec.replicas: Forbidden: DaemonSet pipelines"},
		{name: "uid precondition", kind: core.PipelineKindDeployment, replicas: 2, wrongUID: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := newPipeline()
			old.Spec.Kind = tt.kind
			scale := scaleFromPipeline(old)
			if scale.Spec.Replicas != 2 || scale.Status.Replicas != 2 || scale.Status.Selector != "app=logs" || scale.ResourceVersion != "7" {
				t.Fatalf("scale of the stored pipeline = %+v", scale)
			}
			scale.Spec.Replicas = tt.replicas
			scale.ResourceVersion = tt.scaleRV
			if tt.wrongUID {
				scale.UID = "other"
			}
			info := &scaleUpdatedObjectInfo{name: "logs", reqObjInfo: rest.DefaultUpdatedObjectInfo(scale)}
			obj, err := info.UpdatedObject(context.Background(), old)
			if tt.wrongUID {
				if !apierrors.IsConflict(err) {
					t.Fatalf("err = %v, want 409", err)
				}
				return
			}
			if tt.wantInvalid != "" {
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantInvalid) {
					t.Fatalf("err = %v, want 422 containing %q", err, tt.wantInvalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := obj.(*core.Pipeline)
			if *p.Spec.Replicas != tt.wantReplicas || p.ResourceVersion != tt.wantRV {
				t.Errorf("replicas %d rv %q, want %d %q", *p.Spec.Replicas, p.ResourceVersion, tt.wantReplicas, tt.wantRV)
			}
			if *old.Spec.Replicas != 2 {
				t.Errorf("the stored pipeline was modified")
			}
		})
	}
}

func TestScaleOfMissingPipeline(t *testing.T) {
	info := &scaleUpdatedObjectInfo{name: "gone", reqObjInfo: rest.DefaultUpdatedObjectInfo(&autoscalingv1.Scale{})}
	if _, err := info.UpdatedObject(context.Background(), &core.Pipeline{}); !apierrors.IsNotFound(err) {
		t.Errorf("err = %v, want 404", err)
	}
}

func TestScaleIsAutoscalingV1(t *testing.T) {
	r := &ScaleREST{}
	if gvk := r.GroupVersionKind(v1.SchemeGroupVersion); gvk != autoscalingv1.SchemeGroupVersion.WithKind("Scale") {
		t.Errorf("scale kind = %v", gvk)
	}
	if _, ok := r.New().(*autoscalingv1.Scale); !ok {
		t.Errorf("New() = %T", r.New())
	}
}
