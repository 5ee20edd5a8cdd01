/**
 * The environments of one function. Isolation decides reuse:
 *  - warm:   any idle environment of the function is reused;
 *  - tenant: only an environment already bound to the same tenant is reused;
 *  - fresh:  an environment runs exactly one invocation, then is killed.
 *
 * Initialised but unbound environments are kept ready so a fresh or first-for-tenant
 * invocation does not pay for a process start; the ready pool follows demand,
 * refills in the background and shrinks when idle, to zero once the function has
 * not been called for its idle timeout (provisioned environments excepted).
 *
 * Scale-out: a request that finds no idle environment for its key starts a new one,
 * unless recent invocation times say the environments already running for that key
 * will serve it within QUEUE_BUDGET_MS. For sub-millisecond handlers that avoids a
 * process per connection, which on a small machine costs more in context switches than
 * it gains in parallelism; slow handlers still get one environment per concurrent
 * request, as on Lambda.
 */
import type { FunctionSpec } from '../types.js';
import type { BudgetMember, EnvironmentBudget } from './budget.js';
import { Environment, type EnvironmentOptions, type Sandbox } from './environment.js';
import { RuntimeApiEnvironment } from './runtime-api.js';

const WARM_KEY = '*';
/** Queue behind busy environments only while the expected wait stays under this. */
const QUEUE_BUDGET_MS = 2;
/**
 * What an invocation occupies an environment for beyond the handler's own time: the
 * IPC round trip. Measured from the platform's side instead, the occupancy would grow
 * with CPU contention and make the pool add processes exactly when that hurts most.
 */
const IPC_OVERHEAD_MS = 0.1;
const OCCUPANCY_SAMPLES = 31;
const MAX_READY = 32;
const REFILL_DELAY_MS = 15;

export interface PoolStats {
  ready: number;
  idle: number;
  busy: number;
  starting: number;
}

interface Waiter {
  key: string;
  resolve: (env: Sandbox) => void;
}

export class FunctionPool implements BudgetMember {
  readonly spec: FunctionSpec;
  private readonly ready: Sandbox[] = [];
  private readonly idle = new Map<string, Sandbox[]>();
  /** Environments with invocations outstanding, and how many (1, or 2 when one is queued). */
  private readonly busy = new Map<Sandbox, number>();
  private readonly busyByKey = new Map<string, number>();
  private readonly waiters: Waiter[] = [];
  /** Environments being started for a waiting key, and for the ready pool. */
  private readonly startingByKey = new Map<string, number>();
  private startingForReady = 0;
  /**
   * Recent occupancy samples (ms), to judge whether waiting beats starting. Their median
   * ignores the outliers a descheduled sandbox produces under load.
   */
  private readonly occupancy: number[] = [];
  private occupancyNext = 0;
  /** The median of `occupancy`, recomputed only after a new sample. */
  private occupancyMedian: number | undefined;
  private occupancyStale = false;
  /** Ready-pool claims in the current and previous second, to size the pool to demand. */
  private claims = { current: 0, previous: 0, window: 0 };
  /** Environments kept initialised: berth.yml's provisionedConcurrency, or a live change of it. */
  private provisioned: number;
  /** When an invocation last asked for an environment: the ready pool lives idleTimeout past it. */
  private lastDemand = Date.now();
  private closed = false;
  private refillTimer: NodeJS.Timeout | undefined;
  /** Init failed last time: start environments only on demand, so a broken function does not respawn forever. */
  private initFailing = false;

  constructor(
    private readonly options: Omit<EnvironmentOptions, 'spec'> & { spec: FunctionSpec },
    private readonly budget: EnvironmentBudget,
  ) {
    this.spec = options.spec;
    this.provisioned = options.spec.provisionedConcurrency;
    budget.register(this);
    this.refill();
  }

  private keyFor(tenantId: string | undefined): string {
    return this.spec.isolation === 'warm' ? WARM_KEY : (tenantId ?? '');
  }

