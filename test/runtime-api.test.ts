/**
 * runtime: provided: a bootstrap in any language speaks Lambda's Runtime API to Berth. Tested
 * with a bash + curl bootstrap as in AWS's custom-runtime tutorial and a Python stdlib runtime
 * running a Python handler, through the Invoke API and an HTTP route; and with bootstraps that
 * misbehave: exit at once, never ask for work, answer an unknown request id, answer twice, send
 * what is not HTTP, answer too much, hang past the timeout.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from './helpers/lambda.js';
import { makeProject, repoRoot, runCli, startBerth, type RunningBerth } from './helpers/project.js';

const BASH_BOOTSTRAP = `#!/bin/bash
set -euo pipefail
echo "init for $_HANDLER"
while true; do
  HEADERS="$(mktemp)"
  EVENT_DATA=$(curl -sS -LD "$HEADERS" "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  echo "handling $REQUEST_ID"
  RESPONSE="{\\"echo\\": $EVENT_DATA, \\"handler\\": \\"$_HANDLER\\", \\"function\\": \\"$AWS_LAMBDA_FUNCTION_NAME\\"}"
  curl -sS -X POST "http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response" -d "$RESPONSE" > /dev/null
done
`;

const PYTHON_BOOTSTRAP = `#!/usr/bin/env python3
import importlib, json, os, sys, traceback, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
handler = getattr(importlib.import_module(module_name), function_name)
def post(path, body, headers={}):
    request = urllib.request.Request(api + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    return urllib.request.urlopen(request).status
while True:
    with urllib.request.urlopen(api + "/invocation/next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(response.headers["Lambda-Runtime-Deadline-Ms"])
        event = json.loads(response.read())
    try:
        result = handler(event, {"aws_request_id": request_id, "deadline_ms": deadline})
        post("/invocation/" + request_id + "/response", result)
    except Exception as error:
        print("".join(traceback.format_exception(error)), file=sys.stderr, flush=True)
        post("/invocation/" + request_id + "/error", {"errorType": type(error).__name__, "errorMessage": str(error), "stackTrace": []}, {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
`;

const PYTHON_HANDLER = `
import os, time
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("hog"):
        held = [b"x" * (50 * 1024 * 1024) for _ in range(8)]
        time.sleep(5)
        return len(held)
    body = event.get("body")
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"python": true, "got": %s}' % (body or "null")} if "rawPath" in event else {"sum": sum(event.get("numbers", [])), "id": context["aws_request_id"], "pid": os.getpid()}
`;

/**
 * Answers with its pid, or as the event asks: after waiting for 100 Continue, printing 1 MB after
 * its answer, or breaking the Runtime API with an answer for an unknown request id, two answers,
 * an HTTP request that does not parse or whose length is negative, an answer over events.maxPayload.
 */
const ROGUE_BOOTSTRAP = `#!/bin/bash
set -uo pipefail
api="http://\${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -D "$HEADERS" "$api/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  case "$EVENT" in
    *unknown*) curl -sS -X POST "$api/invocation/not-a-real-id%zz/response" -d '{}' ;;
    *twice*)
      curl -sS -X POST "$api/invocation/$ID/response" -d "{\\"pid\\": $$}" > /dev/null
      curl -sS -X POST "$api/invocation/$ID/response" -d '{"second": true}' ;;
    *garbled*)
      exec 3<>"/dev/tcp/\${AWS_LAMBDA_RUNTIME_API%:*}/\${AWS_LAMBDA_RUNTIME_API#*:}"
      printf 'THIS IS NOT HTTP\\r\\n\\r\\n' >&3
      cat <&3 ;;
    *negative*)
      exec 3<>"/dev/tcp/\${AWS_LAMBDA_RUNTIME_API%:*}/\${AWS_LAMBDA_RUNTIME_API#*:}"
      printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\\r\\nContent-Length: -100000\\r\\n\\r\\n{}{}{}' "$ID" >&3
      cat <&3 ;;
    *chatty*)
      curl -sS -X POST "$api/invocation/$ID/response" -d "{\\"pid\\": $$}" > /dev/null
      head -c 1000000 /dev/zero | tr '\\0' y
      echo ' end of chatter' ;;
    *continue*) curl -sS -H 'Expect: 100-continue' --expect100-timeout 30 -X POST "$api/invocation/$ID/response" -d "{\\"continued\\": $$}" > /dev/null ;;
    *huge*) head -c 70000 /dev/zero | tr '\\0' x | curl -sS -X POST "$api/invocation/$ID/response" --data-binary @- ;;
    *) curl -sS -X POST "$api/invocation/$ID/response" -d "{\\"pid\\": $$}" > /dev/null ;;
  esac
done
`;

