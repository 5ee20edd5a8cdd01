import type { InvocationStatus } from '../types.js';

export interface InvocationRecord {
  id: string;
  /** 1 for the first delivery; retries of an event share its id and count up. */
  attempt: number;
  functionName: string;
  tenantId: string | null;
  trigger: string;
  status: InvocationStatus;
  startedAt: number;
  durationMs: number;
  billedMs: number;
  initDurationMs: number | null;
  maxMemoryMb: number;
  errorType: string | null;
  errorMessage: string | null;
}

export interface LogChunk {
  invocationId: string;
  functionName: string;
  tenantId: string | null;
  ts: number;
  text: string;
}

export interface StoredLog extends LogChunk {
  /** Monotonic position in the log, usable as a cursor for following. */
  seq: number;
}

export interface FunctionRecord {
  name: string;
  handler: string;
  spec: unknown;
  updatedAt: number;
}

export interface LogQuery {
  functionName: string;
  /** Only entries after this cursor (for following); without it, the newest `limit`. */
  afterSeq?: number;
  limit: number;
}

/** One message of a queue as stored; see migrations/sqlite/0002_events.sql. */
export interface MessageRecord {
  seq: number;
  queue: string;
  id: string;
  body: string | null;
  blobKey: string | null;
  size: number;
  md5: string;
  attributes: string | null;
  meta: string | null;
  groupId: string | null;
  dedupId: string | null;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt: number | null;
  expiresAt: number;
  leased: boolean;
}

export interface QueueRecord {
  name: string;
  spec: unknown;
  origin: 'config' | 'api';
  createdAt: number;
}

/** Changes to event state, applied in order in one transaction. */
/** A value kept inline as JSON text, or in the blob store under a key. */
export interface StoredValue {
  json: string | null;
  blob: string | null;
}

export interface FlowRunRecord {
  id: string;
  flow: string;
  tenantId: string | null;
  trigger: string;
  status: 'running' | 'succeeded' | 'failed';
  input: StoredValue;
  output: StoredValue;
  /** JSON: { step, errorType, errorMessage }. */
  error: string | null;
  createdAt: number;
  finishedAt: number | null;
}

export interface FlowStepRecord {
  runId: string;
  step: string;
  status: 'running' | 'succeeded' | 'failed' | 'skipped';
  attempts: number;
  input: StoredValue;
  output: StoredValue;
  error: string | null;
  invocationId: string | null;
  startedAt: number;
  finishedAt: number | null;
}

export type EventWrite =
  | { op: 'insert'; message: MessageRecord }
  | { op: 'update'; seq: number; queue: string; visibleAt: number; receiveCount: number; firstReceiveAt: number | null; leased: boolean }
  | { op: 'delete'; seq: number }
  | { op: 'purge'; queue: string }
  | { op: 'putKey'; scope: string; key: string; value: string; expiresAt: number }
  | { op: 'tick'; id: string; expression: string; tick: number }
  | { op: 'saveQueue'; queue: QueueRecord }
  | { op: 'dropQueue'; name: string }
  | { op: 'flowRun'; run: FlowRunRecord }
  | { op: 'flowStep'; step: FlowStepRecord };

/** A secret as stored: sealed by src/secrets, so the store only ever holds ciphertext. */
export interface SecretRecord {
  tenant: string;
  name: string;
  /** What the plaintext is (`value`, `oauth2`); bound into the ciphertext, so it cannot be relabelled. */
  kind: string;
  ciphertext: Buffer;
  iv: Buffer;
  tag: Buffer;
  /** Fingerprint of the master key that sealed it, to tell a wrong key from a damaged value. */
  keyId: string;
  updatedAt: number;
}

/** What listing secrets shows: never the value, sealed or not. */
export type SecretListing = Pick<SecretRecord, 'name' | 'kind' | 'updatedAt'>;

/**
 * Everything Berth persists goes through this interface, so the embedded SQLite
 * store and a shared PostgreSQL store can pass one conformance suite.
 * All methods are async because networked stores are.
 */
export interface Store {
  /** Writes invocation records and log chunks together, in one transaction. */
  writeBatch(batch: { invocations: InvocationRecord[]; logs: LogChunk[] }): Promise<void>;
  saveFunctions(functions: FunctionRecord[]): Promise<void>;
  listFunctions(): Promise<FunctionRecord[]>;
  /** Every attempt of one invocation, first attempt first. */
  getInvocation(id: string): Promise<InvocationRecord[]>;
  listInvocations(functionName: string, limit: number): Promise<InvocationRecord[]>;
  /** Log entries in ascending seq order. */
  listLogs(query: LogQuery): Promise<StoredLog[]>;
  /** Everything one invocation printed, every attempt, in order. */
  logsOf(invocationId: string): Promise<string>;
  /** Event state: applied atomically; resolves once durable. */
  writeEvents(writes: EventWrite[]): Promise<void>;
  loadQueues(): Promise<QueueRecord[]>;
  /** Every message not yet deleted, in seq order. */
  loadMessages(): Promise<MessageRecord[]>;
  /** The value stored under an idempotency key, unless it has expired. */
  getKey(scope: string, key: string, now: number): Promise<string | undefined>;
  deleteExpiredKeys(now: number): Promise<void>;
  /** The live changes to concurrency limits (a JSON document), if any were made. */
  loadLimitOverrides(): Promise<string | undefined>;
  saveLimitOverrides(value: string): Promise<void>;
  /** Last handled tick per schedule id, with the expression it was for. */
  loadTicks(): Promise<{ id: string; expression: string; tick: number }[]>;
  getFlowRun(id: string): Promise<{ run: FlowRunRecord; steps: FlowStepRecord[] } | undefined>;
  /** Newest first. */
  listFlowRuns(flow: string, limit: number): Promise<FlowRunRecord[]>;
  /** Runs a crash or restart interrupted, oldest first. */
  runningFlowRuns(): Promise<FlowRunRecord[]>;
  close(): Promise<void>;
  /** Inserts or replaces the secret (tenant, name). */
  putSecret(secret: SecretRecord): Promise<void>;
  getSecret(tenant: string, name: string): Promise<SecretRecord | undefined>;
  /** One tenant's secrets, by name. */
  listSecrets(tenant: string): Promise<SecretListing[]>;
  /** Whether there was a secret to delete. */
  deleteSecret(tenant: string, name: string): Promise<boolean>;
}