  /**
   * An environment for this tenant, bound and counted busy: an idle one, else (for fast
   * handlers) a running one with nothing queued yet, else one that frees up or starts.
   */
  acquire(tenantId: string | undefined): Promise<Sandbox> {
    this.lastDemand = Date.now();
    const key = this.keyFor(tenantId);
    const env = this.takeIdle(key) ?? this.pipelinable(key);
    if (env) return Promise.resolve(this.markBusy(env, key));
    return new Promise<Sandbox>((resolve) => {
      this.waiters.push({ key, resolve });
      this.scale();
    });
  }

  /**
   * Returns an environment after an invocation; `reusable` is false when it must die.
   * `handlerMs` is the handler's own duration, as measured in the sandbox.
   */
  release(env: Sandbox, reusable: boolean, handlerMs: number | undefined): void {
    const key = env.key!;
    const outstanding = (this.busy.get(env) ?? 1) - 1;
    // An environment that died is already forgotten (and uncounted) by its exit handler.
    if (this.busy.has(env)) {
      if (outstanding > 0) this.busy.set(env, outstanding);
      else {
        this.busy.delete(env);
        this.busyByKey.set(key, this.busyByKey.get(key)! - 1);
      }
    }
    if (handlerMs !== undefined) {
      this.occupancy[this.occupancyNext] = handlerMs + IPC_OVERHEAD_MS;
      this.occupancyNext = (this.occupancyNext + 1) % OCCUPANCY_SAMPLES;
      this.occupancyStale = true;
    }
    if (!reusable || this.spec.isolation === 'fresh' || this.closed || env.state === 'dead' || env.state === 'failed') {
      if (outstanding <= 0) env.kill();
      return;
    }
    // Hand the environment on to waiters of its tenant while it has room for them.
    for (;;) {
      const assigned = this.busy.get(env) ?? 0;
      if (assigned > 1 || (assigned === 1 && !(this.canPipeline() && env.canQueue))) break;
      const index = this.waiters.findIndex((w) => w.key === key);
      if (index < 0) break;
      const [waiter] = this.waiters.splice(index, 1);
      waiter!.resolve(this.markBusy(env, key));
    }
    if (!this.busy.has(env)) {
      const list = this.idle.get(key) ?? [];
      list.push(env);
      this.idle.set(key, list);
    }
  }

  /** A live change of provisioned concurrency: more start now; fewer are reaped once idle past the timeout. */
  setProvisioned(count: number): void {
    if (count === this.provisioned) return;
    this.provisioned = count;
    this.refill();
  }

  onCapacity(): void {
    if (this.waiters.length > 0) this.scale();
    else this.refill();
  }

  stats(): PoolStats {
    let idle = 0;
    for (const list of this.idle.values()) idle += list.length;
    let starting = this.startingForReady;
    for (const n of this.startingByKey.values()) starting += n;
    return { ready: this.ready.length, idle, busy: this.busy.size, starting };
  }

  /**
   * An environment outside the pool, for a service instance running start(): it never takes
   * invocations, and `onExit` hears when it ends.
   */
  spawnDetached(onExit: (env: Sandbox) => void): Sandbox {
    return this.create(onExit);
  }

