/**
 * Flows through the real server and CLI: steps that call functions, customer code and HTTP,
 * data passed along and addressed by step id, forEach with a concurrency limit, conditions,
 * retries, failures, large results, resumption after kill -9, and isolation between tenants.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { storedLogOf, waitFor } from './helpers/lambda.js';
import { berthHome, makeProject, runCli, startBerth, type RunningBerth } from './helpers/project.js';
import { readRecords, waitForRecords } from './helpers/records.js';

interface RunView {
  id: string;
  status: string;
  tenant: string | null;
  output: any;
  error: { step: string; errorType: string; errorMessage: string } | null;
  steps: { step: string; status: string; attempts: number; input: any; output: any; error: any; invocationId: string | null; logs: string | null; startedAt: number; finishedAt: number | null }[];
}

async function runFlow(url: string, flow: string, input: unknown, tenant?: string): Promise<RunView> {
  const response = await fetch(`${url}/_berth/flows/${flow}/runs?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input, ...(tenant !== undefined ? { tenant } : {}) }),
  });
  const body = (await response.json()) as RunView;
  assert.equal(response.status, 200, JSON.stringify(body));
  return body;
}

async function getRun(url: string, id: string): Promise<RunView> {
  return (await (await fetch(`${url}/_berth/flow-runs/${id}`)).json()) as RunView;
}

const stepOf = (run: RunView, step: string) => {
  const found = run.steps.find((s) => s.step === step);
  assert.ok(found, `no step ${step} in ${JSON.stringify(run.steps.map((s) => s.step))}`);
  return found;
};

/** Appends each call to RECORDS; fails while `failUntil` > attempt; waits for `until` (a file) if given. */
const STEP_CODE = `
import { appendFileSync, existsSync } from 'node:fs';
export const handler = async (event, context) => {
  const flow = context.clientContext?.flow;
  appendFileSync(process.env.RECORDS, JSON.stringify({ step: flow?.step, id: context.awsRequestId, attempt: context.attempt, event }) + '\\n');
  if (event?.until) while (!existsSync(event.until)) await new Promise((r) => setTimeout(r, 20));
  if (event?.failUntil && context.attempt < event.failUntil) throw new Error('not yet, attempt ' + context.attempt);
  if (event?.big) return 'x'.repeat(event.big);
  return { ...event, seen: (event?.seen ?? 0) + 1 };
};
`;

/** A project whose handlers all append to <dir>/records.jsonl: code steps live in different folders, so the path is absolute. */
function projectWithRecords(files: Record<string, string>): string {
  const dir = makeProject(files);
  const yml = path.join(dir, 'berth.yml');
  writeFileSync(yml, `defaults:\n  environment: { RECORDS: ${JSON.stringify(path.join(dir, 'records.jsonl'))} }\n${readFileSync(yml, 'utf8')}`);
  return dir;
}

