//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/calyptia/core-management-plane/charts"
	"github.com/calyptia/core-management-plane/internal/pgtest"
	calyptiav1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

const (
	chartRelease   = "calyptia-core"
	chartNamespace = "calyptia-chart"
	// Where the chart's in-cluster agent puts the pipelines' workloads.
	chartPipelines = "calyptia-chart-pipelines"
	// A namespace of users, for the RBAC checks.
	chartTeam = "calyptia-chart-team"
)

// The install: cloud-api with the local PostgreSQL (a StatefulSet with a claim), encryption,
// leader election and the generated certificate as by default, and the in-cluster agent.
// InfluxDB stays off: cloud-api runs on this machine below, where influxdb.<ns>.svc does not
// resolve (the render tests in charts/ cover it).
const chartValues = `
operator: {enabled: true, coreInstance: production, targetNamespace: ` + chartPipelines + `}
`

// The upgrade changes the Deployment, so a new revision is applied for real, and trusts an
// authenticating proxy in the UI, which adds a cluster-scoped role for uninstall to remove.
const chartUpgradeValues = chartValues + `
cloudApi: {replicas: 3, logLevel: 2}
core: {authProxy: {enabled: true, clientCASecret: sso-ca}}
`

// TestChart installs charts/calyptia-core with the Helm SDK, checks what it made, upgrades and
// uninstalls it, on a control plane of its own: the chart's APIService (v1.core.calyptia.com),
// ClusterRoles (calyptia-core:*) and ClusterRoleBindings have fixed names, the ones the suite's
// cluster already holds from artifacts/deploy for its own cloud-api. Helm would refuse objects
// it does not own, taking them over would break the other tests, and "uninstall leaves no
// cluster-scoped object behind" can only be checked on a cluster that had none before.
func TestChart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c := startChartCluster(t, ctx)
	cs, err := c.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	disco := memory.NewMemCacheClient(cs.Discovery())
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(disco)
	dyn, err := dynamic.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	before := clusterScopedObjects(t, ctx, cs, dyn)
	for _, ns := range []string{chartPipelines, chartTeam} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	ch, err := charts.Load(filepath.Join(repoRoot, charts.CoreChart))
	if err != nil {
		t.Fatal(err)
	}
	cfg := helmConfig(t, c)

	// Install.
	install := action.NewInstall(cfg)
	install.ReleaseName = chartRelease
	install.Namespace = chartNamespace
	install.CreateNamespace = true
	// Helm's own waiting is not used: the postgres pod never starts (nothing binds its claim
	// here), and the checks below wait for what they need.
	install.WaitStrategy = kube.HookOnlyStrategy
	install.Timeout = 5 * time.Minute
	r, err := install.RunWithContext(ctx, ch, chartValuesMap(t, chartValues))
	rel := helmRelease(t, r, err)
	objs, err := charts.ParseManifest(rel.Manifest)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("objects", func(t *testing.T) {
		// Every object of the release is in the cluster as rendered.
		for _, o := range objs {
			got := getObject(t, ctx, dyn, mapper, o.Unstructured)
			if got == nil {
				t.Errorf("%s %s/%s of the release is not in the cluster", o.GetKind(), o.GetNamespace(), o.GetName())
				continue
			}
			if got.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
				t.Errorf("%s %s/%s is not labelled as Helm's", o.GetKind(), o.GetNamespace(), o.GetName())
			}
		}
		// cloud-api and the agent run on the fake nodes, and the Service reaches cloud-api's pods.
		waitAvailable(t, ctx, cs, chartNamespace, "cloud-api", 2)
		waitAvailable(t, ctx, cs, chartNamespace, "core-operator", 1)
		waitAvailable(t, ctx, cs, chartNamespace, "core", 2)
		waitEndpoints(t, ctx, cs, chartNamespace, "cloud-api", 2)
		waitEndpoints(t, ctx, cs, chartNamespace, "core", 2)
		for name, port := range map[string]int32{"cloud-api": 443, "core": 3000, "postgres": 5432} {
			svc, err := cs.CoreV1().Services(chartNamespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("Service %s: %v", name, err)
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != port {
				t.Errorf("Service %s ports %v, want %d", name, svc.Spec.Ports, port)
			}
		}
		// The local PostgreSQL: a StatefulSet whose claim the StatefulSet controller made.
		sts, err := cs.AppsV1().StatefulSets(chartNamespace).Get(ctx, "postgres", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sts.Spec.PersistentVolumeClaimRetentionPolicy == nil || sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
			t.Errorf("postgres claim retention %+v, want Retain", sts.Spec.PersistentVolumeClaimRetentionPolicy)
		}
		waitFor(t, ctx, "the claim data-postgres-0", func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().PersistentVolumeClaims(chartNamespace).Get(ctx, "data-postgres-0", metav1.GetOptions{})
			return err == nil, ignoreNotFound(err)
		})
		if _, err := cs.PolicyV1().PodDisruptionBudgets(chartNamespace).Get(ctx, "cloud-api", metav1.GetOptions{}); err != nil {
			t.Errorf("PodDisruptionBudget cloud-api: %v", err)
		}
		// Pods run as the chart says: not as root, read-only root filesystem.
		pods, err := cs.CoreV1().Pods(chartNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name in (cloud-api, core, core-operator)"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 5 {
			t.Errorf("%d pods of cloud-api, core and core-operator, want 5", len(pods.Items))
		}
		for _, p := range pods.Items {
			sc := p.Spec.Containers[0].SecurityContext
			if p.Spec.SecurityContext.RunAsNonRoot == nil || !*p.Spec.SecurityContext.RunAsNonRoot || sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("pod %s: not non-root with a read-only root filesystem", p.Name)
			}
		}

		// The APIService points at the Service cloud-api and trusts the generated CA, whose
		// certificate is for cloud-api.<namespace>.svc, the name kube-apiserver verifies.
		tlsSecret := secret(t, ctx, cs, chartNamespace, "cloud-api-tls")
		if tlsSecret.Type != corev1.SecretTypeTLS {
			t.Errorf("cloud-api-tls type %s", tlsSecret.Type)
		}
		api := getAPIService(t, ctx, dyn)
		svcRef, _, _ := unstructured.NestedMap(api.Object, "spec", "service")
		port, _, _ := unstructured.NestedInt64(api.Object, "spec", "service", "port")
		if svcRef["namespace"] != chartNamespace || svcRef["name"] != "cloud-api" || port != 443 {
			t.Errorf("APIService service %v port %d, want %s/cloud-api:443", svcRef, port, chartNamespace)
		}
		caBundle := apiServiceCABundle(t, api)
		if !bytes.Equal(caBundle, tlsSecret.Data["ca.crt"]) {
			t.Error("APIService caBundle is not the generated CA of Secret cloud-api-tls")
		}
		verifyServing(t, tlsSecret, caBundle, "cloud-api."+chartNamespace+".svc")

		enc := secret(t, ctx, cs, chartNamespace, "cloud-api-encryption")
		if !bytes.Contains(enc.Data["encryption.yaml"], []byte("secretbox")) || enc.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("Secret cloud-api-encryption: no secretbox key, or not kept on uninstall:\n%v", enc.Annotations)
		}
		if len(secret(t, ctx, cs, chartNamespace, "postgres").Data["password"]) < 32 {
			t.Error("generated postgres password is short")
		}
	})

	t.Run("rbac", func(t *testing.T) {
		checkChartRBAC(t, ctx, c, cs)
	})

	// Upgrade: a changed Deployment, the same certificate, CA, key and password.
	kept := map[string]map[string][]byte{}
	for _, name := range []string{"cloud-api-tls", "cloud-api-encryption", "postgres", "core-tls"} {
		kept[name] = secret(t, ctx, cs, chartNamespace, name).Data
	}
	caBefore := apiServiceCABundle(t, getAPIService(t, ctx, dyn))
	if _, err := cs.CoreV1().Secrets(chartNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "sso-ca"},
		Data:       map[string][]byte{"ca.crt": kept["cloud-api-tls"]["ca.crt"]},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace = chartNamespace
	upgrade.WaitStrategy = kube.HookOnlyStrategy
	upgrade.Timeout = 5 * time.Minute
	r, err = upgrade.RunWithContext(ctx, chartRelease, ch, chartValuesMap(t, chartUpgradeValues))
	rel = helmRelease(t, r, err)
	t.Run("upgrade", func(t *testing.T) {
		if rel.Version != 2 {
			t.Errorf("release revision %d after upgrade, want 2", rel.Version)
		}
		for name, data := range kept {
			got := secret(t, ctx, cs, chartNamespace, name).Data
			for k, v := range data {
				if !bytes.Equal(got[k], v) {
					t.Errorf("upgrade changed %s of Secret %s: it must be kept", k, name)
				}
			}
		}
		if !bytes.Equal(apiServiceCABundle(t, getAPIService(t, ctx, dyn)), caBefore) {
			t.Error("upgrade changed the APIService's caBundle")
		}
		d, err := cs.AppsV1().Deployments(chartNamespace).Get(ctx, "cloud-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 3 || !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--v=2") {
			t.Errorf("upgrade not applied: replicas %d, args %v", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Args)
		}
		waitAvailable(t, ctx, cs, chartNamespace, "cloud-api", 3)
		// The UI now acts for the proxy's users, and for nobody else.
		coreUI := "system:serviceaccount:" + chartNamespace + ":core"
		for _, tc := range []struct {
			resource string
			allowed  bool
		}{
			{"users.core", true},
			{"groups.core", true},
			{"userextras.authentication.k8s.io", true},
			{"uids.authentication.k8s.io", true},
			{"serviceaccounts.core", false},
		} {
			res, sub := tc.resource, ""
			if tc.resource == "userextras.authentication.k8s.io" {
				sub = "scopes" // any extra's key
			}
			ok, err := sar(ctx, cs, coreUI, "", "impersonate", res, sub, "")
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.allowed {
				t.Errorf("core impersonate %s: allowed %v, want %v", tc.resource, ok, tc.allowed)
			}
		}
	})

	t.Run("serves", func(t *testing.T) {
		serveChartCloudAPI(t, ctx, c, cs, dyn)
	})

	// Uninstall: nothing cluster-wide stays; only what the chart marks to keep does.
	uninstall := action.NewUninstall(cfg)
	uninstall.WaitStrategy = kube.HookOnlyStrategy
	uninstall.Timeout = 5 * time.Minute
	if _, err := uninstall.Run(chartRelease); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	t.Run("uninstall", func(t *testing.T) {
		waitFor(t, ctx, "no cluster-scoped object left behind", func(ctx context.Context) (bool, error) {
			left := diff(clusterScopedObjects(t, ctx, cs, dyn), before)
			left = slices.DeleteFunc(left, func(s string) bool {
				// Namespaces stay (Helm never deletes one); the test made two of them.
				return strings.HasPrefix(s, "namespaces ")
			})
			if len(left) > 0 {
				return false, fmt.Errorf("left behind: %s", strings.Join(left, ", "))
			}
			return true, nil
		})
		// Every object of the release goes, but those the chart marks to keep.
		last, err := charts.ParseManifest(rel.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range last {
			keep := o.GetAnnotations()["helm.sh/resource-policy"] == "keep"
			got := getObject(t, ctx, dyn, mapper, o.Unstructured)
			if keep != (got != nil) {
				t.Errorf("%s %s/%s after uninstall: present %v, kept by the chart %v", o.GetKind(), o.GetNamespace(), o.GetName(), got != nil, keep)
			}
		}
		// Namespaced objects outside the release namespace go too.
		if _, err := cs.RbacV1().RoleBindings("kube-system").Get(ctx, "calyptia-cloud-api:extension-apiserver-authentication-reader", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("kube-system RoleBinding after uninstall: %v", err)
		}
		// The built-in roles no longer carry core.calyptia.com once aggregation catches up.
		waitFor(t, ctx, "view to lose core.calyptia.com", func(ctx context.Context) (bool, error) {
			ok, err := sar(ctx, cs, "viewer", chartTeam, "get", "pipelines", "", "")
			return !ok, err
		})
		// Kept: the encryption key and database password (the retained claim's data needs
		// them), and the claim itself.
		for _, name := range []string{"cloud-api-encryption", "postgres"} {
			got := secret(t, ctx, cs, chartNamespace, name).Data
			for k, v := range kept[name] {
				if !bytes.Equal(got[k], v) {
					t.Errorf("kept Secret %s: %s changed", name, k)
				}
			}
		}
		if _, err := cs.CoreV1().PersistentVolumeClaims(chartNamespace).Get(ctx, "data-postgres-0", metav1.GetOptions{}); err != nil {
			t.Errorf("the postgres claim is not retained: %v", err)
		}
		for _, name := range []string{"cloud-api-tls", "core-tls"} {
			if _, err := cs.CoreV1().Secrets(chartNamespace).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Secret %s after uninstall: %v", name, err)
			}
		}
	})
}