  /** Process ids of live environments, for tooling. */
  pids(): number[] {
    const all = [...this.ready, ...this.busy.keys(), ...[...this.idle.values()].flat()];
    return all.map((env) => env.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** Kills environments idle past the function's idle timeout, and ready ones beyond demand. */
  reap(now: number): void {
    const idleLimit = this.spec.idleTimeoutSeconds * 1000;
    // Provisioned environments are never reaped: stop once only that many would be left.
    let spare = this.liveEnvironments() - this.provisioned;
    for (const [key, list] of this.idle) {
      const keep = list.filter((env) => now - env.lastUsed < idleLimit || spare-- <= 0);
      for (const env of list) if (!keep.includes(env)) env.kill();
      if (keep.length === 0) this.idle.delete(key);
      else this.idle.set(key, keep);
    }
    const target = this.readyTarget();
    while (this.ready.length > target && now - this.ready[0]!.lastUsed >= idleLimit) this.ready.shift()!.kill();
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
    let found: [string, Sandbox[]] | undefined;
    for (const entry of this.idle) {
      if (!found || entry[1][0]!.lastUsed < found[1][0]!.lastUsed) found = entry;
    }
    if (!found) return;
    const env = found[1].shift()!;
    if (found[1].length === 0) this.idle.delete(found[0]);
    env.kill();
  }

  /** Stops taking work, waits for running and queued invocations, then kills every environment. */
  async close(): Promise<void> {
    while (this.busy.size > 0 || this.waiters.length > 0) await new Promise((r) => setTimeout(r, 10));
    this.closed = true;
    clearTimeout(this.refillTimer);
    this.budget.unregister(this);
    for (const env of [...this.ready, ...[...this.idle.values()].flat()]) env.kill();
    this.ready.length = 0;
    this.idle.clear();
  }

  /**
   * Makes sure every waiting key has an environment coming: a ready one now, or a
   * start, within the budget's start slots. Called whenever waiters, environments or
   * the budget change.
   */
  private scale(): void {
    if (this.closed) return;
    const waitingByKey = new Map<string, number>();
    for (const waiter of this.waiters) waitingByKey.set(waiter.key, (waitingByKey.get(waiter.key) ?? 0) + 1);
    for (const [key, waiting] of waitingByKey) {
      let needed = this.environmentsNeeded(key, waiting);
      for (; needed > 0; needed--) {
        const ready = this.takeReady();
        if (ready) {
          this.hand(this.waiters.find((w) => w.key === key)!, ready);
          continue;
        }
        if (!this.budget.tryBeginStart()) return;
        void this.startFor(key);
      }
    }
  }

  /**
   * How many more environments the waiters of a key need, beyond those starting for it.
   * Waiting behind busy environments is preferred while the expected wait is short.
   */
  private environmentsNeeded(key: string, waiting: number): number {
    const starting = this.startingByKey.get(key) ?? 0;
    const uncovered = waiting - starting;
    if (uncovered <= 0) return 0;
    const busy = this.busyByKey.get(key) ?? 0;
    if (this.spec.isolation === 'fresh' || busy === 0) return uncovered;
    // Without a measured duration, scale out one at a time until the first result arrives.
    const occupancyMs = this.medianOccupancy();
    if (occupancyMs === undefined) return starting === 0 ? 1 : 0;
    const capacity = busy + starting;
    const expectedWaitMs = (waiting / capacity) * occupancyMs;
    if (expectedWaitMs <= QUEUE_BUDGET_MS) return 0;
    const wanted = Math.ceil((waiting * occupancyMs) / QUEUE_BUDGET_MS) - capacity;
    return Math.max(1, Math.min(uncovered, wanted));
  }

  private medianOccupancy(): number | undefined {
    if (this.occupancyStale) {
      const sorted = [...this.occupancy].sort((a, b) => a - b);
      this.occupancyMedian = sorted[sorted.length >> 1];
      this.occupancyStale = false;
    }
    return this.occupancyMedian;
  }

  private hand(waiter: Waiter, env: Sandbox): void {
    this.waiters.splice(this.waiters.indexOf(waiter), 1);
    waiter.resolve(this.markBusy(env, waiter.key));
  }

  private markBusy(env: Sandbox, key: string): Sandbox {
    env.key = key;
    const outstanding = this.busy.get(env) ?? 0;
    this.busy.set(env, outstanding + 1);
    if (outstanding === 0) this.busyByKey.set(key, (this.busyByKey.get(key) ?? 0) + 1);
    return env;
  }

  /**
   * Queueing a second invocation inside a running environment pays off only when
   * handlers are fast: the sandbox then finds its next message waiting instead of being
   * woken for it. Slow handlers get another environment instead.
   */
  private canPipeline(): boolean {
    if (this.spec.isolation === 'fresh') return false;
    const occupancyMs = this.medianOccupancy();
    return occupancyMs !== undefined && occupancyMs <= QUEUE_BUDGET_MS;
  }

  /** A running environment of this key with room for a queued invocation, if pipelining pays. */
  private pipelinable(key: string): Sandbox | undefined {
    if (!this.canPipeline()) return undefined;
    for (const [env, outstanding] of this.busy) {
      if (outstanding === 1 && env.key === key && env.canQueue && env.state === 'busy') return env;
    }
    return undefined;
  }

  private takeIdle(key: string): Sandbox | undefined {
    if (this.spec.isolation === 'fresh') return undefined;
    const list = this.idle.get(key);
    const env = list?.pop();
    if (list && list.length === 0) this.idle.delete(key);
    return env;
  }

  private takeReady(): Sandbox | undefined {
    const env = this.ready.shift();
    if (!env) return undefined;
    this.countClaim();
    this.scheduleRefill();
    return env;
  }

  /**
   * Starting a process costs the platform a few ms of CPU (fork/exec) plus a core for the
   * child's boot; doing it the moment an environment is claimed would slow the very
   * invocation that claimed it. So the replacement starts a moment later.
   */
  private scheduleRefill(): void {
    if (this.refillTimer) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      this.refill();
    }, REFILL_DELAY_MS);
  }

