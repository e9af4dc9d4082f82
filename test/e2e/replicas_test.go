//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// TestTwoReplicasOneDatabase runs a second cloud-api on the same database
// beside the one the APIService points at: a write through either is seen by a
// watch through the other, the first reached through kube-apiserver.
func TestTwoReplicasOneDatabase(t *testing.T) {
	primaryCloudAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	second, err := startReplica(ctx, "cloud-api-1")
	if err != nil {
		t.Fatal(err)
	}
	const ns = "e2e-replicas"
	mustRun(t, admin, "create", "namespace", ns)

	// Through kube-apiserver: the APIService points at cloud-api-0 only.
	viaAPIServer, err := versioned.NewForConfig(cluster.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Straight to cloud-api-1, as kube-apiserver would call it.
	direct, err := versioned.NewForConfig(aggregation.DirectConfig(second, framework.FrontProxyIdentity{
		User: "kubernetes-admin", Groups: []string{"system:masters", "system:authenticated"},
	}))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name          string
		writer, watch versioned.Interface
	}{
		{"write through kube-apiserver, watch cloud-api-1", viaAPIServer, direct},
		{"write to cloud-api-1, watch through kube-apiserver", direct, viaAPIServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := tc.watch.CoreV1().Pipelines(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w, err := tc.watch.CoreV1().Pipelines(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			name := "replicated-" + map[bool]string{true: "a", false: "b"}[tc.writer == viaAPIServer]
			if _, err := tc.writer.CoreV1().Pipelines(ns).Create(ctx, newPipeline(name, 1), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			setReplicas(ctx, t, tc.writer, ns, name, 3)
			if err := tc.writer.CoreV1().Pipelines(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			expectWatch(t, w, name, watchStep{watch.Added, 1}, watchStep{watch.Modified, 3}, watchStep{watch.Deleted, 3})
		})
	}
}
