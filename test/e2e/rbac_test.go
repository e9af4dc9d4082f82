//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
)

// TestRBAC checks that kube-apiserver's RBAC, with the roles of
// artifacts/deploy folded into admin/edit/view, decides who may do what in
// core.calyptia.com — through kube-apiserver and on the real requests.
func TestRBAC(t *testing.T) {
	primaryCloudAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const nsA, nsB = "e2e-rbac-a", "e2e-rbac-b"
	for _, ns := range []string{nsA, nsB} {
		mustRun(t, admin, "create", "namespace", ns)
		mustRunStdin(t, admin, rbacFixtures, "apply", "-n", ns, "-f", "-")
	}
	viewerConfig, _, err := cluster.NewUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	editorConfig, _, err := cluster.NewUser("bob")
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, admin, "create", "rolebinding", "alice-view", "-n", nsA, "--clusterrole=view", "--user=alice")
	mustRun(t, admin, "create", "rolebinding", "bob-edit", "-n", nsB, "--clusterrole=edit", "--user=bob")
	nsAdminConfig, _, err := cluster.NewUser("frank")
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, admin, "create", "rolebinding", "frank-admin", "-n", nsB, "--clusterrole=admin", "--user=frank")
	mustRun(t, admin, "create", "serviceaccount", "agent", "-n", nsA)
	mustRun(t, admin, "create", "rolebinding", "agent", "-n", nsA, "--clusterrole=calyptia-core:data-plane", "--serviceaccount="+nsA+":agent")
	token := strings.TrimSpace(mustRun(t, admin, "create", "token", "agent", "-n", nsA, "--duration=1h"))
	agentConfig, err := cluster.NewTokenKubeconfig("agent", token)
	if err != nil {
		t.Fatal(err)
	}
	viewer, editor, agent := kubectlFor(viewerConfig), kubectlFor(editorConfig), kubectlFor(agentConfig)
	nsAdmin := kubectlFor(nsAdminConfig)

	newPipeline := func(name string) string {
		return strings.ReplaceAll(rbacPipeline, "NAME", name)
	}
	statusPatch := `{"status":{"phase":"Started","replicas":1,"readyReplicas":1}}`
	metricsPath := func(ns, resource, name string) string {
		return "/apis/core.calyptia.com/v1/namespaces/" + ns + "/" + resource + "/" + name + "/metrics"
	}
	batch := `{"apiVersion":"core.calyptia.com/v1","kind":"MetricsBatch","scrapes":[{"pipeline":"collector","pod":"e2e",` +
		`"time":"` + time.Now().UTC().Format("2006-01-02T15:04:05.000000Z") + `","counters":[{"measurement":"input","plugin":"dummy.0","name":"records_total","value":1}]}]}`

	for _, tc := range []struct {
		name    string
		k       kubectlRunner
		stdin   string
		args    []string
		allowed bool
	}{
		// view in A: read pipelines and the rest, not secrets, no writes, nothing in B.
		{"viewer lists pipelines in A", viewer, "", []string{"get", "pipelines", "-n", nsA}, true},
		{"viewer gets a pipeline in A", viewer, "", []string{"get", "pipeline", "collector", "-n", nsA}, true},
		{"viewer lists core instances in A", viewer, "", []string{"get", "coreinstances", "-n", nsA}, true},
		{"viewer lists resource profiles in A", viewer, "", []string{"get", "resourceprofiles", "-n", nsA}, true},
		{"viewer reads the scale of a pipeline in A", viewer, "", []string{"get", "--raw", "/apis/core.calyptia.com/v1/namespaces/" + nsA + "/pipelines/collector/scale"}, true},
		{"viewer reads a pipeline's metrics in A", viewer, "", []string{"get", "--raw", metricsPath(nsA, "pipelines", "collector")}, true},
		{"viewer reads a core instance's metrics in A", viewer, "", []string{"get", "--raw", metricsPath(nsA, "coreinstances", "production")}, true},
		{"viewer cannot report metrics in A", viewer, batch, []string{"create", "--raw", metricsPath(nsA, "coreinstances", "production"), "-f", "-"}, false},
		{"viewer cannot list pipeline secrets in A", viewer, "", []string{"get", "pipelinesecrets", "-n", nsA}, false},
		{"viewer cannot get a pipeline secret in A", viewer, "", []string{"get", "pipelinesecret", "tokens", "-n", nsA, "-o", "yaml"}, false},
		{"viewer cannot create a pipeline in A", viewer, newPipeline("by-viewer"), []string{"create", "-n", nsA, "-f", "-"}, false},
		{"viewer cannot scale a pipeline in A", viewer, "", []string{"scale", "pipeline", "collector", "-n", nsA, "--replicas=2"}, false},
		{"viewer cannot delete a pipeline in A", viewer, "", []string{"delete", "pipeline", "collector", "-n", nsA}, false},
		{"viewer cannot list pipelines in B", viewer, "", []string{"get", "pipelines", "-n", nsB}, false},
		{"viewer cannot get a pipeline in B", viewer, "", []string{"get", "pipeline", "collector", "-n", nsB}, false},
		{"viewer cannot list pipelines cluster-wide", viewer, "", []string{"get", "pipelines", "-A"}, false},
		// edit in B: create, update, read secrets; nothing in A.
		{"editor creates a pipeline in B", editor, newPipeline("by-editor"), []string{"create", "-n", nsB, "-f", "-"}, true},
		{"editor scales a pipeline in B", editor, "", []string{"scale", "pipeline", "collector", "-n", nsB, "--replicas=2"}, true},
		{"editor reads pipeline secrets in B", editor, "", []string{"get", "pipelinesecret", "tokens", "-n", nsB, "-o", "yaml"}, true},
		{"editor cannot report metrics in B", editor, batch, []string{"create", "--raw", metricsPath(nsB, "coreinstances", "production"), "-f", "-"}, false},
		{"editor cannot create a pipeline in A", editor, newPipeline("by-editor"), []string{"create", "-n", nsA, "-f", "-"}, false},
		// The data plane agent in A: read what it runs, report status, nothing else.
		{"agent lists pipelines in A", agent, "", []string{"get", "pipelines", "-n", nsA}, true},
		{"agent reads pipeline secrets in A", agent, "", []string{"get", "pipelinesecret", "tokens", "-n", nsA, "-o", "yaml"}, true},
		{"agent reads resource profiles in A", agent, "", []string{"get", "resourceprofiles", "-n", nsA}, true},
		{"agent updates pipelines/status in A", agent, "", []string{"patch", "pipeline", "collector", "-n", nsA, "--subresource=status", "--type=merge", "-p", statusPatch}, true},
		{"agent updates coreinstances/status in A", agent, "", []string{"patch", "coreinstance", "production", "-n", nsA, "--subresource=status", "--type=merge", "-p", `{"status":{"agentVersion":"e2e"}}`}, true},
		{"agent cannot change a pipeline's spec in A", agent, "", []string{"patch", "pipeline", "collector", "-n", nsA, "--type=merge", "-p", `{"spec":{"replicas":5}}`}, false},
		{"agent cannot delete a pipeline in A", agent, "", []string{"delete", "pipeline", "collector", "-n", nsA}, false},
		{"agent cannot create a pipeline in A", agent, newPipeline("by-agent"), []string{"create", "-n", nsA, "-f", "-"}, false},
		{"agent reports metrics in A", agent, batch, []string{"create", "--raw", metricsPath(nsA, "coreinstances", "production"), "-f", "-"}, true},
		{"agent cannot report metrics in B", agent, batch, []string{"create", "--raw", metricsPath(nsB, "coreinstances", "production"), "-f", "-"}, false},
		{"agent cannot list pipelines in B", agent, "", []string{"get", "pipelines", "-n", nsB}, false},
		{"agent records events in A", agent, `{"apiVersion":"v1","kind":"Event","metadata":{"generateName":"e2e-"},"type":"Normal","reason":"E2E","message":"m",` +
			`"involvedObject":{"apiVersion":"core.calyptia.com/v1","kind":"Pipeline","namespace":"` + nsA + `","name":"collector"}}`, []string{"create", "--raw", "/api/v1/namespaces/" + nsA + "/events", "-f", "-"}, true},
		{"agent cannot read secrets of Kubernetes in A", agent, "", []string{"get", "secrets", "-n", nsA}, false},
		// admin in B (the built-in role, with the edit rules folded in).
		// The collector reads the secret, and cloud-api refuses (409) to delete a secret in use.
		{"namespace admin deletes a pipeline in B", nsAdmin, "", []string{"delete", "pipeline", "collector", "-n", nsB, "--wait=false"}, true},
		{"namespace admin deletes a pipeline secret in B", nsAdmin, "", []string{"delete", "pipelinesecret", "tokens", "-n", nsB}, true},
		{"namespace admin cannot list pipelines in A", nsAdmin, "", []string{"get", "pipelines", "-n", nsA}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.k.RunStdin(ctx, tc.stdin, tc.args...)
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.allowed && err == nil:
				t.Fatalf("allowed, want 403; output:\n%s", out)
			case !tc.allowed && !strings.Contains(stderrOf(err), "forbidden"):
				t.Fatalf("refused, but not with 403 Forbidden: %v", err)
			}
		})
	}

	// The status write really landed, and watch (which kubectl get does not
	// exercise) is allowed for the viewer in A and refused in B.
	if got := mustRun(t, admin, "get", "pipeline", "collector", "-n", nsA, "-o", "jsonpath={.status.phase}"); got != "Started" {
		t.Fatalf("status.phase after the agent's patch = %q, want Started", got)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", viewerConfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pipelines(nsA).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("viewer watching pipelines in A: %v", err)
	}
	w.Stop()
	if _, err := cs.CoreV1().Pipelines(nsB).Watch(ctx, metav1.ListOptions{}); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("viewer watching pipelines in B: err = %v, want forbidden", err)
	}
}

const rbacPipeline = `apiVersion: core.calyptia.com/v1
kind: Pipeline
metadata:
  name: NAME
spec:
  coreInstance: production
  config: |
    [INPUT]
        name dummy
    [OUTPUT]
        name stdout
        match *
`

const rbacFixtures = `apiVersion: core.calyptia.com/v1
kind: CoreInstance
metadata:
  name: production
spec:
  mode: Kubernetes
---
apiVersion: core.calyptia.com/v1
kind: PipelineSecret
metadata:
  name: tokens
data:
  token: c2VjcmV0LXRva2Vu
---
apiVersion: core.calyptia.com/v1
kind: Pipeline
metadata:
  name: collector
spec:
  coreInstance: production
  replicas: 1
  secrets: [tokens]
  config: |
    [INPUT]
        name dummy
    [OUTPUT]
        name  http
        match *
        host  collector.example.com
        header Authorization Bearer {{ secrets.token }}
`
