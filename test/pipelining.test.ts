/**
 * For fast handlers the platform queues one invocation behind a running one inside an
 * environment (src/runtime/protocol.ts). These tests hold it to Lambda's rules: one
 * invocation at a time per environment, tenants never mixed, and an invocation queued
 * behind one that kills its environment still runs, elsewhere.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { invoke, stopWithin } from './helpers/lambda.js';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';

let berth: RunningBerth;

before(async () => {
  const dir = makeProject({
    'berth.yml': `functions:
  quick:
    handler: handlers.quick
    isolation: warm
  tenanted:
    handler: handlers.tenanted
    isolation: tenant
`,
    'handlers.mjs': `
let active = 0;
let maxActive = 0;
export const quick = async (event) => {
  active++;
  maxActive = Math.max(maxActive, active);
  if (event.crash) process.exit(7);
  await null;
  active--;
  return { pid: process.pid, maxActive, n: event.n };
};
export const tenanted = async (event, context) => ({ pid: process.pid, tenant: context.tenantId, n: event.n });
`,
  });
  berth = await startBerth(dir);
  // Enough fast invocations for the pool to know the handler is fast and start queueing.
  for (let i = 0; i < 40; i++) await invoke(berth.url, 'quick', { n: i }, { tail: false });
  for (const tenant of ['a', 'b']) for (let i = 0; i < 40; i++) await invoke(berth.url, 'tenanted', { n: i }, { tenant, tail: false });
});

after(async () => {
  assert.equal(await stopWithin(berth), 0);
});

test('an invocation queued behind one that kills its environment runs on another, once', async () => {
  for (let round = 0; round < 3; round++) {
    const calls = Array.from({ length: 40 }, (_, n) => invoke(berth.url, 'quick', n === 5 ? { crash: true, n } : { n }, { tail: false }));
    const results = await Promise.all(calls);
    const crashed = results[5]!;
    assert.equal(crashed.functionError, 'Unhandled');
    assert.equal(crashed.body.errorType, 'Runtime.ExitError');
    assert.match(crashed.body.errorMessage, /exit status 7/);
    results.forEach((result, n) => {
      if (n === 5) return;
      assert.equal(result.functionError, null, `call ${n}: ${result.raw}`);
      assert.equal(result.body.n, n);
      // Never two invocations at once in one environment.
      assert.equal(result.body.maxActive, 1, `call ${n} saw ${result.body.maxActive} invocations at once`);
    });
    assert.equal(new Set(results.map((r) => r.invocationId)).size, 40, 'every call has its own invocation id');
  }
});

test('queueing inside environments never mixes tenants', async () => {
  const calls = Array.from({ length: 60 }, (_, n) => invoke(berth.url, 'tenanted', { n }, { tenant: n % 2 === 0 ? 'a' : 'b', tail: false }));
  const results = await Promise.all(calls);
  const pidsOf = { a: new Set<number>(), b: new Set<number>() };
  results.forEach((result, n) => {
    const tenant = n % 2 === 0 ? 'a' : 'b';
    assert.equal(result.functionError, null, result.raw);
    assert.equal(result.body.tenant, tenant);
    assert.equal(result.body.n, n);
    pidsOf[tenant].add(result.body.pid);
  });
  for (const pid of pidsOf.a) assert.ok(!pidsOf.b.has(pid), `pid ${pid} served both tenants`);
});