  /**
   * Ready environments to keep: the configured minimum, or recent claims per second if demand
   * is higher, or as many as provisioned concurrency needs beside the busy and idle ones.
   */
  private readyTarget(): number {
    this.countClaim(0);
    const provisioned = this.provisioned - (this.liveEnvironments() - this.ready.length);
    // A service runs exactly the instances it is sized to: none pre-warmed beyond minInstances.
    if (this.spec.mode === 'service') return Math.max(0, provisioned);
    // A function nobody has called for its idle timeout scales to zero, pre-warmed ones included.
    if (Date.now() - this.lastDemand >= this.spec.idleTimeoutSeconds * 1000) return Math.max(0, provisioned);
    return Math.max(provisioned, Math.min(MAX_READY, Math.max(this.spec.prewarm, this.claims.previous, this.claims.current)));
  }

  /** Started environments: ready, idle and busy. */
  private liveEnvironments(): number {
    let idle = 0;
    for (const list of this.idle.values()) idle += list.length;
    return this.ready.length + idle + this.busy.size;
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
    while (this.ready.length + this.startingForReady < target && this.waiters.length === 0 && this.budget.tryBeginStart()) {
      this.startingForReady++;
      const env = this.spawn();
      void env.ready().then(() => {
        this.startingForReady--;
        this.place(env);
        this.budget.endStart();
      });
    }
  }

  private async startFor(key: string): Promise<void> {
    this.startingByKey.set(key, (this.startingByKey.get(key) ?? 0) + 1);
    const env = this.spawn();
    await env.ready();
    this.startingByKey.set(key, this.startingByKey.get(key)! - 1);
    this.place(env, key);
    this.budget.endStart();
  }

  /** A started environment goes to a waiter (of its key first), else to the ready pool. */
  private place(env: Sandbox, key?: string): void {
    this.initFailing = env.state !== 'ready';
    // A waiter takes even an environment whose init failed: its invocation reports the init error.
    const waiter = this.waiters.find((w) => w.key === key) ?? this.waiters[0];
    if (waiter) return this.hand(waiter, env);
    if (this.closed || env.state !== 'ready') env.kill();
    else this.ready.push(env);
  }

  /** A Node sandbox, or for `runtime: provided` the function's own bootstrap behind the Runtime API. */
  private create(onExit: (env: Sandbox) => void): Sandbox {
    return this.spec.runtime === 'provided' ? new RuntimeApiEnvironment(this.options, onExit) : new Environment(this.options, onExit);
  }

  private spawn(): Sandbox {
    return this.create((env) => {
      this.forget(env);
      // Frees the slot and calls onCapacity(): a waiter counting on an environment that died gets another.
      this.budget.release();
    });
  }

  private forget(env: Sandbox): void {
    if (this.busy.delete(env)) this.busyByKey.set(env.key!, this.busyByKey.get(env.key!)! - 1);
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