describe('a flow of function, code, http and forEach steps', () => {
  const BERTH_YML = `
functions:
  enrich:
    handler: fns.enrich
    isolation: warm
flows:
  pipeline:
    tenant: "{% input.customer %}"
    steps:
      - id: list
        http: { url: "{% input.api & '/files' %}" }
      - id: files
        forEach: "steps.list.body.files"
        concurrency: 2
        steps:
          - id: fetch
            http: { url: "{% input.api & '/files/' & item %}" }
          - id: transform
            code: customer/transform.mjs
            input: "{% { 'name': item, 'text': steps.fetch.body } %}"
      - id: post
        http:
          method: POST
          url: "{% input.api & '/results' %}"
          headers: { authorization: Bearer test-token }
        input: "{% { 'customer': tenant, 'results': steps.files } %}"
      - id: enrich
        function: enrich
      - id: never
        if: "$count(steps.files) > 10"
        function: enrich
  retrying:
    steps:
      - id: flaky
        code: customer/step.mjs
        retries: 2
        retryDelay: 50ms
  failing:
    alerts: { webhook: "API_URL/alerts", retries: 3 }
    steps:
      - id: first
        code: customer/step.mjs
      - id: broken
        code: customer/step.mjs
        input: { failUntil: 99 }
        retries: 1
        retryDelay: 10ms
      - id: after
        code: customer/step.mjs
  big:
    steps:
      - id: produce
        code: customer/step.mjs
        input: { big: 3000000 }
      - id: measure
        code: customer/measure.mjs
`;
  let berth: RunningBerth;
  let api: Server;
  let apiUrl: string;
  let dir: string;
  const posted: { headers: Record<string, unknown>; body: any }[] = [];
  const alerts: { at: number; body: any }[] = [];
  let concurrentFetches = 0;
  let peakFetches = 0;

  before(async () => {
    api = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (req.url === '/files') {
          res.setHeader('content-type', 'application/json');
          return res.end(JSON.stringify({ files: ['a.xml', 'b.xml', 'c.xml', 'd.xml', 'e.xml'] }));
        }
        if (req.url?.startsWith('/files/')) {
          concurrentFetches++;
          peakFetches = Math.max(peakFetches, concurrentFetches);
          setTimeout(() => {
            concurrentFetches--;
            res.setHeader('content-type', 'application/xml');
            res.end(`<file name="${req.url!.slice(7)}"/>`);
          }, 30);
          return;
        }
        if (req.url === '/alerts' && req.method === 'POST') {
          alerts.push({ at: Date.now(), body: JSON.parse(body) });
          // The first delivery fails: the alert must be retried.
          res.statusCode = alerts.length === 1 ? 503 : 200;
          return res.end();
        }
        if (req.url === '/results' && req.method === 'POST') {
          posted.push({ headers: req.headers, body: JSON.parse(body) });
          res.setHeader('content-type', 'application/json');
          return res.end(JSON.stringify({ accepted: true }));
        }
        res.statusCode = 404;
        res.end('no such thing');
      });
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    dir = projectWithRecords({
      'berth.yml': BERTH_YML.replace('API_URL', apiUrl),
      'fns.mjs': 'export const enrich = async (e) => ({ ...e, enriched: true });\n',
      'customer/transform.mjs': 'export const handler = async (e) => ({ name: e.name, length: e.text.length, upper: e.text.toUpperCase() });\n',
      'customer/step.mjs': STEP_CODE,
      'customer/measure.mjs': "export const handler = async (e) => ({ length: e.length, allX: /^x+$/.test(e) });\n",
    });
    berth = await startBerth(dir);
  });

  after(async () => {
    await berth?.stop();
    api?.close();
  });

  test('data flows from step to step, forEach runs items within its concurrency, and history keeps every step', async () => {
    const run = await runFlow(berth.url, 'pipeline', { api: apiUrl, customer: 'acme' });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.tenant, 'acme', 'the flow-level tenant comes from the input');
    assert.deepEqual(run.output, { status: 200, headers: run.output.headers, body: { accepted: true }, enriched: true });

    assert.equal(posted.length, 1);
    assert.equal(posted[0]!.headers.authorization, 'Bearer test-token');
    assert.equal(posted[0]!.body.customer, 'acme');
    assert.deepEqual(
      posted[0]!.body.results.map((r: any) => r.name),
      ['a.xml', 'b.xml', 'c.xml', 'd.xml', 'e.xml'],
      'forEach gives its per-item results in item order',
    );
    assert.equal(posted[0]!.body.results[0].upper, '<FILE NAME="A.XML"/>');
    assert.ok(peakFetches <= 2, `concurrency 2, ${peakFetches} fetches at once`);
    assert.equal(peakFetches, 2, 'items ran side by side');

    for (const step of ['list', 'files', 'files[0].fetch', 'files[4].transform', 'post', 'enrich']) {
      const s = stepOf(run, step);
      assert.equal(s.status, 'succeeded', step);
      assert.equal(s.attempts, 1);
      assert.ok(s.finishedAt! >= s.startedAt);
    }
    assert.deepEqual(stepOf(run, 'files[1].transform').input, { name: 'b.xml', text: '<file name="b.xml"/>' }, 'each step keeps its input');
    assert.match(stepOf(run, 'files[1].transform').logs ?? '', /REPORT RequestId/, "the answer to ?wait=true carries each step's logs");
    assert.equal(stepOf(run, 'list').logs, null, 'an http step runs no code and has no logs');
    assert.deepEqual(
      run.steps.filter((s) => !s.step.startsWith('files[')).map((s) => s.step),
      ['list', 'files', 'post', 'enrich', 'never'],
      'steps are listed in the order they started',
    );
    assert.equal(stepOf(run, 'never').status, 'skipped');
    // Each step starts only after the previous one's result is recorded.
    assert.ok(stepOf(run, 'post').startedAt >= stepOf(run, 'files').finishedAt!);
  });

  test('berth flow run, runs and show', async () => {
    const home = berthHome();
    const ran = await runCli(['flow', 'run', 'pipeline', '--url', berth.url, '--data', JSON.stringify({ api: apiUrl, customer: 'globex' })], { home });
    assert.equal(ran.code, 0, ran.stderr);
    const id = /^run (\S+) of pipeline: succeeded in \d+ ms \(tenant globex\), trigger api$/m.exec(ran.stdout)?.[1];
    assert.ok(id, ran.stdout);
    assert.match(ran.stdout, /^files\[3\]\.transform\s+succeeded\s+1\s+\d+\s+\d+\s+-$/m);

    const runs = await runCli(['flow', 'runs', 'pipeline', '--url', berth.url], { home });
    assert.equal(runs.code, 0, runs.stderr);
    assert.match(runs.stdout, new RegExp(`^${id}\\s+succeeded\\s+globex\\s+api\\s`, 'm'));

    const shown = await runCli(['flow', 'show', id, '--url', berth.url], { home });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^enrich\s+succeeded\s+1\s/m);
    assert.match(shown.stdout, /^never\s+skipped\s+0\s/m);

    const unknown = await runCli(['flow', 'run', 'nope', '--url', berth.url], { home });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Flow not found: nope/);
  });

  test('a step is retried with backoff under the same step id, and its attempts are kept', async () => {
    const run = await runFlow(berth.url, 'retrying', { failUntil: 3 });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const flaky = stepOf(run, 'flaky');
    assert.equal(flaky.attempts, 3);
    const calls = readRecords(path.join(dir, 'records.jsonl')).filter((r) => r.id === flaky.invocationId);
    assert.deepEqual(calls.map((c) => c.attempt), [1, 2, 3], 'context.attempt counts up; awsRequestId stays the step id');
  });

  test('a step that keeps failing fails the run, names the step, and nothing after it runs', async () => {
    const run = await runFlow(berth.url, 'failing', {});
    assert.equal(run.status, 'failed');
    assert.equal(run.error!.step, 'broken');
    assert.equal(run.error!.errorType, 'Error');
    assert.match(run.error!.errorMessage, /not yet, attempt 2/);
    assert.equal(stepOf(run, 'broken').attempts, 2, 'retries: 1 means two attempts');
    assert.equal(run.steps.some((s) => s.step === 'after'), false);

    // The alert goes to the webhook off the run's path, and is retried when the webhook fails.
    const delivered = await waitFor(() => (alerts.length >= 2 ? alerts : undefined), { what: 'the alert, delivered a second time after a 503', timeoutMs: 10_000 });
    const alert = JSON.parse(delivered[1]!.body.Message);
    assert.equal(delivered[1]!.body.Subject, 'Flow failing failed at step broken');
    assert.equal(alert.type, 'berth.flow.run.failed');
    assert.equal(alert.runId, run.id);
    assert.deepEqual(alert.error, run.error);
    assert.equal(delivered[0]!.body.MessageId, delivered[1]!.body.MessageId, 'the same alert, retried');
  });

  test('a multi-MB result goes to the blob store and reaches the next step intact', async () => {
    const run = await runFlow(berth.url, 'big', {});
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(run.output, { length: 3_000_000, allX: true });
    const produced = stepOf(run, 'produce').output;
    assert.ok(produced.blob && produced.bytes > 3_000_000, `shown as a reference: ${JSON.stringify(produced).slice(0, 100)}`);
  });

  test('a run started without waiting is recorded at once and can be followed', async () => {
    const response = await fetch(`${berth.url}/_berth/flows/retrying/runs`, { method: 'POST', body: JSON.stringify({ input: {} }), headers: { 'content-type': 'application/json' } });
    assert.equal(response.status, 202);
    const { runId } = (await response.json()) as { runId: string };
    const done = await waitFor(async () => {
      const run = await getRun(berth.url, runId);
      return run.status !== 'running' ? run : undefined;
    }, { what: 'the run to finish' });
    assert.equal(done.status, 'succeeded');
  });
});

