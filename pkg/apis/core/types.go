package core

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Well-known resource profile names: these three exist in every namespace without being created.
const (
	ResourceProfileBestEffortLowResource             = "best-effort-low-resource"
	ResourceProfileHighPerformanceOptimalThroughput  = "high-performance-optimal-throughput"
	ResourceProfileHighPerformanceGuaranteedDelivery = "high-performance-guaranteed-delivery"

	// DefaultResourceProfile is the profile a pipeline uses when it names none.
	DefaultResourceProfile = ResourceProfileBestEffortLowResource
)

// Condition types of a Pipeline.
const (
	// PipelineConditionConfigValid is True when the config parses, validates against the
	// plugin schema and every {{ secrets.* }} and {{ files.* }} reference resolves.
	PipelineConditionConfigValid = "ConfigValid"
	// PipelineConditionDeployed is True when the data plane has applied the current config revision.
	PipelineConditionDeployed = "Deployed"
	// PipelineConditionAvailable is True when at least the wanted number of replicas are ready.
	PipelineConditionAvailable = "Available"
)

// Condition types of a CoreInstance.
const (
	// CoreInstanceConditionReachable is True while the agent heartbeats within 35 seconds.
	CoreInstanceConditionReachable = "Reachable"
)

// CoreInstanceMode says where a core instance's pipelines run.
// +enum
type CoreInstanceMode string

const (
	// CoreInstanceModeKubernetes runs pipelines as workloads in a Kubernetes cluster.
	CoreInstanceModeKubernetes CoreInstanceMode = "Kubernetes"
	// CoreInstanceModeExternal runs pipelines as fluent-bit processes on a plain host.
	CoreInstanceModeExternal CoreInstanceMode = "External"
)

// CoreInstancePhase is the liveness of a core instance's agent.
// +enum
type CoreInstancePhase string

const (
	// CoreInstancePhaseWaiting means the agent never reported.
	CoreInstancePhaseWaiting CoreInstancePhase = "Waiting"
	// CoreInstancePhaseRunning means the agent's last heartbeat is at most 35 seconds old.
	CoreInstancePhaseRunning CoreInstancePhase = "Running"
	// CoreInstancePhaseUnreachable means the agent reported once but its last heartbeat is older
	// than 35 seconds.
	CoreInstancePhaseUnreachable CoreInstancePhase = "Unreachable"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// CoreInstance is one data plane: an agent that runs the pipelines assigned to it, either as
// workloads in a Kubernetes cluster or as processes on a host.
type CoreInstance struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	// spec is what the core instance should be.
	Spec CoreInstanceSpec
	// status is what the agent last reported.
	Status CoreInstanceStatus
}

// CoreInstanceSpec is the desired state of a core instance.
type CoreInstanceSpec struct {
	// mode is where the pipelines run: Kubernetes (default) or External (a plain host).
	Mode CoreInstanceMode
	// namespace is the Kubernetes namespace the agent creates pipeline workloads in.
	// Empty means the agent's own namespace. Only for mode Kubernetes.
	Namespace string
	// environment groups core instances, e.g. "production" or "staging".
	Environment string
	// image is the default Fluent Bit image of this instance's pipelines.
	// Empty means the agent's built-in default.
	Image string
	// tags are free-form labels shown in listings and usable for filtering.
	Tags []string
	// skipServiceCreation stops the agent from creating a Service per pipeline port.
	SkipServiceCreation bool
}

// CoreInstanceCluster describes the cluster an agent runs in, as the agent reports it.
type CoreInstanceCluster struct {
	// name of the cluster.
	Name string
	// version of the cluster's Kubernetes.
	Version string
	// platform, e.g. "linux/amd64".
	Platform string
	// namespace the agent runs in.
	Namespace string
}

