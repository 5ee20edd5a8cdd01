/**
 * Queue triggers: SQS-shaped batches, partial batch failures, a crashing consumer,
 * visibility timeouts and poison messages ending in the dead-letter queue.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';
import { sleep, waitFor } from './helpers/lambda.js';
import { readRecords, waitForRecords } from './helpers/records.js';

const BERTH_YML = `
queues:
  batches: {}
  partial: { visibilityTimeout: 1 }
  crashy: { visibilityTimeout: 1, maxReceiveCount: 2, deadLetterQueue: crashy-dlq }
  crashy-dlq: {}
functions:
  batch:
    handler: consumer.batch
    environment: { RECORDS: ./records.jsonl }
    events:
      - queue: batches
        batchSize: 5
        maxBatchingWindow: 0.3
        maxConcurrency: 1
  partial:
    handler: consumer.partial
    environment: { RECORDS: ./records.jsonl }
    events:
      - queue: partial
        batchSize: 10
        maxBatchingWindow: 0.3
        functionResponseTypes: [ReportBatchItemFailures]
  crashy:
    handler: consumer.crashy
    environment: { RECORDS: ./records.jsonl }
    events:
      - queue: crashy
        batchSize: 10
        maxBatchingWindow: 0.3
        maxConcurrency: 1
  dlq:
    handler: consumer.batch
    environment: { RECORDS: ./records.jsonl }
    events:
      - queue: crashy-dlq
`;

const CONSUMER = `
import { appendFileSync } from 'node:fs';
const record = (fn, event) => appendFileSync(process.env.RECORDS, JSON.stringify({ fn, records: event.Records }) + '\\n');
export const batch = async (event, context) => record(context.functionName, event);
export const partial = async (event) => {
  record('partial', event);
  return { batchItemFailures: event.Records.filter((r) => r.body.startsWith('bad') && Number(r.attributes.ApproximateReceiveCount) < 3).map((r) => ({ itemIdentifier: r.messageId })) };
};
export const crashy = async (event) => {
  record('crashy', event);
  // A poison message kills the whole process mid-batch.
  if (event.Records.some((r) => r.body === 'poison')) process.exit(1);
};
`;

let berth: RunningBerth;
let records: string;

async function send(queue: string, body: string, attributes?: Record<string, string>) {
  const response = await fetch(`${berth.url}/_berth/queues/${queue}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ body, ...(attributes ? { attributes } : {}) }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return ((await response.json()) as { messageId: string }).messageId;
}

const bodiesOf = (fn: string) =>
  readRecords(records)
    .filter((r) => r.fn === fn)
    .flatMap((r) => r.records.map((m: any) => m.body as string));

before(async () => {
  const dir = makeProject({ 'berth.yml': BERTH_YML, 'consumer.mjs': CONSUMER });
  records = path.join(dir, 'records.jsonl');
  berth = await startBerth(dir);
});

after(async () => {
  await berth?.stop();
});

describe('queue triggers', () => {
  test('messages arrive in batches as SQS event records', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await send('batches', `m${i}`, { index: String(i) }));
    const [first] = await waitForRecords(records, 1, { what: 'a batch', filter: (r) => r.fn === 'batch' });
    const all = readRecords(records).filter((r) => r.fn === 'batch').flatMap((r) => r.records);
    assert.equal(all.length, 5);
    assert.ok(first!.records.length > 1, `batched (got ${first!.records.length} in the first batch)`);
    const message = all.find((m: any) => m.body === 'm3');
    assert.equal(message.eventSource, 'aws:sqs');
    assert.equal(message.eventSourceARN, 'arn:aws:sqs:us-east-1:000000000000:batches');
    assert.equal(message.attributes.ApproximateReceiveCount, '1');
    assert.match(message.attributes.SentTimestamp, /^\d{13}$/);
    assert.deepEqual(message.messageAttributes.index, { dataType: 'String', stringValue: '3', stringListValues: [], binaryListValues: [] });
    assert.match(message.md5OfBody, /^[0-9a-f]{32}$/);
    assert.deepEqual(all.map((m: any) => m.messageId).sort(), [...ids].sort());
    const depth = (await (await fetch(`${berth.url}/_berth/queues`)).json()) as { queues: { name: string; visible: number; inflight: number }[] };
    await sleep(100);
    const batches = depth.queues.find((q) => q.name === 'batches')!;
    assert.equal(batches.visible + batches.inflight <= 5, true);
  });

  test('ReportBatchItemFailures retries only the failed messages', async () => {
    await send('partial', 'good-1');
    await send('partial', 'bad-1');
    await send('partial', 'good-2');
    // bad-1 is reported failed on receives 1 and 2, and accepted on receive 3.
    await waitForRecords(records, 1, { what: 'the third delivery of bad-1', timeoutMs: 15_000, filter: (r) => r.fn === 'partial' && r.records.some((m: any) => m.body === 'bad-1' && m.attributes.ApproximateReceiveCount === '3') });
    const deliveries = bodiesOf('partial');
    assert.equal(deliveries.filter((b) => b === 'good-1').length, 1, 'succeeded messages are not redelivered');
    assert.equal(deliveries.filter((b) => b === 'good-2').length, 1);
    assert.equal(deliveries.filter((b) => b === 'bad-1').length, 3);
  });

  test('a consumer that crashes mid-batch gets the batch again after the visibility timeout; the poison message ends in the DLQ', async () => {
    await send('crashy', 'fine');
    await send('crashy', 'poison');
    // Receives 1 and 2 crash; on the third the batch is over maxReceiveCount (2) and moves to the DLQ.
    // "fine" shared the crashing batches, so it goes with the poison message, as on SQS.
    const deadMessages = await waitFor(
      () => {
        const messages = readRecords(records).filter((r) => r.fn === 'dlq').flatMap((r) => r.records);
        return messages.length >= 2 ? messages : undefined;
      },
      { what: 'both messages in the DLQ', timeoutMs: 15_000 },
    );
    assert.deepEqual(deadMessages.map((m: any) => m.body).sort(), ['fine', 'poison']);
    assert.ok(deadMessages.every((m: any) => m.attributes.DeadLetterQueueSourceArn === 'arn:aws:sqs:us-east-1:000000000000:crashy'));
    const crashyDeliveries = bodiesOf('crashy');
    assert.equal(crashyDeliveries.filter((b) => b === 'poison').length, 2, 'delivered maxReceiveCount times, then dead-lettered');
    assert.equal(crashyDeliveries.filter((b) => b === 'fine').length, 2, 'the whole failed batch was redelivered');
    const health = await fetch(`${berth.url}/_berth/health`);
    assert.equal(health.status, 200, 'the platform survived its sandbox dying');
  });
});