// startChartCluster starts a control plane for TestChart alone, stopped when the test ends.
func startChartCluster(t *testing.T, ctx context.Context) *framework.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "cmp-e2e-chart-")
	if err != nil {
		t.Fatal(err)
	}
	logf := func(format string, args ...any) { t.Logf("chart cluster: "+format, args...) }
	c, err := framework.StartCluster(ctx, framework.ClusterOptions{Dir: dir, BinDir: framework.BinDir(repoRoot), Logf: logf})
	if err != nil {
		dumpLogs(dir)
		t.Fatalf("starting the chart's control plane: %v", err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() || os.Getenv("E2E_KEEP") != "" {
			dumpLogs(dir)
			t.Logf("chart cluster state and logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return c
}

// helmConfig is Helm's action configuration for the cluster, releases stored as Secrets
// (Helm's default driver).
func helmConfig(t *testing.T, c *framework.Cluster) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &c.AdminKubeconfig
	ns := chartNamespace
	flags.Namespace = &ns
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := cfg.Init(flags, chartNamespace, "secret"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func chartValuesMap(t *testing.T, values string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(values), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// helmRelease is the release an install or upgrade returned.
func helmRelease(t *testing.T, r any, err error) *releasev1.Release {
	t.Helper()
	if err != nil {
		t.Fatalf("helm: %v", err)
	}
	rel, ok := r.(*releasev1.Release)
	if !ok {
		t.Fatalf("unexpected release type %T", r)
	}
	return rel
}

func getObject(t *testing.T, ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, o *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s: %v", gvk, err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	got, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitFor polls cond until it holds; the deadline is only there so a broken cluster fails
// the test instead of hanging it.
func waitFor(t *testing.T, ctx context.Context, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %v)", what, err, last)
	}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func waitAvailable(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	waitFor(t, ctx, fmt.Sprintf("Deployment %s with %d available replicas", name, replicas), func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if d.Status.AvailableReplicas != replicas || d.Status.UpdatedReplicas != replicas || d.Status.ObservedGeneration != d.Generation {
			return false, fmt.Errorf("status %+v", d.Status)
		}
		return true, nil
	})
}

func waitEndpoints(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, svc string, n int) {
	t.Helper()
	waitFor(t, ctx, fmt.Sprintf("%d ready endpoints of Service %s", n, svc), func(ctx context.Context) (bool, error) {
		eps, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, s := range eps.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				}
			}
		}
		return ready == n, fmt.Errorf("%d ready endpoints", ready)
	})
}

func secret(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Secret %s/%s: %v", ns, name, err)
	}
	return s
}

var apiServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

func getAPIService(t *testing.T, ctx context.Context, dyn dynamic.Interface) *unstructured.Unstructured {
	t.Helper()
	api, err := dyn.Resource(apiServiceResource).Get(ctx, framework.APIServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("APIService %s: %v", framework.APIServiceName, err)
	}
	return api
}

func apiServiceCABundle(t *testing.T, api *unstructured.Unstructured) []byte {
	t.Helper()
	s, _, _ := unstructured.NestedString(api.Object, "spec", "caBundle")
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		t.Fatalf("APIService caBundle %q: %v", s, err)
	}
	return b
}

// verifyServing checks that the Secret's certificate and key pair up and that the
// certificate verifies for dnsName against caBundle alone.
func verifyServing(t *testing.T, s *corev1.Secret, caBundle []byte, dnsName string) {
	t.Helper()
	pair, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"])
	if err != nil {
		t.Fatalf("Secret %s: %v", s.Name, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		t.Fatal("caBundle holds no certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: dnsName, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serving certificate does not verify for %s against the caBundle: %v", dnsName, err)
	}
}

// sar asks kube-apiserver whether user (a ServiceAccount when it starts with
// system:serviceaccount:) may verb resource[/subresource] (named name, when given) in ns.
// resource is a core.calyptia.com resource, or resource.group ("core" for the core group).
func sar(ctx context.Context, cs kubernetes.Interface, user, ns, verb, resource, subresource, name string) (bool, error) {
	var groups []string
	group := "core.calyptia.com"
	if i := strings.Index(resource, "."); i >= 0 {
		resource, group = resource[:i], resource[i+1:]
		if group == "core" {
			group = ""
		}
	}
	if sa, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		groups = append(groups, "system:serviceaccounts", "system:serviceaccounts:"+strings.SplitN(sa, ":", 2)[0])
	}
	r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user,
			Groups: append(groups, "system:authenticated"),
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: subresource, Name: name,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

// checkChartRBAC asks kube-apiserver's authoriser (SubjectAccessReview, what cloud-api asks
// on every request) what the chart's roles allow: admin/edit/view with the aggregated rules,
// the data-plane roles, and cloud-api's own.
func checkChartRBAC(t *testing.T, ctx context.Context, c *framework.Cluster, cs kubernetes.Interface) {
	bind := func(ns, name, role string, subject rbacSubject) {
		t.Helper()
		out, err := kubectlFor(c.AdminKubeconfig).Run(ctx, "create", "rolebinding", name, "-n", ns, "--clusterrole="+role, subject.flag())
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	bind(chartTeam, "viewer", "view", rbacSubject{user: "viewer"})
	bind(chartTeam, "editor", "edit", rbacSubject{user: "editor"})
	bind(chartTeam, "team-admin", "admin", rbacSubject{user: "team-admin"})
	bind(chartTeam, "agent", "calyptia-core:data-plane", rbacSubject{sa: chartTeam + ":agent"})
	// ClusterRole aggregation is asynchronous: wait for view to carry the chart's rules.
	waitFor(t, ctx, "view to include core.calyptia.com", func(ctx context.Context) (bool, error) {
		return sar(ctx, cs, "viewer", chartTeam, "get", "pipelines", "", "")
	})
	waitFor(t, ctx, "edit and admin to include core.calyptia.com", func(ctx context.Context) (bool, error) {
		e, err := sar(ctx, cs, "editor", chartTeam, "create", "pipelinesecrets", "", "")
		if err != nil {
			return false, err
		}
		a, err := sar(ctx, cs, "team-admin", chartTeam, "create", "pipelinesecrets", "", "")
		return e && a, err
	})

	operator := "system:serviceaccount:" + chartNamespace + ":core-operator"
	cloudAPI := "system:serviceaccount:" + chartNamespace + ":cloud-api"
	agent := "system:serviceaccount:" + chartTeam + ":agent"
	coreUI := "system:serviceaccount:" + chartNamespace + ":core"
	for _, tc := range []struct {
		user                           string
		ns, verb, resource, subres, nm string
		allowed                        bool
	}{
		// view: read everything but secrets, write nothing, only where bound.
		{"viewer", chartTeam, "list", "pipelines", "", "", true},
		{"viewer", chartTeam, "get", "coreinstances", "", "", true},
		{"viewer", chartTeam, "get", "resourceprofiles", "", "", true},
		{"viewer", chartTeam, "get", "pipelines", "metrics", "", true},
		{"viewer", chartTeam, "get", "pipelines", "tap", "", true},
		{"viewer", chartTeam, "get", "pipelinesecrets", "", "", false},
		{"viewer", chartTeam, "create", "pipelines", "", "", false},
		{"viewer", chartTeam, "update", "pipelines", "scale", "", false},
		{"viewer", chartPipelines, "list", "pipelines", "", "", false},
		// edit and admin: manage the objects, secrets included; status and metrics reports stay
		// with the data plane.
		{"editor", chartTeam, "create", "pipelinesecrets", "", "", true},
		{"editor", chartTeam, "delete", "pipelines", "", "", true},
		{"editor", chartTeam, "update", "pipelines", "scale", "", true},
		{"editor", chartTeam, "update", "pipelines", "status", "", false},
		{"editor", chartTeam, "create", "coreinstances", "metrics", "", false},
		{"editor", chartNamespace, "get", "pipelines", "", "", false},
		{"team-admin", chartTeam, "deletecollection", "pipelines", "", "", true},
		{"team-admin", chartTeam, "get", "pipelinesecrets", "", "", true},
		// The data-plane role: read its objects, report status and metrics, nothing else.
		{agent, chartTeam, "watch", "pipelines", "", "", true},
		{agent, chartTeam, "get", "pipelinesecrets", "", "", true},
		{agent, chartTeam, "update", "pipelines", "status", "", true},
		{agent, chartTeam, "patch", "coreinstances", "status", "", true},
		{agent, chartTeam, "create", "coreinstances", "metrics", "", true},
		{agent, chartTeam, "create", "events.core", "", "", true},
		{agent, chartTeam, "update", "pipelines", "", "", false},
		{agent, chartTeam, "create", "pipelines", "", "", false},
		{agent, chartTeam, "delete", "pipelines", "", "", false},
		{agent, chartPipelines, "get", "pipelines", "", "", false},
		// The chart's agent: its core instance's namespace (the release's) for the API, the
		// target namespace for workloads, and nowhere else.
		{operator, chartNamespace, "list", "pipelines", "", "", true},
		{operator, chartNamespace, "update", "pipelines", "status", "", true},
		{operator, chartPipelines, "create", "deployments.apps", "", "", true},
		{operator, chartPipelines, "create", "secrets.core", "", "", true},
		{operator, chartNamespace, "create", "deployments.apps", "", "", false},
		{operator, chartNamespace, "get", "secrets.core", "", "", false},
		{operator, chartTeam, "list", "pipelines", "", "", false},
		{operator, chartPipelines, "create", "pipelines", "", "", false},
		// The UI: its users' own credentials do everything; without an auth proxy it may do nothing.
		{coreUI, "", "impersonate", "users.core", "", "", false},
		{coreUI, chartTeam, "list", "pipelines", "", "", false},
		// cloud-api: delegated authentication and authorisation, the one ConfigMap with the
		// front-proxy CA, what admission reads, its Lease where it runs; no more.
		{cloudAPI, "", "create", "subjectaccessreviews.authorization.k8s.io", "", "", true},
		{cloudAPI, "", "create", "tokenreviews.authentication.k8s.io", "", "", true},
		{cloudAPI, "kube-system", "get", "configmaps.core", "", "extension-apiserver-authentication", true},
		{cloudAPI, "kube-system", "get", "configmaps.core", "", "kubeadm-config", false},
		{cloudAPI, "", "watch", "namespaces.core", "", "", true},
		{cloudAPI, "", "list", "validatingadmissionpolicies.admissionregistration.k8s.io", "", "", true},
		{cloudAPI, "", "watch", "flowschemas.flowcontrol.apiserver.k8s.io", "", "", true},
		{cloudAPI, chartNamespace, "create", "leases.coordination.k8s.io", "", "", true},
		{cloudAPI, chartNamespace, "update", "leases.coordination.k8s.io", "", "", true},
		{cloudAPI, "kube-system", "update", "leases.coordination.k8s.io", "", "", false},
		{cloudAPI, chartNamespace, "get", "secrets.core", "", "", false},
		{cloudAPI, chartTeam, "list", "pipelines", "", "", false},
	} {
		name := fmt.Sprintf("%s %s %s/%s %s in %q", tc.user, tc.verb, tc.resource, tc.subres, tc.nm, tc.ns)
		ok, err := sar(ctx, cs, tc.user, tc.ns, tc.verb, tc.resource, tc.subres, tc.nm)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ok != tc.allowed {
			t.Errorf("%s: allowed %v, want %v", name, ok, tc.allowed)
		}
	}
}

type rbacSubject struct{ user, sa string }

func (s rbacSubject) flag() string {
	if s.sa != "" {
		return "--serviceaccount=" + s.sa
	}
	return "--user=" + s.user
}

// serveChartCloudAPI runs the real cloud-api as the chart's Deployment describes it (its
// arguments, and its Secret volumes written to files where it mounts them), as the chart's
// ServiceAccount, and checks that kube-apiserver serves core.calyptia.com through the chart's
// APIService: its caBundle verifies the generated certificate, the chart's RBAC is enough for
// delegated authentication, authorisation, admission and leader election, and PipelineSecrets
// are stored encrypted with the chart's key. There is no cluster network here, so the Service
// cloud-api becomes an ExternalName for localhost (as for the suite's cloud-api) and the
// APIService's port the process's; uninstall removes both anyway.
func serveChartCloudAPI(t *testing.T, ctx context.Context, c *framework.Cluster, cs kubernetes.Interface, dyn dynamic.Interface) {
	d, err := cs.AppsV1().Deployments(chartNamespace).Get(ctx, "cloud-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(c.Dir, "chart-cloud-api")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	ctr := pod.Containers[0]
	var mounts []string // old=new pairs for strings.NewReplacer
	for _, vm := range ctr.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Volumes {
			if pod.Volumes[i].Name == vm.Name {
				vol = &pod.Volumes[i]
			}
		}
		if vol == nil || vol.Secret == nil {
			continue
		}
		s := secret(t, ctx, cs, chartNamespace, vol.Secret.SecretName)
		local := filepath.Join(dir, vm.Name)
		if err := os.MkdirAll(local, 0o700); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		for k := range s.Data {
			files[k] = k
		}
		if len(vol.Secret.Items) > 0 {
			files = map[string]string{}
			for _, it := range vol.Secret.Items {
				files[it.Key] = it.Path
			}
		}
		for k, p := range files {
			if err := os.WriteFile(filepath.Join(local, p), s.Data[k], 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mounts = append(mounts, "="+vm.MountPath+"/", "="+local+"/")
	}
	port, err := framework.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	token, err := c.ServiceAccountToken(ctx, chartNamespace, "cloud-api")
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := framework.WriteKubeconfig(kubeconfig, c.APIServerURL, c.ClusterCA.CertPEM(), nil, token); err != nil {
		t.Fatal(err)
	}
	dbURL, err := pgtest.CreateDatabase(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pgtest.DropDatabase(context.Background(), pgtest.ServerURL(), dbURL) })
	replace := strings.NewReplacer(mounts...)
	var args []string
	for _, a := range ctr.Args {
		if strings.HasPrefix(a, "--secure-port=") {
			continue
		}
		args = append(args, replace.Replace(a))
	}
	// In a pod these come from the pod: its address, its in-cluster credentials, and
	// DATABASE_URL for a database this machine cannot reach.
	args = append(args,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--postgres-url="+dbURL,
	)
	for _, a := range args {
		if strings.Contains(a, "/var/run/") {
			t.Fatalf("argument %s names a file of the pod that no Secret volume provides", a)
		}
	}
	bin, err := framework.BuildCloudAPI(ctx, repoRoot, filepath.Join(c.Dir, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := framework.StartProcess("chart-cloud-api", filepath.Join(c.Dir, "logs", "chart-cloud-api.log"), bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(15 * time.Second)

	// No cluster network: the Service becomes an ExternalName for this machine and the
	// APIService takes the process's port. Its caBundle and service name stay the chart's, and
	// the new Service keeps the release's labels and annotations, so uninstall removes it.
	old, err := cs.CoreV1().Services(chartNamespace).Get(ctx, "cloud-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Services(chartNamespace).Delete(ctx, "cloud-api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(chartNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "cloud-api", Namespace: chartNamespace, Labels: old.Labels, Annotations: old.Annotations},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := fmt.Sprintf(`{"spec":{"service":{"port":%d}}}`, port)
	if _, err := dyn.Resource(apiServiceResource).Patch(ctx, framework.APIServiceName, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "APIService "+framework.APIServiceName+" Available through the chart's caBundle", func(ctx context.Context) (bool, error) {
		select {
		case <-p.Exited():
			return false, fmt.Errorf("cloud-api exited: %v; log %s:\n%s", p.Err(), p.LogFile, tail(p.LogFile))
		default:
		}
		api, err := dyn.Resource(apiServiceResource).Get(ctx, framework.APIServiceName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(api.Object, "status", "conditions")
		for _, cond := range conds {
			m := cond.(map[string]any)
			if m["type"] == "Available" {
				if m["status"] == "True" {
					return true, nil
				}
				return false, fmt.Errorf("Available %v: %v", m["status"], m["message"])
			}
		}
		return false, errors.New("no Available condition")
	})

	client, err := versioned.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	const value = "chart-plaintext-must-not-reach-postgres"
	// Discovery and the first write may race the APIService becoming Available on every
	// kube-apiserver handler; retry until the write lands.
	waitFor(t, ctx, "a PipelineSecret written through kube-apiserver", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().PipelineSecrets(chartTeam).Create(ctx, &calyptiav1.PipelineSecret{
			ObjectMeta: metav1.ObjectMeta{Name: "chart-at-rest"},
			Data:       map[string][]byte{"password": []byte(value)},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return true, nil
		}
		return err == nil, err
	})
	got, err := client.CoreV1().PipelineSecrets(chartTeam).Get(ctx, "chart-at-rest", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data["password"]) != value {
		t.Errorf("read back %q", got.Data["password"])
	}
	// The chart's EncryptionConfiguration names its key key1.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored []byte
	if err := conn.QueryRow(ctx, `SELECT value FROM kv WHERE position($1::bytea IN key) > 0`, []byte("/pipelinesecrets/"+chartTeam+"/chart-at-rest")).Scan(&stored); err != nil {
		t.Fatalf("reading the stored PipelineSecret: %v", err)
	}
	if !bytes.HasPrefix(stored, []byte("k8s:enc:secretbox:v1:key1:")) || bytes.Contains(stored, []byte(value)) {
		t.Errorf("stored PipelineSecret starts %q: not encrypted with the chart's key", stored[:min(len(stored), 40)])
	}
	// cloud-api holds the Lease where the chart's Role lets it.
	waitFor(t, ctx, "cloud-api's Lease in "+chartNamespace, func(ctx context.Context) (bool, error) {
		l, err := cs.CoordinationV1().Leases(chartNamespace).Get(ctx, "cloud-api", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", nil
	})
}

func tail(file string) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// clusterScopedObjects names every cluster-scoped object kube-apiserver lists, as
// "resource.group name".
func clusterScopedObjects(t *testing.T, ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface) []string {
	t.Helper()
	lists, err := cs.Discovery().ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		t.Fatal(err)
	}
	var names []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.APIResources {
			if r.Namespaced || strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatalf("listing %s: %v", r.Name, err)
			}
			for _, it := range items.Items {
				res := r.Name
				if gv.Group != "" {
					res += "." + gv.Group
				}
				names = append(names, res+" "+it.GetName())
			}
		}
	}
	sort.Strings(names)
	return names
}

// diff is what after holds that before does not.
func diff(after, before []string) []string {
	var out []string
	for _, n := range after {
		if !slices.Contains(before, n) {
			out = append(out, n)
		}
	}
	return out
}
