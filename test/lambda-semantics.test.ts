/**
 * The Lambda Node.js programming model as Berth runs it, through the real server and
 * the Invoke API: async and callback handlers, context.succeed/fail/done, "first
 * completion wins", callbackWaitsForEmptyEventLoop, the context object, the Lambda
 * environment variables and the error shape (see docs aws-wire.md §4 "Node context").
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { escapeRegExp, invoke, sleep, stopWithin } from './helpers/lambda.js';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';

const REGION = 'eu-central-1';
/** Timer of the callbackWaitsForEmptyEventLoop tests. */
const TIMER_MS = 800;

const config = `service: semantics
defaults:
  environment:
    SHARED: from-defaults
    OVERRIDDEN: from-defaults
functions:
  asyncfn:
    handler: handlers.asyncHandler
  callbackfn:
    handler: handlers.callbackHandler
  ctx:
    handler: handlers.contextHandler
    memory: 192
    timeout: 7
    environment:
      GREETING: hello
      ANSWER: 42
      FLAG: true
      OVERRIDDEN: from-function
`;

const handlers = `
class ValidationError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ValidationError';
  }
}

export const asyncHandler = async (event) => {
  switch (event.mode) {
    case 'value':
      console.log('async handler saw', event.value);
      return { echo: event.value, n: 42 };
    case 'undefined':
      return undefined;
    case 'await':
      await new Promise((resolve) => setTimeout(resolve, 100));
      return 'awaited';
    case 'pending-timer':
      setTimeout(() => console.log('async pending timer fired'), 1500);
      return 'returned early';
    case 'throw':
      throw new Error('async boom');
    case 'type-error':
      throw new TypeError('not a function, really');
    case 'custom-error':
      throw new ValidationError('bad input');
    default:
      return 'warm';
  }
};

export function callbackHandler(event, context, callback) {
  switch (event.mode) {
    case 'result':
      callback(null, { via: 'callback' });
      return;
    case 'twice':
      callback(null, 'first');
      callback(null, 'second');
      return;
    case 'error-then-result':
      callback(new Error('first error'));
      callback(null, 'second');
      return;
    case 'error-string':
      callback('boom');
      return;
    case 'sync-throw':
      throw new Error('sync boom');
    case 'succeed':
      context.succeed({ via: 'succeed' });
      return;
    case 'fail':
      context.fail(new Error('failed via fail'));
      return;
    case 'fail-undefined':
      context.fail(undefined);
      return;
    case 'done-result':
      context.done(null, 'done result');
      return;
    case 'done-error':
      context.done(new Error('done error'));
      return;
    case 'succeed-then-fail':
      context.succeed('kept');
      context.fail(new Error('ignored'));
      return;
    case 'fail-then-succeed':
      context.fail(new Error('fail wins'));
      context.succeed('ignored');
      return;
    case 'wait-true':
      setTimeout(() => console.log('timer ran ' + event.marker), ${TIMER_MS});
      callback(null, 'waited');
      return;
    case 'wait-false':
      context.callbackWaitsForEmptyEventLoop = false;
      setTimeout(() => {
        globalThis.lateTimer = event.marker;
        console.log('timer ran ' + event.marker);
      }, ${TIMER_MS});
      callback(null, 'immediate');
      return;
    case 'read-late':
      callback(null, globalThis.lateTimer ?? 'timer never ran');
      return;
    case 'nothing-but-timer':
      setTimeout(() => console.log('drain timer ran ' + event.marker), 300);
      return;
    case 'nothing':
    default:
      return;
  }
}

export const contextHandler = async (event, context) => {
  const first = context.getRemainingTimeInMillis();
  if (event.sleep) await new Promise((resolve) => setTimeout(resolve, event.sleep));
  const env = {};
  for (const name of ['AWS_LAMBDA_FUNCTION_NAME', 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'AWS_LAMBDA_FUNCTION_VERSION',
    'AWS_LAMBDA_LOG_GROUP_NAME', 'AWS_LAMBDA_LOG_STREAM_NAME', 'AWS_REGION',
    'GREETING', 'ANSWER', 'FLAG', 'SHARED', 'OVERRIDDEN']) env[name] = process.env[name] ?? null;
  return {
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB,
    memoryType: typeof context.memoryLimitInMB,
    awsRequestId: context.awsRequestId,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    tenantId: context.tenantId ?? null,
    callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
    remainingFirst: first,
    remainingLast: context.getRemainingTimeInMillis(),
    env,
  };
};
`;

