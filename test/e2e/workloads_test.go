//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	k8scorev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// TestWorkloadsOnFakeNodes proves that the control plane runs workloads the way a
// data plane creates them, with no container runtime: kube-controller-manager turns a
// Deployment, a DaemonSet and a StatefulSet into pods, kube-scheduler binds them to
// kwok's fake nodes, kwok reports them Running and Ready with an IP, and the
// controllers count them Available; deleting the Deployment deletes its pods (garbage
// collector, then kwok's pod-delete stage); a Service's EndpointSlices list its ready
// pods; the HPA controller acts on an HPA.
func TestWorkloadsOnFakeNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs, err := cluster.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	if len(cluster.Nodes) != framework.NodeCount {
		t.Fatalf("cluster has nodes %v, want %d", cluster.Nodes, framework.NodeCount)
	}
	const ns = "e2e-workloads"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &k8scorev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// ServiceAccount admission refuses pods until the namespace's default
	// ServiceAccount exists; the ReplicaSet controller would retry, with backoff.
	waitUntil(ctx, t, "the default ServiceAccount of "+ns, func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})

	t.Run("deployment", func(t *testing.T) {
		const name = "web"
		labels := map[string]string{"app": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr(int32(2)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: podTemplate(labels),
			},
		}
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitUntil(ctx, t, "deployment "+name+" to have 2 available replicas", func(ctx context.Context) error {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			st := d.Status
			if st.ObservedGeneration < d.Generation || st.AvailableReplicas != 2 || st.ReadyReplicas != 2 || st.UpdatedReplicas != 2 || st.Replicas != 2 {
				return fmt.Errorf("status: observed generation %d of %d, replicas %d, updated %d, ready %d, available %d",
					st.ObservedGeneration, d.Generation, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas)
			}
			if !hasCondition(d.Status.Conditions, appsv1.DeploymentAvailable) {
				return errors.New("no Available=True condition")
			}
			return nil
		})
		pods := listPods(ctx, t, cs, ns, "app="+name)
		if len(pods) != 2 {
			t.Fatalf("%d pods of deployment %s, want 2", len(pods), name)
		}
		for _, p := range pods {
			checkRunning(t, p)
		}

		if err := cs.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitUntil(ctx, t, "the pods of deleted deployment "+name+" to be gone", func(ctx context.Context) error {
			pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
			if err != nil {
				return err
			}
			if n := len(pods.Items); n != 0 {
				return fmt.Errorf("%d pods left", n)
			}
			return nil
		})
		rs, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs.Items {
			if r.DeletionTimestamp == nil {
				t.Errorf("replicaset %s outlived its deployment", r.Name)
			}
		}
	})

	t.Run("daemonset", func(t *testing.T) {
		const name = "agent"
		labels := map[string]string{"app": name}
		ds := &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: podTemplate(labels),
			},
		}
		// As log collectors' DaemonSets do; the fake nodes carry the label.
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
		if _, err := cs.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want := int32(len(cluster.Nodes))
		waitUntil(ctx, t, fmt.Sprintf("daemonset %s to have %d ready pods", name, want), func(ctx context.Context) error {
			ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			st := ds.Status
			if st.ObservedGeneration < ds.Generation || st.DesiredNumberScheduled != want || st.NumberReady != want || st.NumberAvailable != want || st.UpdatedNumberScheduled != want {
				return fmt.Errorf("status: observed generation %d of %d, desired %d, ready %d, available %d, updated %d",
					st.ObservedGeneration, ds.Generation, st.DesiredNumberScheduled, st.NumberReady, st.NumberAvailable, st.UpdatedNumberScheduled)
			}
			return nil
		})
		pods := listPods(ctx, t, cs, ns, "app="+name)
		var nodes []string
		for _, p := range pods {
			checkRunning(t, p)
			nodes = append(nodes, p.Spec.NodeName)
		}
		slices.Sort(nodes)
		if want := slices.Sorted(slices.Values(cluster.Nodes)); !slices.Equal(nodes, want) {
			t.Fatalf("daemonset pods are on nodes %v, want one on each of %v", nodes, want)
		}
	})

	t.Run("statefulset service and hpa", func(t *testing.T) {
		const name = "store"
		labels := map[string]string{"app": name}
		svc := &k8scorev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: k8scorev1.ServiceSpec{
				Selector: labels,
				Ports:    []k8scorev1.ServicePort{{Name: "http", Port: 2020}},
			},
		}
		if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		sts := &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.StatefulSetSpec{
				ServiceName: name,
				Replicas:    ptr(int32(2)),
				Selector:    &metav1.LabelSelector{MatchLabels: labels},
				Template:    podTemplate(labels),
			},
		}
		if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitUntil(ctx, t, "statefulset "+name+" to have 2 available replicas", func(ctx context.Context) error {
			sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			st := sts.Status
			if st.ObservedGeneration < sts.Generation || st.ReadyReplicas != 2 || st.AvailableReplicas != 2 || st.CurrentReplicas != 2 {
				return fmt.Errorf("status: observed generation %d of %d, current %d, ready %d, available %d",
					st.ObservedGeneration, sts.Generation, st.CurrentReplicas, st.ReadyReplicas, st.AvailableReplicas)
			}
			return nil
		})
		var names, ips []string
		for _, p := range listPods(ctx, t, cs, ns, "app="+name) {
			checkRunning(t, p)
			names = append(names, p.Name)
			ips = append(ips, p.Status.PodIP)
		}
		slices.Sort(names)
		slices.Sort(ips)
		if want := []string{name + "-0", name + "-1"}; !slices.Equal(names, want) {
			t.Fatalf("statefulset %s has pods %v, want %v", name, names, want)
		}

		// The Service's EndpointSlices list exactly the pods, ready.
		waitUntil(ctx, t, "the endpoints of service "+name+" to be its pods", func(ctx context.Context) error {
			list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + name})
			if err != nil {
				return err
			}
			var ready []string
			for _, es := range list.Items {
				for _, ep := range es.Endpoints {
					if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
						ready = append(ready, ep.Addresses...)
					}
				}
			}
			slices.Sort(ready)
			if !slices.Equal(ready, ips) {
				return fmt.Errorf("ready endpoint addresses %v, want the pod IPs %v", ready, ips)
			}
			return nil
		})

		// There is no metrics API: the HPA controller takes the HPA on and says so.
		hpa := &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: name},
				MinReplicas:    ptr(int32(1)),
				MaxReplicas:    3,
				Metrics: []autoscalingv2.MetricSpec{{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{
						Name:   k8scorev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))},
					},
				}},
			},
		}
		if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitUntil(ctx, t, "the HPA controller to report on hpa "+name, func(ctx context.Context) error {
			hpa, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			st := hpa.Status
			able := hpaCondition(st.Conditions, autoscalingv2.AbleToScale)
			active := hpaCondition(st.Conditions, autoscalingv2.ScalingActive)
			if st.CurrentReplicas != 2 || able == nil || able.Status != k8scorev1.ConditionTrue || active == nil || active.Status != k8scorev1.ConditionFalse {
				return fmt.Errorf("status: current replicas %d, conditions %+v", st.CurrentReplicas, st.Conditions)
			}
			return nil
		})
	})
}

