package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/dataplane/render"
)

// Labels and annotations on everything the agent creates. The core instance and namespace
// labels together say which agent owns an object; the pipeline label says for which pipeline.
const (
	LabelPipeline     = "core.calyptia.com/pipeline"
	LabelCoreInstance = "core.calyptia.com/core-instance"
	LabelNamespace    = "core.calyptia.com/namespace"

	AnnotationPipelineUID     = "core.calyptia.com/pipeline-uid"
	AnnotationConfigRevision  = "core.calyptia.com/config-revision"
	AnnotationSecretsRevision = "core.calyptia.com/secrets-revision"
	// AnnotationApplied is a digest of what the agent last applied, so that an unchanged
	// object costs no request.
	AnnotationApplied = "core.calyptia.com/applied"

	// FieldManager is the agent's server-side apply field manager.
	FieldManager = "core-operator"
)

// Where the pod keeps its config and buffers.
const (
	ConfigDir   = "/fluent-bit/etc/pipeline"
	StoragePath = "/fluent-bit/storage"

	containerName = "fluent-bit"
	reloaderName  = "config-reloader"
	configVolume  = "config"
	storageVolume = "storage"
	httpPortName  = "http"
	tapPortName   = "tap"
)

// Target says where and how the agent's workloads run.
type Target struct {
	// Namespace of the workloads in the target cluster.
	Namespace string
	// CoreInstance and SourceNamespace identify the agent's core instance in the management plane.
	CoreInstance    string
	SourceNamespace string
	// Image is the Fluent Bit image when neither the pipeline nor the core instance names one.
	Image string
	// ReloaderImage runs the HotReload sidecar (this agent's own image).
	ReloaderImage string
}

// Desired is every object a pipeline needs in the target cluster.
type Desired struct {
	ConfigMap *corev1.ConfigMap
	// Secret is nil when the config references no secret.
	Secret *corev1.Secret
	// Exactly one workload is set.
	Deployment  *appsv1.Deployment
	DaemonSet   *appsv1.DaemonSet
	StatefulSet *appsv1.StatefulSet
	Services    []*corev1.Service
	// HPA is nil without autoscaling.
	HPA *autoscalingv2.HorizontalPodAutoscaler
	// Selector selects the pipeline's pods.
	Selector map[string]string
}

// OwnerLabels are the labels of every object of the agent's core instance.
func (t Target) OwnerLabels() map[string]string {
	return map[string]string{LabelCoreInstance: t.CoreInstance, LabelNamespace: t.SourceNamespace}
}

// Selector selects the pods of pipeline name.
func (t Target) Selector(name string) map[string]string {
	l := t.OwnerLabels()
	l[LabelPipeline] = name
	return l
}

func (t Target) labels(p *v1.Pipeline) map[string]string {
	l := t.Selector(p.Name)
	l["app.kubernetes.io/name"] = "fluent-bit"
	l["app.kubernetes.io/instance"] = p.Name
	l["app.kubernetes.io/component"] = "pipeline"
	l["app.kubernetes.io/managed-by"] = FieldManager
	return l
}

func (t Target) meta(p *v1.Pipeline, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:        name,
		Namespace:   t.Namespace,
		Labels:      t.labels(p),
		Annotations: map[string]string{AnnotationPipelineUID: string(p.UID)},
	}
}

// image is the Fluent Bit image of p: the pipeline's, else the core instance's, else the agent's.
func (t Target) image(p *v1.Pipeline, ci *v1.CoreInstance) string {
	switch {
	case p.Spec.Image != "":
		return p.Spec.Image
	case ci != nil && ci.Spec.Image != "":
		return ci.Spec.Image
	}
	return t.Image
}

// Names of a pipeline's objects.
func configMapName(pipeline string) string { return childName(pipeline, "config") }
func secretName(pipeline string) string    { return childName(pipeline, "secrets") }
func serviceName(pipeline string, p v1.PipelinePortStatus) string {
	return childName(pipeline, strings.ToLower(string(p.Protocol))+"-"+strconv.Itoa(int(p.Port)))
}

// childName is base-suffix, shortened with a digest to the 63 characters Service names allow.
func childName(base, suffix string) string {
	name := base + "-" + suffix
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	tail := "-" + hex.EncodeToString(sum[:])[:8] + "-" + suffix
	return strings.TrimRight(base[:max(1, 63-len(tail))], "-") + tail
}

