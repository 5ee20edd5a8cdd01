// Noisy-neighbour benchmark (seed 001): a user-facing sync function under steady load while a
// background function receives a burst of async events big enough to fill the installation's
// concurrency on its own. Seed 001 left Lambda because one shared account pool let background
// bursts throttle user-facing functions; this measures whether Berth's limits keep them apart.
//
// Two functions (bench/fixtures/noisy-api.mjs, bench/fixtures/noisy-background.mjs):
//   api         GET /lead/{id}, isolation warm: API_CPU_MS of CPU, then API_WAIT_MS of waiting;
//               BENCH_RATE requests/s, open loop (bench/noisy-neighbor-load.ts)
//   background  async events sent with the Invoke API (X-Amz-Invocation-Type: Event), each
//               waiting BG_MS; async.concurrency 20, more than the account has
// Scenarios, each on a fresh Berth with the same load and the same burst:
//   protected   account.concurrency 8, api reservedConcurrency 3: what the limits promise
//   shared      account.concurrency 8, no reservation: api and the burst draw on one pool,
//               as on Lambda without reserved concurrency (the comparison row)
//   unlimited   no account block: Berth without admission limits (only with BENCH_SCENARIOS)
// Phases, cut by each request's scheduled time:
//   warm-up     WARMUP_EVENTS background events start its environments, then WARMUP_SECONDS of
//               load (rising over the first RAMP_SECONDS), discarded
//   before      BENCH_PHASE_SECONDS of load alone
//   during      from the burst's first invoke until its queue is empty, split into enqueue
//               (until the last 202) and drain (the rest); the producer process's own start,
//               between before and during, is in no phase
//   after       BENCH_PHASE_SECONDS more once drained
// The burst's producer is bench/queue-client.ts (burst mode, BENCH_IN_FLIGHT invokes
// outstanding). "Drained" is Berth's own record: no message left in the function's internal queue
// `fn:background` (the orchestrator polls the SQLite database read-only, as bench/queue.ts does).
// Both handlers append their start and end to a file on CLOCK_MONOTONIC, from which the report
// counts how many invocations ran at once (a check that the limits hold) and whether every event
// ran exactly once; the invocation records give failures and retries.
//
// Every server, load generator and producer is a separate child process; a scenario that fails
// becomes an error row.
//
// Run: npm run bench:noisy-neighbor   (env: BENCH_RATE requests/s, default 200; BENCH_EVENTS,
//   20000; BENCH_PHASE_SECONDS before and after, 10; BENCH_BG_MS, 15; BENCH_API_CPU_MS, 1;
//   BENCH_API_WAIT_MS, 2; BENCH_IN_FLIGHT, 50; BENCH_DRAIN_TIMEOUT seconds, 150 or 3× the expected drain;
//   BENCH_ACCOUNT account.concurrency, 8; BENCH_RESERVED the api's reservedConcurrency, 3;
//   BENCH_SCENARIOS=protected,shared[,unlimited]; BENCH_TIMELINE=1 also prints each scenario
//   second by second: api latency, backlog, Berth's processes and CPU)
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { descendants, lastError, repoRoot, runClient, spawnIpc, startServer, stopServer, tempDir, treeCpuMs } from './children.js';
import type { ClientJob } from './queue-client.js';
import { clock } from './queue-common.js';
import type { FromLoad, LoadJob, LoadResult, ToLoad } from './noisy-neighbor-load.js';
import { attempt, met, ms, positive, table, times } from './report.js';
import { percentile } from './stats.js';

const RATE = positive('BENCH_RATE', 200);
const EVENTS = Math.round(positive('BENCH_EVENTS', 20_000));
const PHASE_SECONDS = positive('BENCH_PHASE_SECONDS', 10);
/**
 * 15 ms: long enough that the burst holds the account's slots for a minute (20,000 × 15 ms over
 * 5 slots), short enough that both scenarios fit in about three minutes.
 */
