import type { InvocationStatus } from '../types.js';

export interface InvocationRecord {
  id: string;
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
  getInvocation(id: string): Promise<InvocationRecord | undefined>;
  listInvocations(functionName: string, limit: number): Promise<InvocationRecord[]>;
  /** Log entries in ascending seq order. */
  listLogs(query: LogQuery): Promise<StoredLog[]>;
  close(): Promise<void>;
}
