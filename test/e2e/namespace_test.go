//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestNamespaceDeletion deletes a namespace holding core.calyptia.com objects:
// kube-controller-manager's namespace controller finds them through the
// aggregated discovery and deletes them from cloud-api before the namespace goes.
func TestNamespaceDeletion(t *testing.T) {
	primaryCloudAPI(t)
	const ns = "e2e-namespace-deletion"
	mustRun(t, admin, "create", "namespace", ns)
	mustRunStdin(t, admin, rbacFixtures, "apply", "-n", ns, "-f", "-")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := admin.Run(ctx, "delete", "namespace", ns, "--wait=true", "--timeout=170s"); err != nil {
		t.Fatal(err)
	}
	t.Logf("namespace deleted in %v", time.Since(start))

	for _, resource := range []string{"pipelines", "coreinstances", "pipelinesecrets"} {
		t.Run(resource, func(t *testing.T) {
			raw := mustRun(t, admin, "get", "--raw", "/apis/core.calyptia.com/v1/namespaces/"+ns+"/"+resource)
			var list struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal([]byte(raw), &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 0 {
				t.Fatalf("%d %s left in the deleted namespace", len(list.Items), resource)
			}
		})
	}
}
