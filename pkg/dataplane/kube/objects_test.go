package kube

import (
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
)

var target = Target{Namespace: "pipelines", CoreInstance: "prod", SourceNamespace: "team-a", Image: "fluent/fluent-bit:default", ReloaderImage: "core-operator:test"}

const config = `[INPUT]
    name       forward
    shared_key {{ secrets.key }}

[INPUT]
    name syslog
    mode udp
    port 514

[OUTPUT]
    name   null
    match  *
    format {{ files.fmt }}
`

var profile = &v1.ResourceProfileSpec{
	StorageVolumeSize: ptr.To(resource.MustParse("1Gi")),
	Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	},
}

func build(t *testing.T, mod func(p *v1.Pipeline), ci *v1.CoreInstance) (*Desired, *render.Pipeline) {
	t.Helper()
	p := &v1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "team-a", UID: "u1"},
		Spec: v1.PipelineSpec{
			CoreInstance: "prod", Config: config, ConfigFormat: v1.ConfigFormatClassic, Kind: v1.PipelineKindDeployment,
			Replicas: ptr.To[int32](3), Secrets: []string{"s"}, DeploymentStrategy: v1.DeploymentStrategyRollingUpdate,
			Files:       []v1.PipelineFile{{Name: "fmt", Content: "json"}},
			ServiceType: corev1.ServiceTypeClusterIP,
			Pod: v1.PipelinePod{
				Labels:       map[string]string{"team": "a", LabelPipeline: "spoofed"},
				NodeSelector: map[string]string{"pool": "logs"},
				Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			},
		},
	}
	if mod != nil {
		mod(p)
	}
	secrets := []*v1.PipelineSecret{{ObjectMeta: metav1.ObjectMeta{Name: "s", UID: "s1", ResourceVersion: "5"}, Data: map[string][]byte{"key": []byte("k3y-value")}}}
	r, err := render.Render(p, profile, secrets, render.Options{FilesDir: ConfigDir, StoragePath: StoragePath})
	if err != nil {
		t.Fatal(err)
	}
	return target.Build(p, ci, r, profile), r
}

