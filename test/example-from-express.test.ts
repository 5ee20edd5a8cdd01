/** examples/from-express, as the README's migration guide starts it: an Express service on Berth, unchanged, with a Lambda handler mounted inside it. */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, startBerth, type RunningBerth } from './helpers/project.js';

let berth: RunningBerth;

before(async () => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'berth-from-express-')), 'from-express');
  cpSync(path.join(repoRoot, 'examples', 'from-express'), dir, { recursive: true, filter: (src) => !src.includes('.berth') && !src.includes('node_modules') });
  // Its dependency (express) comes from the project's node_modules, as after `npm install` in a real project.
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  berth = await startBerth(dir);
});

after(async () => {
  await berth?.stop();
});

test('the Express routes answer through Berth as they did in their own server', async () => {
  const index = await fetch(`${berth.url}/`);
  assert.equal(index.status, 200);
  assert.equal((await index.json()).service, 'tasks');

  const created = await fetch(`${berth.url}/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: ' write the guide ' }) });
  assert.equal(created.status, 201);
  assert.deepEqual(await created.json(), { id: '1', title: 'write the guide', done: false });
  assert.deepEqual(created.headers.getSetCookie(), ['last-task=1; Path=/']);

  assert.deepEqual(await (await fetch(`${berth.url}/tasks/1`)).json(), { id: '1', title: 'write the guide', done: false });
  const missing = await fetch(`${berth.url}/tasks/9`);
  assert.equal(missing.status, 404);
  const invalid = await fetch(`${berth.url}/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(invalid.status, 400);
});

test('the Lambda handler mounted with toExpress answers inside the same app', async () => {
  const quote = await fetch(`${berth.url}/quote/tea`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ quantity: 3 }) });
  assert.equal(quote.status, 200);
  assert.deepEqual(await quote.json(), { sku: 'tea', quantity: 3, cents: 1350 });
  assert.equal((await fetch(`${berth.url}/quote/gold`, { method: 'POST', body: '{}' })).status, 404);
});
