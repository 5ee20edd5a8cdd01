/**
 * `berth bootstrap`, Berth's runtime client: unmodified Lambda Node handlers (ESM and CommonJS,
 * promises and callbacks) run under `runtime: provided` through the Runtime API, with Lambda's
 * context, logs and errors, through the Invoke API, an HTTP route and async retries; init
 * failures and crashes are function errors with Lambda's types, and the environment is replaced.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { invoke, waitFor } from './helpers/lambda.js';
import { makeProject, runCli, startBerth, type RunningBerth } from './helpers/project.js';

const BOOTSTRAP = '#!/bin/sh\nexec berth bootstrap\n';

const ESM_HANDLER = `
export const handler = async (event, context) => {
  if (event.fail) throw new RangeError('asked to fail');
  if (event.crashLater) setTimeout(() => { throw new Error('thrown from a timer'); }, 5);
  if (event.crashLater) return new Promise(() => {});
  if (event.bigint) return { n: 1n };
  console.log('handling', event.n);
  console.warn('careful');
  return {
    got: event,
    pid: process.pid,
    functionName: context.functionName,
    requestId: context.awsRequestId,
    arn: context.invokedFunctionArn,
    memory: context.memoryLimitInMB,
    remainingOk: context.getRemainingTimeInMillis() > 0 && context.getRemainingTimeInMillis() <= 3000,
    tenant: context.tenantId ?? null,
    trace: process.env._X_AMZN_TRACE_ID ?? null,
  };
};
export const route = async (event) => ({ statusCode: 201, headers: { 'x-path': event.rawPath }, cookies: ['a=1', 'b=2'], body: JSON.stringify({ id: event.pathParameters.id }) });
`;

// CommonJS with the callback style, a nested export, and work left on the event loop after the callback.
const CJS_HANDLER = `
exports.nested = {
  handler(event, context, callback) {
    const started = Date.now();
    setTimeout(() => { globalThis.lateWork = Date.now() - started; }, 150);
    if (event.noWait) {
      context.callbackWaitsForEmptyEventLoop = false;
      return callback(null, { waited: false });
    }
    callback(null, { waitedFor: 'the event loop', lateWorkBefore: globalThis.lateWork ?? null });
  },
};
exports.plain = function (event, context) { context.succeed({ via: 'succeed', attempt: context.attempt }); };
`;

const RETRIED_HANDLER = `
export const handler = async (event, context) => {
  if (context.attempt < 2) throw new Error('first attempt fails');
  (await import('node:fs')).writeFileSync(event.out, JSON.stringify({ attempt: context.attempt, id: context.awsRequestId }));
  return 'ok';
};
`;

const BERTH_YML = `
functions:
  esm:
    runtime: provided
    bootstrap: app/bootstrap
    handler: index.handler
    timeout: 3
    memory: 192
  route:
    runtime: provided
    bootstrap: app/bootstrap
    handler: index.route
    events:
      - http: GET /things/{id}
  tenanted:
    runtime: provided
    bootstrap: app/bootstrap
    handler: index.handler
    isolation: tenant
  callbacks:
    runtime: provided
    bootstrap: cjs/bootstrap
    handler: lib/legacy.nested.handler
  succeed:
    runtime: provided
    bootstrap: cjs/bootstrap
    handler: lib/legacy.plain
  retried:
    runtime: provided
    bootstrap: app/bootstrap
    handler: retried.handler
    async: { retries: 2, retryDelay: 0.1 }
  missingModule:
    runtime: provided
    bootstrap: app/bootstrap
    handler: nowhere.handler
  missingExport:
    runtime: provided
    bootstrap: app/bootstrap
    handler: index.absent
  syntaxError:
    runtime: provided
    bootstrap: app/bootstrap
    handler: broken.handler
  badName:
    runtime: provided
    bootstrap: app/bootstrap
    handler: index
`;

let berth: RunningBerth;
let dir: string;

before(async () => {
  dir = makeProject({
    'berth.yml': BERTH_YML,
    'app/bootstrap': BOOTSTRAP,
    'app/index.mjs': ESM_HANDLER,
    'app/retried.mjs': RETRIED_HANDLER,
    'app/broken.mjs': 'export const handler = async () => { return {; };\n',
    'cjs/bootstrap': BOOTSTRAP,
    'cjs/package.json': '{"type":"commonjs"}\n',
    'cjs/lib/legacy.js': CJS_HANDLER,
  });
  for (const bootstrap of ['app/bootstrap', 'cjs/bootstrap']) chmodSync(path.join(dir, bootstrap), 0o755);
  berth = await startBerth(dir);
});

after(async () => {
  await berth?.stop();
});

describe('berth bootstrap runs unmodified Node handlers through the Runtime API', () => {
  test('an ESM handler gets its event, Lambda context and trace id, and logs in Lambda format', async () => {
    const first = await invoke(berth.url, 'esm', { n: 1 });
    assert.equal(first.status, 200, first.raw);
    assert.equal(first.functionError, null, first.raw);
    assert.deepEqual(first.body.got, { n: 1 });
    assert.equal(first.body.functionName, 'esm');
    assert.equal(first.body.requestId, first.invocationId, 'awsRequestId is the invocation id');
    assert.equal(first.body.arn, 'arn:aws:lambda:us-east-1:000000000000:function:esm');
    assert.equal(first.body.memory, '192');
    assert.equal(first.body.remainingOk, true, 'getRemainingTimeInMillis counts down from the 3 s timeout');
    assert.match(first.body.trace, /^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$/);
    const id = first.invocationId!;
    assert.match(first.log, new RegExp(`\\t${id}\\tINFO\\thandling 1\\n`));
    assert.match(first.log, new RegExp(`\\t${id}\\tWARN\\tcareful\\n`));
    assert.match(first.log, /^REPORT RequestId: .*Init Duration: /m, 'the first invocation reports init');
    const second = await invoke(berth.url, 'esm', { n: 2 });
    assert.equal(second.body.pid, first.body.pid, 'the same process serves the next invocation');
    assert.notEqual(second.body.requestId, first.body.requestId);
  });

  test('an HTTP route gets the API Gateway event and its status, headers and cookies', async () => {
    const response = await fetch(`${berth.url}/things/42`);
    assert.equal(response.status, 201);
    assert.equal(response.headers.get('x-path'), '/things/42');
    assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.deepEqual(await response.json(), { id: '42' });
  });

  test('the tenant reaches context.tenantId, and tenants get environments of their own', async () => {
    const a = await invoke(berth.url, 'tenanted', {}, { tenant: 'acme' });
    const b = await invoke(berth.url, 'tenanted', {}, { tenant: 'globex' });
    assert.equal(a.body.tenant, 'acme');
    assert.equal(b.body.tenant, 'globex');
    assert.notEqual(a.body.pid, b.body.pid);
  });

  test('a CommonJS callback handler waits for the event loop unless told not to; context.succeed answers', async () => {
    const waited = await invoke(berth.url, 'callbacks', {});
    assert.equal(waited.functionError, null, waited.raw);
    assert.equal(waited.body.waitedFor, 'the event loop');
    assert.ok(waited.ms >= 140, `the answer waited for the 150 ms timer (took ${waited.ms.toFixed(0)} ms)`);
    const quick = await invoke(berth.url, 'callbacks', { noWait: true });
    assert.deepEqual(quick.body, { waited: false });
    assert.ok(quick.ms < 140, `callbackWaitsForEmptyEventLoop = false answers at once (took ${quick.ms.toFixed(0)} ms)`);
    const succeeded = await invoke(berth.url, 'succeed', {});
    assert.deepEqual(succeeded.body, { via: 'succeed', attempt: 1 });
  });

  test('a throw is a function error with its type, message and stack, and the environment goes on', async () => {
    const failed = await invoke(berth.url, 'esm', { fail: true });
    assert.equal(failed.status, 200);
    assert.equal(failed.functionError, 'Unhandled');
    assert.equal(failed.body.errorType, 'RangeError');
    assert.equal(failed.body.errorMessage, 'asked to fail');
    assert.ok(failed.body.trace.some((line: string) => line.includes('index.mjs')), JSON.stringify(failed.body.trace));
    assert.match(failed.log, /\tERROR\tInvoke Error \{"errorType":"RangeError"/);
    const after = await invoke(berth.url, 'esm', { n: 3 });
    assert.equal(after.functionError, null, after.raw);
  });

  test('a result that is not JSON is Runtime.MarshalError', async () => {
    const result = await invoke(berth.url, 'esm', { bigint: true });
    assert.equal(result.functionError, 'Unhandled');
    assert.equal(result.body.errorType, 'Runtime.MarshalError');
    assert.match(result.body.errorMessage, /BigInt/);
  });

  test('an uncaught exception fails its invocation, and the next one gets a new process', async () => {
    const before = await invoke(berth.url, 'esm', { n: 4 });
    const crashed = await invoke(berth.url, 'esm', { crashLater: true });
    assert.equal(crashed.functionError, 'Unhandled', crashed.raw);
    assert.equal(crashed.body.errorType, 'Error');
    assert.equal(crashed.body.errorMessage, 'thrown from a timer');
    const next = await invoke(berth.url, 'esm', { n: 5 });
    assert.equal(next.functionError, null, next.raw);
    assert.notEqual(next.body.pid, before.body.pid, 'the crashed process was replaced');
  });

  test('an async retry sees context.attempt 2 with the same request id', async () => {
    const out = path.join(dir, 'retried.json');
    const response = await fetch(`${berth.url}/2015-03-31/functions/retried/invocations`, {
      method: 'POST',
      headers: { 'x-amz-invocation-type': 'Event' },
      body: JSON.stringify({ out }),
    });
    assert.equal(response.status, 202);
    const id = response.headers.get('x-berth-invocation-id');
    const written = await waitFor(() => (existsSync(out) ? readFileSync(out, 'utf8') : undefined), { what: 'the retried event' });
    assert.deepEqual(JSON.parse(written), { attempt: 2, id });
  });
});

describe('berth bootstrap init failures are function errors with Lambda types', () => {
  const cases: [string, string, RegExp][] = [
    ['missingModule', 'Runtime.ImportModuleError', /Cannot find module 'nowhere'.*nowhere\.js, nowhere\.mjs, nowhere\.cjs/],
    ['missingExport', 'Runtime.HandlerNotFound', /index\.absent is undefined or not exported/],
    ['syntaxError', 'Runtime.UserCodeSyntaxError', /Unexpected token/],
    ['badName', 'Runtime.MalformedHandlerName', /Bad handler "index": expected file\.export/],
  ];
  for (const [fn, errorType, message] of cases) {
    test(`${fn}: ${errorType}`, async () => {
      const result = await invoke(berth.url, fn, {});
      assert.equal(result.functionError, 'Unhandled', result.raw);
      assert.equal(result.body.errorType, errorType);
      assert.match(result.body.errorMessage, message);
      const healthy = await invoke(berth.url, 'esm', { n: 6 });
      assert.equal(healthy.functionError, null, 'other functions are unaffected');
    });
  }
});

test('berth bootstrap outside a Runtime API environment says what it needs and exits 2', async () => {
  const result = await runCli(['bootstrap', 'index.handler'], { env: { AWS_LAMBDA_RUNTIME_API: undefined } });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /AWS_LAMBDA_RUNTIME_API is not set/);
  assert.match(result.stderr, /runtime: provided/);
});