const BG_MS = positive('BENCH_BG_MS', 15);
const API_CPU_MS = positive('BENCH_API_CPU_MS', 1);
const API_WAIT_MS = positive('BENCH_API_WAIT_MS', 2);
const IN_FLIGHT = Math.round(positive('BENCH_IN_FLIGHT', 50));
const SCENARIOS = ['protected', 'shared', 'unlimited'] as const;
type Scenario = (typeof SCENARIOS)[number];
const RUN: Scenario[] = (process.env.BENCH_SCENARIOS ?? 'protected,shared').split(',').map((s) => {
  const name = s.trim();
  if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`BENCH_SCENARIOS: unknown scenario "${name}"; use ${SCENARIOS.join(', ')}`);
  return name as Scenario;
});

/** berth.yml's limits, the same in every scenario that has them. */
const ACCOUNT_CONCURRENCY = Math.round(positive('BENCH_ACCOUNT', 8));
const SYNC_WAIT = '1s';
const API_RESERVED = Math.round(positive('BENCH_RESERVED', 3));
if (API_RESERVED >= ACCOUNT_CONCURRENCY) throw new Error(`BENCH_RESERVED (${API_RESERVED}) must be below BENCH_ACCOUNT (${ACCOUNT_CONCURRENCY})`);
const BG_CONCURRENCY = 20;
/** By default three times what the burst needs at the background's share of the account, and at least 150 s. */
const DRAIN_TIMEOUT_MS =
  positive('BENCH_DRAIN_TIMEOUT', Math.max(150, Math.ceil((3 * EVENTS * BG_MS) / (ACCOUNT_CONCURRENCY - API_RESERVED) / 1000))) * 1000;
/**
 * Load before `before` starts, discarded: JIT, sockets, the api's environments. The first
 * RAMP_SECONDS of it rise from 0 to BENCH_RATE: full load on a cold function makes the pool
 * start an environment per waiting request, and on two cores those starts take seconds to settle.
 */
const WARMUP_SECONDS = 6;
const RAMP_SECONDS = 3;
/** Background events run before the load starts, so its environments exist before the burst, as they would in production. */
const WARMUP_EVENTS = 200;
const POLL_MS = 10;
/** Keep-alive connections of the load generator: enough that a due request never waits for one at 200 req/s. */
const LOAD_SOCKETS = 256;
const REQUEST_TIMEOUT_MS = 10_000;
const TARGET_P99_RATIO = 1.5;
const TIMELINE = process.env.BENCH_TIMELINE === '1';
const CORES = os.availableParallelism();

const apiFile = path.join(repoRoot, 'bench/fixtures/noisy-api.mjs');
const bgFile = path.join(repoRoot, 'bench/fixtures/noisy-background.mjs');

// ---- Berth project per scenario -----------------------------------------------------------------

function berthConfig(scenario: Scenario, spanFile: string): string {
  const account = scenario === 'unlimited' ? [] : ['account:', `  concurrency: ${ACCOUNT_CONCURRENCY}`, `  syncWait: ${SYNC_WAIT}`];
  return [
    ...account,
    'functions:',
    '  api:',
    '    handler: api.handler',
    '    isolation: warm',
    ...(scenario === 'protected' ? [`    reservedConcurrency: ${API_RESERVED}`] : []),
    '    environment:',
    `      API_CPU_MS: ${API_CPU_MS}`,
    `      API_WAIT_MS: ${API_WAIT_MS}`,
    `      BENCH_SPAN_FILE: ${JSON.stringify(spanFile)}`,
    '    events:',
    '      - http: GET /lead/{id}',
    '  background:',
    '    handler: bg.handler',
    '    isolation: warm',
    '    async:',
    `      concurrency: ${BG_CONCURRENCY}`,
    '    environment:',
    `      BG_MS: ${BG_MS}`,
    `      BENCH_SPAN_FILE: ${JSON.stringify(spanFile)}`,
    '',
  ].join('\n');
}

