/**
 * The environments of one function. Isolation decides reuse:
 *  - warm:   any idle environment of the function is reused;
 *  - tenant: only an environment already bound to the same tenant is reused;
 *  - fresh:  an environment runs exactly one invocation, then is killed.
 * Initialised but unbound environments are kept ready so a fresh or first-for-tenant
 * invocation does not pay for a process start; the ready pool grows with demand,
 * refills in the background and shrinks when idle.
 */
import type { FunctionSpec } from '../types.js';
import type { EnvironmentBudget, EvictionSource } from './budget.js';
import { Environment, type EnvironmentOptions } from './environment.js';

const WARM_KEY = '*';

export interface PoolStats {
  ready: number;
  idle: number;
  busy: number;
  starting: number;
}

interface Waiter {
  key: string;
  resolve: (env: Environment) => void;
}

export class FunctionPool implements EvictionSource {
  readonly spec: FunctionSpec;
  private readonly ready: Environment[] = [];
  private readonly idle = new Map<string, Environment[]>();
  private readonly busy = new Set<Environment>();
  private readonly waiters: Waiter[] = [];
  private startingForReady = 0;
  private startingForWaiters = 0;
  /** Ready-pool claims in the current and previous second, to size the pool to demand. */
  private claims = { current: 0, previous: 0, window: 0 };
  private closed = false;
  /** Init failed last time: start environments only on demand, so a broken function does not respawn forever. */
  private initFailing = false;

  constructor(
    private readonly options: Omit<EnvironmentOptions, 'spec'> & { spec: FunctionSpec },
    private readonly budget: EnvironmentBudget,
  ) {
    this.spec = options.spec;
    budget.register(this);
    this.refill();
  }

  keyFor(tenantId: string | undefined): string {
    return this.spec.isolation === 'warm' ? WARM_KEY : (tenantId ?? '');
  }

  /** An environment for this tenant, bound and marked busy. */
  async acquire(tenantId: string | undefined): Promise<Environment> {
    const key = this.keyFor(tenantId);
    const env = this.takeIdle(key) ?? this.takeReady(key);
    if (env) return this.markBusy(env);
    return new Promise<Environment>((resolve) => {
      this.waiters.push({ key, resolve });
      void this.startForWaiter();
    });
  }

  /** Returns an environment after an invocation; `reusable` is false when it must die. */
  release(env: Environment, reusable: boolean): void {
    this.busy.delete(env);
    if (!reusable || this.spec.isolation === 'fresh' || this.closed || env.state !== 'ready') {
      env.kill();
      return;
    }
    const index = this.waiters.findIndex((w) => w.key === env.key);
    if (index >= 0) {
      const [waiter] = this.waiters.splice(index, 1);
      waiter!.resolve(this.markBusy(env));
      return;
    }
    const list = this.idle.get(env.key!) ?? [];
    list.push(env);
    this.idle.set(env.key!, list);
    this.budget.poke();
  }

  stats(): PoolStats {
    let idle = 0;
    for (const list of this.idle.values()) idle += list.length;
    return {
      ready: this.ready.length,
      idle,
      busy: this.busy.size,
      starting: this.startingForReady + this.startingForWaiters,
    };
  }

