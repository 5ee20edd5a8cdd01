/**
 * Limits and failures through the real server: timeouts (a hang, a busy loop, a
 * callback never called), process.exit, uncaught exceptions, unhandled rejections and
 * memory exhaustion all become function errors; the function serves its next request,
 * other functions keep answering meanwhile, and the gateway never goes down. Also the
 * stored logs: START / output / END / REPORT in Lambda's format.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { escapeRegExp, functionLogs, invoke, processAlive, sleep, stopWithin, storedLogOf, waitFor, type Invocation } from './helpers/lambda.js';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';

const config = `service: limits
defaults:
  memory: 128
functions:
  faulty:
    handler: faulty.handler
    timeout: 1
    events:
      - http: GET /faulty
  stuckcb:
    handler: stuckcb.handler
    timeout: 1
  hog:
    handler: hog.handler
    timeout: 20
  healthy:
    handler: healthy.handler
    timeout: 5
    events:
      - http: GET /healthy
`;

const faulty = `import { writeFileSync } from 'node:fs';

export const handler = async (event) => {
  const mode = event.mode ?? event.queryStringParameters?.mode ?? 'ok';
  switch (mode) {
    case 'hang':
      console.log('about to hang');
      setInterval(() => {}, 100);
      await new Promise(() => {});
      return 'unreachable';
    case 'spin':
      if (event.pidFile) writeFileSync(event.pidFile, String(process.pid));
      console.log('about to spin');
      while (true) {}
    case 'exit':
      process.exit(3);
    case 'uncaught':
      await new Promise(() => setTimeout(() => { throw new Error('thrown from a timer'); }, 50));
      return 'unreachable';
    case 'unhandled':
      Promise.reject(new Error('nobody handles this'));
      await new Promise((resolve) => setTimeout(resolve, 500));
      return 'the rejection went unnoticed';
    default:
      return { statusCode: 200, body: 'faulty is fine' };
  }
};
`;

const stuckcb = `exports.handler = (event, context, callback) => {
  setInterval(() => {}, 100);
  // never calls back
};
`;

const hog = `export const handler = async (event) => {
  const keep = [];
  if (event.mode === 'buffers') {
    for (;;) {
      keep.push(Buffer.alloc(16 * 1024 * 1024, 1));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  if (event.mode === 'heap') {
    for (;;) keep.push(new Array(1e6).fill(Math.random()));
  }
  return { fine: true };
};
`;

const healthy = `exports.handler = async (event, context) => {
  console.log('healthy says hi');
  console.error('healthy complains');
  return { statusCode: 200, body: 'healthy' };
};
`;

let berth: RunningBerth;

before(async () => {
  berth = await startBerth(
    makeProject({ 'berth.yml': config, 'faulty.mjs': faulty, 'stuckcb.cjs': stuckcb, 'hog.mjs': hog, 'healthy.cjs': healthy }),
  );
  // Warm the healthy function so its answers below measure nothing but the invocation.
  assert.equal((await invoke(berth.url, 'healthy', {})).functionError, null);
});

after(async () => {
  if (!berth) return; // before() failed, and said why
  assert.equal(berth.process.exitCode, null, `the gateway exited during the tests (signal ${berth.process.signalCode}):\n${berth.output()}`);
  assert.equal(await stopWithin(berth), 0, `berth should exit cleanly on SIGTERM:\n${berth.output()}`);
});

/**
 * A request that should be answered within ~3 s counts as stuck after this long.
 * Each test below uses its own tenant, so a function left stuck for one tenant does
 * not take the following tests down with it.
 */
const STUCK_MS = 5000;

type FunctionErrorBody = { errorType: string; errorMessage: string; trace: string[] };

function functionError(result: Invocation): FunctionErrorBody {
  assert.equal(result.status, 200, `Invoke API status (body: ${result.raw})`);
  assert.equal(result.functionError, 'Unhandled', `expected x-amz-function-error: Unhandled, body: ${result.raw}`);
  assert.equal(typeof result.body?.errorMessage, 'string', `error body: ${result.raw}`);
  return result.body;
}

/** Turns a request that got no answer in time into a failure that says which. */
async function answered<T>(what: string, request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') assert.fail(`${what}: no answer within ${STUCK_MS} ms`);
    throw err;
  }
}

