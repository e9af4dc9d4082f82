package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	calyptiav1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

var everything = labels.Everything()

// validConfig is a minimal classic config the API accepts.
const validConfig = `[INPUT]
    name  dummy
    tag   test

[OUTPUT]
    name  stdout
    match *
`

func newPipeline(ns, name, coreInstance string) *calyptiav1.Pipeline {
	return &calyptiav1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: calyptiav1.PipelineSpec{
			CoreInstance: coreInstance,
			Config:       validConfig,
			ConfigFormat: calyptiav1.ConfigFormatClassic,
			Replicas:     ptr.To[int32](1),
		},
	}
}

func createPipeline(t *testing.T, p *calyptiav1.Pipeline) *calyptiav1.Pipeline {
	t.Helper()
	got, err := env.client.CoreV1().Pipelines(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pipeline %s/%s: %v", p.Namespace, p.Name, err)
	}
	return got
}

// waitForPipeline polls the pipeline until cond holds or 30 s pass.
func waitForPipeline(t *testing.T, ns, name, what string, cond func(*calyptiav1.Pipeline) bool) *calyptiav1.Pipeline {
	t.Helper()
	var last *calyptiav1.Pipeline
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := env.client.CoreV1().Pipelines(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pipeline %s/%s: waiting for %s: %v; last status: %+v", ns, name, what, err, statusOf(last))
	}
	return last
}

func statusOf(p *calyptiav1.Pipeline) any {
	if p == nil {
		return nil
	}
	return p.Status
}

// conditionIs reports whether p has condition typ with status and reason
// (any reason when empty) for its current generation.
func conditionIs(p *calyptiav1.Pipeline, typ string, status metav1.ConditionStatus, reason string) bool {
	c := meta.FindStatusCondition(p.Status.Conditions, typ)
	return c != nil && c.Status == status && (reason == "" || c.Reason == reason) && c.ObservedGeneration == p.Generation
}

func pipelineSecret(name, key, value string) *calyptiav1.PipelineSecret {
	return &calyptiav1.PipelineSecret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Data:       map[string][]byte{key: []byte(value)},
	}
}

func conditionMessage(p *calyptiav1.Pipeline, typ string) string {
	if c := meta.FindStatusCondition(p.Status.Conditions, typ); c != nil {
		return c.Message
	}
	return ""
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// updatePipeline applies mutate to the latest pipeline, retrying when the
// references controller wrote status in between.
func updatePipeline(t *testing.T, ns, name string, opts metav1.UpdateOptions, mutate func(*calyptiav1.Pipeline)) *calyptiav1.Pipeline {
	t.Helper()
	var out *calyptiav1.Pipeline
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := env.client.CoreV1().Pipelines(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(p)
		out, err = env.client.CoreV1().Pipelines(ns).Update(context.Background(), p, opts)
		return err
	})
	if err != nil {
		t.Fatalf("updating pipeline %s/%s: %v", ns, name, err)
	}
	return out
}

// setPhase reports a phase through the status subresource, as the data plane does.
func setPhase(t *testing.T, ns, name string, phase calyptiav1.PipelinePhase) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := env.client.CoreV1().Pipelines(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.Phase = phase
		_, err = env.client.CoreV1().Pipelines(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("setting phase of %s/%s: %v", ns, name, err)
	}
}

// waitSettled waits until the references controller has written p's
// conditions, so that later writes with p's resourceVersion race nothing.
func waitSettled(t *testing.T, ns, name string) *calyptiav1.Pipeline {
	t.Helper()
	return waitForPipeline(t, ns, name, "reference conditions", func(p *calyptiav1.Pipeline) bool {
		return meta.FindStatusCondition(p.Status.Conditions, "ReferencesResolved") != nil
	})
}
