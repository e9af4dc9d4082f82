// The parts of core.calyptia.com/v1 the UI reads (pkg/apis/core/v1).

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  generation?: number;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface List<T> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export interface CoreInstance extends KubeObject {
  spec: {
    mode?: string;
    namespace?: string;
    environment?: string;
    image?: string;
    tags?: string[];
    skipServiceCreation?: boolean;
  };
  status?: {
    phase?: string;
    lastHeartbeatTime?: string;
    agentVersion?: string;
    fluentBitVersion?: string;
    pipelines?: number;
    cluster?: { name?: string; version?: string; platform?: string; namespace?: string };
    conditions?: Condition[];
  };
}

export interface PipelinePort {
  port: number;
  protocol: string;
  servicePort?: number;
  plugin?: string;
  endpoint?: string;
}

export interface Pipeline extends KubeObject {
  spec: {
    coreInstance: string;
    config: string;
    configFormat?: string;
    kind?: string;
    replicas?: number;
    resourceProfile?: string;
    image?: string;
    deploymentStrategy?: string;
    secrets?: string[];
    files?: { name: string; content: string }[];
    [k: string]: unknown;
  };
  status?: {
    phase?: string;
    replicas?: number;
    readyReplicas?: number;
    configRevision?: string;
    ports?: PipelinePort[];
    tapEndpoint?: string;
    conditions?: Condition[];
    [k: string]: unknown;
  };
}

export interface PipelineSecret extends KubeObject {
  data?: Record<string, string>;
}

export interface ResourceProfile extends KubeObject {
  spec: Record<string, unknown>;
}

export interface KubeEvent extends KubeObject {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  lastTimestamp?: string;
  eventTime?: string;
  firstTimestamp?: string;
  source?: { component?: string };
  reportingComponent?: string;
}

export interface MetricValue {
  total: number;
  perSecond: number;
}

export interface MetricsSummary {
  input: { records: MetricValue; bytes: MetricValue };
  filter: Record<string, MetricValue>;
  output: {
    records: MetricValue;
    bytes: MetricValue;
    errors: MetricValue;
    retries: MetricValue;
    retriedRecords: MetricValue;
    retriesFailed: MetricValue;
    droppedRecords: MetricValue;
  };
}

export interface Metrics extends KubeObject {
  start: string;
  end: string;
  interval: string;
  summary: MetricsSummary;
  series?: (MetricsSummary & { time: string })[];
}

export interface TapRecord {
  time: string;
  metadata?: unknown;
  record: unknown;
}

export interface TapChunk {
  sourceType?: string;
  sourceName?: string;
  tag?: string;
  records?: TapRecord[];
  data?: unknown;
}

export interface PipelineTap extends KubeObject {
  signal: string;
  startID?: number;
  endID?: number;
  nextID?: number;
  truncated?: boolean;
  chunks?: TapChunk[];
}
