/**
 * Async invocations through the Lambda Invoke API (`InvocationType: Event`) with
 * the AWS SDK: 202 once stored, retries with the same request id and a growing
 * attempt, destinations, the dead-letter queue, maxEventAge, and every attempt's
 * record in the API and the logs.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';
import { functionLogs, sleep, waitFor } from './helpers/lambda.js';
import { readRecords, RECORDING_HANDLER, waitForRecords } from './helpers/records.js';

const BERTH_YML = `
queues:
  succeeded: {}
  failed: {}
  dead: {}
functions:
  work:
    handler: work.handler
    environment: { RECORDS: ./records.jsonl }
    async:
      retries: 2
      retryDelay: 0.1
      onSuccess: { queue: succeeded }
      onFailure: { queue: failed }
      deadLetterQueue: dead
  noRetry:
    handler: work.handler
    environment: { RECORDS: ./records.jsonl }
    async: { retries: 0 }
  aged:
    handler: work.handler
    environment: { RECORDS: ./records.jsonl }
    async: { retries: 5, retryDelay: 1, maxEventAge: 0.5, onFailure: { function: work } }
  drain:
    handler: work.handler
    environment: { RECORDS: ./drained.jsonl }
    events:
      - queue: succeeded
      - queue: failed
      - queue: dead
`;

let berth: RunningBerth;
let lambda: LambdaClient;
let records: string;
let drained: string;

async function invokeAsync(fn: string, event: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${berth.url}/2015-03-31/functions/${fn}/invocations`, {
    method: 'POST',
    headers: { 'x-amz-invocation-type': 'Event', ...headers },
    body: JSON.stringify(event),
  });
  return { status: response.status, id: response.headers.get('x-berth-invocation-id')! };
}

before(async () => {
  const dir = makeProject({ 'berth.yml': BERTH_YML, 'work.mjs': RECORDING_HANDLER });
  records = path.join(dir, 'records.jsonl');
  drained = path.join(dir, 'drained.jsonl');
  berth = await startBerth(dir);
  lambda = new LambdaClient({ endpoint: berth.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
});

after(async () => {
  lambda?.destroy();
  await berth?.stop();
});

const byEvent = (tag: string) => (r: Record<string, any>) => r.event?.tag === tag;

describe('async invoke', () => {
  test('the SDK gets 202 with an empty payload, and the event runs once', async () => {
    const result = await lambda.send(new InvokeCommand({ FunctionName: 'work', InvocationType: 'Event', Payload: Buffer.from(JSON.stringify({ tag: 'sdk' })) }));
    assert.equal(result.StatusCode, 202);
    assert.equal(Buffer.from(result.Payload ?? []).length, 0);
    const [record] = await waitForRecords(records, 1, { what: 'the event', filter: byEvent('sdk') });
    assert.equal(record!.attempt, 1);
    await sleep(300);
    assert.equal(readRecords(records).filter(byEvent('sdk')).length, 1, 'ran exactly once');
  });

  test('a failing event is retried with the same request id and attempts 1, 2, 3, then succeeds', async () => {
    const { status, id } = await invokeAsync('work', { tag: 'flaky', failUntil: 3 });
    assert.equal(status, 202);
    const attempts = await waitForRecords(records, 3, { what: 'three attempts', filter: byEvent('flaky') });
    assert.deepEqual(attempts.map((r) => r.attempt), [1, 2, 3]);
    assert.ok(attempts.every((r) => r.id === id), 'awsRequestId is stable across retries');

    const detail = await waitFor(
      async () => {
        const response = await fetch(`${berth.url}/_berth/invocations/${id}`);
        const body = (await response.json()) as { attempts?: { attempt: number; status: string; trigger: string }[] };
        return body.attempts?.length === 3 ? body : undefined;
      },
      { what: 'three attempt records' },
    );
    assert.deepEqual(detail.attempts!.map((a) => [a.attempt, a.status, a.trigger]), [
      [1, 'failed', 'async'],
      [2, 'failed', 'async'],
      [3, 'succeeded', 'async'],
    ]);
    const logs = (await functionLogs(berth.url, 'work', 50)).map((l) => l.text).join('');
    assert.match(logs, new RegExp(`START RequestId: ${id} Version: \\$LATEST\\n`));
    assert.match(logs, new RegExp(`START RequestId: ${id} Version: \\$LATEST Attempt: 3\\n`));

    // onSuccess gets Lambda's destination record.
    const [success] = await waitForRecords(drained, 1, {
      what: 'the success record',
      filter: (r) => r.event.Records?.some((m: any) => JSON.parse(m.body).requestContext?.requestId === id),
    });
    const record = JSON.parse(success!.event.Records.find((m: any) => JSON.parse(m.body).requestContext.requestId === id).body);
    assert.equal(record.requestContext.condition, 'Success');
    assert.equal(record.requestContext.approximateInvokeCount, 3);
    assert.deepEqual(record.requestPayload, { tag: 'flaky', failUntil: 3 });
    assert.deepEqual(record.responsePayload, { handled: { tag: 'flaky', failUntil: 3 }, attempt: 3 });
  });

  test('an event that keeps failing goes to onFailure and the dead-letter queue after retries + 1 attempts', async () => {
    const { id } = await invokeAsync('work', { tag: 'doomed', failUntil: 99 });
    const messages = await waitForRecords(drained, 2, {
      what: 'failure record and dead letter',
      filter: (r) => r.event.Records?.some((m: any) => m.body.includes(id) || m.messageAttributes?.RequestID?.stringValue === id),
    });
    const all = messages.flatMap((r) => r.event.Records as any[]);
    const failure = all.map((m) => safeJson(m.body)).find((b: any) => b?.requestContext?.requestId === id) as any;
    assert.equal(failure.requestContext.condition, 'RetriesExhausted');
    assert.equal(failure.requestContext.approximateInvokeCount, 3);
    assert.equal(failure.responseContext.functionError, 'Unhandled');
    assert.equal(failure.responsePayload.errorMessage, 'failing attempt 3');
    const dead = all.find((m) => m.messageAttributes?.RequestID?.stringValue === id);
    assert.deepEqual(JSON.parse(dead.body), { tag: 'doomed', failUntil: 99 }, 'the dead letter is the original event');
    assert.match(dead.messageAttributes.ErrorMessage.stringValue, /failing attempt 3/);
    assert.equal(readRecords(records).filter(byEvent('doomed')).length, 3);
  });

  test('retries: 0 runs a failing event once', async () => {
    await invokeAsync('noRetry', { tag: 'once', failUntil: 99 });
    await waitForRecords(records, 1, { what: 'the only attempt', filter: byEvent('once') });
    await sleep(500);
    assert.equal(readRecords(records).filter(byEvent('once')).length, 1);
  });

  test('an event older than maxEventAge is not retried again; its failure goes to the destination function', async () => {
    const { id } = await invokeAsync('aged', { tag: 'aged', failUntil: 99 });
    // The first retry waits at least 0.5 s, by which time the event is too old.
    const [failure] = await waitForRecords(records, 1, {
      what: 'the failure record delivered to function work',
      timeoutMs: 15_000,
      filter: (r) => r.fn === 'work' && r.event?.requestContext?.requestId === id,
    });
    assert.equal(failure!.event.requestContext.condition, 'EventAgeExceeded');
    assert.equal(readRecords(records).filter(byEvent('aged')).length, 1, 'ran once, then aged out');
  });

  test('a bad tenant or an unknown function is refused before anything is stored', async () => {
    const unknown = await fetch(`${berth.url}/2015-03-31/functions/nope/invocations`, { method: 'POST', headers: { 'x-amz-invocation-type': 'Event' }, body: '{}' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers.get('x-amzn-errortype'), 'ResourceNotFoundException');
    const badTenant = await invokeAsync('work', { tag: 'tenant' }, { 'x-amz-tenant-id': 'bad tenant!' });
    assert.equal(badTenant.status, 400);
  });
});

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