describe('a run interrupted by kill -9 resumes after the restart', () => {
  const BERTH_YML = `
flows:
  long:
    steps:
      - id: one
        code: step.mjs
      - id: two
        code: step.mjs
        input: "{% { 'until': input.release, 'from': steps.one.seen } %}"
      - id: three
        code: step.mjs
`;

  test('completed steps never run again; the running step is retried with the same step id', { timeout: 60_000 }, async () => {
    const dir = projectWithRecords({ 'berth.yml': BERTH_YML, 'step.mjs': STEP_CODE });
    const records = path.join(dir, 'records.jsonl');
    const until = path.join(dir, 'release');
    const first = await startBerth(dir);
    let runId: string;
    try {
      const response = await fetch(`${first.url}/_berth/flows/long/runs`, { method: 'POST', body: JSON.stringify({ input: { release: until } }), headers: { 'content-type': 'application/json' } });
      ({ runId } = (await response.json()) as { runId: string });
      await waitForRecords(records, 2, { what: 'step two to be running' });
    } finally {
      first.process.kill('SIGKILL');
      await new Promise((resolve) => first.process.once('exit', resolve));
    }
    writeFileSync(until, 'go');

    const second = await startBerth(dir);
    try {
      const run = await waitFor(async () => {
        const found = await getRun(second.url, runId);
        return found.status !== 'running' ? found : undefined;
      }, { what: 'the resumed run to finish', timeoutMs: 20_000 });
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      const calls = readRecords(records);
      assert.deepEqual(calls.map((c) => c.step), ['one', 'two', 'two', 'three'], 'one ran once, two twice (interrupted, then retried), three once');
      const [interrupted, retried] = calls.filter((c) => c.step === 'two');
      assert.equal(retried!.id, interrupted!.id, 'the retry has the same step id');
      assert.equal(retried!.attempt, 2);
      assert.deepEqual(run.output, { until, from: 1, seen: 2 }, 'the resumed steps got the recorded outputs');
      assert.ok(existsSync(until));
    } finally {
      await second.stop();
    }
  });
});

