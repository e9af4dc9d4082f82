//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	k8scorev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane/kube"
	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

var (
	operatorOnce   sync.Once
	operatorBinary string
	operatorErr    error
)

// coreOperator builds cmd/core-operator once.
func coreOperator(t testing.TB) string {
	t.Helper()
	operatorOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		operatorBinary, operatorErr = framework.BuildCommand(ctx, repoRoot, filepath.Join(cluster.Dir, "bin"), "core-operator")
	})
	if operatorErr != nil {
		t.Fatal(operatorErr)
	}
	return operatorBinary
}

const forwardPipelineConfig = `[SERVICE]
    flush 1

[INPUT]
    name       forward
    listen     0.0.0.0
    port       24224
    shared_key {{ secrets.shared_key }}

[OUTPUT]
    name  stdout
    match *
`

// pipelineStatus reads a pipeline until check accepts it.
func waitPipeline(ctx context.Context, t *testing.T, cs versioned.Interface, ns, name, what string, check func(p *corev1.Pipeline) error) *corev1.Pipeline {
	t.Helper()
	var got *corev1.Pipeline
	waitUntil(ctx, t, fmt.Sprintf("pipeline %s/%s: %s", ns, name, what), func(ctx context.Context) error {
		p, err := cs.CoreV1().Pipelines(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := check(p); err != nil {
			return fmt.Errorf("%w (phase %s, replicas %d/%d, conditions %s)", err, p.Status.Phase, p.Status.ReadyReplicas, p.Status.Replicas, conditionsOf(p.Status.Conditions))
		}
		got = p
		return nil
	})
	return got
}

func conditionsOf(cs []metav1.Condition) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%s/%s: %s", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(parts, "; ")
}

// startedWith accepts a pipeline that runs its current generation on ready replicas.
func startedWith(ready int32) func(p *corev1.Pipeline) error {
	return func(p *corev1.Pipeline) error {
		d := meta.FindStatusCondition(p.Status.Conditions, corev1.PipelineConditionDeployed)
		a := meta.FindStatusCondition(p.Status.Conditions, corev1.PipelineConditionAvailable)
		switch {
		case p.Status.ObservedGeneration != p.Generation:
			return fmt.Errorf("observedGeneration %d of %d", p.Status.ObservedGeneration, p.Generation)
		case p.Status.Phase != corev1.PipelinePhaseStarted:
			return errors.New("not Started")
		case p.Status.ReadyReplicas != ready:
			return fmt.Errorf("%d ready, want %d", p.Status.ReadyReplicas, ready)
		case d == nil || d.Status != metav1.ConditionTrue || a == nil || a.Status != metav1.ConditionTrue:
			return errors.New("not Deployed and Available")
		}
		return nil
	}
}

