/** store: the persistence interface and its implementations; no SQL lives outside this folder. */
export type {
  EventWrite,
  MessageRecord,
  QueueRecord, FunctionRecord, InvocationRecord, LogChunk, LogQuery, SecretListing, SecretRecord, Store, StoredLog } from './types.js';
export { openSqliteStore } from './sqlite/index.js';