function project(scenario: Scenario): { args: string[]; env: Record<string, string>; data: string; spanFile: string } {
  const root = tempDir(`berth-bench-noisy-${scenario}-`);
  const dir = path.join(root, 'project');
  const data = path.join(root, 'data');
  const home = path.join(root, 'home');
  for (const d of [dir, data, home]) mkdirSync(d);
  cpSync(apiFile, path.join(dir, 'api.mjs'));
  cpSync(bgFile, path.join(dir, 'bg.mjs'));
  const spanFile = path.join(root, 'spans');
  writeFileSync(path.join(dir, 'berth.yml'), berthConfig(scenario, spanFile));
  return { args: [path.join(repoRoot, 'bin/berth'), 'start', dir, '--port', '0', '--data', data], env: { BERTH_HOME: home }, data, spanFile };
}

// ---- child processes: the load generator and the burst's producer -------------------------------

interface LoadProcess {
  startedAt: number;
  /** Stops scheduling requests; resolves once the outstanding ones have answered (or given up). */
  stop(): Promise<LoadResult>;
}

function startLoad(job: LoadJob): Promise<LoadProcess> {
  const { child, stderr } = spawnIpc('noisy-neighbor-load.js', job);
  let settle!: { resolve: (r: LoadResult) => void; reject: (e: Error) => void };
  const result = new Promise<LoadResult>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => {}); // awaited through stop(); this only keeps an early failure from going unhandled
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      clearTimeout(timer);
      settle.reject(error);
      reject(error);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error('load generator not started after 30 s'));
    }, 30_000);
    child.on('message', (message: FromLoad) => {
      if (message.t === 'started') {
        clearTimeout(timer);
        resolve({
          startedAt: message.at,
          stop: () => {
            if (child.connected) child.send({ t: 'stop' } satisfies ToLoad);
            const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
            return result.finally(() => clearTimeout(killer));
          },
        });
      } else if (message.t === 'result') settle.resolve(message.result);
      else fail(new Error(`load generator: ${message.message}`));
    });
    child.once('exit', (code, signal) => fail(new Error(`load generator exited (${code ?? signal}): ${lastError(stderr())}`)));
  });
}

// ---- what the handlers wrote ---------------------------------------------------------------------

interface Spans {
  /** Most invocations whose handlers ran at the same moment: api, background, both. */
  peakApi: number;
  peakBg: number;
  peakAll: number;
  /** Burst events (n ≥ 0) run, counting repeats, and how many distinct ones. */
  bgRuns: number;
  bgDistinct: number;
  /** Each api handler's [start, end], for the timeline. */
  api: Array<[number, number]>;
}

function readSpans(file: string): Spans {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const edges: Array<[number, number, 'api' | 'bg']> = [];
  const seen = new Set<number>();
  const apiSpans: Array<[number, number]> = [];
  let bgRuns = 0;
  for (const line of text.split('\n')) {
    const api = /^api (\S+) (\S+)$/.exec(line);
    const bg = /^bg (-?\d+) (\S+) (\S+)$/.exec(line);
    const [fn, start, end] = api ? (['api', api[1], api[2]] as const) : bg ? (['bg', bg[2], bg[3]] as const) : [];
    if (!fn) continue;
    edges.push([Number(start), 1, fn], [Number(end), -1, fn]);
    if (api) apiSpans.push([Number(start), Number(end)]);
    if (bg && Number(bg[1]) >= 0) {
      bgRuns++;
      seen.add(Number(bg[1]));
    }
  }
  // At the same instant an end comes before a start: one slot handed straight on is not two.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const running = { api: 0, bg: 0 };
  let peakApi = 0;
  let peakBg = 0;
  let peakAll = 0;
  for (const [, delta, fn] of edges) {
    running[fn] += delta;
    peakApi = Math.max(peakApi, running.api);
    peakBg = Math.max(peakBg, running.bg);
    peakAll = Math.max(peakAll, running.api + running.bg);
  }
  return { peakApi, peakBg, peakAll, bgRuns, bgDistinct: seen.size, api: apiSpans };
}

// ---- second by second ------------------------------------------------------------------------------

/** One sample a second of what Berth is doing, for BENCH_TIMELINE. */
interface Tick {
  at: number;
  /** Events waiting or running in `fn:background`. */
  backlog: number;
  /** Processes below the server (sandboxes), and CPU ms so far: the server process alone, and with them. */
  processes: number;
  gatewayCpuMs: number;
  treeCpuMs: number;
  /** CPU ms the whole machine has spent busy: what else runs shows as the difference. */
  machineCpuMs: number;
}

