package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

const classicConfig = `[SERVICE]
    flush        1
    http_server  on

[INPUT]
    name   forward
    port   24224

[INPUT]
    name   http

[OUTPUT]
    name   stdout
    match  *
`

const yamlConfig = `pipeline:
  inputs:
    - name: tcp
  outputs:
    - name: stdout
      match: "*"
`

func validPipeline() *core.Pipeline {
	return &core.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: "logs", Namespace: "default", ResourceVersion: "1"},
		Spec: core.PipelineSpec{
			CoreInstance:       "edge",
			Config:             classicConfig,
			ConfigFormat:       core.ConfigFormatClassic,
			Kind:               core.PipelineKindDeployment,
			Replicas:           ptr.To[int32](1),
			ResourceProfile:    core.DefaultResourceProfile,
			DeploymentStrategy: core.DeploymentStrategyRollingUpdate,
			ServiceType:        corev1.ServiceTypeLoadBalancer,
		},
	}
}

// errorStrings renders errors the way the API server's 422 body lists them.
func errorStrings(errs field.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// checkErrors asserts that errs has exactly one error per wanted substring, in order; nil wants
// no error at all.
func checkErrors(t *testing.T, errs field.ErrorList, want []string) {
	t.Helper()
	got := errorStrings(errs)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n  %s", len(got), len(want), strings.Join(got, "\n  "))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("error %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

func TestValidatePipeline(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *core.Pipeline)
		want   []string
	}{
		{name: "valid classic", mutate: func(*core.Pipeline) {}},
		{name: "valid yaml", mutate: func(p *core.Pipeline) {
			p.Spec.Config, p.Spec.ConfigFormat = yamlConfig, core.ConfigFormatYAML
		}},
		{name: "zero replicas is allowed", mutate: func(p *core.Pipeline) { p.Spec.Replicas = ptr.To[int32](0) }},
		{name: "valid daemonset without replicas", mutate: func(p *core.Pipeline) {
			p.Spec.Kind, p.Spec.Replicas = core.PipelineKindDaemonSet, nil
		}},
		{name: "bad name", mutate: func(p *core.Pipeline) { p.Name = "1-Logs" },
			want: []string{"metadata.name: Invalid value: \"1-Logs\""}},
		{name: "missing core instance", mutate: func(p *core.Pipeline) { p.Spec.CoreInstance = "" },
			want: []string{"spec.coreInstance: Required value"}},
		{name: "bad core instance name", mutate: func(p *core.Pipeline) { p.Spec.CoreInstance = "Edge_1" },
			want: []string{"spec.coreInstance: Invalid value: \"Edge_1\""}},
		{name: "negative replicas", mutate: func(p *core.Pipeline) { p.Spec.Replicas = ptr.To[int32](-1) },
			want: []string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
		{name: "replicas on daemonset", mutate: func(p *core.Pipeline) { p.Spec.Kind = core.PipelineKindDaemonSet },
			want: []string{"spec.replicas: Forbidden: DaemonSet pipelines run one pod per node"}},
		{name: "unknown kind", mutate: func(p *core.Pipeline) { p.Spec.Kind = "Job" },
			want: []string{`spec.kind: Unsupported value: "Job": supported values: "Deployment", "DaemonSet", "StatefulSet"`}},
		{name: "unknown strategy", mutate: func(p *core.Pipeline) { p.Spec.DeploymentStrategy = "BlueGreen" },
			want: []string{`spec.deploymentStrategy: Unsupported value: "BlueGreen"`}},
		{name: "empty config", mutate: func(p *core.Pipeline) { p.Spec.Config = "\n" },
			want: []string{"spec.config: Required value"}},
		{name: "unknown output plugin with its line", mutate: func(p *core.Pipeline) {
			p.Spec.Config = strings.Replace(classicConfig, "name   stdout", "name   s4", 1)
		}, want: []string{`spec.config: Invalid value: line 13: output "s4": unknown plugin`}},
		{name: "unknown property with its line", mutate: func(p *core.Pipeline) {
			p.Spec.Config = strings.Replace(classicConfig, "port   24224", "prot   24224", 1)
		}, want: []string{`spec.config: Invalid value: line 7: input "forward": property "prot"`}},
		{name: "yaml syntax error with its line", mutate: func(p *core.Pipeline) {
			p.Spec.Config, p.Spec.ConfigFormat = "pipeline:\n  inputs:\n    - name: tcp\n   bad: [\n", core.ConfigFormatYAML
		}, want: []string{"spec.config: Invalid value: line "}},
		{name: "no output", mutate: func(p *core.Pipeline) {
			p.Spec.Config = "[INPUT]\n    name tcp\n"
		}, want: []string{"spec.config: Invalid value: output: a pipeline needs at least one output"}},
		{name: "unknown config format", mutate: func(p *core.Pipeline) { p.Spec.ConfigFormat = "json" },
			want: []string{`spec.configFormat: Unsupported value: "json"`}},
		{name: "undefined file reference", mutate: func(p *core.Pipeline) {
			p.Spec.Config = strings.Replace(classicConfig, "name   http", "name   http\n    tag    {{ files.tagname }}", 1)
		}, want: []string{`spec.config: Invalid value: line 11: undefined file "tagname"`}},
		{name: "defined file reference", mutate: func(p *core.Pipeline) {
			p.Spec.Config = strings.Replace(classicConfig, "name   http", "name   http\n    tag    {{ files.tagname }}", 1)
			p.Spec.Files = []core.PipelineFile{{Name: "tagname", Content: "x"}}
		}},
		{name: "secret references are accepted before the secret exists", mutate: func(p *core.Pipeline) {
			p.Spec.Config = strings.Replace(classicConfig, "name   http", "name   http\n    tag    {{ secrets.tag }}", 1)
			p.Spec.Secrets = []string{"not-created-yet"}
		}},
		{name: "bad file names", mutate: func(p *core.Pipeline) {
			p.Spec.Files = []core.PipelineFile{{Name: "a-b"}, {Name: "ok"}, {Name: "ok"}}
		}, want: []string{`spec.files[0].name: Invalid value: "a-b"`, `spec.files[2].name: Duplicate value: "ok"`}},
		{name: "two plugins on one port", mutate: func(p *core.Pipeline) {
			p.Spec.Config = strings.Replace(classicConfig, "name   http", "name   http\n    port   24224", 1)
		}, want: []string{`spec.config: Invalid value: line 11: input "http": property "port": port 24224/TCP is already used by input "forward" at line 7`}},
		{name: "same port number on TCP and UDP is fine", mutate: func(p *core.Pipeline) {
			p.Spec.Config = strings.Replace(classicConfig, "name   http", "name   udp\n    port   24224", 1)
		}},
		{name: "spec port overriding a derived port", mutate: func(p *core.Pipeline) {
			p.Spec.Ports = []core.PipelinePort{{Port: 24224, Protocol: corev1.ProtocolTCP, ServicePort: 80}}
		}},
		{name: "spec port whose service port collides with a derived port", mutate: func(p *core.Pipeline) {
			p.Spec.Ports = []core.PipelinePort{{Port: 8000, Protocol: corev1.ProtocolTCP, ServicePort: 9880}}
		}, want: []string{`spec.config: Invalid value: line 9: input "http": service port 9880/TCP is already used by spec.ports[0]`}},
		{name: "derived ports are not checked when disabled", mutate: func(p *core.Pipeline) {
			p.Spec.DisableAutoPorts = true
			p.Spec.Ports = []core.PipelinePort{{Port: 8000, Protocol: corev1.ProtocolTCP, ServicePort: 9880}}
		}},
		{name: "duplicate spec ports", mutate: func(p *core.Pipeline) {
			p.Spec.Ports = []core.PipelinePort{
				{Port: 5000, Protocol: corev1.ProtocolTCP, ServicePort: 5000},
				{Port: 5000, Protocol: corev1.ProtocolTCP, ServicePort: 5001},
				{Port: 5002, Protocol: corev1.ProtocolTCP, ServicePort: 5000},
				{Port: 70000, Protocol: "SCTP", ServicePort: 70000, NodePort: 80},
			}
		}, want: []string{
			`spec.ports[1]: Duplicate value: "5000/TCP"`,
			`spec.ports[2].servicePort: Invalid value: 5000: service port 5000/TCP is already used by spec.ports[0]`,
			`spec.ports[3].port: Invalid value: 70000`,
			`spec.ports[3].protocol: Unsupported value: "SCTP"`,
			`spec.ports[3].servicePort: Invalid value: 70000`,
			`spec.ports[3].nodePort: Invalid value: 80: must be in the node port range 30000-32767`,
		}},
		{name: "node port with ClusterIP", mutate: func(p *core.Pipeline) {
			p.Spec.ServiceType = corev1.ServiceTypeClusterIP
			p.Spec.Ports = []core.PipelinePort{{Port: 5000, Protocol: corev1.ProtocolTCP, ServicePort: 5000, NodePort: 30001}}
		}, want: []string{"spec.ports[0].nodePort: Forbidden: not allowed with serviceType ClusterIP"}},
		{name: "unknown service type", mutate: func(p *core.Pipeline) { p.Spec.ServiceType = "ExternalName" },
			want: []string{`spec.serviceType: Unsupported value: "ExternalName"`}},
		{name: "valid autoscaling", mutate: func(p *core.Pipeline) {
			p.Spec.Autoscaling = &core.PipelineAutoscaling{MinReplicas: ptr.To[int32](1), MaxReplicas: 5, TargetCPUUtilizationPercentage: ptr.To[int32](70),
				ScaleUp: &core.ScalingRules{Policies: []core.ScalingPolicy{{Type: core.ScalingPolicyTypePods, Value: 2, PeriodSeconds: 60}}}}
		}},
		{name: "bad autoscaling", mutate: func(p *core.Pipeline) {
			p.Spec.Autoscaling = &core.PipelineAutoscaling{MinReplicas: ptr.To[int32](5), MaxReplicas: 2,
				ScaleDown: &core.ScalingRules{Policies: []core.ScalingPolicy{{Type: "Nodes", Value: 0, PeriodSeconds: 0}}}}
		}, want: []string{
			"spec.autoscaling.maxReplicas: Invalid value: 2: must be greater than or equal to minReplicas",
			"spec.autoscaling: Required value: set targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage",
			`spec.autoscaling.scaleDown.policies[0].type: Unsupported value: "Nodes"`,
			"spec.autoscaling.scaleDown.policies[0].value: Invalid value: 0",
			"spec.autoscaling.scaleDown.policies[0].periodSeconds: Invalid value: 0",
		}},
		{name: "autoscaling a daemonset", mutate: func(p *core.Pipeline) {
			p.Spec.Kind, p.Spec.Replicas = core.PipelineKindDaemonSet, nil
			p.Spec.Autoscaling = &core.PipelineAutoscaling{MaxReplicas: 2, TargetMemoryUtilizationPercentage: ptr.To[int32](80)}
		}, want: []string{"spec.autoscaling: Forbidden: DaemonSet pipelines cannot be autoscaled"}},
		{name: "statefulset settings on a deployment", mutate: func(p *core.Pipeline) {
			p.Spec.StatefulSet = &core.PipelineStatefulSet{WhenDeleted: "Retain", WhenScaled: "Keep"}
		}, want: []string{"spec.statefulSet: Forbidden: only for kind StatefulSet", `spec.statefulSet.whenScaled: Unsupported value: "Keep"`}},
		{name: "pod settings", mutate: func(p *core.Pipeline) {
			p.Spec.Pod = core.PipelinePod{
				Labels:                        map[string]string{"bad key!": "x"},
				Tolerations:                   []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"}},
				TerminationGracePeriodSeconds: ptr.To[int64](-1),
			}
		}, want: []string{
			`spec.pod.labels: Invalid value: "bad key!"`,
			`spec.pod.tolerations[0].value: Invalid value: "v": must be empty when operator is Exists`,
			"spec.pod.terminationGracePeriodSeconds: Invalid value: -1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPipeline()
			tt.mutate(p)
			checkErrors(t, ValidatePipeline(p), tt.want)
		})
	}
}

func TestValidatePipelineUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *core.Pipeline)
		want   []string
	}{
		{name: "scaling", mutate: func(p *core.Pipeline) { p.Spec.Replicas = ptr.To[int32](3) }},
		{name: "new config", mutate: func(p *core.Pipeline) {
			p.Spec.Config, p.Spec.ConfigFormat = yamlConfig, core.ConfigFormatYAML
		}},
		{name: "kind is immutable", mutate: func(p *core.Pipeline) {
			p.Spec.Kind = core.PipelineKindStatefulSet
			p.Spec.StatefulSet = &core.PipelineStatefulSet{WhenDeleted: "Retain", WhenScaled: "Retain"}
		},
			want: []string{`spec.kind: Invalid value: "StatefulSet": cannot update pipeline kind`}},
		{name: "invalid new spec", mutate: func(p *core.Pipeline) { p.Spec.Replicas = ptr.To[int32](-2) },
			want: []string{"spec.replicas: Invalid value: -2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validPipeline()
			p := validPipeline()
			tt.mutate(p)
			checkErrors(t, ValidatePipelineUpdate(p, old), tt.want)
		})
	}

	t.Run("a stored config is not checked again when it does not change", func(t *testing.T) {
		// As after a server upgrade whose plugin schema no longer knows a plugin.
		old := validPipeline()
		old.Spec.Config = strings.Replace(classicConfig, "name   stdout", "name   s4", 1)
		p := old.DeepCopy()
		p.Labels = map[string]string{"touched": "yes"}
		checkErrors(t, ValidatePipelineUpdate(p, old), nil)

		p.Spec.Config += "\n"
		checkErrors(t, ValidatePipelineUpdate(p, old), []string{`spec.config: Invalid value: line 13: output "s4": unknown plugin`})
	})

	t.Run("statefulset storage class is immutable", func(t *testing.T) {
		old := validPipeline()
		old.Spec.Kind = core.PipelineKindStatefulSet
		old.Spec.StatefulSet = &core.PipelineStatefulSet{StorageClassName: "fast", WhenDeleted: "Retain", WhenScaled: "Retain"}
		p := old.DeepCopy()
		p.Spec.StatefulSet.StorageClassName = "slow"
		checkErrors(t, ValidatePipelineUpdate(p, old), []string{`spec.statefulSet.storageClassName: Invalid value: "slow": field is immutable`})
	})
}