describe('a run stopped during a retry backoff', () => {
  const BERTH_YML = `
flows:
  patient:
    steps:
      - id: flaky
        code: step.mjs
        retries: 3
        retryDelay: 20s
`;

  test('Berth stops at once, and the run resumes at the next start with its retry count kept', { timeout: 60_000 }, async () => {
    const dir = projectWithRecords({ 'berth.yml': BERTH_YML, 'step.mjs': STEP_CODE });
    const records = path.join(dir, 'records.jsonl');
    const first = await startBerth(dir);
    let runId: string;
    try {
      const response = await fetch(`${first.url}/_berth/flows/patient/runs`, { method: 'POST', body: JSON.stringify({ input: { failUntil: 2 } }), headers: { 'content-type': 'application/json' } });
      ({ runId } = (await response.json()) as { runId: string });
      await waitForRecords(records, 1, { what: 'the first, failing attempt' });
      await waitFor(async () => (await getRun(first.url, runId)).steps[0]?.error !== null || undefined, { what: 'the failure to be recorded' });
    } catch (err) {
      first.process.kill('SIGKILL');
      throw err;
    }
    const stopping = Date.now();
    assert.equal(await first.stop(), 0);
    assert.ok(Date.now() - stopping < 10_000, `stopped in ${Date.now() - stopping} ms, not after the 20 s backoff`);

    const second = await startBerth(dir);
    try {
      const run = await waitFor(async () => {
        const found = await getRun(second.url, runId);
        return found.status !== 'running' ? found : undefined;
      }, { what: 'the resumed run to finish' });
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      assert.equal(stepOf(run, 'flaky').attempts, 2);
      assert.deepEqual(readRecords(records).map((r) => r.attempt), [1, 2], 'attempt 2 ran after the restart, once');
    } finally {
      await second.stop();
    }
  });
});

describe('customer code of two tenants is isolated', () => {
  const BERTH_YML = `
flows:
  custom:
    steps:
      - id: run
        code: customer.mjs
`;
  const CUSTOMER = `
export const handler = async (event) => {
  const seen = { xhr: typeof globalThis.XMLHttpRequest, marker: globalThis.marker ?? null, env: process.env.TENANT_MARK ?? null };
  if (event.tamper) {
    globalThis.XMLHttpRequest = null;
    globalThis.marker = event.tamper;
    process.env.TENANT_MARK = event.tamper;
    console.log = () => {};
  }
  console.log('printed by', event.who);
  return seen;
};
`;
  let berth: RunningBerth;

  before(async () => {
    berth = await startBerth(makeProject({ 'berth.yml': BERTH_YML, 'customer.mjs': CUSTOMER }));
  });
  after(async () => {
    await berth?.stop();
  });

  test("one tenant's globals, environment and console never reach another's runs", async () => {
    const a1 = await runFlow(berth.url, 'custom', { tamper: 'from-a', who: 'a' }, 'tenant-a');
    assert.equal(a1.status, 'succeeded');
    const a2 = await runFlow(berth.url, 'custom', { who: 'a' }, 'tenant-a');
    assert.deepEqual(a2.output, { xhr: 'object', marker: 'from-a', env: 'from-a' }, "a's own later run sees what it did (same warm environment)");
    const b = await runFlow(berth.url, 'custom', { who: 'b' }, 'tenant-b');
    assert.deepEqual(b.output, { xhr: 'undefined', marker: null, env: null }, "b sees none of a's changes");
    // Logs are written behind the result.
    const bLog = await storedLogOf(berth.url, 'flow.custom.run', stepOf(b, 'run').invocationId!);
    assert.match(bLog.text, /printed by b/, "b's console.log works");
  });
});