/** A request to the healthy function must succeed; alternate the HTTP route and the Invoke API. */
let healthyCalls = 0;
async function assertHealthyAnswers(): Promise<void> {
  if (healthyCalls++ % 2 === 0) {
    const response = await answered('GET /healthy', fetch(`${berth.url}/healthy`, { signal: AbortSignal.timeout(STUCK_MS) }));
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'healthy');
  } else {
    const result = await answered('invoke healthy', invoke(berth.url, 'healthy', {}, { timeoutMs: STUCK_MS }));
    assert.equal(result.functionError, null, result.raw);
    assert.deepEqual(result.body, { statusCode: 200, body: 'healthy' });
  }
}

/**
 * Runs a misbehaving call and, while it runs, a call to the healthy function. For a
 * call that hangs, the healthy answer must arrive while the faulty one is still running.
 */
async function whileMisbehaving<T>(call: () => Promise<T>, options: { hangs: boolean }): Promise<T> {
  let settled = false;
  const misbehaving = call().finally(() => {
    settled = true;
  });
  if (options.hangs) await sleep(200);
  try {
    await assertHealthyAnswers();
    if (options.hangs) assert.equal(settled, false, 'the healthy function should answer while the faulty one is still stuck');
  } finally {
    // Never leave the faulty call dangling, even when the assertions above fail.
    await misbehaving.catch(() => {});
  }
  return answered('the misbehaving request', misbehaving);
}

function invokeAs(name: string, tenant: string, payload: unknown): Promise<Invocation> {
  return invoke(berth.url, name, payload, { tenant, timeoutMs: STUCK_MS });
}

/** The faulty function serves a normal request for this tenant (also used to warm one up). */
async function assertFaultyServes(tenant: string, what = 'the next request after the failure'): Promise<void> {
  const result = await answered(`${what} (faulty, tenant ${tenant})`, invokeAs('faulty', tenant, { mode: 'ok' }));
  assert.equal(result.functionError, null, `${what} should succeed: ${result.raw}`);
  assert.deepEqual(result.body, { statusCode: 200, body: 'faulty is fine' });
}

