/**
 * Isolation policies through the real server: `warm` shares one environment and
 * refuses tenants; `tenant` gives every tenant its own environments, so module state
 * and global tampering (seed 000's attacks) never cross tenants; `fresh` runs every
 * invocation in a new process, served from a pool of pre-started environments.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { functionInfo, invoke, processAlive, stopWithin, waitFor, type Invocation } from './helpers/lambda.js';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';

const config = `service: isolation
functions:
  warmfn:
    handler: counter.handler
    isolation: warm
    events:
      - http: GET /warm
  tenantfn:
    handler: counter.handler
    isolation: tenant
    events:
      - http: GET /tenant
  freshfn:
    handler: counter.handler
    isolation: fresh
  freshpool:
    handler: counter.handler
    isolation: fresh
    prewarm: 2
  attackfn:
    handler: attack.handler
    isolation: tenant
`;

const counter = `let count = 0;
exports.handler = async (event, context) => {
  count += 1;
  return { count, pid: process.pid, tenant: context.tenantId ?? null };
};
`;

// Module scope runs at init, once per environment.
const attack = `global.XMLHttpRequest = function XMLHttpRequest() {};
const originalLog = console.log;

export const handler = async (event, context) => {
  if (event.attack) {
    global.XMLHttpRequest = null;
    global.console.log = (msg) => { /* nefarious */ };
    globalThis.attackRan = true;
  }
  console.log('visible line from ' + context.tenantId);
  return {
    xhrType: typeof globalThis.XMLHttpRequest,
    consoleLogOriginal: console.log === originalLog,
    attackRan: globalThis.attackRan === true,
    pid: process.pid,
  };
};
`;

interface CounterView {
  count: number;
  pid: number;
  tenant: string | null;
}

let berth: RunningBerth;

before(async () => {
  berth = await startBerth(makeProject({ 'berth.yml': config, 'counter.cjs': counter, 'attack.mjs': attack }));
});

after(async () => {
  if (!berth) return; // before() failed, and said why
  assert.equal(berth.process.exitCode, null, `the gateway exited during the tests (signal ${berth.process.signalCode}):\n${berth.output()}`);
  assert.equal(await stopWithin(berth), 0, `berth should exit cleanly on SIGTERM:\n${berth.output()}`);
});

function ok(result: Invocation): any {
  assert.equal(result.status, 200, `Invoke API status (body: ${result.raw})`);
  assert.equal(result.functionError, null, `unexpected function error: ${result.raw}`);
  return result.body;
}

async function count(name: string, tenant?: string): Promise<CounterView> {
  return ok(await invoke(berth.url, name, {}, tenant === undefined ? {} : { tenant })) as CounterView;
}

describe('warm isolation', () => {
  test('one environment is reused: module state carries across calls', async () => {
    const views = [];
    for (let i = 0; i < 3; i++) views.push(await count('warmfn'));
    assert.deepEqual(views.map((v) => v.count), [1, 2, 3]);
    assert.equal(new Set(views.map((v) => v.pid)).size, 1, `one process served all calls: ${views.map((v) => v.pid)}`);
    // Over the HTTP route too: the same environment.
    const response = await fetch(`${berth.url}/warm`);
    assert.equal(response.status, 200);
    const viaRoute = (await response.json()) as CounterView;
    assert.equal(viaRoute.count, 4);
    assert.equal(viaRoute.pid, views[0]!.pid);
  });

  test('a request naming a tenant is rejected with 400 naming the isolation, and never runs', async () => {
    const route = await fetch(`${berth.url}/warm`, { headers: { 'x-berth-tenant': 'acme' } });
    assert.equal(route.status, 400);
    const routeBody = (await route.json()) as { code: string; message: string };
    assert.equal(routeBody.code, 'BERTH_ERR_TENANT_NOT_ALLOWED');
    assert.match(routeBody.message, /isolation/);
    assert.match(routeBody.message, /warm/);

    const api = await invoke(berth.url, 'warmfn', {}, { tenant: 'acme' });
    assert.equal(api.status, 400);
    assert.equal(api.headers.get('x-amzn-errortype'), 'InvalidParameterValueException');
    assert.match(String(api.body.message), /isolation/);

    const next = await count('warmfn');
    assert.equal(next.count, 5, 'the rejected requests must not have run the handler');
  });
});

describe('tenant isolation', () => {
  test('module state is per tenant', async () => {
    const a1 = await count('tenantfn', 'tenant-a');
    const a2 = await count('tenantfn', 'tenant-a');
    const b1 = await count('tenantfn', 'tenant-b');
    const a3 = await count('tenantfn', 'tenant-a');
    const b2 = await count('tenantfn', 'tenant-b');
    assert.deepEqual([a1.count, a2.count, a3.count], [1, 2, 3], 'tenant A counts on');
    assert.deepEqual([b1.count, b2.count], [1, 2], 'tenant B starts at 1');
    assert.equal(a1.tenant, 'tenant-a');
    assert.equal(b1.tenant, 'tenant-b');
    assert.equal(new Set([a1.pid, a2.pid, a3.pid]).size, 1, 'a tenant reuses its warm environment');
    assert.equal(new Set([b1.pid, b2.pid]).size, 1, 'a tenant reuses its warm environment');
    assert.notEqual(a1.pid, b1.pid, 'two tenants never share a process');

    // Callers without a tenant have their own environment too.
    const anonymous = await count('tenantfn');
    assert.equal(anonymous.count, 1);
    assert.ok(![a1.pid, b1.pid].includes(anonymous.pid));
  });

  test('the HTTP route honours x-berth-tenant', async () => {
    const call = async (tenant: string) => {
      const response = await fetch(`${berth.url}/tenant`, { headers: { 'x-berth-tenant': tenant } });
      assert.equal(response.status, 200);
      return (await response.json()) as CounterView;
    };
    const c1 = await call('route-c');
    const d1 = await call('route-d');
    const c2 = await call('route-c');
    assert.deepEqual([c1.count, d1.count, c2.count], [1, 1, 2]);
    assert.notEqual(c1.pid, d1.pid);
  });

  test('no pid is ever shared between tenants', async () => {
    const pidsOf = new Map<string, Set<number>>();
    for (let round = 0; round < 3; round++) {
      for (const tenant of ['p-1', 'p-2', 'p-3']) {
        const view = await count('tenantfn', tenant);
        assert.equal(view.count, round + 1);
        pidsOf.set(tenant, (pidsOf.get(tenant) ?? new Set()).add(view.pid));
      }
    }
    const all = [...pidsOf.values()].flatMap((set) => [...set]);
    assert.equal(new Set(all).size, all.length, `pids per tenant: ${JSON.stringify([...pidsOf].map(([t, s]) => [t, [...s]]))}`);
  });

  test("one tenant's global tampering does not reach another tenant", async () => {
    // A tenant that never saw the attack shows what an untouched environment looks like.
    const baselineCall = await invoke(berth.url, 'attackfn', {}, { tenant: 'bystander' });
    const baseline = ok(baselineCall);
    assert.equal(baseline.xhrType, 'function');
    assert.equal(baseline.consoleLogOriginal, true);
    assert.equal(baseline.attackRan, false);
    assert.match(baselineCall.log, /\tINFO\tvisible line from bystander\n/);

    const bBefore = ok(await invoke(berth.url, 'attackfn', {}, { tenant: 'victim-b' }));
    assert.equal(bBefore.xhrType, 'function');

    const attackCall = await invoke(berth.url, 'attackfn', { attack: true }, { tenant: 'attacker-a' });
    const attackView = ok(attackCall);
    assert.equal(attackView.attackRan, true, 'the attack ran');
    assert.equal(attackView.xhrType, 'object', 'the attacker nulled XMLHttpRequest in its own environment');
    assert.equal(attackView.consoleLogOriginal, false);
    assert.doesNotMatch(attackCall.log, /visible line from attacker-a/, 'the nefarious console.log swallowed the line');

    const bCall = await invoke(berth.url, 'attackfn', {}, { tenant: 'victim-b' });
    const bAfter = ok(bCall);
    assert.equal(bAfter.attackRan, false, "tenant B's environment never ran the attack");
    assert.equal(bAfter.xhrType, baseline.xhrType, 'XMLHttpRequest untouched for tenant B');
    assert.equal(bAfter.consoleLogOriginal, true, 'console.log still the original for tenant B');
    assert.match(bCall.log, new RegExp(`\\t${bCall.invocationId}\\tINFO\\tvisible line from victim-b\\n`), "B's log line is in B's log");
    assert.notEqual(bAfter.pid, attackView.pid);
    assert.equal(bAfter.pid, bBefore.pid, 'tenant B kept its own warm environment');

    // The attacker's own environment is reused, so it does see its own change.
    const aCall = await invoke(berth.url, 'attackfn', {}, { tenant: 'attacker-a' });
    const aAgain = ok(aCall);
    assert.equal(aAgain.pid, attackView.pid);
    assert.equal(aAgain.attackRan, true);
    assert.equal(aAgain.xhrType, 'object');
    assert.equal(aAgain.consoleLogOriginal, false);
    assert.doesNotMatch(aCall.log, /visible line from attacker-a/);

    // And a tenant arriving after the attack starts clean.
    const late = ok(await invoke(berth.url, 'attackfn', {}, { tenant: 'late-c' }));
    assert.equal(late.xhrType, baseline.xhrType);
    assert.equal(late.consoleLogOriginal, true);
    assert.equal(late.attackRan, false);
  });
});

describe('fresh isolation', () => {
  test('keeps pre-started ready environments, serves from them and refills after invocations', async () => {
    const prewarm = 2;
    const before = await waitFor(
      async () => {
        const info = await functionInfo(berth.url, 'freshpool');
        return info.environments.ready >= prewarm && info.environments.starting === 0 && info;
      },
      { what: `freshpool to have ${prewarm} ready environments`, timeoutMs: 15_000 },
    );
    assert.equal(before.isolation, 'fresh');
    assert.equal(before.environments.busy, 0);
    assert.equal(before.pids.length, before.environments.ready, `pids ${before.pids} for ${JSON.stringify(before.environments)}`);

    // Use up more environments than were ready: the pool must start new ones to get back to its level.
    const used: number[] = [];
    for (let i = 0; i <= before.environments.ready; i++) {
      const view = await count('freshpool');
      assert.equal(view.count, 1);
      used.push(view.pid);
    }
    assert.ok(before.pids.includes(used[0]!), `the first invocation (pid ${used[0]}) should run in a pre-started environment ${before.pids}`);

    const refilled = await waitFor(
      async () => {
        const info = await functionInfo(berth.url, 'freshpool');
        const started = info.pids.filter((pid) => !before.pids.includes(pid) && !used.includes(pid));
        return (
          info.environments.ready >= prewarm &&
          info.environments.starting === 0 &&
          !info.pids.some((pid) => used.includes(pid)) &&
          started.length >= 1 &&
          info
        );
      },
      { what: 'freshpool to refill its ready environments with new processes', timeoutMs: 15_000 },
    );
    assert.equal(refilled.environments.busy, 0);
    for (const pid of used) await waitFor(() => !processAlive(pid), { what: `the used environment (pid ${pid}) to exit` });
  });

  test('every invocation runs in a new process: count is always 1 and pids never repeat', async () => {
    const views: CounterView[] = [];
    for (let i = 0; i < 10; i++) views.push(await count('freshfn'));
    assert.deepEqual(views.map((v) => v.count), Array(10).fill(1));
    const pids = views.map((v) => v.pid);
    assert.equal(new Set(pids).size, 10, `pids: ${pids}`);
  });

  test('with tenants: no process is reused, within or across tenants', async () => {
    const views: CounterView[] = [];
    for (let i = 0; i < 3; i++) {
      views.push(await count('freshfn', 'fresh-x'));
      views.push(await count('freshfn', 'fresh-y'));
    }
    assert.deepEqual(views.map((v) => v.count), Array(6).fill(1));
    assert.deepEqual(views.map((v) => v.tenant), ['fresh-x', 'fresh-y', 'fresh-x', 'fresh-y', 'fresh-x', 'fresh-y']);
    assert.equal(new Set(views.map((v) => v.pid)).size, 6, `pids: ${views.map((v) => v.pid)}`);
  });
});
