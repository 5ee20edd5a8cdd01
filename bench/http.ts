// HTTP benchmark: one handler (bench/fixtures/handler.mjs) served five ways on this machine in
// one run, so the ratios compare like with like:
//   (a) bare node:http calling the handler in-process: the floor
//   (b) Express + a lambda-to-express wrapper: what teams that left Lambda run on ECS
//   (c) Berth warm, (d) Berth tenant over 50 tenants, (e) Berth fresh
// plus fresh-environment time-to-handler, the machine's process-start limit (the ceiling for
// `fresh`) and the RSS of one idle environment.
//
// Every server and every load generator is a separate child process: a client sharing the
// server's event loop would slow both down. A competitor that fails becomes an error row.
//
// Run: npm run bench:http   (env: BENCH_DURATION seconds, default 10; BENCH_CONNECTIONS, default 50)
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { descendants, loadClient, repoRoot, tempDir, track, withServer } from './children.js';
import type { LoadJob, LoadResult, ProbeJob, ProbeResult } from './load.js';
import { attempt, met, ms, positive, table, times } from './report.js';
import { percentile } from './stats.js';

const DURATION = positive('BENCH_DURATION', 10);
const CONNECTIONS = positive('BENCH_CONNECTIONS', 50);
const WARMUP = 2; // seconds of load discarded before each measured run (JIT, pools, sockets)
const TENANTS = 50;
const PROBE_SAMPLES = 200;
const SPAWN_SECONDS = 5;
const CORES = os.availableParallelism();
const FRESH_CONNECTIONS = 2 * CORES;

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const handlerFile = path.join(repoRoot, 'bench/fixtures/handler.mjs');

// ---- servers (started and stopped by ./children.js) ----------------------------------------

const baseline = (kind: 'bare' | 'express'): string[] => [path.join(here, 'server.js'), kind, handlerFile];

/** A throwaway Berth project + data dir + BERTH_HOME for one isolation mode. */
function berth(isolation: 'warm' | 'tenant' | 'fresh'): { args: string[]; env: Record<string, string> } {
  const root = tempDir(`berth-bench-${isolation}-`);
  const project = path.join(root, 'project');
  mkdirSync(project);
  cpSync(handlerFile, path.join(project, 'handler.mjs'));
  writeFileSync(
    path.join(project, 'berth.yml'),
    ['functions:', '  hello:', '    handler: handler.handler', `    isolation: ${isolation}`, '    events:', '      - http: GET /hello/{id}', ''].join('\n'),
  );
  const data = path.join(root, 'data');
  const home = path.join(root, 'home');
  mkdirSync(data);
  mkdirSync(home);
  return { args: [path.join(repoRoot, 'bin/berth'), 'start', project, '--port', '0', '--data', data], env: { BERTH_HOME: home } };
}

// ---- clients (always their own process, see bench/load.ts) -----------------------------------

function client<T>(job: LoadJob | ProbeJob, timeoutMs: number): Promise<T> {
  return loadClient<T>(job, timeoutMs);
}

const load = (url: string, tenants?: number, connections = CONNECTIONS) =>
  client<LoadResult>({ mode: 'load', url, connections, duration: DURATION, warmup: WARMUP, ...(tenants && { tenants }) }, (WARMUP + DURATION + 30) * 1000);

/**
 * One request per tenant, all at once: every tenant's first request needs its own
 * environment, so this is the cold start of a tenant-isolated function, bounded by
 * the process-start limit. Returns seconds until all have answered.
 */
async function touchTenants(url: string, tenants: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: tenants }, async (_, i) => {
      const response = await fetch(`${url}/hello/${i}`, { headers: { 'x-berth-tenant': `tenant-${i}` } });
      if (response.status !== 200) throw new Error(`tenant-${i}: HTTP ${response.status}`);
      await response.arrayBuffer();
    }),
  );
  return (performance.now() - started) / 1000;
}

const probe = (url: string, concurrency: number, pauseMs: number) =>
  client<ProbeResult>({ mode: 'probe', url, samples: PROBE_SAMPLES, concurrency, pauseMs }, 180_000);

// ---- the other measurements ----------------------------------------------------------------

/**
 * Minimal Node processes started per second, CORES at a time, each counted once it has
 * signalled ready and exited: a `fresh` environment pays both, so this bounds (e).
 */