/** GET <path> on a user route, for a tenant (x-berth-tenant). */
async function timedFetch(path: string, tenant: string): Promise<{ response: Response; body: string; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${berth.url}${path}`, { headers: { 'x-berth-tenant': tenant }, signal: AbortSignal.timeout(STUCK_MS) });
  const body = await response.text();
  return { response, body, ms: performance.now() - started };
}

function assertTimely(ms: number): void {
  assert.ok(ms >= 950 && ms < 3000, `a 1 s timeout should answer within ~1-3 s; took ${ms.toFixed(0)} ms`);
}

const TIMED_OUT = 'Task timed out after 1.00 seconds';

describe('timeouts', () => {
  let hangInvocationId: string;
  let spinInvocationId: string;

  test('a hanging handler: the HTTP route answers 504, and the next request succeeds', async () => {
    const tenant = 'hang-route';
    await assertFaultyServes(tenant, 'a warm-up request');
    const { response, body, ms } = await whileMisbehaving(() => timedFetch('/faulty?mode=hang', tenant), { hangs: true });
    assert.equal(response.status, 504, body);
    assert.equal(JSON.parse(body).message, 'Endpoint request timed out');
    assertTimely(ms);
    hangInvocationId = response.headers.get('x-berth-invocation-id')!;
    assert.ok(hangInvocationId, 'x-berth-invocation-id on a timed-out request');
    const next = await answered('GET /faulty after the timeout', timedFetch('/faulty', tenant));
    assert.equal(next.response.status, 200);
    assert.equal(next.body, 'faulty is fine');
  });

  test('a hanging handler: the Invoke API answers 200 with a function error, and the next request succeeds', async () => {
    const tenant = 'hang-api';
    await assertFaultyServes(tenant, 'a warm-up request');
    const result = await whileMisbehaving(() => invokeAs('faulty', tenant, { mode: 'hang' }), { hangs: true });
    const error = functionError(result);
    assert.ok(error.errorMessage.includes(TIMED_OUT), `errorMessage: ${error.errorMessage}`);
    assertTimely(result.ms);
    assert.match(result.log, /Task timed out after 1\.00 seconds/);
    await assertFaultyServes(tenant);
  });

  test('an infinite loop times out the same way over the HTTP route', async () => {
    const tenant = 'spin-route';
    await assertFaultyServes(tenant, 'a warm-up request');
    const route = await whileMisbehaving(() => timedFetch('/faulty?mode=spin', tenant), { hangs: true });
    assert.equal(route.response.status, 504, route.body);
    assertTimely(route.ms);
    await assertFaultyServes(tenant);
  });

  test('an infinite loop times out the same way over the Invoke API, and its process is killed', async () => {
    const tenant = 'spin-api';
    await assertFaultyServes(tenant, 'a warm-up request');
    const pidFile = path.join(berth.dir, 'spin.pid');
    const result = await whileMisbehaving(() => invokeAs('faulty', tenant, { mode: 'spin', pidFile }), { hangs: true });
    assert.ok(functionError(result).errorMessage.includes(TIMED_OUT), result.raw);
    assertTimely(result.ms);
    spinInvocationId = result.invocationId!;
    // The spinning process is killed, not left burning a CPU.
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !processAlive(pid), { what: `the spinning environment (pid ${pid}) to be killed`, timeoutMs: 5000 });
    await assertFaultyServes(tenant);
  });

  test('a callback handler that never calls back, with a live setInterval, times out', async () => {
    const result = await whileMisbehaving(() => invokeAs('stuckcb', 'stuck-cb', {}), { hangs: true });
    assert.ok(functionError(result).errorMessage.includes(TIMED_OUT), result.raw);
    assertTimely(result.ms);
  });

  test("a timed-out invocation's stored log says so", async () => {
    assert.ok(hangInvocationId, 'the HTTP timeout test ran first');
    const log = await storedLogOf(berth.url, 'faulty', hangInvocationId);
    const id = escapeRegExp(hangInvocationId);
    assert.match(log.text, new RegExp(`START RequestId: ${id} Version: \\$LATEST\\n`));
    assert.match(log.text, new RegExp(`\\t${id}\\tINFO\\tabout to hang\\n`));
    assert.match(log.text, /Task timed out after 1\.00 seconds/);
    assert.match(log.text, new RegExp(`END RequestId: ${id}\\n`));
    assert.match(log.text, new RegExp(`REPORT RequestId: ${id}\\tDuration: `));
  });

  test('what a handler printed before an infinite loop is kept in its timed-out log', async () => {
    assert.ok(spinInvocationId, 'the infinite loop test ran first');
    const log = await storedLogOf(berth.url, 'faulty', spinInvocationId);
    const id = escapeRegExp(spinInvocationId);
    assert.match(log.text, /Task timed out after 1\.00 seconds/);
    assert.match(log.text, new RegExp(`\\t${id}\\tINFO\\tabout to spin\\n`), `log of the timed-out invocation:\n${log.text}`);
  });
});

describe('crashes', () => {
  test('process.exit(3) is a Runtime.ExitError, and the next request is served', async () => {
    const tenant = 'exit';
    await assertFaultyServes(tenant, 'a warm-up request');
    const result = await whileMisbehaving(() => invokeAs('faulty', tenant, { mode: 'exit' }), { hangs: false });
    const error = functionError(result);
    assert.equal(error.errorType, 'Runtime.ExitError');
    assert.match(error.errorMessage, /exit status 3/);
    await assertFaultyServes(tenant);
  });

  test('an uncaught exception from a timer is a function error with its message, and the next request is served', async () => {
    const tenant = 'uncaught';
    await assertFaultyServes(tenant, 'a warm-up request');
    const result = await whileMisbehaving(() => invokeAs('faulty', tenant, { mode: 'uncaught' }), { hangs: false });
    const error = functionError(result);
    assert.match(error.errorMessage, /thrown from a timer/);
    assert.ok(result.ms < 1000, `the crash should be reported at once, not at the timeout; took ${result.ms.toFixed(0)} ms`);
    await assertFaultyServes(tenant);
  });

  test('an unhandled promise rejection is a function error, and the next request is served', async () => {
    const tenant = 'unhandled';
    await assertFaultyServes(tenant, 'a warm-up request');
    const result = await whileMisbehaving(() => invokeAs('faulty', tenant, { mode: 'unhandled' }), { hangs: false });
    const error = functionError(result);
    assert.match(error.errorMessage, /nobody handles this/);
    await assertFaultyServes(tenant);
  });

  for (const mode of ['exit', 'uncaught', 'unhandled']) {
    test(`a crash (${mode}) over the HTTP route is a 502, and the next request is served`, async () => {
      const tenant = `route-${mode}`;
      await assertFaultyServes(tenant, 'a warm-up request');
      const { response, body } = await whileMisbehaving(() => timedFetch(`/faulty?mode=${mode}`, tenant), { hangs: false });
      assert.equal(response.status, 502, `${mode}: ${body}`);
      assert.equal(JSON.parse(body).message, 'Internal Server Error');
      await assertFaultyServes(tenant);
    });
  }
});

describe('memory limit', () => {
  for (const [mode, how] of [
    ['buffers', 'allocating Buffers'],
    ['heap', 'filling the JavaScript heap'],
  ] as const) {
    test(`${how} past memory: 128 is Runtime.OutOfMemory, and the next request is served`, async () => {
      const tenant = `oom-${mode}`;
      const warm = await answered('a warm-up request', invokeAs('hog', tenant, {}));
      assert.deepEqual(warm.body, { fine: true });
      const result = await whileMisbehaving(() => invokeAs('hog', tenant, { mode }), { hangs: false });
      const error = functionError(result);
      assert.equal(error.errorType, 'Runtime.OutOfMemory', result.raw);
      assert.match(error.errorMessage, /memory/i);
      const next = await answered(`the next request after the failure (hog, tenant ${tenant})`, invokeAs('hog', tenant, {}));
      assert.equal(next.functionError, null, next.raw);
      assert.deepEqual(next.body, { fine: true });
    });
  }
});

describe('stored logs', () => {
  const ISO = '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z';

  test('START, the output lines in Lambda format, END and REPORT', async () => {
    const result = await invoke(berth.url, 'healthy', {});
    assert.equal(result.functionError, null);
    const id = result.invocationId!;
    const log = await storedLogOf(berth.url, 'healthy', id);
    const rid = escapeRegExp(id);
    assert.equal(typeof log.seq, 'number');
    assert.match(log.text, new RegExp(`START RequestId: ${rid} Version: \\$LATEST\\n`));
    assert.match(log.text, new RegExp(`^${ISO}\\t${rid}\\tINFO\\thealthy says hi$`, 'm'));
    assert.match(log.text, new RegExp(`^${ISO}\\t${rid}\\tERROR\\thealthy complains$`, 'm'));
    assert.match(log.text, new RegExp(`END RequestId: ${rid}\\n`));
    assert.match(
      log.text,
      new RegExp(`REPORT RequestId: ${rid}\\tDuration: \\d+\\.\\d{2} ms\\tBilled Duration: \\d+ ms\\tMemory Size: 128 MB\\tMax Memory Used: \\d+ MB`),
    );
    const maxUsed = Number(/Max Memory Used: (\d+) MB/.exec(log.text)![1]);
    assert.ok(maxUsed > 0, `Max Memory Used: ${maxUsed} MB`);
    // The pieces come in Lambda's order.
    const at = (text: string) => log.text.indexOf(text);
    assert.ok(at('START RequestId') < at('healthy says hi'));
    assert.ok(at('healthy complains') < at('END RequestId'));
    assert.ok(at('END RequestId') < at('REPORT RequestId'));
    // The Invoke API's log tail is the same text.
    assert.equal(result.log, log.text);
  });

  test('Init Duration is reported on the first invocation of an environment only', async () => {
    const tenant = 'init-check';
    const first = await invoke(berth.url, 'healthy', {}, { tenant });
    const second = await invoke(berth.url, 'healthy', {}, { tenant });
    const firstLog = await storedLogOf(berth.url, 'healthy', first.invocationId!);
    const secondLog = await storedLogOf(berth.url, 'healthy', second.invocationId!);
    assert.match(firstLog.text, /REPORT RequestId: [^\n]*\tInit Duration: \d+\.\d{2} ms/);
    assert.match(secondLog.text, /REPORT RequestId: /);
    assert.doesNotMatch(secondLog.text, /Init Duration/);
  });

  test('limit=N returns the newest N entries in ascending order', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await invoke(berth.url, 'healthy', {})).invocationId!);
    await storedLogOf(berth.url, 'healthy', ids[2]!);
    const logs = await functionLogs(berth.url, 'healthy', 2);
    assert.equal(logs.length, 2);
    assert.deepEqual(
      logs.map((l) => l.invocationId),
      ids.slice(1),
    );
    assert.ok(logs[0]!.seq < logs[1]!.seq, `seqs ${logs.map((l) => l.seq)}`);
  });
});

describe('the gateway', () => {
  test('is still up and healthy after all of the above', async () => {
    assert.equal(berth.process.exitCode, null);
    assert.equal(berth.process.signalCode, null);
    const response = await fetch(`${berth.url}/_berth/health`);
    assert.equal(response.status, 200);
    const health = (await response.json()) as { status: string; pid: number };
    assert.equal(health.status, 'ok');
    assert.equal(health.pid, berth.process.pid, 'the same gateway process answers');
    await assertHealthyAnswers();
    await assertFaultyServes('after-all', 'a request after all the failures');
  });
});