/** Busy CPU ms of the whole machine (all cores) since boot, from /proc/stat. */
function machineCpuMs(): number {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    return (total - fields[3]! - (fields[4] ?? 0)) * 10; // minus idle and iowait
  } catch {
    return NaN;
  }
}

/** CPU ms (user + system) of one process, without its children. Linux /proc, USER_HZ = 100. */
function ownCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** Per second of the run: the api's requests by scheduled time, and what Berth was doing. */
function timeline(load: LoadResult, spans: Spans, ticks: Tick[], from: number, marks: Array<[number, string]>): string {
  const rows: string[][] = [];
  const end = Math.max(ticks.at(-1)?.at ?? from, load.scheduled.at(-1) ?? from);
  for (let t = from, i = 0; t < end && i < 600; t += 1000, i++) {
    const latencies: number[] = [];
    let failed = 0;
    load.scheduled.forEach((at, k) => {
      if (at < t || at >= t + 1000) return;
      latencies.push(load.latency[k]!);
      if (load.status[k]! < 200 || load.status[k]! >= 300) failed++;
    });
    latencies.sort((a, b) => a - b);
    const handler = spans.api.filter(([start]) => start >= t && start < t + 1000).map(([start, end]) => end - start);
    handler.sort((a, b) => a - b);
    const tick = ticks.find((x) => x.at >= t + 1000) ?? ticks.at(-1);
    const prev = [...ticks].reverse().find((x) => x.at <= t) ?? ticks[0];
    const span = tick && prev && tick.at > prev.at ? tick.at - prev.at : NaN;
    const pct = (a: number, b: number) => (Number.isFinite(span) ? `${((100 * (a - b)) / span).toFixed(0)} %` : '');
    rows.push([
      String(i),
      marks.filter(([at]) => at >= t && at < t + 1000).map(([, name]) => name).join(', '),
      String(latencies.length),
      ms(percentile(latencies, 0.5)),
      ms(percentile(latencies, 0.99)),
      String(failed),
      handler.length > 0 ? `${ms(percentile(handler, 0.5))}, ${ms(handler.at(-1)!)}` : '',
      tick ? String(tick.backlog) : '',
      tick ? String(tick.processes) : '',
      tick && prev ? pct(tick.gatewayCpuMs, prev.gatewayCpuMs) : '',
      tick && prev ? pct(tick.treeCpuMs, prev.treeCpuMs) : '',
      tick && prev ? pct(tick.machineCpuMs, prev.machineCpuMs) : '',
    ]);
  }
  return table(['s', 'event', 'api requests', 'p50 ms', 'p99 ms', 'failed', 'api handler p50, max ms', 'backlog at end', 'sandboxes', 'gateway CPU', 'Berth CPU', `machine CPU (${CORES} cores)`], rows);
}

// ---- one scenario --------------------------------------------------------------------------------

interface PhaseStats {
  seconds: number;
  requests: number;
  p50: number;
  p99: number;
  max: number;
  /** Answers other than 2xx (429s included), 429s alone, and requests with no answer at all. */
  non2xx: number;
  tooMany: number;
  noAnswer: number;
}

/** Every request scheduled in [from, to), whatever its answer: the user waited that long either way. */
function phaseStats(load: LoadResult, from: number, to: number): PhaseStats {
  const latencies: number[] = [];
  let non2xx = 0;
  let tooMany = 0;
  let noAnswer = 0;
  load.scheduled.forEach((at, i) => {
    if (at < from || at >= to) return;
    latencies.push(load.latency[i]!);
    const status = load.status[i]!;
    if (status === 0) noAnswer++;
    else if (status < 200 || status >= 300) {
      non2xx++;
      if (status === 429) tooMany++;
    }
  });
  latencies.sort((a, b) => a - b);
  return {
    seconds: (to - from) / 1000,
    requests: latencies.length,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies.at(-1) ?? NaN,
    non2xx,
    tooMany,
    noAnswer,
  };
}

