package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	calyptiav1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

const appliedPipeline = `apiVersion: core.calyptia.com/v1
kind: Pipeline
metadata:
  name: applied
  labels: {team: a}
spec:
  coreInstance: ci
  replicas: 2
  config: |
    [INPUT]
        name  dummy
        tag   test
    [OUTPUT]
        name  stdout
        match *
`

func writeManifest(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestKubectlServerSideApplyAndDryRun(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)

	dry, err := kubectl(t, "apply", "-n", ns, "--server-side", "--dry-run=server", "-f", writeManifest(t, appliedPipeline), "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Server-side dry run goes through defaulting and validation...
	if !strings.Contains(dry, "resourceProfile: best-effort-low-resource") {
		t.Errorf("dry-run output lacks the defaulted resource profile:\n%s", dry)
	}
	// ...but stores nothing.
	if _, err := env.client.CoreV1().Pipelines(ns).Get(ctx, "applied", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after --dry-run=server: got %v, want NotFound", err)
	}

	invalid := strings.Replace(appliedPipeline, "name  stdout", "name  s4", 1)
	if out, err := kubectl(t, "apply", "-n", ns, "--server-side", "--dry-run=server", "-f", writeManifest(t, invalid)); err == nil ||
		!strings.Contains(err.Error(), "spec.config") {
		t.Errorf("dry run of an invalid pipeline: out %q, err %v; want an error naming spec.config", out, err)
	}

	if _, err := kubectl(t, "apply", "-n", ns, "--server-side", "-f", writeManifest(t, appliedPipeline)); err != nil {
		t.Fatal(err)
	}
	p, err := env.client.CoreV1().Pipelines(ns).Get(ctx, "applied", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.Replicas == nil || *p.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", p.Spec.Replicas)
	}
	if !hasManager(p.ManagedFields, "kubectl", metav1.ManagedFieldsOperationApply) {
		t.Errorf("managedFields lack kubectl's apply: %+v", p.ManagedFields)
	}

	// A second manager owning replicas makes kubectl's change a conflict...
	updatePipeline(t, ns, "applied", metav1.UpdateOptions{FieldManager: "autoscaler"}, func(p *calyptiav1.Pipeline) {
		p.Spec.Replicas = ptrInt32(5)
	})
	changed := strings.Replace(appliedPipeline, "replicas: 2", "replicas: 3", 1)
	if _, err := kubectl(t, "apply", "-n", ns, "--server-side", "-f", writeManifest(t, changed)); err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Errorf("apply over another manager's field: got %v, want a conflict", err)
	}
	// ...that --force-conflicts resolves.
	if _, err := kubectl(t, "apply", "-n", ns, "--server-side", "--force-conflicts", "-f", writeManifest(t, changed)); err != nil {
		t.Fatal(err)
	}
	p, err = env.client.CoreV1().Pipelines(ns).Get(ctx, "applied", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *p.Spec.Replicas != 3 {
		t.Errorf("replicas after forced apply = %d, want 3", *p.Spec.Replicas)
	}
}

func hasManager(fields []metav1.ManagedFieldsEntry, manager string, op metav1.ManagedFieldsOperationType) bool {
	for _, f := range fields {
		if f.Manager == manager && f.Operation == op {
			return true
		}
	}
	return false
}

func ptrInt32(i int32) *int32 { return &i }

func TestKubectlExplain(t *testing.T) {
	tests := []struct {
		field string
		want  []string
	}{
		{field: "pipeline.spec.config", want: []string{"KIND:       Pipeline", "FIELD: config <string>", "Fluent Bit"}},
		{field: "pipelines.spec.kind", want: []string{"DaemonSet"}},
		{field: "pipelinesecret.data", want: []string{"map[string]string"}},
		{field: "coreinstance.status.phase", want: []string{"Unreachable"}},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			out, err := kubectl(t, "explain", tt.field)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("kubectl explain %s lacks %q:\n%s", tt.field, w, out)
				}
			}
		})
	}
}

func TestKubectlGetColumns(t *testing.T) {
	ns := namespace(t)
	createPipeline(t, newPipeline(ns, "columns", "edge-1"))
	if _, err := env.client.CoreV1().PipelineSecrets(ns).Create(context.Background(), pipelineSecret("creds", "password", "hunter2-column-test"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	out, err := kubectl(t, "get", "pipelines", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("kubectl get pipelines printed %d lines, want header and one row:\n%s", len(lines), out)
	}
	header := strings.Fields(lines[0])
	for _, col := range []string{"NAME", "CORE-INSTANCE", "KIND", "REPLICAS", "STATUS", "AGE"} {
		if !contains(header, col) {
			t.Errorf("header %v lacks %s", header, col)
		}
	}
	row := strings.Fields(lines[1])
	// REPLICAS is ready/wanted; STATUS is the phase.
	for _, cell := range []string{"columns", "edge-1", "Deployment", "0/1", "New"} {
		if !contains(row, cell) {
			t.Errorf("row %v lacks %s", row, cell)
		}
	}

	for _, format := range []string{"", "-o=wide"} {
		args := []string{"get", "pipelinesecrets", "-n", ns}
		if format != "" {
			args = append(args, format)
		}
		out, err := kubectl(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "creds") || strings.Contains(out, "hunter2") {
			t.Errorf("kubectl %v should list the secret without its value:\n%s", args, out)
		}
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func TestKubectlScale(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createPipeline(t, newPipeline(ns, "scaled", "ci"))

	if _, err := kubectl(t, "scale", "-n", ns, "pipeline", "scaled", "--replicas=3"); err != nil {
		t.Fatal(err)
	}
	p, err := env.client.CoreV1().Pipelines(ns).Get(ctx, "scaled", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.Replicas == nil || *p.Spec.Replicas != 3 {
		t.Errorf("spec.replicas = %v, want 3", p.Spec.Replicas)
	}
	scale, err := env.client.CoreV1().Pipelines(ns).GetScale(ctx, "scaled", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if scale.Spec.Replicas != 3 {
		t.Errorf("scale.spec.replicas = %d, want 3", scale.Spec.Replicas)
	}
	if _, err := kubectl(t, "scale", "-n", ns, "pipeline", "scaled", "--replicas=0"); err != nil {
		t.Errorf("scaling to zero: %v", err)
	}
}

func TestKubectlGetCalyptia(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createPipeline(t, newPipeline(ns, "cat-pipeline", "cat-core"))
	if _, err := env.client.CoreV1().PipelineSecrets(ns).Create(ctx, pipelineSecret("cat-secret", "k", "v"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := kubectl(t, "get", "calyptia", "-n", ns, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pipeline.core.calyptia.com/cat-pipeline", "pipelinesecret.core.calyptia.com/cat-secret"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get calyptia lacks %s:\n%s", want, out)
		}
	}
}
