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
