// Package fuzzer fills core.calyptia.com objects with random but valid-after-defaulting content
// for the round-trip tests.
package fuzzer

import (
	corev1 "k8s.io/api/core/v1"
	runtimeserializer "k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/randfill"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
)

// Funcs returns fuzzer functions that leave no field the v1 defaulters would change: round trips
// decode through the defaulters, so an undefaulted field would not survive them unchanged.
var Funcs = func(codecs runtimeserializer.CodecFactory) []any {
	return []any{
		func(s *core.CoreInstanceSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.Mode == "" {
				s.Mode = core.CoreInstanceModeKubernetes
			}
		},
		func(s *core.PipelineSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			kinds := []core.PipelineKind{core.PipelineKindDeployment, core.PipelineKindDaemonSet, core.PipelineKindStatefulSet}
			s.Kind = kinds[c.Intn(len(kinds))]
			if s.Replicas == nil && s.Kind != core.PipelineKindDaemonSet {
				r := int32(c.Intn(10))
				s.Replicas = &r
			}
			formats := []core.ConfigFormat{core.ConfigFormatClassic, core.ConfigFormatYAML}
			s.ConfigFormat = formats[c.Intn(len(formats))]
			if s.Kind == core.PipelineKindStatefulSet && s.StatefulSet == nil {
				s.StatefulSet = &core.PipelineStatefulSet{}
			}
			if s.StatefulSet != nil {
				if s.StatefulSet.WhenDeleted == "" {
					s.StatefulSet.WhenDeleted = core.RetainPersistentVolumeClaimRetentionPolicyType
				}
				if s.StatefulSet.WhenScaled == "" {
					s.StatefulSet.WhenScaled = core.RetainPersistentVolumeClaimRetentionPolicyType
				}
			}
			if s.ResourceProfile == "" {
				s.ResourceProfile = core.DefaultResourceProfile
			}
			if s.DeploymentStrategy == "" {
				s.DeploymentStrategy = core.DeploymentStrategyRollingUpdate
			}
			if s.ServiceType == "" {
				s.ServiceType = corev1.ServiceTypeLoadBalancer
			}
			if s.Autoscaling != nil && s.Autoscaling.MinReplicas == nil {
				one := int32(1)
				s.Autoscaling.MinReplicas = &one
			}
		},
		func(p *core.PipelinePort, c randfill.Continue) {
			c.FillNoCustom(p)
			if p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP
			}
			if p.ServicePort == 0 {
				p.ServicePort = p.Port
			}
		},
	}
}
