package v1_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

func TestPipelineDefaults(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   v1.PipelineSpec
		want v1.PipelineSpec
	}{
		{
			name: "empty classic config",
			in:   v1.PipelineSpec{Config: "# comment\n\n[INPUT]\n  name tcp\n"},
			want: v1.PipelineSpec{Config: "# comment\n\n[INPUT]\n  name tcp\n", ConfigFormat: v1.ConfigFormatClassic,
				Kind: v1.PipelineKindDeployment, Replicas: ptr.To[int32](1), ResourceProfile: "best-effort-low-resource",
				DeploymentStrategy: v1.DeploymentStrategyRollingUpdate, ServiceType: "LoadBalancer"},
		},
		{
			name: "yaml config is inferred, daemonset gets no replicas",
			in:   v1.PipelineSpec{Config: "pipeline:\n  inputs: []\n", Kind: v1.PipelineKindDaemonSet},
			want: v1.PipelineSpec{Config: "pipeline:\n  inputs: []\n", ConfigFormat: v1.ConfigFormatYAML,
				Kind: v1.PipelineKindDaemonSet, ResourceProfile: "best-effort-low-resource",
				DeploymentStrategy: v1.DeploymentStrategyRollingUpdate, ServiceType: "LoadBalancer"},
		},
		{
			name: "explicit values are kept; zero replicas stay zero",
			in: v1.PipelineSpec{Config: "@INCLUDE x.conf", ConfigFormat: v1.ConfigFormatYAML, Kind: v1.PipelineKindStatefulSet, Replicas: ptr.To[int32](0),
				ResourceProfile: "custom", DeploymentStrategy: v1.DeploymentStrategyHotReload, ServiceType: "ClusterIP",
				Ports:       []v1.PipelinePort{{Port: 5000}},
				Autoscaling: &v1.PipelineAutoscaling{MaxReplicas: 3}},
			want: v1.PipelineSpec{Config: "@INCLUDE x.conf", ConfigFormat: v1.ConfigFormatYAML, Kind: v1.PipelineKindStatefulSet, Replicas: ptr.To[int32](0),
				ResourceProfile: "custom", DeploymentStrategy: v1.DeploymentStrategyHotReload, ServiceType: "ClusterIP",
				Ports:       []v1.PipelinePort{{Port: 5000, Protocol: "TCP", ServicePort: 5000}},
				Autoscaling: &v1.PipelineAutoscaling{MinReplicas: ptr.To[int32](1), MaxReplicas: 3},
				StatefulSet: &v1.PipelineStatefulSet{WhenDeleted: "Retain", WhenScaled: "Retain"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &v1.Pipeline{Spec: tt.in}
			scheme.Default(p)
			if !equality.Semantic.DeepEqual(p.Spec, tt.want) {
				t.Errorf("defaulted spec differs (-want +got):\n%s", diff.Diff(tt.want, p.Spec))
			}
		})
	}
}

func TestCoreInstanceDefaults(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ci := &v1.CoreInstance{}
	scheme.Default(ci)
	if ci.Spec.Mode != v1.CoreInstanceModeKubernetes {
		t.Errorf("mode = %q, want Kubernetes", ci.Spec.Mode)
	}
}

func TestInferConfigFormat(t *testing.T) {
	tests := []struct {
		config string
		want   v1.ConfigFormat
	}{
		{"", v1.ConfigFormatClassic},
		{"[SERVICE]\n", v1.ConfigFormatClassic},
		{"  # hi\n@SET a=b\n", v1.ConfigFormatClassic},
		{"service:\n  flush: 1\n", v1.ConfigFormatYAML},
		{"# comment\n---\npipeline: {}\n", v1.ConfigFormatYAML},
	}
	for _, tt := range tests {
		if got := v1.InferConfigFormat(tt.config); got != tt.want {
			t.Errorf("InferConfigFormat(%q) = %q, want %q", tt.config, got, tt.want)
		}
	}
}

func TestPipelineConfigFormat(t *testing.T) {
	tests := []struct {
		format v1.ConfigFormat
		config string
		want   v1.ConfigFormat
	}{
		{v1.ConfigFormatYAML, "[INPUT]\n", v1.ConfigFormatYAML},
		{v1.ConfigFormatClassic, "pipeline:\n", v1.ConfigFormatClassic},
		{"", "[SERVICE]\n", v1.ConfigFormatClassic},
		{"", "service:\n  flush: 1\n", v1.ConfigFormatYAML},
	}
	for _, tt := range tests {
		if got := v1.PipelineConfigFormat(&v1.PipelineSpec{ConfigFormat: tt.format, Config: tt.config}); got != tt.want {
			t.Errorf("PipelineConfigFormat(%q, %q) = %q, want %q", tt.format, tt.config, got, tt.want)
		}
	}
}

func TestBuiltinResourceProfiles(t *testing.T) {
	for _, name := range []string{v1.ResourceProfileBestEffortLowResource, v1.ResourceProfileHighPerformanceOptimalThroughput, v1.ResourceProfileHighPerformanceGuaranteedDelivery} {
		if !v1.IsBuiltinResourceProfile(name) {
			t.Errorf("%s is not built in", name)
		}
	}
	if v1.IsBuiltinResourceProfile("custom") {
		t.Error("custom is built in")
	}
}
