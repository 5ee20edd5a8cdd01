/**
 * Installation-wide limits on environments:
 *  - live environments (processes) are capped; when the cap is reached, the least
 *    recently used idle environment of any pool is stopped to make room;
 *  - process starts run a few at a time, because starting Node is CPU-bound and a
 *    burst of hundreds of starts on a small machine only slows every one of them.
 * Pools ask with tryBeginStart() and are called back (onCapacity) when room appears.
 */
import os from 'node:os';

export interface BudgetMember {
  /** The least recently used idle environment's last-use time, if any. */
  oldestIdle(): number | undefined;
  /** Kills that environment; its slot comes back through release(). */
  evictOldestIdle(): void;
  /** Room appeared: a pool with waiting invocations may start an environment now. */
  onCapacity(): void;
}

export class EnvironmentBudget {
  private live = 0;
  private starting = 0;
  /** Evictions asked for whose environments have not exited yet. */
  private evicting = 0;
  private readonly members = new Set<BudgetMember>();
  readonly maxStarts: number;

  constructor(
    readonly max: number,
    maxStarts = Math.max(2, os.availableParallelism()),
  ) {
    this.maxStarts = maxStarts;
  }

  register(member: BudgetMember): void {
    this.members.add(member);
  }

  unregister(member: BudgetMember): void {
    this.members.delete(member);
  }

  /**
   * Reserves a live slot and a start slot for a new environment, if both are free now.
   * When only the live cap is in the way, an idle environment is evicted and the caller
   * hears about it through onCapacity().
   */
  tryBeginStart(): boolean {
    if (this.starting >= this.maxStarts) return false;
    if (this.live >= this.max) {
      if (this.evicting === 0) this.evictOne();
      return false;
    }
    this.live++;
    this.starting++;
    return true;
  }

  /** The environment started (or failed to); its live slot stays taken until release(). */
  endStart(): void {
    this.starting--;
    this.notify();
  }

  /** An environment has exited. */
  release(): void {
    this.live--;
    if (this.evicting > 0) this.evicting--;
    this.notify();
  }

  private notify(): void {
    for (const member of this.members) member.onCapacity();
  }

  private evictOne(): void {
    let oldest: BudgetMember | undefined;
    let oldestAt = Infinity;
    for (const member of this.members) {
      const at = member.oldestIdle();
      if (at !== undefined && at < oldestAt) {
        oldest = member;
        oldestAt = at;
      }
    }
    if (!oldest) return;
    this.evicting++;
    oldest.evictOldestIdle();
  }
}
