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
  Store,
  StoredLog,
  StoredValue,
} from './types.js';
export { openSqliteStore } from './sqlite/index.js';