describe('flows that cannot work stop berth start and name the field', () => {
  const startFails = async (flows: string) => {
    const dir = makeProject({
      'berth.yml': `functions:\n  known:\n    handler: h.handler\nflows:\n${flows}`,
      'h.mjs': 'export const handler = async () => ({});\n',
    });
    const run = await runCli(['start', dir, '--port', '0', '--data', path.join(dir, '.berth')], { timeoutMs: 20_000 });
    assert.notEqual(run.code, 0, `berth start should have failed:\n${run.stdout}`);
    return run.stderr;
  };
  const cases: [string, string, RegExp][] = [
    ['an unknown function', '  f:\n    steps:\n      - id: a\n        function: ghost\n', /flows\.f\.steps\.0\.function: unknown function "ghost"/],
    ['a missing code module', '  f:\n    steps:\n      - id: a\n        code: nowhere.mjs\n', /flows\.f\.steps\.0\.code: module not found: nowhere\.mjs/],
    ['an expression that does not parse', '  f:\n    steps:\n      - id: a\n        function: known\n        if: "input.x >"\n', /flows\.f\.steps\.0\.if: expression "input\.x >" does not parse/],
    ['a template that does not parse', '  f:\n    steps:\n      - id: a\n        http: { url: "{% input.( %}" }\n', /flows\.f\.steps\.0\.http: expression " input\.\( " does not parse/],
    ['two steps with one id', '  f:\n    steps:\n      - id: a\n        function: known\n      - id: a\n        function: known\n', /flows\.f\.steps\.1\.id: step id "a" is used twice/],
    ['a step doing two things', '  f:\n    steps:\n      - id: a\n        function: known\n        code: h.mjs\n', /flows\.f\.steps\.0: a step does exactly one thing: give it one of function, code, http, forEach \(it has function and code\)/],
    ['a forEach without steps', '  f:\n    steps:\n      - id: a\n        forEach: input.items\n', /flows\.f\.steps\.0\.steps: a forEach step runs nested steps for each item/],
    [
      'a reference to a step that does not run before',
      '  f:\n    steps:\n      - id: a\n        function: known\n        input: "{% steps.b %}"\n      - id: b\n        function: known\n        if: "steps.ghost.ok"\n',
      /flows\.f\.steps\.0: step "a" refers to steps\.b, but no step "b" runs before it; use the id of an earlier step[\s\S]*flows\.f\.steps\.1: step "b" refers to steps\.ghost/,
    ],
  ];
  for (const [what, flows, expected] of cases) {
    test(what, async () => {
      assert.match(await startFails(flows), expected);
    });
  }
});

