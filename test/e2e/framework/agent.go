package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The ClusterRoles of artifacts/deploy that data plane agents are bound to.
const (
	DataPlaneRole          = "calyptia-core:data-plane"
	DataPlaneWorkloadsRole = "calyptia-core:data-plane-workloads"
)

// AgentOptions configures StartAgent.
type AgentOptions struct {
	// Namespace and CoreInstance name the agent's core instance.
	Namespace, CoreInstance string
	// TargetNamespace, when set, is where a Kubernetes-mode agent runs workloads; the agent's
	// ServiceAccount gets the workloads role there.
	TargetNamespace string
	// Args are more core-operator flags.
	Args []string
}

// Agent is a running core-operator.
type Agent struct {
	*Process
	// Kubeconfig authenticates as the agent's ServiceAccount.
	Kubeconfig string
}

// StartAgent runs core-operator for a core instance as a pod would: as a ServiceAccount of
// its own, bound to the data-plane role in the core instance's namespace (and to the workloads
// role in the target namespace) and nothing else, so the test proves the roles suffice.
func (c *Cluster) StartAgent(ctx context.Context, binary string, opts AgentOptions) (*Agent, error) {
	cs, err := c.AdminClient()
	if err != nil {
		return nil, err
	}
	sa := "core-operator-" + opts.CoreInstance
	ensure := func(err error) error {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	bind := func(ns, role string) error {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa + ":" + role[len("calyptia-core:"):], Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: opts.Namespace}},
		}
		if err := ensure(func() error {
			_, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
			return err
		}()); err != nil {
			return fmt.Errorf("binding %s in %s: %w", role, ns, err)
		}
		return nil
	}
	for _, ns := range []string{opts.Namespace, opts.TargetNamespace} {
		if ns == "" {
			continue
		}
		if err := ensure(func() error {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			return err
		}()); err != nil {
			return nil, fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	if err := ensure(func() error {
		_, err := cs.CoreV1().ServiceAccounts(opts.Namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		return err
	}()); err != nil {
		return nil, fmt.Errorf("creating ServiceAccount %s/%s: %w", opts.Namespace, sa, err)
	}
	if err := bind(opts.Namespace, DataPlaneRole); err != nil {
		return nil, err
	}
	if opts.TargetNamespace != "" {
		if err := bind(opts.TargetNamespace, DataPlaneWorkloadsRole); err != nil {
			return nil, err
		}
	}
	token, err := c.ServiceAccountToken(ctx, opts.Namespace, sa)
	if err != nil {
		return nil, err
	}
	a := &Agent{Kubeconfig: filepath.Join(c.Dir, sa+"."+opts.Namespace+".kubeconfig")}
	if err := WriteKubeconfig(a.Kubeconfig, c.APIServerURL, c.ClusterCA.CertPEM(), nil, token); err != nil {
		return nil, err
	}
	args := append([]string{
		"--kubeconfig=" + a.Kubeconfig,
		"--namespace=" + opts.Namespace,
		"--core-instance=" + opts.CoreInstance,
	}, opts.Args...)
	if opts.TargetNamespace != "" {
		args = append(args, "--target-namespace="+opts.TargetNamespace)
	}
	name := "core-operator-" + opts.Namespace + "-" + opts.CoreInstance
	c.logf("starting %s", name)
	if a.Process, err = StartProcess(name, filepath.Join(c.Dir, "logs", name+".log"), binary, args...); err != nil {
		return nil, err
	}
	return a, nil
}

// HostPipelinePID is the fluent-bit process a host-mode agent records for the pipeline whose
// directory (STATE-DIR/NAMESPACE/NAME) is dir.
func HostPipelinePID(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return 0, err
	}
	var st struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, fmt.Errorf("decoding the state of %s: %w", dir, err)
	}
	return st.PID, nil
}

// HostPipelinePIDs lists the fluent-bit processes recorded in a host-mode agent's state
// directory (running or not).
func HostPipelinePIDs(stateDir string) []int {
	files, _ := filepath.Glob(filepath.Join(stateDir, "*", "*", "state.json"))
	var pids []int
	for _, f := range files {
		if pid, err := HostPipelinePID(filepath.Dir(f)); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// StopHostPipelines ends the fluent-bit processes a host-mode agent left running: they outlive
// their agent by design, but not a test run or a local plane.
func StopHostPipelines(stateDir string) {
	for _, pid := range HostPipelinePIDs(stateDir) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
