/**
 * The installation-wide cap on live environments (processes). When it is full, a
 * pool that needs a new environment evicts the least recently used idle one from
 * any pool, or waits its turn; waiting pools are served first come, first served.
 */
export interface EvictionSource {
  /** The least recently used idle environment's last-use time, if any. */
  oldestIdle(): number | undefined;
  /** Kills that environment; its slot comes back through release(). */
  evictOldestIdle(): void;
}

export class EnvironmentBudget {
  private used = 0;
  /** Evictions asked for whose environments have not exited yet. */
  private evicting = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly sources = new Set<EvictionSource>();

  constructor(readonly max: number) {}

  register(source: EvictionSource): void {
    this.sources.add(source);
  }

  unregister(source: EvictionSource): void {
    this.sources.delete(source);
  }

  get inUse(): number {
    return this.used;
  }

  /** Takes a slot if one is free right now, without evicting anything. */
  tryTake(): boolean {
    if (this.used >= this.max) return false;
    this.used++;
    return true;
  }

  /** Takes a slot, evicting an idle environment or waiting if the cap is reached. */
  take(): Promise<void> {
    if (this.tryTake()) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.evictForWaiters();
    });
  }

  /** A slot's environment has exited. */
  release(): void {
    if (this.evicting > 0) this.evicting--;
    const next = this.waiters.shift();
    if (next) next();
    else this.used--;
  }

  /** Idle environments appeared; evict some if pools are waiting for slots. */
  poke(): void {
    this.evictForWaiters();
  }

  private evictForWaiters(): void {
    while (this.evicting < this.waiters.length) {
      let oldest: EvictionSource | undefined;
      let oldestAt = Infinity;
      for (const source of this.sources) {
        const at = source.oldestIdle();
        if (at !== undefined && at < oldestAt) {
          oldest = source;
          oldestAt = at;
        }
      }
      if (!oldest) return;
      this.evicting++;
      oldest.evictOldestIdle();
    }
  }
}
