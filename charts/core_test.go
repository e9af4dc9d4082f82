package charts

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The web UI (core): on by default, HTTPS with a generated certificate kept like cloud-api's,
// Service core on 3000, no rights of its own unless an authenticating proxy is trusted.
func TestCore(t *testing.T) {
	ns := testNamespace
	r := render(t, ``)
	d := must(t, r, "Deployment", ns, "core")
	c := container(t, d, "core")
	if c["image"] != "ghcr.io/calyptia/core:0.1.0" {
		t.Errorf("core image %v", c["image"])
	}
	if got := str(t, d, "spec", "replicas"); got != "2" {
		t.Errorf("core replicas %s", got)
	}
	a := args(t, c)
	wantFlag(t, a, "listen", ":3000")
	wantFlag(t, a, "secure-cookie", "true")
	for _, f := range a {
		if strings.HasPrefix(f, "--auth-proxy") || strings.HasPrefix(f, "--kubeconfig") {
			t.Errorf("%s by default: core uses its in-cluster config and trusts no proxy", f)
		}
	}
	if got := str(t, d, "spec", "template", "spec", "serviceAccountName"); got != "core" {
		t.Errorf("core serviceAccountName %s", got)
	}
	must(t, r, "ServiceAccount", ns, "core")

	// Service core:3000 selects the UI's pods only.
	svc := must(t, r, "Service", ns, "core")
	ports := slice(t, svc.Object, "spec", "ports")
	if len(ports) != 1 || fmt.Sprint(ports[0].(map[string]any)["port"]) != "3000" || ports[0].(map[string]any)["targetPort"] != "https" {
		t.Errorf("Service core ports %v, want 3000 → https", ports)
	}
	podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	apiLabels, _, _ := unstructured.NestedStringMap(must(t, r, "Deployment", ns, "cloud-api").Object, "spec", "template", "metadata", "labels")
	if !selectorMatches(t, sel, podLabels) || selectorMatches(t, sel, apiLabels) {
		t.Errorf("Service core selector %v: must select the UI's pods only", sel)
	}
	pdb := must(t, r, "PodDisruptionBudget", ns, "core")
	pdbSel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
	if !selectorMatches(t, pdbSel, podLabels) {
		t.Error("PodDisruptionBudget core does not select the UI's pods")
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got, _, _ := unstructured.NestedString(c, probe, "httpGet", "path"); got != path {
			t.Errorf("core %s path %q, want %s", probe, got, path)
		}
		if got, _, _ := unstructured.NestedString(c, probe, "httpGet", "scheme"); got != "HTTPS" {
			t.Errorf("core %s scheme %q, want HTTPS", probe, got)
		}
	}

	// The generated certificate: for core.<namespace>.svc, signed by the CA beside it, files
	// served from where --tls-cert-file and --tls-private-key-file point.
	data := secretData(t, r, "core-tls")
	pair, err := tls.X509KeyPair(data["tls.crt"], data["tls.key"])
	if err != nil {
		t.Fatalf("core-tls: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data["ca.crt"]) {
		t.Fatal("core-tls has no ca.crt")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "core." + ns + ".svc", Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("core certificate for core.%s.svc: %v", ns, err)
	}
	for flagName, key := range map[string]string{"tls-cert-file": "tls.crt", "tls-private-key-file": "tls.key"} {
		f, ok := flag(a, flagName)
		if !ok {
			t.Fatalf("no --%s", flagName)
		}
		if s, k := mountedFile(t, d, c, f); s != "core-tls" || k != key {
			t.Errorf("--%s=%s is %s/%s, want core-tls/%s", flagName, f, s, k, key)
		}
	}
	if string(data["ca.crt"]) == string(secretData(t, r, "cloud-api-tls")["ca.crt"]) {
		t.Error("the UI and cloud-api share a generated CA")
	}
	wantSecretsRendered(t, r, d)
	// No rights without an auth proxy: the users' own credentials do everything.
	for _, o := range r.Objects {
		if o.GetKind() == "ClusterRoleBinding" || o.GetKind() == "RoleBinding" {
			for _, s := range slice(t, o.Object, "subjects") {
				if s.(map[string]any)["name"] == "core" {
					t.Errorf("%s %s binds the UI's ServiceAccount without an auth proxy", o.GetKind(), o.GetName())
				}
			}
		}
	}
	absent(t, r, "Ingress", ns, "core")
	ing := must(t, render(t, `core: {ingress: {enabled: true, hosts: [{host: ui.example.com}]}}`), "Ingress", ns, "core")
	for k, want := range map[string]string{"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS", "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"} {
		if got := ing.GetAnnotations()[k]; got != want {
			t.Errorf("core Ingress %s %q, want %q (core serves HTTPS; its pages hold watches)", k, got, want)
		}
	}
	if !strings.Contains(r.Notes, "svc/core 3000") {
		t.Errorf("NOTES do not say how to reach the UI:\n%s", r.Notes)
	}

	// Trusted authenticating proxy: its CA mounted, the headers passed, impersonation allowed.
	r = render(t, `core: {authProxy: {enabled: true, clientCASecret: sso-ca, clientCASecretKey: root.pem, allowedNames: [oauth2-proxy], usernameHeaders: [X-Forwarded-User]}}`)
	d = must(t, r, "Deployment", ns, "core")
	c = container(t, d, "core")
	a = args(t, c)
	f, ok := flag(a, "auth-proxy-client-ca-file")
	if !ok {
		t.Fatal("no --auth-proxy-client-ca-file with authProxy")
	}
	if s, k := mountedFile(t, d, c, f); s != "sso-ca" || k != "root.pem" {
		t.Errorf("--auth-proxy-client-ca-file is %s/%s, want sso-ca/root.pem", s, k)
	}
	wantFlag(t, a, "auth-proxy-allowed-names", "oauth2-proxy")
	wantFlag(t, a, "auth-proxy-username-headers", "X-Forwarded-User")
	wantFlag(t, a, "auth-proxy-group-headers", "X-Remote-Group")
	wantSecretsRendered(t, r, d, "sso-ca")
	role := must(t, r, "ClusterRole", "", "calyptia-core:ui-impersonator")
	// group → resources it may impersonate (make e2e asks kube-apiserver's RBAC itself).
	impersonable := map[string][]string{}
	for _, rule := range slice(t, role.Object, "rules") {
		rule := rule.(map[string]any)
		if verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs"); !slices.Equal(verbs, []string{"impersonate"}) {
			t.Errorf("ui-impersonator verbs %v, want impersonate only", verbs)
		}
		groups, _, _ := unstructured.NestedStringSlice(rule, "apiGroups")
		res, _, _ := unstructured.NestedStringSlice(rule, "resources")
		for _, g := range groups {
			impersonable[g] = append(impersonable[g], res...)
		}
	}
	if got := impersonable[""]; !slices.Equal(got, []string{"users", "groups"}) {
		t.Errorf("ui-impersonator impersonates %v of the core group, want users and groups (never ServiceAccounts)", got)
	}
	if got := impersonable["authentication.k8s.io"]; !slices.Equal(got, []string{"*"}) {
		t.Errorf("ui-impersonator impersonates %v of authentication.k8s.io, want every user extra and uid", got)
	}
	if len(impersonable) != 2 {
		t.Errorf("ui-impersonator groups %v", impersonable)
	}
	b := must(t, r, "ClusterRoleBinding", "", "calyptia-core:ui-impersonator")
	if s := slice(t, b.Object, "subjects")[0].(map[string]any); s["name"] != "core" || s["namespace"] != ns {
		t.Errorf("ui-impersonator bound to %v", s)
	}

	// Plain HTTP behind an Ingress that ends TLS.
	r = render(t, `core: {tls: {enabled: false}, secureCookie: false, ingress: {enabled: true, className: nginx, annotations: {}, hosts: [{host: ui.example.com}]}}`)
	d = must(t, r, "Deployment", ns, "core")
	c = container(t, d, "core")
	a = args(t, c)
	if _, ok := flag(a, "tls-cert-file"); ok {
		t.Error("--tls-cert-file with tls disabled")
	}
	wantFlag(t, a, "secure-cookie", "false")
	absent(t, r, "Secret", ns, "core-tls")
	if got, _, _ := unstructured.NestedString(c, "readinessProbe", "httpGet", "scheme"); got != "HTTP" {
		t.Errorf("readiness probe scheme %q over plain HTTP", got)
	}
	ing = must(t, r, "Ingress", ns, "core")
	rules := slice(t, ing.Object, "spec", "rules")
	if len(rules) != 1 || rules[0].(map[string]any)["host"] != "ui.example.com" {
		t.Fatalf("core Ingress rules %v", rules)
	}
	be, _, _ := unstructured.NestedMap(slice(t, rules[0].(map[string]any), "http", "paths")[0].(map[string]any), "backend", "service")
	if be["name"] != "core" || be["port"].(map[string]any)["name"] != "http" {
		t.Errorf("core Ingress backend %v, want Service core port http", be)
	}
	if p := slice(t, must(t, r, "Service", ns, "core").Object, "spec", "ports")[0].(map[string]any); p["name"] != "http" {
		t.Errorf("Service core port name %v, want http", p["name"])
	}

	// cert-manager issues the UI's certificate from cloud-api's issuer.
	r = render(t, `cloudApi: {certManager: {enabled: true, issuerRef: {name: corp, kind: ClusterIssuer}}}`)
	absent(t, r, "Secret", ns, "core-tls")
	cert := must(t, r, "Certificate", ns, "core-tls")
	if got := str(t, cert, "spec", "issuerRef", "name"); got != "corp" {
		t.Errorf("core Certificate issuer %s", got)
	}
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if !slices.Contains(dns, "core."+ns+".svc") {
		t.Errorf("core Certificate dnsNames %v", dns)
	}

	off := render(t, `core: {enabled: false}`)
	for _, kind := range []string{"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "Secret"} {
		absent(t, off, kind, ns, "core")
	}
	absent(t, off, "Secret", ns, "core-tls")

	for values, want := range map[string]string{
		`core: {authProxy: {enabled: true}}`:                                           "core.authProxy.clientCASecret",
		`core: {tls: {enabled: false}, authProxy: {enabled: true, clientCASecret: x}}`: "core.tls.enabled",
		`core: {ingress: {enabled: true}}`:                                             "core.ingress.hosts",
	} {
		if _, err := renderErr(t, values); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", values, err, want)
		}
	}
}
