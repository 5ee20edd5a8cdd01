/**
 * Concurrency limits through the real server: account, function max and reserved,
 * group and tenant limits are never exceeded and a 429 says which one was hit (Lambda's
 * TooManyRequestsException with `Reason` and `Retry-After`, also through the AWS SDK);
 * a reservation cannot be starved; async work over a limit waits instead of failing;
 * synchronous callers go before an async backlog; limits change live (CLI, HTTP, Lambda's
 * FunctionConcurrency API), are validated, persist across a restart and show in `berth limits`.
 *
 * Every handler appends a `start` and an `end` line with its own timestamps, so overlap is
 * measured where the code ran. Most handlers hold their slot until the test creates a release
 * file, so what is admitted and what is throttled does not depend on how fast a busy
 * machine starts environments.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DeleteFunctionConcurrencyCommand,
  GetFunctionConcurrencyCommand,
  InvokeCommand,
  LambdaClient,
  PutFunctionConcurrencyCommand,
} from '@aws-sdk/client-lambda';
import { functionInfo, invoke, rejection, sleep, stopWithin, waitFor, type Invocation } from './helpers/lambda.js';
import { berthHome, makeProject, runCli, startBerth, type RunningBerth } from './helpers/project.js';
import { readRecords, waitForRecords } from './helpers/records.js';

/**
 * Records a start and an end line. Holds its slot for `ms`, or until the file `until` exists.
 * Input comes from the Invoke payload or an HTTP route's query string.
 */
const HANDLER = `
import { appendFileSync, existsSync } from 'node:fs';
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const handler = async (event, context) => {
  const input = (event && event.queryStringParameters) || event || {};
  const base = { fn: context.functionName, tag: input.tag, tenant: context.tenantId ?? null, id: context.awsRequestId, attempt: context.attempt };
  const start = Date.now();
  appendFileSync(process.env.RECORDS, JSON.stringify({ ...base, phase: 'start', start }) + '\\n');
  if (input.ms) await pause(Number(input.ms));
  if (input.until) while (!existsSync(input.until)) await pause(10);
  const end = Date.now();
  appendFileSync(process.env.RECORDS, JSON.stringify({ ...base, phase: 'end', start, end }) + '\\n');
  return { statusCode: 200, body: JSON.stringify({ ...base, start, end }) };
};
`;

/**
 * The brief's limits, plus functions that each meet one limit first. Shared capacity is
 * 4 - 1 (api) - 1 (etl) = 2.
 */
const MAIN_YML = `
defaults: { timeout: 30, environment: { RECORDS: ./records.jsonl } }
account: { concurrency: 4, syncWait: 300ms }
groups:
  etl: { functions: [extract, load], maxConcurrency: 2, reserved: 1 }
functions:
  api: { handler: h.handler, reservedConcurrency: 1, events: [ { http: GET /api } ] }
  extract: { handler: h.handler, maxConcurrency: 3, tenantConcurrency: 1 }
  load: { handler: h.handler }
  capped: { handler: h.handler, maxConcurrency: 1 }
  free: { handler: h.handler, events: [ { http: GET /free } ] }
`;

/** One invocation at a time, so a sync caller competes with the whole async backlog. */
const SYNC_FIRST_YML = `
defaults: { timeout: 30, environment: { RECORDS: ./records.jsonl } }
account: { concurrency: 1, syncWait: 5s }
functions:
  bg: { handler: h.handler, async: { concurrency: 20 } }
  fg: { handler: h.handler }
`;

const LIVE_YML = `
defaults: { timeout: 30, environment: { RECORDS: ./records.jsonl } }
account: { concurrency: 10, syncWait: 250ms }
functions:
  work: { handler: h.handler, maxConcurrency: 1 }
  drain: { handler: h.handler, maxConcurrency: 3 }
`;

interface Span {
  fn: string;
  tag: string;
  tenant: string | null;
  id: string;
  attempt: number;
  phase: 'start' | 'end';
  start: number;
  end: number;
}

/** The most spans running at one instant (an end and a start in the same ms do not overlap). */
function maxOverlap(spans: Span[]): number {
  const points = spans.flatMap((s) => [
    [s.start, 1],
    [s.end, -1],
  ]);
  points.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let running = 0;
  let most = 0;
  for (const [, delta] of points) most = Math.max(most, (running += delta!));
  return most;
}