func hpaCondition(conds []autoscalingv2.HorizontalPodAutoscalerCondition, typ autoscalingv2.HorizontalPodAutoscalerConditionType) *autoscalingv2.HorizontalPodAutoscalerCondition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// podTemplate is a pod of one container; its image is never pulled.
func podTemplate(labels map[string]string) k8scorev1.PodTemplateSpec {
	return k8scorev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: k8scorev1.PodSpec{
			Containers: []k8scorev1.Container{{
				Name:  "main",
				Image: "registry.k8s.io/pause:3.10",
				Resources: k8scorev1.ResourceRequirements{Requests: k8scorev1.ResourceList{
					k8scorev1.ResourceCPU:    resource.MustParse("100m"),
					k8scorev1.ResourceMemory: resource.MustParse("64Mi"),
				}},
			}},
		},
	}
}

// checkRunning fails the test unless pod is bound to a fake node, Running and Ready,
// with an IP.
func checkRunning(t *testing.T, p k8scorev1.Pod) {
	t.Helper()
	if !slices.Contains(cluster.Nodes, p.Spec.NodeName) {
		t.Errorf("pod %s is on node %q, not on a fake node %v", p.Name, p.Spec.NodeName, cluster.Nodes)
	}
	if p.Status.Phase != k8scorev1.PodRunning {
		t.Errorf("pod %s is %s, want Running", p.Name, p.Status.Phase)
	}
	ready := false
	for _, c := range p.Status.Conditions {
		if c.Type == k8scorev1.PodReady {
			ready = c.Status == k8scorev1.ConditionTrue
		}
	}
	if !ready {
		t.Errorf("pod %s is not Ready: %+v", p.Name, p.Status.Conditions)
	}
	if p.Status.PodIP == "" {
		t.Errorf("pod %s has no IP", p.Name)
	}
}

func listPods(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, selector string) []k8scorev1.Pod {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func hasCondition(conds []appsv1.DeploymentCondition, typ appsv1.DeploymentConditionType) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == k8scorev1.ConditionTrue
		}
	}
	return false
}

// waitUntil polls check until it returns nil and fails the test with check's last
// error when ctx ends first.
func waitUntil(ctx context.Context, t *testing.T, what string, check func(context.Context) error) {
	t.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return
		}
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		// A check cut short by the deadline says less than the one before it.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, last)
		case <-tick.C:
		}
	}
}