interface Outcome {
  phases: { before: PhaseStats; during: PhaseStats; enqueue: PhaseStats; drain: PhaseStats; after: PhaseStats };
  burst: {
    sent: number;
    failed: number;
    firstError?: string;
    /** First enqueue call → last 202, and → queue empty (s); undefined when it never emptied. */
    enqueueSeconds: number;
    drainSeconds: number | undefined;
    /** Events waiting when the last one was acknowledged, and left at the drain timeout. */
    backlog: number;
    left: number;
  };
  spans: Spans;
  /** From Berth's invocation records. */
  records: { bgFailed: number; bgRetried: number; apiFailed: number };
  loadBehindMs: number;
  loadError?: string;
  /** Average cores busy from the load's start to the end of `after`: Berth, the benchmark's processes, everything else. */
  cpu: { berth: number; bench: number; others: number };
  /** BENCH_TIMELINE: the run second by second, from the load's start. */
  timeline?: string;
}

async function scenario(kind: Scenario): Promise<Outcome> {
  const setup = project(kind);
  const server = await startServer(setup.args, setup.env);
  let db: Database.Database | undefined;
  let load: LoadProcess | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    // Read-only, beside the running server: WAL lets a reader in without blocking its writes.
    db = new Database(path.join(setup.data, 'berth.db'), { readonly: true, fileMustExist: true, timeout: 5000 });
    const queue = 'fn:background';
    const waiting = db.prepare('SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?)').pluck();
    const count = db.prepare('SELECT COUNT(*) FROM messages WHERE queue = ?').pluck();
    const untilEmpty = async (deadline: number): Promise<number | undefined> => {
      while (waiting.get(queue) !== 0) {
        if (clock() > deadline) return undefined;
        await sleep(POLL_MS);
      }
      return clock();
    };
    const ticks: Tick[] = [];
    const pid = server.child.pid!;
    const sample = () =>
      ticks.push({ at: clock(), backlog: count.get(queue) as number, processes: descendants(pid).length, gatewayCpuMs: ownCpuMs(pid), treeCpuMs: treeCpuMs(pid), machineCpuMs: machineCpuMs() });
    if (TIMELINE) sampler = setInterval(sample, 1000);
    const burst = (n: number, firstN: number): ClientJob => ({
      mode: 'burst',
      target: { kind: 'berth-event', url: server.url, fn: 'background' },
      count: n,
      inFlight: IN_FLIGHT,
      batch: 1,
      firstN,
      stamp: false,
    });

    const warm = await runClient(burst(WARMUP_EVENTS, -WARMUP_EVENTS), 60_000, () => {});
    if (warm.sent === 0) throw new Error(`every warm-up event failed: ${warm.firstError}`);
    if ((await untilEmpty(clock() + 60_000)) === undefined) throw new Error(`${WARMUP_EVENTS} warm-up events not drained after 60 s`);
    load = await startLoad({ url: server.url, path: '/lead/', rate: RATE, rampSeconds: RAMP_SECONDS, sockets: LOAD_SOCKETS, timeoutMs: REQUEST_TIMEOUT_MS });
    const cpuAtStart = { at: clock(), machine: machineCpuMs(), berth: treeCpuMs(pid), self: process.cpuUsage() };
    await sleep(Math.max(0, load.startedAt + WARMUP_SECONDS * 1000 - clock()));

    const beforeStart = clock();
    await sleep(PHASE_SECONDS * 1000);
    const spawnedAt = clock();
    let sentAt = 0;
    let backlog = 0;
    const produced = await runClient(burst(EVENTS, 0), DRAIN_TIMEOUT_MS, () => {
      sentAt = clock();
      backlog = count.get(queue) as number;
    });
    if (produced.sent === 0) throw new Error(`every event of the burst failed: ${produced.firstError}`);
    const drainedAt = await untilEmpty(produced.startedAt + DRAIN_TIMEOUT_MS);
    const drainEnd = drainedAt ?? clock();
    const left = drainedAt === undefined ? (count.get(queue) as number) : 0;
    await sleep(PHASE_SECONDS * 1000);
    const afterEnd = clock();
    const machineEnd = machineCpuMs();
    const berthEnd = treeCpuMs(pid);
    const self = process.cpuUsage(cpuAtStart.self);
    const samples = await load.stop();
    load = undefined;
    clearInterval(sampler);
    sampler = undefined;
    // What else ran meanwhile: the machine's busy time minus Berth's and the benchmark's own
    // processes' (the load generator's covers a little more than this window, so this errs low).
    const windowMs = afterEnd - cpuAtStart.at;
    const berthCpu = berthEnd - cpuAtStart.berth;
    const benchCpu = samples.cpuMs + produced.cpuMs + (self.user + self.system) / 1000;
    const cpu = { berth: berthCpu / windowMs, bench: benchCpu / windowMs, others: Math.max(0, machineEnd - cpuAtStart.machine - berthCpu - benchCpu) / windowMs };
    await sleep(200); // the recorder writes invocation records in batches every 25 ms

    const spans = readSpans(setup.spanFile);
    const records = { bgFailed: 0, bgRetried: 0, apiFailed: 0 };
    const rows = db
      .prepare("SELECT function_name AS fn, status, COUNT(*) AS n, SUM(attempt > 1) AS retried FROM invocations GROUP BY function_name, status")
      .all() as Array<{ fn: string; status: string; n: number; retried: number }>;
    for (const row of rows) {
      if (row.fn === 'background') {
        if (row.status !== 'succeeded') records.bgFailed += row.n;
        records.bgRetried += row.retried;
      } else if (row.fn === 'api' && row.status !== 'succeeded') records.apiFailed += row.n;
    }

    return {
      phases: {
        before: phaseStats(samples, beforeStart, spawnedAt),
        during: phaseStats(samples, produced.startedAt, drainEnd),
        enqueue: phaseStats(samples, produced.startedAt, sentAt || produced.sentDoneAt),
        drain: phaseStats(samples, sentAt || produced.sentDoneAt, drainEnd),
        after: phaseStats(samples, drainEnd, afterEnd),
      },
      burst: {
        sent: produced.sent,
        failed: produced.failed,
        ...(produced.firstError ? { firstError: produced.firstError } : {}),
        enqueueSeconds: (produced.sentDoneAt - produced.startedAt) / 1000,
        drainSeconds: drainedAt === undefined ? undefined : (drainedAt - produced.startedAt) / 1000,
        backlog,
        left,
      },
      spans,
      records,
      cpu,
      loadBehindMs: samples.maxBehindMs,
      ...(samples.firstError ? { loadError: samples.firstError } : {}),
      ...(TIMELINE && {
        timeline: timeline(samples, spans, ticks, samples.scheduled[0] ?? beforeStart, [
          [beforeStart, 'before'],
          [spawnedAt, 'producer starts'],
          [produced.startedAt, 'first invoke'],
          [produced.sentDoneAt, 'last 202'],
          [drainEnd, drainedAt === undefined ? 'drain timeout' : 'drained'],
        ]),
      }),
    };
  } finally {
    clearInterval(sampler);
    if (load) await load.stop().catch(() => {});
    db?.close();
    await stopServer(server.child);
  }
}

