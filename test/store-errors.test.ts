/**
 * A store that cannot take more writes (here: full at store.maxSize, SQLite's
 * SQLITE_FULL) makes enqueueing fail loudly: the caller gets an error, never a
 * false 202, and what was acknowledged before is all there after a restart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeProject, startBerth } from './helpers/project.js';

const BERTH_YML = `
store:
  maxSize: 1mb
events:
  inlineThreshold: 1mb
queues:
  backlog: {}
functions:
  work:
    handler: work.handler
`;

async function depth(url: string): Promise<number> {
  const { queues } = (await (await fetch(`${url}/_berth/queues`)).json()) as { queues: { name: string; visible: number }[] };
  return queues.find((q) => q.name === 'backlog')!.visible;
}

test('a full store: sends and async invokes get an error, never a false acknowledgement', { timeout: 60_000 }, async () => {
  const dir = makeProject({ 'berth.yml': BERTH_YML, 'work.mjs': 'export const handler = async () => ({});' });
  let berth = await startBerth(dir);
  try {
    const body = 'x'.repeat(50 * 1024);
    let accepted = 0;
    let refusal: { status: number; body: { code?: string; message?: string } } | undefined;
    for (let i = 0; i < 100 && !refusal; i++) {
      const response = await fetch(`${berth.url}/_berth/queues/backlog/messages`, { method: 'POST', body: JSON.stringify({ body }) });
      if (response.status === 200) accepted++;
      else refusal = { status: response.status, body: (await response.json()) as { code?: string; message?: string } };
    }
    assert.ok(refusal, 'the store filled up within 100 messages of 50 KB');
    assert.equal(refusal.status, 503);
    assert.equal(refusal.body.code, 'ServiceUnavailable');
    assert.match(refusal.body.message ?? '', /could not be stored.*database or disk is full/i);
    assert.ok(accepted > 0);
    assert.equal(await depth(berth.url), accepted, 'exactly the acknowledged messages are queued');

    const invoke = await fetch(`${berth.url}/2015-03-31/functions/work/invocations`, {
      method: 'POST',
      headers: { 'x-amz-invocation-type': 'Event' },
      body: JSON.stringify({ pad: body }),
    });
    assert.equal(invoke.status, 500, 'an async invoke is not acknowledged either');
    assert.equal(invoke.headers.get('x-amzn-errortype'), 'ServiceException');

    const health = await fetch(`${berth.url}/_berth/health`);
    assert.equal(health.status, 200, 'Berth keeps serving');

    await berth.stop();
    berth = await startBerth(dir, { home: berth.home });
    assert.equal(await depth(berth.url), accepted, 'after a restart, every acknowledged message is still there');
  } finally {
    await berth.stop();
  }
});
