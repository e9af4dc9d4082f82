//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestControlPlane proves the harness itself: kube-apiserver answers kubectl,
// authenticates client certificates and service account tokens, and RBAC
// (with ClusterRole aggregation by kube-controller-manager) decides.
func TestControlPlane(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const ns = "e2e-control-plane"
	mustRun(t, admin, "create", "namespace", ns)
	viewerConfig, _, err := cluster.NewUser("carol", "e2e:viewers")
	if err != nil {
		t.Fatal(err)
	}
	strangerConfig, _, err := cluster.NewUser("dave")
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, admin, "create", "rolebinding", "viewers", "-n", ns, "--clusterrole=view", "--group=e2e:viewers")
	mustRun(t, admin, "create", "serviceaccount", "robot", "-n", ns)
	token := strings.TrimSpace(mustRun(t, admin, "create", "token", "robot", "-n", ns, "--duration=1h"))
	robotConfig, err := cluster.NewTokenKubeconfig("robot", token)
	if err != nil {
		t.Fatal(err)
	}
	viewer := kubectlFor(viewerConfig)
	stranger := kubectlFor(strangerConfig)
	robot := kubectlFor(robotConfig)

	t.Run("identities", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			k    kubectlRunner
			want string
		}{
			{"admin certificate", admin, "kubernetes-admin"},
			{"user certificate", viewer, "carol"},
			{"service account token", robot, "system:serviceaccount:" + ns + ":robot"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out := mustRun(t, tc.k, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
				if out != tc.want {
					t.Fatalf("whoami = %q, want %q", out, tc.want)
				}
			})
		}
	})

	t.Run("namespaces", func(t *testing.T) {
		out := mustRun(t, admin, "get", "namespaces", "-o", "name")
		for _, want := range []string{"namespace/default", "namespace/kube-system", "namespace/" + ns} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl get namespaces lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("rbac", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			k    kubectlRunner
			args []string
			want string
		}{
			{"admin may do anything", admin, []string{"*", "*", "-A"}, "yes"},
			{"viewer may list configmaps in its namespace", viewer, []string{"list", "configmaps", "-n", ns}, "yes"},
			{"viewer may not create configmaps", viewer, []string{"create", "configmaps", "-n", ns}, "no"},
			{"viewer may not read secrets", viewer, []string{"get", "secrets", "-n", ns}, "no"},
			{"viewer may not list elsewhere", viewer, []string{"list", "configmaps", "-n", "default"}, "no"},
			{"unbound user may not list", stranger, []string{"list", "configmaps", "-n", ns}, "no"},
			{"service account without bindings may not list", robot, []string{"list", "configmaps", "-n", ns}, "no"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// can-i exits 1 for "no"; its answer is on stdout either way.
				out, _ := tc.k.Run(ctx, append([]string{"auth", "can-i"}, tc.args...)...)
				if got := strings.TrimSpace(out); got != tc.want {
					t.Fatalf("kubectl auth can-i %s = %q, want %q", strings.Join(tc.args, " "), got, tc.want)
				}
			})
		}
		// The real request, not just the review: RBAC refuses it with 403.
		_, err := viewer.Run(ctx, "create", "configmap", "nope", "-n", ns)
		if err == nil || !strings.Contains(stderrOf(err), "forbidden") {
			t.Fatalf("viewer creating a configmap: err = %v, want forbidden", err)
		}
		mustRun(t, viewer, "get", "configmaps", "-n", ns)
	})
}
