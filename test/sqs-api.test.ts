/**
 * The SQS API, driven by the real @aws-sdk/client-sqs pointed at Berth (MD5 checks on,
 * as by default), plus raw requests for what the SDK will not send. One server for the file.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
  type Message,
  type MessageAttributeValue,
  type ReceiveMessageCommandInput,
} from '@aws-sdk/client-sqs';
import { rejection, waitFor } from './helpers/lambda.js';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';

const BERTH_YML = `
events:
  maxPayload: 64kb
queues:
  orders: { visibilityTimeout: 2 }
  orders-dlq: {}
  jobs.fifo: { contentBasedDeduplication: true }
  short-lived: { retention: 1s }
functions:
  root:
    handler: root.handler
    events:
      - http: POST /
`;

const ROOT = `export const handler = async (event) => ({ statusCode: 200, body: 'user route got ' + event.body });
`;

const silent = { debug() {}, info() {}, warn() {}, error() {} };

let berth: RunningBerth;
let sqs: SQSClient;

before(async () => {
  berth = await startBerth(makeProject({ 'berth.yml': BERTH_YML, 'root.mjs': ROOT }));
  sqs = new SQSClient({ endpoint: berth.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
});

after(async () => {
  sqs?.destroy();
  assert.equal(await berth.stop(), 0);
});


/** Asserts the SDK's exception: its name, query-compatible Code and HTTP status. */
async function expectSqsError(promise: Promise<unknown>, expected: { name: string; code?: string; status: number; message?: RegExp }) {
  const err = await rejection(promise);
  assert.equal(err.name, expected.name, err.message);
  assert.equal(err.Code, expected.code ?? expected.name);
  assert.equal(err.Type, 'Sender');
  assert.equal(err.$metadata.httpStatusCode, expected.status);
  if (expected.message) assert.match(err.message, expected.message);
  return err;
}

async function createQueue(name: string, attributes?: Record<string, string>): Promise<string> {
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name, ...(attributes ? { Attributes: attributes } : {}) }));
  return out.QueueUrl!;
}

async function receive(input: ReceiveMessageCommandInput): Promise<Message[]> {
  return (await sqs.send(new ReceiveMessageCommand(input))).Messages ?? [];
}

async function attributes(queueUrl: string): Promise<Record<string, string>> {
  return (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }))).Attributes!;
}

/** A raw AWS JSON 1.0 request, for what the SDK will not send. */
function raw(target: string, body: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${berth.url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': target, 'x-amzn-query-mode': 'true', ...headers },
    body,
    ...(signal ? { signal } : {}),
  });
}

const md5 = (data: string | Uint8Array) => createHash('md5').update(data).digest('hex');

/** SQS's message-attribute digest, written out here apart from Berth's own. */
function expectedAttributesMd5(attributes: Record<string, MessageAttributeValue>): string {
  const parts: Buffer[] = [];
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const value = attributes[name]!;
    lengthPrefixed(Buffer.from(name, 'utf8'));
    lengthPrefixed(Buffer.from(value.DataType!, 'utf8'));
    if (value.BinaryValue) {
      parts.push(Buffer.from([2]));
      lengthPrefixed(Buffer.from(value.BinaryValue));
    } else {
      parts.push(Buffer.from([1]));
      lengthPrefixed(Buffer.from(value.StringValue!, 'utf8'));
    }
  }
  return md5(Buffer.concat(parts));
}