// TestDataPlaneKubernetes runs core-operator for a Kubernetes-mode core instance with only the
// data-plane roles of artifacts/deploy, and follows pipelines from creation to deletion on the
// real control plane (kwok's nodes run the pods).
func TestDataPlaneKubernetes(t *testing.T) {
	primaryCloudAPI(t)
	binary := coreOperator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const ns, target, instance = "e2e-dataplane", "e2e-dataplane-workloads", "prod"
	mustRun(t, admin, "create", "namespace", ns)
	cs, err := versioned.NewForConfig(cluster.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	kc, err := cluster.AdminClient()
	if err != nil {
		t.Fatal(err)
	}

	mustRunStdin(t, admin, fmt.Sprintf(`
apiVersion: core.calyptia.com/v1
kind: CoreInstance
metadata: {name: %[1]s}
spec: {mode: Kubernetes, namespace: %[2]s, image: "registry.example/fluent-bit:9.9.9"}
---
apiVersion: core.calyptia.com/v1
kind: PipelineSecret
metadata: {name: forward}
data: {shared_key: %[3]s}
---
apiVersion: core.calyptia.com/v1
kind: ResourceProfile
metadata: {name: small}
spec:
  storageMaxChunksUp: 16
  storageVolumeSize: 128Mi
  resources:
    requests: {cpu: 20m, memory: 32Mi}
    limits: {memory: 96Mi}
`, instance, target, b64("fw-s3cret-value")), "apply", "-n", ns, "-f", "-")
	forward := &corev1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "forward"},
		Spec: corev1.PipelineSpec{
			CoreInstance: instance, Config: forwardPipelineConfig, Replicas: ptr[int32](2), ResourceProfile: "small",
			Secrets: []string{"forward"}, ServiceType: k8scorev1.ServiceTypeClusterIP,
			Pod: corev1.PipelinePod{Labels: map[string]string{"team": "e2e"}},
		},
	}
	if _, err := cs.CoreV1().Pipelines(ns).Create(ctx, forward, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	agent, err := cluster.StartAgent(ctx, binary, framework.AgentOptions{
		Namespace: ns, CoreInstance: instance, TargetNamespace: target,
		Args: []string{"--heartbeat-interval=5s", "--reloader-image=registry.example/core-operator:e2e", "-v=2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop(15 * time.Second)

	t.Run("heartbeat", func(t *testing.T) {
		waitUntil(ctx, t, "core instance Running", func(ctx context.Context) error {
			ci, err := cs.CoreV1().CoreInstances(ns).Get(ctx, instance, metav1.GetOptions{})
			if err != nil {
				return err
			}
			st := ci.Status
			if st.Phase != corev1.CoreInstancePhaseRunning || st.Pipelines != 1 || st.AgentVersion == "" || st.FluentBitVersion != "9.9.9" ||
				st.Cluster == nil || st.Cluster.Namespace != target || !strings.HasPrefix(st.Cluster.Version, "v1.") {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		})
		out := mustRun(t, admin, "get", "coreinstance", instance, "-n", ns)
		if !strings.Contains(out, "Running") {
			t.Errorf("kubectl get coreinstance:\n%s", out)
		}
	})

	var p *corev1.Pipeline
	t.Run("runs", func(t *testing.T) {
		p = waitPipeline(ctx, t, cs, ns, "forward", "Started with 2 ready", startedWith(2))
		if !contains(p.Finalizers, "data-plane.core.calyptia.com/"+instance) {
			t.Errorf("finalizers %v lack the agent's", p.Finalizers)
		}
		if p.Status.Selector != kube.SelectorString(map[string]string{kube.LabelCoreInstance: instance, kube.LabelNamespace: ns, kube.LabelPipeline: "forward"}) {
			t.Errorf("status.selector %q", p.Status.Selector)
		}
		if !strings.HasSuffix(p.Status.TapEndpoint, ":2025") || strings.HasPrefix(p.Status.TapEndpoint, "127.") {
			t.Errorf("status.tapEndpoint %q, want a pod's IP at vivo_exporter's port", p.Status.TapEndpoint)
		}
		if p.Status.ConfigRevision == "" || len(p.Status.Ports) != 1 || p.Status.Ports[0].Port != 24224 || p.Status.Ports[0].Plugin != "forward" ||
			!strings.HasSuffix(p.Status.Ports[0].Endpoint, ":24224") {
			t.Errorf("status revision %q, ports %+v", p.Status.ConfigRevision, p.Status.Ports)
		}

		cm, err := kc.CoreV1().ConfigMaps(target).Get(ctx, "forward-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conf := cm.Data["fluent-bit.conf"]
		if !strings.Contains(conf, "${CALYPTIA_SECRET_SHARED_KEY}") || strings.Contains(conf, "fw-s3cret-value") ||
			!strings.Contains(conf, "storage.max_chunks_up") || !strings.Contains(conf, "http_server") {
			t.Errorf("rendered config in the ConfigMap:\n%s", conf)
		}
		sec, err := kc.CoreV1().Secrets(target).Get(ctx, "forward-secrets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(sec.Data["CALYPTIA_SECRET_SHARED_KEY"]) != "fw-s3cret-value" || len(sec.Data) != 1 {
			t.Errorf("Secret data keys %v", keysOf(sec.Data))
		}
		dep, err := kc.AppsV1().Deployments(target).Get(ctx, "forward", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := dep.Spec.Template.Spec.Containers[0]
		if c.Image != "registry.example/fluent-bit:9.9.9" || !c.Resources.Limits.Memory().Equal(resource.MustParse("96Mi")) ||
			!c.Resources.Requests.Cpu().Equal(resource.MustParse("20m")) || dep.Spec.Template.Labels["team"] != "e2e" {
			t.Errorf("deployment template: image %s, resources %v, labels %v", c.Image, c.Resources, dep.Spec.Template.Labels)
		}
		svc, err := kc.CoreV1().Services(target).Get(ctx, "forward-tcp-24224", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.Type != k8scorev1.ServiceTypeClusterIP || svc.Spec.Ports[0].Port != 24224 || p.Status.Ports[0].Endpoint != svc.Spec.ClusterIP+":24224" {
			t.Errorf("service %+v, endpoint %q", svc.Spec, p.Status.Ports[0].Endpoint)
		}
		pods := listPods(ctx, t, kc, target, p.Status.Selector)
		if len(pods) != 2 {
			t.Fatalf("%d pods, want 2", len(pods))
		}
		for _, pod := range pods {
			checkRunning(t, pod)
		}
	})

	t.Run("scale", func(t *testing.T) {
		mustRun(t, admin, "scale", "pipeline", "forward", "-n", ns, "--replicas=3")
		waitPipeline(ctx, t, cs, ns, "forward", "Started with 3 ready", startedWith(3))
		dep, err := kc.AppsV1().Deployments(target).Get(ctx, "forward", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *dep.Spec.Replicas != 3 {
			t.Errorf("deployment replicas %d after kubectl scale pipeline --replicas=3", *dep.Spec.Replicas)
		}
		out := mustRun(t, admin, "get", "pipeline", "forward", "-n", ns)
		if !strings.Contains(out, "3/3") || !strings.Contains(out, "Started") {
			t.Errorf("kubectl get pipeline:\n%s", out)
		}
	})

	t.Run("an HPA scales the pipeline through pipelines/scale", func(t *testing.T) {
		// kube-controller-manager's HPA controller reads and writes the scale subresource of
		// core.calyptia.com pipelines like any other; below minReplicas it scales without metrics.
		hpa := &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: "forward"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "core.calyptia.com/v1", Kind: "Pipeline", Name: "forward"},
				MinReplicas:    ptr[int32](4), MaxReplicas: 5,
			},
		}
		if _, err := kc.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPipeline(ctx, t, cs, ns, "forward", "scaled to 4 by the HPA", func(p *corev1.Pipeline) error {
			if p.Spec.Replicas == nil || *p.Spec.Replicas != 4 {
				return fmt.Errorf("spec.replicas %v", p.Spec.Replicas)
			}
			return startedWith(4)(p)
		})
		got, err := kc.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "forward", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c := hpaCondition(got.Status.Conditions, autoscalingv2.AbleToScale); c == nil || c.Status != k8scorev1.ConditionTrue {
			t.Errorf("HPA AbleToScale: %+v", c)
		}
		if err := kc.AutoscalingV2().HorizontalPodAutoscalers(ns).Delete(ctx, "forward", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		mustRun(t, admin, "scale", "pipeline", "forward", "-n", ns, "--replicas=3")
		waitPipeline(ctx, t, cs, ns, "forward", "back to 3", startedWith(3))
	})

	t.Run("config edit rolls out", func(t *testing.T) {
		before, err := kc.AppsV1().Deployments(target).Get(ctx, "forward", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		oldRev := before.Spec.Template.Annotations[kube.AnnotationConfigRevision]
		prev, err := cs.CoreV1().Pipelines(ns).Get(ctx, "forward", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustRun(t, admin, "patch", "pipeline", "forward", "-n", ns, "--type=merge", "-p",
			`{"spec":{"config":`+jsonString(strings.Replace(forwardPipelineConfig, "flush 1", "flush 2", 1))+`}}`)
		p := waitPipeline(ctx, t, cs, ns, "forward", "the edit Started", startedWith(3))
		after, err := kc.AppsV1().Deployments(target).Get(ctx, "forward", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		newRev := after.Spec.Template.Annotations[kube.AnnotationConfigRevision]
		if newRev == oldRev || newRev == "" || p.Status.ConfigRevision == prev.Status.ConfigRevision {
			t.Errorf("pod template config revision %q -> %q, status %q -> %q", oldRev, newRev, prev.Status.ConfigRevision, p.Status.ConfigRevision)
		}
		cm, _ := kc.CoreV1().ConfigMaps(target).Get(ctx, "forward-config", metav1.GetOptions{})
		if !strings.Contains(strings.Join(strings.Fields(cm.Data["fluent-bit.conf"]), " "), "flush 2") {
			t.Errorf("ConfigMap not updated:\n%s", cm.Data["fluent-bit.conf"])
		}
		out := mustRun(t, admin, "describe", "pipeline", "forward", "-n", ns)
		for _, want := range []string{"RollingOut", "Deployed"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl describe pipeline has no %s event:\n%s", want, out)
			}
		}
	})

	t.Run("hot reload keeps the pods", func(t *testing.T) {
		hot := &corev1.Pipeline{
			ObjectMeta: metav1.ObjectMeta{Name: "hot"},
			Spec: corev1.PipelineSpec{CoreInstance: instance, Config: dummyConfig, Replicas: ptr[int32](1),
				DeploymentStrategy: corev1.DeploymentStrategyHotReload,
				Autoscaling:        &corev1.PipelineAutoscaling{MaxReplicas: 4, TargetCPUUtilizationPercentage: ptr[int32](75)}},
		}
		if _, err := cs.CoreV1().Pipelines(ns).Create(ctx, hot, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPipeline(ctx, t, cs, ns, "hot", "Started", startedWith(1))
		before, err := kc.AppsV1().Deployments(target).Get(ctx, "hot", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cs2 := before.Spec.Template.Spec.Containers
		if len(cs2) != 2 || cs2[1].Image != "registry.example/core-operator:e2e" {
			t.Errorf("HotReload pods lack the reload sidecar: %+v", cs2)
		}
		hpa, err := kc.AutoscalingV2().HorizontalPodAutoscalers(target).Get(ctx, "hot", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("HPA of an autoscaled pipeline: %v", err)
		}
		if hpa.Spec.MaxReplicas != 4 || hpa.Spec.ScaleTargetRef.Name != "hot" || *hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != 75 {
			t.Errorf("HPA spec %+v", hpa.Spec)
		}
		cm1, _ := kc.CoreV1().ConfigMaps(target).Get(ctx, "hot-config", metav1.GetOptions{})
		mustRun(t, admin, "patch", "pipeline", "hot", "-n", ns, "--type=merge", "-p",
			`{"spec":{"config":`+jsonString(strings.Replace(dummyConfig, "name stdout", "name null", 1))+`}}`)
		p := waitPipeline(ctx, t, cs, ns, "hot", "the edit deployed", startedWith(1))
		cm2, _ := kc.CoreV1().ConfigMaps(target).Get(ctx, "hot-config", metav1.GetOptions{})
		if cm1.Data["fluent-bit.conf"] == cm2.Data["fluent-bit.conf"] {
			t.Error("the ConfigMap did not change with the config")
		}
		after, err := kc.AppsV1().Deployments(target).Get(ctx, "hot", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if after.Generation != before.Generation || after.Spec.Template.String() != before.Spec.Template.String() {
			t.Errorf("a HotReload config edit changed the pod template (generation %d -> %d)", before.Generation, after.Generation)
		}
		if d := meta.FindStatusCondition(p.Status.Conditions, corev1.PipelineConditionDeployed); !strings.Contains(d.Message, p.Status.ConfigRevision) {
			t.Errorf("Deployed %q does not name revision %s", d.Message, p.Status.ConfigRevision)
		}
	})

	t.Run("missing secret fails without touching what runs", func(t *testing.T) {
		mustRun(t, admin, "patch", "pipeline", "forward", "-n", ns, "--type=merge", "-p",
			`{"spec":{"config":`+jsonString(strings.Replace(forwardPipelineConfig, "secrets.shared_key", "secrets.nope", 1))+`}}`)
		waitPipeline(ctx, t, cs, ns, "forward", "Failed", func(p *corev1.Pipeline) error {
			d := meta.FindStatusCondition(p.Status.Conditions, corev1.PipelineConditionDeployed)
			if p.Status.Phase != corev1.PipelinePhaseFailed || d == nil || d.Reason != "SecretNotFound" || !strings.Contains(d.Message, "nope") {
				return errors.New("not Failed for the missing secret")
			}
			return nil
		})
		dep, err := kc.AppsV1().Deployments(target).Get(ctx, "forward", metav1.GetOptions{})
		if err != nil || dep.Status.ReadyReplicas != 3 {
			t.Errorf("the running deployment was touched: %v, %d ready", err, dep.Status.ReadyReplicas)
		}
		out := mustRun(t, admin, "get", "events", "-n", ns, "--field-selector=involvedObject.name=forward,type=Warning")
		if !strings.Contains(out, "SecretNotFound") {
			t.Errorf("no Warning event:\n%s", out)
		}
	})

	t.Run("delete removes everything", func(t *testing.T) {
		mustRun(t, admin, "delete", "pipeline", "forward", "-n", ns, "--timeout=2m")
		sel := kube.LabelPipeline + "=forward"
		checkGone(ctx, t, kc, target, sel)
		if _, err := cs.CoreV1().Pipelines(ns).Get(ctx, "forward", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pipeline still there: %v", err)
		}
		// The other pipeline keeps running.
		if _, err := kc.AppsV1().Deployments(target).Get(ctx, "hot", metav1.GetOptions{}); err != nil {
			t.Errorf("pipeline hot's deployment: %v", err)
		}
	})

	t.Run("unreachable when the agent stops", func(t *testing.T) {
		agent.Stop(15 * time.Second)
		waitUntil(ctx, t, "core instance Unreachable", func(ctx context.Context) error {
			ci, err := cs.CoreV1().CoreInstances(ns).Get(ctx, instance, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ci.Status.Phase != corev1.CoreInstancePhaseUnreachable {
				return fmt.Errorf("phase %s, last heartbeat %v", ci.Status.Phase, ci.Status.LastHeartbeatTime)
			}
			return nil
		})
	})
}

// checkGone waits until nothing labelled sel is left in ns.
func checkGone(ctx context.Context, t *testing.T, kc kubernetes.Interface, ns, sel string) {
	t.Helper()
	waitUntil(ctx, t, "the pipeline's objects gone", func(ctx context.Context) error {
		opts := metav1.ListOptions{LabelSelector: sel}
		var left []string
		if l, err := kc.AppsV1().Deployments(ns).List(ctx, opts); err == nil {
			for _, o := range l.Items {
				left = append(left, "deployment/"+o.Name)
			}
		}
		if l, err := kc.CoreV1().Pods(ns).List(ctx, opts); err == nil {
			for _, o := range l.Items {
				left = append(left, "pod/"+o.Name)
			}
		}
		if l, err := kc.CoreV1().Services(ns).List(ctx, opts); err == nil {
			for _, o := range l.Items {
				left = append(left, "service/"+o.Name)
			}
		}
		if l, err := kc.CoreV1().ConfigMaps(ns).List(ctx, opts); err == nil {
			for _, o := range l.Items {
				left = append(left, "configmap/"+o.Name)
			}
		}
		if l, err := kc.CoreV1().Secrets(ns).List(ctx, opts); err == nil {
			for _, o := range l.Items {
				left = append(left, "secret/"+o.Name)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func jsonString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
