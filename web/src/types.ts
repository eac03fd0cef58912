// The wire shapes of Tilt's web protocol (the subset the page reads).

export interface ObjectMeta {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  deletionTimestamp?: string;
  [k: string]: unknown;
}

export interface BuildRecord {
  startTime?: string;
  finishTime?: string;
  error?: string;
  warnings?: string[];
  spanID?: string;
  isCrashRebuild?: boolean;
}

export interface UIResourceStatus {
  updateStatus?: string;
  runtimeStatus?: string;
  buildHistory?: BuildRecord[];
  currentBuild?: BuildRecord;
  pendingBuildSince?: string;
  hasPendingChanges?: boolean;
  lastDeployTime?: string;
  triggerMode?: number;
  endpointLinks?: { url: string; name?: string }[];
  k8sResourceInfo?: { podName?: string; podStatus?: string; podRestarts?: number; [k: string]: unknown };
  localResourceInfo?: { pid?: string | number; isTest?: boolean };
  composeResourceInfo?: { healthStatus?: string };
  specs?: { id?: string; type?: string; hasLiveUpdate?: boolean }[];
  disableStatus?: { state?: string; enabledCount?: number; disabledCount?: number };
  waiting?: { reason?: string; on?: unknown[] };
  conditions?: { type?: string; status?: string }[];
  queued?: boolean;
  order?: number;
}

export interface UIResource {
  metadata: ObjectMeta;
  status?: UIResourceStatus;
  spec?: unknown;
}

export interface UIInputSpec {
  name: string;
  label?: string;
  text?: { defaultValue?: string; placeholder?: string };
  bool?: { defaultValue?: boolean; trueString?: string; falseString?: string };
  hidden?: { value?: string };
  choice?: { choices?: string[] };
}

export interface UIButton {
  metadata: ObjectMeta;
  spec?: {
    location?: { componentType?: string; componentID?: string };
    text?: string;
    iconName?: string;
    iconSVG?: string;
    disabled?: boolean;
    requiresConfirmation?: boolean;
    inputs?: UIInputSpec[];
  };
  status?: { lastClickedAt?: string; inputs?: unknown[] };
}

export interface UISession {
  metadata?: ObjectMeta;
  status?: {
    fatalError?: string;
    tiltfileKey?: string;
    tiltStartTime?: string;
    runningTiltBuild?: { version?: string };
    [k: string]: unknown;
  };
}

export interface Cluster {
  metadata: ObjectMeta;
  status?: { error?: string; connection?: Record<string, unknown>; arch?: string };
}

export interface LogSegment {
  spanId?: string;
  time?: string;
  text?: string;
  level?: string;
}

export interface LogList {
  spans?: Record<string, { manifestName?: string }>;
  segments?: LogSegment[];
  fromCheckpoint?: number;
  toCheckpoint?: number;
}

export interface View {
  uiSession?: UISession;
  uiResources?: UIResource[];
  uiButtons?: UIButton[];
  clusters?: Cluster[];
  logList?: LogList;
  tiltStartTime?: string;
  isComplete?: boolean;
}

export interface Snapshot {
  view: View;
  createdAt?: string;
  path?: string;
}