describe('secrets in flows', () => {
  const KEY = 'a'.repeat(64);
  const TOKEN = 'tok-8f3b2c1d9e7a';
  const BERTH_YML = `
flows:
  sync:
    tenant: acme
    steps:
      - id: call
        http:
          url: "{% input.api %}"
          headers: { authorization: "{% 'Bearer ' & secrets.API_TOKEN %}" }
        secrets: [API_TOKEN]
      - id: leak
        code: leaky.mjs
        secrets: [API_TOKEN]
  perCustomer:
    tenant: "{% input.customer %}"
    steps:
      - id: use
        code: leaky.mjs
        secrets: [API_TOKEN]
  carried:
    tenant: acme
    steps:
      - id: items
        forEach: "[1, 2]"
        steps:
          - id: call
            http:
              url: "{% input.api %}"
              headers: { authorization: "{% 'Bearer ' & secrets.API_TOKEN %}" }
            secrets: [API_TOKEN]
      - id: after
        code: logger.mjs
`;
  const LEAKY = `
export const handler = async (event, context) => {
  console.log('the token is', context.secrets.API_TOKEN);
  return { token: context.secrets.API_TOKEN, keys: Object.keys(context) .includes('secrets') };
};
`;
  let api: Server;
  let apiUrl: string;
  const seen: string[] = [];

  before(async () => {
    api = createServer((req, res) => {
      seen.push(String(req.headers.authorization));
      res.setHeader('content-type', 'application/json');
      // Echoes the credentials, as some APIs do: they must not reach the history either.
      res.end(JSON.stringify({ ok: true, echoed: req.headers.authorization }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  });
  after(() => api?.close());

  const project = () =>
    makeProject({ 'berth.yml': BERTH_YML, 'leaky.mjs': LEAKY, 'logger.mjs': "export const handler = async (event) => { console.log('got', JSON.stringify(event)); return event; };\n" });
  const setSecret = async (dir: string, tenant: string) => {
    const set = await runCli(['secrets', 'set', tenant, 'API_TOKEN', TOKEN, '--dir', dir], { env: { BERTH_MASTER_KEY: KEY } });
    assert.equal(set.code, 0, set.stderr);
  };

  test('steps get the secrets they declare; the history and the logs never show them', async () => {
    const dir = project();
    await setSecret(dir, 'acme');
    const berth = await startBerth(dir, { env: { BERTH_MASTER_KEY: KEY } });
    try {
      const run = await runFlow(berth.url, 'sync', { api: apiUrl });
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      assert.deepEqual(seen.splice(0), [`Bearer ${TOKEN}`], 'the http step sent the secret');
      assert.deepEqual(stepOf(run, 'leak').output, { token: '***', keys: false }, 'the code step had it; the history has it redacted');
      assert.deepEqual(run.output, { token: '***', keys: false });
      const log = await storedLogOf(berth.url, 'flow.sync.leak', stepOf(run, 'leak').invocationId!);
      assert.match(log.text, /the token is \*\*\*/);
      assert.doesNotMatch(log.text, new RegExp(TOKEN));
      const shown = await (await fetch(`${berth.url}/_berth/flow-runs/${run.id}`)).text();
      assert.doesNotMatch(shown, new RegExp(TOKEN));

      // A secret an API echoed travels on through outputs into later steps, which declared no secret.
      const carried = await runFlow(berth.url, 'carried', { api: apiUrl });
      assert.equal(carried.status, 'succeeded', JSON.stringify(carried.error));
      assert.equal(seen.length, 2, 'both items called with the token');
      assert.equal(carried.output[0].body.echoed, 'Bearer ***');
      const carriedLog = await storedLogOf(berth.url, 'flow.carried.after', stepOf(carried, 'after').invocationId!);
      assert.match(carriedLog.text, /Bearer \*\*\*/);
      assert.doesNotMatch(carriedLog.text, new RegExp(TOKEN));
      assert.doesNotMatch(await (await fetch(`${berth.url}/_berth/flow-runs/${carried.id}`)).text(), new RegExp(TOKEN));
    } finally {
      await berth.stop();
    }
  });

  test("a tenant taken from the input gets its own secrets; one without them fails its step, naming the secret", async () => {
    const dir = project();
    await setSecret(dir, 'acme');
    await setSecret(dir, 'globex');
    const berth = await startBerth(dir, { env: { BERTH_MASTER_KEY: KEY } });
    try {
      assert.equal((await runFlow(berth.url, 'perCustomer', { customer: 'globex' })).status, 'succeeded');
      const missing = await runFlow(berth.url, 'perCustomer', { customer: 'initech' });
      assert.equal(missing.status, 'failed');
      assert.equal(missing.error!.errorType, 'Berth.SecretError');
      assert.match(missing.error!.errorMessage, /API_TOKEN/);
      assert.match(missing.error!.errorMessage, /initech/);
    } finally {
      await berth.stop();
    }
  });

  test('a fixed tenant without a declared secret stops berth start, naming it and how to set it', async () => {
    const dir = project();
    const run = await runCli(['start', dir, '--port', '0', '--data', path.join(dir, '.berth')], { env: { BERTH_MASTER_KEY: KEY }, timeoutMs: 20_000 });
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /flows\.sync: tenant "acme" has no secret "API_TOKEN"; set it with `berth secrets set acme API_TOKEN`/);
  });

  test('without a master key, runs of flows that need secrets are refused with how to set one', async () => {
    const dir = project();
    await setSecret(dir, 'acme');
    const berth = await startBerth(dir, { env: { BERTH_MASTER_KEY: '' } });
    try {
      const response = await fetch(`${berth.url}/_berth/flows/sync/runs?wait=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { api: apiUrl } }) });
      const body = (await response.json()) as { code: string; message: string };
      assert.equal(body.code, 'BERTH_ERR_MASTER_KEY');
      assert.match(body.message, /export BERTH_MASTER_KEY=\$\(openssl rand -hex 32\)/);
      const runs = (await (await fetch(`${berth.url}/_berth/flows/sync/runs`)).json()) as { runs: unknown[] };
      assert.equal(runs.runs.length, 0, 'nothing was started');
    } finally {
      await berth.stop();
    }
  });
});

describe('webhooks, queue messages and schedules start flow runs', () => {
  const BERTH_YML = `
queues:
  jobs: {}
flows:
  onHook:
    events:
      - webhook: /hooks/files
        secret: s3cr3t
        header: x-signature
    steps:
      - id: body
        code: echo.mjs
        input: "{% \$eval(input.body) %}"
  onQueue:
    events:
      - queue: jobs
    steps:
      - id: echo
        code: echo.mjs
  onSchedule:
    events:
      - schedule: rate(1 minute)
    steps:
      - id: echo
        code: echo.mjs
`;
  let berth: RunningBerth;

  before(async () => {
    berth = await startBerth(makeProject({ 'berth.yml': BERTH_YML, 'echo.mjs': 'export const handler = async (event) => ({ got: event });\n' }));
  });
  after(async () => {
    await berth?.stop();
  });

  const runsOf = async (flow: string) => ((await (await fetch(`${berth.url}/_berth/flows/${flow}/runs`)).json()) as { runs: { id: string; status: string; trigger: string }[] }).runs;
  const finished = (id: string) =>
    waitFor(async () => {
      const run = await getRun(berth.url, id);
      return run.status !== 'running' ? run : undefined;
    }, { what: `run ${id} to finish` });

  test('a signed webhook is answered 202 with the run id once the run is recorded; an unsigned one runs nothing', async () => {
    const body = JSON.stringify({ file: 'report.xml' });
    const signature = createHmac('sha256', 's3cr3t').update(body).digest('hex');
    const response = await fetch(`${berth.url}/hooks/files`, { method: 'POST', headers: { 'x-signature': signature, 'content-type': 'application/json' }, body });
    assert.equal(response.status, 202);
    const { runId } = (await response.json()) as { runId: string };
    assert.equal(response.headers.get('x-berth-flow-run-id'), runId);
    const run = await finished(runId);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(run.output, { got: { file: 'report.xml' } }, 'the run got the API Gateway event; its body parsed by the step input');

    const unsigned = await fetch(`${berth.url}/hooks/files`, { method: 'POST', body });
    assert.equal(unsigned.status, 401);
    assert.equal((await runsOf('onHook')).length, 1);
  });

  test('each queue message starts one run with its body as input', async () => {
    for (const n of [1, 2, 3]) {
      const sent = await fetch(`${berth.url}/_berth/queues/jobs/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body: { n } }) });
      assert.equal(sent.status, 200, await sent.text());
    }
    const runs = await waitFor(async () => {
      const found = await runsOf('onQueue');
      return found.length === 3 && found.every((r) => r.status === 'succeeded') ? found : undefined;
    }, { what: 'three queue-started runs' });
    assert.ok(runs.every((r) => r.trigger === 'queue'));
    const outputs = await Promise.all(runs.map(async (r) => (await getRun(berth.url, r.id)).output.got.n));
    assert.deepEqual(outputs.sort(), [1, 2, 3]);
    const queue = ((await (await fetch(`${berth.url}/_berth/queues`)).json()) as { queues: { name: string; visible: number; inflight: number }[] }).queues.find((q) => q.name === 'jobs')!;
    assert.equal(queue.visible + queue.inflight, 0, 'each message was deleted with its run');
  });

  test('a schedule starts a run at its tick with the EventBridge event', { timeout: 80_000 }, async () => {
    const [run] = await waitFor(async () => {
      const found = await runsOf('onSchedule');
      return found.length > 0 && found[0]!.status === 'succeeded' ? found : undefined;
    }, { what: 'the first scheduled run (rate(1 minute))', timeoutMs: 75_000, intervalMs: 500 });
    assert.equal(run!.trigger, 'schedule');
    const shown = await getRun(berth.url, run!.id);
    assert.equal(shown.output.got['detail-type'], 'Scheduled Event');
  });
});

