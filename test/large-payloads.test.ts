/**
 * No 256 KB ceiling: a 10 MB message goes SendMessage → queue trigger → handler →
 * result byte-exact; big async events and results pass; bodies above the inline
 * threshold live in the blob store; beyond events.maxPayload the caller gets a
 * typed error, never a truncation.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';
import { waitFor } from './helpers/lambda.js';

const MB = 1024 * 1024;

const BERTH_YML = `
events:
  maxPayload: 30mb
  inlineThreshold: 64kb
queues:
  inbox: {}
  results: {}
  parked: { delaySeconds: 60 }
functions:
  relay:
    handler: relay.handler
    timeout: 30
    memory: 1024
    events:
      - queue: inbox
        batchSize: 1
  big:
    handler: relay.big
    timeout: 30
    memory: 1024
`;

const RELAY = `
import { createHash } from 'node:crypto';
import { send } from 'berth/client';
export const handler = async (event) => {
  for (const record of event.Records) {
    const sha256 = createHash('sha256').update(record.body).digest('hex');
    await send('results', record.body, { attributes: { sha256 } });
  }
};
export const big = async (event) => ({ size: event.blob.length, sha256: createHash('sha256').update(event.blob).digest('hex'), echo: event.blob });
`;

let berth: RunningBerth;
let sqs: SQSClient;
let lambda: LambdaClient;
const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };

/** Random text with multi-byte characters, so byte-exactness covers UTF-8. */
function payload(bytes: number): string {
  const text = randomBytes(Math.ceil(bytes * 0.75)).toString('base64').slice(0, bytes - 16);
  return `é€😀${text}😀€é`;
}

before(async () => {
  berth = await startBerth(makeProject({ 'berth.yml': BERTH_YML, 'relay.mjs': RELAY }));
  sqs = new SQSClient({ endpoint: berth.url, region: 'us-east-1', credentials });
  lambda = new LambdaClient({ endpoint: berth.url, region: 'us-east-1', credentials });
});

after(async () => {
  sqs?.destroy();
  lambda?.destroy();
  await berth?.stop();
});

describe('large payloads', () => {
  test('a 10 MB message: SendMessage → queue trigger → handler → result, byte-exact', { timeout: 60_000 }, async () => {
    const body = payload(10 * MB);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const { QueueUrl: inbox } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'inbox' }));
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: inbox, MessageBody: body }));
    assert.ok(sent.MessageId);
    const { QueueUrl: results } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'results' }));
    const received = await waitFor(
      async () => (await sqs.send(new ReceiveMessageCommand({ QueueUrl: results, WaitTimeSeconds: 5, MessageAttributeNames: ['All'] }))).Messages?.[0],
      { what: 'the relayed message', timeoutMs: 40_000 },
    );
    assert.equal(received.MessageAttributes?.sha256?.StringValue, sha256, 'the handler saw the exact bytes');
    assert.equal(received.Body!.length, body.length);
    assert.ok(received.Body === body, 'the result is byte-exact');
  });

  test('a 20 MB async event and an 8 MB result pass the Invoke API', { timeout: 60_000 }, async () => {
    const blob = payload(8 * MB);
    const sync = await lambda.send(new InvokeCommand({ FunctionName: 'big', Payload: Buffer.from(JSON.stringify({ blob })) }));
    assert.equal(sync.FunctionError, undefined);
    const result = JSON.parse(Buffer.from(sync.Payload!).toString('utf8'));
    assert.equal(result.sha256, createHash('sha256').update(blob).digest('hex'));
    assert.ok(result.echo === blob, 'an 8 MB result comes back byte-exact');

    const event = await lambda.send(new InvokeCommand({ FunctionName: 'big', InvocationType: 'Event', Payload: Buffer.from(JSON.stringify({ blob: payload(20 * MB) })) }));
    assert.equal(event.StatusCode, 202);
  });

  test('bodies above the inline threshold are kept in the blob store, not in the database', async () => {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'parked' }));
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: payload(200 * 1024) }));
    const db = new Database(path.join(berth.dataDir, 'berth.db'), { readonly: true });
    try {
      const row = db.prepare('SELECT body, blob_key, size FROM messages WHERE id = ?').get(sent.MessageId) as { body: string | null; blob_key: string; size: number };
      assert.equal(row.body, null);
      assert.ok(row.size > 200 * 1024);
      const blobs = readdirSync(path.join(berth.dataDir, 'blobs'), { recursive: true }).map(String);
      assert.ok(blobs.some((file) => file.endsWith(row.blob_key)), `blob ${row.blob_key} is on disk`);
    } finally {
      db.close();
    }
  });

  test('beyond events.maxPayload: RequestTooLargeException and InvalidMessageContents, nothing stored', { timeout: 60_000 }, async () => {
    const tooBig = payload(31 * MB);
    await assert.rejects(
      lambda.send(new InvokeCommand({ FunctionName: 'big', InvocationType: 'Event', Payload: Buffer.from(JSON.stringify({ blob: tooBig })) })),
      (err: Error & { $metadata?: { httpStatusCode?: number } }) => err.name === 'RequestTooLargeException' && err.$metadata?.httpStatusCode === 413,
    );
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'results' }));
    await assert.rejects(sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: tooBig })), (err: Error) => err.name === 'InvalidMessageContents');
  });
});
