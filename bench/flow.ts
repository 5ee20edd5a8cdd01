// Flow benchmark (seed 000): an integration platform's 6-step integration — pull an XML file,
// run the customer's own JavaScript on it, post the result to a third-party API with stored
// credentials — took a minute on Lambda with SQS between the steps and under 2 s on ECS with a
// Redis queue. This runs the same integration as a Berth flow and as BullMQ jobs, side by side,
// in one run:
//   integration  BENCH_RUNS runs at each of BENCH_CONCURRENCY runs in flight (closed loop):
//                fetch (http step, a stand-in file server) → transform (code step: customer
//                code, isolated per tenant, the flow's tenant taken from its input) → validate,
//                map (code steps) → enrich (a warm platform function) → post (http step with a
//                literal bearer token, a stand-in API that checks it). The fixture is
//                bench/fixtures/flow (berth.yml and the modules).
//                Berth: POST /_berth/flows/integration/runs?wait=true, answered when the run has
//                finished with its record: client latency, and Berth's own createdAt→finishedAt
//                and every step's timings.
//                BullMQ, two ways a team would build it, one worker process doing the same work
//                in-process (bench/flow-worker.ts: same fetch, the very same modules, same post):
//                chained jobs (each step's processor adds the next step's job) and FlowProducer
//                (the run as a nested flow of six jobs, children first). Client latency: add →
//                QueueEvents 'completed' of the run's post job.
//   overhead     per-step cost two ways: no-op code steps, (p50 of a 6-step run − p50 of a
//                1-step run) / 5; and from the integration's run records, (run − time inside its
//                steps) / 6. Record timestamps are whole milliseconds (Date.now()), hence means.
//   loop         one run over BENCH_LOOP_FILES files the file server lists, forEach with
//                concurrency 10, each item fetch → transform (code step) → post; total time.
// Every post is counted by the stand-in API: a competitor whose posts do not match its runs, or
// that posted different bodies for the same order than Berth did, is reported so.
//
// Durability is not the same and is printed with the figures: Berth commits every step's result
// to SQLite (WAL, synchronous=NORMAL) before the next step starts; BullMQ runs on the local Redis
// as configured (here: no persistence), and with BENCH_AOF not 0 again with appendonly yes /
// appendfsync everysec, set with CONFIG SET and restored afterwards.
//
// Every server, worker, stand-in and client is a separate child process, killed at the end even
// on error; a competitor that fails becomes an error row. BullMQ keys live under a prefix unique
// to the run and are removed.
//
// Run: npm run bench:flow   (env: BENCH_RUNS per measurement, default 1000; BENCH_CONCURRENCY,
//   "1,16"; BENCH_WARMUP_RUNS, 200; BENCH_NOOP_RUNS, 500; BENCH_LOOP_FILES, 500;
//   BENCH_LOOP_REPEATS, 3; BENCH_XML_LINES order lines per file, 20; BENCH_WORKER_CONCURRENCY,
//   the highest BENCH_CONCURRENCY; BENCH_REDIS host:port, 127.0.0.1:6379; BENCH_AOF=0 skips the
//   AOF rows; BENCH_ONLY=berth,noop,loop,chain,flow,aof runs only those parts)
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { lastError, repoRoot, spawnIpc, startServer, stopServer, tempDir, treeCpuMs } from './children.js';
import type { FlowClientJob, FlowClientResult, FromFlowClient } from './flow-client.js';
import { STEPS, TOKEN, type StandInStats } from './flow-common.js';
import type { FromStandIns, StandInJob } from './flow-stand-ins.js';
import type { FlowWorkerJob, FromFlowWorker, ToFlowWorker } from './flow-worker.js';
import type { RedisAddress, RedisClient } from './queue-common.js';
import { closeRedisAdmin, configGet, redisAdmin, withAof } from './redis-admin.js';
import { attempt, met, ms, positive, table, times } from './report.js';
import { percentile } from './stats.js';

const RUNS = Math.round(positive('BENCH_RUNS', 1000));
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16').split(',').map((s) => {
  const c = Number(s.trim());
  if (!Number.isInteger(c) || c < 1) throw new Error(`BENCH_CONCURRENCY: "${s}" is not a whole number ≥ 1`);
  return c;
});
const WARMUP_RUNS = Math.round(positive('BENCH_WARMUP_RUNS', 200));
const NOOP_RUNS = Math.round(positive('BENCH_NOOP_RUNS', 500));
const LOOP_FILES = Math.round(positive('BENCH_LOOP_FILES', 500));
const LOOP_REPEATS = Math.round(positive('BENCH_LOOP_REPEATS', 3));
const XML_LINES = Math.round(positive('BENCH_XML_LINES', 20));
const WORKER_CONCURRENCY = Math.round(positive('BENCH_WORKER_CONCURRENCY', Math.max(...CONCURRENCY)));
const WITH_AOF = process.env.BENCH_AOF !== '0';
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined;
const REDIS: RedisAddress = (() => {
  const [host = '127.0.0.1', port = '6379'] = (process.env.BENCH_REDIS ?? '127.0.0.1:6379').split(':');
  return { host, port: Number(port) };
})();
/** Different orders the runs pull, round robin. */
const FILES = 50;
const CUSTOMER = 'acme';
const LOOP_CONCURRENCY = 10; // the fixture's forEach concurrency
const CORES = os.availableParallelism();
const fixtureDir = path.join(repoRoot, 'bench/fixtures/flow');