func TestBuildDeployment(t *testing.T) {
	d, r := build(t, nil, &v1.CoreInstance{Spec: v1.CoreInstanceSpec{Image: "registry.example/fluent-bit:instance"}})
	if d.Deployment == nil || d.DaemonSet != nil || d.StatefulSet != nil {
		t.Fatalf("want exactly a Deployment: %+v", d)
	}
	dep := d.Deployment
	if dep.Namespace != "pipelines" || dep.Name != "edge" || *dep.Spec.Replicas != 3 {
		t.Errorf("deployment %s/%s with %d replicas", dep.Namespace, dep.Name, *dep.Spec.Replicas)
	}
	tmpl := dep.Spec.Template
	for k, v := range dep.Spec.Selector.MatchLabels {
		if tmpl.Labels[k] != v {
			t.Errorf("pod label %s=%q, selector wants %q", k, tmpl.Labels[k], v)
		}
	}
	if tmpl.Labels["team"] != "a" {
		t.Errorf("spec.pod.labels not on the pods: %v", tmpl.Labels)
	}
	if tmpl.Annotations[AnnotationConfigRevision] != r.ConfigRevision || tmpl.Annotations[AnnotationSecretsRevision] != r.SecretsRevision {
		t.Errorf("pod annotations %v lack the revisions", tmpl.Annotations)
	}
	c := tmpl.Spec.Containers[0]
	if c.Image != "registry.example/fluent-bit:instance" {
		t.Errorf("image %q, want the core instance's", c.Image)
	}
	if strings.Join(c.Args, " ") != "-c /fluent-bit/etc/pipeline/fluent-bit.conf" {
		t.Errorf("args %v", c.Args)
	}
	if !c.Resources.Limits.Memory().Equal(resource.MustParse("512Mi")) {
		t.Errorf("resources %v, want the profile's", c.Resources)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "edge-secrets" {
		t.Errorf("envFrom %+v, want the pipeline's Secret", c.EnvFrom)
	}
	if tmpl.Spec.NodeSelector["pool"] != "logs" || len(tmpl.Spec.Tolerations) != 1 {
		t.Errorf("scheduling fields not carried: %+v", tmpl.Spec)
	}
	// Port 514 needs root and NET_BIND_SERVICE.
	if tmpl.Spec.SecurityContext.RunAsNonRoot != nil || c.SecurityContext.Capabilities.Add[0] != "NET_BIND_SERVICE" {
		t.Errorf("privileged port: pod %+v, container %+v", tmpl.Spec.SecurityContext, c.SecurityContext)
	}
	if d.ConfigMap.Data["fluent-bit.conf"] != string(r.Config) || d.ConfigMap.Data["fmt"] != "json" {
		t.Errorf("ConfigMap data %v", d.ConfigMap.Data)
	}
	if strings.Contains(d.ConfigMap.Data["fluent-bit.conf"], "k3y-value") {
		t.Error("the ConfigMap holds a secret value")
	}
	if string(d.Secret.Data["CALYPTIA_SECRET_KEY"]) != "k3y-value" {
		t.Errorf("Secret data keys %v", d.Secret.Data)
	}
	var names []string
	for _, s := range d.Services {
		names = append(names, s.Name)
		if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Spec.Selector[LabelPipeline] != "edge" {
			t.Errorf("service %s: type %s selector %v", s.Name, s.Spec.Type, s.Spec.Selector)
		}
	}
	if got := strings.Join(names, ","); got != "edge-tcp-24224,edge-udp-514" {
		t.Errorf("services %s", got)
	}
	if d.HPA != nil {
		t.Error("an HPA without autoscaling")
	}
	for _, obj := range []metav1.Object{d.ConfigMap, d.Secret, dep, d.Services[0]} {
		if obj.GetLabels()[LabelCoreInstance] != "prod" || obj.GetLabels()[LabelNamespace] != "team-a" || obj.GetAnnotations()[AnnotationPipelineUID] != "u1" {
			t.Errorf("%s lacks owner labels: %v %v", obj.GetName(), obj.GetLabels(), obj.GetAnnotations())
		}
	}
}

func TestBuildHotReloadKeepsTheTemplate(t *testing.T) {
	hot := func(p *v1.Pipeline) { p.Spec.DeploymentStrategy = v1.DeploymentStrategyHotReload }
	a, _ := build(t, hot, nil)
	b, rb := build(t, func(p *v1.Pipeline) { hot(p); p.Spec.Config += "\n[OUTPUT]\n    name stdout\n    match *\n" }, nil)
	if d1, d2 := a.Deployment.Spec.Template.String(), b.Deployment.Spec.Template.String(); d1 != d2 {
		t.Errorf("a config edit changed the HotReload pod template:\n%s\n%s", d1, d2)
	}
	if a.ConfigMap.Data["fluent-bit.conf"] == b.ConfigMap.Data["fluent-bit.conf"] {
		t.Error("the ConfigMap did not change with the config")
	}
	cs := b.Deployment.Spec.Template.Spec.Containers
	if len(cs) != 2 || cs[1].Image != "core-operator:test" || cs[1].Args[0] != "reload" ||
		!strings.Contains(strings.Join(cs[1].Args, " "), "--fluent-bit-url=http://127.0.0.1:"+itoa(rb.HTTPPort)) {
		t.Errorf("reload sidecar: %+v", cs)
	}
	r1, _ := build(t, nil, nil)
	r2, _ := build(t, func(p *v1.Pipeline) { p.Spec.Config += "\n[OUTPUT]\n    name stdout\n    match *\n" }, nil)
	if r1.Deployment.Spec.Template.Annotations[AnnotationConfigRevision] == r2.Deployment.Spec.Template.Annotations[AnnotationConfigRevision] {
		t.Error("a RollingUpdate pipeline's config edit did not change its pod template")
	}
}

func TestBuildKinds(t *testing.T) {
	ds, _ := build(t, func(p *v1.Pipeline) {
		p.Spec.Kind, p.Spec.Replicas, p.Spec.DeploymentStrategy = v1.PipelineKindDaemonSet, nil, v1.DeploymentStrategyRecreate
	}, &v1.CoreInstance{Spec: v1.CoreInstanceSpec{SkipServiceCreation: true}})
	if ds.DaemonSet == nil || ds.DaemonSet.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.String() != "100%" {
		t.Fatalf("DaemonSet with Recreate: %+v", ds.DaemonSet)
	}
	if len(ds.Services) != 0 {
		t.Errorf("skipServiceCreation: %d Services", len(ds.Services))
	}
	hostLog := false
	for _, v := range ds.DaemonSet.Spec.Template.Spec.Volumes {
		hostLog = hostLog || (v.HostPath != nil && v.HostPath.Path == "/var/log")
	}
	if !hostLog {
		t.Error("DaemonSet pods do not mount the node's /var/log")
	}

	sts, _ := build(t, func(p *v1.Pipeline) {
		p.Spec.Kind = v1.PipelineKindStatefulSet
		p.Spec.StatefulSet = &v1.PipelineStatefulSet{StorageClassName: "fast", WhenDeleted: v1.DeletePersistentVolumeClaimRetentionPolicyType}
		p.Spec.Autoscaling = &v1.PipelineAutoscaling{MinReplicas: ptr.To[int32](2), MaxReplicas: 6, TargetCPUUtilizationPercentage: ptr.To[int32](70)}
	}, nil)
	s := sts.StatefulSet
	if s == nil || s.Spec.Replicas != nil {
		t.Fatalf("autoscaled StatefulSet must leave replicas to the HPA: %+v", s)
	}
	claim := s.Spec.VolumeClaimTemplates[0]
	if *claim.Spec.StorageClassName != "fast" || !claim.Spec.Resources.Requests.Storage().Equal(resource.MustParse("1Gi")) ||
		s.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		t.Errorf("claim template %+v, policy %+v", claim.Spec, s.Spec.PersistentVolumeClaimRetentionPolicy)
	}
	h := sts.HPA
	if h == nil || h.Spec.ScaleTargetRef.Kind != "StatefulSet" || h.Spec.MaxReplicas != 6 || *h.Spec.MinReplicas != 2 ||
		*h.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
		t.Errorf("HPA %+v", h)
	}
}

func TestChildNames(t *testing.T) {
	long := strings.Repeat("a", 60)
	tests := []struct{ base, suffix string }{{"edge", "tcp-24224"}, {long, "tcp-24224"}, {long + "b", "tcp-24224"}, {long, "udp-24224"}}
	seen := map[string]bool{}
	for _, tt := range tests {
		n := childName(tt.base, tt.suffix)
		if msgs := validation.IsDNS1035Label(n); len(msgs) > 0 {
			t.Errorf("childName(%q, %q) = %q: %v", tt.base, tt.suffix, n, msgs)
		}
		if !strings.HasSuffix(n, tt.suffix) || seen[n] {
			t.Errorf("childName(%q, %q) = %q: suffix lost or name taken", tt.base, tt.suffix, n)
		}
		seen[n] = true
	}
	if childName("edge", "config") != "edge-config" {
		t.Error("short names are not kept as they are")
	}
}

func TestSelectorString(t *testing.T) {
	if got := SelectorString(map[string]string{"b": "2", "a": "1"}); got != "a=1,b=2" {
		t.Errorf("SelectorString = %q", got)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
