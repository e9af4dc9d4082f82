package core_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/registry/core/pipeline/references"
)

type namedObject interface {
	runtime.Object
	GetName() string
}

// TestPipelineReferenceConditionsOnWrite checks that a pipeline is stored with its
// ReferencesResolved and ConfigValid conditions already set, so that the references controller
// has nothing to write after a create or a spec change.
func TestPipelineReferenceConditionsOnWrite(t *testing.T) {
	storage := newStorage(t)
	pipelines := storage["pipelines"].(rest.StandardStorage)
	const ns = "refs"
	ctx := nsContext(ns)
	for _, c := range []struct {
		resource string
		obj      namedObject
	}{
		{"coreinstances", &core.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns}, Spec: core.CoreInstanceSpec{Mode: core.CoreInstanceModeKubernetes}}},
		{"pipelinesecrets", &core.PipelineSecret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns}, Data: map[string][]byte{"user": []byte("elastic")}}},
		{"resourceprofiles", &core.ResourceProfile{ObjectMeta: metav1.ObjectMeta{Name: "custom", Namespace: ns}}},
	} {
		if _, err := storage[c.resource].(rest.Creater).Create(ctx, c.obj, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s: %v", c.resource, err)
		}
		// The checks read the watch cache: wait until it has what was just created.
		getter := storage[c.resource].(rest.Getter)
		if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
			_, err := getter.Get(ctx, c.obj.GetName(), &metav1.GetOptions{ResourceVersion: "0"})
			return err == nil, nil
		}); err != nil {
			t.Fatalf("%s %s never reached the watch cache", c.resource, c.obj.GetName())
		}
	}

	httpOutput := func(props string) string {
		return "[INPUT]\n    name dummy\n\n[OUTPUT]\n    name http\n    match *\n    host collector.example.com\n" + props
	}
	withSecretRef := httpOutput("    http_user {{ secrets.user }}\n")
	withMissingKey := httpOutput("    http_user {{ secrets.user }}\n    http_passwd {{ secrets.password }}\n")
	tests := []struct {
		name                 string
		coreInstance         string
		profile              string
		secrets              []string
		config               string
		wantRefs, wantConfig metav1.ConditionStatus
		wantReason           string
		wantMessage          string
	}{
		{name: "everything exists", coreInstance: "edge", wantRefs: metav1.ConditionTrue, wantConfig: metav1.ConditionTrue, wantReason: references.ReasonResolved},
		{name: "stored profile", coreInstance: "edge", profile: "custom", wantRefs: metav1.ConditionTrue, wantConfig: metav1.ConditionTrue, wantReason: references.ReasonResolved},
		{name: "secret key exists", coreInstance: "edge", secrets: []string{"creds"}, config: withSecretRef, wantRefs: metav1.ConditionTrue, wantConfig: metav1.ConditionTrue, wantReason: references.ReasonResolved},
		{name: "no core instance", coreInstance: "nowhere", wantRefs: metav1.ConditionFalse, wantConfig: metav1.ConditionTrue, wantReason: references.ReasonCoreInstanceNotFound, wantMessage: `core instance "nowhere"`},
		{name: "no profile", coreInstance: "edge", profile: "missing", wantRefs: metav1.ConditionFalse, wantConfig: metav1.ConditionTrue, wantReason: references.ReasonProfileNotFound, wantMessage: `resource profile "missing"`},
		{name: "missing secret key", coreInstance: "edge", secrets: []string{"creds"}, config: withMissingKey, wantRefs: metav1.ConditionTrue, wantConfig: metav1.ConditionFalse, wantReason: references.ReasonUnresolvedReferences, wantMessage: "password"},
		{name: "missing secret", coreInstance: "edge", secrets: []string{"nope"}, config: withSecretRef, wantRefs: metav1.ConditionTrue, wantConfig: metav1.ConditionFalse, wantReason: references.ReasonUnresolvedReferences, wantMessage: "pipeline secrets not found: nope"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "p" + string(rune('a'+i))
			p := newPipeline(ns, name, tt.coreInstance)
			if tt.profile != "" {
				p.Spec.ResourceProfile = tt.profile
			}
			if tt.config != "" {
				p.Spec.Config = tt.config
			}
			p.Spec.Secrets = tt.secrets
			obj, err := pipelines.Create(ctx, p, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := obj.(*core.Pipeline)
			refs := meta.FindStatusCondition(got.Status.Conditions, references.ConditionReferencesResolved)
			cfg := meta.FindStatusCondition(got.Status.Conditions, references.ConditionConfigValid)
			if refs == nil || cfg == nil {
				t.Fatalf("created without both conditions: %+v", got.Status.Conditions)
			}
			if refs.Status != tt.wantRefs || cfg.Status != tt.wantConfig {
				t.Fatalf("ReferencesResolved %s, ConfigValid %s; want %s, %s (%+v)", refs.Status, cfg.Status, tt.wantRefs, tt.wantConfig, got.Status.Conditions)
			}
			failing := refs
			if tt.wantConfig == metav1.ConditionFalse {
				failing = cfg
			}
			if failing.Reason != tt.wantReason || !strings.Contains(failing.Message, tt.wantMessage) {
				t.Errorf("%s: reason %q message %q, want %q containing %q", failing.Type, failing.Reason, failing.Message, tt.wantReason, tt.wantMessage)
			}
			if strings.Contains(cfg.Message, "elastic") {
				t.Errorf("ConfigValid message leaks a secret value: %q", cfg.Message)
			}
			if refs.ObservedGeneration != 1 || got.Status.Phase != core.PipelinePhaseNew {
				t.Errorf("observedGeneration %d phase %q, want 1 and New", refs.ObservedGeneration, got.Status.Phase)
			}
		})
	}

	// A spec change checks again: the pipeline now names the core instance that exists.
	obj, err := pipelines.Get(ctx, "pd", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	edit := obj.(*core.Pipeline)
	edit.Spec.CoreInstance = "edge"
	obj, _, err = pipelines.Update(ctx, "pd", rest.DefaultUpdatedObjectInfo(edit), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*core.Pipeline)
	refs := meta.FindStatusCondition(got.Status.Conditions, references.ConditionReferencesResolved)
	if refs == nil || refs.Status != metav1.ConditionTrue || refs.ObservedGeneration != 2 {
		t.Fatalf("after the spec change: %+v, want ReferencesResolved True at generation 2", got.Status.Conditions)
	}
	// A write that changes no spec leaves the conditions alone.
	edit = got.DeepCopy()
	edit.Labels = map[string]string{"team": "a"}
	obj, _, err = pipelines.Update(ctx, "pd", rest.DefaultUpdatedObjectInfo(edit), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(obj.(*core.Pipeline).Status.Conditions, references.ConditionReferencesResolved); c == nil || c.ObservedGeneration != 2 || c.LastTransitionTime != refs.LastTransitionTime {
		t.Errorf("after a label change: %+v, want the generation-2 condition unchanged", c)
	}
}
