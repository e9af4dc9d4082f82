package framework

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CoreServiceAccount is the web UI's own identity, in CloudAPINamespace.
const CoreServiceAccount = "core"

// Core is a running web UI (cmd/core).
type Core struct {
	*Process
	// URL is where the UI answers.
	URL string
	// Kubeconfig authenticates as the core ServiceAccount.
	Kubeconfig string
}

// CoreOptions configures StartCore.
type CoreOptions struct {
	// Listen is the address to serve on; empty: a free loopback port.
	Listen string
	// Scheme is "http" (default) or "https" (then Args name the serving certificate).
	Scheme string
	// Args are more flags.
	Args []string
}

// StartCore runs the web UI as its ServiceAccount. The ServiceAccount may only impersonate
// (what the auth proxy mode needs): users' calls carry their own tokens.
func (c *Cluster) StartCore(ctx context.Context, binary string, opts CoreOptions) (*Core, error) {
	scheme := opts.Scheme
	if scheme == "" {
		scheme = "http"
	}
	cs, err := c.AdminClient()
	if err != nil {
		return nil, err
	}
	if err := ignoreExists(cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: CloudAPINamespace}}, metav1.CreateOptions{})); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", CloudAPINamespace, err)
	}
	if err := ignoreExists(cs.CoreV1().ServiceAccounts(CloudAPINamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: CoreServiceAccount}}, metav1.CreateOptions{})); err != nil {
		return nil, fmt.Errorf("creating ServiceAccount %s: %w", CoreServiceAccount, err)
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "calyptia-core:ui-impersonator"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users", "groups"}, Verbs: []string{"impersonate"}}},
	}
	if err := ignoreExists(cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})); err != nil {
		return nil, fmt.Errorf("creating ClusterRole %s: %w", role.Name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: CoreServiceAccount, Namespace: CloudAPINamespace}},
	}
	if err := ignoreExists(cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})); err != nil {
		return nil, fmt.Errorf("creating ClusterRoleBinding %s: %w", binding.Name, err)
	}
	token, err := c.ServiceAccountToken(ctx, CloudAPINamespace, CoreServiceAccount)
	if err != nil {
		return nil, err
	}
	core := &Core{Kubeconfig: filepath.Join(c.Dir, "core.kubeconfig")}
	if err := WriteKubeconfig(core.Kubeconfig, c.APIServerURL, c.ClusterCA.CertPEM(), nil, token); err != nil {
		return nil, err
	}
	// Probes only; the serving certificate is the caller's to check.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var lastErr error
	for range startTries {
		addr := opts.Listen
		if addr == "" {
			port, err := FreePort()
			if err != nil {
				return nil, err
			}
			addr = "127.0.0.1:" + itoa(port)
		}
		core.URL = scheme + "://" + addr
		c.logf("starting core on %s", core.URL)
		core.Process, err = StartProcess("core", filepath.Join(c.Dir, "logs", "core.log"), binary,
			append([]string{"--listen=" + addr, "--kubeconfig=" + core.Kubeconfig}, opts.Args...)...)
		if err != nil {
			return nil, err
		}
		lastErr = waitFor(ctx, core.Process, func(ctx context.Context) error { return httpOK(ctx, client, core.URL+"/readyz") })
		if lastErr == nil {
			return core, nil
		}
		core.Stop(stopGrace)
		if opts.Listen != "" || !portInUse(core.LogFile) {
			break
		}
	}
	return nil, fmt.Errorf("core did not become ready: %w", lastErr)
}

// ServiceAccountUser makes a ServiceAccount in namespace bound to clusterRole (in its namespace,
// or cluster-wide when clusterWide) and returns a day-long token for it: a user who logs in to
// the UI with a bearer token.
func (c *Cluster) ServiceAccountUser(ctx context.Context, namespace, name, clusterRole string, clusterWide bool) (string, error) {
	cs, err := c.AdminClient()
	if err != nil {
		return "", err
	}
	if err := ignoreExists(cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})); err != nil {
		return "", fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	if err := ignoreExists(cs.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})); err != nil {
		return "", fmt.Errorf("creating ServiceAccount %s/%s: %w", namespace, name, err)
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: namespace}}
	ref := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: clusterRole}
	bindingName := strings.ReplaceAll(name+":"+clusterRole, "/", "-")
	if clusterWide {
		err = ignoreExists(cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: namespace + ":" + bindingName}, RoleRef: ref, Subjects: subject}, metav1.CreateOptions{}))
	} else {
		err = ignoreExists(cs.RbacV1().RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: bindingName}, RoleRef: ref, Subjects: subject}, metav1.CreateOptions{}))
	}
	if err != nil {
		return "", fmt.Errorf("binding %s to %s: %w", name, clusterRole, err)
	}
	return c.ServiceAccountToken(ctx, namespace, name)
}

func ignoreExists[T any](_ T, err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
