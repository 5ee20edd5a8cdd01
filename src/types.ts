/**
 * Berth's shared vocabulary.
 *
 * - function:    a handler and its settings, declared in berth.yml.
 * - environment: one sandbox process bound to one function (and, for `tenant`
 *                isolation, one tenant); it keeps module state between invocations.
 * - invocation:  one call of a function, with a stable id (context.awsRequestId).
 * - tenant:      the customer an invocation runs for; `tenant` isolation never lets
 *                two tenants share an environment.
 * - trigger:     what starts an invocation (an HTTP route, the Invoke API, the CLI,
 *                an async event, a queue, a topic, a schedule, a webhook).
 * - queue:       a durable list of messages (SQS semantics); every async invocation
 *                is a message in its function's internal queue.
 * - topic:       fans one published message out to queues, functions and URLs.
 * - attempt:     one delivery of an event; retries keep the invocation id.
 */

import type { FlowSpec } from './flows/types.js';

export type Isolation = 'fresh' | 'tenant' | 'warm';

export interface HttpRoute {
  method: string; // upper-case, or ANY
  path: string; // API Gateway style: /lead/{leadId}, /files/{proxy+}
}

export interface FunctionSpec {
  name: string;
  /** The handler as written in berth.yml, e.g. `src/lead.handler`. */
  handler: string;
  /** Absolute path of the source file the handler lives in. */
  file: string;
  /** The handler's export; empty for a service that only has a start(). */
  exportName: string;
  /** nodejs: the handler runs in Berth's Node sandbox; provided: `bootstrap` runs it through Lambda's Runtime API. */
  runtime: 'nodejs' | 'provided';
  /** For `runtime: provided`: the executable that polls the Runtime API (absolute path). */
  bootstrap?: string;
  /** A service's long-running start() export, run once per instance. */
  startExport?: string;
  /** function: environments on demand, down to zero when idle; service: always-on instances. */
  mode: 'function' | 'service';
  /** For a service: instances kept running at all times, and the most it scales to. */
  minInstances: number;
  maxInstances: number;
  /** Environments per second the autoscaler may add for a backlog. */
  scaleUpRate: number;
  timeoutSeconds: number;
  memoryMb: number;
  isolation: Isolation;
  environment: Record<string, string>;
  description: string;
  /** Initialised environments kept ready (not yet bound to a tenant). */
  prewarm: number;
  /** Environments kept initialised at all times, busy or not: never reaped below this. */
  provisionedConcurrency: number;
  idleTimeoutSeconds: number;
  routes: HttpRoute[];
  async: AsyncSpec;
  queueTriggers: QueueTriggerSpec[];
  schedules: ScheduleSpec[];
  webhooks: WebhookSpec[];
}

export interface FunctionLimits {
  /** A cap that reserves nothing. */
  maxConcurrency?: number;
  /** A guaranteed share of the account's concurrency, and also a cap (Lambda semantics). */
  reservedConcurrency?: number;
  /** Invocations of one tenant running at once. */
  tenantConcurrency?: number;
  /** Environments kept initialised (a pool setting, not an admission limit; changeable live). */
  provisionedConcurrency?: number;
}

export interface GroupLimits {
  functions: string[];
  maxConcurrency?: number;
  /** A share of the account's concurrency that only the group's members may use. */
  reserved?: number;
}

/** Every concurrency limit in force; berth.yml's, with live changes laid over them. */
export interface LimitSet {
  /** Invocations running at once on the installation (Infinity: no limit). */
  accountConcurrency: number;
  /** How long a synchronous caller over a limit waits before it is throttled. */
  syncWaitMs: number;
  functions: Map<string, FunctionLimits>;
  groups: Map<string, GroupLimits>;
}

export type Destination = { queue: string } | { topic: string } | { function: string };

export interface AsyncSpec {
  /** Retries after the first attempt. */
  retries: number;
  /** Backoff before the first retry; doubles per retry up to maxRetryDelaySeconds, with jitter. */
  retryDelaySeconds: number;
  maxRetryDelaySeconds: number;
  maxEventAgeSeconds: number;
  onSuccess?: Destination;
  onFailure?: Destination;
  deadLetterQueue?: string;
  /** Async events of this function running at once. */
  concurrency: number;
}

