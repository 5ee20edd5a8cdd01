/** store: the persistence interface and its implementations; no SQL lives outside this folder. */
export type {
  EventWrite,
  FlowRunRecord,
  FlowStepRecord,
  FunctionRecord,
  InvocationRecord,
  LogChunk,
  LogQuery,
  MessageRecord,
  QueueRecord,
  SecretListing,
  SecretRecord,
  Store,
  StoredLog,
  StoredValue,
} from './types.js';
export { openSqliteStore } from './sqlite/index.js';
