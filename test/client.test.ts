/**
 * berth/client from inside handlers (send, publish, invoke, errors), from outside
 * with BERTH_URL, and the CLI commands that reach a running Berth the same way:
 * invoke --async, send, invoke --idempotency-key, and the attempts of a retried
 * event in GET /_berth/invocations/<id> and `berth logs`.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { functionLogs, invoke, sleep, waitFor } from './helpers/lambda.js';
import { readRecords } from './helpers/records.js';
import { berthHome, makeProject, runCli, startBerth, type RunningBerth } from './helpers/project.js';

// Typed loosely: the test checks the shapes, it does not trust them.
type Json = Record<string, any>;

/** Runs one berth/client call named by event.op and reports its result or its error. */
const CALLER = `import { send, publish, invoke, BerthClientError } from 'berth/client';
const ops = {
  send: (e) => send(e.queue, e.body, e.options),
  publish: (e) => publish(e.topic, e.message, e.options),
  invoke: (e) => invoke(e.fn, e.event, e.options),
};
export const handler = async (event) => {
  try {
    return { ok: true, result: await ops[event.op](event) };
  } catch (err) {
    return { ok: false, error: { name: err.name, message: err.message, status: err.status, code: err.code, isClientError: err instanceof BerthClientError } };
  }
};
`;

/** One line per SQS record, else per event; fails while context.attempt < FAIL_UNTIL. */
const RECORD = `import { appendFileSync } from 'node:fs';
export const handler = async (event, context) => {
  const base = { fn: context.functionName, id: context.awsRequestId, attempt: context.attempt };
  const lines = event?.Records?.[0]?.eventSource === 'aws:sqs'
    ? event.Records.map((record) => ({ ...base, record }))
    : [{ ...base, event }];
  for (const line of lines) appendFileSync(process.env.RECORD_FILE, JSON.stringify(line) + '\\n');
  console.log('attempt', context.attempt);
  if (context.attempt < Number(process.env.FAIL_UNTIL ?? 0)) throw new Error('failing attempt ' + context.attempt);
  return { recorded: true };
};
`;

const ADDER = `export const handler = async (event, context) => ({ sum: event.a + event.b, by: context.functionName });
`;

const FAILING = `export const handler = async () => {
  throw new TypeError('deliberately broken');
};
`;

/** Records each run and answers with something no second run could repeat. */
const ONCE = `import { appendFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
export const handler = async (event, context) => {
  const runId = randomUUID();
  appendFileSync(process.env.RECORD_FILE, JSON.stringify({ fn: context.functionName, id: context.awsRequestId, attempt: context.attempt, event, runId }) + '\\n');
  return { runId, marker: event.marker };
};
`;

function berthYml(recordFile: string): string {
  return `
defaults:
  environment:
    RECORD_FILE: ${JSON.stringify(recordFile)}
queues:
  jobs: {}
topics:
  news:
    subscriptions:
      - function: recorder
functions:
  caller:
    handler: caller.handler
    timeout: 10
  adder: { handler: adder.handler }
  failing: { handler: failing.handler }
  recorder: { handler: record.handler }
  once: { handler: once.handler }
  jobsReader:
    handler: record.handler
    events:
      - queue: jobs
  flaky:
    handler: record.handler
    environment: { FAIL_UNTIL: 100 }
    async: { retries: 2, retryDelay: 0.1 }
`;
}

let berth: RunningBerth;
let recordFile: string;

interface Recorded {
  fn: string;
  id: string;
  attempt: number;
  record?: Json;
  event?: Json;
  runId?: string;
}

function recorded(): Recorded[] {
  return readRecords<Recorded>(recordFile);
}

/** What `fn` recorded whose event, SQS body or SNS message contains `marker`. */
function recordsOf(fn: string, marker: string): Recorded[] {
  return recorded().filter((entry) => entry.fn === fn && JSON.stringify(entry.record?.body ?? entry.event ?? '').includes(marker));
}

function waitForRecords(fn: string, marker: string, count = 1, timeoutMs = 15_000): Promise<Recorded[]> {
  return waitFor(() => (recordsOf(fn, marker).length >= count ? recordsOf(fn, marker) : undefined), {
    what: `${count} record(s) of "${marker}" by ${fn}`,
    timeoutMs,
  });
}

/** Runs one berth/client call inside the `caller` function. */
async function fromHandler(op: Json): Promise<Json> {
  const invocation = await invoke(berth.url, 'caller', op);
  assert.equal(invocation.status, 200, invocation.raw);
  assert.equal(invocation.functionError, null, invocation.raw);
  return invocation.body as Json;
}

async function succeeded(op: Json): Promise<Json> {
  const answer = await fromHandler(op);
  assert.equal(answer.ok, true, JSON.stringify(answer.error));
  return answer.result as Json;
}