func TestValidatePipelineStatusUpdate(t *testing.T) {
	tests := []struct {
		name   string
		status core.PipelineStatus
		want   []string
	}{
		{name: "valid", status: core.PipelineStatus{
			Phase: core.PipelinePhaseStarted, Replicas: 2, ReadyReplicas: 2, Selector: "app=logs",
			Ports: []core.PipelinePortStatus{{Port: 24224, Protocol: corev1.ProtocolTCP, ServicePort: 24224, Plugin: "forward"}},
			Conditions: []metav1.Condition{{Type: core.PipelineConditionAvailable, Status: metav1.ConditionTrue, Reason: "MinimumReplicasAvailable",
				LastTransitionTime: metav1.Now()}},
		}},
		{name: "bad phase and counts", status: core.PipelineStatus{Phase: "Running", Replicas: 1, ReadyReplicas: 2, Selector: "a in (", ObservedGeneration: -1},
			want: []string{
				`status.phase: Unsupported value: "Running"`,
				"status.observedGeneration: Invalid value: -1",
				"status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
				`status.selector: Invalid value: "a in ("`,
			}},
		{name: "bad condition", status: core.PipelineStatus{Conditions: []metav1.Condition{{Type: "ConfigValid", Status: "Maybe"}}},
			want: []string{`status.conditions[0].status: Unsupported value: "Maybe"`, "status.conditions[0].lastTransitionTime: Required value", "status.conditions[0].reason: Required value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validPipeline()
			p := validPipeline()
			p.Status = tt.status
			checkErrors(t, ValidatePipelineStatusUpdate(p, old), tt.want)
		})
	}
}

