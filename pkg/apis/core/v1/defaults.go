package v1

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
)

func addDefaultingFuncs(scheme *runtime.Scheme) error {
	return RegisterDefaults(scheme)
}

// SetDefaults_PipelineSpec fills the defaults that depend on other fields; the constant ones
// come from the +default markers through the generated defaulters.
func SetDefaults_PipelineSpec(obj *PipelineSpec) {
	if obj.Kind == "" {
		obj.Kind = PipelineKindDeployment
	}
	if obj.Replicas == nil && obj.Kind != PipelineKindDaemonSet {
		one := int32(1)
		obj.Replicas = &one
	}
	if obj.ConfigFormat == "" {
		obj.ConfigFormat = InferConfigFormat(obj.Config)
	}
	if obj.Kind == PipelineKindStatefulSet && obj.StatefulSet == nil {
		obj.StatefulSet = &PipelineStatefulSet{}
	}
}

// SetDefaults_PipelineAutoscaling defaults the lower bound to one replica, as HPAs do.
func SetDefaults_PipelineAutoscaling(obj *PipelineAutoscaling) {
	if obj.MinReplicas == nil {
		one := int32(1)
		obj.MinReplicas = &one
	}
}

// SetDefaults_PipelinePort exposes a port on the Service under its own number unless told otherwise.
func SetDefaults_PipelinePort(obj *PipelinePort) {
	if obj.ServicePort == 0 {
		obj.ServicePort = obj.Port
	}
}

// InferConfigFormat tells classic from YAML configs the way a person would: classic configs start
// with a [SECTION] header or an @INCLUDE/@SET directive, YAML ones never do. The CLI infers the
// format from the file extension, which the API does not see.
func InferConfigFormat(config string) ConfigFormat {
	for line := range strings.Lines(config) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") || strings.HasPrefix(line, "@") {
			return ConfigFormatClassic
		}
		return ConfigFormatYAML
	}
	return ConfigFormatClassic
}
