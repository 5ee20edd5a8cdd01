/**
 * Topics end to end: one publish (HTTP API, CLI, berth/client) fans out to queue,
 * function and HTTP subscriptions through filter policies, in the SNS shapes.
 * Queue contents are read by functions with queue triggers that append what they
 * get to a file; the HTTP subscriber is a node:http server in this process.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sleep, waitFor } from './helpers/lambda.js';
import { readRecords } from './helpers/records.js';
import { makeProject, runCli, startBerth, type RunningBerth } from './helpers/project.js';

// Typed loosely: the test checks the shapes, it does not trust them.
type Json = Record<string, any>;

/** One line per SQS record (queue triggers) or per event (anything else). */
const RECORD = `import { appendFileSync } from 'node:fs';
export const handler = async (event, context) => {
  const base = { fn: context.functionName, id: context.awsRequestId, attempt: context.attempt };
  const lines = event?.Records?.[0]?.eventSource === 'aws:sqs'
    ? event.Records.map((record) => ({ ...base, record }))
    : [{ ...base, event }];
  for (const line of lines) appendFileSync(process.env.RECORD_FILE, JSON.stringify(line) + '\\n');
  return {};
};
`;

const PUBLISHER = `import { publish } from 'berth/client';
export const handler = async (event) => publish(event.topic, event.message, event.options);
`;

/** The filter-policy subscribers of topic "filtered": function name → policy (YAML). */
const FILTERS: Record<string, string> = {
  fExact: '{ color: [red, blue] }',
  fNumeric: '{ price: [{ numeric: [">", 10, "<=", 100] }] }',
  fPrefix: '{ region: [{ prefix: eu- }] }',
  fAnythingBut: '{ status: [{ anything-but: [spam, test] }] }',
  fExists: '{ trace: [{ exists: true }] }',
  fNotExists: '{ trace: [{ exists: false }] }',
  fArray: '{ tags: [vip] }',
};

function berthYml(recordFile: string, sink: string): string {
  return `
defaults:
  environment:
    RECORD_FILE: ${JSON.stringify(recordFile)}
queues:
  hot-leads: {}
  all-raw: {}
topics:
  leads:
    subscriptions:
      - queue: hot-leads
        filter: { kind: [hot], score: [{ numeric: [">=", 50] }] }
      - queue: all-raw
        raw: true
      - function: onLead
      - http: ${sink}/sink
        retries: 3
  filtered:
    subscriptions:
${Object.entries(FILTERS)
  .map(([fn, filter]) => `      - function: ${fn}\n        filter: ${filter}`)
  .join('\n')}
  doomed:
    subscriptions:
      - http: ${sink}/fail
        retries: 1
functions:
  onLead: { handler: record.handler }
  hotReader:
    handler: record.handler
    events:
      - queue: hot-leads
  rawReader:
    handler: record.handler
    events:
      - queue: all-raw
  publisher: { handler: publisher.handler }
${Object.keys(FILTERS)
  .map((fn) => `  ${fn}: { handler: record.handler }`)
  .join('\n')}
`;
}

interface SinkRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  envelope: Json;
  at: number;
}

/**
 * The HTTP subscriber. /sink answers 200, except for a message whose text contains
 * "flaky": 500 on its first two deliveries. /fail always answers 500.
 */
function startSink(): Promise<{ url: string; requests: SinkRequest[]; server: http.Server }> {
  const requests: SinkRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let envelope: Json = {};
      try {
        envelope = JSON.parse(body) as Json;
      } catch {
        // Recorded as is; the test asserts on it.
      }
      const entry = { path: req.url ?? '', headers: req.headers, body, envelope, at: Date.now() };
      requests.push(entry);
      const earlier = requests.filter((r) => r.path === entry.path && r.envelope.MessageId === envelope.MessageId).length;
      const fail = entry.path === '/fail' || (String(envelope.Message).includes('flaky') && earlier <= 2);
      res.writeHead(fail ? 500 : 200).end(fail ? 'try again' : 'ok');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, requests, server });
    });
  });
}

let berth: RunningBerth;
let sink: Awaited<ReturnType<typeof startSink>>;
let recordFile: string;

interface Recorded {
  fn: string;
  id: string;
  attempt: number;
  /** Set for queue-trigger deliveries: one SQS record. */
  record?: Json;
  /** Set for other invocations: the whole event. */
  event?: Json;
}

function recorded(): Recorded[] {
  return readRecords<Recorded>(recordFile);
}

