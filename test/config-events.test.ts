/** berth.yml validation of the event layer: queues, topics, destinations and event kinds, each error at its field. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeProject, runCli } from './helpers/project.js';

const HELLO = 'export const handler = async () => ({ ok: true });\n';

async function startFails(yml: string): Promise<string> {
  const result = await runCli(['start', makeProject({ 'berth.yml': yml, 'hello.mjs': HELLO }), '--port', '0'], { timeoutMs: 20_000 });
  assert.notEqual(result.code, 0, `berth start should fail:\n${result.stdout}${result.stderr}`);
  return result.stdout + result.stderr;
}

describe('berth start rejects bad event settings, naming the field', { concurrency: true }, () => {
  test('a misspelt filter operator', async () => {
    const out = await startFails('queues:\n  q: {}\ntopics:\n  t:\n    subscriptions:\n      - queue: q\n        filter: { kind: [{ prefx: ab }] }\nfunctions:\n  hello:\n    handler: hello.handler\n');
    assert.match(out, /berth\.yml:7:\d+: topics\.t\.subscriptions\.0\.filter\.kind/);
    assert.match(out, /prefix/);
  });

  test('a subscription naming two targets', async () => {
    const out = await startFails('queues:\n  q: {}\ntopics:\n  t:\n    subscriptions:\n      - { queue: q, function: hello }\nfunctions:\n  hello:\n    handler: hello.handler\n');
    assert.match(out, /topics\.t\.subscriptions\.0: a subscription names exactly one of queue, function, http or email/);
  });

  test('a trigger or destination naming an undeclared queue, topic or function', async () => {
    const out = await startFails(
      'functions:\n  hello:\n    handler: hello.handler\n    async: { onFailure: { topic: alerts }, deadLetterQueue: dlq }\n    events:\n      - queue: orders\n',
    );
    assert.match(out, /functions\.hello\.events\.0\.queue: unknown queue "orders"; declare it under queues:/);
    assert.match(out, /functions\.hello\.async\.onFailure\.topic: unknown topic "alerts"; declare it under topics:/);
    assert.match(out, /functions\.hello\.async\.deadLetterQueue: unknown queue "dlq"/);
  });

  test('an unknown event kind and an unknown key of a known kind', async () => {
    const kind = await startFails('functions:\n  hello:\n    handler: hello.handler\n    events:\n      - sqs: orders\n');
    assert.match(kind, /functions\.hello\.events\.0: unknown event type \(keys: sqs\); use one of http, queue, schedule, webhook/);
    const key = await startFails('queues:\n  q: {}\nfunctions:\n  hello:\n    handler: hello.handler\n    events:\n      - queue: q\n        batchsize: 5\n');
    assert.match(key, /berth\.yml:8:\d+: functions\.hello\.events\.0\.batchsize: unknown key "batchsize" for a queue event; expected one of queue, batchSize/);
  });

  test('a FIFO flag on a queue whose name does not end in .fifo, and maxReceiveCount without a DLQ', async () => {
    const out = await startFails('queues:\n  jobs: { fifo: true, maxReceiveCount: 3 }\nfunctions:\n  hello:\n    handler: hello.handler\n');
    assert.match(out, /queues\.jobs\.fifo: a FIFO queue's name must end in "\.fifo"/);
  });

  test('a webhook with both secret and secretEnv', async () => {
    const out = await startFails('functions:\n  hello:\n    handler: hello.handler\n    events:\n      - webhook: /hooks/a\n        secret: s\n        secretEnv: HOME\n');
    assert.match(out, /functions\.hello\.events\.0\.secretEnv: set either secret or secretEnv, not both/);
  });
});
