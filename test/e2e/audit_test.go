//go:build e2e

package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// auditEvent is the part of an audit.k8s.io/v1 Event the test reads.
type auditEvent struct {
	Level string `json:"level"`
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	User  struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestObject json.RawMessage `json:"requestObject"`
}

// TestAuditLog checks that kube-apiserver's audit log records writes to
// core.calyptia.com with the real user, and never a pipeline secret's values.
func TestAuditLog(t *testing.T) {
	primaryCloudAPI(t)
	const ns = "e2e-audit"
	mustRun(t, admin, "create", "namespace", ns)
	mustRun(t, admin, "create", "rolebinding", "erin-edit", "-n", ns, "--clusterrole=edit", "--user=erin")
	erinConfig, _, err := cluster.NewUser("erin", "e2e:auditors")
	if err != nil {
		t.Fatal(err)
	}
	erin := kubectlFor(erinConfig)
	const secretValue = "audit-must-not-see-this-value"
	mustRunStdin(t, erin, strings.ReplaceAll(rbacPipeline, "NAME", "audited"), "create", "-n", ns, "-f", "-")
	mustRun(t, erin, "scale", "pipeline", "audited", "-n", ns, "--replicas=2")
	mustRunStdin(t, erin, `apiVersion: core.calyptia.com/v1
kind: PipelineSecret
metadata:
  name: audited
data:
  token: `+b64(secretValue)+"\n", "create", "-n", ns, "-f", "-")
	mustRun(t, erin, "delete", "pipeline", "audited", "-n", ns)

	events := readAudit(t, cluster.AuditLogFile)
	for _, tc := range []struct {
		verb, resource, subresource string
		code                        int
	}{
		{"create", "pipelines", "", 201},
		{"patch", "pipelines", "scale", 200},
		{"create", "pipelinesecrets", "", 201},
		{"delete", "pipelines", "", 200},
	} {
		t.Run(tc.verb+" "+tc.resource+"/"+tc.subresource, func(t *testing.T) {
			for _, e := range events {
				if e.ObjectRef == nil || e.Stage != "ResponseComplete" || e.Verb != tc.verb ||
					e.ObjectRef.APIGroup != "core.calyptia.com" || e.ObjectRef.Namespace != ns ||
					e.ObjectRef.Resource != tc.resource || e.ObjectRef.Subresource != tc.subresource ||
					// kube-apiserver does not decode what it proxies, so a create,
					// whose name is only in the body, is audited without one.
					(e.ObjectRef.Name != "audited" && !(tc.verb == "create" && e.ObjectRef.Name == "")) {
					continue
				}
				if e.User.Username != "erin" || !contains(e.User.Groups, "e2e:auditors") {
					t.Fatalf("audited user = %+v, want erin in e2e:auditors", e.User)
				}
				if e.ResponseStatus == nil || e.ResponseStatus.Code != tc.code {
					t.Fatalf("audited response = %+v, want %d", e.ResponseStatus, tc.code)
				}
				if e.Level != "Metadata" || len(e.RequestObject) != 0 {
					t.Fatalf("audited at level %s with request %s, want Metadata only", e.Level, e.RequestObject)
				}
				return
			}
			t.Fatalf("no ResponseComplete audit event for %s %s/%s %s/audited", tc.verb, tc.resource, tc.subresource, ns)
		})
	}
	raw, err := os.ReadFile(cluster.AuditLogFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), secretValue) || strings.Contains(string(raw), b64(secretValue)) {
		t.Fatal("the audit log contains a pipeline secret value")
	}
}

func readAudit(t *testing.T, path string) []auditEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit log line is not an event: %v", err)
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