// Build returns the objects that run rendered pipeline p with profile on core instance ci.
func (t Target) Build(p *v1.Pipeline, ci *v1.CoreInstance, r *render.Pipeline, profile *v1.ResourceProfileSpec) *Desired {
	d := &Desired{Selector: t.Selector(p.Name)}
	d.ConfigMap = &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: t.meta(p, configMapName(p.Name)),
		Data:       map[string]string{configFile(r): string(r.Config)},
	}
	for name, content := range r.Files {
		d.ConfigMap.Data[name] = content
	}
	if len(r.SecretEnv) > 0 {
		d.Secret = &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: t.meta(p, secretName(p.Name)),
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{},
		}
		for k, v := range r.SecretEnv {
			d.Secret.Data[k] = []byte(v)
		}
	}

	template := t.podTemplate(p, t.image(p, ci), r, profile, d.Secret != nil)
	replicas := p.Spec.Replicas
	if p.Spec.Autoscaling != nil {
		// The HPA owns the replica count.
		replicas = nil
	}
	selector := &metav1.LabelSelector{MatchLabels: d.Selector}
	switch p.Spec.Kind {
	case v1.PipelineKindDaemonSet:
		strategy := appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}
		if p.Spec.DeploymentStrategy == v1.DeploymentStrategyRecreate {
			// All at once: every old pod may go before new ones start.
			all := intstr.FromString("100%")
			strategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &all}
		}
		d.DaemonSet = &appsv1.DaemonSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
			ObjectMeta: t.meta(p, p.Name),
			Spec:       appsv1.DaemonSetSpec{Selector: selector, Template: template, UpdateStrategy: strategy},
		}
	case v1.PipelineKindStatefulSet:
		sts := &appsv1.StatefulSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: t.meta(p, p.Name),
			Spec: appsv1.StatefulSetSpec{
				Replicas:       replicas,
				Selector:       selector,
				Template:       template,
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			},
		}
		if size := volumeSize(profile); size != nil {
			claim := corev1.PersistentVolumeClaim{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
				ObjectMeta: metav1.ObjectMeta{Name: storageVolume, Labels: t.labels(p)},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: *size}},
				},
			}
			policy := &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			}
			if ss := p.Spec.StatefulSet; ss != nil {
				if ss.StorageClassName != "" {
					claim.Spec.StorageClassName = ptr.To(ss.StorageClassName)
				}
				if ss.WhenDeleted == v1.DeletePersistentVolumeClaimRetentionPolicyType {
					policy.WhenDeleted = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
				}
				if ss.WhenScaled == v1.DeletePersistentVolumeClaimRetentionPolicyType {
					policy.WhenScaled = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
				}
			}
			sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claim}
			sts.Spec.PersistentVolumeClaimRetentionPolicy = policy
		}
		d.StatefulSet = sts
	default:
		strategy := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
		if p.Spec.DeploymentStrategy == v1.DeploymentStrategyRecreate {
			strategy.Type = appsv1.RecreateDeploymentStrategyType
		}
		d.Deployment = &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: t.meta(p, p.Name),
			Spec:       appsv1.DeploymentSpec{Replicas: replicas, Selector: selector, Template: template, Strategy: strategy},
		}
	}

	if ci == nil || !ci.Spec.SkipServiceCreation {
		for _, port := range r.Ports {
			d.Services = append(d.Services, t.service(p, port))
		}
	}
	if a := p.Spec.Autoscaling; a != nil && p.Spec.Kind != v1.PipelineKindDaemonSet {
		d.HPA = t.hpa(p, a)
	}
	return d
}

func configFile(r *render.Pipeline) string {
	if r.Format == "yaml" {
		return "fluent-bit.yaml"
	}
	return "fluent-bit.conf"
}

// ConfigFile is where the pod reads its config.
func ConfigFile(r *render.Pipeline) string { return ConfigDir + "/" + configFile(r) }

func volumeSize(profile *v1.ResourceProfileSpec) *resource.Quantity {
	if profile == nil || profile.StorageVolumeSize == nil || profile.StorageVolumeSize.IsZero() {
		return nil
	}
	return profile.StorageVolumeSize
}

