/** Checks a set of limits for what cannot be satisfied, for berth.yml and for live changes alike. */
import type { LimitSet } from '../types.js';

const MAX_PROVISIONED = 256;

export function limitProblems(limits: LimitSet, functionNames: Set<string>): string[] {
  const problems: string[] = [];
  const whole = (value: number | undefined, what: string) => {
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) problems.push(`${what} must be a whole number, 0 or more; got ${value}`);
  };
  if (limits.accountConcurrency !== Infinity) whole(limits.accountConcurrency, 'account.concurrency');
  let reserved = 0;
  for (const [name, fn] of limits.functions) {
    if (!functionNames.has(name)) problems.push(`function "${name}" does not exist`);
    whole(fn.maxConcurrency, `${name}.maxConcurrency`);
    whole(fn.reservedConcurrency, `${name}.reservedConcurrency`);
    whole(fn.tenantConcurrency, `${name}.tenantConcurrency`);
    whole(fn.provisionedConcurrency, `${name}.provisionedConcurrency`);
    if ((fn.provisionedConcurrency ?? 0) > MAX_PROVISIONED) problems.push(`${name}.provisionedConcurrency must be at most ${MAX_PROVISIONED}; got ${fn.provisionedConcurrency}`);
    // Lambda's rule: warm environments beyond what may ever run would only cost memory.
    const cap = Math.min(fn.reservedConcurrency ?? Infinity, fn.maxConcurrency ?? Infinity);
    if ((fn.provisionedConcurrency ?? 0) > cap) problems.push(`${name} keeps ${fn.provisionedConcurrency} provisioned environments but may run only ${cap}; lower provisionedConcurrency or raise the limit`);
    reserved += fn.reservedConcurrency ?? 0;
  }
  for (const [name, group] of limits.groups) {
    for (const member of group.functions) {
      if (!functionNames.has(member)) problems.push(`group "${name}" names function "${member}", which does not exist`);
    }
    whole(group.maxConcurrency, `group ${name}.maxConcurrency`);
    whole(group.reserved, `group ${name}.reserved`);
    if (group.reserved !== undefined && group.maxConcurrency !== undefined && group.reserved > group.maxConcurrency) {
      problems.push(`group "${name}" reserves ${group.reserved} but may run only ${group.maxConcurrency}`);
    }
    reserved += group.reserved ?? 0;
  }
  if (reserved > limits.accountConcurrency) {
    problems.push(`reservations add up to ${reserved}, more than account.concurrency (${limits.accountConcurrency}); lower them or raise the account limit`);
  }
  return problems;
}

/**
 * Live changes, laid over berth.yml's limits. `null` removes a limit that berth.yml sets;
 * a key left out keeps berth.yml's value.
 */
export interface LimitOverrides {
  account?: { concurrency?: number | null; syncWaitMs?: number };
  functions?: Record<string, { maxConcurrency?: number | null; reservedConcurrency?: number | null; tenantConcurrency?: number | null; provisionedConcurrency?: number | null }>;
  groups?: Record<string, { maxConcurrency?: number | null; reserved?: number | null }>;
}

export function applyOverrides(base: LimitSet, overrides: LimitOverrides): LimitSet {
  const functions = new Map([...base.functions].map(([name, fn]) => [name, { ...fn }]));
  for (const [name, patch] of Object.entries(overrides.functions ?? {})) functions.set(name, merged(functions.get(name) ?? {}, patch));
  const groups = new Map([...base.groups].map(([name, group]) => [name, { ...group }]));
  for (const [name, patch] of Object.entries(overrides.groups ?? {})) {
    const group = groups.get(name);
    // Live changes tune groups; membership is declared in berth.yml.
    if (group) groups.set(name, { ...merged(group, patch), functions: group.functions });
  }
  const concurrency = overrides.account?.concurrency;
  return {
    accountConcurrency: concurrency === undefined ? base.accountConcurrency : (concurrency ?? Infinity),
    syncWaitMs: overrides.account?.syncWaitMs ?? base.syncWaitMs,
    functions,
    groups,
  };
}

/** Overrides after a patch: the patch's values win, key by key. */
export function combineOverrides(current: LimitOverrides, patch: LimitOverrides): LimitOverrides {
  const byName = <T extends object>(a: Record<string, T> | undefined, b: Record<string, T> | undefined) => {
    const out: Record<string, T> = { ...a };
    for (const [name, value] of Object.entries(b ?? {})) out[name] = { ...out[name], ...value } as T;
    return out;
  };
  return {
    account: { ...current.account, ...patch.account },
    functions: byName(current.functions, patch.functions),
    groups: byName(current.groups, patch.groups),
  };
}

function merged<T extends object>(base: T, patch: Record<string, number | null | undefined>): T {
  const out = { ...base } as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (value !== undefined) out[key] = value;
  }
  return out as T;
}
