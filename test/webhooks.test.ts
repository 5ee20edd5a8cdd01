/**
 * Webhooks (`events: - webhook: /path`): a signed POST is stored and answered 202
 * at once, then runs asynchronously as an API Gateway v2 event with the function's
 * retries; a bad or missing signature is a 401 and runs nothing; configuration
 * mistakes stop `berth start` with an error naming the field.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { functionLogs, sleep, waitFor } from './helpers/lambda.js';
import { readRecords } from './helpers/records.js';
import { makeProject, runCli, startBerth, type RunningBerth } from './helpers/project.js';

// Typed loosely: the test checks the shapes, it does not trust them.
type Json = Record<string, any>;

const GITHUB_SECRET_ENV = 'BERTH_TEST_WEBHOOK_GITHUB_SECRET';
const GITHUB_SECRET = 'from-the-environment';

/** Records every attempt; sleeps DELAY_MS first, fails while context.attempt < FAIL_UNTIL. */
const HOOK = `import { appendFileSync } from 'node:fs';
export const handler = async (event, context) => {
  const startedAt = Date.now();
  if (process.env.DELAY_MS) await new Promise((resolve) => setTimeout(resolve, Number(process.env.DELAY_MS)));
  const line = { fn: context.functionName, id: context.awsRequestId, attempt: context.attempt, event, startedAt, finishedAt: Date.now() };
  appendFileSync(process.env.RECORD_FILE, JSON.stringify(line) + '\\n');
  if (context.attempt < Number(process.env.FAIL_UNTIL ?? 0)) throw new Error('failing attempt ' + context.attempt);
  return { ok: true };
};
`;

const CHALLENGE = `export const handler = async (event) => ({ statusCode: 200, body: event.queryStringParameters?.challenge ?? '' });
`;

function berthYml(recordFile: string): string {
  return `
defaults:
  environment:
    RECORD_FILE: ${JSON.stringify(recordFile)}
functions:
  dropbox:
    handler: hook.handler
    timeout: 5
    environment: { DELAY_MS: 1000 }
    events:
      - webhook: /hooks/dropbox
        secret: dropbox-secret
  dropboxChallenge:
    handler: challenge.handler
    events:
      - http: GET /hooks/dropbox
  github:
    handler: hook.handler
    events:
      - webhook: /hooks/github
        secretEnv: ${GITHUB_SECRET_ENV}
        header: X-Signature
        algorithm: sha1
  sha512:
    handler: hook.handler
    events:
      - webhook: /hooks/sha512
        secret: five-twelve
        algorithm: sha512
  open:
    handler: hook.handler
    events:
      - webhook: /hooks/open
  flaky:
    handler: hook.handler
    environment: { FAIL_UNTIL: 3 }
    async: { retries: 2, retryDelay: 0.1 }
    events:
      - webhook: /hooks/flaky
  doomed:
    handler: hook.handler
    environment: { FAIL_UNTIL: 100 }
    async: { retries: 2, retryDelay: 0.1 }
    events:
      - webhook: /hooks/doomed
`;
}

let berth: RunningBerth;
let recordFile: string;

interface Recorded {
  fn: string;
  id: string;
  attempt: number;
  event: Json;
  startedAt: number;
  finishedAt: number;
}

function recorded(): Recorded[] {
  return readRecords<Recorded>(recordFile);
}

/** Attempts whose request body contains `marker` (plain text, or base64 of binary). */
function recordsWith(marker: string): Recorded[] {
  return recorded().filter((entry) => {
    const body = String(entry.event.body ?? '');
    return body.includes(marker) || (entry.event.isBase64Encoded && Buffer.from(body, 'base64').toString('latin1').includes(marker));
  });
}

function waitForRecords(marker: string, count = 1, timeoutMs = 15_000): Promise<Recorded[]> {
  return waitFor(() => (recordsWith(marker).length >= count ? recordsWith(marker) : undefined), {
    what: `${count} run(s) of the webhook carrying "${marker}"`,
    timeoutMs,
  });
}

