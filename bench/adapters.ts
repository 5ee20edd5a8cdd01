// Adapters benchmark: seed 001's POST /lead/:leadId (validate {name, email} JSON, answer 201 JSON)
// served four ways in one run, so the ratios compare like with like:
//   (a) bare Express: the route written natively (express.json() + the same validation)
//   (b) Express + toExpress(handler): the Lambda handler inside Express (src/adapters)
//   (c) Berth running fromExpress(app), (a)'s app, as a function on `http: ANY /{proxy+}` (warm)
//   (d) the Lambda Runtime API path: the handler under `runtime: provided`, run by Berth's own bootstrap
//       (`exec berth bootstrap`), on the same route
// and, for reference, (e) Berth's native path: the Lambda handler itself on `http: POST /lead/{leadId}` (warm),
// and (f) the Runtime API path with AWS's own aws-lambda-ric as the bootstrap.
//
// Every server and every load generator is its own child process (bench/children.ts kills
// them all on exit, error or Ctrl-C). Every way must first answer the same 201, body and cookies.
//
// Run: npm run bench:adapters   (env: BENCH_CONNECTIONS, default 10; BENCH_DURATION s, default 10; BENCH_WARMUP s, default 2)
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadClient, repoRoot, tempDir, withServer } from './children.js';
import type { LoadJob, LoadResult } from './load.js';
import { attempt, met, ms, positive, table, times } from './report.js';

const CONNECTIONS = positive('BENCH_CONNECTIONS', 10);
const DURATION = positive('BENCH_DURATION', 10);
const WARMUP = positive('BENCH_WARMUP', 2);
const CORES = os.availableParallelism();

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const fixtures = path.join(repoRoot, 'bench/fixtures/adapters');
const berthBin = path.join(repoRoot, 'bin/berth');

const ROUTE = '/lead/42';
const BODY = JSON.stringify({ name: ' Ada ', email: 'ada@example.com' });
const HEADERS = { 'content-type': 'application/json' };
const EXPECTED = { id: '42', name: 'Ada', email: 'ada@example.com', query: null, routeKey: 'POST /lead/{leadId}' };
const EXPECTED_COOKIES = ['seen=1; Path=/', 'lead=42'];

// Hard stop: every step has its own timeout, this catches anything that still hangs.
const budgetMs = (6 * (WARMUP + DURATION + 60) + 60) * 1000;
setTimeout(() => {
  console.error(`bench:adapters: watchdog fired after ${budgetMs / 1000} s, killing children`);
  process.exit(1);
}, budgetMs).unref();

// ---- servers -------------------------------------------------------------------------------

const baseline = (kind: 'native' | 'to-express') => ({ args: [path.join(here, 'adapters-server.js'), kind], env: {} });

/** A throwaway Berth project (fixture files + berth.yml) with its own data dir and BERTH_HOME. */
function berth(name: string, files: string[], handler: string, route: string, bootstrap?: string): { args: string[]; env: Record<string, string> } {
  const root = tempDir(`berth-bench-adapters-${name}-`);
  const project = path.join(root, 'project');
  const data = path.join(root, 'data');
  const home = path.join(root, 'home');
  for (const dir of [project, data, home]) mkdirSync(dir);
  for (const file of files) copyFileSync(path.join(fixtures, file), path.join(project, file));
  writeFileSync(
    path.join(project, 'berth.yml'),
    ['functions:', `  ${name}:`, `    handler: ${handler}`, '    isolation: warm', ...(bootstrap ? ['    runtime: provided', '    bootstrap: bootstrap'] : []), '    events:', `      - http: ${route}`, ''].join('\n'),
  );
  if (bootstrap) {
    writeFileSync(path.join(project, 'bootstrap'), bootstrap);
    chmodSync(path.join(project, 'bootstrap'), 0o755);
  }
  // The app's own dependency (express) resolves from a node_modules symlink, as in test/adapters.test.ts.
  // Berth runs the bundle from <data>/build/, where express stays external: with --data outside the
  // project, the project's own node_modules is not on that path, so the link sits above both.
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'));
  writeFileSync(path.join(project, 'package.json'), '{"type":"module"}\n');
  return { args: [berthBin, 'start', project, '--port', '0', '--data', data], env: { BERTH_HOME: home } };
}

// ---- client (its own process, see bench/load.ts) ---------------------------------------------

function load(url: string): Promise<LoadResult> {
  const job: LoadJob = { mode: 'load', url, path: ROUTE, method: 'POST', body: BODY, headers: HEADERS, connections: CONNECTIONS, duration: DURATION, warmup: WARMUP };
  return loadClient<LoadResult>(job, (WARMUP + DURATION + 30) * 1000);
}

/** One request first: every way must answer the same 201, body and cookies, or its numbers mean nothing. */
async function check(url: string): Promise<void> {
  const response = await fetch(url + ROUTE, { method: 'POST', headers: HEADERS, body: BODY });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`expected 201, got ${response.status}: ${text.slice(0, 120)}`);
  const body: unknown = JSON.parse(text);
  if (JSON.stringify(body) !== JSON.stringify(EXPECTED)) throw new Error(`unexpected body ${text.slice(0, 160)}`);
  const cookies = response.headers.getSetCookie();
  if (JSON.stringify(cookies) !== JSON.stringify(EXPECTED_COOKIES)) throw new Error(`unexpected cookies ${JSON.stringify(cookies)}`);
  if (response.headers.get('x-lead') !== '42') throw new Error(`unexpected x-lead ${response.headers.get('x-lead')}`);
}

