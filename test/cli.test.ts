/**
 * The `berth` command end to end: invoke, logs, ls against a running instance found
 * through the registry, the same offline, and the start / dev server lifecycle.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitForText } from './helpers/cli.js';
import { waitFor } from './helpers/lambda.js';
import { berthHome, makeProject, runCli, spawnCli, startBerth, type RunningBerth } from './helpers/project.js';

const HELLO_YML = `
functions:
  hello:
    handler: hello.handler
    events:
      - http: POST /hello
  other:
    handler: hello.handler
    isolation: warm
    events:
      - http: GET /other/{id}
`;

const HELLO = `export const handler = async (event, context) => {
  console.log('marker', event.marker ?? (event.body ? JSON.parse(event.body).marker : 'none'));
  return { greeting: 'hello ' + (event.name ?? 'world'), tenantId: context.tenantId ?? null };
};
`;

/** Lines of text that contain `needle`. */
const linesWith = (text: string, needle: string) => text.split('\n').filter((line) => line.includes(needle));

const invokeApi = (url: string, fn: string, event: unknown) =>
  fetch(`${url}/2015-03-31/functions/${fn}/invocations`, { method: 'POST', body: JSON.stringify(event) }).then(async (r) => {
    assert.equal(r.status, 200, await r.clone().text());
    return r.json();
  });