describe('queues', () => {
  test('CreateQueue, GetQueueUrl and ListQueues round-trip; internal queues are not listed', async () => {
    const url = await createQueue('made-by-api');
    assert.equal(url, `${berth.url}/000000000000/made-by-api`, 'the URL is built from the request Host');
    assert.equal((await sqs.send(new GetQueueUrlCommand({ QueueName: 'made-by-api' }))).QueueUrl, url);
    assert.equal((await sqs.send(new GetQueueUrlCommand({ QueueName: 'orders' }))).QueueUrl, `${berth.url}/000000000000/orders`);

    const listed = (await sqs.send(new ListQueuesCommand({}))).QueueUrls!;
    for (const name of ['made-by-api', 'orders', 'orders-dlq', 'jobs.fifo']) assert.ok(listed.includes(`${berth.url}/000000000000/${name}`), name);
    assert.ok(listed.every((queueUrl) => !new URL(queueUrl).pathname.includes(':')), `no internal queue in ${listed}`);
  });

  test('ListQueues filters by prefix and pages with MaxResults and NextToken', async () => {
    for (const name of ['page-c', 'page-a', 'page-b']) await createQueue(name);
    const first = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'page-', MaxResults: 2 }));
    assert.deepEqual(first.QueueUrls, [`${berth.url}/000000000000/page-a`, `${berth.url}/000000000000/page-b`]);
    assert.ok(first.NextToken);
    const second = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'page-', MaxResults: 2, NextToken: first.NextToken }));
    assert.deepEqual(second.QueueUrls, [`${berth.url}/000000000000/page-c`]);
    assert.equal(second.NextToken, undefined);
  });

  test('CreateQueue of an existing queue returns its URL with matching (or no) attributes, QueueNameExists with others', async () => {
    const url = await createQueue('same-twice', { VisibilityTimeout: '45' });
    assert.equal(await createQueue('same-twice', { VisibilityTimeout: '45' }), url);
    assert.equal(await createQueue('same-twice'), url);
    assert.equal(await createQueue('orders'), `${berth.url}/000000000000/orders`, 'a queue from berth.yml too');
    await expectSqsError(createQueue('same-twice', { VisibilityTimeout: '46' }), { name: 'QueueNameExists', code: 'QueueAlreadyExists', status: 400, message: /same-twice/ });
  });

  test('GetQueueAttributes returns All, or the names asked for', async () => {
    const url = await createQueue('attrs', { VisibilityTimeout: '7', DelaySeconds: '3', MessageRetentionPeriod: '3600', ReceiveMessageWaitTimeSeconds: '0', MaximumMessageSize: '2048' });
    const all = await attributes(url);
    assert.equal(all.VisibilityTimeout, '7');
    assert.equal(all.DelaySeconds, '3');
    assert.equal(all.MessageRetentionPeriod, '3600');
    assert.equal(all.QueueArn, 'arn:aws:sqs:us-east-1:000000000000:attrs');
    assert.equal(all.ApproximateNumberOfMessages, '0');
    const some = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['VisibilityTimeout', 'QueueArn'] }));
    assert.deepEqual(some.Attributes, { VisibilityTimeout: '7', QueueArn: all.QueueArn });
    const declared = await attributes(`${berth.url}/000000000000/orders`);
    assert.equal(declared.VisibilityTimeout, '2', 'berth.yml settings show through');
    const fifo = await attributes(`${berth.url}/000000000000/jobs.fifo`);
    assert.equal(fifo.FifoQueue, 'true');
    assert.equal(fifo.ContentBasedDeduplication, 'true');
  });

  test('PurgeQueue removes every message', async () => {
    const url = await createQueue('purge-me');
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: ['1', '2', '3'].map((id) => ({ Id: id, MessageBody: id })) }));
    assert.equal((await attributes(url)).ApproximateNumberOfMessages, '3');
    await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    assert.equal((await attributes(url)).ApproximateNumberOfMessages, '0');
    assert.deepEqual(await receive({ QueueUrl: url }), []);
  });

  test('messages past the retention period are dropped, also from a queue nobody reads', async () => {
    const { QueueUrl: url } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'short-lived' }));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'ephemeral' }));
    assert.equal((await attributes(url!)).ApproximateNumberOfMessages, '1');
    await waitFor(async () => (await attributes(url!)).ApproximateNumberOfMessages === '0', { what: 'the expired message to go', timeoutMs: 5_000 });
    assert.deepEqual(await receive({ QueueUrl: url }), []);
  });

  test('DeleteQueue removes the queue; using it afterwards is QueueDoesNotExist', async () => {
    const url = await createQueue('delete-me');
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'doomed' }));
    await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' })), { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue', status: 400 });
    const listed = (await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'delete-me' }))).QueueUrls;
    assert.deepEqual(listed, []);
  });

  test('a client without an endpoint follows the QueueUrl to Berth', async () => {
    const url = await createQueue('follow-url');
    const followed = new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1, logger: silent });
    try {
      const sent = await followed.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'via the queue URL' }));
      const [message] = (await followed.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages ?? [];
      assert.equal(message?.MessageId, sent.MessageId);
    } finally {
      followed.destroy();
    }
  });
});

