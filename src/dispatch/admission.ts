/**
 * Admission: how many invocations may run at once, for the installation, each
 * function, each group of functions and each tenant, and who goes first.
 *
 * Capacity is split as in Lambda: a function's `reservedConcurrency` (or a group's
 * `reserved`) is taken out of the account's concurrency and can be used only by it;
 * everything else shares what is left. `maxConcurrency` caps without reserving.
 * Synchronous callers are admitted before queued async work and wait at most
 * `syncWait` before they are throttled; async work waits as long as it takes (its
 * event stays in its durable queue meanwhile). Lowering a limit below what is
 * running stops admissions until the running ones have finished.
 */
import { BerthError } from '../errors.js';
import type { LimitSet } from '../types.js';

export type Priority = 'sync' | 'async';

/** Lambda's throttling reasons, and Berth's for the limits Lambda does not have. */
export type ThrottleReason =
  | 'ConcurrentInvocationLimitExceeded'
  | 'ReservedFunctionConcurrentInvocationLimitExceeded'
  | 'FunctionConcurrentInvocationLimitExceeded'
  | 'GroupConcurrentInvocationLimitExceeded'
  | 'TenantConcurrentInvocationLimitExceeded';

export interface AdmissionRequest {
  functionName: string;
  tenantId?: string;
  priority: Priority;
}

/** Which capacity a running invocation holds. */
type Pool = { kind: 'function' } | { kind: 'group'; name: string } | { kind: 'shared' };

export interface Permit {
  release(): void;
}

interface Waiter {
  request: AdmissionRequest;
  resolve: (permit: Permit) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
  /** Why it could not be admitted the last time it was tried. */
  reason: ThrottleReason;
}

export interface AdmissionStats {
  running: number;
  waitingSync: number;
  waitingAsync: number;
  functions: Record<string, { running: number; waiting: number; throttles: number }>;
  groups: Record<string, { running: number }>;
  tenants: Record<string, { running: number }>;
}

export class Admission {
  private running = 0;
  private sharedInUse = 0;
  private readonly byFunction = new Map<string, number>();
  private readonly byGroup = new Map<string, number>();
  private readonly groupReservedInUse = new Map<string, number>();
  private readonly byTenant = new Map<string, number>();
  private readonly throttles = new Map<string, number>();
  private syncWaiters: Waiter[] = [];
  /** Async waiters per function, served round-robin so one function's backlog does not starve another's. */
  private readonly asyncWaiters = new Map<string, Waiter[]>();
  private groupsOf = new Map<string, string[]>();
  private sharedCapacity = 0;

  constructor(private limits: LimitSet) {
    this.index();
  }

  get current(): LimitSet {
    return this.limits;
  }

  /** Swaps in new limits (already validated); waiting invocations are tried against them at once. */
  setLimits(limits: LimitSet): void {
    this.limits = limits;
    this.index();
    this.pump();
  }

  acquire(request: AdmissionRequest): Promise<Permit> {
    const waitingAhead = request.priority === 'sync' ? this.syncWaiters.length > 0 : this.syncWaiters.length > 0 || this.asyncWaiters.size > 0;
    if (!waitingAhead) {
      const granted = this.tryAdmit(request);
      if (typeof granted !== 'string') return Promise.resolve(granted);
    }
    return new Promise<Permit>((resolve, reject) => {
      const waiter: Waiter = { request, resolve, reject, reason: 'ConcurrentInvocationLimitExceeded' };
      if (request.priority === 'sync') {
        waiter.timer = setTimeout(() => this.throttle(waiter), this.limits.syncWaitMs).unref();
        this.syncWaiters.push(waiter);
      } else {
        const list = this.asyncWaiters.get(request.functionName) ?? [];
        list.push(waiter);
        this.asyncWaiters.set(request.functionName, list);
      }
      this.pump();
    });
  }

  stats(): AdmissionStats {
    let waitingAsync = 0;
    for (const list of this.asyncWaiters.values()) waitingAsync += list.length;
    const waiting = new Map<string, number>();
    for (const waiter of this.syncWaiters) waiting.set(waiter.request.functionName, (waiting.get(waiter.request.functionName) ?? 0) + 1);
    for (const [name, list] of this.asyncWaiters) waiting.set(name, (waiting.get(name) ?? 0) + list.length);
    const functions: AdmissionStats['functions'] = {};
    for (const name of new Set([...this.byFunction.keys(), ...this.throttles.keys(), ...this.limits.functions.keys(), ...waiting.keys()])) {
      functions[name] = { running: this.byFunction.get(name) ?? 0, waiting: waiting.get(name) ?? 0, throttles: this.throttles.get(name) ?? 0 };
    }
    const groups: AdmissionStats['groups'] = {};
    for (const name of this.limits.groups.keys()) groups[name] = { running: this.byGroup.get(name) ?? 0 };
    const tenants: AdmissionStats['tenants'] = {};
    for (const [key, running] of this.byTenant) tenants[key.replace('\u0000', '/')] = { running };
    return { running: this.running, waitingSync: this.syncWaiters.length, waitingAsync, functions, groups, tenants };
  }