describe('against a running instance found through the registry', () => {
  let berth: RunningBerth;
  let home: string;
  /** A directory with no berth.yml, so the CLI must use the registry. */
  let elsewhere: string;
  const cli = (args: string[]) => runCli(args, { cwd: elsewhere, home });

  before(async () => {
    home = berthHome();
    elsewhere = makeProject({});
    berth = await startBerth(makeProject({ 'berth.yml': HELLO_YML, 'hello.mjs': HELLO }), { home });
  });

  after(async () => {
    assert.equal(await berth.stop(), 0);
  });

  test('berth invoke prints the result JSON on stdout and the START/REPORT log on stderr', async () => {
    const result = await cli(['invoke', 'hello', '--data', '{"name":"ada","marker":"cli-1"}']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { greeting: 'hello ada', tenantId: null });
    assert.match(result.stderr, /START RequestId: [0-9a-f-]{36} Version: \$LATEST/);
    assert.match(result.stderr, /marker cli-1/);
    assert.match(result.stderr, /REPORT RequestId: [0-9a-f-]{36}\tDuration:/);
    assert.doesNotMatch(result.stdout, /START RequestId|REPORT RequestId/);
    // It ran on the server, which recorded it as an Invoke API call.
    const id = /START RequestId: ([0-9a-f-]{36})/.exec(result.stderr)![1]!;
    const record = await waitFor(async () => {
        const response = await fetch(`${berth.url}/_berth/invocations/${id}`);
        return response.ok ? ((await response.json()) as { functionName: string; trigger: string }) : undefined;
      }, { what: 'the invocation record', timeoutMs: 2000 });
    assert.equal(record.functionName, 'hello');
    assert.equal(record.trigger, 'invoke-api');
  });

  test('berth invoke --tenant T reaches context.tenantId', async () => {
    const result = await cli(['invoke', 'hello', '--data', '{}', '--tenant', 'acme']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { greeting: 'hello world', tenantId: 'acme' });
  });

  test('invalid --data JSON exits non-zero and says --data is not valid JSON', async () => {
    const result = await cli(['invoke', 'hello', '--data', '{name: ada}']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /--data is not valid JSON/);
    assert.equal(result.stdout, '');
  });

  test('an unknown function exits non-zero with a clear message', async () => {
    const viaRegistry = await cli(['invoke', 'nope', '--data', '{}']);
    assert.notEqual(viaRegistry.code, 0);
    assert.match(viaRegistry.stderr, /"nope"/);
    assert.match(viaRegistry.stderr, /No running Berth instance serves "nope"/);

    const viaDir = await cli(['invoke', 'nope', '--data', '{}', '--dir', berth.dir]);
    assert.notEqual(viaDir.code, 0);
    assert.match(viaDir.stderr, /nope/);
    assert.match(viaDir.stderr, /Function not found/);
    assert.doesNotMatch(viaDir.stderr, /\n\s+at /, 'no stack trace');
  });

  test('berth logs <fn> --limit N prints START/END/REPORT of the last N invocations', async () => {
    for (const marker of ['limit-a', 'limit-b', 'limit-c']) await invokeApi(berth.url, 'hello', { marker });
    const result = await waitFor(async () => {
        const run = await cli(['logs', 'hello', '--limit', '2']);
        return run.stdout.includes('marker limit-c') ? run : undefined;
      }, { what: 'the last invocation in berth logs', timeoutMs: 3000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(linesWith(result.stdout, 'START RequestId:').length, 2);
    assert.equal(linesWith(result.stdout, 'END RequestId:').length, 2);
    assert.equal(linesWith(result.stdout, 'REPORT RequestId:').length, 2);
    assert.match(result.stdout, /marker limit-b[\s\S]*marker limit-c/, 'oldest first');
    assert.doesNotMatch(result.stdout, /marker limit-a/);
  });

  test('berth logs <fn> --follow prints a new invocation within a couple of seconds', async () => {
    const follow = spawnCli(['logs', 'hello', '--follow', '--limit', '1'], { cwd: elsewhere, home });
    try {
      // The newest existing entry is printed first.
      await waitForText(follow.stdout, /REPORT RequestId:/, 5000, 'berth logs --follow');
      const marker = `follow-${Date.now()}`;
      const invoked = Date.now();
      await invokeApi(berth.url, 'hello', { marker });
      const text = await waitForText(follow.stdout, new RegExp(`marker ${marker}[\\s\\S]*REPORT RequestId`), 2500, 'berth logs --follow');
      assert.ok(Date.now() - invoked < 2500);
      assert.equal(linesWith(text, `marker ${marker}`).length, 1, 'printed once');
    } finally {
      assert.equal(await follow.stop(), 0, follow.stderr());
    }
  });

  test('berth ls prints functions, isolation, routes and live environment counts', async () => {
    await fetch(`${berth.url}/other/1`);
    const result = await cli(['ls']);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.includes(`running at ${berth.url}`), result.stdout);
    assert.match(result.stdout, /FUNCTION\s+MODE\s+ISOLATION\s+DESIRED\s+BUSY\s+IDLE\s+READY\s+STARTING\s+RUNNING\s+QUEUED\s+THROTTLES\s+COLD\s+WARM\s+ROUTES/);
    const hello = /^hello\s+function\s+tenant\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s+\d+\s+(\d+)\s+(\d+)\s+POST \/hello$/m.exec(result.stdout);
    const other = /^other\s+function\s+warm\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s+\d+\s+(\d+)\s+(\d+)\s+GET \/other\/\{id\}$/m.exec(result.stdout);
    assert.ok(hello, `a row for hello:\n${result.stdout}`);
    assert.ok(other, `a row for other:\n${result.stdout}`);
    // Both have run, so each has at least one live environment (idle, ready or starting).
    const live = (row: RegExpExecArray) => row.slice(1, 5).reduce((sum, n) => sum + Number(n), 0);
    assert.ok(live(hello) >= 1, result.stdout);
    assert.ok(live(other) >= 1, result.stdout);
    // Each has run at least once: a cold or a warm start.
    const starts = (row: RegExpExecArray) => Number(row[5]) + Number(row[6]);
    assert.ok(starts(hello) >= 1 && starts(other) >= 1, result.stdout);
  });
});

describe('berth start lifecycle and offline commands', () => {
  let dir: string;
  let home: string;

  before(() => {
    dir = makeProject({ 'berth.yml': HELLO_YML, 'hello.mjs': HELLO });
    home = berthHome();
  });

  test('berth start prints one URL line and a bundling line; SIGTERM stops it with 0', async () => {
    const berth = await startBerth(dir, { home });
    let stopped = false;
    try {
      for (const marker of ['off-1', 'off-2', 'off-3']) {
        const response = await fetch(`${berth.url}/hello`, { method: 'POST', body: JSON.stringify({ marker }) });
        assert.equal(response.status, 200);
      }
      assert.equal(await berth.stop(), 0);
      stopped = true;
      const output = berth.output();
      const urlLines = linesWith(output, 'http://');
      assert.equal(urlLines.length, 1, output);
      assert.match(urlLines[0]!, /http:\/\/127\.0\.0\.1:\d+/);
      assert.ok(urlLines[0]!.includes(berth.url));
      assert.equal(linesWith(output, 'bundling').length, 1, output);
      assert.ok(output.indexOf('bundling') < output.indexOf(berth.url), 'progress comes before the URL');
    } finally {
      if (!stopped) await berth.stop();
    }
  });

  test('berth logs --dir reads the logs after the server stopped', async () => {
    const result = await runCli(['logs', 'hello', '--dir', dir, '--limit', '2'], { home });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(linesWith(result.stdout, 'START RequestId:').length, 2, result.stdout);
    assert.equal(linesWith(result.stdout, 'END RequestId:').length, 2);
    assert.equal(linesWith(result.stdout, 'REPORT RequestId:').length, 2);
    assert.match(result.stdout, /marker off-2[\s\S]*marker off-3/);
    assert.doesNotMatch(result.stdout, /marker off-1/);
  });

  test('berth invoke --dir with no running instance runs in-process', async () => {
    const result = await runCli(['invoke', 'hello', '--dir', dir, '--data', '{"name":"grace","marker":"inproc"}', '--tenant', 't1'], {
      home,
      cwd: makeProject({}),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { greeting: 'hello grace', tenantId: 't1' });
    assert.match(result.stderr, /START RequestId:[\s\S]*marker inproc[\s\S]*REPORT RequestId:/);
    // Recorded in the project's own store, like a served invocation.
    const logs = await runCli(['logs', 'hello', '--dir', dir, '--limit', '1'], { home });
    assert.match(logs.stdout, /marker inproc/);
  });

  test('berth invoke --dir of an unknown function fails with a clear message', async () => {
    const result = await runCli(['invoke', 'nope', '--dir', dir, '--data', '{}'], { home });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Function not found: nope/);
    assert.match(result.stderr, /berth ls/);
  });
});

describe('berth dev', () => {
  const handler = (version: string) => `export const handler = async (event) => {
  if (event.queryStringParameters?.slow) await new Promise((resolve) => setTimeout(resolve, 1500));
  return { version: '${version}' };
};
`;
  let berth: RunningBerth;
  let file: string;
  const version = async () => {
    const response = await fetch(`${berth.url}/version`);
    assert.equal(response.status, 200);
    return ((await response.json()) as { version: string }).version;
  };

  before(async () => {
    const dir = makeProject({
      'berth.yml': 'functions:\n  version:\n    handler: src/version.handler\n    events:\n      - http: GET /version\n',
      'src/version.mjs': handler('v1'),
    });
    file = path.join(dir, 'src', 'version.mjs');
    berth = await startBerth(dir, { command: 'dev' });
  });

  after(async () => {
    assert.equal(await berth.stop(), 0);
  });

  test('a request in flight during a reload completes with the old code', async () => {
    assert.equal(await version(), 'v1');
    let finished = false;
    const inFlight = fetch(`${berth.url}/version?slow=1`).then(async (r) => {
      finished = true;
      return { status: r.status, body: await r.text() };
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    writeFileSync(file, handler('v2'));
    await waitForText(berth.output, /reloaded after change/, 5000, 'berth dev');
    assert.equal(finished, false, 'the reload happened while the request was running');
    const done = await inFlight;
    assert.equal(done.status, 200, done.body);
    assert.deepEqual(JSON.parse(done.body), { version: 'v1' });
  });

  test('after the handler file changes, the next request returns the new value within seconds', async () => {
    const changed = Date.now();
    writeFileSync(file, handler('v3'));
    await waitFor(async () => ((await version()) === 'v3' ? true : undefined), { what: 'serving v3', timeoutMs: 5000 });
    assert.ok(Date.now() - changed < 5000);
    // And it stays on the new code.
    assert.equal(await version(), 'v3');
  });
});