function hmac(algorithm: string, secret: string, body: string | Buffer): string {
  return createHmac(algorithm, secret).update(body).digest('hex');
}

interface HookResponse {
  status: number;
  body: Json;
  headers: Headers;
  ms: number;
}

async function post(hookPath: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<HookResponse> {
  const started = performance.now();
  const response = await fetch(`${berth.url}${hookPath}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: body as BodyInit,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const ms = performance.now() - started;
  let parsed: Json = {};
  try {
    parsed = JSON.parse(text) as Json;
  } catch {
    parsed = { text };
  }
  return { status: response.status, body: parsed, headers: response.headers, ms };
}

async function invocation(id: string): Promise<Json | undefined> {
  const response = await fetch(`${berth.url}/_berth/invocations/${id}`);
  return response.ok ? ((await response.json()) as Json) : undefined;
}

async function startLines(fn: string): Promise<number> {
  return (await functionLogs(berth.url, fn, 1000)).length;
}

before(async () => {
  const dir = makeProject({ 'hook.mjs': HOOK, 'challenge.mjs': CHALLENGE });
  recordFile = path.join(dir, 'records.jsonl');
  writeFileSync(path.join(dir, 'berth.yml'), berthYml(recordFile));
  berth = await startBerth(dir, { env: { [GITHUB_SECRET_ENV]: GITHUB_SECRET } });
});

after(async () => {
  assert.equal(await berth.stop(), 0);
});

describe('a correctly signed POST', () => {
  const body = '{"marker":"signed-1",  "spacing": [1, 2] , "text": "ünïcödé"}';
  const signature = `sha256=${hmac('sha256', 'dropbox-secret', body)}`;
  let response: HookResponse;
  let answeredAt: number;
  let recordedAtAnswer: number;

  before(async () => {
    // A first webhook on a fresh server warms the path (and the store) up, so the timing below measures the 202 itself.
    assert.equal((await post('/hooks/open', '{"marker":"warm-up"}')).status, 202);
    response = await post('/hooks/dropbox', body, { 'x-hub-signature-256': signature });
    answeredAt = Date.now();
    recordedAtAnswer = recordsWith('signed-1').length;
  });

  test('is answered 202 {invocationId} before the (1 s) handler finishes', () => {
    assert.equal(response.status, 202, JSON.stringify(response.body));
    assert.match(response.body.invocationId, /^[0-9a-f-]{36}$/);
    assert.equal(response.headers.get('x-berth-invocation-id'), response.body.invocationId);
    assert.ok(response.ms < 500, `answered in ${response.ms.toFixed(0)} ms, not after the handler`);
    assert.equal(recordedAtAnswer, 0, 'the handler had not finished when the 202 came');
  });

  test('the handler then gets an API Gateway v2 event with the exact body', async () => {
    const [run] = await waitForRecords('signed-1');
    const event = run!.event;
    assert.equal(run!.id, response.body.invocationId, 'awsRequestId is the invocation id the 202 named');
    assert.equal(run!.attempt, 1);
    assert.ok(run!.finishedAt - run!.startedAt >= 1000 && answeredAt < run!.finishedAt, 'the 202 came while the handler was still running');
    assert.equal(event.version, '2.0');
    assert.equal(event.routeKey, 'POST /hooks/dropbox');
    assert.equal(event.rawPath, '/hooks/dropbox');
    assert.equal(event.requestContext.http.method, 'POST');
    assert.equal(event.body, body, 'byte for byte, whitespace included');
    assert.equal(event.isBase64Encoded, false);
    assert.equal(event.headers['x-hub-signature-256'], signature);
    assert.equal(event.headers['content-type'], 'application/json');
  });

  test('it is recorded as a webhook invocation', async () => {
    const record = await waitFor(async () => {
      const found = await invocation(response.body.invocationId);
      return found?.status === 'succeeded' ? found : undefined;
    }, { what: 'the succeeded invocation record' });
    assert.equal(record.functionName, 'dropbox');
    assert.equal(record.trigger, 'webhook');
    assert.equal(record.attempts.length, 1);
  });
});

test('GET /_berth/invocations/<id> answers queued or running until the first attempt finishes', async () => {
  const body = '{"marker":"status-1"}';
  const response = await post('/hooks/dropbox', body, { 'x-hub-signature-256': `sha256=${hmac('sha256', 'dropbox-secret', body)}` });
  assert.equal(response.status, 202);
  const id = response.body.invocationId as string;
  const early = await invocation(id);
  assert.ok(early, 'the id the 202 named is known at once');
  assert.ok(['queued', 'running'].includes(early.status as string), `status ${early.status}`);
  assert.equal(early.functionName, 'dropbox');
  const running = await waitFor(async () => ((await invocation(id))?.status === 'running' ? true : undefined), { what: 'the running state' });
  assert.equal(running, true);
  const done = await waitFor(async () => {
    const found = await invocation(id);
    return found?.status === 'succeeded' ? found : undefined;
  }, { what: 'the finished invocation' });
  assert.equal(done.attempts.length, 1);
});

describe('signature formats', () => {
  test('a bare hex signature (no "sha256=") and upper-case hex are accepted', async () => {
    const body = '{"marker":"bare-hex"}';
    const bare = await post('/hooks/dropbox', body, { 'x-hub-signature-256': hmac('sha256', 'dropbox-secret', body) });
    assert.equal(bare.status, 202, JSON.stringify(bare.body));
    const upperBody = '{"marker":"upper-hex"}';
    const upper = await post('/hooks/dropbox', upperBody, { 'x-hub-signature-256': `sha256=${hmac('sha256', 'dropbox-secret', upperBody).toUpperCase()}` });
    assert.equal(upper.status, 202, JSON.stringify(upper.body));
    await waitForRecords('bare-hex');
    await waitForRecords('upper-hex');
  });

  test('secretEnv, a custom header (case-insensitive) and sha1', async () => {
    const body = '{"marker":"github-sha1"}';
    const ok = await post('/hooks/github', body, { 'X-Signature': `sha1=${hmac('sha1', GITHUB_SECRET, body)}` });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    await waitForRecords('github-sha1');

    const wrongAlgorithm = await post('/hooks/github', '{"marker":"github-sha256"}', { 'x-signature': `sha256=${hmac('sha256', GITHUB_SECRET, '{"marker":"github-sha256"}')}` });
    assert.equal(wrongAlgorithm.status, 401);
    assert.match(wrongAlgorithm.body.message, /x-signature/);
    assert.match(wrongAlgorithm.body.message, /HMAC-SHA1/);

    const defaultHeader = await post('/hooks/github', '{"marker":"github-default-header"}', { 'x-hub-signature-256': hmac('sha1', GITHUB_SECRET, '{"marker":"github-default-header"}') });
    assert.equal(defaultHeader.status, 401, 'the configured header replaces the default one');
  });

  test('sha512 over a binary body: the HMAC covers the raw bytes, and the event carries them base64-encoded', async () => {
    const bytes = Buffer.concat([Buffer.from('binary-512 '), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);
    const response = await post('/hooks/sha512', bytes, { 'content-type': 'application/octet-stream', 'x-hub-signature-256': hmac('sha512', 'five-twelve', bytes) });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    const [run] = await waitForRecords('binary-512');
    assert.equal(run!.event.isBase64Encoded, true);
    assert.deepEqual(Buffer.from(run!.event.body, 'base64'), bytes);
  });
});

describe('a bad or missing signature', () => {
  const body = '{"marker":"rejected"}';
  const cases: [string, Record<string, string>][] = [
    ['no signature header', {}],
    ['an empty signature', { 'x-hub-signature-256': '' }],
    ['the wrong secret', { 'x-hub-signature-256': `sha256=${hmac('sha256', 'not-the-secret', body)}` }],
    ['the signature of another body', { 'x-hub-signature-256': `sha256=${hmac('sha256', 'dropbox-secret', '{"marker":"other"}')}` }],
    ['a truncated signature', { 'x-hub-signature-256': `sha256=${hmac('sha256', 'dropbox-secret', body).slice(0, 32)}` }],
    ['garbage', { 'x-hub-signature-256': 'sha256=not hex at all' }],
  ];

  test('is a 401 that names the header and the algorithm, and runs nothing', async () => {
    // Logs are written behind: the baseline is taken once earlier tests' invocations have all landed.
    let logsBefore = await startLines('dropbox');
    for (let settled = false; !settled; ) {
      await sleep(500);
      const now = await startLines('dropbox');
      settled = now === logsBefore;
      logsBefore = now;
    }
    for (const [name, headers] of cases) {
      const response = await post('/hooks/dropbox', body, headers);
      assert.equal(response.status, 401, `${name}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.code, 'BERTH_ERR_WEBHOOK_SIGNATURE');
      assert.match(response.body.message, /x-hub-signature-256/, name);
      assert.match(response.body.message, /HMAC-SHA256/, name);
      assert.match(response.body.message, /Nothing was run/, name);
      assert.equal(response.headers.get('x-berth-invocation-id'), null, `${name}: no invocation id`);
    }
    // Long enough for a wrongly accepted event to have started (the handler records after 1 s).
    await sleep(1500);
    assert.equal(recordsWith('rejected').length, 0, 'the handler never ran');
    assert.equal(await startLines('dropbox'), logsBefore, 'no new invocation of the function was logged');
  });

  test('a signature header with non-ASCII bytes is a 401, not a server error', async () => {
    // node:http sends "é" as two UTF-8 bytes, which the server reads as two latin1 characters:
    // 64 characters, as long as a hex SHA-256, but 128 bytes once encoded again.
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${berth.url}/hooks/dropbox`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': 'é'.repeat(32) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end('{"marker":"non-ascii"}');
    });
    assert.equal(status, 401);
  });
});

test('a webhook without a secret accepts any POST, signed or not', async () => {
  const unsigned = await post('/hooks/open', '{"marker":"open-unsigned"}');
  const bogus = await post('/hooks/open', '{"marker":"open-bogus"}', { 'x-hub-signature-256': 'sha256=deadbeef' });
  const text = await post('/hooks/open', 'open-plain-text', { 'content-type': 'text/plain' });
  for (const response of [unsigned, bogus, text]) assert.equal(response.status, 202, JSON.stringify(response.body));
  await waitForRecords('open-unsigned');
  await waitForRecords('open-bogus');
  const [run] = await waitForRecords('open-plain-text');
  assert.equal(run!.event.body, 'open-plain-text');
});

test('only POST reaches a webhook; a GET route on the same path (e.g. Dropbox\'s challenge) is its own function', async () => {
  const challenge = await fetch(`${berth.url}/hooks/dropbox?challenge=abc123`);
  assert.equal(challenge.status, 200);
  assert.equal(await challenge.text(), 'abc123');
  const get = await fetch(`${berth.url}/hooks/open`);
  assert.equal(get.status, 404);
});

test('X-Berth-Idempotency-Key: a repeated delivery gets the first invocation id and runs once', async () => {
  const headers = { 'x-berth-idempotency-key': 'delivery-42' };
  const first = await post('/hooks/open', '{"marker":"idem-hook"}', headers);
  const second = await post('/hooks/open', '{"marker":"idem-hook"}', headers);
  assert.equal(first.status, 202);
  assert.equal(second.status, 202);
  assert.equal(second.body.invocationId, first.body.invocationId);
  await waitForRecords('idem-hook');
  await sleep(500);
  assert.equal(recordsWith('idem-hook').length, 1);
});

describe('a failing handler is retried with the function\'s async.retries', () => {
  test('same awsRequestId, context.attempt 1, 2, 3, and the third succeeds', async () => {
    const response = await post('/hooks/flaky', '{"marker":"flaky-hook"}');
    assert.equal(response.status, 202);
    const runs = await waitForRecords('flaky-hook', 3);
    assert.deepEqual(runs.map((r) => r.attempt), [1, 2, 3]);
    assert.ok(runs.every((r) => r.id === response.body.invocationId), 'every attempt keeps the invocation id');
    const record = await waitFor(async () => {
      const found = await invocation(response.body.invocationId);
      return found?.attempts?.length === 3 ? found : undefined;
    }, { what: 'three recorded attempts' });
    assert.deepEqual(record.attempts.map((a: Json) => [a.attempt, a.status]), [[1, 'failed'], [2, 'failed'], [3, 'succeeded']]);
    assert.equal(record.status, 'succeeded');
  });

  test('retries: 2 means at most three attempts', async () => {
    const response = await post('/hooks/doomed', '{"marker":"doomed-hook"}');
    assert.equal(response.status, 202);
    await waitForRecords('doomed-hook', 3);
    await sleep(800);
    assert.deepEqual(recordsWith('doomed-hook').map((r) => r.attempt), [1, 2, 3]);
    const record = await invocation(response.body.invocationId);
    assert.deepEqual(record?.attempts.map((a: Json) => a.status), ['failed', 'failed', 'failed']);
  });
});

describe('configuration errors stop berth start and name the field', () => {
  const startFails = async (yml: string) => {
    const dir = makeProject({ 'berth.yml': yml, 'hook.mjs': HOOK });
    const run = await runCli(['start', dir, '--port', '0', '--data', path.join(dir, '.berth')], { timeoutMs: 20_000 });
    assert.notEqual(run.code, 0, `berth start should have failed:\n${run.stdout}`);
    assert.doesNotMatch(run.stdout, /listening/);
    return run.stderr;
  };

  test('secretEnv naming an unset variable', async () => {
    const name = 'BERTH_TEST_SURELY_UNSET_SECRET';
    assert.equal(process.env[name], undefined);
    const stderr = await startFails(`
functions:
  hook:
    handler: hook.handler
    events:
      - webhook: /hooks/x
        secretEnv: ${name}
`);
    assert.match(stderr, /BERTH_ERR_CONFIG_INVALID/);
    assert.match(stderr, new RegExp(`berth\\.yml:\\d+:\\d+: functions\\.hook\\.events\\.0\\.secretEnv: environment variable ${name} is not set`));
  });

  test('a webhook path that clashes with an http route, in either order', async () => {
    const webhookSecond = await startFails(`
functions:
  api:
    handler: hook.handler
    events:
      - http: POST /hooks/same
  hook:
    handler: hook.handler
    events:
      - webhook: /hooks/same
`);
    assert.match(webhookSecond, /functions\.hook\.events\.0\.webhook/);
    assert.match(webhookSecond, /clashes with "POST \/hooks\/same" of function "api"/);

    const httpSecond = await startFails(`
functions:
  hook:
    handler: hook.handler
    events:
      - webhook: /hooks/same
  api:
    handler: hook.handler
    events:
      - http: ANY /hooks/same
`);
    assert.match(httpSecond, /functions\.api\.events\.0\.http/);
    assert.match(httpSecond, /clashes with "POST \/hooks\/same" of function "hook"/);
  });

  test('a webhook under Berth\'s own API paths', async () => {
    const stderr = await startFails(`
functions:
  hook:
    handler: hook.handler
    events:
      - webhook: /_berth/hooks
`);
    assert.match(stderr, /functions\.hook\.events\.0\.webhook/);
    assert.match(stderr, /reserved/);
  });
});