async function processStartLimit(): Promise<number> {
  const startOne = () =>
    new Promise<void>((resolve, reject) => {
      const child = track(spawn(process.execPath, ['-e', 'process.send?.(1)'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
      let ready = false;
      child.once('message', () => (ready = true));
      child.once('error', reject);
      // 'close' comes after the IPC channel is drained, so a sent message has arrived by then.
      child.once('close', () => (ready ? resolve() : reject(new Error('child exited without signalling ready'))));
    });
  const t0 = performance.now();
  const deadline = t0 + SPAWN_SECONDS * 1000;
  let started = 0;
  const lane = async () => {
    while (performance.now() < deadline) {
      await startOne();
      started++;
    }
  };
  await Promise.all(Array.from({ length: CORES }, lane));
  return started / ((performance.now() - t0) / 1000);
}

/** Median VmRSS (MB) of the Berth server's sandbox processes (the node processes below it). */
function idleEnvironmentRss(pid: number): { mb: number; n: number } {
  const node = realpathSync(process.execPath);
  const below = descendants(pid);
  const kb = below
    .filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/exe`) === node;
      } catch {
        return false;
      }
    })
    .map((p) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1]))
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  if (kb.length === 0) throw new Error(`no node processes among the ${below.length} below pid ${pid}`);
  return { mb: percentile(kb, 0.5) / 1024, n: kb.length };
}

// ---- main ------------------------------------------------------------------------------------

// Hard stop: every step has its own timeout, this catches anything that still hangs.
const budgetMs = (5 * (WARMUP + DURATION + 60) + 3 * 180 + 120) * 1000;
setTimeout(() => {
  console.error(`bench:http: watchdog fired after ${budgetMs / 1000} s, killing children`);
  process.exit(1);
}, budgetMs).unref();

console.log(`bench:http: ${CONNECTIONS} connections, ${DURATION} s per run after ${WARMUP} s warm-up, ${CORES} cores`);

const startLimit = await attempt(`process-start limit (${CORES} in parallel, ${SPAWN_SECONDS} s)`, processStartLimit);
// Flatten "server failed to start" and "this part failed" into one Error per figure.
const pick = <T, K extends keyof T>(r: T | Error, key: K): T[K] | Error => (r instanceof Error ? r : r[key]);

// Besides the loaded run, one connection: with no queue, the added p50 is Berth's own
// per-request cost (at 50 connections it is mostly waiting in line, by Little's law).
const bare = await attempt('(a) node:http', () =>
  withServer(baseline('bare'), {}, async (s) => ({ result: await load(s.url), single: await load(s.url, undefined, 1) })),
);
const a = pick(bare, 'result');
const b = await attempt('(b) Express + lambda wrapper', () => withServer(baseline('express'), {}, (s) => load(s.url)));

const warmCfg = berth('warm');
const warm = await attempt('(c) Berth warm', () =>
  withServer(warmCfg.args, warmCfg.env, async (s) => {
    const result = await load(s.url);
    const single = await load(s.url, undefined, 1);
    await sleep(1000); // let the environments go idle before reading their RSS
    const rss = await attempt('idle environment RSS', async () => idleEnvironmentRss(s.child.pid!));
    return { result, single, rss };
  }),
);

const tenantCfg = berth('tenant');
// Steady state is measured after every tenant has its environment; the cold start of
// 50 tenants is reported on its own line.
const tenantRun = await attempt(`(d) Berth tenant, ${TENANTS} tenants`, () =>
  withServer(tenantCfg.args, tenantCfg.env, async (s) => {
    const coldSeconds = await touchTenants(s.url, TENANTS);
    return { coldSeconds, result: await load(s.url, TENANTS) };
  }),
);

// Under the refill rate: one request at a time, paced so demand is at most 2/3 of what this
// machine can start (30 ms unless process starts are slower than that allows), but at most
// 250 ms apart so the 200 samples stay under a minute.
const pauseMs = Math.round(Math.min(250, Math.max(30, startLimit instanceof Error ? 0 : 1500 / startLimit)));
const freshCfg = berth('fresh');
const fresh = await attempt('(e) Berth fresh', () =>
  withServer(freshCfg.args, freshCfg.env, async (s) => {
    await sleep(1000); // give the pool time to fill after start
    const underRefill = await attempt(`fresh time-to-handler, sequential, ${pauseMs} ms apart`, () => probe(s.url, 1, pauseMs));
    const exhausted = await attempt(`fresh time-to-handler, bursts of ${CONNECTIONS}`, () => probe(s.url, CONNECTIONS, 0));
    // Fresh throughput is bounded by process starts; more connections than that only
    // lengthen the queue (50 connections at ~10 starts/s is a 5 s wait per request).
    const result = await attempt('(e) load', () => load(s.url, undefined, FRESH_CONNECTIONS));
    return { result, underRefill, exhausted };
  }),
);

const c = pick(warm, 'result');
const e = pick(fresh, 'result');
const d = pick(tenantRun, 'result');
const tenantCold = pick(tenantRun, 'coldSeconds');
const rss = pick(warm, 'rss');
const aSingle = pick(bare, 'single');
const cSingle = pick(warm, 'single');
const underRefill = pick(fresh, 'underRefill');
const exhausted = pick(fresh, 'exhausted');

const ok = <T>(r: T | Error): T | undefined => (r instanceof Error ? undefined : r);
const [A, B, C, E, U, limit] = [ok(a), ok(b), ok(c), ok(e), ok(underRefill), ok(startLimit)];

const targets: Record<string, [string, boolean | undefined]> = {
  c: ['≥0.5× (a), ≥1.0× (b), added p50 ≤1 ms', C && A && B && C.rps >= 0.5 * A.rps && C.rps >= B.rps && C.p50 - A.p50 <= 1],
  e: ['≥0.8× process-start limit', E && limit !== undefined ? E.rps >= 0.8 * limit : undefined],
};
const competitors: Array<[string, string, LoadResult | Error]> = [
  ['a', '(a) node:http + handler', a],
  ['b', '(b) Express + lambda wrapper', b],
  ['c', '(c) Berth warm', c],
  ['d', `(d) Berth tenant ×${TENANTS}`, d],
  ['e', '(e) Berth fresh', e],
];
const mainTable = table(
  ['Competitor', 'req/s', 'p50 ms', 'p99 ms', 'req/s vs (a)', 'req/s vs (b)', 'added p50 vs (a)', 'failed', 'Target', 'Met?'],
  competitors.map(([key, name, r]) => {
    const [target, isMet] = targets[key] ?? ['', undefined];
    if (r instanceof Error) return [name, `error: ${r.message}`, '', '', '', '', '', '', target, target && 'n/a'];
    return [
      name,
      r.rps.toFixed(0),
      ms(r.p50),
      ms(r.p99),
      A ? times(r.rps / A.rps) : 'n/a',
      B ? times(r.rps / B.rps) : 'n/a',
      A ? `${r.p50 - A.p50 >= 0 ? '+' : ''}${ms(r.p50 - A.p50)} ms` : 'n/a',
      String(r.failed),
      target,
      target && met(isMet),
    ];
  }),
);

const value = <T>(r: T | Error, show: (v: T) => string) => (r instanceof Error ? `error: ${r.message}` : show(r));
const probeText = (p: ProbeResult) => `p50 ${ms(p.p50)} ms, p99 ${ms(p.p99)} ms (${p.ok} ok, ${p.failed} failed)`;
const extraTable = table(
  ['Measurement', 'Value', 'Target', 'Met?'],
  [
    [`Fresh time-to-handler, pool warm (sequential, ${pauseMs} ms apart)`, value(underRefill, probeText), 'p50 ≤5 ms', met(U && U.p50 <= 5)],
    [`Fresh time-to-handler, pool exhausted (bursts of ${CONNECTIONS})`, value(exhausted, probeText), '', ''],
    [`Process-start limit (${CORES} in parallel, ${SPAWN_SECONDS} s)`, value(startLimit, (v) => `${v.toFixed(1)} processes/s`), '', ''],
    ['(e) fresh req/s ÷ process-start limit', E && limit ? times(E.rps / limit) : 'n/a', '≥0.80×', targets.e![1] === undefined ? 'n/a' : met(targets.e![1])],
    [
      '(c) at 1 connection: p50 added to (a) at 1 connection',
      aSingle instanceof Error || cSingle instanceof Error
        ? `error: ${(aSingle instanceof Error ? aSingle : (cSingle as Error)).message}`
        : `+${ms(cSingle.p50 - aSingle.p50)} ms (p50 ${ms(cSingle.p50)} vs ${ms(aSingle.p50)} ms; ${cSingle.rps.toFixed(0)} vs ${aSingle.rps.toFixed(0)} req/s)`,
      '≤1 ms',
      aSingle instanceof Error || cSingle instanceof Error ? 'n/a' : met(cSingle.p50 - aSingle.p50 <= 1),
    ],
    [`(d) cold start: first request of ${TENANTS} tenants at once, all answered after`, value(tenantCold, (v) => `${v.toFixed(2)} s`), '', ''],
    ['Idle warm environment RSS (median)', value(rss, (v) => `${v.mb.toFixed(1)} MB (n=${v.n})`), '', ''],
  ],
);

const date = new Date().toISOString().slice(0, 10);
const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
console.log(`
----- paste into docs/benchmarks.md -----
## HTTP: one handler, served five ways

Measured ${date} with \`npm run bench:http\`: Node ${process.version}, ${cpu}, ${CORES} cores;
autocannon in its own process, ${CONNECTIONS} connections (fresh: ${FRESH_CONNECTIONS}), ${DURATION} s after ${WARMUP} s warm-up;
(d) is measured once every tenant has an environment; its cold start is a line of its own;
latencies in ms from the client, req/s counts 2xx responses only.

${mainTable}

${extraTable}
-----------------------------------------`);

const all = [startLimit, a, b, c, d, e, aSingle, cSingle, tenantCold, rss, underRefill, exhausted];
process.exitCode = all.some((r) => r instanceof Error) ? 1 : 0;