describe('messages', () => {
  test('SendMessage and ReceiveMessage round-trip with MD5s the SDK verifies', async () => {
    const url = await createQueue('round-trip');
    const body = 'héllo "wörld"\n\t{"json": [1, 2]} 🚀';
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    assert.equal(sent.MD5OfMessageBody, md5(body));
    assert.equal(sent.MD5OfMessageAttributes, undefined);
    assert.match(sent.MessageId!, /^[0-9a-f-]{36}$/);
    const [message, ...rest] = await receive({ QueueUrl: url, MaxNumberOfMessages: 10 });
    assert.equal(rest.length, 0);
    assert.equal(message!.MessageId, sent.MessageId);
    assert.equal(message!.Body, body);
    assert.equal(message!.MD5OfBody, md5(body));
    assert.ok(message!.ReceiptHandle);
    assert.equal(message!.Attributes, undefined, 'no system attributes unless asked for');
  });

  test('MD5OfMessageAttributes matches an independent computation, on send and on receive', async () => {
    const url = await createQueue('attribute-md5');
    const messageAttributes: Record<string, MessageAttributeValue> = {
      'order.id': { DataType: 'String', StringValue: 'A-1001 ünïcode' },
      'order.total': { DataType: 'Number', StringValue: '12.50' },
      blob: { DataType: 'Binary', BinaryValue: Uint8Array.from([0, 1, 2, 250, 255]) },
      kind: { DataType: 'String.custom', StringValue: 'express' },
    };
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'with attributes', MessageAttributes: messageAttributes }));
    assert.equal(sent.MD5OfMessageAttributes, expectedAttributesMd5(messageAttributes));

    const [all] = await receive({ QueueUrl: url, MessageAttributeNames: ['All'], VisibilityTimeout: 0 });
    assert.deepEqual(all!.MessageAttributes, messageAttributes);
    assert.equal(all!.MD5OfMessageAttributes, sent.MD5OfMessageAttributes);

    const [prefixed] = await receive({ QueueUrl: url, MessageAttributeNames: ['order.*', 'kind'], VisibilityTimeout: 0 });
    const expected = { 'order.id': messageAttributes['order.id']!, 'order.total': messageAttributes['order.total']!, kind: messageAttributes.kind! };
    assert.deepEqual(prefixed!.MessageAttributes, expected);
    assert.equal(prefixed!.MD5OfMessageAttributes, expectedAttributesMd5(expected), 'the digest covers the attributes returned');

    const [none] = await receive({ QueueUrl: url });
    assert.equal(none!.MessageAttributes, undefined);
    assert.equal(none!.MD5OfMessageAttributes, sent.MD5OfMessageAttributes);
  });

  test('ReceiveMessage returns the system attributes asked for, "All" included', async () => {
    const url = await createQueue('system-attributes');
    const before = Date.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));
    const [some] = await receive({ QueueUrl: url, MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'], VisibilityTimeout: 0 });
    assert.deepEqual(Object.keys(some!.Attributes!).sort(), ['ApproximateReceiveCount', 'SentTimestamp']);
    assert.equal(some!.Attributes!.ApproximateReceiveCount, '1');
    assert.ok(Number(some!.Attributes!.SentTimestamp) >= before - 1000);
    const [all] = await receive({ QueueUrl: url, AttributeNames: ['All'] });
    assert.equal(all!.Attributes!.ApproximateReceiveCount, '2');
    assert.equal(all!.Attributes!.SenderId, '000000000000');
    assert.ok(Number(all!.Attributes!.ApproximateFirstReceiveTimestamp) >= Number(all!.Attributes!.SentTimestamp));
  });

  test('a long poll returns as soon as a message is sent', async () => {
    const url = await createQueue('long-poll');
    const started = Date.now();
    const polling = receive({ QueueUrl: url, WaitTimeSeconds: 5 }).then((messages) => ({ messages, at: Date.now() }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const sentAt = Date.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'wake up' }));
    const { messages, at } = await polling;
    assert.equal(messages[0]?.Body, 'wake up');
    assert.ok(at - started >= 190, 'it waited for the message');
    assert.ok(at - sentAt < 500, `answered ${at - sentAt} ms after the send`);
  });

  test('a long poll the client abandons takes no message', async () => {
    const url = await createQueue('long-poll-abandoned');
    const client = new AbortController();
    const polling = raw('AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl: url, WaitTimeSeconds: 5 }), {}, client.signal).catch(() => 'aborted');
    await new Promise((resolve) => setTimeout(resolve, 100));
    client.abort();
    assert.equal(await polling, 'aborted');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'for a live receiver' }));
    assert.equal((await receive({ QueueUrl: url }))[0]?.Body, 'for a live receiver');
  });

  test('a long poll with nothing to receive waits WaitTimeSeconds and returns no messages', async () => {
    const url = await createQueue('long-poll-empty');
    const started = Date.now();
    assert.deepEqual(await receive({ QueueUrl: url, WaitTimeSeconds: 1 }), []);
    assert.ok(Date.now() - started >= 950);
  });

  test('a received message reappears after its visibility timeout, with a higher receive count', async () => {
    const url = await createQueue('visibility');
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'again' }));
    const [first] = await receive({ QueueUrl: url, VisibilityTimeout: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] });
    assert.equal(first!.Attributes!.ApproximateReceiveCount, '1');
    assert.deepEqual(await receive({ QueueUrl: url }), [], 'invisible while in flight');
    const received = Date.now();
    const [second] = await receive({ QueueUrl: url, WaitTimeSeconds: 3, MessageSystemAttributeNames: ['ApproximateReceiveCount'] });
    assert.equal(second!.MessageId, first!.MessageId);
    assert.equal(second!.Attributes!.ApproximateReceiveCount, '2');
    assert.ok(Date.now() - received >= 700, 'it came back only after the timeout');
    assert.notEqual(second!.ReceiptHandle, first!.ReceiptHandle);
  });

  test('ChangeMessageVisibility and ChangeMessageVisibilityBatch change when a message comes back', async () => {
    const url = await createQueue('change-visibility');
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'm' }));
    const [message] = await receive({ QueueUrl: url, VisibilityTimeout: 60 });
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 0 }));
    const [again] = await receive({ QueueUrl: url, VisibilityTimeout: 60 });
    assert.equal(again!.MessageId, message!.MessageId, 'visible again at once');

    const out = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'current', ReceiptHandle: again!.ReceiptHandle, VisibilityTimeout: 0 },
          { Id: 'stale', ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 0 },
          { Id: 'garbage', ReceiptHandle: 'not-a-handle', VisibilityTimeout: 0 },
        ],
      }),
    );
    assert.deepEqual(out.Successful, [{ Id: 'current' }]);
    const failed = Object.fromEntries(out.Failed!.map((entry) => [entry.Id, entry]));
    assert.equal(failed.stale!.Code, 'AWS.SimpleQueueService.MessageNotInflight');
    assert.equal(failed.garbage!.Code, 'ReceiptHandleIsInvalid');
    assert.equal(failed.garbage!.SenderFault, true);
    assert.ok(failed.garbage!.Message);
    assert.equal((await receive({ QueueUrl: url }))[0]?.MessageId, message!.MessageId);
  });

  test('DeleteMessage and DeleteMessageBatch remove messages for good', async () => {
    const url = await createQueue('delete-messages');
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: ['a', 'b', 'c'].map((id) => ({ Id: id, MessageBody: id })) }));
    const messages = await receive({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 1 });
    assert.equal(messages.length, 3);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: messages[0]!.ReceiptHandle }));
    const out = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'one', ReceiptHandle: messages[1]!.ReceiptHandle },
          { Id: 'two', ReceiptHandle: messages[2]!.ReceiptHandle },
          { Id: 'bad', ReceiptHandle: 'garbage' },
        ],
      }),
    );
    assert.deepEqual(out.Successful?.map((entry) => entry.Id).sort(), ['one', 'two']);
    assert.deepEqual(out.Failed?.map((entry) => [entry.Id, entry.Code]), [['bad', 'ReceiptHandleIsInvalid']]);
    const counts = await attributes(url);
    assert.equal(counts.ApproximateNumberOfMessages, '0');
    assert.equal(counts.ApproximateNumberOfMessagesNotVisible, '0');
  });

  test('SendMessageBatch sends each entry with verified MD5s; an invalid entry fails alone', async () => {
    const url = await createQueue('send-batch');
    const out = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'plain', MessageBody: 'first' },
          { Id: 'with-attributes', MessageBody: 'second', MessageAttributes: { n: { DataType: 'Number', StringValue: '7' } } },
          { Id: 'bad_body', MessageBody: 'nul \u0000 inside' },
        ],
      }),
    );
    assert.deepEqual(out.Successful!.map((entry) => entry.Id), ['plain', 'with-attributes']);
    assert.equal(out.Successful![1]!.MD5OfMessageAttributes, expectedAttributesMd5({ n: { DataType: 'Number', StringValue: '7' } }));
    assert.equal(out.Failed!.length, 1);
    assert.equal(out.Failed![0]!.Id, 'bad_body');
    assert.equal(out.Failed![0]!.Code, 'InvalidMessageContents');
    assert.equal(out.Failed![0]!.SenderFault, true);
    const bodies = (await receive({ QueueUrl: url, MaxNumberOfMessages: 10 })).map((message) => message.Body).sort();
    assert.deepEqual(bodies, ['first', 'second']);
  });

  test('DelaySeconds hides a message until its delay has passed', async () => {
    const url = await createQueue('delayed');
    const sentAt = Date.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'later', DelaySeconds: 1 }));
    assert.deepEqual(await receive({ QueueUrl: url }), []);
    assert.equal((await attributes(url)).ApproximateNumberOfMessagesDelayed, '1');
    const [message] = await receive({ QueueUrl: url, WaitTimeSeconds: 3 });
    assert.equal(message?.Body, 'later');
    assert.ok(Date.now() - sentAt >= 950, 'not before the delay');
  });

  test('a queue DelaySeconds applies to every message sent without one', async () => {
    const url = await createQueue('queue-delay', { DelaySeconds: '1' });
    const sentAt = Date.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'later' }));
    const [message] = await receive({ QueueUrl: url, WaitTimeSeconds: 3 });
    assert.equal(message?.Body, 'later');
    assert.ok(Date.now() - sentAt >= 950);
  });

  test('a message moves to the dead-letter queue after maxReceiveCount receives (RedrivePolicy via CreateQueue)', async () => {
    const dlqUrl = await createQueue('redrive-dlq');
    const dlqArn = (await attributes(dlqUrl)).QueueArn!;
    const redrivePolicy = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 });
    const url = await createQueue('redrive-source', { RedrivePolicy: redrivePolicy });
    assert.deepEqual(JSON.parse((await attributes(url)).RedrivePolicy!), { deadLetterTargetArn: dlqArn, maxReceiveCount: 2 });

    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'poison' }));
    for (let attempt = 1; attempt <= 2; attempt++) {
      const [message] = await receive({ QueueUrl: url, MessageSystemAttributeNames: ['ApproximateReceiveCount'] });
      assert.equal(message!.Attributes!.ApproximateReceiveCount, String(attempt));
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 0 }));
    }
    assert.deepEqual(await receive({ QueueUrl: url }), [], 'the third receive moves it instead');
    const [dead] = await receive({ QueueUrl: dlqUrl, MessageSystemAttributeNames: ['All'] });
    assert.equal(dead!.MessageId, sent.MessageId);
    assert.equal(dead!.Body, 'poison');
    assert.equal(dead!.Attributes!.DeadLetterQueueSourceArn, 'arn:aws:sqs:us-east-1:000000000000:redrive-source');
    assert.equal(dead!.Attributes!.ApproximateReceiveCount, '1');
  });

  test('a MessageGroupId on a standard queue is kept and returned', async () => {
    const url = await createQueue('standard-groups');
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'grouped', MessageGroupId: 'tenant-1' }));
    const [message] = await receive({ QueueUrl: url, MessageSystemAttributeNames: ['MessageGroupId'] });
    assert.equal(message!.Attributes!.MessageGroupId, 'tenant-1');
  });
});