const RIC_HANDLER = `
export const handler = async (event, context) => {
  if (event.fail) throw new TypeError('the handler failed on purpose');
  console.log('handling', context.awsRequestId);
  return { got: event, functionName: context.functionName, requestId: context.awsRequestId, hasTime: context.getRemainingTimeInMillis() > 0, tenant: context.tenantId ?? null };
};
`;

/** Lambda's response streaming as aws-lambda-ric offers it: awslambda.streamifyResponse and HttpResponseStream. */
const STREAMING_HANDLER = `
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  if (event.queryStringParameters?.fail) {
    responseStream.write('partial');
    throw new RangeError('failed mid-stream');
  }
  const stream = awslambda.HttpResponseStream.from(responseStream, { statusCode: 201, headers: { 'x-streamed': 'yes', 'content-type': 'text/plain' } });
  for (const part of ['one ', 'two ', 'three']) {
    stream.write(part);
    await new Promise((r) => setTimeout(r, 10));
  }
  stream.end();
});
`;

const BERTH_YML = `
events: { maxPayload: 64kb }
functions:
  bash:
    runtime: provided
    bootstrap: bash/bootstrap
    handler: function.handler
  python:
    runtime: provided
    bootstrap: python/bootstrap
    handler: function.handler
    events:
      - http: POST /py
  ric:
    runtime: provided
    bootstrap: ric/bootstrap
    handler: index.handler
  streaming:
    runtime: provided
    bootstrap: ric/bootstrap
    handler: stream.handler
    events:
      - http: GET /stream
  hog:
    runtime: provided
    bootstrap: python/bootstrap
    handler: function.handler
    memory: 128
    timeout: 10
  wrapped:
    runtime: provided
    bootstrap: wrapped/bootstrap
    handler: function.handler
    memory: 128
    timeout: 10
  quitter:
    runtime: provided
    bootstrap: quitter/bootstrap
  sleeper:
    runtime: provided
    bootstrap: sleeper/bootstrap
    timeout: 1
  rogue:
    runtime: provided
    bootstrap: rogue/bootstrap
  silent:
    runtime: provided
    bootstrap: silent/bootstrap
  garbler:
    runtime: provided
    bootstrap: garbler/bootstrap
`;

let berth: RunningBerth;

before(async () => {
  const dir = makeProject({
    'berth.yml': BERTH_YML,
    'bash/bootstrap': BASH_BOOTSTRAP,
    'python/bootstrap': PYTHON_BOOTSTRAP,
    'python/function.py': PYTHON_HANDLER,
    // The Python runtime started by a shell that does not exec it: the runtime is the bootstrap's child.
    'wrapped/bootstrap': '#!/bin/sh\npython3 runtime.py\n',
    'wrapped/runtime.py': PYTHON_BOOTSTRAP,
    'wrapped/function.py': PYTHON_HANDLER,
    // AWS's own runtime interface client from npm, running an unmodified Node handler.
    'ric/bootstrap': `#!/bin/sh\nexec node ${JSON.stringify(path.join(repoRoot, 'node_modules', 'aws-lambda-ric', 'bin', 'index.mjs'))} "$_HANDLER"\n`,
    'ric/index.mjs': RIC_HANDLER,
    'ric/stream.mjs': STREAMING_HANDLER,
    'quitter/bootstrap': '#!/bin/sh\necho "missing dependency" >&2\nexit 3\n',
    // Takes the invocation and never answers.
    'sleeper/bootstrap': '#!/bin/sh\ncurl -sS "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next" > /dev/null\nsleep 30\n',
    'rogue/bootstrap': ROGUE_BOOTSTRAP,
    // Never asks for work.
    'silent/bootstrap': '#!/bin/sh\nsleep 60\n',
    // Answers every invocation with an error body that is not JSON, and no error-type header.
    'garbler/bootstrap': `#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  ID=$(curl -sS -D - -o /dev/null "$api/invocation/next" | grep -Fi Lambda-Runtime-Aws-Request-Id | tr -d '[:space:]' | cut -d: -f2)
  curl -sS -X POST "$api/invocation/$ID/error" -d 'not json {' > /dev/null
done
`,
  });
  for (const fn of ['bash', 'python', 'wrapped', 'ric', 'quitter', 'sleeper', 'rogue', 'silent', 'garbler']) chmodSync(path.join(dir, fn, 'bootstrap'), 0o755);
  berth = await startBerth(dir);
});