/** The text a recorded invocation saw as the published message, whichever way it was delivered. */
function messageText(entry: Recorded): string {
  if (entry.record) {
    if (entry.fn === 'rawReader') return entry.record.body as string;
    return (JSON.parse(entry.record.body as string) as Json).Message as string;
  }
  return entry.event?.Records?.[0]?.Sns?.Message as string;
}

/** What `fn` recorded for messages containing `marker`. */
function recordsOf(fn: string, marker: string): Recorded[] {
  return recorded().filter((entry) => entry.fn === fn && String(messageText(entry)).includes(marker));
}

function waitForRecord(fn: string, marker: string, timeoutMs = 15_000): Promise<Recorded> {
  return waitFor(() => recordsOf(fn, marker)[0], { what: `${fn} to receive the message "${marker}"`, timeoutMs });
}

function sinkRequestsFor(messageId: string, sinkPath = '/sink'): SinkRequest[] {
  return sink.requests.filter((r) => r.path === sinkPath && r.envelope.MessageId === messageId);
}

async function publish(topic: string, input: Json, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${berth.url}/_berth/topics/${encodeURIComponent(topic)}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

async function published(topic: string, input: Json, headers: Record<string, string> = {}): Promise<Json> {
  const { status, body } = await publish(topic, input, headers);
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

before(async () => {
  sink = await startSink();
  const dir = makeProject({ 'record.mjs': RECORD, 'publisher.mjs': PUBLISHER });
  recordFile = path.join(dir, 'records.jsonl');
  writeFileSync(path.join(dir, 'berth.yml'), berthYml(recordFile, sink.url));
  berth = await startBerth(dir);
});

after(async () => {
  assert.equal(await berth.stop(), 0);
  sink.server.closeAllConnections();
  await new Promise((resolve) => sink.server.close(resolve));
});

describe('one publish to "leads" with a subject and attributes', () => {
  let result: Json;
  const message = { marker: 'envelope-1', leadId: 7 };
  const text = JSON.stringify(message);

  before(async () => {
    result = await published('leads', {
      message,
      subject: 'New lead',
      attributes: { kind: 'hot', score: 75, tags: ['a', 'b'] },
    });
  });

  test('answers with the message id and the number of subscriptions it went to', () => {
    assert.match(result.messageId, /^[0-9a-f-]{36}$/);
    assert.equal(result.deliveries, 4, 'hot-leads (filter matches), all-raw, onLead and the HTTP endpoint');
    assert.equal(result.duplicate, false);
  });

  test('the filtered queue gets the SNS envelope as its body, with no SQS message attributes', async () => {
    const { record } = await waitForRecord('hotReader', 'envelope-1');
    const envelope = JSON.parse(record!.body) as Json;
    assert.equal(envelope.Type, 'Notification');
    assert.equal(envelope.MessageId, result.messageId);
    assert.match(envelope.TopicArn, /^arn:aws:sns:[a-z0-9-]+:\d{12}:leads$/);
    assert.equal(envelope.Subject, 'New lead');
    assert.equal(envelope.Message, text, 'a JSON message is delivered as its JSON text');
    assert.ok(!Number.isNaN(Date.parse(envelope.Timestamp)), `Timestamp ${envelope.Timestamp} is a date`);
    assert.equal(envelope.SignatureVersion, '1');
    assert.ok('Signature' in envelope && 'SigningCertURL' in envelope && 'UnsubscribeURL' in envelope, Object.keys(envelope).join(', '));
    assert.deepEqual(envelope.MessageAttributes, {
      kind: { Type: 'String', Value: 'hot' },
      score: { Type: 'Number', Value: '75' },
      tags: { Type: 'String.Array', Value: '["a","b"]' },
    });
    assert.deepEqual(record!.messageAttributes, {}, 'the attributes travel inside the envelope, not beside it');
    assert.equal(record!.eventSource, 'aws:sqs');
    assert.match(record!.eventSourceARN, /:hot-leads$/);
  });

  test('the raw subscription gets the message itself as the body, with its attributes as SQS message attributes', async () => {
    const { record } = await waitForRecord('rawReader', 'envelope-1');
    assert.equal(record!.body, text);
    const attributes = record!.messageAttributes as Json;
    assert.equal(attributes.kind.dataType, 'String');
    assert.equal(attributes.kind.stringValue, 'hot');
    assert.equal(attributes.score.dataType, 'Number');
    assert.equal(attributes.score.stringValue, '75');
    assert.ok(attributes.tags, 'the String.Array attribute is kept too');
  });

  test('the function subscriber gets an SNS event (Records[0].Sns, SigningCertUrl spelling)', async () => {
    const { event } = await waitForRecord('onLead', 'envelope-1');
    assert.equal(event!.Records.length, 1);
    const record = event!.Records[0] as Json;
    assert.equal(record.EventSource, 'aws:sns');
    assert.equal(record.EventVersion, '1.0');
    const sns = record.Sns as Json;
    assert.ok(record.EventSubscriptionArn.startsWith(`${sns.TopicArn}:`), `${record.EventSubscriptionArn} is a subscription of ${sns.TopicArn}`);
    assert.equal(sns.Type, 'Notification');
    assert.equal(sns.MessageId, result.messageId);
    assert.match(sns.TopicArn, /:leads$/);
    assert.equal(sns.Subject, 'New lead');
    assert.equal(sns.Message, text);
    assert.deepEqual(sns.MessageAttributes, {
      kind: { Type: 'String', Value: 'hot' },
      score: { Type: 'Number', Value: '75' },
      tags: { Type: 'String.Array', Value: '["a","b"]' },
    });
    assert.ok('SigningCertUrl' in sns && 'UnsubscribeUrl' in sns, `the Lambda event spells them …Url: ${Object.keys(sns).join(', ')}`);
    assert.ok(!('SigningCertURL' in sns) && !('UnsubscribeURL' in sns), 'not …URL as in the HTTP/SQS envelope');
    assert.equal(typeof sns.Timestamp, 'string');
  });

  test('the HTTP subscriber gets a POST with x-amz-sns-message-type: Notification and the envelope', async () => {
    const [request] = await waitFor(() => (sinkRequestsFor(result.messageId).length > 0 ? sinkRequestsFor(result.messageId) : undefined), {
      what: 'the POST to the HTTP subscriber',
    });
    assert.equal(request!.headers['x-amz-sns-message-type'], 'Notification');
    assert.equal(request!.headers['x-amz-sns-message-id'], result.messageId);
    assert.match(String(request!.headers['x-amz-sns-topic-arn']), /:leads$/);
    assert.equal(request!.headers['x-berth-attempt'], '1');
    assert.equal(request!.envelope.Type, 'Notification');
    assert.equal(request!.envelope.Message, text);
    assert.equal(request!.envelope.Subject, 'New lead');
    assert.deepEqual(request!.envelope.MessageAttributes.kind, { Type: 'String', Value: 'hot' });
  });
});

test('a plain-text message arrives unchanged: raw body, envelope Message, Sns.Message', async () => {
  const text = 'plain text marker-plain, "quoted" and ünïcödé';
  const result = await published('leads', { message: text });
  assert.equal(result.deliveries, 3, 'no attributes: the hot-leads filter does not match');
  assert.equal((await waitForRecord('rawReader', 'marker-plain')).record!.body, text);
  const { event } = await waitForRecord('onLead', 'marker-plain');
  assert.equal(event!.Records[0].Sns.Message, text);
  assert.deepEqual(event!.Records[0].Sns.MessageAttributes, {});
  assert.equal('Subject' in event!.Records[0].Sns, false, 'no subject was given');
});

test('a message larger than events.inlineThreshold (256 KiB) reaches every subscriber whole', async () => {
  const text = `marker-large ${'x'.repeat(300 * 1024)} end`;
  const result = await published('leads', { message: text, attributes: { kind: 'hot', score: 51 } });
  assert.equal(result.deliveries, 4);
  assert.equal((await waitForRecord('rawReader', 'marker-large')).record!.body, text);
  assert.equal(JSON.parse((await waitForRecord('hotReader', 'marker-large')).record!.body).Message, text);
  assert.equal((await waitForRecord('onLead', 'marker-large')).event!.Records[0].Sns.Message, text);
  const [request] = await waitFor(() => (sinkRequestsFor(result.messageId).length > 0 ? sinkRequestsFor(result.messageId) : undefined), { what: 'the large POST' });
  assert.equal(request!.envelope.Message, text);
});

// These wait on deliveries and backoffs and touch different messages, so they overlap.
describe('filter policies and HTTP retries', { concurrency: true }, () => {
  test('the hot-leads filter needs kind=hot AND score >= 50 (a Number attribute)', async () => {
    const cases = [
      { marker: 'and-hot-40', attributes: { kind: 'hot', score: 40 }, hot: false },
      { marker: 'and-cold-90', attributes: { kind: 'cold', score: 90 }, hot: false },
      { marker: 'and-hot-only', attributes: { kind: 'hot' }, hot: false },
      { marker: 'and-hot-50', attributes: { kind: 'hot', score: 50 }, hot: true },
      { marker: 'and-hot-typed', attributes: { kind: 'hot', score: { DataType: 'Number', StringValue: '99.5' } }, hot: true },
      { marker: 'and-hot-string', attributes: { kind: 'hot', score: '75' }, hot: false },
    ];
    for (const { marker, attributes, hot } of cases) {
      const result = await published('leads', { message: marker, attributes });
      assert.equal(result.deliveries, hot ? 4 : 3, `${marker}: ${JSON.stringify(attributes)}`);
    }
    // Every message reaches the unfiltered raw queue; once all of them have, the filtered one has had its chance.
    for (const { marker } of cases) await waitForRecord('rawReader', marker);
    for (const { marker } of cases.filter((c) => c.hot)) await waitForRecord('hotReader', marker);
    await sleep(300);
    for (const { marker, hot } of cases) {
      assert.equal(recordsOf('hotReader', marker).length, hot ? 1 : 0, `${marker} ${hot ? 'reaches' : 'skips'} hot-leads`);
    }
  });

  test('filter policies: exact, numeric range, prefix, anything-but, exists, String.Array', async () => {
    const cases: { marker: string; attributes: Json; expected: string[] }[] = [
      {
        marker: 'filter-all',
        attributes: { color: 'red', price: 50, region: 'eu-west-1', status: 'ok', trace: 't-1', tags: ['new', 'vip'] },
        expected: ['fExact', 'fNumeric', 'fPrefix', 'fAnythingBut', 'fExists', 'fArray'],
      },
      {
        marker: 'filter-none',
        attributes: { color: 'green', price: 100.5, region: 'us-east-1', status: 'spam', tags: ['new'] },
        expected: ['fNotExists'],
      },
      // A policy key whose attribute is missing fails, except exists: false.
      { marker: 'filter-empty', attributes: {}, expected: ['fNotExists'] },
      {
        marker: 'filter-strings',
        attributes: { color: 'blue', price: '50', status: 'test', trace: { DataType: 'String', StringValue: '' } },
        expected: ['fExact', 'fExists'],
      },
      { marker: 'filter-upper-bound', attributes: { price: 100, region: 'eu-' }, expected: ['fNumeric', 'fPrefix', 'fNotExists'] },
      { marker: 'filter-lower-bound', attributes: { price: 10, region: 'EU-west', status: 'spam-ish' }, expected: ['fAnythingBut', 'fNotExists'] },
      { marker: 'filter-array-exact', attributes: { tags: ['vip'], color: ['red'] }, expected: ['fArray', 'fExact', 'fNotExists'] },
    ];
    for (const { marker, attributes, expected } of cases) {
      const result = await published('filtered', { message: marker, attributes });
      assert.equal(result.deliveries, expected.length, `${marker} ${JSON.stringify(attributes)} goes to ${expected.join(', ')}`);
    }
    for (const { marker, expected } of cases) for (const fn of expected) await waitForRecord(fn, marker);
    await sleep(300);
    for (const { marker, expected } of cases) {
      const got = Object.keys(FILTERS).filter((fn) => recordsOf(fn, marker).length > 0);
      assert.deepEqual(got.sort(), [...expected].sort(), `${marker} reached exactly its matching subscriptions`);
      for (const fn of got) assert.equal(recordsOf(fn, marker).length, 1, `${marker} reached ${fn} once`);
    }
  });

  test('an HTTP subscriber answering 500 is retried (x-berth-attempt 1, 2, 3) until it answers 200, and never more than retries + 1 times', async () => {
    const [flaky, doomed] = await Promise.all([
      published('leads', { message: 'flaky-1' }),
      published('doomed', { message: 'doomed-1' }),
    ]);
    // leads: retries 3, the endpoint fails twice then succeeds.
    const attempts = await waitFor(() => (sinkRequestsFor(flaky.messageId).length >= 3 ? sinkRequestsFor(flaky.messageId) : undefined), {
      what: 'three deliveries of the flaky message',
      timeoutMs: 15_000,
    });
    assert.deepEqual(attempts.map((r) => r.headers['x-berth-attempt']), ['1', '2', '3']);
    assert.ok(attempts.every((r) => r.envelope.MessageId === flaky.messageId && r.envelope.Message === 'flaky-1'), 'every attempt carries the same envelope');
    for (let i = 1; i < attempts.length; i++) assert.ok(attempts[i]!.at - attempts[i - 1]!.at >= 250, 'retries back off');

    // doomed: retries 1, the endpoint always fails: exactly two attempts, then it gives up and says so.
    const failed = await waitFor(() => (sinkRequestsFor(doomed.messageId, '/fail').length >= 2 ? sinkRequestsFor(doomed.messageId, '/fail') : undefined), {
      what: 'two deliveries of the doomed message',
      timeoutMs: 15_000,
    });
    assert.deepEqual(failed.map((r) => r.headers['x-berth-attempt']), ['1', '2']);
    const gatewayLog = path.join(berth.dataDir, 'logs', 'gateway.log');
    await waitFor(() => existsSync(gatewayLog) && readFileSync(gatewayLog, 'utf8').includes(doomed.messageId), {
      what: 'the failed delivery in the gateway log',
      timeoutMs: 10_000,
    });
    // The next retry would have come after at most 2 s (and a succeeded one after at most 4 s).
    await sleep(2500);
    assert.equal(sinkRequestsFor(doomed.messageId, '/fail').length, 2, 'retries: 1 means at most 2 attempts');
    assert.equal(sinkRequestsFor(flaky.messageId).length, 3, 'nothing after the 200');
  });
});

describe('idempotency keys', () => {
  test('a repeat gets the first messageId with duplicate: true, and nothing is delivered twice', async () => {
    const headers = { 'x-berth-idempotency-key': 'idem-sequential' };
    const input = { message: 'idem-seq-marker', attributes: { kind: 'hot', score: 99 } };
    const first = await published('leads', input, headers);
    const second = await published('leads', input, headers);
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.messageId, first.messageId);
    assert.equal(second.deliveries, first.deliveries);
    assert.equal(first.deliveries, 4);

    // Concurrent repeats: one runs, the other waits for it.
    const concurrentHeaders = { 'x-berth-idempotency-key': 'idem-concurrent' };
    const both = await Promise.all([
      published('leads', { ...input, message: 'idem-con-marker' }, concurrentHeaders),
      published('leads', { ...input, message: 'idem-con-marker' }, concurrentHeaders),
    ]);
    assert.equal(both[0].messageId, both[1].messageId);
    assert.deepEqual(both.map((r) => r.duplicate).sort(), [false, true]);

    for (const marker of ['idem-seq-marker', 'idem-con-marker']) {
      for (const fn of ['hotReader', 'rawReader', 'onLead']) await waitForRecord(fn, marker);
    }
    await waitFor(() => sinkRequestsFor(first.messageId).length > 0 && sinkRequestsFor(both[0].messageId).length > 0, { what: 'both HTTP deliveries' });
    await sleep(500);
    for (const marker of ['idem-seq-marker', 'idem-con-marker']) {
      for (const fn of ['hotReader', 'rawReader', 'onLead']) assert.equal(recordsOf(fn, marker).length, 1, `${marker} reached ${fn} once`);
    }
    assert.equal(sinkRequestsFor(first.messageId).length, 1);
    assert.equal(sinkRequestsFor(both[0].messageId).length, 1);
  });

  test('the same key on another topic is a different message', async () => {
    const headers = { 'x-berth-idempotency-key': 'idem-sequential' };
    const other = await published('filtered', { message: 'idem-other-topic', attributes: { color: 'red' } }, headers);
    assert.equal(other.duplicate, false);
    assert.equal(other.deliveries, 2, 'fExact and fNotExists');
  });
});

describe('errors', () => {
  test('an unknown topic is a 404 that names it and says where to declare it', async () => {
    const { status, body } = await publish('no-such-topic', { message: 'x' });
    assert.equal(status, 404);
    assert.equal(body.code, 'TopicNotFound');
    assert.match(body.message, /no-such-topic/);
    assert.match(body.message, /topics:/);
  });

  test('a missing message or a malformed attribute is a 400 naming the field', async () => {
    const missing = await publish('leads', { subject: 'no message' });
    assert.equal(missing.status, 400);
    assert.match(missing.body.message, /message/);
    const bad = await publish('leads', { message: 'x', attributes: { flag: true } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /attributes\.flag/);
    const notJson = await fetch(`${berth.url}/_berth/topics/leads/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    assert.equal(notJson.status, 400);
    assert.match(((await notJson.json()) as Json).message, /not valid JSON/);
  });
});

describe('berth publish', { concurrency: true }, () => {
  const cli = (args: string[]) => runCli(args, { cwd: berth.dir, home: berth.home });

  test('--data, --attr, --subject and --idempotency-key', async () => {
    const args = ['publish', 'leads', '--data', '{"marker":"cli-publish-1"}', '--attr', 'kind=cold', '--attr', 'source=cli', '--subject', 'From the CLI', '--idempotency-key', 'cli-key-1'];
    const first = await cli(args);
    assert.equal(first.code, 0, first.stderr);
    const result = JSON.parse(first.stdout) as Json;
    assert.match(result.messageId, /^[0-9a-f-]{36}$/);
    assert.equal(result.deliveries, 3, 'all-raw, onLead and the HTTP endpoint (kind=cold skips hot-leads)');
    assert.equal(result.duplicate, false);

    const { record } = await waitForRecord('rawReader', 'cli-publish-1');
    assert.equal(record!.body, '{"marker":"cli-publish-1"}');
    assert.equal(record!.messageAttributes.kind.stringValue, 'cold');
    assert.equal(record!.messageAttributes.source.stringValue, 'cli');
    const { event } = await waitForRecord('onLead', 'cli-publish-1');
    assert.equal(event!.Records[0].Sns.Subject, 'From the CLI');
    assert.equal(event!.Records[0].Sns.MessageId, result.messageId);

    const again = await cli(args);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { ...result, duplicate: true });
    await sleep(300);
    assert.equal(recordsOf('onLead', 'cli-publish-1').length, 1);
  });

  test('an unknown topic exits non-zero and names it', async () => {
    const run = await cli(['publish', 'no-such-topic', '--data', '"x"']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /no-such-topic/);
    assert.match(run.stderr, /Topic does not exist/);
    assert.equal(run.stdout, '');
  });

  test('--attr name:Number=value sends a Number attribute, so numeric filters match from the CLI', async () => {
    const run = await cli(['publish', 'leads', '--data', '{"marker":"cli-number-1"}', '--attr', 'kind=hot', '--attr', 'score:Number=75']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as Json).deliveries, 4, 'hot-leads matched kind=hot and score >= 50');
    const { record } = await waitForRecord('hotReader', 'cli-number-1');
    const envelope = JSON.parse(record!.body as string) as Json;
    assert.deepEqual(envelope.MessageAttributes.score, { Type: 'Number', Value: '75' });
  });

  test('--attr with an unknown type, or a Number that is not a number, is refused before sending', async () => {
    const badType = await cli(['publish', 'leads', '--data', '"x"', '--attr', 'score:Integer=75']);
    assert.notEqual(badType.code, 0);
    assert.match(badType.stderr, /unknown type "Integer"; use String, Number, String.Array/);
    const notNumber = await cli(['publish', 'leads', '--data', '"x"', '--attr', 'score:Number=high']);
    assert.notEqual(notNumber.code, 0);
    assert.match(notNumber.stderr, /is typed Number but "high" is not a number/);
  });
});

test('berth/client publish() from inside a handler fans out like the HTTP API', async () => {
  const response = await fetch(`${berth.url}/2015-03-31/functions/publisher/invocations`, {
    method: 'POST',
    body: JSON.stringify({
      topic: 'leads',
      message: { marker: 'from-handler-1' },
      options: { subject: 'From a handler', attributes: { kind: 'hot', score: 80, tags: ['x'] }, idempotencyKey: 'handler-key-1' },
    }),
  });
  const result = (await response.json()) as Json;
  assert.equal(response.headers.get('x-amz-function-error'), null, JSON.stringify(result));
  assert.equal(result.deliveries, 4);
  assert.equal(result.duplicate, false);
  const { record } = await waitForRecord('hotReader', 'from-handler-1');
  const envelope = JSON.parse(record!.body) as Json;
  assert.equal(envelope.MessageId, result.messageId);
  assert.equal(envelope.Subject, 'From a handler');
  assert.equal(envelope.Message, '{"marker":"from-handler-1"}');
  assert.deepEqual(envelope.MessageAttributes.score, { Type: 'Number', Value: '80' });
  assert.deepEqual(envelope.MessageAttributes.tags, { Type: 'String.Array', Value: '["x"]' });

  // Its key is the same key space as X-Berth-Idempotency-Key.
  const repeat = await published('leads', { message: 'ignored' }, { 'x-berth-idempotency-key': 'handler-key-1' });
  assert.deepEqual(repeat, { ...result, duplicate: true });
});