  /** Live environment ids and pids, for tooling. */
  pids(): number[] {
    const all = [...this.ready, ...this.busy, ...[...this.idle.values()].flat()];
    return all.map((env) => env.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** Kills environments idle past the function's idle timeout, and ready ones beyond demand. */
  reap(now: number): void {
    const idleLimit = this.spec.idleTimeoutSeconds * 1000;
    for (const [key, list] of this.idle) {
      const keep = list.filter((env) => now - env.lastUsed < idleLimit);
      for (const env of list) if (!keep.includes(env)) env.kill();
      if (keep.length === 0) this.idle.delete(key);
      else this.idle.set(key, keep);
    }
    const target = this.readyTarget();
    while (this.ready.length > target) {
      const oldest = this.ready[0]!;
      if (now - oldest.lastUsed < idleLimit) break;
      this.ready.shift()!.kill();
    }
  }

  oldestIdle(): number | undefined {
    let oldest: number | undefined;
    for (const list of this.idle.values()) {
      const at = list[0]?.lastUsed;
      if (at !== undefined && (oldest === undefined || at < oldest)) oldest = at;
    }
    return oldest;
  }

  evictOldestIdle(): void {
    let found: [string, Environment[]] | undefined;
    for (const entry of this.idle) {
      if (!found || entry[1][0]!.lastUsed < found[1][0]!.lastUsed) found = entry;
    }
    if (!found) return;
    const env = found[1].shift()!;
    if (found[1].length === 0) this.idle.delete(found[0]);
    env.kill();
  }

  /** Stops taking work, waits for running invocations, then kills every environment. */
  async close(): Promise<void> {
    this.closed = true;
    this.budget.unregister(this);
    while (this.busy.size > 0 || this.waiters.length > 0) await new Promise((r) => setTimeout(r, 10));
    for (const env of [...this.ready, ...[...this.idle.values()].flat()]) env.kill();
    this.ready.length = 0;
    this.idle.clear();
  }

  private markBusy(env: Environment): Environment {
    this.busy.add(env);
    return env;
  }

  private takeIdle(key: string): Environment | undefined {
    if (this.spec.isolation === 'fresh') return undefined;
    const list = this.idle.get(key);
    const env = list?.pop();
    if (list && list.length === 0) this.idle.delete(key);
    return env;
  }

  private takeReady(key: string): Environment | undefined {
    const env = this.ready.shift();
    if (!env) return undefined;
    this.countClaim();
    env.key = key;
    this.refill();
    return env;
  }

  /** Ready environments to keep: the configured minimum, or last second's claims if demand is higher. */
  private readyTarget(): number {
    this.countClaim(0);
    return Math.min(32, Math.max(this.spec.prewarm, this.claims.previous, this.claims.current));
  }

  private countClaim(n = 1): void {
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.claims.window) {
      this.claims.previous = second === this.claims.window + 1 ? this.claims.current : 0;
      this.claims.current = 0;
      this.claims.window = second;
    }
    this.claims.current += n;
  }

  private refill(): void {
    if (this.closed || this.initFailing) return;
    const target = this.readyTarget();
    while (this.ready.length + this.startingForReady < target && this.budget.tryTake()) {
      this.startingForReady++;
      const env = this.spawn();
      void env.ready().then(() => {
        this.startingForReady--;
        this.initFailing = env.state === 'failed';
        if (env.state === 'dead') return;
        // A waiter may have queued while this environment started: serve it first.
        const waiter = this.waiters.shift();
        if (waiter) {
          env.key = waiter.key;
          waiter.resolve(this.markBusy(env));
        } else if (this.closed) {
          env.kill();
        } else {
          this.ready.push(env);
        }
      });
    }
  }

  private async startForWaiter(): Promise<void> {
    // Environments already starting will serve the queue as they become ready.
    if (this.startingForReady + this.startingForWaiters >= this.waiters.length) return;
    this.startingForWaiters++;
    await this.budget.take();
    const env = this.spawn();
    await env.ready();
    this.startingForWaiters--;
    this.initFailing = env.state === 'failed';
    const waiter = this.waiters.shift();
    if (!waiter) {
      if (env.state === 'ready' && !this.closed) this.ready.push(env);
      else env.kill();
      return;
    }
    env.key = waiter.key;
    waiter.resolve(this.markBusy(env));
  }

  private spawn(): Environment {
    return new Environment(this.options, (env) => {
      this.forget(env);
      this.budget.release();
      if (!this.closed) this.refill();
    });
  }

  private forget(env: Environment): void {
    this.busy.delete(env);
    const readyIndex = this.ready.indexOf(env);
    if (readyIndex >= 0) this.ready.splice(readyIndex, 1);
    if (env.key !== undefined) {
      const list = this.idle.get(env.key);
      const index = list?.indexOf(env) ?? -1;
      if (index >= 0) list!.splice(index, 1);
      if (list && list.length === 0) this.idle.delete(env.key);
    }
  }
}
