package integration

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

func TestAuthentication(t *testing.T) {
	ctx := context.Background()
	nobody := rest.CopyConfig(env.admin)
	dir := filepath.Dir(env.admin.CertFile)
	nobody.CertFile, nobody.KeyFile = filepath.Join(dir, "nobody.crt"), filepath.Join(dir, "nobody.key")

	tests := []struct {
		name   string
		cfg    *rest.Config
		path   string
		status int
	}{
		{"anonymous list", env.anonymous, "/apis/core.calyptia.com/v1/namespaces/default/pipelines", http.StatusUnauthorized},
		{"anonymous discovery", env.anonymous, "/apis", http.StatusUnauthorized},
		{"anonymous openapi", env.anonymous, "/openapi/v2", http.StatusUnauthorized},
		{"anonymous metrics", env.anonymous, "/metrics", http.StatusUnauthorized},
		{"anonymous liveness probe", env.anonymous, "/livez", http.StatusOK},
		{"anonymous readiness probe", env.anonymous, "/readyz", http.StatusOK},
		{"authenticated without rights", nobody, "/apis/core.calyptia.com/v1/namespaces/default/pipelines", http.StatusForbidden},
		{"admin list", env.admin, "/apis/core.calyptia.com/v1/namespaces/default/pipelines", http.StatusOK},
		{"admin metrics", env.admin, "/metrics", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := httpGet(ctx, tt.cfg, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status {
				t.Errorf("GET %s: %d, want %d: %s", tt.path, status, tt.status, body)
			}
		})
	}
}

func TestHealthChecksIncludePostgres(t *testing.T) {
	for _, path := range []string{"/readyz?verbose", "/healthz?verbose"} {
		status, body, err := httpGet(context.Background(), env.admin, path)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK || !strings.Contains(string(body), "[+]postgres ok") {
			t.Errorf("GET %s: %d\n%s\nwant 200 with a passing postgres check", path, status, body)
		}
	}
	_, body, err := httpGet(context.Background(), env.admin, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `apiserver_request_total{`) {
		t.Error("/metrics lacks apiserver_request_total")
	}
}

func TestPipelineSecretsEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	const value = "plaintext-must-not-reach-postgres-7f3a"
	if _, err := env.client.CoreV1().PipelineSecrets(ns).Create(ctx, pipelineSecret("at-rest", "password", value), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pipeline is not in the encryption config: its row must be readable,
	// which shows the query below finds the rows it should.
	p := newPipeline(ns, "at-rest", "ci")
	p.Labels = map[string]string{"marker": "pipeline-in-clear-7f3a"}
	createPipeline(t, p)

	got, err := env.client.CoreV1().PipelineSecrets(ns).Get(ctx, "at-rest", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data["password"]) != value {
		t.Errorf("API returned %q, want the stored value", got.Data["password"])
	}

	tests := []struct {
		resource   string
		wantPrefix string
		plaintext  string
		wantClear  bool
	}{
		{resource: "pipelinesecrets", wantPrefix: "k8s:enc:secretbox:v1:test:", plaintext: value},
		{resource: "pipelines", plaintext: "pipeline-in-clear-7f3a", wantClear: true},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			key := "/" + tt.resource + "/" + ns + "/at-rest"
			rows, err := env.pool.Query(ctx,
				`SELECT value FROM kv WHERE position($1::bytea IN key) > 0
				 UNION ALL
				 SELECT value FROM kv_log WHERE position($1::bytea IN key) > 0 AND value IS NOT NULL`, []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var stored []byte
				if err := rows.Scan(&stored); err != nil {
					t.Fatal(err)
				}
				n++
				if clear := bytes.Contains(stored, []byte(tt.plaintext)); clear != tt.wantClear {
					t.Errorf("stored value contains the plaintext: %v, want %v", clear, tt.wantClear)
				}
				if !bytes.HasPrefix(stored, []byte(tt.wantPrefix)) {
					t.Errorf("stored value starts %q, want prefix %q", stored[:min(len(stored), 40)], tt.wantPrefix)
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatalf("no rows found for key %s", key)
			}
		})
	}
}