  /**
   * What follows from the limits alone, worked out when they change rather than per admission:
   * group membership, each group's running count (membership can change live) and the
   * capacity left to everyone without a reservation of their own.
   */
  private index(): void {
    let reserved = 0;
    for (const fn of this.limits.functions.values()) reserved += fn.reservedConcurrency ?? 0;
    for (const group of this.limits.groups.values()) reserved += group.reserved ?? 0;
    this.sharedCapacity = this.limits.accountConcurrency - reserved;
    this.groupsOf = new Map();
    this.byGroup.clear();
    for (const [name, group] of this.limits.groups) {
      for (const fn of group.functions) {
        this.groupsOf.set(fn, [...(this.groupsOf.get(fn) ?? []), name]);
        const running = this.byFunction.get(fn) ?? 0;
        if (running > 0) this.byGroup.set(name, (this.byGroup.get(name) ?? 0) + running);
      }
    }
  }

  private tryAdmit(request: AdmissionRequest): Permit | ThrottleReason {
    const { functionName, tenantId } = request;
    const fn = this.limits.functions.get(functionName) ?? {};
    const running = this.byFunction.get(functionName) ?? 0;
    if (fn.maxConcurrency !== undefined && running >= fn.maxConcurrency) return 'FunctionConcurrentInvocationLimitExceeded';
    const tenantKey = tenantId === undefined ? undefined : `${functionName}\u0000${tenantId}`;
    if (tenantKey !== undefined && fn.tenantConcurrency !== undefined && (this.byTenant.get(tenantKey) ?? 0) >= fn.tenantConcurrency) {
      return 'TenantConcurrentInvocationLimitExceeded';
    }
    const groups = this.groupsOf.get(functionName) ?? [];
    for (const name of groups) {
      const group = this.limits.groups.get(name)!;
      const cap = group.maxConcurrency ?? group.reserved;
      if (cap !== undefined && (this.byGroup.get(name) ?? 0) >= cap) return 'GroupConcurrentInvocationLimitExceeded';
    }

    let pool: Pool | undefined;
    if (fn.reservedConcurrency !== undefined) {
      if (running >= fn.reservedConcurrency) return 'ReservedFunctionConcurrentInvocationLimitExceeded';
      pool = { kind: 'function' };
    } else {
      const withRoom = groups.find((name) => (this.groupReservedInUse.get(name) ?? 0) < (this.limits.groups.get(name)!.reserved ?? 0));
      if (withRoom !== undefined) pool = { kind: 'group', name: withRoom };
      else if (this.sharedInUse < this.sharedCapacity) pool = { kind: 'shared' };
      else return 'ConcurrentInvocationLimitExceeded';
    }
    // The pools add up to the account only while the reservations stay put: invocations still
    // holding a reservation that was removed (or shared capacity a new one took) count here.
    if (this.running >= this.limits.accountConcurrency) return 'ConcurrentInvocationLimitExceeded';
    return this.grant(functionName, tenantKey, pool);
  }

  private grant(functionName: string, tenantKey: string | undefined, pool: Pool): Permit {
    this.count(functionName, tenantKey, pool, 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.count(functionName, tenantKey, pool, -1);
        this.pump();
      },
    };
  }

  private count(functionName: string, tenantKey: string | undefined, pool: Pool, delta: number): void {
    this.running += delta;
    addTo(this.byFunction, functionName, delta);
    if (tenantKey !== undefined) addTo(this.byTenant, tenantKey, delta);
    // The groups it is in now, which may differ from when it was admitted.
    for (const name of this.groupsOf.get(functionName) ?? []) addTo(this.byGroup, name, delta);
    if (pool.kind === 'shared') this.sharedInUse += delta;
    else if (pool.kind === 'group') addTo(this.groupReservedInUse, pool.name, delta);
  }

  /** Admits whoever can run now: synchronous callers first, then async work, one function at a time in turn. */
  private pump(): void {
    if (this.syncWaiters.length > 0) this.syncWaiters = this.syncWaiters.filter((waiter) => !this.admitWaiter(waiter));
    let progressed = true;
    while (progressed && this.asyncWaiters.size > 0) {
      progressed = false;
      for (const [name, list] of [...this.asyncWaiters]) {
        if (!this.admitWaiter(list[0]!)) continue;
        progressed = true;
        list.shift();
        // Round-robin: the function just served goes to the back.
        this.asyncWaiters.delete(name);
        if (list.length > 0) this.asyncWaiters.set(name, list);
      }
    }
  }

  private admitWaiter(waiter: Waiter): boolean {
    const granted = this.tryAdmit(waiter.request);
    if (typeof granted === 'string') {
      waiter.reason = granted;
      return false;
    }
    clearTimeout(waiter.timer);
    waiter.resolve(granted);
    return true;
  }

  private throttle(waiter: Waiter): void {
    const at = this.syncWaiters.indexOf(waiter);
    if (at < 0) return;
    this.syncWaiters.splice(at, 1);
    const name = waiter.request.functionName;
    this.throttles.set(name, (this.throttles.get(name) ?? 0) + 1);
    waiter.reject(new BerthError('BERTH_ERR_THROTTLED', { fn: name, reason: waiter.reason, waitMs: this.limits.syncWaitMs }));
  }
}

/** A count that disappears at zero, so maps hold only what is running. */
function addTo(map: Map<string, number>, key: string, delta: number): void {
  const next = (map.get(key) ?? 0) + delta;
  if (next === 0) map.delete(key);
  else map.set(key, next);
}