let berth: RunningBerth;

before(async () => {
  berth = await startBerth(makeProject({ 'berth.yml': config, 'handlers.mjs': handlers }), { env: { AWS_REGION: REGION } });
});

after(async () => {
  if (!berth) return; // before() failed, and said why
  assert.equal(berth.process.exitCode, null, `the gateway exited during the tests (signal ${berth.process.signalCode}):\n${berth.output()}`);
  assert.equal(await stopWithin(berth), 0, `berth should exit cleanly on SIGTERM:\n${berth.output()}`);
});

/** Asserts a successful invocation and returns its payload. */
function succeeded(result: Awaited<ReturnType<typeof invoke>>): unknown {
  assert.equal(result.status, 200, `Invoke API status (body: ${result.raw})`);
  assert.equal(result.functionError, null, `unexpected function error: ${result.raw}`);
  return result.body;
}

/** Asserts a function error (200 + x-amz-function-error) and returns the error body. */
function failed(result: Awaited<ReturnType<typeof invoke>>): { errorType: string; errorMessage: string; trace: string[] } {
  assert.equal(result.status, 200, `Invoke API status (body: ${result.raw})`);
  assert.equal(result.functionError, 'Unhandled', `expected x-amz-function-error: Unhandled, body: ${result.raw}`);
  return result.body;
}