interface Servers {
  main: RunningBerth;
  syncFirst: RunningBerth;
  live: RunningBerth;
}
let servers: Servers;
const home = berthHome();
let lambda: LambdaClient;

const recordsOf = (berth: RunningBerth) => path.join(berth.dir, 'records.jsonl');
/** Finished invocations on `berth`, optionally of one tag. */
const ended = (berth: RunningBerth, tag?: string) =>
  readRecords<Span>(recordsOf(berth)).filter((r) => r.phase === 'end' && (tag === undefined || r.tag === tag));
const startedOf = (berth: RunningBerth, tag: string) => readRecords<Span>(recordsOf(berth)).filter((r) => r.phase === 'start' && r.tag === tag);

/** A file whose creation ends the handlers holding on it. */
const releaseFile = (berth: RunningBerth, name: string) => path.join(berth.dir, `release-${name}`);
const release = (file: string) => writeFileSync(file, '');

/**
 * Sends requests whose handlers hold their slot until released (each `send` gets the release
 * file and must not reject), and resolves once every one has either started or been answered
 * (throttled): what was admitted is then fixed. `release()` lets them finish and gives the answers.
 */
async function holdAll<T>(berth: RunningBerth, tag: string, sends: ((until: string) => Promise<T>)[]) {
  const until = releaseFile(berth, tag);
  let answered = 0;
  const answers = Promise.all(sends.map((send) => send(until).finally(() => answered++)));
  await waitFor(() => answered + startedOf(berth, tag).length >= sends.length || undefined, {
    what: `each ${tag} request to start or be throttled`,
    timeoutMs: 20_000,
    intervalMs: 20,
  });
  return {
    release: () => {
      release(until);
      return answers;
    },
  };
}

/** `n` concurrent synchronous invokes of `fn`, held until every one started or was throttled, then released. */
async function heldBurst(berth: RunningBerth, fn: string, n: number, tag: string, options: { tenants?: string[] } = {}): Promise<Invocation[]> {
  const sends = Array.from(
    { length: n },
    (_, i) => (until: string) =>
      invoke(berth.url, fn, { tag, until }, { tail: false, ...(options.tenants ? { tenant: options.tenants[i]! } : {}) }),
  );
  return (await holdAll(berth, tag, sends)).release();
}

/** Invoke API with `InvocationType: Event`: 202 once stored. */
async function invokeEvent(berth: RunningBerth, fn: string, payload: unknown): Promise<string> {
  const response = await fetch(`${berth.url}/2015-03-31/functions/${fn}/invocations`, {
    method: 'POST',
    headers: { 'x-amz-invocation-type': 'Event' },
    body: JSON.stringify(payload),
  });
  assert.equal(response.status, 202, await response.text());
  return response.headers.get('x-berth-invocation-id')!;
}

/** Lambda's throttle: 429, TooManyRequestsException, `Reason`, `Retry-After`. */
function assertThrottled(answer: Invocation, reason: string) {
  assert.equal(answer.status, 429, answer.raw);
  assert.equal(answer.headers.get('x-amzn-errortype'), 'TooManyRequestsException');
  assert.equal(answer.body.Reason, reason, answer.raw);
  assert.equal(answer.headers.get('retry-after'), '1', 'Retry-After says when to try again');
}

const countBy = (answers: { status: number }[]) => ({
  ok: answers.filter((a) => a.status === 200).length,
  throttled: answers.filter((a) => a.status === 429).length,
});

interface LimitsView {
  account: { concurrency: number | null; syncWaitMs: number };
  functions: Record<string, { maxConcurrency?: number; reservedConcurrency?: number; tenantConcurrency?: number }>;
  groups: Record<string, { functions: string[]; maxConcurrency?: number; reserved?: number }>;
  changes: Record<string, unknown>;
  usage: {
    running: number;
    waitingSync: number;
    waitingAsync: number;
    functions: Record<string, { running: number; throttles: number }>;
    groups: Record<string, { running: number }>;
  };
}

async function getLimits(berth: RunningBerth): Promise<LimitsView> {
  const response = await fetch(`${berth.url}/_berth/limits`);
  assert.equal(response.status, 200);
  return (await response.json()) as LimitsView;
}

/** Async events of a function not yet finished: queued, waiting for admission or running. */
async function asyncBacklog(berth: RunningBerth, fn: string): Promise<number> {
  const { invocations } = (await functionInfo(berth.url, fn)) as unknown as { invocations: { queued: number } };
  return invocations.queued;
}