export interface QueueTriggerSpec {
  queue: string;
  batchSize: number;
  maxBatchingWindowSeconds: number;
  reportBatchItemFailures: boolean;
  maxConcurrency: number;
}

export interface ScheduleSpec {
  /** Stable across restarts: `<function>#<index>`. */
  id: string;
  expression: string;
  timezone?: string;
  /** What to do with ticks that passed while Berth was down. */
  missed: 'skip' | 'runOnce';
  input?: unknown;
}

export interface WebhookSpec {
  path: string;
  /** HMAC secret; without one, any request is accepted. */
  secret?: string;
  /** Header carrying the hex HMAC of the body, optionally prefixed `sha256=`. */
  header: string;
  algorithm: 'sha1' | 'sha256' | 'sha512';
}

export interface QueueSpec {
  name: string;
  fifo: boolean;
  visibilityTimeoutSeconds: number;
  delaySeconds: number;
  retentionSeconds: number;
  maxReceiveCount?: number;
  deadLetterQueue?: string;
  contentBasedDeduplication: boolean;
  /**
   * Internal queues: messages are taken round-robin across message groups (tenants), so one
   * group's backlog does not delay another's first message. Unlike FIFO, a group may have
   * many messages in flight.
   */
  fairByGroup?: boolean;
}

export type SubscriptionSpec = (
  | { queue: string; raw: boolean }
  | { function: string }
  | { http: string; retries: number }
  | { email: string[]; retries: number }
) & { filter?: Record<string, unknown> };

/** The mail server email subscriptions and flow alerts go through. */
export interface SmtpSpec {
  host: string;
  port: number;
  secure: boolean;
  auth?: { user: string; pass: string };
  from: string;
}

export interface TopicSpec {
  name: string;
  subscriptions: SubscriptionSpec[];
  /** The tokens that open a WebSocket subscription, if the topic takes them. */
  websocket?: { tokens: string[] };
  mqtt?: { url: string; topic: string };
}

export interface ProjectSpec {
  /** Absolute directory holding berth.yml. */
  dir: string;
  configFile: string;
  service: string;
  functions: Map<string, FunctionSpec>;
  gateway: { bodyLimitBytes: number };
  events: { maxPayloadBytes: number; inlineThresholdBytes: number; idempotencyWindowSeconds: number };
  limits: LimitSet;
  /** The embedded store stops growing at this size: writes then fail, and callers get an error. */
  store: { maxSizeBytes?: number };
  queues: Map<string, QueueSpec>;
  topics: Map<string, TopicSpec>;
  flows: Map<string, FlowSpec>;
  smtp?: SmtpSpec;
  runtime: { maxEnvironments: number };
}

/** What a trigger asks the dispatcher to run. */
export interface InvocationRequest {
  functionName: string;
  event: unknown;
  tenantId?: string;
  /** Decoded client context (Invoke API `X-Amz-Client-Context`). */
  clientContext?: unknown;
  trigger: Trigger;
  /** Set for events: the id every attempt shares. */
  id?: string;
  /** 1 for the first delivery of an event, 2 for its first retry, ... */
  attempt?: number;
  /** Secrets handed to the handler as `context.secrets` (flow steps that declare them). */
  secrets?: Record<string, string>;
  /** Applied to the invocation's log and error before they are recorded or returned. */
  redact?: (text: string) => string;
}

export type Trigger = 'http' | 'invoke-api' | 'cli' | 'async' | 'queue' | 'topic' | 'schedule' | 'webhook' | 'service' | 'flow';

export interface FunctionError {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

export type InvocationStatus = 'succeeded' | 'failed' | 'timed_out';

export interface InvocationResult {
  id: string;
  attempt: number;
  functionName: string;
  status: InvocationStatus;
  /** The handler's return value, when status is `succeeded`. */
  payload?: unknown;
  error?: FunctionError;
  durationMs: number;
  billedMs: number;
  initDurationMs?: number;
  maxMemoryMb: number;
  /** Log text of this invocation, START to REPORT. */
  log: string;
}