const measure = (server: { args: string[]; env: Record<string, string> }) =>
  withServer(server.args, server.env, async (s) => {
    await check(s.url);
    return load(s.url);
  });

// ---- main ------------------------------------------------------------------------------------

console.log(`bench:adapters: POST ${ROUTE}, ${CONNECTIONS} connections, ${DURATION} s per run after ${WARMUP} s warm-up, ${CORES} cores`);

const a = await attempt('(a) bare Express', () => measure(baseline('native')));
const b = await attempt('(b) Express + toExpress(handler)', () => measure(baseline('to-express')));
const c = await attempt('(c) Berth + fromExpress(app), ANY /{proxy+}', () =>
  measure(berth('web', ['app.mjs', 'web.mjs'], 'web.handler', 'ANY /{proxy+}')),
);
const d = await attempt('(d) Lambda Runtime API path: runtime: provided with berth bootstrap', () =>
  measure(berth('bootstrapLead', ['lead.mjs'], 'lead.handler', 'POST /lead/{leadId}', '#!/bin/sh\nexec berth bootstrap\n')),
);
const e = await attempt('(e) Berth native, POST /lead/{leadId}', () => measure(berth('createLead', ['lead.mjs'], 'lead.handler', 'POST /lead/{leadId}')));
const f = await attempt('(f) Lambda Runtime API path: runtime: provided with aws-lambda-ric', () =>
  measure(berth('ricLead', ['lead.mjs'], 'lead.handler', 'POST /lead/{leadId}', `#!/bin/sh\nexec node ${JSON.stringify(path.join(repoRoot, 'node_modules', 'aws-lambda-ric', 'bin', 'index.mjs'))} "$_HANDLER"\n`)),
);

const ok = <T>(r: T | Error): T | undefined => (r instanceof Error ? undefined : r);
const [A, E] = [ok(a), ok(e)];
const B = ok(b);

type Row = [name: string, result: LoadResult | Error, target: string, isMet: boolean | undefined];
const D = ok(d);
const rows: Row[] = [
  ['(a) bare Express (native route)', a, '', undefined],
  ['(b) Express + toExpress(handler)', b, '≥0.9× (a)', B && A ? B.rps >= 0.9 * A.rps : undefined],
  ['(c) Berth + fromExpress(app), warm', c, '', undefined],
  ['(d) Runtime API, berth bootstrap, warm', d, '≥0.5× (e)', D && E ? D.rps >= 0.5 * E.rps : undefined],
  ['(e) Berth native handler, warm', e, '', undefined],
  ['(f) Runtime API, aws-lambda-ric, warm', f, '', undefined],
];
const ratio = (r: LoadResult, base: LoadResult | undefined) => (base ? times(r.rps / base.rps) : 'n/a');
const mainTable = table(
  ['Way', 'req/s', 'p50 ms', 'p99 ms', 'req/s vs (a)', 'req/s vs (e)', 'failed', 'Target', 'Met?'],
  rows.map(([name, r, target, isMet]) => {
    const verdict = target && met(isMet);
    if (r instanceof Error) return [name, `error: ${r.message}`, '', '', '', '', '', target, target && 'n/a'];
    return [name, r.rps.toFixed(0), ms(r.p50), ms(r.p99), ratio(r, A), ratio(r, E), String(r.failed), target, verdict];
  }),
);

const C = ok(c);
const fmt = (x: LoadResult | undefined, y: LoadResult | undefined) => (x && y ? times(x.rps / y.rps) : 'n/a');
const ratiosTable = table(
  ['Ratio (req/s)', 'Value', 'Target', 'Met?'],
  [
    ['(b) / (a): Lambda handler inside Express vs the native route', fmt(B, A), '≥0.90×', met(B && A ? B.rps >= 0.9 * A.rps : undefined)],
    ['(c) / (a): Express app as a Berth function vs the app on its own', fmt(C, A), '', ''],
    ['(c) / (e): Express app as a Berth function vs the handler on Berth', fmt(C, E), '', ''],
    ['(d) / (e): Lambda Runtime API path vs Berth native', fmt(D, E), '≥0.50×', met(D && E ? D.rps >= 0.5 * E.rps : undefined)],
    ['(f) / (e): the same path with aws-lambda-ric as the bootstrap', fmt(ok(f), E), '', ''],
  ],
);

const date = new Date().toISOString().slice(0, 10);
const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
console.log(`
----- paste into docs/benchmarks.md -----
## Adapters: one route, served six ways (bench:adapters)

Measured ${date} with \`npm run bench:adapters\`: Node ${process.version}, ${cpu}, ${CORES} cores;
seed 001's \`POST /lead/:leadId\` (JSON {name, email} validated, 201 JSON with x-lead and two cookies), every
way checked to answer the same first; autocannon in its own process, ${CONNECTIONS} connections, ${DURATION} s after ${WARMUP} s warm-up,
each server in its own process; Berth functions \`isolation: warm\`; latencies in ms from the client, req/s counts 2xx only.
(c) is (a)'s Express app behind \`fromExpress\` on \`http: ANY /{proxy+}\`; (e) is the Lambda handler on Berth directly, for reference.
(d) is the same handler under \`runtime: provided\`, run through Berth's Runtime API by Berth's own bootstrap
(\`exec berth bootstrap\`); (f) is the same with AWS's aws-lambda-ric as the bootstrap.

${mainTable}

${ratiosTable}
-----------------------------------------`);

process.exitCode = [a, b, c, d, e, f].some((r) => r instanceof Error) ? 1 : 0;