describe('FIFO queues', () => {
  test('messages of a group come in send order, and a group waits while it has a message in flight', async () => {
    const url = await createQueue('ordered.fifo', { FifoQueue: 'true' });
    const send = (body: string, group: string) => sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageGroupId: group, MessageDeduplicationId: body }));
    const sequence: string[] = [];
    for (const [body, group] of [['a1', 'a'], ['b1', 'b'], ['a2', 'a'], ['a3', 'a'], ['b2', 'b']] as const) sequence.push((await send(body, group)).SequenceNumber!);
    assert.deepEqual([...sequence].sort(), sequence, 'sequence numbers grow');

    const batch = await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: url, Entries: ['a4', 'a5', 'a6'].map((body) => ({ Id: body, MessageBody: body, MessageGroupId: 'a', MessageDeduplicationId: body })) }),
    );
    assert.equal(batch.Successful!.length, 3);

    const received = await receive({ QueueUrl: url, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['MessageGroupId', 'SequenceNumber'], VisibilityTimeout: 30 });
    const bodies = received.map((message) => message.Body!);
    assert.deepEqual(bodies.filter((body) => body.startsWith('a')), ['a1', 'a2', 'a3', 'a4', 'a5', 'a6']);
    assert.deepEqual(bodies.filter((body) => body.startsWith('b')), ['b1', 'b2']);
    assert.equal(received[0]!.Attributes!.SequenceNumber, sequence[0]);

    await send('a7', 'a');
    assert.deepEqual(await receive({ QueueUrl: url, MaxNumberOfMessages: 10 }), [], 'group a has messages in flight');
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: received.filter((m) => m.Body!.startsWith('a')).map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })) }));
    assert.deepEqual((await receive({ QueueUrl: url, MaxNumberOfMessages: 10 })).map((message) => message.Body), ['a7']);
  });

  test('a repeated MessageDeduplicationId within 5 minutes returns the same MessageId and delivers nothing new', async () => {
    const url = await createQueue('dedup.fifo', { FifoQueue: 'true' });
    const first = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'first', MessageGroupId: 'g', MessageDeduplicationId: 'key-1' }));
    // A different body under the same id: the SDK still checks the MD5 of what it sent.
    const repeat = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'second', MessageGroupId: 'g', MessageDeduplicationId: 'key-1' }));
    assert.equal(repeat.MessageId, first.MessageId);
    assert.equal(repeat.SequenceNumber, first.SequenceNumber);
    assert.equal(repeat.MD5OfMessageBody, md5('second'));

    const [message, ...rest] = await receive({ QueueUrl: url, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['MessageDeduplicationId'] });
    assert.equal(rest.length, 0);
    assert.equal(message!.Body, 'first');
    assert.equal(message!.Attributes!.MessageDeduplicationId, 'key-1');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message!.ReceiptHandle }));
    const again = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'third', MessageGroupId: 'g', MessageDeduplicationId: 'key-1' }));
    assert.equal(again.MessageId, first.MessageId, 'still deduplicated after the delete');
    assert.deepEqual(await receive({ QueueUrl: url }), []);
  });

  test('content-based deduplication (jobs.fifo from berth.yml) deduplicates equal bodies', async () => {
    const url = `${berth.url}/000000000000/jobs.fifo`;
    const first = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'same body', MessageGroupId: 'g' }));
    const second = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'same body', MessageGroupId: 'g' }));
    assert.equal(second.MessageId, first.MessageId);
    const messages = await receive({ QueueUrl: url, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['MessageDeduplicationId'] });
    assert.equal(messages.length, 1);
    assert.equal(messages[0]!.Attributes!.MessageDeduplicationId, createHash('sha256').update('same body').digest('hex'));
  });

  test('a FIFO send without MessageGroupId is MissingParameter', async () => {
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: `${berth.url}/000000000000/jobs.fifo`, MessageBody: 'x' })), {
      name: 'MissingParameter',
      status: 400,
      message: /MessageGroupId/,
    });
  });
});

