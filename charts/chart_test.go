package charts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	"sigs.k8s.io/yaml"
)

const (
	testRelease   = "calyptia"
	testNamespace = "calyptia-core"
)

var (
	loadOnce sync.Once
	loaded   *chart.Chart
	loadErr  error
)

func coreChart(t *testing.T) *chart.Chart {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = Load("calyptia-core") })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

// render renders the chart with values given as YAML.
func render(t *testing.T, values string) *Rendered {
	t.Helper()
	r, err := renderErr(t, values)
	if err != nil {
		t.Fatalf("rendering with\n%s\n: %v", values, err)
	}
	checkEveryPod(t, r)
	return r
}

func renderErr(t *testing.T, values string) (*Rendered, error) {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(values), &v); err != nil {
		t.Fatal(err)
	}
	return Render(coreChart(t), testRelease, testNamespace, v)
}

func must(t *testing.T, r *Rendered, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	o := r.Find(kind, ns, name)
	if o == nil {
		var have []string
		for _, o := range r.Objects {
			have = append(have, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
		}
		t.Fatalf("no %s %s/%s among:\n%s", kind, ns, name, strings.Join(have, "\n"))
	}
	return o
}

func absent(t *testing.T, r *Rendered, kind, ns, name string) {
	t.Helper()
	if r.Find(kind, ns, name) != nil {
		t.Errorf("%s %s/%s rendered, want none", kind, ns, name)
	}
}

func str(t *testing.T, o *unstructured.Unstructured, path ...string) string {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s %s: no %s", o.GetKind(), o.GetName(), strings.Join(path, "."))
	}
	return fmt.Sprint(v)
}

func slice(t *testing.T, o map[string]any, path ...string) []any {
	t.Helper()
	v, _, err := unstructured.NestedSlice(o, path...)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(path, "."), err)
	}
	return v
}

// podSpec returns the pod template spec of a workload.
func podSpec(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	spec, ok, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
	if !ok {
		t.Fatalf("%s %s has no pod template", o.GetKind(), o.GetName())
	}
	return spec
}

func container(t *testing.T, o *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	for _, c := range slice(t, podSpec(t, o), "containers") {
		if c := c.(map[string]any); c["name"] == name {
			return c
		}
	}
	t.Fatalf("%s %s: no container %s", o.GetKind(), o.GetName(), name)
	return nil
}

func args(t *testing.T, c map[string]any) []string {
	t.Helper()
	var out []string
	for _, a := range slice(t, c, "args") {
		out = append(out, a.(string))
	}
	return out
}

// flag returns the value of --name= in args, and whether it is there.
func flag(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func wantFlag(t *testing.T, args []string, name, want string) {
	t.Helper()
	got, ok := flag(args, name)
	if !ok {
		t.Errorf("no --%s in %q", name, args)
	} else if got != want {
		t.Errorf("--%s=%s, want %s", name, got, want)
	}
}

// env returns a container's environment variable by name.
func env(t *testing.T, c map[string]any, name string) map[string]any {
	t.Helper()
	for _, e := range slice(t, c, "env") {
		if e := e.(map[string]any); e["name"] == name {
			return e
		}
	}
	return nil
}

func secretRef(t *testing.T, e map[string]any) (name, key string) {
	t.Helper()
	ref, ok, _ := unstructured.NestedStringMap(e, "valueFrom", "secretKeyRef")
	if !ok {
		t.Fatalf("env %v is not from a Secret", e["name"])
	}
	return ref["name"], ref["key"]
}

// secretData returns the decoded data of a rendered Secret.
func secretData(t *testing.T, r *Rendered, name string) map[string][]byte {
	t.Helper()
	s := must(t, r, "Secret", testNamespace, name)
	data, _, _ := unstructured.NestedStringMap(s.Object, "data")
	out := map[string][]byte{}
	for k, v := range data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("Secret %s key %s: %v", name, k, err)
		}
		out[k] = b
	}
	return out
}

// mountedFile resolves a file path in container c to the volume and key behind it: the mount
// whose path is the file's directory, and the item of a Secret volume whose path is the file.
func mountedFile(t *testing.T, o *unstructured.Unstructured, c map[string]any, file string) (secret, key string) {
	t.Helper()
	dir, base := filepath.Dir(file), filepath.Base(file)
	volume := ""
	for _, m := range slice(t, c, "volumeMounts") {
		if m := m.(map[string]any); m["mountPath"] == dir {
			volume = m["name"].(string)
		}
	}
	if volume == "" {
		t.Fatalf("%s: nothing mounted at %s", file, dir)
	}
	for _, v := range slice(t, podSpec(t, o), "volumes") {
		v := v.(map[string]any)
		if v["name"] != volume {
			continue
		}
		sec, ok := v["secret"].(map[string]any)
		if !ok {
			t.Fatalf("%s: volume %s is not a Secret", file, volume)
		}
		items, _ := sec["items"].([]any)
		if len(items) == 0 {
			return sec["secretName"].(string), base
		}
		for _, it := range items {
			if it := it.(map[string]any); it["path"] == base {
				return sec["secretName"].(string), it["key"].(string)
			}
		}
		t.Fatalf("%s: Secret volume %s has no item %s", file, volume, base)
	}
	t.Fatalf("%s: no volume %s", file, volume)
	return "", ""
}