// CoreInstanceStatus is what the agent reports about a core instance.
type CoreInstanceStatus struct {
	// phase is Waiting (never reported), Running (heartbeat within 35 seconds) or Unreachable.
	Phase CoreInstancePhase
	// observedGeneration is the metadata.generation the agent last acted on.
	ObservedGeneration int64
	// lastHeartbeatTime is when the agent last reported; agents report every 30 seconds.
	LastHeartbeatTime *metav1.Time
	// agentVersion is the version of the data plane agent.
	AgentVersion string
	// fluentBitVersion is the version of Fluent Bit the agent runs by default.
	FluentBitVersion string
	// pipelines is the number of pipelines assigned to this core instance.
	Pipelines int32
	// cluster describes where the agent runs.
	Cluster *CoreInstanceCluster
	// conditions are the latest observations of the core instance's state.
	Conditions []metav1.Condition
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// CoreInstanceList is a list of core instances.
type CoreInstanceList struct {
	metav1.TypeMeta
	metav1.ListMeta

	// items are the core instances.
	Items []CoreInstance
}

// ConfigFormat is the syntax of a pipeline's Fluent Bit config.
// +enum
type ConfigFormat string

const (
	// ConfigFormatClassic is Fluent Bit's classic INI-like format ([INPUT] sections).
	ConfigFormatClassic ConfigFormat = "classic"
	// ConfigFormatYAML is Fluent Bit's YAML format (a pipeline: key with inputs/filters/outputs).
	ConfigFormatYAML ConfigFormat = "yaml"
)

// PipelineKind is the kind of workload a pipeline runs as.
// +enum
type PipelineKind string

const (
	// PipelineKindDeployment runs spec.replicas interchangeable Fluent Bit pods.
	PipelineKindDeployment PipelineKind = "Deployment"
	// PipelineKindDaemonSet runs one Fluent Bit pod per node.
	PipelineKindDaemonSet PipelineKind = "DaemonSet"
	// PipelineKindStatefulSet runs spec.replicas Fluent Bit pods with their own storage.
	PipelineKindStatefulSet PipelineKind = "StatefulSet"
)

// DeploymentStrategy is how a pipeline's pods pick up a new config.
// +enum
type DeploymentStrategy string

const (
	// DeploymentStrategyRecreate stops every pod before starting new ones.
	DeploymentStrategyRecreate DeploymentStrategy = "Recreate"
	// DeploymentStrategyRollingUpdate replaces pods gradually.
	DeploymentStrategyRollingUpdate DeploymentStrategy = "RollingUpdate"
	// DeploymentStrategyHotReload keeps the pods and makes Fluent Bit reload its config
	// (a sidecar calls /api/v2/reload).
	DeploymentStrategyHotReload DeploymentStrategy = "HotReload"
)

// PipelinePhase is the coarse state of a pipeline's deployment.
// +enum
type PipelinePhase string

const (
	// PipelinePhaseNew means the data plane has not acted on the pipeline yet.
	PipelinePhaseNew PipelinePhase = "New"
	// PipelinePhaseStarting means the workload is being created or rolled out.
	PipelinePhaseStarting PipelinePhase = "Starting"
	// PipelinePhaseStarted means the workload runs the current config.
	PipelinePhaseStarted PipelinePhase = "Started"
	// PipelinePhaseScaling means the number of replicas is changing.
	PipelinePhaseScaling PipelinePhase = "Scaling"
	// PipelinePhaseFailed means the data plane could not run the pipeline; see conditions.
	PipelinePhaseFailed PipelinePhase = "Failed"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Pipeline is one Fluent Bit pipeline running on one core instance.
type Pipeline struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	// spec is the pipeline the user wants.
	Spec PipelineSpec
	// status is what the data plane reports about the pipeline.
	Status PipelineStatus
}

// PipelineSpec is the desired state of a pipeline.
type PipelineSpec struct {
	// coreInstance is the name of the CoreInstance, in the same namespace, that runs this
	// pipeline. It may be created after the pipeline.
	CoreInstance string
	// config is the Fluent Bit configuration, in the syntax configFormat names. It may reference
	// secret values as {{ secrets.KEY }} (keys of the PipelineSecrets named in secrets) and
	// files as {{ files.NAME }} (entries of files).
	Config string
	// configFormat is the syntax of config: classic or yaml. When empty it is inferred: a config
	// whose first statement is a [SECTION] header or an @directive is classic, anything else yaml.
	ConfigFormat ConfigFormat
	// kind is the workload the pipeline runs as: Deployment (default), DaemonSet or StatefulSet.
	// It cannot change after creation.
	Kind PipelineKind
	// replicas is the number of pods for Deployment and StatefulSet pipelines (default 1; 0 stops
	// the pipeline). DaemonSet pipelines must leave it unset.
	Replicas *int32
	// resourceProfile is the name of the ResourceProfile for buffering and pod resources.
	// Default: best-effort-low-resource.
	ResourceProfile string
	// image is the Fluent Bit image. Empty means the core instance's image.
	Image string
	// deploymentStrategy is how pods pick up a new config: Recreate, RollingUpdate (default)
	// or HotReload.
	DeploymentStrategy DeploymentStrategy
	// secrets names the PipelineSecrets, in the same namespace, whose keys the config references
	// as {{ secrets.KEY }}; the first secret holding a key wins. They may be created after the
	// pipeline: unresolved references are reported in the ConfigValid condition.
	Secrets []string
	// files are extra files mounted next to the config and referenced as {{ files.NAME }}.
	Files []PipelineFile
	// ports the pipeline listens on. Ports of listening plugins (forward 24224/TCP, http 9880/TCP,
	// ...) are derived from the config; entries here override a derived port with the same port
	// and protocol, or add ports.
	Ports []PipelinePort
	// disableAutoPorts stops ports being derived from the config; only ports are exposed.
	DisableAutoPorts bool
	// serviceType is the type of the Services exposing the ports: LoadBalancer (default),
	// ClusterIP or NodePort.
	ServiceType corev1.ServiceType
	// autoscaling makes the data plane run a HorizontalPodAutoscaler for the pipeline.
	// Only for Deployment and StatefulSet pipelines.
	Autoscaling *PipelineAutoscaling
	// statefulSet holds the settings of StatefulSet pipelines.
	StatefulSet *PipelineStatefulSet
	// pod holds the scheduling and metadata settings of the pipeline's pods.
	Pod PipelinePod
}

// PipelineFile is a file made available to the config as {{ files.NAME }}.
type PipelineFile struct {
	// name of the file: letters and digits only.
	Name string
	// content of the file.
	Content string
}

// PipelinePort is a port a pipeline listens on.
type PipelinePort struct {
	// port is the port Fluent Bit listens on in the pod.
	Port int32
	// protocol is TCP (default) or UDP.
	Protocol corev1.Protocol
	// servicePort is the port the Service exposes. Default: port.
	ServicePort int32
	// nodePort is the node port of a NodePort or LoadBalancer Service. Default: allocated.
	NodePort int32
}

// ScalingPolicyType is the unit of a scaling policy.
// +enum
type ScalingPolicyType string

const (
	// ScalingPolicyTypePods limits the change to an absolute number of pods.
	ScalingPolicyTypePods ScalingPolicyType = "Pods"
	// ScalingPolicyTypePercent limits the change to a percentage of the current pods.
	ScalingPolicyTypePercent ScalingPolicyType = "Percent"
)

// ScalingPolicy limits how fast a pipeline scales in one direction.
type ScalingPolicy struct {
	// type is Pods or Percent.
	Type ScalingPolicyType
	// value is the number of pods or the percentage allowed to change within periodSeconds.
	Value int32
	// periodSeconds is the window the policy holds for (1 to 1800).
	PeriodSeconds int32
}

// ScalingRules configures scaling in one direction.
type ScalingRules struct {
	// stabilizationWindowSeconds is how long past recommendations are considered (0 to 3600).
	StabilizationWindowSeconds *int32
	// policies limit the rate of scaling.
	Policies []ScalingPolicy
}

// PipelineAutoscaling configures horizontal autoscaling of a pipeline.
type PipelineAutoscaling struct {
	// minReplicas is the lower bound (default 1).
	MinReplicas *int32
	// maxReplicas is the upper bound.
	MaxReplicas int32
	// targetCPUUtilizationPercentage is the average CPU use, in percent of the request, to aim at.
	TargetCPUUtilizationPercentage *int32
	// targetMemoryUtilizationPercentage is the average memory use, in percent of the request, to aim at.
	TargetMemoryUtilizationPercentage *int32
	// scaleUp limits scaling up.
	ScaleUp *ScalingRules
	// scaleDown limits scaling down.
	ScaleDown *ScalingRules
}

// PersistentVolumeClaimRetentionPolicyType says what happens to a StatefulSet pipeline's volumes.
// +enum
type PersistentVolumeClaimRetentionPolicyType string

const (
	// RetainPersistentVolumeClaimRetentionPolicyType keeps the volumes.
	RetainPersistentVolumeClaimRetentionPolicyType PersistentVolumeClaimRetentionPolicyType = "Retain"
	// DeletePersistentVolumeClaimRetentionPolicyType deletes the volumes.
	DeletePersistentVolumeClaimRetentionPolicyType PersistentVolumeClaimRetentionPolicyType = "Delete"
)

// PipelineStatefulSet holds the settings of StatefulSet pipelines.
type PipelineStatefulSet struct {
	// storageClassName is the storage class of each pod's buffer volume. Empty means the
	// cluster's default class. It cannot change after creation.
	StorageClassName string
	// whenDeleted says what happens to the volumes when the pipeline is deleted: Retain (default) or Delete.
	WhenDeleted PersistentVolumeClaimRetentionPolicyType
	// whenScaled says what happens to the volumes of removed replicas: Retain (default) or Delete.
	WhenScaled PersistentVolumeClaimRetentionPolicyType
}

// PipelinePod holds the scheduling and metadata settings of a pipeline's pods.
type PipelinePod struct {
	// labels added to the pods.
	Labels map[string]string
	// annotations added to the pods.
	Annotations map[string]string
	// nodeSelector restricts the nodes the pods run on.
	NodeSelector map[string]string
	// affinity are the pods' scheduling constraints.
	Affinity *corev1.Affinity
	// tolerations let the pods run on tainted nodes.
	Tolerations []corev1.Toleration
	// topologySpreadConstraints spread the pods across topology domains.
	TopologySpreadConstraints []corev1.TopologySpreadConstraint
	// terminationGracePeriodSeconds is how long Fluent Bit may take to flush on shutdown.
	TerminationGracePeriodSeconds *int64
	// lifecycle hooks of the Fluent Bit container.
	Lifecycle *corev1.Lifecycle
	// priorityClassName is the pods' priority class.
	PriorityClassName string
}

// PipelinePortStatus is a port the pipeline exposes, as resolved from the config and spec.ports.
type PipelinePortStatus struct {
	// port Fluent Bit listens on.
	Port int32
	// protocol, TCP or UDP.
	Protocol corev1.Protocol
	// servicePort is the port the Service exposes.
	ServicePort int32
	// plugin is the config plugin that listens, e.g. "forward"; empty for ports only in spec.ports.
	Plugin string
	// endpoint is where clients reach the port, e.g. "10.0.0.7:24224".
	Endpoint string
}

// PipelineStatus is what the data plane reports about a pipeline.
type PipelineStatus struct {
	// phase is New, Starting, Started, Scaling or Failed.
	Phase PipelinePhase
	// observedGeneration is the metadata.generation the data plane last acted on.
	ObservedGeneration int64
	// replicas is the number of pods the workload has.
	Replicas int32
	// readyReplicas is the number of ready pods.
	ReadyReplicas int32
	// selector is the label selector of the pipeline's pods, in string form, for the scale
	// subresource and HorizontalPodAutoscalers.
	Selector string
	// configRevision identifies the config the running pods use (a hash of the rendered config).
	ConfigRevision string
	// ports are the ports the pipeline exposes.
	Ports []PipelinePortStatus
	// tapEndpoint is where cloud-api reads the pipeline's tap (host:port).
	TapEndpoint string
	// conditions are ConfigValid, Deployed and Available.
	Conditions []metav1.Condition
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PipelineList is a list of pipelines.
type PipelineList struct {
	metav1.TypeMeta
	metav1.ListMeta

	// items are the pipelines.
	Items []Pipeline
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PipelineSecret holds secret values that pipeline configs reference as {{ secrets.KEY }}.
// Values are encrypted at rest when the server has an encryption config, and are never shown
// in table output or logs. Deleting a secret is refused (409 Conflict) while a pipeline in its
// namespace that is not being deleted lists it in spec.secrets and its config references one of
// its keys.
type PipelineSecret struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	// data maps keys to secret values. Keys consist of letters, digits, '-', '_' and '.'.
	Data map[string][]byte
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PipelineSecretList is a list of pipeline secrets.
type PipelineSecretList struct {
	metav1.TypeMeta
	metav1.ListMeta

	// items are the pipeline secrets.
	Items []PipelineSecret
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ResourceProfile holds Fluent Bit buffering settings and pod resources that pipelines refer to
// by name. The profiles best-effort-low-resource, high-performance-optimal-throughput and
// high-performance-guaranteed-delivery exist in every namespace and cannot be changed.
// Deleting a profile is refused (409 Conflict) while a pipeline in its namespace that is not
// being deleted names it in spec.resourceProfile.
type ResourceProfile struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	// spec holds the settings.
	Spec ResourceProfileSpec
}

// ResourceProfileSpec holds Fluent Bit buffering settings and pod resources.
type ResourceProfileSpec struct {
	// storageMaxChunksUp is Fluent Bit's storage.max_chunks_up: chunks kept in memory.
	StorageMaxChunksUp int32
	// storageSyncFull sets storage.sync to full (true) or normal (false).
	StorageSyncFull bool
	// storageBacklogMemLimit is Fluent Bit's storage.backlog.mem_limit, a Fluent Bit size such as "5M".
	StorageBacklogMemLimit string
	// storageVolumeSize is the size of the buffer volume; unset means in-memory buffering only.
	StorageVolumeSize *resource.Quantity
	// storageMaxChunksPause is Fluent Bit's storage.pause_on_chunks_overlimit.
	StorageMaxChunksPause bool
	// cpuBufferWorkers is the number of Fluent Bit workers per output.
	CPUBufferWorkers int32
	// resources are the Fluent Bit container's CPU and memory requests and limits.
	Resources corev1.ResourceRequirements
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ResourceProfileList is a list of resource profiles.
type ResourceProfileList struct {
	metav1.TypeMeta
	metav1.ListMeta

	// items are the resource profiles.
	Items []ResourceProfile
}
