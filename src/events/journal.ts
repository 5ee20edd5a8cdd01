/**
 * Group commit for event state. Every write issued in the same turn of the event
 * loop lands in one transaction, so a burst of sends costs one commit, and a
 * caller who awaits `commit()` knows its writes are durable before it answers.
 */
import type { EventWrite, Store } from '../store/index.js';

export class Journal {
  private pending: EventWrite[] = [];
  private committed: Promise<void> | undefined;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    /** Writes nobody awaits (acks, visibility changes) report failures here. */
    private readonly onError: (err: unknown) => void,
  ) {}

  write(...writes: EventWrite[]): void {
    this.pending.push(...writes);
    this.committed ??= this.schedule();
  }

  /** Resolves when every write issued so far is durable; rejects if their transaction failed. */
  commit(): Promise<void> {
    return this.committed ?? (this.tail as Promise<void>);
  }

  /** Like write(), for callers that do not wait: a failure is reported, not thrown. */
  writeBehind(...writes: EventWrite[]): void {
    this.write(...writes);
    this.commit().catch(this.onError);
  }

  private schedule(): Promise<void> {
    // Transactions apply in order; a failed one does not block the next.
    const run = this.tail
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => {
        const batch = this.pending;
        this.pending = [];
        this.committed = undefined;
        return this.store.writeEvents(batch);
      });
    this.tail = run.catch(() => {});
    return run;
  }
}