describe('customer code that misbehaves fails its own step and nothing else', () => {
  const BERTH_YML = `
flows:
  hangs:
    steps:
      - id: spin
        code: bad.mjs
        input: { do: hang }
        timeout: 1
        retries: 1
        retryDelay: 10ms
  hogs:
    steps:
      - id: hog
        code: hog.mjs
  unserialisable:
    steps:
      - id: bigint
        code: bad.mjs
        input: { do: bigint }
  fine:
    steps:
      - id: ok
        code: bad.mjs
        input: { do: nothing }
`;
  const BAD = `
export const handler = async (event) => {
  if (event.do === 'hang') for (;;) {}
  if (event.do === 'bigint') return { n: 10n };
  return { ok: true };
};
`;
  const HOG = `
const held = [];
export const handler = async () => {
  for (;;) held.push(Buffer.alloc(16 * 1024 * 1024, 1));
};
`;
  let berth: RunningBerth;
  before(async () => {
    berth = await startBerth(makeProject({ 'berth.yml': `defaults:\n  memory: 128\n${BERTH_YML}`, 'bad.mjs': BAD, 'hog.mjs': HOG }));
  });
  after(async () => {
    await berth?.stop();
  });

  test('a hanging step times out and is retried; an exhausted memory and an output that is not JSON fail their steps; other runs go on', async () => {
    const [hung, hogged, unserialisable, fine] = await Promise.all([
      runFlow(berth.url, 'hangs', {}),
      runFlow(berth.url, 'hogs', {}),
      runFlow(berth.url, 'unserialisable', {}),
      runFlow(berth.url, 'fine', {}),
    ]);
    assert.equal(hung.status, 'failed');
    assert.equal(hung.error!.errorType, 'Sandbox.Timedout');
    assert.equal(stepOf(hung, 'spin').attempts, 2, 'retried once');
    assert.equal(hogged.status, 'failed');
    assert.equal(hogged.error!.errorType, 'Runtime.OutOfMemory');
    assert.equal(unserialisable.status, 'failed');
    assert.equal(unserialisable.error!.errorType, 'Runtime.MarshalError');
    assert.equal(fine.status, 'succeeded');
    assert.deepEqual(fine.output, { ok: true });
    assert.equal((await runFlow(berth.url, 'fine', {})).status, 'succeeded', 'Berth still runs flows afterwards');
  });
});