after(async () => {
  await berth?.stop();
});

async function invoke(fn: string, payload: unknown) {
  const response = await fetch(`${berth.url}/2015-03-31/functions/${fn}/invocations`, { method: 'POST', body: JSON.stringify(payload), headers: { 'x-amz-log-type': 'Tail' } });
  return {
    status: response.status,
    functionError: response.headers.get('x-amz-function-error'),
    log: Buffer.from(response.headers.get('x-amz-log-result') ?? '', 'base64').toString('utf8'),
    body: (await response.json()) as any,
  };
}

describe('bootstraps in other languages', () => {
  test("a bash + curl bootstrap, as in AWS's tutorial, answers invocations with its environment", async () => {
    const first = await invoke('bash', { n: 1 });
    assert.equal(first.status, 200);
    assert.equal(first.functionError, null);
    assert.deepEqual(first.body, { echo: { n: 1 }, handler: 'function.handler', function: 'bash' });
    assert.match(first.log, /init for function\.handler/, 'init output comes with the first invocation');
    const second = await invoke('bash', { n: 2 });
    assert.deepEqual(second.body.echo, { n: 2 }, 'the same process serves the next one');
    assert.match(second.log, /handling [0-9a-f-]{36}/);
  });

  test('a Python runtime runs a Python handler, through the Invoke API and an HTTP route; its errors are function errors', async () => {
    const summed = await invoke('python', { numbers: [1, 2, 3] });
    assert.equal(summed.body.sum, 6);
    assert.match(summed.body.id, /^[0-9a-f-]{36}$/);
    const viaRoute = await fetch(`${berth.url}/py`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.equal(viaRoute.status, 200);
    assert.deepEqual(await viaRoute.json(), { python: true, got: { a: 1 } });
    const failed = await invoke('python', { fail: true });
    assert.equal(failed.functionError, 'Unhandled');
    assert.equal(failed.body.errorType, 'ValueError');
    assert.equal(failed.body.errorMessage, 'asked to fail');
    assert.match(failed.log, /ValueError: asked to fail/, 'stderr is the log');
    assert.equal((await invoke('python', { numbers: [4] })).body.sum, 4, 'the runtime goes on after an error');
  });

  test('a client that waits for 100 Continue before its body (curl with Expect) gets it at once', async () => {
    const started = performance.now();
    const answer = await invoke('rogue', { act: 'continue' });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(typeof answer.body.continued, 'number');
    assert.ok(performance.now() - started < 5_000, 'curl did not wait out its 30 s Expect timeout');
  });
});

describe("AWS's runtime interface client (aws-lambda-ric from npm)", () => {
  test('runs an unmodified Node handler: its result, context, logs and errors come through', async () => {
    const answer = await invoke('ric', { order: 7 });
    assert.equal(answer.status, 200);
    assert.equal(answer.functionError, null);
    assert.deepEqual(answer.body.got, { order: 7 });
    assert.equal(answer.body.functionName, 'ric');
    assert.match(answer.body.requestId, /^[0-9a-f-]{36}$/);
    assert.equal(answer.body.hasTime, true, 'the deadline header gives the remaining time');
    assert.match(answer.log, new RegExp(`handling ${answer.body.requestId}`));

    const failed = await invoke('ric', { fail: true });
    assert.equal(failed.functionError, 'Unhandled');
    assert.equal(failed.body.errorType, 'TypeError', 'the errorType comes from the body the client posts');
    assert.equal(failed.body.errorMessage, 'the handler failed on purpose');
    assert.equal((await invoke('ric', { order: 8 })).body.got.order, 8, 'the client goes on after an error');
  });
});

describe('response streaming mode', () => {
  test('a streamed HTTP response keeps its status, headers and body; a failure mid-stream is a function error', async () => {
    const streamed = await fetch(`${berth.url}/stream`);
    assert.equal(streamed.status, 201);
    assert.equal(streamed.headers.get('x-streamed'), 'yes');
    assert.equal(await streamed.text(), 'one two three');
    const failed = await fetch(`${berth.url}/stream?fail=1`);
    assert.equal(failed.status, 502);
    const invoked = await invoke('streaming', { queryStringParameters: { fail: '1' } });
    assert.equal(invoked.functionError, 'Unhandled');
    assert.equal(invoked.body.errorType, 'RangeError');
    assert.equal(invoked.body.errorMessage, 'failed mid-stream');
  });
});

describe('bootstraps that misbehave get clear errors', () => {
  /** The pid the rogue bootstrap answers with, and whether that process still lives. */
  const rogueProcess = async () => {
    const answer = await invoke('rogue', {});
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.pid as number;
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  test('one that goes over its memory is stopped: Runtime.OutOfMemory', async () => {
    const answer = await invoke('hog', { hog: true });
    assert.equal(answer.functionError, 'Unhandled');
    assert.equal(answer.body.errorType, 'Runtime.OutOfMemory');
    assert.match(answer.body.errorMessage, /memory limit of 128 MB exceeded/);
  });

  test("a runtime the bootstrap started without exec counts toward its memory, and goes with it", async () => {
    const runtimePid = (await invoke('wrapped', { numbers: [1, 2] })).body.pid as number;
    const answer = await invoke('wrapped', { hog: true });
    assert.equal(answer.body.errorType, 'Runtime.OutOfMemory', JSON.stringify(answer.body));
    await waitFor(() => !alive(runtimePid) || undefined, { what: `the runtime (pid ${runtimePid}) to be killed with its bootstrap` });
  });

  test('one that exits at once is Runtime.ExitError', async () => {
    const answer = await invoke('quitter', {});
    assert.equal(answer.functionError, 'Unhandled');
    assert.equal(answer.body.errorType, 'Runtime.ExitError');
    assert.match(answer.body.errorMessage, /exit status 3/);
  });

  test('one that never asks for work fails its init after 10 s: Runtime.InitTimeout', { timeout: 30_000 }, async () => {
    const answer = await invoke('silent', {});
    assert.equal(answer.functionError, 'Unhandled');
    assert.equal(answer.body.errorType, 'Runtime.InitTimeout');
  });

  test('an error body that is not JSON is still a clear function error', async () => {
    const answer = await invoke('garbler', {});
    assert.equal(answer.functionError, 'Unhandled');
    assert.equal(answer.body.errorType, 'Runtime.Unknown');
    assert.equal(answer.body.errorMessage, 'not json {');
  });

  test('one that never answers times out, and the next invocation gets a new process', async () => {
    const answer = await invoke('sleeper', {});
    assert.equal(answer.body.errorType, 'Sandbox.Timedout');
    assert.match(answer.body.errorMessage, /Task timed out after 1\.00 seconds/);
    const again = await invoke('sleeper', {});
    assert.equal(again.body.errorType, 'Sandbox.Timedout', 'a fresh environment, timed out in turn');
  });

  test('an answer for an unknown request id fails the invocation with InvalidRequestID, and the environment is replaced', async () => {
    const before = await rogueProcess();
    const answer = await invoke('rogue', { act: 'unknown' });
    assert.equal(answer.functionError, 'Unhandled');
    assert.equal(answer.body.errorType, 'InvalidRequestID');
    assert.match(answer.body.errorMessage, /the bootstrap answered "not-a-real-id%zz", but the invocation in progress is \S+/);
    await waitFor(() => !alive(before) || undefined, { what: 'the broken bootstrap to be gone' });
    assert.notEqual(await rogueProcess(), before, 'a new environment answers');
  });

  test('a second answer: the first counts, the environment is replaced and Berth says why', async () => {
    const before = await rogueProcess();
    const answer = await invoke('rogue', { act: 'twice' });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { pid: before }, 'the first answer is the result');
    await waitFor(() => !alive(before) || undefined, { what: 'the broken bootstrap to be gone' });
    assert.match(berth.output(), /function rogue: environment \w+ replaced, its bootstrap broke the Runtime API: InvalidStateTransition: State transition from InvocationResponse to InvocationResponse failed/);
    assert.notEqual(await rogueProcess(), before, 'a new environment answers');
  });

  for (const [act, problem] of [
    ['garbled', /does not parse \(HPE_INVALID_CONSTANT\)/],
    ['negative', /does not parse \(invalid Content-Length "-100000"\)/],
  ] as const) {
    test(`a request that does not parse as HTTP (${act}) fails the invocation with Runtime.MalformedRequest, and the environment is replaced`, async () => {
      const before = await rogueProcess();
      const answer = await invoke('rogue', { act });
      assert.equal(answer.functionError, 'Unhandled');
      assert.equal(answer.body.errorType, 'Runtime.MalformedRequest');
      assert.match(answer.body.errorMessage, problem);
      await waitFor(() => !alive(before) || undefined, { what: 'the broken bootstrap to be gone' });
      assert.notEqual(await rogueProcess(), before, 'a new environment answers');
    });
  }

  test('output between invocations is kept up to its last 256 KiB, for the next invocation', async () => {
    await invoke('rogue', { act: 'chatty' });
    const next = await invoke('rogue', {});
    assert.match(next.log, /y end of chatter/);
    assert.ok(next.log.length < 300 * 1024, `the next log holds ${next.log.length} characters`);
  });

  test('an answer larger than events.maxPayload fails its invocation with Function.ResponseSizeTooLarge; the environment goes on', async () => {
    const before = await rogueProcess();
    const answer = await invoke('rogue', { act: 'huge' });
    assert.equal(answer.functionError, 'Unhandled');
    assert.equal(answer.body.errorType, 'Function.ResponseSizeTooLarge');
    assert.match(answer.body.errorMessage, /Response payload size \(70000 bytes\) exceeded maximum allowed payload size \(65536 bytes, events\.maxPayload in berth\.yml\)/);
    // curl prints the 413 once it has it, after the invocation ended: output between invocations goes with the next one.
    const next = await invoke('rogue', {});
    assert.deepEqual(next.body, { pid: before }, 'the same environment answers the next invocation');
    assert.match(next.log, /"errorType":"RequestEntityTooLarge"/, "the bootstrap heard Lambda's 413");
  });
});

describe('provided runtimes that cannot work stop berth start and name the field', () => {
  const startFails = async (yml: string, files: Record<string, string> = {}) => {
    const dir = makeProject({ 'berth.yml': yml, ...files });
    const run = await runCli(['start', dir, '--port', '0', '--data', path.join(dir, '.berth')], { timeoutMs: 20_000 });
    assert.notEqual(run.code, 0);
    return run.stderr;
  };

  test('no bootstrap, a bootstrap that is not executable, and a provided service', async () => {
    assert.match(await startFails('functions:\n  f:\n    runtime: provided\n'), /functions\.f\.bootstrap: runtime: provided needs bootstrap/);
    assert.match(await startFails('functions:\n  f:\n    runtime: provided\n    bootstrap: boot\n', { boot: '#!/bin/sh\n' }), /functions\.f\.bootstrap: boot is not an executable file/);
    assert.match(
      await startFails('functions:\n  f:\n    runtime: provided\n    bootstrap: missing\n    mode: service\n'),
      /functions\.f\.mode: mode: service needs the Node runtime/,
    );
  });
});
