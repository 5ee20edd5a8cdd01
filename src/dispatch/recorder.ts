/**
 * Write-behind for invocation records and logs: what finishes within a few
 * milliseconds goes to the store in one transaction, off the response path.
 * A transaction per invocation would cost more than the invocation itself.
 */

const FLUSH_INTERVAL_MS = 25;
const MAX_BATCH = 500;
import type { InvocationRecord, LogChunk, Store } from '../store/index.js';

export class Recorder {
  private invocations: InvocationRecord[] = [];
  private logs: LogChunk[] = [];
  private scheduled = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly onError: (err: unknown) => void,
  ) {}

  record(invocation: InvocationRecord, log: LogChunk): void {
    this.invocations.push(invocation);
    this.log(log);
  }

  /** Output that belongs to no invocation (a service instance's). */
  log(chunk: LogChunk): void {
    this.logs.push(chunk);
    if (this.logs.length >= MAX_BATCH) void this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => void this.flush(), FLUSH_INTERVAL_MS).unref();
    }
  }

  /** Resolves once everything recorded so far is in the store. */
  flush(): Promise<void> {
    this.scheduled = false;
    const invocations = this.invocations;
    const logs = this.logs;
    if (invocations.length > 0 || logs.length > 0) {
      this.invocations = [];
      this.logs = [];
      this.writing = this.writing.then(() => this.store.writeBatch({ invocations, logs }).catch(this.onError));
    }
    return this.writing;
  }
}
