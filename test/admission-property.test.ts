/**
 * Property: under any mix of limits, arrivals, priorities, tenants, finishes and live
 * limit changes, admission never lets more run than a limit allows, and once every
 * running invocation has finished nobody who fits the limits is left waiting.
 * fast-check drives the real Admission class with random schedules.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Admission, type Permit, type Priority } from '../src/dispatch/admission.js';
import { limitProblems } from '../src/dispatch/limits.js';
import type { LimitSet } from '../src/types.js';

const FUNCTIONS = ['a', 'b', 'c', 'd'];
const TENANTS = [undefined, 't1', 't2'];

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const limitSet: fc.Arbitrary<LimitSet> = fc
  .record({
    account: fc.integer({ min: 1, max: 12 }),
    functions: fc.array(
      fc.record({ max: maybe(fc.integer({ min: 0, max: 6 })), reserved: maybe(fc.integer({ min: 0, max: 3 })), tenant: maybe(fc.integer({ min: 1, max: 3 })) }),
      { minLength: FUNCTIONS.length, maxLength: FUNCTIONS.length },
    ),
    groups: fc.array(
      fc.record({ members: fc.subarray(FUNCTIONS, { minLength: 1 }), max: maybe(fc.integer({ min: 0, max: 6 })), reserved: maybe(fc.integer({ min: 0, max: 3 })) }),
      { maxLength: 2 },
    ),
  })
  .map(({ account, functions, groups }) => ({
    accountConcurrency: account,
    syncWaitMs: 1_000_000,
    functions: new Map(
      functions.map((fn, i) => [
        FUNCTIONS[i]!,
        {
          ...(fn.max !== undefined ? { maxConcurrency: fn.max } : {}),
          ...(fn.reserved !== undefined ? { reservedConcurrency: fn.reserved } : {}),
          ...(fn.tenant !== undefined ? { tenantConcurrency: fn.tenant } : {}),
        },
      ]),
    ),
    groups: new Map(
      groups.map((g, i) => [
        `g${i}`,
        {
          functions: g.members,
          ...(g.max !== undefined ? { maxConcurrency: g.max } : {}),
          ...(g.reserved !== undefined && (g.max === undefined || g.reserved <= g.max) ? { reserved: g.reserved } : {}),
        },
      ]),
    ),
  }))
  .filter((limits) => limitProblems(limits, new Set(FUNCTIONS)).length === 0);

type Step =
  | { kind: 'arrive'; fn: string; tenant: string | undefined; priority: Priority }
  | { kind: 'finish'; pick: number }
  | { kind: 'limits'; limits: LimitSet };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('arrive' as const), fn: fc.constantFrom(...FUNCTIONS), tenant: fc.constantFrom(...TENANTS), priority: fc.constantFrom<Priority>('sync', 'async') }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('finish' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('limits' as const), limits: limitSet }) },
);

interface Running {
  fn: string;
  tenant: string | undefined;
  permit: Permit;
}

/**
 * Checked as each invocation is admitted, against the limits in force then: the account and
 * the scopes it belongs to must not be over their caps. (Lowering a limit may leave earlier
 * ones running above it; admission must then add none until under.)
 */
function assertAdmissible(limits: LimitSet, running: Running[], admitted: Running): void {
  const count = (pred: (r: Running) => boolean) => running.filter(pred).length;
  assert.ok(running.length <= limits.accountConcurrency, `account ${limits.accountConcurrency}, running ${running.length}`);
  const fn = limits.functions.get(admitted.fn) ?? {};
  const mine = count((r) => r.fn === admitted.fn);
  if (fn.maxConcurrency !== undefined) assert.ok(mine <= fn.maxConcurrency, `${admitted.fn} maxConcurrency ${fn.maxConcurrency}, running ${mine}`);
  if (fn.reservedConcurrency !== undefined) assert.ok(mine <= fn.reservedConcurrency, `${admitted.fn} reservedConcurrency ${fn.reservedConcurrency}, running ${mine}`);
  if (fn.tenantConcurrency !== undefined && admitted.tenant !== undefined) {
    const forTenant = count((r) => r.fn === admitted.fn && r.tenant === admitted.tenant);
    assert.ok(forTenant <= fn.tenantConcurrency, `${admitted.fn}/${admitted.tenant} tenantConcurrency ${fn.tenantConcurrency}, running ${forTenant}`);
  }
  for (const [name, group] of limits.groups) {
    if (!group.functions.includes(admitted.fn)) continue;
    const cap = group.maxConcurrency ?? group.reserved;
    const inGroup = count((r) => group.functions.includes(r.fn));
    if (cap !== undefined) assert.ok(inGroup <= cap, `group ${name} cap ${cap}, running ${inGroup}`);
  }
}

/** Whether limits make it impossible for a function ever to run (a cap of 0, or no capacity it may use). */
function cannotRun(limits: LimitSet, fn: string): boolean {
  const own = limits.functions.get(fn) ?? {};
  const groups = [...limits.groups.values()].filter((g) => g.functions.includes(fn));
  const reservedTotal =
    [...limits.functions.values()].reduce((n, f) => n + (f.reservedConcurrency ?? 0), 0) + [...limits.groups.values()].reduce((n, g) => n + (g.reserved ?? 0), 0);
  const shared = limits.accountConcurrency - reservedTotal;
  if (own.maxConcurrency === 0 || own.reservedConcurrency === 0) return true;
  if (groups.some((g) => (g.maxConcurrency ?? g.reserved) === 0)) return true;
  return own.reservedConcurrency === undefined && shared <= 0 && !groups.some((g) => (g.reserved ?? 0) > 0);
}

test('admission never exceeds a limit and leaves nobody waiting who fits, under random load, limits and changes', async () => {
  await fc.assert(
    fc.asyncProperty(limitSet, fc.array(step, { minLength: 1, maxLength: 120 }), async (initial, steps) => {
      const admission = new Admission(initial);
      let limits = initial;
      const running: Running[] = [];
      const settle = () => new Promise((resolve) => setImmediate(resolve));

      for (const s of steps) {
        if (s.kind === 'arrive') {
          const request = { functionName: s.fn, priority: s.priority, ...(s.tenant !== undefined ? { tenantId: s.tenant } : {}) };
          void admission.acquire(request).then((permit) => {
            const run = { fn: s.fn, tenant: s.tenant, permit };
            running.push(run);
            assertAdmissible(limits, running, run);
          });
        } else if (s.kind === 'finish' && running.length > 0) {
          const [run] = running.splice(s.pick % running.length, 1);
          run!.permit.release();
        } else if (s.kind === 'limits') {
          limits = s.limits;
          admission.setLimits(limits);
        }
        await settle();
      }

      // Finish everything, round after round, until nothing more is admitted.
      for (let rounds = 0; rounds < 1000 && running.length > 0; rounds++) {
        running.splice(0).forEach((run) => run.permit.release());
        await settle();
      }
      const stuck = Object.entries(admission.stats().functions)
        .filter(([fn, usage]) => usage.waiting > 0 && !cannotRun(limits, fn))
        .map(([fn]) => fn);
      assert.deepEqual(stuck, [], `left waiting although nothing runs and their limits allow it: ${JSON.stringify(admission.stats())}`);
    }),
    { numRuns: 1000 },
  );
});
