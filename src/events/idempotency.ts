/**
 * "Run once per key": a repeat of a keyed request inside its window gets the first
 * request's answer instead of running again. Concurrent repeats wait for the first;
 * later ones read the answer from the store. The key is written in the same
 * transaction as the work it guards whenever the work calls `claim` as it journals.
 */
import type { Store } from '../store/index.js';
import type { Journal } from './journal.js';

export interface Once<T> {
  value: T;
  /** True when this request repeated an earlier one and nothing ran. */
  repeated: boolean;
}

export class Idempotency {
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: Store,
    private readonly journal: Journal,
  ) {}

  async once<T>(scope: string, key: string, windowMs: number, run: (claim: (value: T) => void) => Promise<T>): Promise<Once<T>> {
    const id = `${scope}\u0000${key}`;
    const pending = this.pending.get(id) as Promise<T> | undefined;
    if (pending) return { value: await pending, repeated: true };

    let ran = false;
    const work = (async () => {
      const previous = await this.store.getKey(scope, key, Date.now());
      if (previous !== undefined) return JSON.parse(previous) as T;
      ran = true;
      let claimed = false;
      const claim = (value: T) => {
        claimed = true;
        this.journal.write({ op: 'putKey', scope, key, value: JSON.stringify(value), expiresAt: Date.now() + windowMs });
      };
      const value = await run(claim);
      if (!claimed) {
        claim(value);
        await this.journal.commit();
      }
      return value;
    })();
    this.pending.set(id, work);
    try {
      const value = await work;
      return { value, repeated: !ran };
    } finally {
      this.pending.delete(id);
    }
  }
}