async function patchLimits(berth: RunningBerth, patch: unknown) {
  const response = await fetch(`${berth.url}/_berth/limits`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(patch),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

function project(yml: string) {
  return makeProject({ 'berth.yml': yml, 'h.mjs': HANDLER });
}

before(async () => {
  const [main, syncFirst, live] = await Promise.all([
    startBerth(project(MAIN_YML), { home }),
    startBerth(project(SYNC_FIRST_YML), { home }),
    startBerth(project(LIVE_YML), { home }),
  ]);
  servers = { main, syncFirst, live };
  // maxAttempts 1: the SDK would otherwise retry a throttle and hide it.
  lambda = new LambdaClient({
    endpoint: main.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    maxAttempts: 1,
  });
});

after(async () => {
  lambda?.destroy();
  await Promise.all(Object.values(servers ?? {}).map((berth) => stopWithin(berth)));
});

// Each installation's tests run in order; the installations run side by side (their tests mostly wait).
describe('concurrency limits', { concurrency: true }, () => {
  describe('account 4, api reserved 1, group etl (max 2, reserved 1)', { concurrency: false }, () => {
    test('each limit is never exceeded and the 429 names it', async () => {
      const { main } = servers;

      // Function maxConcurrency, through the AWS SDK.
      const sdk = await holdAll(
        main,
        'max',
        Array.from({ length: 3 }, () => (until: string) =>
          lambda
            .send(new InvokeCommand({ FunctionName: 'capped', Payload: Buffer.from(JSON.stringify({ tag: 'max', until })) }))
            .then(
              (output) => ({ status: output.StatusCode ?? 0, err: undefined }),
              (err: Error & Record<string, any>) => ({ status: err.$metadata?.httpStatusCode ?? 0, err }),
            ),
        ),
      );
      const sdkAnswers = await sdk.release();
      assert.deepEqual(countBy(sdkAnswers), { ok: 1, throttled: 2 }, 'maxConcurrency 1 admits one');
      for (const { err } of sdkAnswers.filter((a) => a.err)) {
        assert.equal(err!.name, 'TooManyRequestsException', String(err));
        assert.equal(err!.Reason, 'FunctionConcurrentInvocationLimitExceeded');
        assert.equal(err!.$metadata.httpStatusCode, 429);
        assert.equal(err!.$response?.headers?.['retry-after'], '1', 'Retry-After on the raw response');
        assert.equal(err!.retryAfterSeconds, '1');
      }

      // reservedConcurrency caps as well as reserves.
      const reserved = await heldBurst(main, 'api', 3, 'reserved');
      assert.deepEqual(countBy(reserved), { ok: 1, throttled: 2 });
      for (const answer of reserved.filter((a) => a.status === 429)) assertThrottled(answer, 'ReservedFunctionConcurrentInvocationLimitExceeded');

      // A group's maxConcurrency caps its members together.
      const group = await heldBurst(main, 'load', 3, 'group');
      assert.deepEqual(countBy(group), { ok: 2, throttled: 1 });
      assertThrottled(group.find((a) => a.status === 429)!, 'GroupConcurrentInvocationLimitExceeded');

      // tenantConcurrency is per tenant (X-Amz-Tenant-Id): a second tenant still runs.
      const tenants = await heldBurst(main, 'extract', 4, 'tenant', { tenants: ['t1', 't1', 't1', 't2'] });
      assert.deepEqual(countBy(tenants.slice(0, 3)), { ok: 1, throttled: 2 }, 'tenant t1 runs one at a time');
      assert.equal(tenants[3]!.status, 200, `tenant t2 is not held back by t1: ${tenants[3]!.raw}`);
      for (const answer of tenants.filter((a) => a.status === 429)) assertThrottled(answer, 'TenantConcurrentInvocationLimitExceeded');
      assert.deepEqual(ended(main, 'tenant').map((s) => s.tenant).sort(), ['t1', 't2']);

      // The account: free shares 4 - 1 (api) - 1 (etl) = 2. Through an HTTP route: API Gateway's 429.
      const route = await holdAll(
        main,
        'account',
        Array.from({ length: 3 }, () => async (until: string) => {
          const response = await fetch(`${main.url}/free?tag=account&until=${encodeURIComponent(until)}`);
          return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as Record<string, any> };
        }),
      );
      const routeAnswers = await route.release();
      assert.deepEqual(countBy(routeAnswers), { ok: 2, throttled: 1 });
      const routeThrottle = routeAnswers.find((a) => a.status === 429)!;
      assert.equal(routeThrottle.body.message, 'Too Many Requests');
      assert.equal(routeThrottle.body.reason, 'ConcurrentInvocationLimitExceeded');
      assert.equal(routeThrottle.retryAfter, '1');

      // What ran: exactly the admitted ones, all at once up to the limit and never above it.
      for (const [tag, limit] of [['max', 1], ['reserved', 1], ['group', 2], ['tenant', 2], ['account', 2]] as const) {
        assert.equal(startedOf(main, tag).length, limit, `only the admitted ${tag} invocations started`);
        assert.equal(maxOverlap(ended(main, tag)), limit, `${tag}: ${limit} at once`);
      }
      assert.equal(maxOverlap(ended(main, 'tenant').filter((s) => s.tenant === 't1')), 1);
      assert.ok(maxOverlap(ended(main)) <= 4, 'the account never ran more than 4');
    });

    test('a reservation is guaranteed: a flood of other functions cannot keep api from running', async () => {
      const { main } = servers;
      await invoke(main.url, 'api', { tag: 'warm' }); // its environment, so only admission is measured
      const flood = await holdAll(
        main,
        'flood',
        ['free', 'free', 'free', 'free', 'free', 'load', 'load', 'load', 'load', 'load'].map((fn) => (until: string) => invoke(main.url, fn, { tag: 'flood', until }, { tail: false })),
      );
      // Everything but api's reservation is taken (shared 2 + etl's 1), and the rest was throttled.
      assert.equal((await getLimits(main)).usage.running, 3);
      const started = performance.now();
      const response = await fetch(`${main.url}/api?tag=reserved-guarantee&ms=50`);
      const ms = performance.now() - started;
      assert.equal(response.status, 200, await response.text());
      assert.ok(ms < 1000, `api answered in ${ms.toFixed(0)} ms`);
      const answers = await flood.release();
      assert.deepEqual(countBy(answers), { ok: 3, throttled: 7 }, 'the flood ran at the capacity left to it, the rest throttled');
      const [apiSpan] = ended(main, 'reserved-guarantee');
      const floodSpans = ended(main, 'flood');
      assert.ok(floodSpans.every((s) => s.start < apiSpan!.start && s.end > apiSpan!.end), 'api ran while the flood held everything else');
      assert.equal(maxOverlap([...floodSpans, apiSpan!]), 4);
    });

    test('async events over a limit wait and all run, one at a time, none failing', async () => {
      const { main } = servers;
      const ids = await Promise.all(Array.from({ length: 6 }, () => invokeEvent(main, 'capped', { ms: 150, tag: 'async-wait' })));
      const spans = await waitForRecords<Span>(recordsOf(main), 6, {
        what: 'all six events to finish',
        timeoutMs: 20_000,
        filter: (r) => r.phase === 'end' && r.tag === 'async-wait',
      });
      assert.deepEqual(spans.map((s) => s.id).sort(), [...ids].sort(), 'each event ran once');
      assert.ok(spans.every((s) => s.attempt === 1), 'no event failed and was retried');
      assert.equal(maxOverlap(spans), 1, 'maxConcurrency 1 holds for async work too');
      for (const id of ids) {
        const detail = await waitFor(
          async () => {
            const body = (await (await fetch(`${main.url}/_berth/invocations/${id}`)).json()) as { attempts?: { attempt: number; status: string }[] };
            return body.attempts?.length ? body : undefined;
          },
          { what: `the record of ${id}` },
        );
        assert.deepEqual(detail.attempts!.map((a) => [a.attempt, a.status]), [[1, 'succeeded']]);
      }
    });

    test('Put/Get/DeleteFunctionConcurrency round-trip; a Put over the account is refused and changes nothing', async () => {
      const { main } = servers;
      const reservationOf = async (fn: string) => (await lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: fn }))).ReservedConcurrentExecutions;
      assert.equal(await reservationOf('free'), undefined);
      assert.equal(await reservationOf('api'), 1, "berth.yml's value");

      const put = await lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: 'free', ReservedConcurrentExecutions: 1 }));
      assert.equal(put.ReservedConcurrentExecutions, 1);
      assert.equal(await reservationOf('free'), 1);
      assert.equal((await getLimits(main)).functions.free!.reservedConcurrency, 1);

      // api 1 + etl 1 + free 3 = 5 > account 4.
      const refused = await rejection(lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: 'free', ReservedConcurrentExecutions: 3 })));
      assert.equal(refused.name, 'InvalidParameterValueException', String(refused));
      assert.equal(refused.$metadata.httpStatusCode, 400);
      assert.match(refused.message, /reservations add up to 5, more than account\.concurrency \(4\)/);
      assert.equal(await reservationOf('free'), 1, 'the old value stays');
      assert.equal((await getLimits(main)).functions.free!.reservedConcurrency, 1);

      const missing = await rejection(lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: 'nope', ReservedConcurrentExecutions: 1 })));
      assert.equal(missing.name, 'ResourceNotFoundException');

      await lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: 'free' }));
      assert.equal(await reservationOf('free'), undefined);
      assert.equal((await getLimits(main)).functions.free?.reservedConcurrency, undefined);
    });

    test('removing a reservation while it is in use does not let the account be exceeded', async () => {
      const { main } = servers;
      const held = await holdAll(
        main,
        'unreserve-held',
        ['api', 'load'].map((fn) => (until: string) => invoke(main.url, fn, { tag: 'unreserve-held', until }, { tail: false })),
      );
      // api's running invocation holds its reservation; without the reservation the shared capacity grows from 2 to 3.
      await lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: 'api' }));
      try {
        const flood = await heldBurst(main, 'free', 5, 'unreserve-flood');
        assert.deepEqual(countBy(flood), { ok: 2, throttled: 3 }, 'only what is left of account.concurrency 4 is admitted');
        assert.deepEqual(countBy(await held.release()), { ok: 2, throttled: 0 });
        const spans = [...ended(main, 'unreserve-held'), ...ended(main, 'unreserve-flood')];
        assert.equal(maxOverlap(spans), 4, 'never more than account.concurrency 4');
      } finally {
        release(releaseFile(main, 'unreserve-held'));
        await lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: 'api', ReservedConcurrentExecutions: 1 }));
      }
    });

    test('bad limits over HTTP: PATCH answers 400 BERTH_ERR_LIMITS_INVALID and changes nothing', async () => {
      const { main } = servers;
      const { usage: _before, ...limitsBefore } = await getLimits(main);
      const negative = await patchLimits(main, { functions: { capped: { maxConcurrency: -1 } } });
      assert.equal(negative.status, 400);
      assert.equal(negative.body.code, 'BERTH_ERR_LIMITS_INVALID');
      assert.match(negative.body.message, /functions\.capped\.maxConcurrency/);
      const unknownGroup = await patchLimits(main, { groups: { nope: { maxConcurrency: 5 } } });
      assert.equal(unknownGroup.status, 400);
      assert.equal(unknownGroup.body.code, 'BERTH_ERR_LIMITS_INVALID');
      assert.match(unknownGroup.body.message, /group "nope"/);
      const overbooked = await patchLimits(main, { functions: { free: { reservedConcurrency: 3 } } });
      assert.equal(overbooked.status, 400);
      assert.match(overbooked.body.message, /reservations add up to 5/);
      const { usage: _after, ...limitsAfter } = await getLimits(main);
      assert.deepEqual(limitsAfter, limitsBefore, 'the limits in force are unchanged');
    });

    test('berth limits shows running and throttle counts per function and group', async () => {
      const { main } = servers;
      const throttlesBefore = (await getLimits(main)).usage.functions.capped?.throttles ?? 0;
      const held = await holdAll(
        main,
        'shown',
        ['load', 'load', 'capped'].map((fn) => (until: string) => invoke(main.url, fn, { tag: 'shown', until }, { tail: false })),
      );
      try {
        assertThrottled(await invoke(main.url, 'capped', { tag: 'shown-throttled' }, { tail: false }), 'FunctionConcurrentInvocationLimitExceeded');
        const shown = await runCli(['limits', '--dir', main.dir], { home });
        assert.equal(shown.code, 0, shown.stderr);
        const row = (scope: string) => {
          const line = shown.stdout.split('\n').find((l) => l.startsWith(`${scope} `));
          assert.ok(line, `no row for ${scope} in:\n${shown.stdout}`);
          return line.trim().split(/\s{2,}/);
        };
        assert.deepEqual(row('SCOPE'), ['SCOPE', 'MAX', 'RESERVED', 'PER TENANT', 'PROVISIONED', 'RUNNING', 'THROTTLES']);
        assert.deepEqual(row('function capped'), ['function capped', '1', '-', '-', '-', '1', String(throttlesBefore + 1)]);
        assert.equal(row('function load')[5], '2');
        assert.deepEqual(row('group etl'), ['group etl', '2', '1', '-', '-', '2', '-']);
        assert.match(shown.stdout, /^account: concurrency 4, running 3,/m);
      } finally {
        assert.deepEqual(countBy(await held.release()), { ok: 3, throttled: 0 });
      }
    });
  });

  describe('sync first: account 1', { concurrency: false }, () => {
    test('sync first: a request is admitted when the running event ends, not after the backlog', async () => {
      const { syncFirst } = servers;
      await invoke(syncFirst.url, 'fg', { tag: 'warm' });
      await invoke(syncFirst.url, 'bg', { tag: 'warm' });
      const head = releaseFile(syncFirst, 'head');
      await invokeEvent(syncFirst, 'bg', { tag: 'head', until: head });
      await waitFor(() => startedOf(syncFirst, 'head').length > 0 || undefined, { what: 'the first event to start', timeoutMs: 20_000 });
      await Promise.all(Array.from({ length: 10 }, () => invokeEvent(syncFirst, 'bg', { ms: 200, tag: 'backlog' })));
      // The head event runs; the ten wait, in the queue or at admission (the autoscaler decides which).
      await waitFor(async () => (await asyncBacklog(syncFirst, 'bg')) === 11 || undefined, { what: 'ten events waiting behind the running one', timeoutMs: 20_000 });

      const sent = Date.now();
      const urgent = invoke(syncFirst.url, 'fg', { tag: 'urgent' }, { tail: false });
      await waitFor(async () => (await getLimits(syncFirst)).usage.waitingSync === 1 || undefined, { what: 'the sync request to wait' });
      const releasedAt = Date.now();
      release(head);
      const answer = await urgent;
      assert.equal(answer.status, 200, answer.raw);

      const [headSpan] = ended(syncFirst, 'head');
      const [urgentSpan] = ended(syncFirst, 'urgent');
      const gap = urgentSpan!.start - headSpan!.end;
      assert.ok(gap < 300, `the sync request started ${gap} ms after the event it waited for ended`);
      const wait = urgentSpan!.start - releasedAt;
      assert.ok(wait < 450, `it ran ${wait} ms after the running event was let go (${urgentSpan!.start - sent} ms after it was sent)`);
      const backlog = await waitForRecords<Span>(recordsOf(syncFirst), 10, {
        what: 'the whole backlog',
        timeoutMs: 20_000,
        filter: (r) => r.phase === 'end' && r.tag === 'backlog',
      });
      assert.ok(backlog.every((s) => s.start >= urgentSpan!.end), 'the whole backlog ran after it (a start in the ms of its end is after it)');
      assert.equal(maxOverlap([...backlog, headSpan!, urgentSpan!]), 1, 'account.concurrency 1 held throughout');
    });
  });

  describe('live changes: work max 1, drain max 3', { concurrency: false }, () => {
    test('lowering a limit below what runs lets those finish and admits nothing new until under it', async () => {
      const { live } = servers;
      const untils = [0, 1, 2].map((i) => releaseFile(live, `drain-${i}`));
      const running = untils.map((until) => invoke(live.url, 'drain', { tag: 'drain-running', until }, { tail: false }));
      await waitFor(() => startedOf(live, 'drain-running').length === 3 || undefined, { what: 'three running', timeoutMs: 20_000 });
      const patched = await patchLimits(live, { functions: { drain: { maxConcurrency: 1 } } });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));

      assertThrottled(await invoke(live.url, 'drain', { tag: 'drain-late' }, { tail: false }), 'FunctionConcurrentInvocationLimitExceeded');
      await Promise.all(Array.from({ length: 3 }, () => invokeEvent(live, 'drain', { ms: 100, tag: 'drain-queued' })));
      await waitFor(async () => (await asyncBacklog(live, 'drain')) === 3 || undefined, { what: 'three events waiting', timeoutMs: 20_000 });

      // 3 -> 2 -> 1 running: still not under 1, so nothing new starts.
      for (const i of [0, 1]) {
        release(untils[i]!);
        const answer = await running[i]!;
        assert.equal(answer.status, 200, answer.raw);
        await sleep(300);
        assert.equal(startedOf(live, 'drain-queued').length, 0, `${2 - i} still running: nothing admitted`);
      }
      release(untils[2]!);
      const last = await running[2]!;
      assert.equal(last.status, 200, last.raw);
      assert.ok((await Promise.all(running)).every((a) => a.functionError === null), 'the running invocations finished fine');

      const originals = ended(live, 'drain-running');
      const queued = await waitForRecords<Span>(recordsOf(live), 3, {
        what: 'the queued events',
        timeoutMs: 20_000,
        filter: (r) => r.phase === 'end' && r.tag === 'drain-queued',
      });
      const lastOriginalEnd = Math.max(...originals.map((s) => s.end));
      assert.ok(queued.every((s) => s.start >= lastOriginalEnd), 'nothing new started while one or more ran');
      assert.equal(maxOverlap(queued), 1, 'then one at a time');
      assert.equal(startedOf(live, 'drain-late').length, 0);
    });

    test('live changes from the CLI and PATCH take effect at once and survive a restart', async () => {
      let { live } = servers;
      const pattern = (tag: string) => heldBurst(live, 'work', 3, tag);

      assert.deepEqual(countBy(await pattern('live-before')), { ok: 1, throttled: 2 });

      const set = await runCli(['limits', 'set', 'work.max=3', 'account.concurrency=9', '--dir', live.dir], { home });
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /^function work\s+3\s/m, 'it prints the limits now in force');
      // The CLI returns once the change is in force: the very next burst sees it.
      assert.deepEqual(countBy(await pattern('live-raised')), { ok: 3, throttled: 0 }, 'raised: all three run');
      assert.equal(maxOverlap(ended(live, 'live-raised')), 3);

      const patched = await patchLimits(live, { functions: { work: { maxConcurrency: 2 } } });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.equal(patched.body.functions.work.maxConcurrency, 2);
      const lowered = await pattern('live-lowered');
      assert.deepEqual(countBy(lowered), { ok: 2, throttled: 1 }, 'lowered: two run');
      assertThrottled(lowered.find((a) => a.status === 429)!, 'FunctionConcurrentInvocationLimitExceeded');
      assert.equal(maxOverlap(ended(live, 'live-lowered')), 2);

      await live.stop();
      live = servers.live = await startBerth(live.dir, { home });
      const view = await getLimits(live);
      assert.equal(view.account.concurrency, 9);
      assert.equal(view.functions.work!.maxConcurrency, 2);
      assert.equal(view.account.syncWaitMs, 250, 'what was not changed keeps its berth.yml value');
      const shown = await runCli(['limits', '--dir', live.dir], { home });
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /^account: concurrency 9,/m);
      assert.match(shown.stdout, /^function work\s+2\s/m);
      assert.deepEqual(countBy(await pattern('live-restarted')), { ok: 2, throttled: 1 }, 'and enforced after the restart');
    });
  });

  describe('berth.yml', () => {
    test('bad limits in berth.yml: berth start fails naming the field', async () => {
      const startFails = async (yml: string) => {
        const dir = project(yml);
        const result = await runCli(['start', dir, '--port', '0', '--data', path.join(dir, '.berth')], { home: berthHome(), timeoutMs: 30_000 });
        const output = result.stdout + result.stderr;
        assert.notEqual(result.code, 0, output);
        assert.match(output, /BERTH_ERR_CONFIG_INVALID/);
        assert.doesNotMatch(output, /listening on http/);
        return output;
      };
      const [overbooked, negative, unknown] = await Promise.all([
        startFails('account: { concurrency: 2 }\ngroups:\n  g: { functions: [b], reserved: 1 }\nfunctions:\n  a: { handler: h.handler, reservedConcurrency: 2 }\n  b: { handler: h.handler }\n'),
        startFails('functions:\n  a: { handler: h.handler, maxConcurrency: -1 }\n'),
        startFails('groups:\n  etl: { functions: [a, nope] }\nfunctions:\n  a: { handler: h.handler }\n'),
      ]);
      assert.match(overbooked, /account\.concurrency: reservations add up to 3, more than account\.concurrency \(2\)/);
      assert.match(negative, /functions\.a\.maxConcurrency: expected 0 or more/);
      assert.match(unknown, /groups\.etl\.functions\.1: unknown function "nope"/);
    });
  });
});