// ---- main ------------------------------------------------------------------------------------------

// Hard stop: every step has its own timeout, this catches anything that still hangs.
const budgetMs = RUN.length * (WARMUP_SECONDS + 2 * PHASE_SECONDS + DRAIN_TIMEOUT_MS / 1000 + 150) * 1000;
setTimeout(() => {
  console.error(`bench:noisy-neighbor: watchdog fired after ${budgetMs / 1000} s, killing children`);
  process.exit(1);
}, budgetMs).unref();

const drainEstimate = (slots: number) => (EVENTS * BG_MS) / slots / 1000;
console.log(
  `bench:noisy-neighbor: api ${RATE} req/s open loop (${API_CPU_MS} ms CPU + ${API_WAIT_MS} ms wait), burst of ${EVENTS} events ` +
    `(${BG_MS} ms each, ${IN_FLIGHT} invokes in flight), ${PHASE_SECONDS} s before and after, ${CORES} cores; ` +
    `scenarios ${RUN.join(', ')} (protected drains in ≥ ${drainEstimate(ACCOUNT_CONCURRENCY - API_RESERVED).toFixed(0)} s at ${ACCOUNT_CONCURRENCY - API_RESERVED} slots)`,
);

const labels: Record<Scenario, string> = {
  protected: `protected: account ${ACCOUNT_CONCURRENCY}, api reserved ${API_RESERVED}`,
  shared: `shared: account ${ACCOUNT_CONCURRENCY}, no reservation`,
  unlimited: 'unlimited: no account limit',
};
const outcomes = new Map<Scenario, Outcome | Error>();
for (const kind of RUN) {
  const outcome = await attempt(labels[kind], () => scenario(kind));
  outcomes.set(kind, outcome);
  if (!(outcome instanceof Error) && outcome.timeline) console.log(`\n${labels[kind]}, second by second:\n${outcome.timeline}\n`);
}