func (t Target) podTemplate(p *v1.Pipeline, image string, r *render.Pipeline, profile *v1.ResourceProfileSpec, hasSecret bool) corev1.PodTemplateSpec {
	labels := map[string]string{}
	for k, v := range p.Spec.Pod.Labels {
		labels[k] = v
	}
	for k, v := range t.labels(p) {
		labels[k] = v // the selector's labels cannot be overridden
	}
	annotations := map[string]string{}
	for k, v := range p.Spec.Pod.Annotations {
		annotations[k] = v
	}
	// A new revision rolls the pods out, except that HotReload pods reload a new config in
	// place; secret values reach Fluent Bit through its environment, so new ones always need
	// new pods.
	if !r.HotReload {
		annotations[AnnotationConfigRevision] = r.ConfigRevision
	}
	if r.SecretsRevision != "" {
		annotations[AnnotationSecretsRevision] = r.SecretsRevision
	}

	// DaemonSet pods read the node's logs, which only root may; binding a port below 1024
	// needs root and NET_BIND_SERVICE (Kubernetes grants no ambient capabilities to others).
	privilegedPort := false
	var ports []corev1.ContainerPort
	httpListed := false
	for _, port := range r.Ports {
		ports = append(ports, corev1.ContainerPort{Name: portName(port), ContainerPort: port.Port, Protocol: port.Protocol})
		privilegedPort = privilegedPort || port.Port < 1024
		httpListed = httpListed || (port.Port == r.HTTPPort && port.Protocol == corev1.ProtocolTCP)
	}
	root := privilegedPort || p.Spec.Kind == v1.PipelineKindDaemonSet
	if !httpListed {
		ports = append(ports, corev1.ContainerPort{Name: httpPortName, ContainerPort: r.HTTPPort, Protocol: corev1.ProtocolTCP})
	}
	if !slices.ContainsFunc(ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == r.TapPort }) {
		ports = append(ports, corev1.ContainerPort{Name: tapPortName, ContainerPort: r.TapPort, Protocol: corev1.ProtocolTCP})
	}
	httpPort := intstr.FromInt32(r.HTTPPort)

	container := corev1.Container{
		Name:  containerName,
		Image: image,
		Args:  []string{"-c", ConfigFile(r)},
		Ports: ports,
		VolumeMounts: []corev1.VolumeMount{
			{Name: configVolume, MountPath: ConfigDir, ReadOnly: true},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/api/v2/health", Port: httpPort}},
			PeriodSeconds: 10, FailureThreshold: 3,
		},
		// Liveness asks only whether the server answers: output errors must not restart pods
		// that are buffering for a destination that is down.
		LivenessProbe: &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: httpPort}},
			InitialDelaySeconds: 10, PeriodSeconds: 10, FailureThreshold: 6,
		},
		Lifecycle:       p.Spec.Pod.Lifecycle,
		SecurityContext: containerSecurity(privilegedPort),
	}
	if profile != nil {
		container.Resources = *profile.Resources.DeepCopy()
	}
	if hasSecret {
		container.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: secretName(p.Name)},
		}}}
	}
	volumes := []corev1.Volume{{
		Name: configVolume,
		VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: configMapName(p.Name)},
		}},
	}}
	if size := volumeSize(profile); size != nil {
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: storageVolume, MountPath: StoragePath})
		if p.Spec.Kind != v1.PipelineKindStatefulSet { // StatefulSets get a claim per pod
			volumes = append(volumes, corev1.Volume{Name: storageVolume, VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: size},
			}})
		}
	}
	if p.Spec.Kind == v1.PipelineKindDaemonSet {
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "varlog", MountPath: "/var/log", ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "varlog", VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"},
		}})
	}
	containers := []corev1.Container{container}
	if r.HotReload {
		containers = append(containers, corev1.Container{
			Name:  reloaderName,
			Image: t.ReloaderImage,
			Args: []string{"reload",
				"--config-dir=" + ConfigDir,
				fmt.Sprintf("--fluent-bit-url=http://127.0.0.1:%d", r.HTTPPort),
			},
			VolumeMounts: []corev1.VolumeMount{{Name: configVolume, MountPath: ConfigDir, ReadOnly: true}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
			},
			SecurityContext: containerSecurity(false),
		})
	}
	spec := corev1.PodSpec{
		Containers:                    containers,
		Volumes:                       volumes,
		NodeSelector:                  p.Spec.Pod.NodeSelector,
		Affinity:                      p.Spec.Pod.Affinity,
		Tolerations:                   p.Spec.Pod.Tolerations,
		TopologySpreadConstraints:     p.Spec.Pod.TopologySpreadConstraints,
		TerminationGracePeriodSeconds: p.Spec.Pod.TerminationGracePeriodSeconds,
		PriorityClassName:             p.Spec.Pod.PriorityClassName,
		// Fluent Bit needs no Kubernetes credentials of its own.
		AutomountServiceAccountToken: ptr.To(false),
		SecurityContext:              &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
	}
	if !root {
		spec.SecurityContext.RunAsNonRoot = ptr.To(true)
		spec.SecurityContext.RunAsUser = ptr.To[int64](65532)
		spec.SecurityContext.RunAsGroup = ptr.To[int64](65532)
		spec.SecurityContext.FSGroup = ptr.To[int64](65532)
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
		Spec:       spec,
	}
}