func TestValidateCoreInstance(t *testing.T) {
	tests := []struct {
		name string
		obj  core.CoreInstance
		want []string
	}{
		{name: "valid", obj: core.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"},
			Spec: core.CoreInstanceSpec{Mode: core.CoreInstanceModeKubernetes, Namespace: "calyptia", Environment: "production", Tags: []string{"eu", "prod"}}}},
		{name: "invalid", obj: core.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "Edge.1", Namespace: "default"},
			Spec: core.CoreInstanceSpec{Mode: core.CoreInstanceModeExternal, Namespace: "calyptia", Environment: "prod env", Image: "fluent bit", Tags: []string{"eu", "", "eu"}}},
			want: []string{
				`metadata.name: Invalid value: "Edge.1"`,
				"spec.namespace: Forbidden: only for mode Kubernetes",
				`spec.environment: Invalid value: "prod env"`,
				`spec.image: Invalid value: "fluent bit": must not contain whitespace`,
				"spec.tags[1]: Required value",
				`spec.tags[2]: Duplicate value: "eu"`,
			}},
		{name: "missing mode", obj: core.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"}},
			want: []string{"spec.mode: Required value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, ValidateCoreInstance(&tt.obj), tt.want)
		})
	}
}

func TestValidatePipelineSecret(t *testing.T) {
	tests := []struct {
		name string
		data map[string][]byte
		want []string
	}{
		{name: "valid", data: map[string][]byte{"es.password": []byte("hunter2"), "token_1": nil}},
		{name: "bad key, value never echoed", data: map[string][]byte{"a/b": []byte("hunter2")},
			want: []string{"data[a/b]: Invalid value"}},
		{name: "too large", data: map[string][]byte{"big": make([]byte, maxSecretDataBytes+1)},
			want: []string{"data: Too long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &core.PipelineSecret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"}, Data: tt.data}
			errs := ValidatePipelineSecret(obj)
			checkErrors(t, errs, tt.want)
			for _, e := range errorStrings(errs) {
				if strings.Contains(e, "hunter2") {
					t.Errorf("error %q reveals a secret value", e)
				}
			}
		})
	}
}

