//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	k8scorev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane/kube"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// BenchmarkDataPlane measures one Kubernetes-mode agent with many pipelines (BENCH_PIPELINES,
// default 1,000; replicas 0, so the fake nodes need not hold the pods): the time from its start
// until every pipeline is Started, beside the same objects (rendered by the same code) applied
// straight with server-side apply by a client with 16 workers, which is what a user without an
// agent would run (kubectl apply --server-side, a GitOps tool), until kube-controller-manager has
// rolled them out. Then the agent's memory, what a restart re-applies, and the time to remove
// every pipeline.
func BenchmarkDataPlane(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("BENCH_PIPELINES")); err == nil && v > 0 {
		n = v
	}
	primaryCloudAPI(b)
	binary := coreOperator(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cs, err := versioned.NewForConfig(cluster.AdminConfig())
	if err != nil {
		b.Fatal(err)
	}
	kc, err := cluster.AdminClient()
	if err != nil {
		b.Fatal(err)
	}
	// The direct client gets the agent's default rate limits, so the ratio is the agent's own cost.
	directConfig := cluster.AdminConfig()
	directConfig.QPS, directConfig.Burst = 50, 100
	dc, err := kubernetes.NewForConfig(directConfig)
	if err != nil {
		b.Fatal(err)
	}
	// Setting up and watching go unthrottled.
	fast := cluster.AdminConfig()
	fast.QPS, fast.Burst = 1000, 2000
	if cs, err = versioned.NewForConfig(fast); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		ns, target, direct := fmt.Sprintf("bench-dp-%d", i), fmt.Sprintf("bench-dp-%d-workloads", i), fmt.Sprintf("bench-dp-%d-direct", i)
		for _, name := range []string{ns, target, direct} {
			if _, err := kc.CoreV1().Namespaces().Create(ctx, &k8scorev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		ci := &corev1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Spec: corev1.CoreInstanceSpec{Mode: corev1.CoreInstanceModeKubernetes, Namespace: target}}
		if _, err := cs.CoreV1().CoreInstances(ns).Create(ctx, ci, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		secret := &corev1.PipelineSecret{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Data: map[string][]byte{"shared_key": []byte("bench-key")}}
		if _, err := cs.CoreV1().PipelineSecrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		names := make([]string, n)
		for j := range names {
			names[j] = fmt.Sprintf("p%05d", j)
		}
		var mu sync.Mutex
		created := map[string]*corev1.Pipeline{}
		parallel(b, 16, names, func(name string) error {
			p := &corev1.Pipeline{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.PipelineSpec{CoreInstance: "bench", Config: forwardPipelineConfig, Replicas: ptr[int32](0),
					Secrets: []string{"bench"}, ServiceType: k8scorev1.ServiceTypeClusterIP},
			}
			got, err := cs.CoreV1().Pipelines(ns).Create(ctx, p, metav1.CreateOptions{})
			if err == nil {
				mu.Lock()
				created[name] = got
				mu.Unlock()
			}
			return err
		})

		// The alternative: the same objects, applied straight.
		stored, err := cs.CoreV1().PipelineSecrets(ns).Get(ctx, "bench", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		profile, err := cs.CoreV1().ResourceProfiles(ns).Get(ctx, corev1.DefaultResourceProfile, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		tgt := kube.Target{Namespace: direct, CoreInstance: "bench", SourceNamespace: ns, Image: "fluent/fluent-bit:bench"}
		start := time.Now()
		parallel(b, 16, names, func(name string) error {
			r, err := render.Render(created[name], &profile.Spec, []*corev1.PipelineSecret{stored}, render.Options{FilesDir: kube.ConfigDir, StoragePath: kube.StoragePath})
			if err != nil {
				return err
			}
			return applyDirect(ctx, dc, direct, tgt.Build(created[name], ci, r, &profile.Spec))
		})
		// Started means rolled out: kube-controller-manager has to catch up on either side.
		waitUntilBench(ctx, b, "every direct Deployment rolled out", func(ctx context.Context) error {
			l, err := kc.AppsV1().Deployments(direct).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			done := 0
			for _, d := range l.Items {
				if d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == d.Status.Replicas {
					done++
				}
			}
			if done < n {
				return fmt.Errorf("%d of %d rolled out", done, n)
			}
			return nil
		})
		directTime := time.Since(start)

		// The agent, from nothing applied to every pipeline Started.
		start = time.Now()
		agent, err := cluster.StartAgent(ctx, binary, framework.AgentOptions{Namespace: ns, CoreInstance: "bench", TargetNamespace: target, Args: []string{"-v=2"}})
		if err != nil {
			b.Fatal(err)
		}
		waitAllStarted(ctx, b, cs, ns, n)
		agentTime := time.Since(start)
		rss, peak := memoryOf(agent.Pid())
		agent.Stop(30 * time.Second)
		coldApplied := countInLog(agent.LogFile, `"Applied"`)

		// A restart: everything is in place, nothing should be applied again.
		restart, err := cluster.StartAgent(ctx, binary, framework.AgentOptions{Namespace: ns, CoreInstance: "bench", TargetNamespace: target, Args: []string{"-v=2"}})
		if err != nil {
			b.Fatal(err)
		}
		waitHeartbeat(ctx, b, cs, ns, n)
		time.Sleep(5 * time.Second) // the workers go through every pipeline once
		warmApplied := countInLog(restart.LogFile, `"Applied"`) - coldApplied

		// Removal: the agent deletes every workload, then lets every pipeline go.
		start = time.Now()
		if err := cs.CoreV1().Pipelines(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			b.Fatal(err)
		}
		waitUntilBench(ctx, b, "every pipeline removed", func(ctx context.Context) error {
			l, err := cs.CoreV1().Pipelines(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if len(l.Items) > 0 {
				return fmt.Errorf("%d pipelines left", len(l.Items))
			}
			return nil
		})
		removeTime := time.Since(start)
		restart.Stop(30 * time.Second)

		// The alternative's removal: delete by label, as kubectl delete -l would, until the
		// Deployments (foreground, so their ReplicaSets first) are gone.
		start = time.Now()
		sel := metav1.ListOptions{LabelSelector: kube.LabelCoreInstance + "=bench"}
		fg := metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)}
		for _, del := range []func() error{
			func() error { return dc.AppsV1().Deployments(direct).DeleteCollection(ctx, fg, sel) },
			func() error {
				// Services have no collection delete.
				l, err := dc.CoreV1().Services(direct).List(ctx, sel)
				for i := 0; err == nil && i < len(l.Items); i++ {
					err = dc.CoreV1().Services(direct).Delete(ctx, l.Items[i].Name, metav1.DeleteOptions{})
				}
				return err
			},
			func() error { return dc.CoreV1().Secrets(direct).DeleteCollection(ctx, metav1.DeleteOptions{}, sel) },
			func() error { return dc.CoreV1().ConfigMaps(direct).DeleteCollection(ctx, metav1.DeleteOptions{}, sel) },
		} {
			if err := del(); err != nil {
				b.Fatal(err)
			}
		}
		waitUntilBench(ctx, b, "every direct Deployment removed", func(ctx context.Context) error {
			l, err := kc.AppsV1().Deployments(direct).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if len(l.Items) > 0 {
				return fmt.Errorf("%d Deployments left", len(l.Items))
			}
			return nil
		})
		directRemoveTime := time.Since(start)

		b.ReportMetric(agentTime.Seconds(), "agent-reconcile-s")
		b.ReportMetric(directTime.Seconds(), "direct-apply-s")
		b.ReportMetric(agentTime.Seconds()/directTime.Seconds(), "agent/direct")
		b.ReportMetric(float64(n)/agentTime.Seconds(), "pipelines/s")
		b.ReportMetric(float64(peak)/(1<<20), "agent-peak-MiB")
		b.ReportMetric(removeTime.Seconds(), "remove-all-s")
		b.ReportMetric(removeTime.Seconds()/directRemoveTime.Seconds(), "remove-agent/direct")
		fmt.Printf("\ndata plane, %d pipelines (Deployment with 0 replicas, ConfigMap, Secret, Service each):\n"+
			"  agent, cold start to all Started: %.1fs (%.0f pipelines/s, %d objects applied)\n"+
			"  same objects applied directly (SSA, 16 workers): %.1fs; agent/direct %.2f\n"+
			"  agent memory after reconcile: RSS %.0f MiB, peak %.0f MiB\n"+
			"  agent restart with everything in place: %d objects applied again\n"+
			"  delete every pipeline until all are gone: %.1fs; the same objects deleted by label: %.1fs; agent/direct %.2f\n",
			n, agentTime.Seconds(), float64(n)/agentTime.Seconds(), coldApplied, directTime.Seconds(),
			agentTime.Seconds()/directTime.Seconds(), float64(rss)/(1<<20), float64(peak)/(1<<20), warmApplied,
			removeTime.Seconds(), directRemoveTime.Seconds(), removeTime.Seconds()/directRemoveTime.Seconds())
	}
}

func parallel(b *testing.B, workers int, items []string, fn func(string) error) {
	b.Helper()
	work := make(chan string)
	errs := make(chan error, len(items))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for it := range work {
				if err := fn(it); err != nil {
					errs <- fmt.Errorf("%s: %w", it, err)
				}
			}
		})
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func applyDirect(ctx context.Context, kc kubernetes.Interface, ns string, d *kube.Desired) error {
	opts := metav1.PatchOptions{FieldManager: "bench-direct", Force: ptr(true)}
	patch := func(obj any) ([]byte, error) { return json.Marshal(obj) }
	data, err := patch(d.ConfigMap)
	if err != nil {
		return err
	}
	if _, err := kc.CoreV1().ConfigMaps(ns).Patch(ctx, d.ConfigMap.Name, types.ApplyPatchType, data, opts); err != nil {
		return err
	}
	if data, err = patch(d.Secret); err != nil {
		return err
	}
	if _, err := kc.CoreV1().Secrets(ns).Patch(ctx, d.Secret.Name, types.ApplyPatchType, data, opts); err != nil {
		return err
	}
	if data, err = patch(d.Deployment); err != nil {
		return err
	}
	if _, err := kc.AppsV1().Deployments(ns).Patch(ctx, d.Deployment.Name, types.ApplyPatchType, data, opts); err != nil {
		return err
	}
	for _, s := range d.Services {
		if data, err = patch(s); err != nil {
			return err
		}
		if _, err := kc.CoreV1().Services(ns).Patch(ctx, s.Name, types.ApplyPatchType, data, opts); err != nil {
			return err
		}
	}
	return nil
}

func waitAllStarted(ctx context.Context, b *testing.B, cs versioned.Interface, ns string, n int) {
	b.Helper()
	waitUntilBench(ctx, b, "every pipeline Started", func(ctx context.Context) error {
		l, err := cs.CoreV1().Pipelines(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		started := 0
		for _, p := range l.Items {
			d := meta.FindStatusCondition(p.Status.Conditions, corev1.PipelineConditionDeployed)
			if p.Status.Phase == corev1.PipelinePhaseStarted && d != nil && d.Status == metav1.ConditionTrue {
				started++
			}
		}
		if started < n {
			return fmt.Errorf("%d of %d Started", started, n)
		}
		return nil
	})
}

func waitHeartbeat(ctx context.Context, b *testing.B, cs versioned.Interface, ns string, n int) {
	b.Helper()
	since := time.Now()
	waitUntilBench(ctx, b, "a heartbeat of the restarted agent", func(ctx context.Context) error {
		ci, err := cs.CoreV1().CoreInstances(ns).Get(ctx, "bench", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if hb := ci.Status.LastHeartbeatTime; hb == nil || hb.Time.Before(since.Add(-time.Second)) || ci.Status.Pipelines != int32(n) {
			return fmt.Errorf("status %+v", ci.Status)
		}
		return nil
	})
}

func waitUntilBench(ctx context.Context, b *testing.B, what string, check func(context.Context) error) {
	b.Helper()
	var last error
	for {
		if last = check(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("gave up waiting for %s: %v", what, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// memoryOf reads a process's resident and peak resident memory in bytes.
func memoryOf(pid int) (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

func countInLog(path, needle string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), needle)
}