func containerSecurity(bindsPrivilegedPort bool) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if bindsPrivilegedPort {
		sc.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
	}
	return sc
}

// portName is a container port name: at most 15 characters, unique per port and protocol.
func portName(p v1.PipelinePortStatus) string {
	return strings.ToLower(string(p.Protocol)) + "-" + strconv.Itoa(int(p.Port))
}

func (t Target) service(p *v1.Pipeline, port v1.PipelinePortStatus) *corev1.Service {
	typ := p.Spec.ServiceType
	if typ == "" {
		typ = corev1.ServiceTypeLoadBalancer
	}
	sp := corev1.ServicePort{
		Name:       portName(port),
		Protocol:   port.Protocol,
		Port:       port.ServicePort,
		TargetPort: intstr.FromInt32(port.Port),
	}
	for _, want := range p.Spec.Ports {
		if want.Port == port.Port && want.Protocol == port.Protocol && typ != corev1.ServiceTypeClusterIP {
			sp.NodePort = want.NodePort
		}
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: t.meta(p, serviceName(p.Name, port)),
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: t.Selector(p.Name),
			Ports:    []corev1.ServicePort{sp},
		},
	}
}

func (t Target) hpa(p *v1.Pipeline, a *v1.PipelineAutoscaling) *autoscalingv2.HorizontalPodAutoscaler {
	kind := "Deployment"
	if p.Spec.Kind == v1.PipelineKindStatefulSet {
		kind = "StatefulSet"
	}
	var metrics []autoscalingv2.MetricSpec
	utilization := func(res corev1.ResourceName, target *int32) {
		if target != nil {
			metrics = append(metrics, autoscalingv2.MetricSpec{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: res, Target: autoscalingv2.MetricTarget{
					Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(*target),
				}},
			})
		}
	}
	utilization(corev1.ResourceCPU, a.TargetCPUUtilizationPercentage)
	utilization(corev1.ResourceMemory, a.TargetMemoryUtilizationPercentage)
	var behavior *autoscalingv2.HorizontalPodAutoscalerBehavior
	if a.ScaleUp != nil || a.ScaleDown != nil {
		behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: scalingRules(a.ScaleUp), ScaleDown: scalingRules(a.ScaleDown)}
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: t.meta(p, p.Name),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: kind, Name: p.Name},
			MinReplicas:    a.MinReplicas,
			MaxReplicas:    a.MaxReplicas,
			Metrics:        metrics,
			Behavior:       behavior,
		},
	}
}

func scalingRules(r *v1.ScalingRules) *autoscalingv2.HPAScalingRules {
	if r == nil {
		return nil
	}
	out := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: r.StabilizationWindowSeconds}
	for _, p := range r.Policies {
		out.Policies = append(out.Policies, autoscalingv2.HPAScalingPolicy{
			Type: autoscalingv2.HPAScalingPolicyType(p.Type), Value: p.Value, PeriodSeconds: p.PeriodSeconds,
		})
	}
	return out
}

// SelectorString is the pods' selector in the form status.selector takes.
func SelectorString(sel map[string]string) string {
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ",")
}
