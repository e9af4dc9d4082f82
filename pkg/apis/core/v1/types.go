package v1

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

// +genclient
// +genclient:method=CreateMetrics,verb=create,subresource=metrics,input=MetricsBatch,result=MetricsBatch
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// CoreInstance is one data plane: an agent that runs the pipelines assigned to it, either as
// workloads in a Kubernetes cluster or as processes on a host.
type CoreInstance struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the core instance should be.
	// +optional
	Spec CoreInstanceSpec `json:"spec,omitempty"`
	// status is what the agent last reported.
	// +optional
	Status CoreInstanceStatus `json:"status,omitempty"`
}

// CoreInstanceSpec is the desired state of a core instance.
type CoreInstanceSpec struct {
	// mode is where the pipelines run: Kubernetes (default) or External (a plain host).
	// +optional
	// +default="Kubernetes"
	Mode CoreInstanceMode `json:"mode,omitempty"`
	// namespace is the Kubernetes namespace the agent creates pipeline workloads in.
	// Empty means the agent's own namespace. Only for mode Kubernetes.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// environment groups core instances, e.g. "production" or "staging".
	// +optional
	Environment string `json:"environment,omitempty"`
	// image is the default Fluent Bit image of this instance's pipelines.
	// Empty means the agent's built-in default.
	// +optional
	Image string `json:"image,omitempty"`
	// tags are free-form labels shown in listings and usable for filtering.
	// +optional
	// +listType=set
	Tags []string `json:"tags,omitempty"`
	// skipServiceCreation stops the agent from creating a Service per pipeline port.
	// +optional
	SkipServiceCreation bool `json:"skipServiceCreation,omitempty"`
}

