/**
 * The Lambda Invoke API, driven by the real @aws-sdk/client-lambda pointed at Berth,
 * plus raw requests for what the SDK will not send. One server for the file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetFunctionCommand, InvokeCommand, LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { rejection } from './helpers/lambda.js';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';

const BERTH_YML = `
events:
  maxPayload: 6mb
functions:
  echo:
    handler: echo.handler
    description: returns what it got
    timeout: 7
    memory: 512
  fail:
    handler: fail.handler
`;

const ECHO = `export const handler = async (event, context) => {
  console.log('echo got', JSON.stringify(event));
  return {
    event,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    tenantId: context.tenantId ?? null,
    clientContext: context.clientContext ?? null,
  };
};
`;

const FAIL = `export const handler = async () => {
  throw new RangeError('value out of range');
};
`;

let berth: RunningBerth;
let lambda: LambdaClient;

const decode = (payload: Uint8Array | undefined) => JSON.parse(Buffer.from(payload ?? []).toString('utf8')) as Record<string, any>;
const encode = (value: unknown) => Buffer.from(JSON.stringify(value));
const invokeUrl = (name: string) => `${berth.url}/2015-03-31/functions/${encodeURIComponent(name)}/invocations`;


before(async () => {
  berth = await startBerth(makeProject({ 'berth.yml': BERTH_YML, 'echo.mjs': ECHO, 'fail.mjs': FAIL }));
  lambda = new LambdaClient({
    endpoint: berth.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    maxAttempts: 1,
  });
});

after(async () => {
  lambda?.destroy();
  assert.equal(await berth.stop(), 0);
});

describe('InvokeCommand', () => {
  test('RequestResponse returns 200, $LATEST and the JSON result as Payload', async () => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'echo', Payload: encode({ hello: 'world', n: 1 }) }));
    assert.equal(out.StatusCode, 200);
    assert.equal(out.ExecutedVersion, '$LATEST');
    assert.equal(out.FunctionError, undefined);
    assert.equal(out.LogResult, undefined, 'no log unless Tail was asked for');
    assert.ok(out.Payload instanceof Uint8Array);
    const result = decode(out.Payload);
    assert.deepEqual(result.event, { hello: 'world', n: 1 });
    assert.equal(result.functionName, 'echo');
    assert.equal(out.$metadata.httpStatusCode, 200);
  });

  test('no payload is the event {}', async () => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'echo' }));
    assert.equal(out.StatusCode, 200);
    assert.deepEqual(decode(out.Payload).event, {});
  });

  test("LogType Tail returns the invocation's log, base64, START to REPORT", async () => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'echo', LogType: 'Tail', Payload: encode({ tail: true }) }));
    assert.equal(out.StatusCode, 200);
    assert.equal(typeof out.LogResult, 'string');
    const log = Buffer.from(out.LogResult!, 'base64').toString('utf8');
    const { requestId } = decode(out.Payload);
    assert.match(log, new RegExp(`START RequestId: ${requestId}`));
    assert.match(log, /echo got \{"tail":true\}/);
    assert.match(log, new RegExp(`END RequestId: ${requestId}`));
    assert.match(log, new RegExp(`REPORT RequestId: ${requestId}\\tDuration: [\\d.]+ ms`));
  });

  test('a function that throws: 200, FunctionError Unhandled, {errorType, errorMessage, trace}', async () => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'fail', LogType: 'Tail' }));
    assert.equal(out.StatusCode, 200);
    assert.equal(out.FunctionError, 'Unhandled');
    assert.equal(out.ExecutedVersion, '$LATEST');
    const error = decode(out.Payload);
    assert.equal(error.errorType, 'RangeError');
    assert.equal(error.errorMessage, 'value out of range');
    assert.ok(Array.isArray(error.trace) && error.trace.length > 0, 'trace is a non-empty list');
    assert.match(error.trace[0] as string, /RangeError: value out of range/);
    assert.match(Buffer.from(out.LogResult!, 'base64').toString('utf8'), /Invoke Error/);
  });

  test('DryRun answers 204 without running the function', async () => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'fail', InvocationType: 'DryRun' }));
    assert.equal(out.StatusCode, 204);
    assert.equal(out.FunctionError, undefined);
  });

  test('an unknown function is ResourceNotFoundException, 404', async () => {
    const err = await rejection(lambda.send(new InvokeCommand({ FunctionName: 'nope', Payload: encode({}) })));
    assert.equal(err.name, 'ResourceNotFoundException');
    assert.equal(err.$metadata.httpStatusCode, 404);
    assert.match(err.message, /Function not found: arn:aws:lambda:[^:]+:\d{12}:function:nope/);
  });

  test('a full ARN, name:$LATEST and Qualifier $LATEST all name the function', async () => {
    for (const input of [
      { FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:echo' },
      { FunctionName: 'echo:$LATEST' },
      { FunctionName: '000000000000:function:echo' },
      { FunctionName: 'echo', Qualifier: '$LATEST' },
    ]) {
      const out = await lambda.send(new InvokeCommand({ ...input, Payload: encode({ via: input.FunctionName }) }));
      assert.equal(out.StatusCode, 200, JSON.stringify(input));
      const result = decode(out.Payload);
      assert.equal(result.functionName, 'echo');
      assert.deepEqual(result.event, { via: input.FunctionName });
    }
  });

  test('an unknown qualifier is ResourceNotFoundException', async () => {
    const err = await rejection(lambda.send(new InvokeCommand({ FunctionName: 'echo:7' })));
    assert.equal(err.name, 'ResourceNotFoundException');
    assert.equal(err.$metadata.httpStatusCode, 404);
  });

  test('ClientContext (base64 JSON) reaches context.clientContext', async () => {
    const clientContext = { client: { installation_id: 'abc' }, custom: { app: 'test' }, env: { platform: 'node' } };
    const out = await lambda.send(
      new InvokeCommand({ FunctionName: 'echo', ClientContext: Buffer.from(JSON.stringify(clientContext)).toString('base64') }),
    );
    assert.equal(out.StatusCode, 200);
    assert.deepEqual(decode(out.Payload).clientContext, clientContext);
  });

  test('TenantId reaches context.tenantId', async () => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'echo', TenantId: 'acme-corp' }));
    assert.equal(out.StatusCode, 200);
    assert.equal(decode(out.Payload).tenantId, 'acme-corp');
    const untenanted = await lambda.send(new InvokeCommand({ FunctionName: 'echo' }));
    assert.equal(decode(untenanted.Payload).tenantId, null);
  });
});

describe('ListFunctions and GetFunction', () => {
  test('ListFunctionsCommand lists every function with its configuration', async () => {
    const out = await lambda.send(new ListFunctionsCommand({}));
    const byName = new Map((out.Functions ?? []).map((fn) => [fn.FunctionName, fn]));
    assert.deepEqual([...byName.keys()].sort(), ['echo', 'fail']);
    const echo = byName.get('echo')!;
    assert.equal(echo.Handler, 'echo.handler');
    assert.equal(echo.Timeout, 7);
    assert.equal(echo.MemorySize, 512);
    assert.equal(echo.Description, 'returns what it got');
    assert.equal(echo.FunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:echo');
    const fail = byName.get('fail')!;
    assert.equal(fail.Handler, 'fail.handler');
    assert.equal(fail.Timeout, 3, 'the default timeout');
    assert.equal(fail.MemorySize, 256, 'the default memory');
  });

  test('GetFunctionCommand returns the Configuration', async () => {
    const out = await lambda.send(new GetFunctionCommand({ FunctionName: 'echo' }));
    assert.equal(out.Configuration?.FunctionName, 'echo');
    assert.equal(out.Configuration?.Handler, 'echo.handler');
    assert.equal(out.Configuration?.Timeout, 7);
    assert.equal(out.Configuration?.MemorySize, 512);
    assert.equal(out.Configuration?.Version, '$LATEST');
    assert.equal(out.Configuration?.State, 'Active');
  });

  test('GetFunctionCommand of an unknown function is ResourceNotFoundException', async () => {
    const err = await rejection(lambda.send(new GetFunctionCommand({ FunctionName: 'nope' })));
    assert.equal(err.name, 'ResourceNotFoundException');
    assert.equal(err.$metadata.httpStatusCode, 404);
  });
});

describe('raw requests', () => {
  test('an invalid JSON body is 400 InvalidRequestContentException', async () => {
    const response = await fetch(invokeUrl('echo'), { method: 'POST', body: '{"not": json' });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');
    const body = (await response.json()) as { message?: string };
    assert.match(body.message ?? '', /Could not parse request body into json/);
  });

  test('a body that is not UTF-8 is 400 InvalidRequestContentException', async () => {
    const response = await fetch(invokeUrl('echo'), {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x80, 0x22, 0x7d]),
    });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');
    const body = (await response.json()) as { message?: string };
    assert.match(body.message ?? '', /UTF-8/);
  });

  test('X-Amz-Tenant-Id reaches context.tenantId', async () => {
    const response = await fetch(invokeUrl('echo'), { method: 'POST', headers: { 'X-Amz-Tenant-Id': 'tenant-7' }, body: '{}' });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { tenantId: string }).tenantId, 'tenant-7');
  });

  test('a payload over events.maxPayload (6 MB here) is 413 RequestTooLargeException', async () => {
    const big = encode({ pad: 'x'.repeat(6 * 1024 * 1024) });
    const response = await fetch(invokeUrl('echo'), { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: big });
    assert.equal(response.status, 413);
    assert.equal(response.headers.get('x-amzn-errortype'), 'RequestTooLargeException');
    const body = (await response.json()) as { message?: string };
    assert.match(body.message ?? '', /smaller than/);
  });

  test('the SDK sees an over-limit payload as RequestTooLargeException', async () => {
    const big = encode({ pad: 'x'.repeat(6 * 1024 * 1024) });
    const err = await rejection(lambda.send(new InvokeCommand({ FunctionName: 'echo', Payload: big })));
    assert.equal(err.name, 'RequestTooLargeException', `${err.name}: ${err.message}`);
    assert.equal(err.$metadata?.httpStatusCode, 413);
  });
});