func TestValidateResourceProfile(t *testing.T) {
	tests := []struct {
		name string
		spec core.ResourceProfileSpec
		want []string
	}{
		{name: "valid", spec: core.ResourceProfileSpec{
			StorageMaxChunksUp: 128, StorageBacklogMemLimit: "256M", StorageVolumeSize: ptr.To(resource.MustParse("10Gi")), CPUBufferWorkers: 2,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			},
		}},
		{name: "invalid", spec: core.ResourceProfileSpec{
			StorageMaxChunksUp: -1, StorageBacklogMemLimit: "lots", StorageVolumeSize: ptr.To(resource.MustParse("0")),
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			},
		}, want: []string{
			"spec.storageMaxChunksUp: Invalid value: -1",
			`spec.storageBacklogMemLimit: Invalid value: "lots"`,
			`spec.storageVolumeSize: Invalid value: "0": must be greater than zero`,
			`spec.resources.requests[memory]: Invalid value: "2Gi": must be less than or equal to the memory limit of 1Gi`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &core.ResourceProfile{ObjectMeta: metav1.ObjectMeta{Name: "custom", Namespace: "default"}, Spec: tt.spec}
			checkErrors(t, ValidateResourceProfile(obj), tt.want)
		})
	}
}

func TestValidateTapEndpoint(t *testing.T) {
	tests := []struct {
		endpoint string
		ok       bool
	}{
		{"10.0.0.7:2025", true},
		{"[fd00::1]:2025", true},
		{"edge-host.example.com:2025", true},
		{"10.0.0.7", false},
		{"10.0.0.7:0", false},
		{"host:http", false},
		{"Bad_Host:2025", false},
		{"10.0.0.7:2025/path", false},
	}
	for _, tt := range tests {
		old := validPipeline()
		p := old.DeepCopy()
		p.Status.TapEndpoint = tt.endpoint
		errs := ValidatePipelineStatusUpdate(p, old)
		if (len(errs) == 0) != tt.ok {
			t.Errorf("tapEndpoint %q: errors %v, want ok=%v", tt.endpoint, errs, tt.ok)
		}
	}
}