// CoreInstanceCluster describes the cluster an agent runs in, as the agent reports it.
type CoreInstanceCluster struct {
	// name of the cluster.
	// +optional
	Name string `json:"name,omitempty"`
	// version of the cluster's Kubernetes.
	// +optional
	Version string `json:"version,omitempty"`
	// platform, e.g. "linux/amd64".
	// +optional
	Platform string `json:"platform,omitempty"`
	// namespace the agent runs in.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// CoreInstanceStatus is what the agent reports about a core instance.
type CoreInstanceStatus struct {
	// phase is Waiting (never reported), Running (heartbeat within 35 seconds) or Unreachable.
	// +optional
	Phase CoreInstancePhase `json:"phase,omitempty"`
	// observedGeneration is the metadata.generation the agent last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// lastHeartbeatTime is when the agent last reported; agents report every 30 seconds.
	// +optional
	LastHeartbeatTime *metav1.Time `json:"lastHeartbeatTime,omitempty"`
	// agentVersion is the version of the data plane agent.
	// +optional
	AgentVersion string `json:"agentVersion,omitempty"`
	// fluentBitVersion is the version of Fluent Bit the agent runs by default.
	// +optional
	FluentBitVersion string `json:"fluentBitVersion,omitempty"`
	// pipelines is the number of pipelines assigned to this core instance.
	// +optional
	Pipelines int32 `json:"pipelines,omitempty"`
	// cluster describes where the agent runs.
	// +optional
	Cluster *CoreInstanceCluster `json:"cluster,omitempty"`
	// conditions are the latest observations of the core instance's state.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchMergeKey=type
	// +patchStrategy=merge
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// CoreInstanceList is a list of core instances.
type CoreInstanceList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the core instances.
	Items []CoreInstance `json:"items"`
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

// +genclient
// +genclient:method=GetScale,verb=get,subresource=scale,result=k8s.io/api/autoscaling/v1.Scale
// +genclient:method=UpdateScale,verb=update,subresource=scale,input=k8s.io/api/autoscaling/v1.Scale,result=k8s.io/api/autoscaling/v1.Scale
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Pipeline is one Fluent Bit pipeline running on one core instance.
type Pipeline struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the pipeline the user wants.
	// +optional
	Spec PipelineSpec `json:"spec,omitempty"`
	// status is what the data plane reports about the pipeline.
	// +optional
	Status PipelineStatus `json:"status,omitempty"`
}

// PipelineSpec is the desired state of a pipeline.
type PipelineSpec struct {
	// coreInstance is the name of the CoreInstance, in the same namespace, that runs this
	// pipeline. It may be created after the pipeline.
	CoreInstance string `json:"coreInstance"`
	// config is the Fluent Bit configuration, in the syntax configFormat names. It may reference
	// secret values as {{ secrets.KEY }} (keys of the PipelineSecrets named in secrets) and
	// files as {{ files.NAME }} (entries of files).
	Config string `json:"config"`
	// configFormat is the syntax of config: classic or yaml. When empty it is inferred: a config
	// whose first statement is a [SECTION] header or an @directive is classic, anything else yaml.
	// +optional
	ConfigFormat ConfigFormat `json:"configFormat,omitempty"`
	// kind is the workload the pipeline runs as: Deployment (default), DaemonSet or StatefulSet.
	// It cannot change after creation.
	// +optional
	// +default="Deployment"
	Kind PipelineKind `json:"kind,omitempty"`
	// replicas is the number of pods for Deployment and StatefulSet pipelines (default 1; 0 stops
	// the pipeline). DaemonSet pipelines must leave it unset.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// resourceProfile is the name of the ResourceProfile for buffering and pod resources.
	// Default: best-effort-low-resource.
	// +optional
	// +default="best-effort-low-resource"
	ResourceProfile string `json:"resourceProfile,omitempty"`
	// image is the Fluent Bit image. Empty means the core instance's image.
	// +optional
	Image string `json:"image,omitempty"`
	// deploymentStrategy is how pods pick up a new config: Recreate, RollingUpdate (default)
	// or HotReload.
	// +optional
	// +default="RollingUpdate"
	DeploymentStrategy DeploymentStrategy `json:"deploymentStrategy,omitempty"`
	// secrets names the PipelineSecrets, in the same namespace, whose keys the config references
	// as {{ secrets.KEY }}; the first secret holding a key wins. They may be created after the
	// pipeline: unresolved references are reported in the ConfigValid condition.
	// +optional
	// +listType=set
	Secrets []string `json:"secrets,omitempty"`
	// files are extra files mounted next to the config and referenced as {{ files.NAME }}.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +patchMergeKey=name
	// +patchStrategy=merge
	Files []PipelineFile `json:"files,omitempty" patchStrategy:"merge" patchMergeKey:"name"`
	// ports the pipeline listens on. Ports of listening plugins (forward 24224/TCP, http 9880/TCP,
	// ...) are derived from the config; entries here override a derived port with the same port
	// and protocol, or add ports.
	// +optional
	// +listType=map
	// +listMapKey=port
	// +listMapKey=protocol
	Ports []PipelinePort `json:"ports,omitempty"`
	// disableAutoPorts stops ports being derived from the config; only ports are exposed.
	// +optional
	DisableAutoPorts bool `json:"disableAutoPorts,omitempty"`
	// serviceType is the type of the Services exposing the ports: LoadBalancer (default),
	// ClusterIP or NodePort.
	// +optional
	// +default="LoadBalancer"
	ServiceType corev1.ServiceType `json:"serviceType,omitempty"`
	// autoscaling makes the data plane run a HorizontalPodAutoscaler for the pipeline.
	// Only for Deployment and StatefulSet pipelines.
	// +optional
	Autoscaling *PipelineAutoscaling `json:"autoscaling,omitempty"`
	// statefulSet holds the settings of StatefulSet pipelines.
	// +optional
	StatefulSet *PipelineStatefulSet `json:"statefulSet,omitempty"`
	// pod holds the scheduling and metadata settings of the pipeline's pods.
	// +optional
	Pod PipelinePod `json:"pod,omitempty"`
}

// PipelineFile is a file made available to the config as {{ files.NAME }}.
type PipelineFile struct {
	// name of the file: letters and digits only.
	Name string `json:"name"`
	// content of the file.
	Content string `json:"content"`
}

// PipelinePort is a port a pipeline listens on.
type PipelinePort struct {
	// port is the port Fluent Bit listens on in the pod.
	Port int32 `json:"port"`
	// protocol is TCP (default) or UDP.
	// +optional
	// +default="TCP"
	Protocol corev1.Protocol `json:"protocol,omitempty"`
	// servicePort is the port the Service exposes. Default: port.
	// +optional
	ServicePort int32 `json:"servicePort,omitempty"`
	// nodePort is the node port of a NodePort or LoadBalancer Service. Default: allocated.
	// +optional
	NodePort int32 `json:"nodePort,omitempty"`
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
	Type ScalingPolicyType `json:"type"`
	// value is the number of pods or the percentage allowed to change within periodSeconds.
	Value int32 `json:"value"`
	// periodSeconds is the window the policy holds for (1 to 1800).
	PeriodSeconds int32 `json:"periodSeconds"`
}

// ScalingRules configures scaling in one direction.
type ScalingRules struct {
	// stabilizationWindowSeconds is how long past recommendations are considered (0 to 3600).
	// +optional
	StabilizationWindowSeconds *int32 `json:"stabilizationWindowSeconds,omitempty"`
	// policies limit the rate of scaling.
	// +optional
	// +listType=atomic
	Policies []ScalingPolicy `json:"policies,omitempty"`
}

// PipelineAutoscaling configures horizontal autoscaling of a pipeline.
type PipelineAutoscaling struct {
	// minReplicas is the lower bound (default 1).
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// maxReplicas is the upper bound.
	MaxReplicas int32 `json:"maxReplicas"`
	// targetCPUUtilizationPercentage is the average CPU use, in percent of the request, to aim at.
	// +optional
	TargetCPUUtilizationPercentage *int32 `json:"targetCPUUtilizationPercentage,omitempty"`
	// targetMemoryUtilizationPercentage is the average memory use, in percent of the request, to aim at.
	// +optional
	TargetMemoryUtilizationPercentage *int32 `json:"targetMemoryUtilizationPercentage,omitempty"`
	// scaleUp limits scaling up.
	// +optional
	ScaleUp *ScalingRules `json:"scaleUp,omitempty"`
	// scaleDown limits scaling down.
	// +optional
	ScaleDown *ScalingRules `json:"scaleDown,omitempty"`
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
	// +optional
	StorageClassName string `json:"storageClassName,omitempty"`
	// whenDeleted says what happens to the volumes when the pipeline is deleted: Retain (default) or Delete.
	// +optional
	// +default="Retain"
	WhenDeleted PersistentVolumeClaimRetentionPolicyType `json:"whenDeleted,omitempty"`
	// whenScaled says what happens to the volumes of removed replicas: Retain (default) or Delete.
	// +optional
	// +default="Retain"
	WhenScaled PersistentVolumeClaimRetentionPolicyType `json:"whenScaled,omitempty"`
}

// PipelinePod holds the scheduling and metadata settings of a pipeline's pods.
type PipelinePod struct {
	// labels added to the pods.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations added to the pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// nodeSelector restricts the nodes the pods run on.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// affinity are the pods' scheduling constraints.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// tolerations let the pods run on tainted nodes.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// topologySpreadConstraints spread the pods across topology domains.
	// +optional
	// +listType=atomic
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// terminationGracePeriodSeconds is how long Fluent Bit may take to flush on shutdown.
	// +optional
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
	// lifecycle hooks of the Fluent Bit container.
	// +optional
	Lifecycle *corev1.Lifecycle `json:"lifecycle,omitempty"`
	// priorityClassName is the pods' priority class.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// PipelinePortStatus is a port the pipeline exposes, as resolved from the config and spec.ports.
type PipelinePortStatus struct {
	// port Fluent Bit listens on.
	Port int32 `json:"port"`
	// protocol, TCP or UDP.
	Protocol corev1.Protocol `json:"protocol"`
	// servicePort is the port the Service exposes.
	// +optional
	ServicePort int32 `json:"servicePort,omitempty"`
	// plugin is the config plugin that listens, e.g. "forward"; empty for ports only in spec.ports.
	// +optional
	Plugin string `json:"plugin,omitempty"`
	// endpoint is where clients reach the port, e.g. "10.0.0.7:24224".
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
}

// PipelineStatus is what the data plane reports about a pipeline.
type PipelineStatus struct {
	// phase is New, Starting, Started, Scaling or Failed.
	// +optional
	Phase PipelinePhase `json:"phase,omitempty"`
	// observedGeneration is the metadata.generation the data plane last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// replicas is the number of pods the workload has.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// readyReplicas is the number of ready pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// selector is the label selector of the pipeline's pods, in string form, for the scale
	// subresource and HorizontalPodAutoscalers.
	// +optional
	Selector string `json:"selector,omitempty"`
	// configRevision identifies the config the running pods use (a hash of the rendered config).
	// +optional
	ConfigRevision string `json:"configRevision,omitempty"`
	// ports are the ports the pipeline exposes.
	// +optional
	// +listType=atomic
	Ports []PipelinePortStatus `json:"ports,omitempty"`
	// tapEndpoint is where cloud-api reads the pipeline's tap (its Fluent Bit's vivo_exporter,
	// host:port), as the data plane reports it; GET pipelines/{name}/tap reads there.
	// +optional
	TapEndpoint string `json:"tapEndpoint,omitempty"`
	// conditions are ConfigValid, Deployed and Available.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchMergeKey=type
	// +patchStrategy=merge
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PipelineList is a list of pipelines.
type PipelineList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the pipelines.
	Items []Pipeline `json:"items"`
}

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PipelineSecret holds secret values that pipeline configs reference as {{ secrets.KEY }}.
// Values are encrypted at rest when the server has an encryption config, and are never shown
// in table output or logs. Deleting a secret is refused (409 Conflict) while a pipeline in its
// namespace that is not being deleted lists it in spec.secrets and its config references one of
// its keys.
type PipelineSecret struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// data maps keys to secret values. Keys consist of letters, digits, '-', '_' and '.'.
	// +optional
	Data map[string][]byte `json:"data,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// PipelineSecretList is a list of pipeline secrets.
type PipelineSecretList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the pipeline secrets.
	Items []PipelineSecret `json:"items"`
}

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ResourceProfile holds Fluent Bit buffering settings and pod resources that pipelines refer to
// by name. The profiles best-effort-low-resource, high-performance-optimal-throughput and
// high-performance-guaranteed-delivery exist in every namespace and cannot be changed.
// Deleting a profile is refused (409 Conflict) while a pipeline in its namespace that is not
// being deleted names it in spec.resourceProfile.
type ResourceProfile struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the settings.
	// +optional
	Spec ResourceProfileSpec `json:"spec,omitempty"`
}

// ResourceProfileSpec holds Fluent Bit buffering settings and pod resources.
type ResourceProfileSpec struct {
	// storageMaxChunksUp is Fluent Bit's storage.max_chunks_up: chunks kept in memory.
	// +optional
	StorageMaxChunksUp int32 `json:"storageMaxChunksUp,omitempty"`
	// storageSyncFull sets storage.sync to full (true) or normal (false).
	// +optional
	StorageSyncFull bool `json:"storageSyncFull,omitempty"`
	// storageBacklogMemLimit is Fluent Bit's storage.backlog.mem_limit, a Fluent Bit size such as "5M".
	// +optional
	StorageBacklogMemLimit string `json:"storageBacklogMemLimit,omitempty"`
	// storageVolumeSize is the size of the buffer volume; unset means in-memory buffering only.
	// +optional
	StorageVolumeSize *resource.Quantity `json:"storageVolumeSize,omitempty"`
	// storageMaxChunksPause is Fluent Bit's storage.pause_on_chunks_overlimit.
	// +optional
	StorageMaxChunksPause bool `json:"storageMaxChunksPause,omitempty"`
	// cpuBufferWorkers is the number of Fluent Bit workers per output.
	// +optional
	CPUBufferWorkers int32 `json:"cpuBufferWorkers,omitempty"`
	// resources are the Fluent Bit container's CPU and memory requests and limits.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ResourceProfileList is a list of resource profiles.
type ResourceProfileList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the resource profiles.
	Items []ResourceProfile `json:"items"`
}