async function failed(op: Json): Promise<Json> {
  const answer = await fromHandler(op);
  assert.equal(answer.ok, false, `expected ${op.op} to fail, got ${JSON.stringify(answer.result)}`);
  return answer.error as Json;
}

async function invocationRecord(id: string): Promise<Json | undefined> {
  const response = await fetch(`${berth.url}/_berth/invocations/${id}`);
  return response.ok ? ((await response.json()) as Json) : undefined;
}

before(async () => {
  const dir = makeProject({ 'caller.mjs': CALLER, 'record.mjs': RECORD, 'adder.mjs': ADDER, 'failing.mjs': FAILING, 'once.mjs': ONCE });
  recordFile = path.join(dir, 'records.jsonl');
  writeFileSync(path.join(dir, 'berth.yml'), berthYml(recordFile));
  berth = await startBerth(dir);
});

after(async () => {
  assert.equal(await berth.stop(), 0);
});

describe('berth/client inside a handler', () => {
  test('send(queue, body, {attributes}) stores the message; the queue trigger gets body and attributes', async () => {
    const result = await succeeded({ op: 'send', queue: 'jobs', body: { marker: 'client-send-1' }, options: { attributes: { kind: 'a', n: 3 } } });
    assert.match(result.messageId, /^[0-9a-f-]{36}$/);
    assert.equal(result.duplicate, false);
    const [{ record }] = await waitForRecords('jobsReader', 'client-send-1');
    assert.equal(record!.messageId, result.messageId);
    assert.equal(record!.body, '{"marker":"client-send-1"}', 'a non-string body is sent as JSON text');
    assert.equal(record!.messageAttributes.kind.dataType, 'String');
    assert.equal(record!.messageAttributes.kind.stringValue, 'a');
    assert.equal(record!.messageAttributes.n.dataType, 'Number');
    assert.equal(record!.messageAttributes.n.stringValue, '3');

    await succeeded({ op: 'send', queue: 'jobs', body: 'client-send-text as is' });
    const [text] = await waitForRecords('jobsReader', 'client-send-text');
    assert.equal(text!.record!.body, 'client-send-text as is', 'a string body is sent as is');
  });

  test('send with an idempotencyKey: the repeat gets the first messageId, duplicate: true, and is not sent again', async () => {
    const op = { op: 'send', queue: 'jobs', body: 'client-send-idem', options: { idempotencyKey: 'send-key-1' } };
    const first = await succeeded(op);
    const second = await succeeded(op);
    assert.equal(first.duplicate, false);
    assert.deepEqual(second, { ...first, duplicate: true });
    await waitForRecords('jobsReader', 'client-send-idem');
    await sleep(400);
    assert.equal(recordsOf('jobsReader', 'client-send-idem').length, 1);
  });

  test('publish(topic, message, {subject, attributes}) reaches the subscribers', async () => {
    const result = await succeeded({ op: 'publish', topic: 'news', message: { marker: 'client-publish-1' }, options: { subject: 'Hello', attributes: { kind: 'a', tags: ['x', 'y'] } } });
    assert.equal(result.deliveries, 1);
    assert.equal(result.duplicate, false);
    const [{ event }] = await waitForRecords('recorder', 'client-publish-1');
    const sns = event!.Records[0].Sns as Json;
    assert.equal(sns.MessageId, result.messageId);
    assert.equal(sns.Message, '{"marker":"client-publish-1"}');
    assert.equal(sns.Subject, 'Hello');
    assert.deepEqual(sns.MessageAttributes, { kind: { Type: 'String', Value: 'a' }, tags: { Type: 'String.Array', Value: '["x","y"]' } });
  });

  test('invoke(fn, event) waits for and returns the result', async () => {
    assert.deepEqual(await succeeded({ op: 'invoke', fn: 'adder', event: { a: 2, b: 40 } }), { sum: 42, by: 'adder' });
  });

  test('invoke(fn, event, {async: true}) returns the invocation id at once and the event runs', async () => {
    const result = await succeeded({ op: 'invoke', fn: 'recorder', event: { marker: 'client-async-1' }, options: { async: true } });
    assert.match(result.invocationId, /^[0-9a-f-]{36}$/);
    const [run] = await waitForRecords('recorder', 'client-async-1');
    assert.equal(run!.id, result.invocationId, 'the id is the awsRequestId the function sees');
    assert.equal(run!.attempt, 1);
    const record = await waitFor(() => invocationRecord(result.invocationId), { what: 'the async invocation record' });
    assert.equal(record.trigger, 'async');
  });

  describe('errors are BerthClientError with status and code', () => {
    test('an unknown queue', async () => {
      const error = await failed({ op: 'send', queue: 'no-such-queue', body: 'x' });
      assert.equal(error.name, 'BerthClientError');
      assert.equal(error.isClientError, true);
      assert.equal(error.status, 400);
      assert.equal(error.code, 'QueueDoesNotExist');
      assert.match(error.message, /no-such-queue/);
    });

    test('an unknown topic', async () => {
      const error = await failed({ op: 'publish', topic: 'no-such-topic', message: 'x' });
      assert.equal(error.isClientError, true);
      assert.equal(error.status, 404);
      assert.equal(error.code, 'TopicNotFound');
      assert.match(error.message, /no-such-topic/);
    });

    test('an unknown function, sync and async', async () => {
      for (const options of [{}, { async: true }]) {
        const error = await failed({ op: 'invoke', fn: 'no-such-fn', event: {}, options });
        assert.equal(error.isClientError, true);
        assert.equal(error.status, 404, JSON.stringify(options));
        assert.equal(error.code, 'ResourceNotFoundException');
        assert.match(error.message, /no-such-fn/);
      }
    });

    test('a function that throws, invoked synchronously: the error names its type and message', async () => {
      const error = await failed({ op: 'invoke', fn: 'failing', event: {} });
      assert.equal(error.isClientError, true);
      assert.equal(error.code, 'TypeError');
      assert.match(error.message, /failing failed: TypeError: deliberately broken/);
    });
  });
});

