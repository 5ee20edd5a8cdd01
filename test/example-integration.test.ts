/**
 * examples/integration, as its README runs it: setup.mjs stores both customers' credentials
 * under a master key, `berth start` runs the stand-ins (Dropbox, the partner API, the pager)
 * as services, and signed webhooks start each customer's flow: list and fetch its XML files,
 * run the customer's own transform, post the results with the customer's token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { functionLogs, stopWithin, waitFor } from './helpers/lambda.js';
import { berthBin, berthHome, freePorts, repoRoot, runCli, startBerth, type RunningBerth } from './helpers/project.js';

type Customer = 'acme' | 'globex';
type Accounts = Record<Customer, { DROPBOX_TOKEN: string; PARTNER_TOKEN: string }>;

interface RunView {
  id: string;
  flow: string;
  status: string;
  tenant: string | null;
  trigger: string;
  output: any;
  error: { step: string; errorType: string; errorMessage: string } | null;
  steps: { step: string; status: string; attempts: number; input: any; output: any; invocationId: string | null }[];
}

interface PartnerRequest {
  id: string;
  account: string;
  status: number;
  authorization: string | null;
  body: any;
}

const MASTER_KEY = randomBytes(32).toString('hex');
const WEBHOOK_SECRETS: Record<Customer, string> = { acme: 'acme-webhook-secret', globex: 'globex-webhook-secret' };
const ACME_ORDERS = ['A-1001', 'A-1002', 'A-1003'];
const GLOBEX_INVOICES = ['GX-2024-0017', 'GX-2024-0018'];

let berth: RunningBerth | undefined;
let dir: string;
/** A private instance registry (BERTH_HOME) for Berth, the CLI and setup.mjs. */
let home: string;
let accounts: Accounts;
/** The stand-ins' ports in this copy: free ones, so a demo running on 4710-4712 never clashes. */
const ports = { dropbox: 0, partner: 0, pager: 0 };

const url = () => berth!.url;
const allTokens = () => Object.values(accounts).flatMap((a) => [a.DROPBOX_TOKEN, a.PARTNER_TOKEN]);
const stepOf = (run: RunView, step: string) => {
  const found = run.steps.find((s) => s.step === step);
  assert.ok(found, `no step ${step} in ${JSON.stringify(run.steps.map((s) => s.step))}`);
  return found;
};

/** node setup.mjs [customers], as a user runs it (with the test's master key and Berth home). */
async function setup(...customers: Customer[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(dir, 'setup.mjs'), ...customers], {
    env: { ...process.env, BERTH_MASTER_KEY: MASTER_KEY, BERTH_BIN: berthBin, BERTH_HOME: home },
    timeout: 20_000,
  });
  return stdout;
}

/** POSTs a webhook to the customer's flow, signed with `secret` (its own by default; null: unsigned). */
function webhook(customer: Customer, body: unknown, secret: string | null = WEBHOOK_SECRETS[customer]): Promise<Response> {
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (secret !== null) headers['x-hub-signature-256'] = `sha256=${createHmac('sha256', secret).update(text).digest('hex')}`;
  return fetch(`${url()}/hooks/${customer}`, { method: 'POST', headers, body: text });
}

async function startedByWebhook(customer: Customer): Promise<string> {
  const response = await webhook(customer, { reason: 'new files in /inbox' });
  const body = (await response.json()) as { runId: string };
  assert.equal(response.status, 202, JSON.stringify(body));
  return body.runId;
}

async function getRun(id: string): Promise<RunView> {
  return (await (await fetch(`${url()}/_berth/flow-runs/${id}`)).json()) as RunView;
}

function finished(id: string): Promise<RunView> {
  return waitFor(async () => {
    const run = await getRun(id);
    return run.status !== 'running' ? run : undefined;
  }, { what: `run ${id} to finish`, timeoutMs: 15_000 });
}

async function partnerRequests(): Promise<PartnerRequest[]> {
  return ((await (await fetch(`http://127.0.0.1:${ports.partner}/v1/requests`)).json()) as { requests: PartnerRequest[] }).requests;
}

async function alerts(): Promise<{ subject: string; runId: string; tenant: string; error: { step: string; errorType: string; errorMessage: string } }[]> {
  return ((await (await fetch(`http://127.0.0.1:${ports.pager}/alerts`)).json()) as { alerts: any[] }).alerts;
}

