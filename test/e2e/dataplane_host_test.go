//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calyptia/core-management-plane/internal/fluentbittest"
	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane/fbapi"
	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// hostPID is the process of a host-mode pipeline, from the agent's state directory.
func hostPID(t *testing.T, stateDir, name string) int {
	t.Helper()
	pid, err := framework.HostPipelinePID(filepath.Join(stateDir, "e2e-host", name))
	if err != nil || pid == 0 {
		t.Fatalf("process of pipeline %s: %d, %v", name, pid, err)
	}
	return pid
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestDataPlaneHost runs core-operator for an External core instance with the real Fluent Bit:
// each pipeline is a fluent-bit process on this machine.
func TestDataPlaneHost(t *testing.T) {
	fluentBit := fluentbittest.Binary(t)
	primaryCloudAPI(t)
	binary := coreOperator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const ns, instance = "e2e-host", "edge"
	mustRun(t, admin, "create", "namespace", ns)
	cs, err := versioned.NewForConfig(cluster.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(cluster.Dir, "host-state")
	// Pipelines outlive their agent by design; the test leaves none behind.
	t.Cleanup(func() { framework.StopHostPipelines(stateDir) })

	httpPort := freeTCPPort(t)
	config := fmt.Sprintf(`[SERVICE]
    http_server on
    http_listen 127.0.0.1
    http_port   %d

[INPUT]
    name  dummy
    tag   edge
    rate  20
    dummy {"token":"{{ secrets.token }}"}

[OUTPUT]
    name  null
    match *
`, httpPort)
	mustRunStdin(t, admin, fmt.Sprintf(`
apiVersion: core.calyptia.com/v1
kind: CoreInstance
metadata: {name: %s}
spec: {mode: External}
---
apiVersion: core.calyptia.com/v1
kind: PipelineSecret
metadata: {name: edge}
data: {token: %s}
`, instance, b64("host-t0ken-value")), "apply", "-n", ns, "-f", "-")
	p := &corev1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "dummy"},
		Spec: corev1.PipelineSpec{CoreInstance: instance, Config: config, Secrets: []string{"edge"},
			DeploymentStrategy: corev1.DeploymentStrategyHotReload},
	}
	if _, err := cs.CoreV1().Pipelines(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	agent, err := cluster.StartAgent(ctx, binary, framework.AgentOptions{
		Namespace: ns, CoreInstance: instance,
		Args: []string{"--fluent-bit=" + fluentBit, "--state-dir=" + stateDir, "--advertise-address=127.0.0.1",
			"--heartbeat-interval=5s", "--metrics-interval=2s", "--crash-limit=2", "--restart-backoff-max=2s", "-v=2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop(15 * time.Second)

	client := fbapi.New("127.0.0.1:" + strconv.Itoa(httpPort))
	var pid int
	t.Run("runs", func(t *testing.T) {
		got := waitPipeline(ctx, t, cs, ns, "dummy", "Started", startedWith(1))
		if len(got.Status.Ports) != 1 || got.Status.Ports[0].Endpoint != "127.0.0.1:"+strconv.Itoa(httpPort) {
			t.Errorf("ports %+v", got.Status.Ports)
		}
		if ok, err := client.Healthy(ctx); !ok {
			t.Fatalf("/api/v2/health: %v", err)
		}
		pid = hostPID(t, stateDir, "dummy")
		if !alive(pid) {
			t.Fatalf("fluent-bit %d is not running", pid)
		}
		waitUntil(ctx, t, "core instance Running", func(ctx context.Context) error {
			ci, err := cs.CoreV1().CoreInstances(ns).Get(ctx, instance, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ci.Status.Phase != corev1.CoreInstancePhaseRunning || ci.Status.FluentBitVersion == "" || ci.Status.Pipelines != 1 {
				return fmt.Errorf("status %+v", ci.Status)
			}
			return nil
		})
	})

	t.Run("metrics match Fluent Bit's own", func(t *testing.T) {
		// As a user with the view role, through kube-apiserver.
		viewer := kubectlFor(mustViewer(t, ns))
		path := "/apis/core.calyptia.com/v1/namespaces/" + ns + "/pipelines/dummy/metrics?start=-1h&interval=1m"
		var apiTotal, fbTotal int64
		waitUntil(ctx, t, "the API to report the dummy input's records", func(ctx context.Context) error {
			out, err := viewer.Run(ctx, "get", "--raw", path)
			if err != nil {
				return err
			}
			var m corev1.Metrics
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				return err
			}
			apiTotal = 0
			for _, p := range m.Plugins {
				if p.Measurement == "input" && p.Plugin == "dummy.0" {
					apiTotal = p.Totals["records_total"]
				}
			}
			if apiTotal < 40 || m.Summary.Input.Records.Total < apiTotal || m.Summary.Output.Records.Total == 0 {
				return fmt.Errorf("dummy.0 records %d, summary %+v", apiTotal, m.Summary.Input.Records)
			}
			// Fluent Bit's own count, read right after: ahead by at most a scrape interval of
			// records (20 a second, 2 s apart; slack for the round trips).
			fb, err := fluentBitRecords(ctx, "127.0.0.1:"+strconv.Itoa(httpPort), "dummy.0")
			if err != nil {
				return err
			}
			fbTotal = fb
			return nil
		})
		if apiTotal > fbTotal || fbTotal-apiTotal > 20*(2+3) {
			t.Errorf("API reports %d records of dummy.0, Fluent Bit's /api/v1/metrics %d: more than a scrape apart", apiTotal, fbTotal)
		}
		if _, err := viewer.Run(ctx, "get", "--raw", "/apis/core.calyptia.com/v1/namespaces/"+ns+"/coreinstances/"+instance+"/metrics"); err != nil {
			t.Errorf("viewer reading the core instance's metrics: %v", err)
		}
	})

	t.Run("tap shows the records", func(t *testing.T) {
		viewer := kubectlFor(mustViewer(t, ns))
		var tap corev1.PipelineTap
		waitUntil(ctx, t, "the tap to show the dummy input's records", func(ctx context.Context) error {
			out, err := viewer.Run(ctx, "get", "--raw", "/apis/core.calyptia.com/v1/namespaces/"+ns+"/pipelines/dummy/tap?signal=logs&limit=50")
			if err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(out), &tap); err != nil {
				return err
			}
			for _, c := range tap.Chunks {
				for _, r := range c.Records {
					if c.SourceName == "dummy.0" && c.Tag == "edge" && strings.Contains(string(r.Record.Raw), `"token"`) {
						return nil
					}
				}
			}
			return fmt.Errorf("%d chunks, none of the dummy input's", len(tap.Chunks))
		})
		if tap.NextID == 0 || tap.EndID < tap.StartID {
			t.Errorf("stream ids start %d end %d next %d", tap.StartID, tap.EndID, tap.NextID)
		}
		// Metrics of the pipeline's own fluentbit_metrics do not exist here; the signal still answers.
		if _, err := viewer.Run(ctx, "get", "--raw", "/apis/core.calyptia.com/v1/namespaces/"+ns+"/pipelines/dummy/tap?signal=metrics"); err != nil {
			t.Errorf("metrics signal: %v", err)
		}
	})

	t.Run("config edit hot-reloads", func(t *testing.T) {
		before, err := client.ReloadCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustRun(t, admin, "patch", "pipeline", "dummy", "-n", ns, "--type=merge", "-p",
			`{"spec":{"config":`+jsonString(strings.Replace(config, "tag   edge", "tag   edited", 1))+`}}`)
		waitPipeline(ctx, t, cs, ns, "dummy", "the edit deployed", startedWith(1))
		after, err := client.ReloadCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after <= before {
			t.Errorf("hot_reload_count %d -> %d", before, after)
		}
		if now := hostPID(t, stateDir, "dummy"); now != pid || !alive(pid) {
			t.Errorf("pid %d -> %d: a hot reload keeps the process", pid, now)
		}
		out := mustRun(t, admin, "get", "events", "-n", ns, "--field-selector=involvedObject.name=dummy")
		if !strings.Contains(out, "Reloaded") {
			t.Errorf("no Reloaded event:\n%s", out)
		}
	})

	t.Run("port taken fails with the reason", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		taken := &corev1.Pipeline{
			ObjectMeta: metav1.ObjectMeta{Name: "taken"},
			Spec: corev1.PipelineSpec{CoreInstance: instance, Config: fmt.Sprintf(
				"[INPUT]\n    name   tcp\n    listen 127.0.0.1\n    port   %d\n\n[OUTPUT]\n    name  null\n    match *\n", port)},
		}
		if _, err := cs.CoreV1().Pipelines(ns).Create(ctx, taken, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("could not bind address 127.0.0.1:%d", port)
		waitPipeline(ctx, t, cs, ns, "taken", "Failed", func(p *corev1.Pipeline) error {
			a := meta.FindStatusCondition(p.Status.Conditions, corev1.PipelineConditionAvailable)
			if p.Status.Phase != corev1.PipelinePhaseFailed || a == nil || a.Reason != "CrashLoopBackOff" || !strings.Contains(a.Message, want) {
				return errors.New("not Failed with the bind error")
			}
			return nil
		})
		mustRun(t, admin, "delete", "pipeline", "taken", "-n", ns, "--timeout=1m")
	})

	t.Run("delete stops the process", func(t *testing.T) {
		mustRun(t, admin, "delete", "pipeline", "dummy", "-n", ns, "--timeout=1m")
		if alive(pid) {
			t.Errorf("fluent-bit %d still runs after the pipeline was deleted", pid)
		}
		if _, err := os.Stat(filepath.Join(stateDir, ns, "dummy")); !os.IsNotExist(err) {
			t.Errorf("state directory left: %v", err)
		}
	})
}

// fluentBitRecords reads an input's records from Fluent Bit's /api/v1/metrics.
func fluentBitRecords(ctx context.Context, addr, input string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var m struct {
		Input map[string]struct {
			Records int64 `json:"records"`
		} `json:"input"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return 0, err
	}
	return m.Input[input].Records, nil
}

// mustViewer returns the kubeconfig of a user with the view role in ns (made on first use).
func mustViewer(t *testing.T, ns string) string {
	t.Helper()
	user := ns + "-viewer"
	kubeconfig, _, err := cluster.NewUser(user)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Run(context.Background(), "get", "rolebinding", user, "-n", ns); err != nil {
		mustRun(t, admin, "create", "rolebinding", user, "-n", ns, "--clusterrole=view", "--user="+user)
	}
	return kubeconfig
}
