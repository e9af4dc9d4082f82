package integration

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	calyptiav1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/controller/pipelinerefs"
)

// TestReferencesInAnyOrder creates a pipeline before what it refers to and
// checks that its conditions follow as the references appear and go.
func TestReferencesInAnyOrder(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	c := env.client.CoreV1()
	p := newPipeline(ns, "early", "later-core")
	p.Spec.ResourceProfile = "later-profile"
	p.Spec.Secrets = []string{"later-secret"}
	p.Spec.Config = `[INPUT]
    name  dummy
    tag   test

[OUTPUT]
    name        http
    match       *
    host        collector.example.com
    http_user   {{ secrets.user }}
    http_passwd {{ secrets.password }}
`
	createPipeline(t, p)

	const (
		refs = pipelinerefs.ConditionReferencesResolved
		cfg  = calyptiav1.PipelineConditionConfigValid
	)
	waitForPipeline(t, ns, "early", "unresolved references reported", func(p *calyptiav1.Pipeline) bool {
		return conditionIs(p, refs, metav1.ConditionFalse, pipelinerefs.ReasonCoreInstanceNotFound) &&
			conditionIs(p, cfg, metav1.ConditionFalse, pipelinerefs.ReasonUnresolvedReferences)
	})

	if _, err := c.CoreInstances(ns).Create(ctx, &calyptiav1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "later-core"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForPipeline(t, ns, "early", "only the profile missing", func(p *calyptiav1.Pipeline) bool {
		return conditionIs(p, refs, metav1.ConditionFalse, pipelinerefs.ReasonProfileNotFound)
	})
	if _, err := c.ResourceProfiles(ns).Create(ctx, &calyptiav1.ResourceProfile{ObjectMeta: metav1.ObjectMeta{Name: "later-profile"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	resolved := waitForPipeline(t, ns, "early", "core instance and profile resolved", func(p *calyptiav1.Pipeline) bool {
		return conditionIs(p, refs, metav1.ConditionTrue, pipelinerefs.ReasonResolved)
	})
	// The controller's informers hold no managed fields; its status writes must not drop the
	// stored ones.
	managers := map[string]bool{}
	for _, f := range resolved.ManagedFields {
		managers[f.Manager] = true
	}
	if !managers["cloud-api-pipeline-references"] || len(managers) < 2 {
		t.Errorf("managed fields after the controller's status write name %v, want the creator and cloud-api-pipeline-references", managers)
	}

	// A secret with one of the two keys is not enough.
	if _, err := c.PipelineSecrets(ns).Create(ctx, pipelineSecret("later-secret", "user", "fluent"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitForPipeline(t, ns, "early", "the missing key named", func(p *calyptiav1.Pipeline) bool {
		return conditionIs(p, cfg, metav1.ConditionFalse, pipelinerefs.ReasonUnresolvedReferences) &&
			containsAll(conditionMessage(p, cfg), `secret "password"`) && !containsAll(conditionMessage(p, cfg), `secret "user"`)
	})
	if msg := conditionMessage(got, cfg); containsAll(msg, "fluent") {
		t.Errorf("condition message leaks a secret value: %q", msg)
	}

	s, err := c.PipelineSecrets(ns).Get(ctx, "later-secret", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data["password"] = []byte("s3cret")
	if _, err := c.PipelineSecrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForPipeline(t, ns, "early", "config references resolved", func(p *calyptiav1.Pipeline) bool {
		return conditionIs(p, cfg, metav1.ConditionTrue, pipelinerefs.ReasonResolved)
	})

	// Deleting a referenced object is reported again.
	if err := c.CoreInstances(ns).Delete(ctx, "later-core", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForPipeline(t, ns, "early", "core instance gone", func(p *calyptiav1.Pipeline) bool {
		return conditionIs(p, refs, metav1.ConditionFalse, pipelinerefs.ReasonCoreInstanceNotFound)
	})
}

// TestApplyExamples applies artifacts/examples in one go, as the README
// says, and checks every example pipeline resolves.
func TestApplyExamples(t *testing.T) {
	ns := namespace(t)
	if _, err := kubectl(t, "apply", "-n", ns, "-f", "../../artifacts/examples/"); err != nil {
		t.Fatal(err)
	}
	list, err := env.client.CoreV1().Pipelines(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) < 4 {
		t.Fatalf("examples created %d pipelines, want at least 4", len(list.Items))
	}
	for _, p := range list.Items {
		waitForPipeline(t, ns, p.Name, "references resolved", func(p *calyptiav1.Pipeline) bool {
			return conditionIs(p, pipelinerefs.ConditionReferencesResolved, metav1.ConditionTrue, "") &&
				conditionIs(p, calyptiav1.PipelineConditionConfigValid, metav1.ConditionTrue, "")
		})
	}
	out, err := kubectl(t, "get", "pipelines", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if !containsAll(out, p.Name) {
			t.Errorf("kubectl get pipelines lacks %s:\n%s", p.Name, out)
		}
	}
}
