/** provisionedConcurrency: that many environments are initialised before any request, and idle reaping never goes below it. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';
import { functionInfo, invoke, sleep, waitFor } from './helpers/lambda.js';

const BERTH_YML = `
functions:
  provisioned:
    handler: h.handler
    isolation: warm
    idleTimeout: 1
    provisionedConcurrency: 3
  plain:
    handler: h.handler
    isolation: warm
    idleTimeout: 1
`;

let berth: RunningBerth;

before(async () => {
  berth = await startBerth(makeProject({ 'berth.yml': BERTH_YML, 'h.mjs': 'export const handler = async (e) => { await new Promise((r) => setTimeout(r, e.ms ?? 0)); return "ok"; };\n' }));
});

after(async () => {
  await berth?.stop();
});

const live = async (name: string) => {
  const { environments } = await functionInfo(berth.url, name);
  return environments.ready + environments.idle + environments.busy;
};

test('provisioned environments are initialised before the first request and survive the idle timeout', async () => {
  await waitFor(async () => (await functionInfo(berth.url, 'provisioned')).environments.ready >= 3, { what: 'three ready environments' });
  const first = await invoke(berth.url, 'provisioned', {});
  assert.equal(first.status, 200);
  assert.equal((await functionInfo(berth.url, 'provisioned')).environments.starting, 0, 'nothing had to start for it');

  await Promise.all(Array.from({ length: 5 }, () => invoke(berth.url, 'provisioned', { ms: 300 })));
  await Promise.all(Array.from({ length: 5 }, () => invoke(berth.url, 'plain', { ms: 300 })));
  await sleep(3_000); // idleTimeout 1 s, reaped every second
  assert.ok((await live('provisioned')) >= 3, 'reaping stops at the provisioned count');
  assert.ok((await live('plain')) <= 1, 'an unprovisioned function scales back down');
});

const patchLimits = async (patch: unknown) => {
  const response = await fetch(`${berth.url}/_berth/limits`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
};

test('provisioned concurrency changes live: more start within a second, none are reaped, removing it lets them go', async () => {
  await waitFor(async () => (await live('plain')) <= 1, { what: 'plain to be scaled down first', timeoutMs: 5_000 });
  const set = await patchLimits({ functions: { plain: { provisionedConcurrency: 2 } } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  const changedAt = Date.now();
  await waitFor(async () => (await functionInfo(berth.url, 'plain')).environments.ready >= 2, { what: 'two ready environments for plain', timeoutMs: 5_000 });
  assert.ok(Date.now() - changedAt < 1_500, `provisioned within ${Date.now() - changedAt} ms`);
  await sleep(2_500); // idleTimeout 1 s
  assert.ok((await live('plain')) >= 2, 'kept past the idle timeout');

  const removed = await patchLimits({ functions: { plain: { provisionedConcurrency: null } } });
  assert.equal(removed.status, 200, JSON.stringify(removed.body));
  await waitFor(async () => (await live('plain')) === 0, { what: 'plain to scale to zero once no longer provisioned', timeoutMs: 5_000 });
});

test('a provisioned count above what the function may run is refused and changes nothing', async () => {
  const before = (await patchLimits({})).body;
  const refused = await patchLimits({ functions: { provisioned: { maxConcurrency: 2 } } });
  assert.equal(refused.status, 400);
  assert.match(refused.body.message, /provisioned keeps 3 provisioned environments but may run only 2; lower provisionedConcurrency or raise the limit/);
  const after = await (await fetch(`${berth.url}/_berth/limits`)).json();
  assert.deepEqual(after.functions.provisioned, before.functions?.provisioned ?? { provisionedConcurrency: 3 });
});