describe('berth/client outside a handler', () => {
  // The same module the bundler inlines into handlers, imported as a package would.
  const clientModule = () => import(new URL('../src/client/index.js', import.meta.url).href) as Promise<typeof import('../src/client/index.js')>;
  const saved = { url: process.env.BERTH_URL, file: process.env.BERTH_URL_FILE };

  after(() => {
    for (const [name, value] of [['BERTH_URL', saved.url], ['BERTH_URL_FILE', saved.file]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  test('finds Berth through BERTH_URL', async () => {
    const client = await clientModule();
    process.env.BERTH_URL = `${berth.url}/`;
    const result = await client.send('jobs', 'client-outside-1');
    assert.equal(result.duplicate, false);
    await waitForRecords('jobsReader', 'client-outside-1');
    assert.deepEqual(await client.invoke('adder', { a: 1, b: 1 }), { sum: 2, by: 'adder' });
  });

  test('without BERTH_URL it fails with a BerthClientError that says how to point it at Berth', async () => {
    const client = await clientModule();
    delete process.env.BERTH_URL;
    delete process.env.BERTH_URL_FILE;
    await assert.rejects(client.send('jobs', 'x'), (err: Error) => {
      assert.ok(err instanceof client.BerthClientError);
      assert.match(err.message, /BERTH_URL/);
      return true;
    });
  });
});

// Each CLI run starts a Node process; the tests are independent, so they overlap.
describe('the CLI against the running Berth', { concurrency: true }, () => {
  const cli = (args: string[]) => runCli(args, { cwd: berth.dir, home: berth.home });

  test('berth invoke <fn> --async --data prints {"invocationId"} and the event runs', async () => {
    const run = await cli(['invoke', 'recorder', '--async', '--data', '{"marker":"cli-async-1"}']);
    assert.equal(run.code, 0, run.stderr);
    const printed = JSON.parse(run.stdout) as Json;
    assert.deepEqual(Object.keys(printed), ['invocationId']);
    assert.match(printed.invocationId, /^[0-9a-f-]{36}$/);
    const [record] = await waitForRecords('recorder', 'cli-async-1');
    assert.equal(record!.id, printed.invocationId);
  });

  test('berth send <queue> --data --attr k=v', async () => {
    const run = await cli(['send', 'jobs', '--data', '{"marker":"cli-send-1"}', '--attr', 'k=v', '--attr', 'eq=a=b']);
    assert.equal(run.code, 0, run.stderr);
    const printed = JSON.parse(run.stdout) as Json;
    assert.equal(printed.duplicate, false);
    const [{ record }] = await waitForRecords('jobsReader', 'cli-send-1');
    assert.equal(record!.messageId, printed.messageId);
    assert.equal(record!.body, '{"marker":"cli-send-1"}');
    assert.equal(record!.messageAttributes.k.stringValue, 'v');
    assert.equal(record!.messageAttributes.eq.stringValue, 'a=b', 'only the first "=" splits name from value');

  });

  test('berth send: an unknown queue or an --attr without "=" exits non-zero and says why', async () => {
    const [unknown, badAttr] = await Promise.all([
      cli(['send', 'no-such-queue', '--data', '"x"']),
      cli(['send', 'jobs', '--data', '"x"', '--attr', 'novalue']),
    ]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no-such-queue/);
    assert.notEqual(badAttr.code, 0);
    assert.match(badAttr.stderr, /--attr novalue must be name=value/);
  });

  test('berth invoke --idempotency-key K twice: the handler runs once and both print the same result', async () => {
    const args = ['invoke', 'once', '--data', '{"marker":"cli-idem-1"}', '--idempotency-key', 'cli-idem-key-1'];
    const first = await cli(args);
    const second = await cli(args);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(second.code, 0, second.stderr);
    const result = JSON.parse(first.stdout) as Json;
    assert.equal(result.marker, 'cli-idem-1');
    assert.deepEqual(JSON.parse(second.stdout), result, 'the repeat prints the first run\'s result');
    assert.equal(recordsOf('once', 'cli-idem-1').length, 1, 'the handler ran once');
  });

  test('an async invoke with X-Berth-Idempotency-Key, twice at once: one invocation id, one run', async () => {
    const enqueue = () =>
      fetch(`${berth.url}/2015-03-31/functions/once/invocations`, {
        method: 'POST',
        headers: { 'x-amz-invocation-type': 'Event', 'x-berth-idempotency-key': 'async-idem-key-1' },
        body: JSON.stringify({ marker: 'async-idem-1' }),
      });
    const [a, b] = await Promise.all([enqueue(), enqueue()]);
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.equal(a.headers.get('x-berth-invocation-id'), b.headers.get('x-berth-invocation-id'));
    await waitForRecords('once', 'async-idem-1');
    await sleep(400);
    assert.equal(recordsOf('once', 'async-idem-1').length, 1);
  });

  test('a retried async event: GET /_berth/invocations/<id> lists every attempt, berth logs shows each START line', async () => {
    const run = await cli(['invoke', 'flaky', '--async', '--data', '{"marker":"cli-retry-1"}']);
    assert.equal(run.code, 0, run.stderr);
    const id = (JSON.parse(run.stdout) as Json).invocationId as string;
    const runs = await waitForRecords('flaky', 'cli-retry-1', 3);
    assert.deepEqual(runs.map((r) => [r.id, r.attempt]), [[id, 1], [id, 2], [id, 3]]);

    const record = await waitFor(async () => {
      const found = await invocationRecord(id);
      return found?.attempts?.length === 3 ? found : undefined;
    }, { what: 'three recorded attempts' });
    assert.deepEqual(record.attempts.map((a: Json) => [a.id, a.attempt, a.status, a.trigger]), [
      [id, 1, 'failed', 'async'],
      [id, 2, 'failed', 'async'],
      [id, 3, 'failed', 'async'],
    ]);
    assert.equal(record.attempt, 3, 'the top level is the latest attempt');
    assert.match(record.errorMessage, /failing attempt 3/);

    // Logs are stored behind the invocation; once all three are, `berth logs` must show them.
    await waitFor(async () => (await functionLogs(berth.url, 'flaky', 20)).filter((log) => log.invocationId === id).length === 3, {
      what: 'the three stored logs',
    });
    const logs = await cli(['logs', 'flaky']);
    assert.equal(logs.code, 0, logs.stderr);
    const starts = logs.stdout.split('\n').filter((line) => line.startsWith(`START RequestId: ${id}`));
    assert.deepEqual(starts, [
      `START RequestId: ${id} Version: $LATEST`,
      `START RequestId: ${id} Version: $LATEST Attempt: 2`,
      `START RequestId: ${id} Version: $LATEST Attempt: 3`,
    ]);
    assert.match(logs.stdout, /failing attempt 2/);
  });
});

describe('the CLI with no running Berth', { concurrency: true }, () => {
  test('berth invoke --async in a project that is not running says it needs a running Berth', async () => {
    const dir = makeProject({ 'berth.yml': 'functions:\n  recorder: { handler: record.handler }\n', 'record.mjs': RECORD });
    const run = await runCli(['invoke', 'recorder', '--async', '--data', '{}'], { cwd: dir, home: berthHome() });
    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /BERTH_ERR_NO_INSTANCE/);
    assert.match(run.stderr, /--async/);
    assert.match(run.stderr, /berth start/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });

  test('berth invoke --idempotency-key without a running Berth is refused rather than ignored', async () => {
    const dir = makeProject({ 'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n', 'hello.mjs': 'export const handler = async () => 1;' });
    const run = await runCli(['invoke', 'hello', '--idempotency-key', 'k-1'], { cwd: dir, home: berthHome() });
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /--idempotency-key` needs a running Berth/);
    assert.equal(run.stdout, '');
  });

  test('berth invoke --async anywhere else names the function and how to start Berth', async () => {
    const run = await runCli(['invoke', 'recorder', '--async'], { cwd: makeProject({}), home: berthHome() });
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /No running Berth instance serves "recorder"/);
    assert.match(run.stderr, /berth start/);
  });
});
