/**
 * Idempotency keys (X-Berth-Idempotency-Key): a repeat inside the window does not
 * run again and gets the first answer, also when the repeats race, and also after
 * a restart; keys are per function; past the window the request runs again.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';
import { sleep } from './helpers/lambda.js';
import { readRecords, RECORDING_HANDLER, waitForRecords } from './helpers/records.js';

const BERTH_YML = `
events:
  idempotencyWindow: 15s
queues:
  orders: {}
functions:
  charge:
    handler: work.handler
    environment: { RECORDS: ./records.jsonl }
  refund:
    handler: work.handler
    environment: { RECORDS: ./records.jsonl }
`;

let berth: RunningBerth;
let records: string;

async function invoke(fn: string, event: unknown, key: string, type: 'RequestResponse' | 'Event' = 'RequestResponse') {
  const response = await fetch(`${berth.url}/2015-03-31/functions/${fn}/invocations`, {
    method: 'POST',
    headers: { 'x-berth-idempotency-key': key, 'x-amz-invocation-type': type },
    body: JSON.stringify(event),
  });
  return { status: response.status, id: response.headers.get('x-berth-invocation-id'), body: await response.text() };
}

const runsOf = (tag: string) => readRecords(records).filter((r) => r.event?.tag === tag);

before(async () => {
  const dir = makeProject({ 'berth.yml': BERTH_YML, 'work.mjs': RECORDING_HANDLER });
  records = path.join(dir, 'records.jsonl');
  berth = await startBerth(dir);
});

after(async () => {
  await berth?.stop();
});

describe('idempotency keys', () => {
  test('racing repeats of a RequestResponse invoke run once and all get the first result', async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, () => invoke('charge', { tag: 'race', sleepMs: 200 }, 'order-1')));
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(new Set(answers.map((a) => a.body)).size, 1, 'every caller got the same result');
    assert.equal(new Set(answers.map((a) => a.id)).size, 1, 'and the same invocation id');
    assert.equal(runsOf('race').length, 1, 'the handler ran once');
  });

  test('a repeated Event invoke returns the first invocation id and enqueues nothing', async () => {
    const first = await invoke('charge', { tag: 'event' }, 'evt-1', 'Event');
    const second = await invoke('charge', { tag: 'event' }, 'evt-1', 'Event');
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    assert.equal(second.id, first.id);
    await waitForRecords(records, 1, { what: 'the event', filter: (r) => r.event?.tag === 'event' });
    await sleep(300);
    assert.equal(runsOf('event').length, 1);
  });

  test('keys are per function', async () => {
    await invoke('charge', { tag: 'scoped' }, 'shared-key');
    await invoke('refund', { tag: 'scoped' }, 'shared-key');
    assert.deepEqual(runsOf('scoped').map((r) => r.fn).sort(), ['charge', 'refund']);
  });

  test('a repeated send to a queue with the same key is not sent again', async () => {
    const send = async () => {
      const response = await fetch(`${berth.url}/_berth/queues/orders/messages`, {
        method: 'POST',
        headers: { 'x-berth-idempotency-key': 'msg-1' },
        body: JSON.stringify({ body: 'once' }),
      });
      return (await response.json()) as { messageId: string; duplicate: boolean };
    };
    const first = await send();
    const second = await send();
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.messageId, first.messageId);
    const { queues } = (await (await fetch(`${berth.url}/_berth/queues`)).json()) as { queues: { name: string; visible: number }[] };
    assert.equal(queues.find((q) => q.name === 'orders')!.visible, 1);
  });

  test('the window survives a restart, and past the window the request runs again', async () => {
    const startedAt = Date.now();
    const first = await invoke('charge', { tag: 'window' }, 'win-1');
    await berth.stop();
    berth = await startBerth(berth.dir, { home: berth.home });
    const repeat = await invoke('charge', { tag: 'window' }, 'win-1');
    assert.equal(repeat.body, first.body);
    assert.ok(Date.now() - startedAt < 15_000, 'the repeat came inside the window');
    assert.equal(runsOf('window').length, 1, 'not run again after the restart');
    await sleep(15_200 - (Date.now() - startedAt));
    const late = await invoke('charge', { tag: 'window' }, 'win-1');
    assert.notEqual(late.id, first.id);
    assert.equal(runsOf('window').length, 2, 'run again once the 15 s window passed');
  });
});