// checkEveryPod holds for every workload of every combination: non-root, read-only root
// filesystem, no privilege escalation, no capabilities, resources, probes, and every Secret
// a pod uses either rendered or named in values (then absent from the render).
func checkEveryPod(t *testing.T, r *Rendered) {
	t.Helper()
	for _, o := range r.Objects {
		switch o.GetKind() {
		case "Deployment", "StatefulSet", "DaemonSet":
		default:
			continue
		}
		id := o.GetKind() + " " + o.GetName()
		spec := podSpec(t, o.Unstructured)
		if nonRoot, _, _ := unstructured.NestedBool(spec, "securityContext", "runAsNonRoot"); !nonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", id)
		}
		// sigs.k8s.io/yaml decodes numbers as float64: compare their text.
		if uid, ok, _ := unstructured.NestedFieldNoCopy(spec, "securityContext", "runAsUser"); !ok || fmt.Sprint(uid) == "0" {
			t.Errorf("%s: runs as uid 0 or unset", id)
		}
		for _, c := range slice(t, spec, "containers") {
			c := c.(map[string]any)
			cid := id + " container " + c["name"].(string)
			sc, _, _ := unstructured.NestedMap(c, "securityContext")
			if ro, _, _ := unstructured.NestedBool(sc, "readOnlyRootFilesystem"); !ro {
				t.Errorf("%s: root filesystem is writable", cid)
			}
			if pe, ok, _ := unstructured.NestedBool(sc, "allowPrivilegeEscalation"); !ok || pe {
				t.Errorf("%s: allowPrivilegeEscalation is not false", cid)
			}
			if drop, _, _ := unstructured.NestedStringSlice(sc, "capabilities", "drop"); !slices.Equal(drop, []string{"ALL"}) {
				t.Errorf("%s: capabilities.drop %v, want [ALL]", cid, drop)
			}
			if _, ok, _ := unstructured.NestedFieldNoCopy(c, "resources", "requests", "memory"); !ok {
				t.Errorf("%s: no memory request", cid)
			}
			if _, ok, _ := unstructured.NestedFieldNoCopy(c, "resources", "limits", "memory"); !ok {
				t.Errorf("%s: no memory limit", cid)
			}
			for _, p := range []string{"readinessProbe", "livenessProbe"} {
				if _, ok := c[p]; !ok {
					t.Errorf("%s: no %s", cid, p)
				}
			}
		}
	}
}

