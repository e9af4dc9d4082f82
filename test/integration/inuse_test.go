package integration

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	calyptiav1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

// TestKubectlDeleteInUse deletes a pipeline secret and a resource profile
// that pipelines use: kubectl shows the 409 naming the pipelines, for dry runs
// and --all too, until the pipelines are gone.
func TestKubectlDeleteInUse(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	c := env.client.CoreV1()
	secret := pipelineSecret("es", "password", "s3cret")
	if _, err := c.PipelineSecrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	profile := &calyptiav1.ResourceProfile{ObjectMeta: metav1.ObjectMeta{Name: "custom"}}
	if _, err := c.ResourceProfiles(ns).Create(ctx, profile, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"other", "forward-to-elasticsearch"} {
		p := newPipeline(ns, name, "ci")
		p.Spec.ResourceProfile = "custom"
		p.Spec.Secrets = []string{"es"}
		// No format: the server infers it, and so must the check.
		p.Spec.ConfigFormat = ""
		p.Spec.Config = `pipeline:
  inputs:
    - name: dummy
  outputs:
    - name: http
      match: "*"
      host: elasticsearch.example.com
      http_passwd: "{{ secrets.password }}"
`
		createPipeline(t, p)
	}

	const (
		secretInUse  = `Error from server (Conflict): pipelinesecrets "es" cannot be deleted: referenced by pipelines forward-to-elasticsearch, other`
		profileInUse = `Error from server (Conflict): resourceprofiles "custom" cannot be deleted: referenced by pipelines forward-to-elasticsearch, other`
	)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{args: []string{"delete", "pipelinesecret", "es"}, want: secretInUse},
		{args: []string{"delete", "pipelinesecret", "es", "--dry-run=server"}, want: secretInUse},
		{args: []string{"delete", "pipelinesecrets", "--all"}, want: secretInUse},
		{args: []string{"delete", "resourceprofile", "custom"}, want: profileInUse},
		{args: []string{"delete", "resourceprofile", "custom", "--dry-run=server"}, want: profileInUse},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := kubectl(t, append(tc.args, "-n", ns)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("out %q, err %v; want %q", out, err, tc.want)
			}
		})
	}
	// What `kubectl delete --all` does not use, the namespace controller does.
	if err := c.PipelineSecrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("DeleteCollection of pipeline secrets: err = %v, want 409", err)
	}
	if _, err := c.PipelineSecrets(ns).Get(ctx, "es", metav1.GetOptions{}); err != nil {
		t.Fatalf("the secret in use is gone: %v", err)
	}

	if _, err := kubectl(t, "delete", "pipelines", "--all", "-n", ns); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"delete", "pipelinesecret", "es"}, {"delete", "resourceprofile", "custom"}} {
		if _, err := kubectl(t, append(args, "-n", ns)...); err != nil {
			t.Errorf("once the pipelines are gone: %v", err)
		}
	}
}
