package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Fake nodes: no machine running the tests has a container runtime, yet a data plane
// must see its Deployments, DaemonSets and StatefulSets become Available. kube-scheduler
// binds pods to Node objects, and kwok (sigs.k8s.io/kwok) plays the kubelet of every
// node annotated KwokNodeAnnotation: it reports the node Ready and moves the node's pods
// to Running and Ready with an IP from PodCIDR, and removes them once deleted. No
// process runs inside those pods.
const (
	// KwokNodeAnnotation (with the value "fake") marks the nodes kwok manages.
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
	// KwokNodeLabel is the label (type=kwok) of those nodes, for node selectors.
	KwokNodeLabel = "type"
	// PodCIDR is where kwok takes pod IPs from.
	PodCIDR = "10.0.0.1/24"
	// NodeIP is every fake node's InternalIP.
	NodeIP = "10.0.0.1"
	// NodeCount is how many fake nodes StartCluster creates: two, so that spreading
	// and one-pod-per-node (DaemonSets) are observable.
	NodeCount = 2
)

// KwokStagesDir is where `make tools` copies kwok's stage definitions, beside the binary.
const KwokStagesDir = "kwok-stages"

// kwokStages are the stages kwok plays, from its module's kustomize/stage/: without
// them kwok exits with "no stages found". The "fast" ones act at once: a node is
// Ready as soon as kwok sees it, a bound pod Running and Ready, a deleted pod gone.
// node-heartbeat keeps the nodes' conditions fresh, as a kubelet's status updates do.
var kwokStages = []string{
	"node-initialize.yaml",
	"node-heartbeat.yaml",
	"pod-ready.yaml",
	"pod-complete.yaml",
	"pod-delete.yaml",
}

func (c *Cluster) checkKwokStages() error {
	for _, s := range kwokStages {
		p := filepath.Join(c.BinDir, KwokStagesDir, s)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("kwok stage %s not found (run `make tools`): %w", s, err)
		}
	}
	return nil
}

func (c *Cluster) startScheduler() error {
	kubeconfig := filepath.Join(c.Dir, "scheduler.kubeconfig")
	c.logf("starting kube-scheduler")
	var err error
	c.scheduler, err = StartProcess("kube-scheduler", filepath.Join(c.Dir, "logs", "kube-scheduler.log"), filepath.Join(c.BinDir, "kube-scheduler"),
		// As system:kube-scheduler, which bootstrap RBAC grants what scheduling needs.
		"--kubeconfig="+kubeconfig,
		"--leader-elect=false",
		// Nothing probes it: serving healthz and metrics would only take a port.
		"--secure-port=0",
	)
	return err
}

func (c *Cluster) startKwok() error {
	c.logf("starting kwok")
	args := []string{
		// kwok writes node and pod status, node leases and events: cluster admin.
		"--kubeconfig=" + c.AdminKubeconfig,
		// Only the nodes StartCluster creates are kwok's.
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
		"--cidr=" + PodCIDR,
		"--node-ip=" + NodeIP,
	}
	for _, s := range kwokStages {
		args = append(args, "-c", filepath.Join(c.BinDir, KwokStagesDir, s))
	}
	var err error
	c.kwok, err = StartProcess("kwok", filepath.Join(c.Dir, "logs", "kwok.log"), filepath.Join(c.BinDir, "kwok"), args...)
	return err
}

// fakeNode is a node with the resources of a sizeable machine, labelled as a kubelet
// labels its node (DaemonSets commonly select kubernetes.io/os=linux).
func fakeNode(name string) *corev1.Node {
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{KwokNodeAnnotation: "fake"},
			Labels: map[string]string{
				KwokNodeLabel:            "kwok",
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
		},
		// Node status may be set on create; kwok keeps capacity and allocatable.
		Status: corev1.NodeStatus{Capacity: resources, Allocatable: resources},
	}
}

// startNodes creates the fake nodes and waits until kwok reports them Ready.
//
// kube-apiserver's TaintNodesByCondition admission gives every new node the
// node.kubernetes.io/not-ready:NoSchedule taint, which node-lifecycle-controller
// removes once the node is Ready. That controller is not run: it would also taint the
// nodes unreachable whenever kwok's heartbeat lagged on a loaded machine. The
// framework removes the taint itself, once kwok has reported the node Ready.
func (c *Cluster) startNodes(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(c.adminConfig)
	if err != nil {
		return err
	}
	c.Nodes = nil
	for i := range NodeCount {
		name := fmt.Sprintf("kwok-node-%d", i)
		if _, err := cs.CoreV1().Nodes().Create(ctx, fakeNode(name), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
		c.Nodes = append(c.Nodes, name)
	}
	c.logf("waiting for nodes %s to be Ready", strings.Join(c.Nodes, ", "))
	if err := waitForAll(ctx, []*Process{c.kwok, c.scheduler, c.controllerManager}, func(ctx context.Context) error {
		for _, name := range c.Nodes {
			node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !nodeReady(node) {
				return fmt.Errorf("node %s is not Ready", name)
			}
			if hasTaint(node, corev1.TaintNodeNotReady) {
				// A merge patch needs no resourceVersion, so kwok's concurrent
				// status updates cannot make it conflict. The nodes have no other taints.
				patch := []byte(`{"spec":{"taints":null}}`)
				if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					return fmt.Errorf("removing the not-ready taint of node %s: %w", name, err)
				}
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("fake nodes did not become Ready (log: %s): %w", c.kwok.LogFile, err)
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}