describe('async handlers', () => {
  test('the resolved value is the result, and console output is in the tail log', async () => {
    const result = await invoke(berth.url, 'asyncfn', { mode: 'value', value: 'ping' });
    assert.deepEqual(succeeded(result), { echo: 'ping', n: 42 });
    assert.equal(result.headers.get('x-amz-executed-version'), '$LATEST');
    assert.ok(result.invocationId, 'x-berth-invocation-id header');
    assert.match(result.log, new RegExp(`\\t${escapeRegExp(result.invocationId!)}\\tINFO\\tasync handler saw ping\\n`));
  });

  test('resolving with undefined gives null', async () => {
    const result = await invoke(berth.url, 'asyncfn', { mode: 'undefined' });
    assert.equal(succeeded(result), null);
    assert.equal(result.raw, 'null');
  });

  test('an awaited timer completes before the result', async () => {
    assert.equal(succeeded(await invoke(berth.url, 'asyncfn', { mode: 'await' })), 'awaited');
  });

  test('a settled promise is reported at once, without waiting for pending timers', async () => {
    const tenant = 'async-pending';
    succeeded(await invoke(berth.url, 'asyncfn', { mode: 'warm-up' }, { tenant }));
    const result = await invoke(berth.url, 'asyncfn', { mode: 'pending-timer' }, { tenant });
    assert.equal(succeeded(result), 'returned early');
    assert.ok(result.ms < 1000, `an async result should not wait for a 1500 ms timer; took ${result.ms.toFixed(0)} ms`);
    assert.doesNotMatch(result.log, /async pending timer fired/);
  });

  test('a thrown Error becomes {errorType, errorMessage, trace}', async () => {
    const result = await invoke(berth.url, 'asyncfn', { mode: 'throw' });
    const error = failed(result);
    assert.deepEqual(Object.keys(error).sort(), ['errorMessage', 'errorType', 'trace']);
    assert.equal(error.errorType, 'Error');
    assert.equal(error.errorMessage, 'async boom');
    assert.ok(Array.isArray(error.trace) && error.trace.length > 1, `trace should be the stack lines: ${JSON.stringify(error.trace)}`);
    assert.equal(error.trace[0], 'Error: async boom');
    assert.ok(error.trace.slice(1).every((line) => /^\s+at /.test(line)), `stack frames: ${JSON.stringify(error.trace)}`);
    // Lambda's runtime logs every failed invocation.
    assert.match(result.log, /\tERROR\tInvoke Error\s+\{"errorType":"Error","errorMessage":"async boom"/);
  });

  test('the errorType is the error name', async () => {
    assert.equal(failed(await invoke(berth.url, 'asyncfn', { mode: 'type-error' })).errorType, 'TypeError');
    const custom = failed(await invoke(berth.url, 'asyncfn', { mode: 'custom-error' }));
    assert.equal(custom.errorType, 'ValidationError');
    assert.equal(custom.errorMessage, 'bad input');
  });
});

describe('callback handlers and context.succeed/fail/done', () => {
  test('callback(null, result) delivers the result', async () => {
    assert.deepEqual(succeeded(await invoke(berth.url, 'callbackfn', { mode: 'result' })), { via: 'callback' });
  });

  test("callback('boom') is an error of type 'string'", async () => {
    assert.deepEqual(failed(await invoke(berth.url, 'callbackfn', { mode: 'error-string' })), {
      errorType: 'string',
      errorMessage: 'boom',
      trace: [],
    });
  });

  test('a synchronous throw from a callback handler is a function error', async () => {
    const error = failed(await invoke(berth.url, 'callbackfn', { mode: 'sync-throw' }));
    assert.equal(error.errorType, 'Error');
    assert.equal(error.errorMessage, 'sync boom');
    assert.equal(error.trace[0], 'Error: sync boom');
  });

  test('context.succeed(result) delivers the result', async () => {
    assert.deepEqual(succeeded(await invoke(berth.url, 'callbackfn', { mode: 'succeed' })), { via: 'succeed' });
  });

  test('context.fail(error) reports the error', async () => {
    const error = failed(await invoke(berth.url, 'callbackfn', { mode: 'fail' }));
    assert.equal(error.errorType, 'Error');
    assert.equal(error.errorMessage, 'failed via fail');
  });

  test("context.fail(undefined) reports the error 'handled'", async () => {
    assert.deepEqual(failed(await invoke(berth.url, 'callbackfn', { mode: 'fail-undefined' })), {
      errorType: 'string',
      errorMessage: 'handled',
      trace: [],
    });
  });

  test('context.done(null, result) and context.done(error)', async () => {
    assert.equal(succeeded(await invoke(berth.url, 'callbackfn', { mode: 'done-result' })), 'done result');
    const error = failed(await invoke(berth.url, 'callbackfn', { mode: 'done-error' }));
    assert.equal(error.errorMessage, 'done error');
  });

  test('only the first completion counts: callback twice', async () => {
    assert.equal(succeeded(await invoke(berth.url, 'callbackfn', { mode: 'twice' })), 'first');
  });

  test('only the first completion counts: callback(error) then callback(null, result)', async () => {
    assert.equal(failed(await invoke(berth.url, 'callbackfn', { mode: 'error-then-result' })).errorMessage, 'first error');
  });

  test('only the first completion counts: succeed then fail', async () => {
    assert.equal(succeeded(await invoke(berth.url, 'callbackfn', { mode: 'succeed-then-fail' })), 'kept');
  });

  test('only the first completion counts: fail then succeed', async () => {
    assert.equal(failed(await invoke(berth.url, 'callbackfn', { mode: 'fail-then-succeed' })).errorMessage, 'fail wins');
  });

  test('a non-async handler that never calls back and has nothing pending returns null', async () => {
    const result = await invoke(berth.url, 'callbackfn', { mode: 'nothing' });
    assert.equal(succeeded(result), null);
    assert.equal(result.raw, 'null');
  });

  test('a handler that never calls back returns null once its pending timer has run', async () => {
    const tenant = 'drain-null';
    succeeded(await invoke(berth.url, 'callbackfn', { mode: 'nothing' }, { tenant }));
    const result = await invoke(berth.url, 'callbackfn', { mode: 'nothing-but-timer', marker: 'D1' }, { tenant });
    assert.equal(succeeded(result), null);
    assert.ok(result.ms >= 280, `the result should wait for the 300 ms timer; took ${result.ms.toFixed(0)} ms`);
    assert.match(result.log, /\tINFO\tdrain timer ran D1\n/);
  });
});

describe('callbackWaitsForEmptyEventLoop', () => {
  test('true (the default): callback(null, r) is delivered only after the pending timer ran', async () => {
    const tenant = 'wait-true';
    // The first call of a tenant may start an environment; time a warm one.
    succeeded(await invoke(berth.url, 'callbackfn', { mode: 'nothing' }, { tenant }));
    const result = await invoke(berth.url, 'callbackfn', { mode: 'wait-true', marker: 'T1' }, { tenant });
    assert.equal(succeeded(result), 'waited');
    assert.ok(result.ms >= TIMER_MS - 20, `the result should wait for the ${TIMER_MS} ms timer; took ${result.ms.toFixed(0)} ms`);
    const id = escapeRegExp(result.invocationId!);
    // The timer's line belongs to this invocation: between its START and END.
    assert.match(result.log, new RegExp(`START RequestId: ${id} [^\\n]*\\n(?:.*\\n)*.*\\t${id}\\tINFO\\ttimer ran T1\\n(?:.*\\n)*END RequestId: ${id}\\n`));
  });

  test('false: callback(null, r) is delivered at once, and the pending timer is not in its log', async () => {
    const tenant = 'wait-false';
    succeeded(await invoke(berth.url, 'callbackfn', { mode: 'nothing' }, { tenant }));
    const result = await invoke(berth.url, 'callbackfn', { mode: 'wait-false', marker: 'F1' }, { tenant });
    assert.equal(succeeded(result), 'immediate');
    assert.ok(result.ms < TIMER_MS / 2, `the result should not wait for the ${TIMER_MS} ms timer; took ${result.ms.toFixed(0)} ms`);
    assert.match(result.log, /END RequestId/);
    assert.doesNotMatch(result.log, /timer ran F1/);

    // The environment lives on with its timer, which runs later (as in a thawed Lambda sandbox).
    await sleep(TIMER_MS + 200);
    assert.equal(succeeded(await invoke(berth.url, 'callbackfn', { mode: 'read-late' }, { tenant })), 'F1');
  });
});

describe('the context object and environment variables', () => {
  interface ContextView {
    functionName: string;
    functionVersion: string;
    invokedFunctionArn: string;
    memoryLimitInMB: string;
    memoryType: string;
    awsRequestId: string;
    logGroupName: string;
    logStreamName: string;
    tenantId: string | null;
    callbackWaitsForEmptyEventLoop: boolean;
    remainingFirst: number;
    remainingLast: number;
    env: Record<string, string | null>;
  }

  test('context fields', async () => {
    const result = await invoke(berth.url, 'ctx', {});
    const context = succeeded(result) as ContextView;
    assert.equal(context.functionName, 'ctx');
    assert.equal(context.functionVersion, '$LATEST');
    assert.match(context.invokedFunctionArn, new RegExp(`^arn:aws:lambda:${REGION}:\\d{12}:function:ctx$`));
    assert.equal(context.memoryType, 'string');
    assert.equal(context.memoryLimitInMB, '192');
    assert.ok(result.invocationId);
    assert.equal(context.awsRequestId, result.invocationId, 'awsRequestId is the invocation id');
    assert.equal(context.logGroupName, '/aws/lambda/ctx');
    assert.match(context.logStreamName, /^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]+$/);
    assert.equal(context.callbackWaitsForEmptyEventLoop, true);
    assert.equal(context.tenantId, null, 'no tenant header, no tenantId');
    assert.ok(context.remainingFirst > 0, `getRemainingTimeInMillis() = ${context.remainingFirst}`);
    assert.ok(context.remainingFirst <= 7000, `getRemainingTimeInMillis() = ${context.remainingFirst} exceeds the 7 s timeout`);
    assert.ok(context.remainingFirst > 5000, `getRemainingTimeInMillis() = ${context.remainingFirst} right at the start of a 7 s invocation`);
    // The invocation's START line names the same request id.
    assert.match(result.log, new RegExp(`START RequestId: ${escapeRegExp(result.invocationId)} Version: \\$LATEST`));
  });

  test('getRemainingTimeInMillis() counts down', async () => {
    const context = succeeded(await invoke(berth.url, 'ctx', { sleep: 300 })) as ContextView;
    const spent = context.remainingFirst - context.remainingLast;
    assert.ok(spent >= 280 && spent < 2000, `remaining time dropped by ${spent} ms over a 300 ms sleep`);
    assert.ok(context.remainingLast > 0);
  });

  test('tenantId is set from x-amz-tenant-id and from x-berth-tenant', async () => {
    const viaAmz = succeeded(await invoke(berth.url, 'ctx', {}, { tenant: 'acme-1' })) as ContextView;
    assert.equal(viaAmz.tenantId, 'acme-1');
    const viaBerth = succeeded(await invoke(berth.url, 'ctx', {}, { tenant: 'beta-2', tenantHeader: 'x-berth-tenant' })) as ContextView;
    assert.equal(viaBerth.tenantId, 'beta-2');
  });

  test('Lambda and function environment variables are set', async () => {
    const context = succeeded(await invoke(berth.url, 'ctx', {})) as ContextView;
    assert.deepEqual(context.env, {
      AWS_LAMBDA_FUNCTION_NAME: 'ctx',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '192',
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/ctx',
      AWS_LAMBDA_LOG_STREAM_NAME: context.logStreamName,
      AWS_REGION: REGION,
      GREETING: 'hello',
      ANSWER: '42',
      FLAG: 'true',
      SHARED: 'from-defaults',
      OVERRIDDEN: 'from-function',
    });
  });
});
