//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKubectlThroughKubeAPIServer drives core.calyptia.com with real kubectl,
// every request going through kube-apiserver and the aggregator to cloud-api.
func TestKubectlThroughKubeAPIServer(t *testing.T) {
	primaryCloudAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const ns = "e2e-kubectl"
	mustRun(t, admin, "create", "namespace", ns)
	examples := filepath.Join(repoRoot, "artifacts", "examples")

	out := mustRun(t, admin, "apply", "-n", ns, "-f", examples)
	for _, want := range []string{
		"coreinstance.core.calyptia.com/production created",
		"pipeline.core.calyptia.com/forward-to-elasticsearch created",
		"pipelinesecret.core.calyptia.com/elasticsearch created",
		"resourceprofile.core.calyptia.com/high-volume-aggregator created",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %q:\n%s", want, out)
		}
	}

	t.Run("get", func(t *testing.T) {
		out := mustRun(t, admin, "get", "pipelines", "-n", ns)
		header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
		for _, col := range []string{"NAME", "CORE-INSTANCE", "KIND", "REPLICAS", "STATUS", "AGE"} {
			if !contains(header, col) {
				t.Errorf("kubectl get pipelines: no column %s in %v", col, header)
			}
		}
		if !strings.Contains(out, "forward-to-elasticsearch") || !strings.Contains(out, "production") {
			t.Errorf("kubectl get pipelines:\n%s", out)
		}
		name := mustRun(t, admin, "get", "pipeline", "forward-to-elasticsearch", "-n", ns, "-o", "jsonpath={.spec.coreInstance}/{.spec.replicas}/{.spec.kind}")
		if name != "production/2/Deployment" {
			t.Errorf("pipeline fields = %q, want production/2/Deployment", name)
		}
	})

	t.Run("get calyptia", func(t *testing.T) {
		out := mustRun(t, admin, "get", "calyptia", "-n", ns, "-o", "name")
		for _, want := range []string{
			"coreinstance.core.calyptia.com/production",
			"pipeline.core.calyptia.com/forward-to-elasticsearch",
			"pipelinesecret.core.calyptia.com/elasticsearch",
			"resourceprofile.core.calyptia.com/high-volume-aggregator",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl get calyptia lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("describe", func(t *testing.T) {
		out := mustRun(t, admin, "describe", "pipeline", "forward-to-elasticsearch", "-n", ns)
		for _, want := range []string{"Name:", "forward-to-elasticsearch", "Core Instance:", "production"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl describe lacks %q:\n%s", want, out)
			}
		}
		// Table output never shows secret values (only -o yaml/json, for those
		// allowed to read them, does).
		out = mustRun(t, admin, "get", "pipelinesecrets", "-n", ns, "-o", "wide")
		if !strings.Contains(out, "elasticsearch") || strings.Contains(out, "change-me-please") || strings.Contains(out, "Y2hhbmdlLW1lLXBsZWFzZQ") {
			t.Errorf("kubectl get pipelinesecrets lacks the secret or shows a value:\n%s", out)
		}
	})

	t.Run("explain", func(t *testing.T) {
		out := mustRun(t, admin, "explain", "pipeline.spec.config")
		if !strings.Contains(out, "GROUP:      core.calyptia.com") || !strings.Contains(out, "Fluent Bit configuration") {
			t.Errorf("kubectl explain pipeline.spec.config:\n%s", out)
		}
	})

	t.Run("wait for condition", func(t *testing.T) {
		// The references controller resolves the core instance and resource
		// profile, created in the same apply in whatever order.
		mustRun(t, admin, "wait", "-n", ns, "--for=condition=ReferencesResolved", "--timeout=90s", "pipeline/forward-to-elasticsearch")
	})

	t.Run("edit", func(t *testing.T) {
		// kubectl edit with an "editor" that changes the replicas in place.
		editor := filepath.Join(t.TempDir(), "editor.sh")
		if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/^  replicas: 2$/  replicas: 4/' \"$1\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		ed := admin
		ed.Env = []string{"KUBE_EDITOR=" + editor, "EDITOR=" + editor}
		mustRun(t, ed, "edit", "pipeline", "forward-to-elasticsearch", "-n", ns)
		if got := mustRun(t, admin, "get", "pipeline", "forward-to-elasticsearch", "-n", ns, "-o", "jsonpath={.spec.replicas}"); got != "4" {
			t.Fatalf("replicas after kubectl edit = %q, want 4", got)
		}
	})

	t.Run("patch", func(t *testing.T) {
		for _, tc := range []struct {
			name, patchType, patch, jsonpath, want string
		}{
			{"merge", "merge", `{"spec":{"deploymentStrategy":"Recreate"}}`, "{.spec.deploymentStrategy}", "Recreate"},
			{"json", "json", `[{"op":"replace","path":"/spec/serviceType","value":"NodePort"}]`, "{.spec.serviceType}", "NodePort"},
			{"strategic", "strategic", `{"metadata":{"labels":{"tier":"gold"}}}`, "{.metadata.labels.tier}", "gold"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				mustRun(t, admin, "patch", "pipeline", "forward-to-elasticsearch", "-n", ns, "--type="+tc.patchType, "-p", tc.patch)
				if got := mustRun(t, admin, "get", "pipeline", "forward-to-elasticsearch", "-n", ns, "-o", "jsonpath="+tc.jsonpath); got != tc.want {
					t.Fatalf("%s after patch = %q, want %q", tc.jsonpath, got, tc.want)
				}
			})
		}
		// The kind is immutable: the API refuses, kube-apiserver passes the 422 on.
		_, err := admin.Run(ctx, "patch", "pipeline", "forward-to-elasticsearch", "-n", ns, "--type=merge", "-p", `{"spec":{"kind":"DaemonSet"}}`)
		if err == nil || !strings.Contains(stderrOf(err), "spec.kind") {
			t.Fatalf("changing spec.kind: err = %v, want a validation error on spec.kind", err)
		}
	})

	t.Run("scale", func(t *testing.T) {
		mustRun(t, admin, "scale", "pipeline", "forward-to-elasticsearch", "-n", ns, "--replicas=3")
		if got := mustRun(t, admin, "get", "pipeline", "forward-to-elasticsearch", "-n", ns, "-o", "jsonpath={.spec.replicas}"); got != "3" {
			t.Fatalf("replicas after kubectl scale = %q, want 3", got)
		}
		raw := mustRun(t, admin, "get", "--raw", "/apis/core.calyptia.com/v1/namespaces/"+ns+"/pipelines/forward-to-elasticsearch/scale")
		var scale struct {
			Kind string
			Spec struct{ Replicas int }
		}
		if err := json.Unmarshal([]byte(raw), &scale); err != nil {
			t.Fatal(err)
		}
		if scale.Kind != "Scale" || scale.Spec.Replicas != 3 {
			t.Fatalf("scale subresource = %+v, want Scale with 3 replicas", scale)
		}
	})

	t.Run("server-side apply and dry run", func(t *testing.T) {
		manifest := `apiVersion: core.calyptia.com/v1
kind: Pipeline
metadata:
  name: ssa-dummy
spec:
  coreInstance: production
  config: |
    [INPUT]
        name dummy
    [OUTPUT]
        name stdout
        match *
`
		mustRunStdin(t, admin, manifest, "apply", "--server-side", "--dry-run=server", "-n", ns, "-f", "-")
		if _, err := admin.Run(ctx, "get", "pipeline", "ssa-dummy", "-n", ns); err == nil || !strings.Contains(stderrOf(err), "NotFound") {
			t.Fatalf("a server-side dry run stored the pipeline: err = %v", err)
		}
		mustRunStdin(t, admin, manifest, "apply", "--server-side", "--field-manager=e2e", "-n", ns, "-f", "-")
		managers := mustRun(t, admin, "get", "pipeline", "ssa-dummy", "-n", ns, "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[*].manager}")
		if !strings.Contains(managers, "e2e") {
			t.Fatalf("managers = %q, want e2e among them", managers)
		}
	})

	t.Run("delete", func(t *testing.T) {
		mustRun(t, admin, "delete", "pipeline", "ssa-dummy", "-n", ns)
		mustRun(t, admin, "delete", "-n", ns, "-f", examples, "--wait=true")
		// Nothing is left: the built-in resource profiles resolve by name in
		// every namespace but are not listed.
		out := mustRun(t, admin, "get", "calyptia", "-n", ns, "-o", "name")
		if got := strings.Fields(out); len(got) != 0 {
			t.Fatalf("objects after kubectl delete -f = %v, want none", got)
		}
		if got := mustRun(t, admin, "get", "resourceprofile", "best-effort-low-resource", "-n", ns, "-o", "name"); strings.TrimSpace(got) != "resourceprofile.core.calyptia.com/best-effort-low-resource" {
			t.Fatalf("built-in profile by name = %q", got)
		}
	})
}

func mustRunStdin(t *testing.T, k kubectlRunner, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := k.RunStdin(ctx, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