async function runCount(flow: string): Promise<number> {
  return ((await (await fetch(`${url()}/_berth/flows/${flow}/runs?limit=1000`)).json()) as { runs: unknown[] }).runs.length;
}

before(async () => {
  dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'berth-integration-')), 'integration');
  cpSync(path.join(repoRoot, 'examples', 'integration'), dir, { recursive: true, filter: (src) => !src.includes('.berth') });
  ({ DEMO_ACCOUNTS: accounts } = (await import(pathToFileURL(path.join(dir, 'stand-ins', 'accounts.mjs')).href)) as { DEMO_ACCOUNTS: Accounts });
  [ports.dropbox, ports.partner, ports.pager] = await freePorts(3);
  // The copy differs from the example in two ways only: the stand-ins' ports, and schedules
  // that do not tick while the test runs (a scheduled run would add to what it counts).
  let yml = readFileSync(path.join(dir, 'berth.yml'), 'utf8');
  for (const [from, to] of [['4710', ports.dropbox], ['4711', ports.partner], ['4712', ports.pager], ['rate(5 minutes)', 'rate(30 days)'], ['cron(0 * * * ? *)', 'cron(0 0 1 1 ? *)']] as const) {
    assert.ok(yml.includes(from), `examples/integration/berth.yml no longer has ${from}; update this test`);
    yml = yml.replaceAll(from, String(to));
  }
  writeFileSync(path.join(dir, 'berth.yml'), yml);

  home = berthHome();
  assert.match(await setup(), /stored DROPBOX_TOKEN and PARTNER_TOKEN for acme and globex/);
  berth = await startBerth(dir, { home, env: { BERTH_MASTER_KEY: MASTER_KEY } });
  // The stand-ins are services: Berth starts them with itself, and they listen soon after.
  await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.dropbox}/2/files/list_folder`, { method: 'POST' })).status === 401, { what: 'the Dropbox stand-in' });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.partner}/v1/requests`)).ok, { what: 'the partner API stand-in' });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.pager}/alerts`)).ok, { what: 'the pager stand-in' });
});

after(async () => {
  if (berth) await stopWithin(berth);
});

let acmeRun: RunView;
let globexRun: RunView;

test("a signed webhook runs each customer's integration: its files, its own code's shape, its own token", async () => {
  const [acmeId, globexId] = await Promise.all([startedByWebhook('acme'), startedByWebhook('globex')]);
  [acmeRun, globexRun] = await Promise.all([finished(acmeId), finished(globexId)]);
  for (const [run, customer] of [[acmeRun, 'acme'], [globexRun, 'globex']] as const) {
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.tenant, customer);
    assert.equal(run.trigger, 'webhook');
  }
  // One transform per file (the history lists steps as they started; items run side by side).
  const transforms = (run: RunView) => run.steps.filter((s) => s.step.endsWith('.transform')).map((s) => s.step).sort();
  assert.deepEqual(transforms(acmeRun), ['files[0].transform', 'files[1].transform', 'files[2].transform']);
  assert.deepEqual(transforms(globexRun), ['files[0].transform', 'files[1].transform']);

  const received = await partnerRequests();
  assert.equal(received.length, 2, JSON.stringify(received));
  const acme = received.find((r) => r.account === 'acme')!;
  const globex = received.find((r) => r.account === 'globex')!;
  assert.equal(acme.status, 201);
  assert.equal(acme.authorization, `Bearer ${accounts.acme.PARTNER_TOKEN}`);
  assert.equal(globex.status, 201);
  assert.equal(globex.authorization, `Bearer ${accounts.globex.PARTNER_TOKEN}`);

  // acme's code: one JSON order per XML order.
  assert.deepEqual(acme.body.records.map((r: any) => r.orderId), ACME_ORDERS);
  assert.deepEqual(acme.body.records[0], {
    orderId: 'A-1001',
    placedAt: '2024-05-02T09:14:00Z',
    buyer: 'Wile E. Coyote',
    currency: 'USD',
    lines: [
      { sku: 'ROCKET-SKATES', quantity: 1, unitPrice: 149 },
      { sku: 'BIRDSEED-5KG', quantity: 3, unitPrice: 12.5 },
    ],
    total: 186.5,
    source: 'dropbox:/inbox/order-a-1001.xml',
  });
  // globex's code: flat invoice records, amounts in cents.
  assert.deepEqual(globex.body.records.map((r: any) => r.invoiceNumber), GLOBEX_INVOICES);
  assert.deepEqual(globex.body.records[0], {
    kind: 'invoice',
    invoiceNumber: 'GX-2024-0017',
    issued: '2024-05-01',
    due: '2024-05-31',
    currency: 'EUR',
    amountCents: 135_000,
    itemCount: 2,
    file: 'invoice-gx-0017.xml',
  });
});

test('an unsigned webhook, or one signed with the other customer\'s secret, is refused and starts nothing', async () => {
  const before = await runCount('acme-sync');
  const unsigned = await webhook('acme', { reason: 'unsigned' }, null);
  assert.equal(unsigned.status, 401);
  const wrong = await webhook('acme', { reason: 'wrong secret' }, WEBHOOK_SECRETS.globex);
  assert.equal(wrong.status, 401);
  assert.equal(await runCount('acme-sync'), before);
});

test("no token appears in the history or the logs; each customer's code runs in its own tenant", async () => {
  for (const run of [acmeRun, globexRun]) {
    const history = await (await fetch(`${url()}/_berth/flow-runs/${run.id}`)).text();
    for (const token of allTokens()) assert.ok(!history.includes(token), `run ${run.flow} shows a token in its history`);
    // The partner echoes the Authorization it got; Berth recorded it redacted.
    assert.equal(stepOf(run, 'post').output.body.echo.authorization, 'Bearer ***');
    assert.equal(run.output.body.echo.authorization, 'Bearer ***');
  }

  const logs = async (fn: string) => (await functionLogs(url(), fn, 100)).map((l) => l.text).join('');
  const acmeCode = await waitFor(async () => {
    const text = await logs('flow.acme-sync.files.transform');
    return ACME_ORDERS.every((id) => text.includes(`order ${id}`)) ? text : undefined;
  }, { what: "acme's transform logs" });
  const globexCode = await waitFor(async () => {
    const text = await logs('flow.globex-sync.files.transform');
    return GLOBEX_INVOICES.every((id) => text.includes(`invoice ${id}`)) ? text : undefined;
  }, { what: "globex's transform logs" });
  assert.doesNotMatch(acmeCode, /invoice GX-/, "globex's work never shows in acme's code's logs");
  assert.doesNotMatch(globexCode, /order A-/);
  const everything = [acmeCode, globexCode, await logs('dropbox'), await logs('partner'), await logs('pager')].join('');
  for (const token of allTokens()) assert.ok(!everything.includes(token), 'a token shows in the logs');

  // Customer code runs only for its own tenant, in tenant isolation.
  const { functions } = (await (await fetch(`${url()}/_berth/functions`)).json()) as { functions: { name: string; isolation: string }[] };
  for (const name of ['flow.acme-sync.files.transform', 'flow.globex-sync.files.transform']) {
    assert.equal(functions.find((f) => f.name === name)?.isolation, 'tenant', name);
  }
  const invocation = (await (await fetch(`${url()}/_berth/invocations/${stepOf(acmeRun, 'files[0].transform').invocationId}`)).json()) as Record<string, unknown>;
  assert.equal(invocation.tenantId, 'acme', JSON.stringify(invocation));

  // The partner got each customer's token on that customer's account only.
  for (const request of await partnerRequests()) {
    assert.equal(request.authorization, `Bearer ${accounts[request.account as Customer].PARTNER_TOKEN}`);
  }
});

test('berth flow run, flow runs, flow show and logs', async () => {
  const cli = (...args: string[]) => runCli(args, { home });
  const ran = await cli('flow', 'run', 'globex-sync');
  assert.equal(ran.code, 0, ran.stderr);
  const id = /^run (\S+) of globex-sync: succeeded in \d+ ms \(tenant globex\), trigger api$/m.exec(ran.stdout)?.[1];
  assert.ok(id, ran.stdout);
  assert.match(ran.stdout, /^files\[1\]\.transform\s+succeeded\s+1\s/m);
  assert.match(ran.stdout, /"authorization": "Bearer \*\*\*"/);

  const runs = await cli('flow', 'runs', 'acme-sync');
  assert.equal(runs.code, 0, runs.stderr);
  assert.match(runs.stdout, new RegExp(`^${acmeRun.id}\\s+succeeded\\s+acme\\s+webhook\\s`, 'm'));

  const shown = await cli('flow', 'show', acmeRun.id);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /^files\[2\]\.transform\s+succeeded\s+1\s/m);
  assert.match(shown.stdout, /^post\s+succeeded\s+1\s/m);

  const logs = await cli('logs', 'flow.acme-sync.files.transform');
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout + logs.stderr, /order A-1002 from order-a-1002\.xml: 1 lines, total 150\.5 USD/);
});

test("a wrong or missing secret fails that customer's run with a clear error and an alert; the other customer's run succeeds", async () => {
  const partnerBefore = (await partnerRequests()).length;
  // acme's partner token is revoked: set a wrong one while Berth runs (read at the next use).
  const revoked = 'pk_acme_revoked_0000';
  const set = await runCli(['secrets', 'set', 'acme', 'PARTNER_TOKEN', '--dir', dir], { home, env: { BERTH_MASTER_KEY: MASTER_KEY }, input: `${revoked}\n` });
  assert.equal(set.code, 0, set.stderr);

  const [acmeId, globexId] = await Promise.all([startedByWebhook('acme'), startedByWebhook('globex')]);
  const [acme, globex] = await Promise.all([finished(acmeId), finished(globexId)]);
  assert.equal(globex.status, 'succeeded', JSON.stringify(globex.error));
  assert.equal(acme.status, 'failed');
  assert.equal(acme.error!.step, 'post');
  assert.equal(acme.error!.errorType, 'Berth.HttpError');
  assert.match(acme.error!.errorMessage, /answered 401: .*a valid bearer token for account acme is required/);
  assert.equal(stepOf(acme, 'post').attempts, 3, 'retries: 2');
  assert.ok(!JSON.stringify(await getRun(acmeId)).includes(revoked), 'even a wrong token is a secret, kept out of the history');

  const sent = (await partnerRequests()).slice(partnerBefore);
  assert.deepEqual(sent.filter((r) => r.account === 'acme').map((r) => [r.status, r.authorization]), [[401, `Bearer ${revoked}`], [401, `Bearer ${revoked}`], [401, `Bearer ${revoked}`]]);
  assert.deepEqual(sent.filter((r) => r.account === 'globex').map((r) => [r.status, r.authorization]), [[201, `Bearer ${accounts.globex.PARTNER_TOKEN}`]]);

  // globex loses its Dropbox token; setup.mjs puts acme's back.
  const rm = await runCli(['secrets', 'rm', 'globex', 'DROPBOX_TOKEN', '--dir', dir], { home });
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(await setup('acme'), /stored DROPBOX_TOKEN and PARTNER_TOKEN for acme\./);
  const [acmeAgain, globexAgain] = await Promise.all([finished(await startedByWebhook('acme')), finished(await startedByWebhook('globex'))]);
  assert.equal(acmeAgain.status, 'succeeded', JSON.stringify(acmeAgain.error));
  assert.equal(globexAgain.status, 'failed');
  assert.equal(globexAgain.error!.step, 'list');
  assert.equal(globexAgain.error!.errorType, 'Berth.SecretError');
  assert.match(globexAgain.error!.errorMessage, /Tenant "globex" has no secret "DROPBOX_TOKEN". Set it with `berth secrets set globex DROPBOX_TOKEN`/);

  // Each failed run was posted to the pager stand-in by the flow's alerts webhook.
  const received = await waitFor(async () => {
    const found = await alerts();
    return [acmeId, globexAgain.id].every((id) => found.some((a) => a.runId === id)) ? found : undefined;
  }, { what: 'the alerts of both failed runs' });
  const acmeAlert = received.find((a) => a.runId === acmeId)!;
  assert.equal(acmeAlert.subject, 'Flow acme-sync failed at step post');
  assert.equal(acmeAlert.tenant, 'acme');
  const globexAlert = received.find((a) => a.runId === globexAgain.id)!;
  assert.equal(globexAlert.subject, 'Flow globex-sync failed at step list');
  assert.equal(globexAlert.error.errorType, 'Berth.SecretError');
  assert.equal(received.length, 2, 'no alert for the runs that succeeded');
});