describe('errors', () => {
  test('an unknown queue is QueueDoesNotExist, Code AWS.SimpleQueueService.NonExistentQueue', async () => {
    const err = await expectSqsError(sqs.send(new GetQueueUrlCommand({ QueueName: 'no-such-queue' })), {
      name: 'QueueDoesNotExist',
      code: 'AWS.SimpleQueueService.NonExistentQueue',
      status: 400,
      message: /no-such-queue.*CreateQueue/,
    });
    assert.equal(err.Error.Code, 'AWS.SimpleQueueService.NonExistentQueue');
    await expectSqsError(sqs.send(new ReceiveMessageCommand({ QueueUrl: `${berth.url}/000000000000/no-such-queue` })), {
      name: 'QueueDoesNotExist',
      code: 'AWS.SimpleQueueService.NonExistentQueue',
      status: 400,
    });

    const response = await raw('AmazonSQS.GetQueueUrl', JSON.stringify({ QueueName: 'no-such-queue' }));
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('content-type'), 'application/x-amz-json-1.0');
    assert.equal(response.headers.get('x-amzn-query-error'), 'AWS.SimpleQueueService.NonExistentQueue;Sender');
    assert.ok(response.headers.get('x-amzn-requestid'));
    const body = (await response.json()) as Record<string, string>;
    assert.equal(body.__type, 'com.amazonaws.sqs#QueueDoesNotExist');
    assert.match(body.message!, /does not exist/);
  });

  test("internal queues (a function's async queue, fn:root) cannot be reached", async () => {
    await expectSqsError(sqs.send(new GetQueueUrlCommand({ QueueName: 'fn:root' })), { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue', status: 400 });
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: `${berth.url}/000000000000/fn:root`, MessageBody: '{}' })), {
      name: 'QueueDoesNotExist',
      code: 'AWS.SimpleQueueService.NonExistentQueue',
      status: 400,
    });
    await expectSqsError(createQueue('fn:root'), { name: 'InvalidParameterValue', status: 400, message: /QueueName/ });
    const dlqArn = 'arn:aws:sqs:us-east-1:000000000000:fn:root';
    await expectSqsError(createQueue('redrive-to-internal', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 1 }) }), {
      name: 'InvalidParameterValue',
      status: 400,
    });
  });

  test('a malformed receipt handle is ReceiptHandleIsInvalid (404)', async () => {
    await expectSqsError(sqs.send(new DeleteMessageCommand({ QueueUrl: `${berth.url}/000000000000/orders`, ReceiptHandle: 'garbage' })), {
      name: 'ReceiptHandleIsInvalid',
      status: 404,
      message: /receipt handle/,
    });
  });

  test('without x-amzn-query-mode a modeled 404 is sent as 400, as SQS does', async () => {
    const response = await raw('AmazonSQS.DeleteMessage', JSON.stringify({ QueueUrl: `${berth.url}/000000000000/orders`, ReceiptHandle: 'garbage' }), { 'x-amzn-query-mode': 'false' });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('x-amzn-query-error'), 'ReceiptHandleIsInvalid;Sender');
  });

  test('ChangeMessageVisibility of a message not in flight is MessageNotInflight', async () => {
    const url = await createQueue('not-inflight');
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'm' }));
    const [message] = await receive({ QueueUrl: url });
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message!.ReceiptHandle }));
    await expectSqsError(sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 5 })), {
      name: 'MessageNotInflight',
      code: 'AWS.SimpleQueueService.MessageNotInflight',
      status: 400,
    });
  });

  test('an empty batch is EmptyBatchRequest', async () => {
    await expectSqsError(sqs.send(new SendMessageBatchCommand({ QueueUrl: `${berth.url}/000000000000/orders`, Entries: [] })), {
      name: 'EmptyBatchRequest',
      code: 'AWS.SimpleQueueService.EmptyBatchRequest',
      status: 400,
    });
    await expectSqsError(sqs.send(new DeleteMessageBatchCommand({ QueueUrl: `${berth.url}/000000000000/orders`, Entries: [] })), {
      name: 'EmptyBatchRequest',
      code: 'AWS.SimpleQueueService.EmptyBatchRequest',
      status: 400,
    });
  });

  test('more than 10 entries is TooManyEntriesInBatchRequest', async () => {
    const Entries = Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: 'x' }));
    await expectSqsError(sqs.send(new SendMessageBatchCommand({ QueueUrl: `${berth.url}/000000000000/orders`, Entries })), {
      name: 'TooManyEntriesInBatchRequest',
      code: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
      status: 400,
      message: /11/,
    });
  });

  test('repeated entry ids are BatchEntryIdsNotDistinct', async () => {
    const Entries = [
      { Id: 'same', ReceiptHandle: 'a' },
      { Id: 'same', ReceiptHandle: 'b' },
    ];
    await expectSqsError(sqs.send(new DeleteMessageBatchCommand({ QueueUrl: `${berth.url}/000000000000/orders`, Entries })), {
      name: 'BatchEntryIdsNotDistinct',
      code: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
      status: 400,
      message: /same/,
    });
  });

  test('an entry id with characters other than letters, digits, - and _ is InvalidBatchEntryId', async () => {
    await expectSqsError(sqs.send(new SendMessageBatchCommand({ QueueUrl: `${berth.url}/000000000000/orders`, Entries: [{ Id: 'no spaces!', MessageBody: 'x' }] })), {
      name: 'InvalidBatchEntryId',
      code: 'AWS.SimpleQueueService.InvalidBatchEntryId',
      status: 400,
      message: /no spaces!/,
    });
  });

  test('a body with characters SQS forbids is InvalidMessageContents', async () => {
    for (const body of ['nul \u0000', 'bell \u0007', 'lone surrogate \uD800', 'non-character \uFFFF']) {
      await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: `${berth.url}/000000000000/orders`, MessageBody: body })), {
        name: 'InvalidMessageContents',
        status: 400,
        message: /Invalid binary character/,
      });
    }
  });

  test('a message over events.maxPayload is InvalidMessageContents, also when the request itself is too large to read', async () => {
    const url = await createQueue('size-limit');
    const limit = Number((await attributes(url)).MaximumMessageSize);
    assert.equal(limit, 64 * 1024);
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(limit) }));
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(limit + 1) })), {
      name: 'InvalidMessageContents',
      status: 400,
      message: /larger than/,
    });
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(4 * limit) })), {
      name: 'InvalidMessageContents',
      status: 400,
      message: /events\.maxPayload/,
    });
    // Escaping doubles these bytes on the wire, yet the message itself fits.
    const quotes = '"'.repeat(limit);
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: quotes }));
    assert.equal(sent.MD5OfMessageBody, md5(quotes));
  });

  test('a batch whose messages together exceed the limit is BatchRequestTooLong', async () => {
    const Entries = Array.from({ length: 10 }, (_, i) => ({ Id: `e${i}`, MessageBody: 'x'.repeat(10 * 1024) }));
    await expectSqsError(sqs.send(new SendMessageBatchCommand({ QueueUrl: `${berth.url}/000000000000/orders`, Entries })), {
      name: 'BatchRequestTooLong',
      code: 'AWS.SimpleQueueService.BatchRequestTooLong',
      status: 400,
      message: /events\.maxPayload/,
    });
  });

  test('a malformed JSON body is SerializationException (400)', async () => {
    for (const body of ['{"QueueUrl": ', '[1, 2]', '"text"']) {
      const response = await raw('AmazonSQS.SendMessage', body);
      assert.equal(response.status, 400, body);
      assert.equal(response.headers.get('x-amzn-query-error'), 'SerializationException;Sender');
      const error = (await response.json()) as Record<string, string>;
      assert.equal(error.__type, 'com.amazonaws.sqs#SerializationException');
      assert.match(error.message!, /JSON/);
    }
    const wrongType = await raw('AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl: `${berth.url}/000000000000/orders`, MaxNumberOfMessages: 'ten' }));
    assert.equal(wrongType.status, 400);
    assert.match(((await wrongType.json()) as Record<string, string>).message!, /MaxNumberOfMessages must be a whole number/);
  });

  test('an unknown or wrong X-Amz-Target is InvalidAction', async () => {
    for (const target of ['AmazonSQS.SendMessages', 'DynamoDB_20120810.ListTables', 'AmazonSQS.constructor']) {
      const response = await raw(target, '{}');
      assert.equal(response.status, 400, target);
      assert.equal(response.headers.get('x-amzn-query-error'), 'InvalidAction;Sender');
      const error = (await response.json()) as Record<string, string>;
      assert.equal(error.__type, 'com.amazonaws.sqs#InvalidAction');
      assert.ok(error.message!.includes(target) && error.message!.includes('AmazonSQS.<Operation>'), error.message);
    }
  });

  test('SetQueueAttributes is UnsupportedOperation, with what to do instead', async () => {
    await expectSqsError(sqs.send(new SetQueueAttributesCommand({ QueueUrl: `${berth.url}/000000000000/orders`, Attributes: { VisibilityTimeout: '5' } })), {
      name: 'UnsupportedOperation',
      code: 'AWS.SimpleQueueService.UnsupportedOperation',
      status: 400,
      message: /berth\.yml/,
    });
  });

  test('bad CreateQueue input: InvalidAttributeValue, InvalidAttributeName, InvalidParameterValue', async () => {
    await expectSqsError(createQueue('bad-attrs', { VisibilityTimeout: '50000' }), { name: 'InvalidAttributeValue', status: 400, message: /VisibilityTimeout.*0 to 43200/ });
    await expectSqsError(createQueue('bad-attrs', { DelaySeconds: 'soon' }), { name: 'InvalidAttributeValue', status: 400, message: /DelaySeconds/ });
    await expectSqsError(createQueue('bad-attrs', { FifoQueue: 'yes' }), { name: 'InvalidAttributeValue', status: 400, message: /FifoQueue/ });
    await expectSqsError(createQueue('bad-attrs', { Bogus: '1' }), { name: 'InvalidAttributeName', status: 400, message: /Bogus/ });
    await expectSqsError(createQueue('bad-attrs', { ContentBasedDeduplication: 'true' }), { name: 'InvalidAttributeName', status: 400, message: /FIFO/ });
    await expectSqsError(createQueue('bad name'), { name: 'InvalidParameterValue', status: 400, message: /QueueName/ });
    await expectSqsError(createQueue('x'.repeat(81)), { name: 'InvalidParameterValue', status: 400 });
    await expectSqsError(createQueue('standard', { FifoQueue: 'true' }), { name: 'InvalidParameterValue', status: 400, message: /\.fifo/ });
    await expectSqsError(createQueue('bad-redrive', { RedrivePolicy: 'not json' }), { name: 'InvalidParameterValue', status: 400, message: /RedrivePolicy/ });
    const missingDlq = JSON.stringify({ deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:no-dlq', maxReceiveCount: 3 });
    await expectSqsError(createQueue('bad-redrive', { RedrivePolicy: missingDlq }), { name: 'InvalidParameterValue', status: 400, message: /no-dlq does not exist/ });
    const fifoDlq = JSON.stringify({ deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:jobs.fifo', maxReceiveCount: 3 });
    await expectSqsError(createQueue('bad-redrive', { RedrivePolicy: fifoDlq }), { name: 'InvalidParameterValue', status: 400, message: /type/ });
    assert.deepEqual((await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'bad' }))).QueueUrls, [], 'nothing was created');
  });

  test('out-of-range ReceiveMessage and SendMessage parameters are InvalidParameterValue', async () => {
    const QueueUrl = `${berth.url}/000000000000/orders`;
    await expectSqsError(receive({ QueueUrl, MaxNumberOfMessages: 11 }), { name: 'InvalidParameterValue', status: 400, message: /MaxNumberOfMessages.*between 1 and 10/ });
    await expectSqsError(receive({ QueueUrl, WaitTimeSeconds: 21 }), { name: 'InvalidParameterValue', status: 400, message: /WaitTimeSeconds/ });
    await expectSqsError(receive({ QueueUrl, VisibilityTimeout: 43_201 }), { name: 'InvalidParameterValue', status: 400, message: /VisibilityTimeout/ });
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x', DelaySeconds: 901 })), { name: 'InvalidParameterValue', status: 400, message: /DelaySeconds/ });
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x', MessageDeduplicationId: 'k' })), {
      name: 'InvalidParameterValue',
      status: 400,
      message: /FIFO/,
    });
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x', MessageAttributes: { n: { DataType: 'Number', StringValue: 'abc' } } })), {
      name: 'InvalidParameterValue',
      status: 400,
      message: /not a number/,
    });
    await expectSqsError(receive({ QueueUrl, AttributeNames: ['Bogus' as never] }), { name: 'InvalidAttributeName', status: 400, message: /Bogus/ });
  });

  test('a QueueUrl that is not a URL is InvalidAddress (404)', async () => {
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: 'orders', MessageBody: 'x' })), { name: 'InvalidAddress', status: 404, message: /not a valid queue URL/ });
  });
});

describe('routing', () => {
  test("a user's POST / route still gets requests without X-Amz-Target", async () => {
    const response = await fetch(`${berth.url}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"hello":"user"}' });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'user route got {"hello":"user"}');
  });
});