describe('flows written in TypeScript with berth/flows', () => {
  const TYPED = `
import { flow, step } from 'berth/flows';

const double = (id: string) => step.function(id, 'double');

export default flow({
  description: 'typed',
  steps: [
    double('first'),
    step.forEach('each', 'input.items', [step.code('square', 'square.ts', { input: "{% { 'n': item } %}" })], { concurrency: 2 }),
    step.function('sum', 'double', { input: "{% { 'n': $sum(steps.each.n) } %}" }),
  ],
});
`;
  test('a module named in berth.yml runs like the same flow written there', async () => {
    const berth = await startBerth(
      makeProject({
        'berth.yml': 'functions:\n  double:\n    handler: fns.double\n    isolation: warm\nflows:\n  typed: flows/typed.ts\n',
        'fns.mjs': 'export const double = async (e) => ({ ...e, n: (e.n ?? 0) * 2 });\n',
        'square.ts': 'export const handler = async (e: { n: number }) => ({ n: e.n * e.n });\n',
        'flows/typed.ts': TYPED,
      }),
    );
    try {
      const run = await runFlow(berth.url, 'typed', { n: 1, items: [1, 2, 3] });
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      assert.deepEqual(stepOf(run, 'first').output, { n: 2, items: [1, 2, 3] });
      assert.deepEqual(run.output, { n: 28 }, '(1 + 4 + 9) doubled');
    } finally {
      await berth.stop();
    }
  });

  test('a module without a default export, or that does not compile, stops berth start naming the flow', async () => {
    for (const [source, expected] of [
      ["import { flow } from 'berth/flows';\nexport const typed = flow({ steps: [] });\n", /flows\.typed: flows\/typed\.ts has no default export/],
      ["export default {{;\n", /flows\.typed: flows\/typed\.ts:1:\d+: /],
      ["import { flow } from 'berth/flows';\nexport default flow({ steps: [{ id: 'a', function: 'ghost' }] });\n", /flows\.typed\.steps\.0\.function: unknown function "ghost"/],
    ] as const) {
      const dir = makeProject({ 'berth.yml': 'flows:\n  typed: flows/typed.ts\n', 'flows/typed.ts': source });
      const run = await runCli(['start', dir, '--port', '0', '--data', path.join(dir, '.berth')], { timeoutMs: 20_000 });
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, expected);
    }
  });
});

describe('alerts by email', () => {
  let smtp: SMTPServer;
  let smtpPort: number;
  const mails: { to: string[]; data: string }[] = [];
  let refused = 0;

  before(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, session, callback) {
        let data = '';
        stream.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
        stream.on('end', () => {
          // The first mail is refused for now: the alert must be retried.
          if (refused++ === 0) return callback(Object.assign(new Error('try again later'), { responseCode: 451 }));
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    smtpPort = (smtp.server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => smtp.close(() => resolve())));

  test('a failed run is mailed to the alert addresses through smtp:, retried when the server refuses', async () => {
    const yml = `
smtp: { host: 127.0.0.1, port: ${smtpPort}, from: berth@example.com }
flows:
  nightly:
    alerts: { email: [ops@example.com, oncall@example.com], retries: 3 }
    steps:
      - id: broken
        code: broken.mjs
`;
    const berth = await startBerth(makeProject({ 'berth.yml': yml, 'broken.mjs': "export const handler = async () => { throw new Error('upstream said no'); };\n" }));
    try {
      const run = await runFlow(berth.url, 'nightly', {});
      assert.equal(run.status, 'failed');
      const [mail] = await waitFor(() => (mails.length > 0 ? mails : undefined), { what: 'the alert mail', timeoutMs: 10_000 });
      assert.deepEqual(mail!.to, ['ops@example.com', 'oncall@example.com']);
      assert.match(mail!.data, /^Subject: Flow nightly failed at step broken/m);
      assert.match(mail!.data, /^From: berth@example\.com/m);
      assert.ok(mail!.data.includes(run.id), 'the mail names the run');
      assert.ok(mail!.data.includes('upstream said no'), 'and the error');
      assert.equal(refused, 2, 'refused once, then delivered');
    } finally {
      await berth.stop();
    }
  });

  test('email alerts without smtp: stop berth start, naming the field', async () => {
    const dir = makeProject({ 'berth.yml': 'flows:\n  f:\n    alerts: { email: ops@example.com }\n    steps:\n      - id: a\n        code: a.mjs\n', 'a.mjs': 'export const handler = async () => 1;\n' });
    const run = await runCli(['start', dir, '--port', '0', '--data', path.join(dir, '.berth')], { timeoutMs: 20_000 });
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /flows\.f\.alerts\.email: email is sent through a mail server: add smtp: \{ host, port, from \} to berth\.yml/);
  });
});