/** Each fixture flow's top-level steps, in order (bench/fixtures/flow/berth.yml). */
const FLOW_STEPS: Record<string, string[]> = {
  integration: [...STEPS],
  files: ['list', 'each'],
  noop1: ['s1'],
  noop6: ['s1', 's2', 's3', 's4', 's5', 's6'],
};
const LOOP_ITEM_STEPS = ['fetch', 'transform', 'post'] as const;

/** The targets. */
const TARGET = { p50: 10, p99: 50, perStep: 1, ratio: 3, loopSeconds: 2 };

const budgetMs = 15 * 60_000;
setTimeout(() => {
  console.error(`bench:flow: watchdog fired after ${budgetMs / 1000} s, killing children`);
  process.exit(1);
}, budgetMs).unref();

// ---- child processes ------------------------------------------------------------------------

/** A child with an IPC channel, resolved with its first message when that says it is ready. */
function startIpcChild<R>(script: string, job: unknown, what: string, ready: (m: unknown) => R | undefined): Promise<{ value: R; pid: number; stop: () => Promise<void> }> {
  const { child, stderr } = spawnIpc(script, job);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} not ready after 30 s`));
    }, 30_000);
    let started = false;
    child.on('message', (message: { t: string; message?: string }) => {
      const value = ready(message);
      if (value !== undefined && !started) {
        started = true;
        clearTimeout(timer);
        resolve({
          value,
          pid: child.pid!,
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) {
              if (child.connected) child.send({ t: 'stop' } satisfies ToFlowWorker);
              await Promise.race([exited, sleep(10_000)]);
            }
            child.kill('SIGKILL');
          },
        });
      } else if (message.t === 'error') {
        clearTimeout(timer);
        console.log(`  ${what}: ${message.message}`); // after ready, nothing waits to be rejected
        reject(new Error(`${what}: ${message.message}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal}): ${lastError(stderr())}`));
    });
  });
}

/** Runs one client process to the end. */
function runClient(job: FlowClientJob, timeoutMs: number): Promise<FlowClientResult> {
  const { child, stderr } = spawnIpc('flow-client.js', job);
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('message', (message: FromFlowClient) => {
      settled = true;
      if (message.t === 'result') resolve(message.result);
      else reject(new Error(`client: ${message.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!settled) reject(new Error(signal === 'SIGKILL' ? `client timed out after ${timeoutMs / 1000} s` : `client exited (${code ?? signal}): ${lastError(stderr())}`));
    });
  });
}

// ---- the stand-ins ----------------------------------------------------------------------------

interface StandIns {
  filesUrl: string;
  apiUrl: string;
  pid: number;
  stop: () => Promise<void>;
}

async function startStandIns(): Promise<StandIns> {
  const { value, pid, stop } = await startIpcChild('flow-stand-ins.js', { token: TOKEN, lines: XML_LINES } satisfies StandInJob, 'stand-ins', (m) =>
    (m as FromStandIns).t === 'ready' ? (m as Extract<FromStandIns, { t: 'ready' }>) : undefined,
  );
  return { filesUrl: value.filesUrl, apiUrl: value.apiUrl, pid, stop };
}

async function stats(standIns: StandIns, samples = false): Promise<StandInStats> {
  return (await (await fetch(`${standIns.apiUrl}/_stats${samples ? '?samples=1' : ''}`)).json()) as StandInStats;
}

async function resetSamples(standIns: StandIns): Promise<void> {
  await fetch(`${standIns.apiUrl}/_reset`, { method: 'POST' });
}

// ---- competitors -------------------------------------------------------------------------------

/** Where one measurement's runs go, and the CPU its platform processes have used so far. */
interface Rig {
  name: string;
  client: (c: number, runs: number, tag: string, extra?: Record<string, unknown>, flow?: string) => FlowClientJob;
  cpuMs: () => Promise<number>;
  /** Berth: the gateway process alone, without its sandboxes. */
  gatewayCpuMs?: () => number;
}

async function withBerth<T>(standIns: StandIns, body: (rig: Rig) => Promise<T>): Promise<T> {
  const root = tempDir('berth-bench-flow-');
  const project = path.join(root, 'project');
  const data = path.join(root, 'data');
  const home = path.join(root, 'home');
  cpSync(fixtureDir, project, { recursive: true });
  for (const dir of [data, home]) mkdirSync(dir);
  const yml = path.join(project, 'berth.yml');
  const config = readFileSync(yml, 'utf8').replaceAll('__FILES_URL__', standIns.filesUrl).replaceAll('__API_URL__', standIns.apiUrl);
  if (!config.includes(`Bearer ${TOKEN}`)) throw new Error(`bench/fixtures/flow/berth.yml does not send "Bearer ${TOKEN}" (bench/flow-common.ts)`);
  writeFileSync(yml, config);
  const server = await startServer([path.join(repoRoot, 'bin/berth'), 'start', project, '--port', '0', '--data', data], { BERTH_HOME: home });
  try {
    return await body({
      name: 'Berth',
      client: (concurrency, runs, tag, extra, flow = 'integration') => ({
        kind: 'berth',
        url: server.url,
        flow,
        runs,
        concurrency,
        customer: CUSTOMER,
        files: FILES,
        tag,
        ...(extra ? { extra } : {}),
        steps: FLOW_STEPS[flow] ?? [],
        ...(flow === 'files' ? { forEach: { id: 'each', steps: [...LOOP_ITEM_STEPS] } } : {}),
      }),
      cpuMs: async () => treeCpuMs(server.child.pid!),
      gatewayCpuMs: () => ownCpuMs(server.child.pid!),
    });
  } finally {
    await stopServer(server.child);
  }
}

