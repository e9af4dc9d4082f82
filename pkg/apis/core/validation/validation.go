// Package validation checks core.calyptia.com objects (internal versions) and returns every
// problem as a field error, which the API server answers with 422 Unprocessable Entity.
package validation

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/calyptia/core-management-plane/pkg/apis/core"
	"github.com/calyptia/core-management-plane/pkg/fluentbit"
)

// Size limits keep one object well below the storage's 1.5 MiB object limit, with room for status.
const (
	maxConfigBytes     = 512 * 1024
	maxFilesBytes      = 512 * 1024
	maxSecretDataBytes = 1024 * 1024
)

var (
	// fileNameRE is the product's rule for {{ files.NAME }}: letters and digits.
	fileNameRE = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	// fluentBitSizeRE matches Fluent Bit size values such as 5M, 256MB, 1.5G or 1024.
	fluentBitSizeRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([KkMmGg][Bb]?)?$`)
)

// ValidateCoreInstanceName checks a core instance name: an RFC 1123 label, as workload and
// Service names are derived from it.
var ValidateCoreInstanceName = apimachineryvalidation.NameIsDNSLabel

// ValidatePipelineName checks a pipeline name: an RFC 1035 label, since the data plane names
// the pipeline's Services after it.
var ValidatePipelineName = apimachineryvalidation.NameIsDNS1035Label

// ValidateCoreInstance checks a new core instance.
func ValidateCoreInstance(obj *core.CoreInstance) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMeta(&obj.ObjectMeta, true, ValidateCoreInstanceName, field.NewPath("metadata"))
	allErrs = append(allErrs, validateCoreInstanceSpec(&obj.Spec, field.NewPath("spec"))...)
	return allErrs
}

// ValidateCoreInstanceUpdate checks an update of a core instance's metadata and spec.
func ValidateCoreInstanceUpdate(obj, old *core.CoreInstance) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&obj.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateCoreInstanceSpec(&obj.Spec, field.NewPath("spec"))...)
	return allErrs
}

// ValidateCoreInstanceStatusUpdate checks an update of a core instance's status.
func ValidateCoreInstanceStatusUpdate(obj, old *core.CoreInstance) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&obj.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	fld := field.NewPath("status")
	s := &obj.Status
	if s.Phase != "" {
		allErrs = append(allErrs, validateEnum(s.Phase, fld.Child("phase"),
			core.CoreInstancePhaseWaiting, core.CoreInstancePhaseRunning, core.CoreInstancePhaseUnreachable)...)
	}
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(s.ObservedGeneration, fld.Child("observedGeneration"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(s.Pipelines), fld.Child("pipelines"))...)
	allErrs = append(allErrs, metav1validation.ValidateConditions(s.Conditions, fld.Child("conditions"))...)
	return allErrs
}

func validateCoreInstanceSpec(spec *core.CoreInstanceSpec, fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateEnum(spec.Mode, fld.Child("mode"), core.CoreInstanceModeKubernetes, core.CoreInstanceModeExternal)...)
	if spec.Namespace != "" {
		if spec.Mode == core.CoreInstanceModeExternal {
			allErrs = append(allErrs, field.Forbidden(fld.Child("namespace"), "only for mode Kubernetes"))
		}
		for _, msg := range utilvalidation.IsDNS1123Label(spec.Namespace) {
			allErrs = append(allErrs, field.Invalid(fld.Child("namespace"), spec.Namespace, msg))
		}
	}
	if spec.Environment != "" {
		for _, msg := range utilvalidation.IsValidLabelValue(spec.Environment) {
			allErrs = append(allErrs, field.Invalid(fld.Child("environment"), spec.Environment, msg))
		}
	}
	allErrs = append(allErrs, validateImage(spec.Image, fld.Child("image"))...)
	seen := sets.New[string]()
	for i, tag := range spec.Tags {
		p := fld.Child("tags").Index(i)
		switch {
		case tag == "":
			allErrs = append(allErrs, field.Required(p, "tags must not be empty"))
		case seen.Has(tag):
			allErrs = append(allErrs, field.Duplicate(p, tag))
		default:
			for _, msg := range utilvalidation.IsValidLabelValue(tag) {
				allErrs = append(allErrs, field.Invalid(p, tag, msg))
			}
		}
		seen.Insert(tag)
	}
	return allErrs
}

// ValidatePipeline checks a new pipeline, including its Fluent Bit config.
func ValidatePipeline(obj *core.Pipeline) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMeta(&obj.ObjectMeta, true, ValidatePipelineName, field.NewPath("metadata"))
	allErrs = append(allErrs, validatePipelineSpec(&obj.Spec, nil, field.NewPath("spec"))...)
	return allErrs
}

// ValidatePipelineUpdate checks an update of a pipeline's metadata and spec: everything
// ValidatePipeline checks, and that kind and the StatefulSet storage class did not change.
func ValidatePipelineUpdate(obj, old *core.Pipeline) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&obj.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	fld := field.NewPath("spec")
	allErrs = append(allErrs, validatePipelineSpec(&obj.Spec, &old.Spec, fld)...)
	if obj.Spec.Kind != old.Spec.Kind {
		allErrs = append(allErrs, field.Invalid(fld.Child("kind"), obj.Spec.Kind, "cannot update pipeline kind: field is immutable; delete and recreate the pipeline"))
	}
	if obj.Spec.StatefulSet != nil && old.Spec.StatefulSet != nil &&
		obj.Spec.StatefulSet.StorageClassName != old.Spec.StatefulSet.StorageClassName {
		allErrs = append(allErrs, field.Invalid(fld.Child("statefulSet", "storageClassName"), obj.Spec.StatefulSet.StorageClassName, "field is immutable"))
	}
	return allErrs
}

// ValidatePipelineStatusUpdate checks an update of a pipeline's status.
func ValidatePipelineStatusUpdate(obj, old *core.Pipeline) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&obj.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	fld := field.NewPath("status")
	s := &obj.Status
	if s.Phase != "" {
		allErrs = append(allErrs, validateEnum(s.Phase, fld.Child("phase"),
			core.PipelinePhaseNew, core.PipelinePhaseStarting, core.PipelinePhaseStarted, core.PipelinePhaseScaling, core.PipelinePhaseFailed)...)
	}
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(s.ObservedGeneration, fld.Child("observedGeneration"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(s.Replicas), fld.Child("replicas"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(s.ReadyReplicas), fld.Child("readyReplicas"))...)
	if s.ReadyReplicas > s.Replicas {
		allErrs = append(allErrs, field.Invalid(fld.Child("readyReplicas"), s.ReadyReplicas, "cannot be greater than status.replicas"))
	}
	if s.Selector != "" {
		if _, err := metav1.ParseToLabelSelector(s.Selector); err != nil {
			allErrs = append(allErrs, field.Invalid(fld.Child("selector"), s.Selector, err.Error()))
		}
	}
	for i, p := range s.Ports {
		pp := fld.Child("ports").Index(i)
		allErrs = append(allErrs, validatePortNumber(p.Port, pp.Child("port"))...)
		allErrs = append(allErrs, validateEnum(p.Protocol, pp.Child("protocol"), corev1.ProtocolTCP, corev1.ProtocolUDP)...)
		if p.ServicePort != 0 {
			allErrs = append(allErrs, validatePortNumber(p.ServicePort, pp.Child("servicePort"))...)
		}
	}
	if s.TapEndpoint != "" {
		allErrs = append(allErrs, validateHostPort(s.TapEndpoint, fld.Child("tapEndpoint"))...)
	}
	allErrs = append(allErrs, metav1validation.ValidateConditions(s.Conditions, fld.Child("conditions"))...)
	return allErrs
}

// validateHostPort checks a host:port (an IP or a DNS name, and a port number), nothing more:
// cloud-api dials it.
func validateHostPort(v string, fld *field.Path) field.ErrorList {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return field.ErrorList{field.Invalid(fld, v, "must be host:port")}
	}
	var allErrs field.ErrorList
	if net.ParseIP(host) == nil {
		for _, msg := range utilvalidation.IsDNS1123Subdomain(host) {
			allErrs = append(allErrs, field.Invalid(fld, v, "host: "+msg))
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		allErrs = append(allErrs, field.Invalid(fld, v, "port must be a number from 1 to 65535"))
	}
	return allErrs
}

// validatePipelineSpec checks a spec; old is the stored spec on updates, nil on creates.
func validatePipelineSpec(spec, old *core.PipelineSpec, fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.CoreInstance == "" {
		allErrs = append(allErrs, field.Required(fld.Child("coreInstance"), "the name of the CoreInstance that runs the pipeline"))
	} else {
		for _, msg := range ValidateCoreInstanceName(spec.CoreInstance, false) {
			allErrs = append(allErrs, field.Invalid(fld.Child("coreInstance"), spec.CoreInstance, msg))
		}
	}
	allErrs = append(allErrs, validateEnum(spec.Kind, fld.Child("kind"), core.PipelineKindDeployment, core.PipelineKindDaemonSet, core.PipelineKindStatefulSet)...)
	allErrs = append(allErrs, validateReplicas(spec, fld)...)
	if spec.ResourceProfile == "" {
		allErrs = append(allErrs, field.Required(fld.Child("resourceProfile"), ""))
	} else {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(spec.ResourceProfile, false) {
			allErrs = append(allErrs, field.Invalid(fld.Child("resourceProfile"), spec.ResourceProfile, msg))
		}
	}
	allErrs = append(allErrs, validateImage(spec.Image, fld.Child("image"))...)
	allErrs = append(allErrs, validateEnum(spec.DeploymentStrategy, fld.Child("deploymentStrategy"),
		core.DeploymentStrategyRecreate, core.DeploymentStrategyRollingUpdate, core.DeploymentStrategyHotReload)...)
	if spec.Kind == core.PipelineKindStatefulSet && spec.DeploymentStrategy == core.DeploymentStrategyRecreate {
		allErrs = append(allErrs, field.NotSupported(fld.Child("deploymentStrategy"), spec.DeploymentStrategy,
			[]core.DeploymentStrategy{core.DeploymentStrategyRollingUpdate, core.DeploymentStrategyHotReload}))
	}
	for i, name := range spec.Secrets {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(name, false) {
			allErrs = append(allErrs, field.Invalid(fld.Child("secrets").Index(i), name, msg))
		}
	}
	files, fileErrs := validateFiles(spec.Files, fld.Child("files"))
	allErrs = append(allErrs, fileErrs...)
	cfg, cfgErrs := validateConfig(spec, files, configUnchanged(spec, old), fld)
	allErrs = append(allErrs, cfgErrs...)
	allErrs = append(allErrs, validatePorts(spec, cfg, fld)...)
	allErrs = append(allErrs, validateAutoscaling(spec, fld.Child("autoscaling"))...)
	if spec.StatefulSet != nil {
		ss := fld.Child("statefulSet")
		if spec.Kind != core.PipelineKindStatefulSet {
			allErrs = append(allErrs, field.Forbidden(ss, "only for kind StatefulSet"))
		}
		if spec.StatefulSet.StorageClassName != "" {
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(spec.StatefulSet.StorageClassName, false) {
				allErrs = append(allErrs, field.Invalid(ss.Child("storageClassName"), spec.StatefulSet.StorageClassName, msg))
			}
		}
		policies := []core.PersistentVolumeClaimRetentionPolicyType{core.RetainPersistentVolumeClaimRetentionPolicyType, core.DeletePersistentVolumeClaimRetentionPolicyType}
		allErrs = append(allErrs, validateEnum(spec.StatefulSet.WhenDeleted, ss.Child("whenDeleted"), policies...)...)
		allErrs = append(allErrs, validateEnum(spec.StatefulSet.WhenScaled, ss.Child("whenScaled"), policies...)...)
	}
	allErrs = append(allErrs, validatePod(&spec.Pod, fld.Child("pod"))...)
	return allErrs
}

func validateReplicas(spec *core.PipelineSpec, fld *field.Path) field.ErrorList {
	p := fld.Child("replicas")
	if spec.Kind == core.PipelineKindDaemonSet {
		if spec.Replicas != nil {
			return field.ErrorList{field.Forbidden(p, "DaemonSet pipelines run one pod per node; leave replicas unset")}
		}
		return nil
	}
	if spec.Replicas == nil {
		return field.ErrorList{field.Required(p, "")}
	}
	return apimachineryvalidation.ValidateNonnegativeField(int64(*spec.Replicas), p)
}

// validateFiles returns the set of file names alongside the errors, for the config's
// {{ files.NAME }} references.
func validateFiles(files []core.PipelineFile, fld *field.Path) (sets.Set[string], field.ErrorList) {
	var allErrs field.ErrorList
	names := sets.New[string]()
	total := 0
	for i, f := range files {
		p := fld.Index(i)
		switch {
		case f.Name == "":
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		case !fileNameRE.MatchString(f.Name):
			allErrs = append(allErrs, field.Invalid(p.Child("name"), f.Name, "must consist of letters and digits only"))
		case names.Has(f.Name):
			allErrs = append(allErrs, field.Duplicate(p.Child("name"), f.Name))
		}
		names.Insert(f.Name)
		total += len(f.Content)
	}
	if total > maxFilesBytes {
		allErrs = append(allErrs, field.TooLong(fld, "", maxFilesBytes))
	}
	return names, allErrs
}

// configUnchanged tells whether an update leaves the config, its format and its files as stored.
func configUnchanged(spec, old *core.PipelineSpec) bool {
	return old != nil && spec.Config == old.Config && spec.ConfigFormat == old.ConfigFormat &&
		apiequality.Semantic.DeepEqual(spec.Files, old.Files)
}

// validateConfig parses and validates the Fluent Bit config and returns it (nil when it does not
// parse) for the port checks. Errors carry the config's line numbers in their detail.
//
// A config an update leaves unchanged is not checked again (validation ratcheting): a newer
// plugin schema after a server upgrade must not make a stored pipeline unchangeable, which would
// block even removing its finalizers.
func validateConfig(spec *core.PipelineSpec, files sets.Set[string], unchanged bool, fld *field.Path) (*fluentbit.Config, field.ErrorList) {
	if unchanged {
		cfg, err := fluentbit.Parse([]byte(spec.Config), fluentbit.Format(spec.ConfigFormat))
		if err != nil {
			return nil, nil
		}
		return cfg, nil
	}
	cfgPath := fld.Child("config")
	formats := []core.ConfigFormat{core.ConfigFormatClassic, core.ConfigFormatYAML}
	if errs := validateEnum(spec.ConfigFormat, fld.Child("configFormat"), formats...); len(errs) > 0 {
		return nil, errs
	}
	if strings.TrimSpace(spec.Config) == "" {
		return nil, field.ErrorList{field.Required(cfgPath, "a Fluent Bit config with at least one input and one output")}
	}
	if len(spec.Config) > maxConfigBytes {
		return nil, field.ErrorList{field.TooLong(cfgPath, "", maxConfigBytes)}
	}
	cfg, err := fluentbit.Parse([]byte(spec.Config), fluentbit.Format(spec.ConfigFormat))
	if err != nil {
		return nil, configErrors(cfgPath, err)
	}
	schema, err := fluentbit.LoadSchema(fluentbit.DefaultSchemaVersion)
	if err != nil {
		return cfg, field.ErrorList{field.InternalError(cfgPath, fmt.Errorf("loading the Fluent Bit plugin schema: %w", err))}
	}
	var allErrs field.ErrorList
	allErrs = append(allErrs, configErrors(cfgPath, schema.Validate(cfg))...)
	allErrs = append(allErrs, configErrors(cfgPath, fluentbit.ValidatePipeline(cfg))...)
	allErrs = append(allErrs, validateReferences(cfg, files, cfgPath)...)
	return cfg, allErrs
}

// configErrors turns the config model's errors into field errors on spec.config. The value is
// omitted: it is the whole config, and the line number in the detail says where to look.
func configErrors(fld *field.Path, err error) field.ErrorList {
	if err == nil {
		return nil
	}
	var list fluentbit.ErrorList
	if errors.As(err, &list) {
		if len(list) == 0 {
			return nil
		}
		out := make(field.ErrorList, 0, len(list))
		for _, e := range list {
			out = append(out, field.Invalid(fld, field.OmitValueType{}, e.Error()))
		}
		return out
	}
	var one *fluentbit.Error
	if errors.As(err, &one) {
		return field.ErrorList{field.Invalid(fld, field.OmitValueType{}, one.Error())}
	}
	return field.ErrorList{field.Invalid(fld, field.OmitValueType{}, err.Error())}
}

func validateAutoscaling(spec *core.PipelineSpec, fld *field.Path) field.ErrorList {
	a := spec.Autoscaling
	if a == nil {
		return nil
	}
	var allErrs field.ErrorList
	if spec.Kind == core.PipelineKindDaemonSet {
		allErrs = append(allErrs, field.Forbidden(fld, "DaemonSet pipelines cannot be autoscaled"))
	}
	if a.MinReplicas != nil && *a.MinReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(fld.Child("minReplicas"), *a.MinReplicas, "must be at least 1"))
	}
	if a.MaxReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(fld.Child("maxReplicas"), a.MaxReplicas, "must be at least 1"))
	} else if a.MinReplicas != nil && *a.MinReplicas > a.MaxReplicas {
		allErrs = append(allErrs, field.Invalid(fld.Child("maxReplicas"), a.MaxReplicas, "must be greater than or equal to minReplicas"))
	}
	if a.TargetCPUUtilizationPercentage == nil && a.TargetMemoryUtilizationPercentage == nil {
		allErrs = append(allErrs, field.Required(fld, "set targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage"))
	}
	for name, v := range map[string]*int32{
		"targetCPUUtilizationPercentage":    a.TargetCPUUtilizationPercentage,
		"targetMemoryUtilizationPercentage": a.TargetMemoryUtilizationPercentage,
	} {
		if v != nil && *v < 1 {
			allErrs = append(allErrs, field.Invalid(fld.Child(name), *v, "must be at least 1"))
		}
	}
	allErrs = append(allErrs, validateScalingRules(a.ScaleUp, fld.Child("scaleUp"))...)
	allErrs = append(allErrs, validateScalingRules(a.ScaleDown, fld.Child("scaleDown"))...)
	return allErrs
}

func validateScalingRules(r *core.ScalingRules, fld *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var allErrs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil && (*w < 0 || *w > 3600) {
		allErrs = append(allErrs, field.Invalid(fld.Child("stabilizationWindowSeconds"), *w, "must be between 0 and 3600"))
	}
	for i, p := range r.Policies {
		pp := fld.Child("policies").Index(i)
		allErrs = append(allErrs, validateEnum(p.Type, pp.Child("type"), core.ScalingPolicyTypePods, core.ScalingPolicyTypePercent)...)
		if p.Value < 1 {
			allErrs = append(allErrs, field.Invalid(pp.Child("value"), p.Value, "must be at least 1"))
		}
		if p.PeriodSeconds < 1 || p.PeriodSeconds > 1800 {
			allErrs = append(allErrs, field.Invalid(pp.Child("periodSeconds"), p.PeriodSeconds, "must be between 1 and 1800"))
		}
	}
	return allErrs
}

func validatePod(pod *core.PipelinePod, fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, metav1validation.ValidateLabels(pod.Labels, fld.Child("labels"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateAnnotations(pod.Annotations, fld.Child("annotations"))...)
	allErrs = append(allErrs, metav1validation.ValidateLabels(pod.NodeSelector, fld.Child("nodeSelector"))...)
	for i, t := range pod.Tolerations {
		p := fld.Child("tolerations").Index(i)
		if t.Key != "" {
			allErrs = append(allErrs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
		case corev1.TolerationOpExists:
			if t.Value != "" {
				allErrs = append(allErrs, field.Invalid(p.Child("value"), t.Value, "must be empty when operator is Exists"))
			}
		default:
			allErrs = append(allErrs, field.NotSupported(p.Child("operator"), t.Operator, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
		}
		if t.Effect != "" {
			allErrs = append(allErrs, validateEnum(t.Effect, p.Child("effect"), corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
		}
	}
	for i, c := range pod.TopologySpreadConstraints {
		p := fld.Child("topologySpreadConstraints").Index(i)
		if c.MaxSkew < 1 {
			allErrs = append(allErrs, field.Invalid(p.Child("maxSkew"), c.MaxSkew, "must be at least 1"))
		}
		if c.TopologyKey == "" {
			allErrs = append(allErrs, field.Required(p.Child("topologyKey"), ""))
		}
		allErrs = append(allErrs, validateEnum(c.WhenUnsatisfiable, p.Child("whenUnsatisfiable"), corev1.DoNotSchedule, corev1.ScheduleAnyway)...)
	}
	if g := pod.TerminationGracePeriodSeconds; g != nil {
		allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(*g, fld.Child("terminationGracePeriodSeconds"))...)
	}
	if pod.PriorityClassName != "" {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(pod.PriorityClassName, false) {
			allErrs = append(allErrs, field.Invalid(fld.Child("priorityClassName"), pod.PriorityClassName, msg))
		}
	}
	return allErrs
}

// ValidatePipelineSecret checks a new pipeline secret.
func ValidatePipelineSecret(obj *core.PipelineSecret) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMeta(&obj.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	allErrs = append(allErrs, validateSecretData(obj.Data, field.NewPath("data"))...)
	return allErrs
}

// ValidatePipelineSecretUpdate checks an update of a pipeline secret.
func ValidatePipelineSecretUpdate(obj, old *core.PipelineSecret) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&obj.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateSecretData(obj.Data, field.NewPath("data"))...)
	return allErrs
}

// validateSecretData never puts a value into an error: errors end up in responses, events and logs.
func validateSecretData(data map[string][]byte, fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	total := 0
	for key, value := range data {
		for _, msg := range utilvalidation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(fld.Key(key), field.OmitValueType{}, msg))
		}
		total += len(value)
	}
	if total > maxSecretDataBytes {
		allErrs = append(allErrs, field.TooLong(fld, "", maxSecretDataBytes))
	}
	return allErrs
}

// ValidateResourceProfile checks a new resource profile.
func ValidateResourceProfile(obj *core.ResourceProfile) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMeta(&obj.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	allErrs = append(allErrs, validateResourceProfileSpec(&obj.Spec, field.NewPath("spec"))...)
	return allErrs
}

// ValidateResourceProfileUpdate checks an update of a resource profile.
func ValidateResourceProfileUpdate(obj, old *core.ResourceProfile) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&obj.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateResourceProfileSpec(&obj.Spec, field.NewPath("spec"))...)
	return allErrs
}

func validateResourceProfileSpec(spec *core.ResourceProfileSpec, fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.StorageMaxChunksUp), fld.Child("storageMaxChunksUp"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.CPUBufferWorkers), fld.Child("cpuBufferWorkers"))...)
	if v := spec.StorageBacklogMemLimit; v != "" && !fluentBitSizeRE.MatchString(v) {
		allErrs = append(allErrs, field.Invalid(fld.Child("storageBacklogMemLimit"), v, "must be a Fluent Bit size such as 5M, 256MB or 1G"))
	}
	if q := spec.StorageVolumeSize; q != nil && q.Sign() <= 0 {
		allErrs = append(allErrs, field.Invalid(fld.Child("storageVolumeSize"), q.String(), "must be greater than zero"))
	}
	res := fld.Child("resources")
	allowed := sets.New(corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage)
	for name, list := range map[string]corev1.ResourceList{"requests": spec.Resources.Requests, "limits": spec.Resources.Limits} {
		for r, q := range list {
			p := res.Child(name).Key(string(r))
			if !allowed.Has(r) {
				allErrs = append(allErrs, field.NotSupported(p, r, sets.List(allowed)))
			}
			if q.Sign() < 0 {
				allErrs = append(allErrs, field.Invalid(p, q.String(), "must be greater than or equal to 0"))
			}
		}
	}
	for r, req := range spec.Resources.Requests {
		if limit, ok := spec.Resources.Limits[r]; ok && req.Cmp(limit) > 0 {
			allErrs = append(allErrs, field.Invalid(res.Child("requests").Key(string(r)), req.String(), fmt.Sprintf("must be less than or equal to the %s limit of %s", r, limit.String())))
		}
	}
	if len(spec.Resources.Claims) > 0 {
		allErrs = append(allErrs, field.Forbidden(res.Child("claims"), "resource claims are not supported"))
	}
	return allErrs
}

func validateImage(image string, fld *field.Path) field.ErrorList {
	if image != "" && strings.TrimSpace(image) != image || strings.ContainsAny(image, " \t\n") {
		return field.ErrorList{field.Invalid(fld, image, "must not contain whitespace")}
	}
	return nil
}

func validatePortNumber(port int32, fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range utilvalidation.IsValidPortNum(int(port)) {
		allErrs = append(allErrs, field.Invalid(fld, port, msg))
	}
	return allErrs
}

func validateEnum[T ~string](v T, fld *field.Path, allowed ...T) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(fld, fmt.Sprintf("one of %q", allowed))}
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(fld, v, allowed)}
}

// Bounds of one metrics batch: an agent splits bigger rounds.
const (
	MaxMetricsScrapes  = 2000
	MaxMetricsCounters = 2000
)

// ValidateMetricsBatch checks a batch of scrapes an agent sends.
func ValidateMetricsBatch(b *core.MetricsBatch) field.ErrorList {
	var allErrs field.ErrorList
	fld := field.NewPath("scrapes")
	if len(b.Scrapes) > MaxMetricsScrapes {
		allErrs = append(allErrs, field.TooMany(fld, len(b.Scrapes), MaxMetricsScrapes))
		return allErrs
	}
	for i, sc := range b.Scrapes {
		p := fld.Index(i)
		if sc.Pipeline == "" {
			allErrs = append(allErrs, field.Required(p.Child("pipeline"), ""))
		} else {
			for _, msg := range ValidatePipelineName(sc.Pipeline, false) {
				allErrs = append(allErrs, field.Invalid(p.Child("pipeline"), sc.Pipeline, msg))
			}
		}
		if sc.Pod == "" {
			allErrs = append(allErrs, field.Required(p.Child("pod"), "the pod or host the Fluent Bit runs on"))
		} else if len(sc.Pod) > 253 {
			allErrs = append(allErrs, field.TooLong(p.Child("pod"), "", 253))
		}
		if sc.Time.IsZero() {
			allErrs = append(allErrs, field.Required(p.Child("time"), ""))
		}
		if len(sc.Counters) > MaxMetricsCounters {
			allErrs = append(allErrs, field.TooMany(p.Child("counters"), len(sc.Counters), MaxMetricsCounters))
			continue
		}
		seen := map[[3]string]bool{}
		for j, c := range sc.Counters {
			cp := p.Child("counters").Index(j)
			allErrs = append(allErrs, validateEnum(c.Measurement, cp.Child("measurement"),
				core.MeasurementInput, core.MeasurementFilter, core.MeasurementOutput, core.MeasurementStorage)...)
			if c.Name == "" {
				allErrs = append(allErrs, field.Required(cp.Child("name"), "the counter's name, e.g. records_total"))
			}
			for _, s := range []struct {
				name, v string
			}{{"name", c.Name}, {"plugin", c.Plugin}} {
				if len(s.v) > 256 {
					allErrs = append(allErrs, field.TooLong(cp.Child(s.name), "", 256))
				}
			}
			if c.Value < 0 {
				allErrs = append(allErrs, field.Invalid(cp.Child("value"), c.Value, "must not be negative"))
			}
			k := [3]string{c.Measurement, c.Plugin, c.Name}
			if seen[k] {
				allErrs = append(allErrs, field.Duplicate(cp, c.Measurement+"/"+c.Plugin+"/"+c.Name))
			}
			seen[k] = true
		}
	}
	return allErrs
}