// secretsUsed lists the Secrets a workload's pods read (volumes and env).
func secretsUsed(t *testing.T, o *unstructured.Unstructured) []string {
	t.Helper()
	var names []string
	spec := podSpec(t, o)
	for _, v := range slice(t, spec, "volumes") {
		if n, ok, _ := unstructured.NestedString(v.(map[string]any), "secret", "secretName"); ok {
			names = append(names, n)
		}
	}
	for _, c := range slice(t, spec, "containers") {
		for _, e := range slice(t, c.(map[string]any), "env") {
			if n, ok, _ := unstructured.NestedString(e.(map[string]any), "valueFrom", "secretKeyRef", "name"); ok {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func wantSecretsRendered(t *testing.T, r *Rendered, o *unstructured.Unstructured, external ...string) {
	t.Helper()
	for _, n := range secretsUsed(t, o) {
		if slices.Contains(external, n) {
			absent(t, r, "Secret", testNamespace, n)
			continue
		}
		must(t, r, "Secret", testNamespace, n)
	}
}

func selectorMatches(t *testing.T, selector map[string]string, labels map[string]string) bool {
	t.Helper()
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestDefaults(t *testing.T) {
	r := render(t, ``)
	ns := testNamespace

	// cloud-api: the Deployment, its Service and PodDisruptionBudget select its pods.
	d := must(t, r, "Deployment", ns, "cloud-api")
	if got := str(t, d, "spec", "replicas"); got != "2" {
		t.Errorf("cloud-api replicas %s, want 2", got)
	}
	podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
	for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of", "app.kubernetes.io/version", "helm.sh/chart"} {
		if podLabels[k] == "" {
			t.Errorf("cloud-api pods have no label %s", k)
		}
	}
	svc := must(t, r, "Service", ns, "cloud-api")
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	if !selectorMatches(t, sel, podLabels) {
		t.Errorf("Service cloud-api selector %v does not select the pods %v", sel, podLabels)
	}
	ports := slice(t, svc.Object, "spec", "ports")
	if len(ports) != 1 || fmt.Sprint(ports[0].(map[string]any)["port"]) != "443" || ports[0].(map[string]any)["targetPort"] != "https" {
		t.Errorf("Service cloud-api ports %v, want 443 → https", ports)
	}
	c := container(t, d, "cloud-api")
	if p := slice(t, c, "ports"); len(p) != 1 || p[0].(map[string]any)["name"] != "https" {
		t.Errorf("cloud-api container ports %v, want one named https", p)
	}
	pdb := must(t, r, "PodDisruptionBudget", ns, "cloud-api")
	pdbSel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
	if !selectorMatches(t, pdbSel, podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods", pdbSel)
	}
	if got := str(t, pdb, "spec", "maxUnavailable"); got != "1" {
		t.Errorf("PodDisruptionBudget maxUnavailable %s, want 1", got)
	}
	for _, p := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
		if got, _, _ := unstructured.NestedString(c, p, "httpGet", "scheme"); got != "HTTPS" {
			t.Errorf("cloud-api %s scheme %q, want HTTPS", p, got)
		}
	}
	if got, _, _ := unstructured.NestedString(c, "readinessProbe", "httpGet", "path"); got != "/readyz" {
		t.Errorf("readiness probe path %q", got)
	}
	if got, _, _ := unstructured.NestedString(c, "livenessProbe", "httpGet", "path"); got != "/livez" {
		t.Errorf("liveness probe path %q", got)
	}
	if got := str(t, d, "spec", "template", "spec", "serviceAccountName"); got != "cloud-api" {
		t.Errorf("serviceAccountName %s", got)
	}
	must(t, r, "ServiceAccount", ns, "cloud-api")

	a := args(t, c)
	wantFlag(t, a, "leader-elect", "true")
	wantFlag(t, a, "leader-elect-resource-namespace", ns)
	wantFlag(t, a, "metrics-store", "postgres")
	for _, f := range []string{"influxdb-url", "influxdb-token-file"} {
		if _, ok := flag(a, f); ok {
			t.Errorf("--%s without InfluxDB", f)
		}
	}

	// Local PostgreSQL: a StatefulSet with a claim, reached through Service postgres with the
	// generated password, which is kept after uninstall (the claim is too).
	sts := must(t, r, "StatefulSet", ns, "postgres")
	pg := container(t, sts, "postgres")
	if img := pg["image"]; img != "docker.io/library/postgres:15" {
		t.Errorf("postgres image %v", img)
	}
	claims := slice(t, sts.Object, "spec", "volumeClaimTemplates")
	if len(claims) != 1 {
		t.Fatalf("postgres claims %v", claims)
	}
	if size, _, _ := unstructured.NestedString(claims[0].(map[string]any), "spec", "resources", "requests", "storage"); size != "8Gi" {
		t.Errorf("postgres claim size %q", size)
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(claims[0].(map[string]any), "spec", "storageClassName"); ok {
		t.Error("postgres claim names a storage class without global.storageClass")
	}
	if got := str(t, sts, "spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted"); got != "Retain" {
		t.Errorf("postgres claim retention on delete %s, want Retain", got)
	}
	if got := str(t, sts, "spec", "replicas"); got != "1" {
		t.Errorf("postgres replicas %s", got)
	}
	pgsvc := must(t, r, "Service", ns, "postgres")
	if got := fmt.Sprint(slice(t, pgsvc.Object, "spec", "ports")[0].(map[string]any)["port"]); got != "5432" {
		t.Errorf("postgres Service port %s", got)
	}
	stsLabels, _, _ := unstructured.NestedStringMap(sts.Object, "spec", "template", "metadata", "labels")
	pgsel, _, _ := unstructured.NestedStringMap(pgsvc.Object, "spec", "selector")
	if !selectorMatches(t, pgsel, stsLabels) || selectorMatches(t, pgsel, podLabels) {
		t.Errorf("Service postgres selector %v: must select postgres pods only", pgsel)
	}
	dbURL := env(t, c, "DATABASE_URL")
	if dbURL == nil || dbURL["value"] != "postgres://cloud_api@postgres."+ns+".svc:5432/calyptia_core?sslmode=disable" {
		t.Errorf("DATABASE_URL %v", dbURL)
	}
	pw := secretData(t, r, "postgres")["password"]
	if len(pw) < 32 {
		t.Errorf("generated postgres password %q is short", pw)
	}
	for _, e := range []map[string]any{env(t, c, "PGPASSWORD"), env(t, pg, "POSTGRES_PASSWORD")} {
		if n, k := secretRef(t, e); n != "postgres" || k != "password" {
			t.Errorf("%v from %s/%s, want postgres/password", e["name"], n, k)
		}
	}
	if got := must(t, r, "Secret", ns, "postgres").GetAnnotations()["helm.sh/resource-policy"]; got != "keep" {
		t.Errorf("postgres password Secret resource-policy %q, want keep", got)
	}
	// Only cloud-api may connect.
	np := must(t, r, "NetworkPolicy", ns, "postgres")
	npPods, _, _ := unstructured.NestedStringMap(np.Object, "spec", "podSelector", "matchLabels")
	if !selectorMatches(t, npPods, stsLabels) {
		t.Errorf("NetworkPolicy postgres applies to %v, not the postgres pods", npPods)
	}
	from := slice(t, np.Object, "spec", "ingress")[0].(map[string]any)["from"].([]any)
	fromSel, _, _ := unstructured.NestedStringMap(from[0].(map[string]any), "podSelector", "matchLabels")
	if len(from) != 1 || !selectorMatches(t, fromSel, podLabels) || selectorMatches(t, fromSel, stsLabels) {
		t.Errorf("NetworkPolicy postgres admits %v, want cloud-api only", from)
	}

	wantSecretsRendered(t, r, d)
	wantSecretsRendered(t, r, sts)
	for _, kind := range []string{"Ingress", "ServiceMonitor", "Certificate", "Issuer"} {
		if n := r.Kinds()[kind]; n != 0 {
			t.Errorf("%d %s rendered by default", n, kind)
		}
	}
	absent(t, r, "StatefulSet", ns, "influxdb")
	absent(t, r, "Deployment", ns, "core-operator")
	if !strings.Contains(r.Notes, "encrypted at rest") {
		t.Errorf("NOTES do not say secrets are encrypted:\n%s", r.Notes)
	}
}

// The generated serving certificate is for cloud-api.<namespace>.svc, signed by the CA in the
// APIService's caBundle, and generated anew on each install (never a fixed one).
func TestServingCertificate(t *testing.T) {
	r := render(t, ``)
	api := must(t, r, "APIService", "", "v1.core.calyptia.com")
	if got := str(t, api, "spec", "service", "name") + "." + str(t, api, "spec", "service", "namespace") + ":" + str(t, api, "spec", "service", "port"); got != "cloud-api."+testNamespace+":443" {
		t.Errorf("APIService service %s", got)
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(api.Object, "spec", "insecureSkipTLSVerify"); ok {
		t.Error("APIService sets insecureSkipTLSVerify")
	}
	if got := str(t, api, "spec", "group") + "/" + str(t, api, "spec", "version"); got != "core.calyptia.com/v1" {
		t.Errorf("APIService for %s", got)
	}
	caBundle, err := base64.StdEncoding.DecodeString(str(t, api, "spec", "caBundle"))
	if err != nil {
		t.Fatal(err)
	}
	data := secretData(t, r, "cloud-api-tls")
	if got := str(t, must(t, r, "Secret", testNamespace, "cloud-api-tls"), "type"); got != "kubernetes.io/tls" {
		t.Errorf("cloud-api-tls type %s", got)
	}
	if string(data["ca.crt"]) != string(caBundle) {
		t.Error("caBundle is not the Secret's ca.crt")
	}
	pair, err := tls.X509KeyPair(data["tls.crt"], data["tls.key"])
	if err != nil {
		t.Fatalf("tls.crt and tls.key: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		t.Fatal("caBundle holds no certificate")
	}
	// kube-apiserver dials <service>.<namespace>.svc.
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "cloud-api." + testNamespace + ".svc", Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serving certificate does not verify for cloud-api.%s.svc against caBundle: %v", testNamespace, err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "cloud-api.other.svc", Roots: roots}); err == nil {
		t.Error("serving certificate also verifies for another namespace")
	}
	// The Deployment serves the files of this Secret.
	d := must(t, r, "Deployment", testNamespace, "cloud-api")
	c := container(t, d, "cloud-api")
	for flagName, key := range map[string]string{"tls-cert-file": "tls.crt", "tls-private-key-file": "tls.key"} {
		f, ok := flag(args(t, c), flagName)
		if !ok {
			t.Fatalf("no --%s", flagName)
		}
		if s, k := mountedFile(t, d, c, f); s != "cloud-api-tls" || k != key {
			t.Errorf("--%s=%s is %s/%s, want cloud-api-tls/%s", flagName, f, s, k, key)
		}
	}

	again := secretData(t, render(t, ``), "cloud-api-tls")
	if string(again["ca.crt"]) == string(data["ca.crt"]) || string(again["tls.key"]) == string(data["tls.key"]) {
		t.Error("two installs got the same CA or key: they must be generated")
	}
}

// Encryption at rest is on by default with a generated secretbox key in an
// EncryptionConfiguration that cloud-api's own loader accepts.
func TestEncryptionAtRest(t *testing.T) {
	r := render(t, ``)
	d := must(t, r, "Deployment", testNamespace, "cloud-api")
	c := container(t, d, "cloud-api")
	f, ok := flag(args(t, c), "encryption-provider-config")
	if !ok {
		t.Fatal("no --encryption-provider-config by default")
	}
	secret, key := mountedFile(t, d, c, f)
	s := must(t, r, "Secret", testNamespace, secret)
	if got := s.GetAnnotations()["helm.sh/resource-policy"]; got != "keep" {
		t.Errorf("encryption Secret resource-policy %q, want keep: losing the key loses every stored secret", got)
	}
	config := secretData(t, r, secret)[key]
	file := filepath.Join(t.TempDir(), "encryption.yaml")
	if err := os.WriteFile(file, config, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enc, err := encryptionconfig.LoadEncryptionConfig(ctx, file, false, "test")
	if err != nil {
		t.Fatalf("cloud-api would refuse the EncryptionConfiguration: %v\n%s", err, config)
	}
	if _, ok := enc.Transformers[schema.GroupResource{Group: "core.calyptia.com", Resource: "pipelinesecrets"}]; !ok {
		t.Errorf("pipelinesecrets are not encrypted:\n%s", config)
	}
	var parsed struct {
		Resources []struct {
			Providers []struct {
				Secretbox *struct {
					Keys []struct{ Secret string }
				}
			}
		}
	}
	if err := yaml.Unmarshal(config, &parsed); err != nil {
		t.Fatal(err)
	}
	first := parsed.Resources[0].Providers[0].Secretbox
	if first == nil || len(first.Keys) != 1 {
		t.Fatalf("first provider is not secretbox with one key:\n%s", config)
	}
	k, err := base64.StdEncoding.DecodeString(first.Keys[0].Secret)
	if err != nil || len(k) != 32 {
		t.Errorf("secretbox key is not 32 bytes of base64: %v", err)
	}
	other := secretData(t, render(t, ``), secret)[key]
	if string(other) == string(config) {
		t.Error("two installs got the same key")
	}

	off := render(t, `cloudApi: {encryption: {enabled: false}}`)
	if _, ok := flag(args(t, container(t, must(t, off, "Deployment", testNamespace, "cloud-api"), "cloud-api")), "encryption-provider-config"); ok {
		t.Error("--encryption-provider-config with encryption disabled")
	}
	absent(t, off, "Secret", testNamespace, "cloud-api-encryption")
	if !strings.Contains(off.Notes, "stored unencrypted") {
		t.Errorf("NOTES do not warn about unencrypted secrets:\n%s", off.Notes)
	}

	own := render(t, `cloudApi: {encryption: {existingSecret: my-kms}}`)
	d = must(t, own, "Deployment", testNamespace, "cloud-api")
	c = container(t, d, "cloud-api")
	f, _ = flag(args(t, c), "encryption-provider-config")
	if s, k := mountedFile(t, d, c, f); s != "my-kms" || k != "encryption.yaml" {
		t.Errorf("existingSecret: config from %s/%s", s, k)
	}
	absent(t, own, "Secret", testNamespace, "cloud-api-encryption")
}

func TestExternalPostgres(t *testing.T) {
	url := "postgres://cloud_api:s3cr%40t@db.example.com:5432/core?sslmode=verify-full"
	r := render(t, `postgres: {enabled: false, external: {connectionString: "`+url+`"}}`)
	for _, kind := range []string{"StatefulSet", "Service", "NetworkPolicy"} {
		absent(t, r, kind, testNamespace, "postgres")
	}
	absent(t, r, "Secret", testNamespace, "postgres")
	c := container(t, must(t, r, "Deployment", testNamespace, "cloud-api"), "cloud-api")
	n, k := secretRef(t, env(t, c, "DATABASE_URL"))
	if n != "cloud-api-postgres" || k != "url" {
		t.Errorf("DATABASE_URL from %s/%s", n, k)
	}
	if got := string(secretData(t, r, "cloud-api-postgres")["url"]); got != url {
		t.Errorf("stored connection string %q, want %q", got, url)
	}
	if env(t, c, "PGPASSWORD") != nil {
		t.Error("PGPASSWORD with an external database")
	}

	r = render(t, `postgres: {enabled: false, external: {existingSecret: rds, existingSecretKey: dsn}}`)
	d := must(t, r, "Deployment", testNamespace, "cloud-api")
	n, k = secretRef(t, env(t, container(t, d, "cloud-api"), "DATABASE_URL"))
	if n != "rds" || k != "dsn" {
		t.Errorf("DATABASE_URL from %s/%s, want rds/dsn", n, k)
	}
	absent(t, r, "Secret", testNamespace, "cloud-api-postgres")
	wantSecretsRendered(t, r, d, "rds")

	for values, want := range map[string]string{
		`postgres: {enabled: false}`:                                   "postgres.external.connectionString",
		`postgres: {external: {connectionString: "postgres://x@y/z"}}`: "set postgres.enabled to false",
	} {
		if _, err := renderErr(t, values); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %q", values, err, want)
		}
	}
}

func TestLocalPostgresExistingPassword(t *testing.T) {
	r := render(t, `postgres: {auth: {existingSecret: pg-pass, username: core, database: plane}}`)
	absent(t, r, "Secret", testNamespace, "postgres")
	c := container(t, must(t, r, "Deployment", testNamespace, "cloud-api"), "cloud-api")
	if n, k := secretRef(t, env(t, c, "PGPASSWORD")); n != "pg-pass" || k != "password" {
		t.Errorf("PGPASSWORD from %s/%s", n, k)
	}
	if got := env(t, c, "DATABASE_URL")["value"]; got != "postgres://core@postgres."+testNamespace+".svc:5432/plane?sslmode=disable" {
		t.Errorf("DATABASE_URL %v", got)
	}
	pg := container(t, must(t, r, "StatefulSet", testNamespace, "postgres"), "postgres")
	if env(t, pg, "POSTGRES_USER")["value"] != "core" || env(t, pg, "POSTGRES_DB")["value"] != "plane" {
		t.Error("postgres container does not create the configured user and database")
	}
}

func TestInfluxDB(t *testing.T) {
	r := render(t, `influxdb: {enabled: true}`)
	ns := testNamespace
	sts := must(t, r, "StatefulSet", ns, "influxdb")
	ic := container(t, sts, "influxdb")
	if img := ic["image"]; img != "docker.io/library/influxdb:2.7" {
		t.Errorf("influxdb image %v", img)
	}
	for name, want := range map[string]string{"DOCKER_INFLUXDB_INIT_MODE": "setup", "DOCKER_INFLUXDB_INIT_ORG": "cloud-api", "DOCKER_INFLUXDB_INIT_BUCKET": "cloud-api"} {
		if e := env(t, ic, name); e == nil || e["value"] != want {
			t.Errorf("influxdb %s = %v, want %s", name, e, want)
		}
	}
	tokSecret, tokKey := secretRef(t, env(t, ic, "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"))
	svc := must(t, r, "Service", ns, "influxdb")
	if got := fmt.Sprint(slice(t, svc.Object, "spec", "ports")[0].(map[string]any)["port"]); got != "8086" {
		t.Errorf("influxdb Service port %s", got)
	}
	must(t, r, "NetworkPolicy", ns, "influxdb")

	d := must(t, r, "Deployment", ns, "cloud-api")
	c := container(t, d, "cloud-api")
	a := args(t, c)
	wantFlag(t, a, "metrics-store", "influxdb")
	wantFlag(t, a, "influxdb-url", "http://influxdb."+ns+".svc:8086")
	wantFlag(t, a, "influxdb-org", "cloud-api")
	wantFlag(t, a, "influxdb-bucket", "cloud-api")
	f, _ := flag(a, "influxdb-token-file")
	// cloud-api reads the very token InfluxDB was set up with.
	if s, k := mountedFile(t, d, c, f); s != tokSecret || k != tokKey {
		t.Errorf("--influxdb-token-file is %s/%s, InfluxDB's token is %s/%s", s, k, tokSecret, tokKey)
	}
	tok := secretData(t, r, tokSecret)[tokKey]
	if len(tok) < 32 || string(tok) == "cloud-api" {
		t.Errorf("generated token %q is weak", tok)
	}
	wantSecretsRendered(t, r, d)
	wantSecretsRendered(t, r, sts)
	if claims := slice(t, sts.Object, "spec", "volumeClaimTemplates"); len(claims) != 1 {
		t.Errorf("influxdb claims %v", claims)
	}

	r = render(t, `influxdb: {external: {url: "https://influx.example.com", tokenSecret: influx-token, tokenSecretKey: tok}}`)
	absent(t, r, "StatefulSet", ns, "influxdb")
	absent(t, r, "Service", ns, "influxdb")
	d = must(t, r, "Deployment", ns, "cloud-api")
	c = container(t, d, "cloud-api")
	a = args(t, c)
	wantFlag(t, a, "metrics-store", "influxdb")
	wantFlag(t, a, "influxdb-url", "https://influx.example.com")
	f, _ = flag(a, "influxdb-token-file")
	if s, k := mountedFile(t, d, c, f); s != "influx-token" || k != "tok" {
		t.Errorf("external token file from %s/%s", s, k)
	}
	wantSecretsRendered(t, r, d, "influx-token")

	if _, err := renderErr(t, `influxdb: {external: {url: "https://influx.example.com"}}`); err == nil || !strings.Contains(err.Error(), "tokenSecret") {
		t.Errorf("external InfluxDB without a token: %v", err)
	}
}

func TestCertManager(t *testing.T) {
	r := render(t, `cloudApi: {certManager: {enabled: true}}`)
	ns := testNamespace
	absent(t, r, "Secret", ns, "cloud-api-tls")
	api := must(t, r, "APIService", "", "v1.core.calyptia.com")
	if got := api.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != ns+"/cloud-api-tls" {
		t.Errorf("inject-ca-from %q", got)
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(api.Object, "spec", "caBundle"); ok {
		t.Error("caBundle set although cert-manager injects it")
	}
	cert := must(t, r, "Certificate", ns, "cloud-api-tls")
	if got := str(t, cert, "spec", "secretName"); got != "cloud-api-tls" {
		t.Errorf("Certificate secretName %s", got)
	}
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if !slices.Contains(dns, "cloud-api."+ns+".svc") {
		t.Errorf("Certificate dnsNames %v lack cloud-api.%s.svc", dns, ns)
	}
	if got := str(t, cert, "spec", "issuerRef", "name"); got != "cloud-api-ca" {
		t.Errorf("issuer %s", got)
	}
	// The chain the chart makes: self-signed → CA Certificate → CA Issuer.
	if str(t, must(t, r, "Certificate", ns, "cloud-api-ca"), "spec", "isCA") != "true" {
		t.Error("cloud-api-ca is not a CA")
	}
	if str(t, must(t, r, "Issuer", ns, "cloud-api-ca"), "spec", "ca", "secretName") != "cloud-api-ca" {
		t.Error("Issuer cloud-api-ca does not sign with the CA Certificate's Secret")
	}
	must(t, r, "Issuer", ns, "cloud-api-selfsigned")
	wantSecretsRendered(t, r, must(t, r, "Deployment", ns, "cloud-api"), "cloud-api-tls")

	r = render(t, `cloudApi: {certManager: {enabled: true, issuerRef: {name: corp, kind: ClusterIssuer}}}`)
	if got := str(t, must(t, r, "Certificate", ns, "cloud-api-tls"), "spec", "issuerRef", "kind"); got != "ClusterIssuer" {
		t.Errorf("issuerRef kind %s", got)
	}
	if n := r.Kinds()["Issuer"]; n != 0 {
		t.Errorf("%d Issuers with an issuer of the user's", n)
	}
	absent(t, r, "Certificate", ns, "cloud-api-ca")

	// A certificate of the user's own: the chart generates none and takes the given caBundle.
	bundle := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}))
	r = render(t, `cloudApi: {tls: {existingSecret: corp-tls, caBundle: `+bundle+`}}`)
	absent(t, r, "Secret", ns, "cloud-api-tls")
	if got := str(t, must(t, r, "APIService", "", "v1.core.calyptia.com"), "spec", "caBundle"); got != bundle {
		t.Errorf("caBundle %s, want the given one", got)
	}
	wantSecretsRendered(t, r, must(t, r, "Deployment", ns, "cloud-api"), "corp-tls")
}

func TestIngress(t *testing.T) {
	r := render(t, `ingress: {enabled: true, className: nginx, hosts: [{host: core.example.com}], tls: [{secretName: core-tls, hosts: [core.example.com]}]}`)
	ing := must(t, r, "Ingress", testNamespace, "cloud-api")
	if got := str(t, ing, "spec", "ingressClassName"); got != "nginx" {
		t.Errorf("ingressClassName %s", got)
	}
	rules := slice(t, ing.Object, "spec", "rules")
	if len(rules) != 1 || rules[0].(map[string]any)["host"] != "core.example.com" {
		t.Fatalf("rules %v", rules)
	}
	paths := slice(t, rules[0].(map[string]any), "http", "paths")
	be, _, _ := unstructured.NestedMap(paths[0].(map[string]any), "backend", "service")
	if be["name"] != "cloud-api" || be["port"].(map[string]any)["name"] != "https" {
		t.Errorf("backend %v, want the cloud-api Service's https port", be)
	}
	if paths[0].(map[string]any)["path"] != "/" {
		t.Errorf("default path %v", paths[0])
	}
	if got := ing.GetAnnotations()["nginx.ingress.kubernetes.io/backend-protocol"]; got != "HTTPS" {
		t.Errorf("backend protocol %q: cloud-api serves HTTPS only", got)
	}
	if tlsList := slice(t, ing.Object, "spec", "tls"); len(tlsList) != 1 {
		t.Errorf("tls %v", tlsList)
	}
	if _, err := renderErr(t, `ingress: {enabled: true}`); err == nil || !strings.Contains(err.Error(), "ingress.hosts") {
		t.Errorf("ingress without hosts: %v", err)
	}
}

func TestOperator(t *testing.T) {
	r := render(t, `operator: {enabled: true, coreInstance: production, namespace: team-a, targetNamespace: pipelines}`)
	ns := testNamespace
	must(t, r, "ServiceAccount", ns, "core-operator")
	d := must(t, r, "Deployment", ns, "core-operator")
	if got := str(t, d, "spec", "replicas"); got != "1" {
		t.Errorf("agent replicas %s: it has no leader election", got)
	}
	if got := str(t, d, "spec", "strategy", "type"); got != "Recreate" {
		t.Errorf("agent strategy %s, want Recreate (never two agents at once)", got)
	}
	if got := str(t, d, "spec", "template", "spec", "serviceAccountName"); got != "core-operator" {
		t.Errorf("agent serviceAccountName %s", got)
	}
	c := container(t, d, "core-operator")
	a := args(t, c)
	wantFlag(t, a, "core-instance", "production")
	wantFlag(t, a, "namespace", "team-a")
	wantFlag(t, a, "target-namespace", "pipelines")
	wantFlag(t, a, "reloader-image", c["image"].(string))
	if c["image"] != "ghcr.io/calyptia/core-operator:0.1.0" {
		t.Errorf("agent image %v", c["image"])
	}
	// Bound to exactly the data-plane roles, each in its own namespace.
	for bns, role := range map[string]string{"team-a": "calyptia-core:data-plane", "pipelines": "calyptia-core:data-plane-workloads"} {
		var found bool
		for _, o := range r.Objects {
			if o.GetKind() != "RoleBinding" || o.GetNamespace() != bns {
				continue
			}
			found = true
			if got := str(t, o.Unstructured, "roleRef", "name"); got != role {
				t.Errorf("RoleBinding %s/%s binds %s, want %s", bns, o.GetName(), got, role)
			}
			subj := slice(t, o.Object, "subjects")
			if len(subj) != 1 || subj[0].(map[string]any)["name"] != "core-operator" || subj[0].(map[string]any)["namespace"] != ns {
				t.Errorf("RoleBinding %s/%s subjects %v", bns, o.GetName(), subj)
			}
		}
		if !found {
			t.Errorf("no RoleBinding in %s for %s", bns, role)
		}
	}
	for _, o := range r.Objects {
		if o.GetKind() == "ClusterRoleBinding" {
			for _, s := range slice(t, o.Object, "subjects") {
				if s.(map[string]any)["name"] == "core-operator" {
					t.Errorf("ClusterRoleBinding %s gives the agent cluster-wide rights", o.GetName())
				}
			}
		}
	}

	// Defaults: the core instance in the release namespace, workloads there too.
	r = render(t, `operator: {enabled: true, coreInstance: edge}`)
	a = args(t, container(t, must(t, r, "Deployment", ns, "core-operator"), "core-operator"))
	wantFlag(t, a, "namespace", ns)
	wantFlag(t, a, "target-namespace", ns)

	if _, err := renderErr(t, `operator: {enabled: true}`); err == nil || !strings.Contains(err.Error(), "operator.coreInstance") {
		t.Errorf("operator without a core instance: %v", err)
	}
}

func TestGlobal(t *testing.T) {
	r := render(t, `
global: {imageRegistry: mirror.example.com, imagePullSecrets: [regcred], storageClass: fast}
influxdb: {enabled: true}
operator: {enabled: true, coreInstance: production}
cloudApi: {image: {digest: "sha256:`+strings.Repeat("a", 64)+`"}}
`)
	workloads := 0
	for _, o := range r.Objects {
		if o.GetKind() != "Deployment" && o.GetKind() != "StatefulSet" {
			continue
		}
		workloads++
		spec := podSpec(t, o.Unstructured)
		if ps := slice(t, spec, "imagePullSecrets"); len(ps) != 1 || ps[0].(map[string]any)["name"] != "regcred" {
			t.Errorf("%s %s imagePullSecrets %v", o.GetKind(), o.GetName(), ps)
		}
		for _, c := range slice(t, spec, "containers") {
			if img := c.(map[string]any)["image"].(string); !strings.HasPrefix(img, "mirror.example.com/") {
				t.Errorf("%s %s image %s ignores global.imageRegistry", o.GetKind(), o.GetName(), img)
			}
		}
		for _, claim := range slice(t, o.Object, "spec", "volumeClaimTemplates") {
			if sc, _, _ := unstructured.NestedString(claim.(map[string]any), "spec", "storageClassName"); sc != "fast" {
				t.Errorf("%s %s claim storage class %q", o.GetKind(), o.GetName(), sc)
			}
		}
	}
	if workloads != 5 {
		t.Errorf("%d workloads, want cloud-api, core, core-operator, postgres and influxdb", workloads)
	}
	if img := container(t, must(t, r, "Deployment", testNamespace, "cloud-api"), "cloud-api")["image"]; img != "mirror.example.com/calyptia/cloud-api@sha256:"+strings.Repeat("a", 64) {
		t.Errorf("digest-pinned image %v", img)
	}

	r = render(t, `global: {storageClass: fast}
postgres: {persistence: {storageClass: "-"}}`)
	claim := slice(t, must(t, r, "StatefulSet", testNamespace, "postgres").Object, "spec", "volumeClaimTemplates")[0].(map[string]any)
	if sc, ok, _ := unstructured.NestedString(claim, "spec", "storageClassName"); !ok || sc != "" {
		t.Errorf(`storageClass "-": storageClassName %q (set %v), want ""`, sc, ok)
	}
}

func TestMonitoring(t *testing.T) {
	r := render(t, `monitoring: {serviceMonitor: {enabled: true, labels: {release: prom}}, prometheusServiceAccount: {name: prometheus-k8s, namespace: monitoring}}`)
	sm := must(t, r, "ServiceMonitor", testNamespace, "cloud-api")
	if sm.GetLabels()["release"] != "prom" {
		t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
	}
	ep := slice(t, sm.Object, "spec", "endpoints")[0].(map[string]any)
	if ep["port"] != "https" || ep["path"] != "/metrics" || ep["scheme"] != "https" {
		t.Errorf("endpoint %v", ep)
	}
	svc := must(t, r, "Service", testNamespace, "cloud-api")
	if slice(t, svc.Object, "spec", "ports")[0].(map[string]any)["name"] != "https" {
		t.Error("the ServiceMonitor's port name is not the Service's")
	}
	smSel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if !selectorMatches(t, smSel, svc.GetLabels()) {
		t.Errorf("ServiceMonitor selector %v does not select Service cloud-api %v", smSel, svc.GetLabels())
	}
	if n, _, _ := unstructured.NestedString(ep, "tlsConfig", "ca", "secret", "name"); n != "cloud-api-tls" {
		t.Errorf("tlsConfig CA from %q", n)
	}
	if n, _, _ := unstructured.NestedString(ep, "tlsConfig", "serverName"); n != "cloud-api."+testNamespace+".svc" {
		t.Errorf("tlsConfig serverName %q", n)
	}
	role := must(t, r, "ClusterRole", "", "calyptia-core:metrics-reader")
	rule := slice(t, role.Object, "rules")[0].(map[string]any)
	if fmt.Sprint(rule["nonResourceURLs"]) != "[/metrics]" || fmt.Sprint(rule["verbs"]) != "[get]" {
		t.Errorf("metrics-reader rule %v", rule)
	}
	b := must(t, r, "ClusterRoleBinding", "", "calyptia-core:metrics-reader")
	if s := slice(t, b.Object, "subjects")[0].(map[string]any); s["name"] != "prometheus-k8s" || s["namespace"] != "monitoring" {
		t.Errorf("metrics-reader bound to %v", s)
	}
}

func TestRBAC(t *testing.T) {
	r := render(t, ``)
	view := must(t, r, "ClusterRole", "", "calyptia-core:aggregate-to-view")
	if view.GetLabels()["rbac.authorization.k8s.io/aggregate-to-view"] != "true" {
		t.Error("aggregate-to-view is not aggregated to view")
	}
	for _, rule := range slice(t, view.Object, "rules") {
		res, _, _ := unstructured.NestedStringSlice(rule.(map[string]any), "resources")
		if slices.Contains(res, "pipelinesecrets") {
			t.Error("view may read pipeline secrets")
		}
	}
	edit := must(t, r, "ClusterRole", "", "calyptia-core:aggregate-to-edit")
	for _, l := range []string{"rbac.authorization.k8s.io/aggregate-to-edit", "rbac.authorization.k8s.io/aggregate-to-admin"} {
		if edit.GetLabels()[l] != "true" {
			t.Errorf("aggregate-to-edit lacks %s", l)
		}
	}
	must(t, r, "ClusterRole", "", "calyptia-core:data-plane")
	must(t, r, "ClusterRole", "", "calyptia-core:data-plane-workloads")
	for name, role := range map[string]string{"calyptia-cloud-api:system:auth-delegator": "system:auth-delegator", "calyptia-cloud-api": "calyptia-cloud-api"} {
		b := must(t, r, "ClusterRoleBinding", "", name)
		if got := str(t, b, "roleRef", "name"); got != role {
			t.Errorf("%s binds %s", name, got)
		}
		if s := slice(t, b.Object, "subjects")[0].(map[string]any); s["name"] != "cloud-api" || s["namespace"] != testNamespace {
			t.Errorf("%s subject %v", name, s)
		}
	}
	must(t, r, "RoleBinding", "kube-system", "calyptia-cloud-api:extension-apiserver-authentication-reader")
	// Leases only where cloud-api runs, matching --leader-elect-resource-namespace.
	must(t, r, "Role", testNamespace, "calyptia-cloud-api")
	must(t, r, "RoleBinding", testNamespace, "calyptia-cloud-api")
}

// values.schema.json refuses what the templates would silently ignore.
func TestValuesSchema(t *testing.T) {
	for _, values := range []string{
		`cloudApi: {replica: 3}`,
		`postgres: {enable: false}`,
		`influxdb: {enabled: "yes"}`,
		`operator: {coreInstance: "Not_A_Name"}`,
		`cloudApi: {image: {pullPolicy: Sometimes}}`,
		`unknownSection: {}`,
	} {
		if _, err := renderErr(t, values); err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("%s: error %v, want a schema error", values, err)
		}
	}
}

// Each combination passes helm lint (the SDK's lint package: chart metadata, templates,
// values against the schema, YAML of every rendered object).
func TestLint(t *testing.T) {
	for _, values := range []string{
		``,
		`postgres: {enabled: false, external: {connectionString: "postgres://a@b/c"}}`,
		`influxdb: {enabled: true}`,
		`cloudApi: {certManager: {enabled: true}}`,
		`ingress: {enabled: true, hosts: [{host: a.example.com}]}`,
		`operator: {enabled: true, coreInstance: production}`,
		`monitoring: {serviceMonitor: {enabled: true}}`,
		`core: {authProxy: {enabled: true, clientCASecret: proxy-ca}, ingress: {enabled: true, hosts: [{host: ui.example.com}]}}`,
		`core: {tls: {enabled: false}, secureCookie: false}`,
	} {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(values), &v); err != nil {
			t.Fatal(err)
		}
		res := lint.RunAll("calyptia-core", v, testNamespace)
		for _, m := range res.Messages {
			// INFO is advice (e.g. "icon is recommended"); anything above it fails.
			if m.Severity > support.InfoSev {
				t.Errorf("lint with %q: %s", values, m)
			}
		}
		if res.HighestSeverity > support.InfoSev {
			t.Errorf("lint with %q: highest severity %d", values, res.HighestSeverity)
		}
	}
}

// artifacts/deploy is the chart's output: a change to either without `make manifests` fails.
func TestDeployManifestsAreCurrent(t *testing.T) {
	files, err := DeployManifests("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", DeployDir)
	committed, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range committed {
		if _, ok := files[filepath.Base(f)]; !ok {
			t.Errorf("%s is not rendered from the chart: run `make manifests`", f)
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%v: run `make manifests`", err)
			continue
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from the chart's rendering: run `make manifests`", filepath.Join(DeployDir, name))
		}
	}
	// The rendering needs no generated secret, so it is the same every time: nothing random
	// can be committed.
	again, err := DeployManifests("..")
	if err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if string(files[name]) != string(again[name]) {
			t.Errorf("%s renders differently each time", name)
		}
	}
	all := strings.Join(func() []string {
		var s []string
		for _, b := range files {
			s = append(s, string(b))
		}
		return s
	}(), "\n")
	for _, banned := range []string{"managed-by: Helm", "helm.sh/chart", "BEGIN CERTIFICATE", "secretbox"} {
		if strings.Contains(all, banned) {
			t.Errorf("artifacts/deploy contains %q", banned)
		}
	}
}
