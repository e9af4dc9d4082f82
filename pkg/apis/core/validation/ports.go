package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/fluentbit"
)

type portKey struct {
	port     int32
	protocol corev1.Protocol
}

func (k portKey) String() string { return fmt.Sprintf("%d/%s", k.port, k.protocol) }

// validatePorts checks spec.ports and the ports the config listens on together: backend ports are
// unique per protocol (two plugins cannot listen on one socket), and so are the Service ports the
// resolved set exposes. Frontend uniqueness across a core instance is a cross-object property the
// data plane reports in status.
func validatePorts(spec *core.PipelineSpec, cfg *fluentbit.Config, fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateEnum(spec.ServiceType, fld.Child("serviceType"),
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort)...)

	// servicePorts maps each exposed Service port to where it came from, for messages.
	servicePorts := map[portKey]string{}
	explicit := sets.New[portKey]()
	nodePorts := sets.New[int32]()
	for i, p := range spec.Ports {
		pp := fld.Child("ports").Index(i)
		allErrs = append(allErrs, validatePortNumber(p.Port, pp.Child("port"))...)
		allErrs = append(allErrs, validateEnum(p.Protocol, pp.Child("protocol"), corev1.ProtocolTCP, corev1.ProtocolUDP)...)
		allErrs = append(allErrs, validatePortNumber(p.ServicePort, pp.Child("servicePort"))...)
		if p.NodePort != 0 {
			switch {
			case spec.ServiceType == corev1.ServiceTypeClusterIP:
				allErrs = append(allErrs, field.Forbidden(pp.Child("nodePort"), "not allowed with serviceType ClusterIP"))
			case p.NodePort < 30000 || p.NodePort > 32767:
				allErrs = append(allErrs, field.Invalid(pp.Child("nodePort"), p.NodePort, "must be in the node port range 30000-32767"))
			case nodePorts.Has(p.NodePort):
				allErrs = append(allErrs, field.Duplicate(pp.Child("nodePort"), p.NodePort))
			}
			nodePorts.Insert(p.NodePort)
		}
		key := portKey{p.Port, p.Protocol}
		if explicit.Has(key) {
			allErrs = append(allErrs, field.Duplicate(pp, key.String()))
			continue
		}
		explicit.Insert(key)
		svc := portKey{p.ServicePort, p.Protocol}
		if prev, ok := servicePorts[svc]; ok {
			allErrs = append(allErrs, field.Invalid(pp.Child("servicePort"), p.ServicePort, fmt.Sprintf("service port %s is already used by %s", svc, prev)))
			continue
		}
		servicePorts[svc] = pp.String()
	}

	if cfg == nil || spec.DisableAutoPorts {
		return allErrs
	}
	cfgPath := fld.Child("config")
	listening := sets.New[portKey]()
	for _, p := range cfg.Ports() {
		key := portKey{p.Port, corev1.Protocol(p.Protocol)}
		if listening.Has(key) {
			continue // two plugins on one socket: the config validation reports it with both lines
		}
		listening.Insert(key)
		if explicit.Has(key) {
			continue // spec.ports overrides how this port is exposed; checked above
		}
		if prev, ok := servicePorts[key]; ok {
			allErrs = append(allErrs, field.Invalid(cfgPath, field.OmitValueType{},
				fmt.Sprintf("line %d: %s %q: service port %s is already used by %s; set a different servicePort for one of them in spec.ports", p.Line, p.Section, p.Plugin, key, prev)))
			continue
		}
		servicePorts[key] = fmt.Sprintf("line %d of spec.config", p.Line)
	}
	return allErrs
}

// validateReferences checks {{ files.NAME }} references against spec.files. Secret references
// are not checked here: PipelineSecrets may be created after the pipeline (kubectl apply -f dir/
// in any order), so the data plane reports unresolved ones in the ConfigValid condition.
func validateReferences(cfg *fluentbit.Config, files sets.Set[string], fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, ref := range cfg.References() {
		if ref.Kind == "files" && !files.Has(ref.Name) {
			allErrs = append(allErrs, field.Invalid(fld, field.OmitValueType{},
				fmt.Sprintf("line %d: undefined file %q: add it to spec.files", ref.Line, ref.Name)))
		}
	}
	return allErrs
}