/** Refuses at once when nothing listens at the Redis address: ioredis would retry a refused connection forever. */
async function redisRefused(): Promise<Error | undefined> {
  return (await reachable(REDIS)) ? undefined : new Error(`no Redis at ${REDIS.host}:${REDIS.port} (connection refused or timed out)`);
}

function reachable({ host, port }: RedisAddress): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Removes whatever obliterate left under the run's prefix; never touches other keys. */
async function unlinkPrefix(connection: RedisClient, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = (await connection.call('SCAN', cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)) as [string, string[]];
    if (keys.length > 0) await connection.call('UNLINK', ...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function withBullmq<T>(mode: 'chain' | 'flow', standIns: StandIns, body: (rig: Rig) => Promise<T>): Promise<T> {
  const connection = await redisAdmin(REDIS, redisRefused);
  const prefix = `berth-bench-flow-${process.pid}-${Date.now().toString(36)}`;
  const name = 'integration';
  const queue = new Queue(name, { connection: connection as never, prefix });
  try {
    await queue.waitUntilReady();
    const workerJob: FlowWorkerJob = {
      redis: REDIS,
      prefix,
      queue: name,
      mode,
      concurrency: WORKER_CONCURRENCY,
      filesUrl: standIns.filesUrl,
      apiUrl: standIns.apiUrl,
      token: TOKEN,
      fixtureDir,
    };
    const worker = await startIpcChild('flow-worker.js', workerJob, 'BullMQ worker', (m) => ((m as FromFlowWorker).t === 'ready' ? true : undefined));
    try {
      return await body({
        name: mode === 'chain' ? 'BullMQ chained jobs' : 'BullMQ FlowProducer',
        client: (concurrency, runs, tag) => ({ kind: mode === 'chain' ? 'bull-chain' : 'bull-flow', redis: REDIS, prefix, queue: name, runs, concurrency, customer: CUSTOMER, files: FILES, tag }),
        // Redis's figure counts every client of this Redis: the benchmark's and anyone else's.
        cpuMs: async () => {
          const info = String(await connection.call('INFO', 'cpu'));
          const seconds = (key: string) => Number(new RegExp(`${key}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
          return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000 + treeCpuMs(worker.pid);
        },
      });
    } finally {
      await worker.stop();
    }
  } finally {
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close().catch(() => {});
    await unlinkPrefix(connection, prefix).catch(() => {});
  }
}

// ---- measurements ------------------------------------------------------------------------------

interface Measured {
  concurrency: number;
  ok: number;
  failed: number;
  firstError?: string;
  runsPerSec: number;
  p50: number;
  p99: number;
  max: number;
  meanLatency: number;
  /** Berth's own createdAt → finishedAt, and what its records say; undefined for BullMQ. */
  own?: { p50: number; p99: number; mean: number };
  /** Mean of each segment: [start, step, gap, step, …, step, end] (see BerthRun). */
  segments?: number[];
  /** Per run, (run − time inside steps) / steps: mean and p50. */
  between?: { mean: number; p50: number };
  stepRecords?: number;
  /** With a forEach: its items' mean [step, gap, step, …] (see BerthRun). */
  itemSegments?: number[];
  /** CPU ms per run: the platform's processes (for Berth also its gateway alone), the client, the stand-ins. */
  cpu: { platform: number; gateway?: number; client: number; standIns: number };
  /** Cores other processes kept busy on average meanwhile: above ~0.2 the machine was shared. */
  othersCores: number;
  /** Posts the stand-in API accepted during the measurement, and refused for the token. */
  posts: number;
  unauthorized: number;
}

const sortedOf = (values: number[]) => [...values].sort((a, b) => a - b);
const mean = (values: number[]) => (values.length === 0 ? NaN : values.reduce((s, v) => s + v, 0) / values.length);

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

/** Busy CPU ms of the whole machine (all cores) since boot, from /proc/stat. */
function machineCpuMs(): number {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (fields.reduce((a, b) => a + b, 0) - fields[3]! - (fields[4] ?? 0)) * 10; // minus idle and iowait
  } catch {
    return NaN;
  }
}

async function measure(rig: Rig, standIns: StandIns, job: FlowClientJob): Promise<Measured> {
  const before = await stats(standIns);
  const cpuBefore = await rig.cpuMs();
  const gatewayBefore = rig.gatewayCpuMs?.();
  const standInsBefore = treeCpuMs(standIns.pid);
  const machineBefore = machineCpuMs();
  const selfBefore = process.cpuUsage();
  const t0 = Date.now();
  const r = await runClient(job, 300_000);
  const elapsed = Date.now() - t0;
  const self = process.cpuUsage(selfBefore);
  const machine = machineCpuMs() - machineBefore;
  const cpuAfter = await rig.cpuMs();
  const gatewayAfter = rig.gatewayCpuMs?.();
  const standInsAfter = treeCpuMs(standIns.pid);
  const after = await stats(standIns);
  const ours = cpuAfter - cpuBefore + (standInsAfter - standInsBefore) + r.cpuTotalMs + (self.user + self.system) / 1000;
  if (r.ok === 0) throw new Error(`every run failed (${r.failed}): ${r.firstError ?? 'no error'}`);
  const lat = sortedOf(r.latencies);
  const measured: Measured = {
    concurrency: job.concurrency,
    ok: r.ok,
    failed: r.failed,
    ...(r.firstError ? { firstError: r.firstError } : {}),
    runsPerSec: (r.ok * 1000) / (r.doneAt - r.startedAt),
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    max: lat.at(-1)!,
    meanLatency: mean(lat),
    cpu: {
      platform: (cpuAfter - cpuBefore) / r.ok,
      ...(gatewayBefore !== undefined && gatewayAfter !== undefined ? { gateway: (gatewayAfter - gatewayBefore) / r.ok } : {}),
      client: r.cpuMs / r.ok,
      standIns: (standInsAfter - standInsBefore) / r.ok,
    },
    othersCores: Math.max(0, (machine - ours) / elapsed),
    posts: after.posts - before.posts,
    unauthorized: after.unauthorized - before.unauthorized,
  };
  if (r.berth.length > 0) {
    const own = sortedOf(r.berth.map((b) => b.own));
    const width = r.berth[0]!.segments.length;
    const flat = r.berth.filter((b) => b.segments.length === width);
    const steps = (width - 1) / 2;
    // Segments at even positions are outside the steps: the start, the gaps, the end.
    const betweenPerRun = flat.map((b) => b.segments.filter((_, i) => i % 2 === 0).reduce((s, v) => s + v, 0) / steps);
    measured.own = { p50: percentile(own, 0.5), p99: percentile(own, 0.99), mean: mean(own) };
    measured.segments = Array.from({ length: width }, (_, i) => mean(flat.map((b) => b.segments[i]!)));
    measured.between = { mean: mean(betweenPerRun), p50: percentile(sortedOf(betweenPerRun), 0.5) };
    measured.stepRecords = mean(r.berth.map((b) => b.stepRecords));
    const items = r.berth.map((b) => b.itemSegments).filter((x): x is number[] => x !== undefined);
    if (items.length > 0) measured.itemSegments = items[0]!.map((_, i) => mean(items.map((x) => x[i]!)));
  }
  return measured;
}

/** How many of Berth's posted bodies the other competitor posted byte for byte. */
interface Same {
  compared: number;
  identical: number;
  firstDiff?: string;
}
function compareSamples(reference: Record<string, string> | undefined, other: Record<string, string> | undefined): Same | undefined {
  if (!reference || !other) return undefined;
  const keys = Object.keys(reference).filter((k) => k in other);
  const diff = keys.find((k) => reference[k] !== other[k]);
  return { compared: keys.length, identical: keys.filter((k) => reference[k] === other[k]).length, ...(diff ? { firstDiff: diff } : {}) };
}

interface Side {
  rows: Map<number, Measured | Error>;
  samples?: Record<string, string>;
}

/** Warm-up, then BENCH_RUNS runs of the integration at each concurrency; the bodies posted during the first are kept. */
async function integration(rig: Rig, standIns: StandIns, label: string): Promise<Side> {
  const warm = await runClient(rig.client(Math.max(...CONCURRENCY), WARMUP_RUNS, 'warm-'), 300_000);
  if (warm.ok === 0) throw new Error(`warm-up: every run failed: ${warm.firstError ?? 'no error'}`);
  const side: Side = { rows: new Map() };
  for (const [i, c] of CONCURRENCY.entries()) {
    if (i === 0) await resetSamples(standIns);
    side.rows.set(c, await attempt(`${label}: ${RUNS} runs, ${c} in flight`, () => measure(rig, standIns, rig.client(c, RUNS, `c${c}-`))));
    if (i === 0) side.samples = (await stats(standIns, true)).samples ?? {};
  }
  return side;
}

// ---- Redis persistence --------------------------------------------------------------------------

async function persistence(): Promise<{ text: string; none: boolean; version: string }> {
  const redis = await redisAdmin(REDIS, redisRefused);
  const save = await configGet(redis, 'save');
  const aof = await configGet(redis, 'appendonly');
  const fsync = await configGet(redis, 'appendfsync');
  const version = /redis_version:(\S+)/.exec(String(await redis.call('INFO', 'server')))?.[1] ?? '?';
  const rdb = save.trim() === '' ? 'no RDB snapshots (save "")' : `RDB snapshots (save "${save}")`;
  return { text: aof === 'yes' ? `appendonly yes, appendfsync ${fsync}, ${rdb}` : `appendonly no, ${rdb}`, none: aof !== 'yes' && save.trim() === '', version };
}


// ---- main ---------------------------------------------------------------------------------------

const wanted = (key: string) => !ONLY || ONLY.has(key);
const skipped = new Error('skipped (BENCH_ONLY)');
const ok = <T>(r: T | Error | undefined): T | undefined => (r === undefined || r instanceof Error ? undefined : r);

console.log(
  `bench:flow: ${RUNS} runs per measurement at ${CONCURRENCY.join(' and ')} in flight after ${WARMUP_RUNS} warm-up runs; ` +
    `no-op flows ${NOOP_RUNS} runs; loop over ${LOOP_FILES} files ×${LOOP_REPEATS}; ${XML_LINES} lines per XML file; ` +
    `BullMQ worker concurrency ${WORKER_CONCURRENCY}; Redis ${REDIS.host}:${REDIS.port}; ${CORES} cores`,
);

let standIns: StandIns | undefined;
const started = Date.now();
// Assigned inside callbacks: typed with `as` so that TypeScript does not narrow them to Error.
let berth = skipped as Side | Error;
let noop = skipped as { one: Measured; six: Measured } | Error;
let loops = skipped as Measured[] | Error;
let chain = skipped as Side | Error;
let flowProducer = skipped as Side | Error;
let aofChain = skipped as Side | Error;
let aofFlow = skipped as Side | Error;
let redisPersistence = skipped as Awaited<ReturnType<typeof persistence>> | Error;

try {
  standIns = await startStandIns();
  const s = standIns;
  redisPersistence = await attempt('Redis persistence settings', persistence);

  if (wanted('berth') || wanted('noop') || wanted('loop')) {
    const run = await attempt('Berth: start the project', () =>
      withBerth(s, async (rig) => {
        if (wanted('berth')) berth = await attempt('Berth integration', () => integration(rig, s, 'Berth'));
        if (wanted('noop')) {
          noop = await attempt(`Berth no-op flows: ${NOOP_RUNS} runs each of 1 and 6 steps, 1 in flight`, async () => {
            await runClient(rig.client(1, 50, 'warm-', undefined, 'noop1'), 120_000);
            await runClient(rig.client(1, 50, 'warm-', undefined, 'noop6'), 120_000);
            return {
              one: await measure(rig, s, rig.client(1, NOOP_RUNS, 'n1-', undefined, 'noop1')),
              six: await measure(rig, s, rig.client(1, NOOP_RUNS, 'n6-', undefined, 'noop6')),
            };
          });
        }
        if (wanted('loop')) {
          loops = await attempt(`Berth loop: ${LOOP_FILES} files, forEach concurrency ${LOOP_CONCURRENCY}, ×${LOOP_REPEATS}`, async () => {
            await runClient(rig.client(1, 1, 'warm-', { count: 50 }, 'files'), 120_000);
            const out: Measured[] = [];
            for (let i = 0; i < LOOP_REPEATS; i++) out.push(await measure(rig, s, rig.client(1, 1, `loop${i}-`, { count: LOOP_FILES }, 'files')));
            return out;
          });
        }
      }),
    );
    if (run instanceof Error) {
      // Berth did not start (or stop): every Berth row is that error.
      if (wanted('berth')) berth = run;
      if (wanted('noop')) noop = run;
      if (wanted('loop')) loops = run;
    }
  }
  if (wanted('chain')) chain = await attempt('BullMQ chained jobs', () => withBullmq('chain', s, (rig) => integration(rig, s, 'BullMQ chain')));
  if (wanted('flow')) flowProducer = await attempt('BullMQ FlowProducer', () => withBullmq('flow', s, (rig) => integration(rig, s, 'BullMQ FlowProducer')));
  if (WITH_AOF && wanted('aof')) {
    const aof = await attempt('Redis appendonly yes, appendfsync everysec (CONFIG SET, restored afterwards)', () =>
      withAof(REDIS, 'bench:flow', async () => ({
        chain: await attempt('BullMQ chained jobs + AOF', () => withBullmq('chain', s, (rig) => integration(rig, s, 'BullMQ chain + AOF'))),
        flow: await attempt('BullMQ FlowProducer + AOF', () => withBullmq('flow', s, (rig) => integration(rig, s, 'BullMQ FlowProducer + AOF'))),
      })),
    );
    aofChain = aof instanceof Error ? aof : aof.chain;
    aofFlow = aof instanceof Error ? aof : aof.flow;
  } else if (!WITH_AOF) {
    aofChain = aofFlow = new Error('skipped (BENCH_AOF=0)');
  }
} catch (err) {
  console.log(`bench:flow failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await standIns?.stop();
  await closeRedisAdmin();
}
const elapsedSeconds = (Date.now() - started) / 1000;

// ---- report --------------------------------------------------------------------------------------

const rowOf = (side: Side | Error, c: number): Measured | Error => (side instanceof Error ? side : (side.rows.get(c) ?? new Error('not measured')));
const bullBest = (c: number): { name: string; row: Measured } | undefined => {
  const candidates = [
    { name: 'chained jobs', row: ok(rowOf(chain, c)) },
    { name: 'FlowProducer', row: ok(rowOf(flowProducer, c)) },
  ].filter((x): x is { name: string; row: Measured } => x.row !== undefined);
  return candidates.sort((a, b) => b.row.runsPerSec - a.row.runsPerSec)[0];
};
const ratioTo = (r: Measured | Error, base: Measured | Error) => (r instanceof Error || base instanceof Error ? 'n/a' : times(r.runsPerSec / base.runsPerSec));
const postsText = (r: Measured) => `${r.posts}${r.posts === r.ok ? '' : ' (≠ runs)'}${r.unauthorized ? `, ${r.unauthorized} × 401` : ''}`;
const failedText = (r: Measured) => (r.failed > 0 ? `${r.failed} (${r.firstError ?? ''})`.slice(0, 100) : '0');
const value = <T>(r: T | Error, show: (v: T) => string) => (r instanceof Error ? `error: ${r.message}` : show(r));

const sameAs = (side: Side | Error) => (side instanceof Error || berth instanceof Error ? undefined : compareSamples(berth.samples, side.samples));
const sameText = (same: Same | undefined) =>
  same === undefined ? 'n/a' : `${same.identical} of ${same.compared}${same.firstDiff ? ` (first different: ${same.firstDiff})` : ''}`;

const competitors: Array<[string, Side | Error, string]> = [
  ['Berth flow', berth, 'reference'],
  ['BullMQ chained jobs', chain, sameText(sameAs(chain))],
  ['BullMQ FlowProducer', flowProducer, sameText(sameAs(flowProducer))],
  ['BullMQ chained jobs, AOF everysec', aofChain, sameText(sameAs(aofChain))],
  ['BullMQ FlowProducer, AOF everysec', aofFlow, sameText(sameAs(aofFlow))],
];
const integrationRows: string[][] = [];
for (const [name, side, same] of competitors) {
  if (side instanceof Error && side.message.startsWith('skipped')) continue;
  for (const c of CONCURRENCY) {
    const r = rowOf(side, c);
    if (r instanceof Error) {
      integrationRows.push([name, String(c), `error: ${r.message}`, '', '', '', '', '', '', '', '', '', '']);
      continue;
    }
    integrationRows.push([
      name,
      String(c),
      `${r.ok}`,
      failedText(r),
      r.runsPerSec.toFixed(0),
      ms(r.p50),
      ms(r.p99),
      ms(r.max),
      r.own ? `${r.own.p50} / ${r.own.p99}` : '-',
      ratioTo(rowOf(berth, c), r),
      `${r.cpu.platform.toFixed(2)}${r.cpu.gateway !== undefined ? ` (gateway ${r.cpu.gateway.toFixed(2)})` : ''}, ${r.cpu.client.toFixed(2)}, ${r.cpu.standIns.toFixed(2)}`,
      r.othersCores.toFixed(2),
      `${postsText(r)}; ${same}`,
    ]);
  }
}
const integrationTable = table(
  ['Competitor', 'runs in flight', 'runs ok', 'failed', 'runs/s', 'p50 ms', 'p99 ms', 'max ms', "Berth's own p50 / p99 ms", 'Berth runs/s ÷ this', 'CPU ms/run: platform, client, stand-ins', 'other processes, cores', 'posts received; same bodies as Berth'],
  integrationRows,
);

// Where a Berth run's time goes, from its records (whole ms, averaged).
const segmentNames = ['start: run recorded → fetch starts', ...STEPS.flatMap((step, i) => (i === 0 ? [step] : [`gap → ${step}`, step])), 'end: post done → run finished'];
const breakdownTable = (() => {
  const rows = CONCURRENCY.map((c) => ok(rowOf(berth, c)));
  if (rows.every((r) => !r?.segments)) return '(no Berth integration runs)';
  const body = segmentNames.map((name, i) => [name.startsWith('gap') || name.startsWith('start') || name.startsWith('end') ? name : `step ${name}`, ...rows.map((r) => (r?.segments ? ms(r.segments[i]!) : 'n/a'))]);
  const sum = (r: Measured | undefined, inSteps: boolean) => (r?.segments ? ms(r.segments.filter((_, i) => (i % 2 === 1) === inSteps).reduce((s, v) => s + v, 0)) : 'n/a');
  body.push(['= inside the 6 steps', ...rows.map((r) => sum(r, true))]);
  body.push(['= outside them (start, gaps, end)', ...rows.map((r) => sum(r, false))]);
  body.push(['run, createdAt → finishedAt (mean)', ...rows.map((r) => (r?.own ? ms(r.own.mean) : 'n/a'))]);
  body.push(['client latency, mean of p50 above', ...rows.map((r) => (r ? ms(r.p50) : 'n/a'))]);
  return table(['Segment (mean ms, from the run records)', ...CONCURRENCY.map((c) => `${c} in flight`)], body);
})();

const noopOk = ok(noop);
const perStepNoop = noopOk ? (noopOk.six.p50 - noopOk.one.p50) / 5 : undefined;
const perStepNoopOwn = noopOk?.six.own && noopOk.one.own ? (noopOk.six.own.mean - noopOk.one.own.mean) / 5 : undefined;
const noopTable = noopOk
  ? table(
      ['No-op flow (code steps returning their input), 1 in flight', 'runs', 'runs/s', 'p50 ms', 'p99 ms', "Berth's own mean / p50 / p99 ms", 'CPU ms/run (Berth)', 'other processes, cores'],
      [
        ...([['noop1: 1 step', noopOk.one], ['noop6: 6 steps', noopOk.six]] as const).map(([name, r]) => [
          name,
          `${r.ok}${r.failed ? ` (${r.failed} failed)` : ''}`,
          r.runsPerSec.toFixed(0),
          ms(r.p50),
          ms(r.p99),
          `${ms(r.own!.mean)} / ${r.own!.p50} / ${r.own!.p99}`,
          r.cpu.platform.toFixed(2),
          r.othersCores.toFixed(2),
        ]),
        ['per added step: (noop6 − noop1) / 5', '', '', ms(perStepNoop!), '', perStepNoopOwn === undefined ? 'n/a' : `${ms(perStepNoopOwn)} (means)`, ((noopOk.six.cpu.platform - noopOk.one.cpu.platform) / 5).toFixed(2), ''],
      ],
    )
  : value(noop, () => '');

const loopOk = ok(loops);
const loopMedian = loopOk ? sortedOf(loopOk.map((l) => l.p50))[Math.floor((loopOk.length - 1) / 2)]! : undefined;
const loopTable = loopOk
  ? table(
      [
        'Loop run',
        'total s (client)',
        "Berth's own s",
        'files/s',
        `per item, mean ms: ${LOOP_ITEM_STEPS.join(', gap, ')}`,
        'step records',
        'posts received',
        'CPU s: Berth, stand-ins',
        'other processes, cores',
      ],
      loopOk.map((l, i) => [
        `${i + 1} of ${loopOk.length}`,
        (l.p50 / 1000).toFixed(3),
        (l.own!.mean / 1000).toFixed(3),
        ((LOOP_FILES * 1000) / l.p50).toFixed(0),
        l.itemSegments ? l.itemSegments.map((v) => v.toFixed(1)).join(', ') : 'n/a',
        String(l.stepRecords),
        `${l.posts}${l.posts === LOOP_FILES ? '' : ` (≠ ${LOOP_FILES})`}${l.unauthorized ? `, ${l.unauthorized} × 401` : ''}`,
        `${(l.cpu.platform / 1000).toFixed(2)}, ${(l.cpu.standIns / 1000).toFixed(2)}`,
        l.othersCores.toFixed(2),
      ]),
    )
  : value(loops, () => '');

// Targets.
const lowC = Math.min(...CONCURRENCY);
const berthLow = ok(rowOf(berth, lowC));
const berthRecords = berthLow?.between;
const targetRows: string[][] = [];
targetRows.push([
  `6-step run p50, ${lowC} in flight (client; Berth's own)`,
  berthLow ? `${ms(berthLow.p50)} ms; ${berthLow.own!.p50} ms` : value(rowOf(berth, lowC), () => ''),
  `≤ ${TARGET.p50} ms`,
  met(berthLow ? berthLow.p50 <= TARGET.p50 : undefined),
]);
targetRows.push([
  `6-step run p99, ${lowC} in flight (client; Berth's own)`,
  berthLow ? `${ms(berthLow.p99)} ms; ${berthLow.own!.p99} ms` : 'n/a',
  `≤ ${TARGET.p99} ms`,
  met(berthLow ? berthLow.p99 <= TARGET.p99 : undefined),
]);
for (const c of CONCURRENCY.filter((c) => c !== lowC)) {
  const r = ok(rowOf(berth, c));
  targetRows.push([`6-step run p50 / p99, ${c} in flight (client)`, r ? `${ms(r.p50)} / ${ms(r.p99)} ms` : 'n/a', `≤ ${TARGET.p50} / ${TARGET.p99} ms`, met(r ? r.p50 <= TARGET.p50 && r.p99 <= TARGET.p99 : undefined)]);
}
targetRows.push([
  'Per-step overhead, no-op steps: (p50 noop6 − p50 noop1) / 5 (client)',
  perStepNoop === undefined ? 'n/a' : `${ms(perStepNoop)} ms${perStepNoopOwn === undefined ? '' : ` (Berth's own means: ${ms(perStepNoopOwn)} ms)`}`,
  `≤ ${TARGET.perStep} ms`,
  met(perStepNoop === undefined ? undefined : perStepNoop <= TARGET.perStep),
]);
targetRows.push([
  `Per-step overhead, integration records: (run − time inside steps) / 6, mean, ${lowC} in flight`,
  berthRecords ? `${ms(berthRecords.mean)} ms (p50 ${ms(berthRecords.p50)})` : 'n/a',
  `≤ ${TARGET.perStep} ms`,
  met(berthRecords ? berthRecords.mean <= TARGET.perStep : undefined),
]);
for (const c of CONCURRENCY) {
  const r = ok(rowOf(berth, c));
  const best = bullBest(c);
  targetRows.push([
    `Berth runs/s ÷ faster BullMQ variant, ${c} in flight`,
    r && best ? `${times(r.runsPerSec / best.row.runsPerSec)} (${r.runsPerSec.toFixed(0)} vs ${best.row.runsPerSec.toFixed(0)}, ${best.name})` : 'n/a',
    `≥ ${TARGET.ratio}×`,
    met(r && best ? r.runsPerSec / best.row.runsPerSec >= TARGET.ratio : undefined),
  ]);
}
targetRows.push([
  `Loop over ${LOOP_FILES} files (median of ${LOOP_REPEATS}, client)`,
  loopMedian === undefined ? value(loops, () => '') : `${(loopMedian / 1000).toFixed(3)} s`,
  `≤ ${TARGET.loopSeconds} s`,
  met(loopMedian === undefined ? undefined : loopMedian <= TARGET.loopSeconds * 1000),
]);
const targetTable = table(['Target', 'Measured', 'Target', 'Met?'], targetRows);

// Notes computed from the figures above.
const notes: string[] = [];
for (const c of CONCURRENCY) {
  const b = ok(rowOf(berth, c));
  const others = [
    ['chained jobs', ok(rowOf(chain, c))],
    ['FlowProducer', ok(rowOf(flowProducer, c))],
  ].filter((x): x is [string, Measured] => x[1] !== undefined);
  if (!b || others.length === 0) continue;
  const platform = (r: Measured) => r.cpu.platform + r.cpu.standIns;
  notes.push(
    `${c} in flight: CPU per run, platform + stand-ins (no client): Berth ${platform(b).toFixed(2)} ms (gateway ${b.cpu.gateway?.toFixed(2) ?? '?'}, sandboxes ` +
      `${b.cpu.gateway !== undefined ? (b.cpu.platform - b.cpu.gateway).toFixed(2) : '?'}), ` +
      others.map(([name, r]) => `BullMQ ${name} ${platform(r).toFixed(2)} ms (${(platform(r) / platform(b)).toFixed(2)}× Berth's)`).join(', ') +
      `; clients: Berth ${b.cpu.client.toFixed(2)} ms, BullMQ ${others.map(([, r]) => r.cpu.client.toFixed(2)).join(' / ')} ms (QueueEvents reads every job event).`,
  );
  if (b.own) {
    notes.push(
      `${c} in flight: client mean ${ms(b.meanLatency)} ms − Berth's own mean ${ms(b.own.mean)} ms = ${ms(b.meanLatency - b.own.mean)} ms per run outside the run: ` +
        `HTTP, and the ?wait=true answer (the run and its steps re-read from SQLite, every step's input, output and logs sent)` +
        `${c > 1 ? ', and waiting for the gateway\'s event loop' : ''}.`,
    );
  }
  if (c > 1) notes.push(`${c} in flight: latency is queueing: ${c} runs ÷ ${b.runsPerSec.toFixed(0)} runs/s = ${ms((c * 1000) / b.runsPerSec)} ms (Little's law); p50 ${ms(b.p50)} ms.`);
  if (c > 1 && b.cpu.gateway !== undefined && b.cpu.gateway > 0) {
    notes.push(
      `${c} in flight: Berth's gateway, one event loop, used ${b.cpu.gateway.toFixed(2)} ms of CPU per run: it cannot run more than ` +
        `${(1000 / b.cpu.gateway).toFixed(0)} runs/s; measured ${b.runsPerSec.toFixed(0)} (${((b.runsPerSec * b.cpu.gateway) / 10).toFixed(0)} % of a core).`,
    );
  }
}
if (loopOk) {
  const extra = mean(loopOk.map((l) => l.p50 - l.own!.mean));
  notes.push(`Loop: the ?wait=true answer of ${loopOk[0]!.stepRecords} step records (client − own) takes ${(extra / 1000).toFixed(3)} s of the total.`);
}
const measuredRows = [
  ...[berth, chain, flowProducer, aofChain, aofFlow].flatMap((side) => (side instanceof Error ? [] : [...side.rows.values()].map(ok))),
  noopOk?.one,
  noopOk?.six,
  ...(loopOk ?? []),
].filter((r): r is Measured => r !== undefined);
if (measuredRows.length > 0) {
  const busiest = Math.max(...measuredRows.map((r) => r.othersCores));
  notes.push(
    `Other processes on the machine kept up to ${busiest.toFixed(2)} cores busy during a measurement` +
      (busiest > 0.2 ? ' (the machine was shared: rows with a high "other processes" figure are disturbed).' : ' (a quiet machine).'),
  );
}

const persistenceOk = ok(redisPersistence);
const date = new Date().toISOString().slice(0, 10);
const cpuModel = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
const pkg = (name: string) => {
  try {
    return (JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
};

console.log(`
----- paste into docs/benchmarks.md -----
## Flows: seed 000's 6-step integration (bench:flow)

Measured ${date} with \`npm run bench:flow\` (${elapsedSeconds.toFixed(0)} s): Node ${process.version}, ${cpuModel}, ${CORES} cores;
BullMQ ${pkg('bullmq')} on ioredis ${pkg('ioredis')}, Redis ${persistenceOk?.version ?? '?'}.
- The integration (bench/fixtures/flow): fetch an order XML (${XML_LINES} lines) from a stand-in file server → transform
  (the customer's code parses it; code step, tenant isolation, the flow's tenant from its input) → validate, map (code
  steps) → enrich (a warm function) → post to a stand-in API that checks a literal bearer token. The stand-ins are
  node:http in their own process and answer at once; ${FILES} different files, round robin.
- Berth: \`POST /_berth/flows/integration/runs?wait=true\`, answered with the finished run's record. BullMQ: one worker
  process (concurrency ${WORKER_CONCURRENCY}) doing the same work in-process — the same fetch, the very same modules, the
  same post, customer code without isolation — as chained jobs (each step's processor adds the next job) and as a
  FlowProducer flow of six nested jobs (children first); the run is over at QueueEvents 'completed' of its post job.
- ${RUNS} runs per row after ${WARMUP_RUNS} warm-up runs, closed loop at ${CONCURRENCY.join(' and ')} runs in flight; client, platform
  and stand-ins each in their own process. Latency is the client's (start call → finished run known), on CLOCK_MONOTONIC;
  Berth's own is its record's createdAt → finishedAt (whole ms). runs/s counts successful runs over the whole row.
- The stand-in API counts every post and keeps the first body per order: each BullMQ row is checked against Berth's.

Durable settings:
- Berth: the run, then every step's result, committed to SQLite (WAL, synchronous=NORMAL) before the next step starts
  (and before a 202 without wait): survives kill -9 of Berth, not power loss.
- BullMQ: Redis as configured here: ${persistenceOk?.text ?? value(redisPersistence, () => '')}.${persistenceOk?.none ? ' **Nothing is on disk: a Redis restart loses every run in flight and every result.**' : ''}
- BullMQ + AOF (${WITH_AOF && wanted('aof') ? 'rows below' : 'not run'}): appendonly yes, appendfsync everysec, set with CONFIG SET and restored afterwards:
  survives kill -9 of Redis, loses up to 1 s on power loss. The class Berth is in.

${integrationTable}

${breakdownTable}

${noopTable}

Loop: one run of \`files\` — list ${LOOP_FILES} files, then forEach (concurrency ${LOOP_CONCURRENCY}): fetch → transform (code step) → post.

${loopTable}

${targetTable}

${notes.map((n) => `- ${n}`).join('\n')}
-----------------------------------------`);

const all = [berth, noop, loops, chain, flowProducer, aofChain, aofFlow].filter((r) => r !== skipped && !(r instanceof Error && r.message.startsWith('skipped')));
if (all.some((r) => r instanceof Error)) process.exitCode = 1;
for (const side of [berth, chain, flowProducer, aofChain, aofFlow]) if (!(side instanceof Error) && [...side.rows.values()].some((r) => r instanceof Error)) process.exitCode = 1;
// Nothing may keep the benchmark alive (a client library's reconnect timer): exiting kills what is left (children.ts).
process.exit();