// ---- report ------------------------------------------------------------------------------------------

const ratio = (o: Outcome) => o.phases.during.p99 / o.phases.before.p99;
const userFailures = (o: Outcome) => {
  const all = [o.phases.before, o.phases.during, o.phases.after];
  return { tooMany: all.reduce((s, p) => s + p.tooMany, 0), other: all.reduce((s, p) => s + p.non2xx - p.tooMany + p.noAnswer, 0) };
};
const drainedFully = (o: Outcome) => o.burst.drainSeconds !== undefined && o.burst.failed === 0 && o.spans.bgDistinct === EVENTS && o.records.bgFailed === 0;

const phaseRows: string[][] = [];
for (const [kind, o] of outcomes) {
  if (o instanceof Error) {
    phaseRows.push([labels[kind], `error: ${o.message}`, '', '', '', '', '', '', '']);
    continue;
  }
  const named: Array<[string, PhaseStats]> = [
    ['before', o.phases.before],
    ['during burst', o.phases.during],
    ['  enqueue', o.phases.enqueue],
    ['  drain', o.phases.drain],
    ['after', o.phases.after],
  ];
  named.forEach(([name, p], i) =>
    phaseRows.push([
      i === 0 ? labels[kind] : '',
      name,
      p.seconds.toFixed(1),
      String(p.requests),
      ms(p.p50),
      ms(p.p99),
      ms(p.max),
      String(p.non2xx + p.noAnswer),
      String(p.tooMany),
    ]),
  );
}
const phaseTable = table(['Scenario', 'Phase', 's', 'requests', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx + no answer', '429'], phaseRows);

const target = `0 429s/errors, p99 during ≤${TARGET_P99_RATIO}× before, drained`;
const burstTable = table(
  [
    'Scenario',
    'events sent (failed)',
    'enqueue s',
    'backlog at last 202',
    'drain s',
    'events ran (repeats)',
    'bg failed / retried',
    'peak running api, bg, all',
    'p99 during ÷ before',
    '429s, other failures',
    'Target',
    'Met?',
  ],
  [...outcomes].map(([kind, o]) => {
    const isTarget = kind === 'protected';
    if (o instanceof Error) return [labels[kind], `error: ${o.message}`, '', '', '', '', '', '', '', '', isTarget ? target : '', isTarget ? 'n/a' : ''];
    const f = userFailures(o);
    const missed = [
      f.tooMany + f.other > 0 && `${f.tooMany + f.other} failed`,
      ratio(o) > TARGET_P99_RATIO && `p99 ${times(ratio(o))}`,
      !drainedFully(o) && 'not drained',
    ].filter(Boolean);
    return [
      labels[kind],
      `${o.burst.sent} (${o.burst.failed}${o.burst.firstError ? `: ${o.burst.firstError}` : ''})`.slice(0, 80),
      o.burst.enqueueSeconds.toFixed(1),
      String(o.burst.backlog),
      o.burst.drainSeconds === undefined ? `not drained: ${o.burst.left} left after ${DRAIN_TIMEOUT_MS / 1000} s` : o.burst.drainSeconds.toFixed(1),
      `${o.spans.bgDistinct} (${o.spans.bgRuns - o.spans.bgDistinct})`,
      `${o.records.bgFailed} / ${o.records.bgRetried}`,
      `${o.spans.peakApi}, ${o.spans.peakBg}, ${o.spans.peakAll}`,
      times(ratio(o)),
      `${f.tooMany}, ${f.other}`,
      isTarget ? target : '',
      isTarget ? (missed.length === 0 ? met(true) : `${met(false)} (${missed.join(', ')})`) : '',
    ];
  }),
);

// The limits themselves, read off the handlers' own spans: a handler runs inside its slot, so more
// running at once than the limit allows means the limit leaked.
const limitRows: string[][] = [];
for (const [kind, o] of outcomes) {
  if (o instanceof Error || kind === 'unlimited') continue;
  const checks: Array<[string, number, number]> = [[`all functions ≤ account.concurrency`, o.spans.peakAll, ACCOUNT_CONCURRENCY]];
  if (kind === 'protected') {
    checks.push(['api ≤ reservedConcurrency', o.spans.peakApi, API_RESERVED]);
    checks.push(['background ≤ account − reserved', o.spans.peakBg, ACCOUNT_CONCURRENCY - API_RESERVED]);
  }
  for (const [what, peak, limit] of checks) limitRows.push([labels[kind], what, String(peak), String(limit), met(peak <= limit)]);
}
const limitTable = limitRows.length > 0 ? table(['Scenario', 'Handlers running at once', 'peak', 'limit', 'held?'], limitRows) : '';

const notes = [...outcomes]
  .filter((entry): entry is [Scenario, Outcome] => !(entry[1] instanceof Error))
  .map(([kind, o]) => {
    const bits = [
      `cores busy on average: Berth ${o.cpu.berth.toFixed(2)}, load generator + producer + orchestrator ${o.cpu.bench.toFixed(2)}, ` +
        `other processes ${o.cpu.others.toFixed(2)}${o.cpu.others > 0.2 ? ' (the machine was shared: these figures are disturbed)' : ''}`,
      `load generator late by ≤ ${ms(o.loadBehindMs)} ms`,
    ];
    if (o.loadError) bits.push(`first failed request: ${o.loadError.slice(0, 200)}`);
    if (o.records.apiFailed > 0) bits.push(`${o.records.apiFailed} api invocations recorded as failed`);
    return `- ${labels[kind]}: ${bits.join('; ')}.`;
  })
  .join('\n');

const date = new Date().toISOString().slice(0, 10);
const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
console.log(`
----- paste into docs/benchmarks.md -----
## Noisy neighbour (bench:noisy-neighbor)

Measured ${date} with \`npm run bench:noisy-neighbor\`: Node ${process.version}, ${cpu}, ${CORES} cores.
- api: GET /lead/{id}, isolation warm, ${API_CPU_MS} ms CPU + ${API_WAIT_MS} ms wait per request; ${RATE} req/s open loop
  (latency from each request's scheduled time, keep-alive node:http, its own process).
- background: ${EVENTS} async events (Invoke API, Event) sent as fast as ${IN_FLIGHT} in flight allow, each waiting
  ${BG_MS} ms; async.concurrency ${BG_CONCURRENCY}.
- account.concurrency ${ACCOUNT_CONCURRENCY}, syncWait ${SYNC_WAIT}; protected adds reservedConcurrency ${API_RESERVED} on api.
- Phases: ${PHASE_SECONDS} s before the burst (after ${WARMUP_SECONDS} s warm-up, the first ${RAMP_SECONDS} s ramping up), during (first invoke → queue empty;
  enqueue = until the last 202), ${PHASE_SECONDS} s after. Latencies in ms over every request of the phase, whatever its answer.

${phaseTable}

${burstTable}
${limitTable ? `\n${limitTable}\n` : ''}
${notes}
-----------------------------------------`);

process.exitCode = [...outcomes.values()].some((o) => o instanceof Error) ? 1 : 0;
