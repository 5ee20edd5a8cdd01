/**
 * examples/leads, as the README's quick start runs it: `berth start examples/leads`, the curl calls,
 * then `berth invoke`, `berth logs` and `berth ls` against the running instance. And its
 * serverless.yml, the same API as deployed to Lambda, maps onto its berth.yml as the migration
 * guide's table says.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { berthHome, repoRoot, runCli, startBerth, type RunningBerth } from './helpers/project.js';

const example = path.join(repoRoot, 'examples', 'leads');
let berth: RunningBerth;
const home = berthHome();

before(async () => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'berth-leads-')), 'leads');
  cpSync(example, dir, { recursive: true, filter: (src) => !src.includes('.berth') });
  berth = await startBerth(dir, { home });
});

after(async () => {
  await berth?.stop();
});

test('the quick start: a lead is created and read back over HTTP, and the CLI invokes, shows logs and lists', async () => {
  const created = await fetch(`${berth.url}/lead/42`, { method: 'POST', body: JSON.stringify({ name: 'Ada', email: 'ada@example.com' }) });
  assert.equal(created.status, 201);
  const lead = (await created.json()) as { id: string; name: string; email: string };
  assert.deepEqual({ id: lead.id, name: lead.name, email: lead.email }, { id: '42', name: 'Ada', email: 'ada@example.com' });
  assert.deepEqual(await (await fetch(`${berth.url}/lead/42`)).json(), lead, 'getLead reads what createLead stored');

  const invoked = await runCli(['invoke', 'createLead', '--data', '{"pathParameters":{"leadId":"42"},"body":"{}"}'], { home });
  assert.equal(invoked.code, 0, invoked.stderr);
  assert.equal(JSON.parse(invoked.stdout).statusCode, 400, 'the README\'s invoke sends an empty lead, which the handler refuses');

  const logs = await runCli(['logs', 'createLead'], { home });
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /created lead 42 in table leads/);

  const listed = await runCli(['ls'], { home });
  assert.equal(listed.code, 0, listed.stderr);
  for (const fn of ['createLead', 'getLead', 'notify']) assert.match(listed.stdout, new RegExp(`\\b${fn}\\b`));
});

test("serverless.yml's functions, handlers, routes and settings are berth.yml's, as the migration guide maps them", () => {
  const serverless = parse(readFileSync(path.join(example, 'serverless.yml'), 'utf8'));
  const berthYml = parse(readFileSync(path.join(example, 'berth.yml'), 'utf8'));
  assert.equal(berthYml.defaults.timeout, serverless.provider.timeout);
  assert.equal(berthYml.defaults.memory, serverless.provider.memorySize);
  assert.deepEqual(Object.keys(berthYml.functions), Object.keys(serverless.functions));
  for (const [name, fn] of Object.entries<any>(serverless.functions)) {
    const ours = berthYml.functions[name];
    assert.equal(ours.handler, fn.handler, `${name}: the same handler file`);
    assert.deepEqual(ours.environment ?? {}, fn.environment ?? {}, `${name}: the same environment`);
    assert.deepEqual(ours.events.map((e: { http: string }) => e.http), fn.events.map((e: { httpApi: string }) => e.httpApi), `${name}: httpApi routes become http routes`);
  }
});
