// Queue benchmark: durable async work end to end (enqueue → handler runs → acknowledged) with
// one no-op handler (bench/fixtures/queue-handler.mjs), Berth against BullMQ on the local Redis,
// side by side in one run:
//   throughput  BENCH_JOBS jobs enqueued as fast as the producers go, until every one has run
//               and been acknowledged: single enqueues (Berth async invoke, Berth's send API;
//               BullMQ Queue.add) and batches of 10 (SendMessageBatch into a queue trigger;
//               BullMQ Queue.addBulk). Berth's producers speak HTTP directly, as BullMQ's speak
//               Redis through ioredis: an AWS SDK costs more per call than either (see SQS API);
//   latency     open-loop enqueues at half the lower single-enqueue throughput of the two, for
//               BENCH_LATENCY_SECONDS: enqueue-to-handler-start p50/p99;
//   SQS API     SendMessageBatch + ReceiveMessage + DeleteMessageBatch with @aws-sdk/client-sqs,
//               consumers in a bench process, no Berth function involved.
// Each side gets the same handler and the same number of jobs running at once (BENCH_WORKERS:
// Berth's async.concurrency / a trigger's maxConcurrency, BullMQ's Worker concurrency).
//
// Enqueue-to-start is measured by the handler itself: the producer stamps each job with
// CLOCK_MONOTONIC just before its enqueue call, the handler takes the same clock as its first
// statement and appends the difference to a file (one small write on every side; a console.log
// would cost Berth an IPC message and a stored log line and a BullMQ worker nothing). That is
// the whole path a user waits for (client, transport, durable write, queue, worker, sandbox) on
// one clock shared by all processes, with sub-millisecond resolution. Berth's own invocation
// record is not used: its started_at is whole milliseconds, taken in the gateway before an
// environment is acquired, and its queue's sent time is the server's receipt, not the client's
// call.
//
// "Acknowledged" is each side's own record of a finished job: for Berth, the message deleted
// from its queue in SQLite (the orchestrator polls the database read-only); for BullMQ, the job
// counted completed in Redis. Throughput is jobs ÷ (first enqueue call → all acknowledged).
//
// Durability differs and is printed with the figures: Berth answers once the job is committed
// to SQLite's WAL with synchronous=NORMAL; BullMQ runs on Redis as configured on this machine
// and, when BENCH_AOF is not 0, again with appendonly yes / appendfsync everysec, set with
// CONFIG SET for those rows and restored afterwards.
//
// Every server, worker and producer is a separate child process; a competitor that fails
// becomes an error row. BullMQ's keys live under a prefix unique to the run and are removed.
//
// Run: npm run bench:queue   (env: BENCH_JOBS, default 20000; BENCH_WORKERS, 10;
//   BENCH_IN_FLIGHT jobs outstanding per producer process, 50; BENCH_LATENCY_SECONDS, 10;
//   BENCH_RATE jobs/s for the latency runs instead of half the measured throughput;
//   BENCH_REDIS host:port, 127.0.0.1:6379; BENCH_AOF=0 skips the AOF rows;
//   BENCH_ONLY=key,… runs only those rows: bull,event,bull-lat,event-lat,send,bulk,sqs1,sqs10,sqs-api,bull-aof,bulk-aof,bull-aof-lat)
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Queue } from 'bullmq';
import { lastError, repoRoot, runClient, spawnIpc, startServer, stopServer, tempDir, treeCpuMs } from './children.js';
import type { ClientJob, ClientResult, Target } from './queue-client.js';
import { clock, parseLags, type Lag, type RedisAddress, type RedisClient } from './queue-common.js';
import { closeRedisAdmin, configGet, redisAdmin, withAof } from './redis-admin.js';
import type { FromWorker, ToWorker, WorkerJob } from './queue-worker.js';
import { attempt, met, ms, positive, table, times } from './report.js';
import { percentile } from './stats.js';

const JOBS = positive('BENCH_JOBS', 20_000);
const WORKERS = positive('BENCH_WORKERS', 10);
const IN_FLIGHT = positive('BENCH_IN_FLIGHT', 50);
const LATENCY_SECONDS = positive('BENCH_LATENCY_SECONDS', 10);
const BATCH = 10; // SQS's batch limit, used for addBulk too so the calls carry the same jobs
/**
 * Run and drained before each measurement (JIT, pools, sockets). Berth needs several thousand:
 * after only 1,000, its first seconds at half load queued jobs for up to 0.6 s.
 */
const WARMUP_JOBS = 5000;
const POLL_MS = 10;
/** The latency table also gives the p99 of what was sent after this long, without the start. */
const STEADY_AFTER_SECONDS = 2;
const DRAIN_TIMEOUT_MS = 180_000;
const WITH_AOF = process.env.BENCH_AOF !== '0';
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined;
const REDIS: RedisAddress = (() => {
  const [host = '127.0.0.1', port = '6379'] = (process.env.BENCH_REDIS ?? '127.0.0.1:6379').split(':');
  return { host, port: Number(port) };
})();
const CORES = os.availableParallelism();

const handlerFile = path.join(repoRoot, 'bench/fixtures/queue-handler.mjs');

// ---- child processes with an IPC channel: producers and the BullMQ worker --------------------

interface WorkerProcess {
  pid: number;
  stop(): Promise<void>;
}

function startWorker(job: WorkerJob): Promise<WorkerProcess> {
  const { child, stderr } = spawnIpc('queue-worker.js', job);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('BullMQ worker not ready after 30 s'));
    }, 30_000);
    child.on('message', (message: FromWorker) => {
      if (message.t === 'ready') {
        clearTimeout(timer);
        resolve({
          pid: child.pid!,
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) child.send({ t: 'stop' } satisfies ToWorker);
            await Promise.race([exited, sleep(10_000)]);
            child.kill('SIGKILL');
          },
        });
      } else {
        clearTimeout(timer);
        console.log(`  BullMQ worker: ${message.message}`); // after ready, nothing waits to be rejected
        reject(new Error(`BullMQ worker: ${message.message}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`BullMQ worker exited (${code ?? signal}): ${lastError(stderr())}`));
    });
  });
}

// ---- competitors, each set up fresh for one measurement ---------------------------------------

/** A competitor ready to take jobs. */
interface Rig {
  target: Target;
  /** True once `enqueued` jobs (all sent so far) have run and been acknowledged. */
  drained(enqueued: number): Promise<boolean>;
  /** The `lag <n> <ms>` lines the handler has appended to its BENCH_LAG_FILE so far. */
  lags(): Promise<Lag[]>;
  /** CPU ms the platform's processes have used so far (Berth and its sandboxes; Redis and the worker). */
  cpuMs(): Promise<number>;
}

async function withBullmq<T>(body: (rig: Rig) => Promise<T>): Promise<T> {
  const connection = await redisAdmin(REDIS);
  const prefix = `berth-bench-${process.pid}-${Date.now().toString(36)}`;
  const name = 'noop';
  const queue = new Queue(name, { connection: connection as never, prefix });
  const lagFile = path.join(tempDir('berth-bench-queue-bullmq-'), 'lags');
  try {
    await queue.waitUntilReady();
    const worker = await startWorker({ redis: REDIS, prefix, queue: name, concurrency: WORKERS, handlerFile, lagFile });
    try {
      return await body({
        target: { kind: 'bullmq', redis: REDIS, prefix, queue: name },
        drained: async (enqueued) => (await queue.getJobCountByTypes('completed', 'failed')) >= enqueued,
        lags: async () => readLags(lagFile),
        // Redis's figure counts every client of this Redis: the benchmark's and anyone else's.
        cpuMs: async () => {
          const info = String(await connection.call('INFO', 'cpu'));
          const seconds = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
          return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000 + treeCpuMs(worker.pid);
        },
      });
    } finally {
      await worker.stop();
    }
  } finally {
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close().catch(() => {});
    await unlinkPrefix(connection, prefix);
  }
}

/** The lag lines in a handler's BENCH_LAG_FILE; none yet if it has not been written. */
function readLags(file: string): Lag[] {
  return existsSync(file) ? parseLags(readFileSync(file, 'utf8')) : [];
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

type BerthKind = 'event' | 'send' | 'sqs1' | 'sqs10' | 'sqs-api';

/** berth.yml with only the function (and queue) one measurement needs. */
function berthConfig(kind: BerthKind, lagFile: string): string {
  const fn = ['functions:', '  noop:', '    handler: handler.handler', '    isolation: warm', '    environment:', `      BENCH_LAG_FILE: ${JSON.stringify(lagFile)}`];
  const trigger = (queue: string, batchSize: number) => [
    ...fn,
    '    events:',
    `      - queue: ${queue}`,
    `        batchSize: ${batchSize}`,
    `        maxConcurrency: ${WORKERS}`,
    'queues:',
    `  ${queue}:`,
  ];
  const lines = {
    event: [...fn, '    async:', `      concurrency: ${WORKERS}`],
    send: trigger('jobs', 1),
    sqs1: trigger('jobs', 1),
    sqs10: trigger('jobs', BATCH),
    'sqs-api': [...fn, 'queues:', '  jobs:'],
  }[kind];
  return [...lines, ''].join('\n');
}

/** Where a kind's jobs wait in Berth: the function's internal async queue, or `jobs`. */
const berthQueue = (kind: BerthKind) => (kind === 'event' ? 'fn:noop' : 'jobs');

async function withBerth<T>(kind: BerthKind, body: (rig: Rig, url: string) => Promise<T>): Promise<T> {
  const root = tempDir(`berth-bench-queue-${kind}-`);
  const project = path.join(root, 'project');
  const data = path.join(root, 'data');
  const home = path.join(root, 'home');
  for (const dir of [project, data, home]) mkdirSync(dir);
  cpSync(handlerFile, path.join(project, 'handler.mjs'));
  const lagFile = path.join(root, 'lags');
  writeFileSync(path.join(project, 'berth.yml'), berthConfig(kind, lagFile));
  const server = await startServer([path.join(repoRoot, 'bin/berth'), 'start', project, '--port', '0', '--data', data], { BERTH_HOME: home });
  let db: Database.Database | undefined;
  try {
    // Read-only, beside the running server: WAL lets a reader in without blocking its writes.
    db = new Database(path.join(data, 'berth.db'), { readonly: true, fileMustExist: true, timeout: 5000 });
    const waiting = db.prepare('SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?) AS waiting').pluck();
    const queue = berthQueue(kind);
    const target: Target =
      kind === 'event'
        ? { kind: 'berth-event', url: server.url, fn: 'noop' }
        : kind === 'send'
          ? { kind: 'berth-send', url: server.url, queue }
          : { kind: 'sqs-batch', url: server.url, queue };
    return await body(
      {
        target,
        // Every send was stored before it was acknowledged, so no row left means all handled and deleted.
        drained: async () => waiting.get(queue) === 0,
        lags: async () => readLags(lagFile),
        cpuMs: async () => treeCpuMs(server.child.pid!),
      },
      server.url,
    );
  } finally {
    db?.close();
    await stopServer(server.child);
  }
}

// ---- measurements ------------------------------------------------------------------------------

/** Polls until the rig has acknowledged `enqueued` jobs; resolves with clock() at that moment. */
async function untilDrained(rig: Rig, enqueued: number): Promise<number> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (!(await rig.drained(enqueued))) {
    if (Date.now() > deadline) throw new Error(`jobs still waiting ${DRAIN_TIMEOUT_MS / 1000} s after the last enqueue`);
    await sleep(POLL_MS);
  }
  return clock();
}

/** Runs a producer, then waits until everything it enqueued has been acknowledged. */
async function produce(rig: Rig, job: ClientJob, state: { enqueued: number }): Promise<{ result: ClientResult; drainedAt: number }> {
  let drain: Promise<number> | undefined;
  const timeoutMs = (job.mode === 'rate' ? job.seconds + 120 : 300) * 1000;
  // Polling starts when the last enqueue is acknowledged, not when the producer has exited.
  const result = await runClient(job, timeoutMs, (sent) => {
    state.enqueued += sent;
    drain = untilDrained(rig, state.enqueued);
    drain.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
  });
  if (!drain) throw new Error('the producer finished without reporting its last acknowledgement');
  return { result, drainedAt: await drain };
}

interface Throughput {
  jobsPerSec: number;
  acksPerSec: number;
  /** CPU ms per 1,000 jobs: the platform's processes, and the producer's. */
  platformCpu: number;
  producerCpu: number;
  failed: number;
  firstError?: string;
}

async function throughput(rig: Rig, batch: number): Promise<Throughput> {
  const state = { enqueued: 0 };
  const burst = (count: number, firstN: number): ClientJob => ({ mode: 'burst', target: rig.target, count, inFlight: IN_FLIGHT, batch, firstN, stamp: false });
  await produce(rig, burst(WARMUP_JOBS, -WARMUP_JOBS), state);
  const cpuBefore = await rig.cpuMs();
  const { result, drainedAt } = await produce(rig, burst(JOBS, 0), state);
  const cpuAfter = await rig.cpuMs();
  if (result.sent === 0) throw new Error(`every enqueue failed: ${result.firstError}`);
  return {
    jobsPerSec: (result.sent * 1000) / (drainedAt - result.startedAt),
    acksPerSec: (result.sent * 1000) / (result.sentDoneAt - result.startedAt),
    platformCpu: ((cpuAfter - cpuBefore) * 1000) / result.sent,
    producerCpu: (result.cpuMs * 1000) / result.sent,
    failed: result.failed,
    ...(result.firstError ? { firstError: result.firstError } : {}),
  };
}

interface Latency {
  rate: number;
  sent: number;
  samples: number;
  p50: number;
  p99: number;
  max: number;
  /** p99 of the jobs sent after the first STEADY_AFTER_SECONDS: the run without its start. */
  steadyP99: number;
  maxBehindMs: number;
  failed: number;
}

async function latency(rig: Rig, rate: number): Promise<Latency> {
  const state = { enqueued: 0 };
  await produce(rig, { mode: 'burst', target: rig.target, count: WARMUP_JOBS, inFlight: IN_FLIGHT, batch: 1, firstN: -WARMUP_JOBS, stamp: false }, state);
  const { result } = await produce(rig, { mode: 'rate', target: rig.target, rate, seconds: LATENCY_SECONDS, firstN: 0 }, state);
  const all = (await rig.lags()).filter((l) => l.n >= 0);
  const sorted = (list: Lag[]) => list.map((l) => l.ms).sort((a, b) => a - b);
  const lags = sorted(all);
  const steady = sorted(all.filter((l) => l.n >= STEADY_AFTER_SECONDS * rate));
  if (lags.length === 0) throw new Error(`no handler logged a lag (${result.sent} sent, ${result.failed} failed: ${result.firstError ?? 'no error'})`);
  return {
    rate,
    sent: result.sent,
    samples: lags.length,
    p50: percentile(lags, 0.5),
    p99: percentile(lags, 0.99),
    max: lags.at(-1)!,
    steadyP99: percentile(steady, 0.99),
    maxBehindMs: result.maxBehindMs ?? 0,
    failed: result.failed,
  };
}

interface RoundTrip {
  msgsPerSec: number;
  /** CPU ms per 1,000 messages: Berth's processes, and the bench process's producers and consumers. */
  platformCpu: number;
  clientCpu: number;
  failed: number;
  firstError?: string;
}

async function sqsRoundTrip(rig: Rig, url: string): Promise<RoundTrip> {
  const job = (count: number, firstN: number): ClientJob => ({ mode: 'sqs', url, queue: 'jobs', count, inFlight: IN_FLIGHT, consumers: WORKERS, handlerFile, firstN });
  await runClient(job(WARMUP_JOBS, -WARMUP_JOBS), 300_000, () => {});
  const cpuBefore = await rig.cpuMs();
  const r = await runClient(job(JOBS, 0), 300_000, () => {});
  const cpuAfter = await rig.cpuMs();
  if (!r.deleted) throw new Error(`nothing was received and deleted: ${r.firstError ?? 'no error'}`);
  return {
    msgsPerSec: (r.deleted * 1000) / (r.doneAt! - r.startedAt),
    platformCpu: ((cpuAfter - cpuBefore) * 1000) / r.deleted,
    clientCpu: (r.cpuMs * 1000) / r.deleted,
    failed: r.failed,
    ...(r.firstError ? { firstError: r.firstError } : {}),
  };
}

// ---- Redis persistence for the AOF rows ---------------------------------------------------------

/** Redis's persistence as configured now, in words for the report. */
async function persistence(): Promise<string> {
  const redis = await redisAdmin(REDIS);
  const save = await configGet(redis, 'save');
  const aof = await configGet(redis, 'appendonly');
  const fsync = await configGet(redis, 'appendfsync');
  const rdb = save.trim() === '' ? 'no RDB snapshots (save "")' : `RDB snapshots (save "${save}")`;
  return aof === 'yes' ? `appendonly yes, appendfsync ${fsync}, ${rdb}` : `appendonly no, ${rdb}`;
}

// ---- main ---------------------------------------------------------------------------------------

const budgetMs = 20 * 60_000;
setTimeout(() => {
  console.error(`bench:queue: watchdog fired after ${budgetMs / 1000} s, killing children`);
  process.exit(1);
}, budgetMs).unref();

console.log(
  `bench:queue: ${JOBS} jobs per run after ${WARMUP_JOBS} warm-up, ${WORKERS} workers, ${IN_FLIGHT} jobs in flight per producer, ` +
    `latency ${LATENCY_SECONDS} s open loop, Redis ${REDIS.host}:${REDIS.port}, ${CORES} cores`,
);

const skipped = new Error('skipped (BENCH_ONLY)');
async function measure<T>(key: string, label: string, fn: () => Promise<T>): Promise<T | Error> {
  if (ONLY && !ONLY.has(key)) return skipped;
  return attempt(label, fn);
}

const redisPersistence = await attempt('Redis persistence settings', persistence);

const bull = await measure('bull', 'BullMQ Queue.add → Worker', () => withBullmq((rig) => throughput(rig, 1)));
const event = await measure('event', 'Berth async invoke (Event) → function', () => withBerth('event', (rig) => throughput(rig, 1)));

// Half of the lower of the two single-enqueue throughputs, so neither side is near its limit.
const ok = <T>(r: T | Error): T | undefined => (r instanceof Error ? undefined : r);
const singles = [ok(bull)?.jobsPerSec, ok(event)?.jobsPerSec].filter((v): v is number => v !== undefined);
const halfLoad = process.env.BENCH_RATE
  ? positive('BENCH_RATE', 1)
  : singles.length > 0
    ? Math.max(1, Math.round(Math.min(...singles) / 2))
    : undefined;
const noRate = new Error('no throughput to take half of');
const atHalfLoad = (key: string, label: string, fn: (rate: number) => Promise<Latency>) =>
  halfLoad === undefined ? Promise.resolve(noRate) : measure(key, `${label} at ${halfLoad} jobs/s`, () => fn(halfLoad));

const bullLat = await atHalfLoad('bull-lat', 'latency: BullMQ', (rate) => withBullmq((rig) => latency(rig, rate)));
const eventLat = await atHalfLoad('event-lat', 'latency: Berth async invoke', (rate) => withBerth('event', (rig) => latency(rig, rate)));

const send = await measure('send', 'Berth POST /_berth/queues/jobs/messages → queue trigger (batchSize 1)', () => withBerth('send', (rig) => throughput(rig, 1)));
const bulk = await measure('bulk', `BullMQ Queue.addBulk ×${BATCH} → Worker`, () => withBullmq((rig) => throughput(rig, BATCH)));
const sqs1 = await measure('sqs1', `Berth SendMessageBatch ×${BATCH} → queue trigger (batchSize 1)`, () => withBerth('sqs1', (rig) => throughput(rig, BATCH)));
const sqs10 = await measure('sqs10', `Berth SendMessageBatch ×${BATCH} → queue trigger (batchSize ${BATCH})`, () =>
  withBerth('sqs10', (rig) => throughput(rig, BATCH)),
);
const sqsApi = await measure('sqs-api', 'SQS API round trip (SendMessageBatch, ReceiveMessage, DeleteMessageBatch)', () =>
  withBerth('sqs-api', (rig, url) => sqsRoundTrip(rig, url)),
);

const aofOff = new Error('skipped (BENCH_AOF=0)');
const aofKeys = ['bull-aof', 'bulk-aof', 'bull-aof-lat'];
const aofRows =
  WITH_AOF && (!ONLY || aofKeys.some((k) => ONLY.has(k)))
    ? await attempt('Redis appendonly yes, appendfsync everysec (CONFIG SET, restored afterwards)', () =>
        withAof(REDIS, 'bench:queue', async () => ({
          bull: await measure('bull-aof', 'BullMQ + AOF: Queue.add → Worker', () => withBullmq((rig) => throughput(rig, 1))),
          bulk: await measure('bulk-aof', `BullMQ + AOF: Queue.addBulk ×${BATCH} → Worker`, () => withBullmq((rig) => throughput(rig, BATCH))),
          lat: await atHalfLoad('bull-aof-lat', 'latency: BullMQ + AOF', (rate) => withBullmq((rig) => latency(rig, rate))),
        })),
      )
    : { bull: aofOff, bulk: aofOff, lat: aofOff };
const pickAof = <K extends 'bull' | 'bulk' | 'lat'>(key: K) => (aofRows instanceof Error ? aofRows : aofRows[key]);
const bullAof = pickAof('bull');
const bulkAof = pickAof('bulk');
const bullAofLat = pickAof('lat');

await closeRedisAdmin();

// ---- report --------------------------------------------------------------------------------------

const value = <T>(r: T | Error, show: (v: T) => string) => (r instanceof Error ? `error: ${r.message}` : show(r));
const ratio = (r: Throughput | Error, base: Throughput | Error) => (r instanceof Error || base instanceof Error ? 'n/a' : times(r.jobsPerSec / base.jobsPerSec));
const failedText = (r: { failed: number; firstError?: string }) => (r.failed > 0 ? `${r.failed} (${r.firstError ?? ''})`.slice(0, 120) : '0');

const single = `1 per call, ${IN_FLIGHT} in flight`;
const batched = `${BATCH} per call, ${IN_FLIGHT / BATCH} calls in flight`;
const throughputTarget = '≥1.0× BullMQ';
const rows: Array<[string, string, string, Throughput | Error, Throughput | Error, Throughput | Error, string?]> = [
  ['BullMQ Queue.add', single, `Worker, concurrency ${WORKERS}`, bull, bull, bullAof],
  ['BullMQ Queue.add, AOF everysec', single, `Worker, concurrency ${WORKERS}`, bullAof, bull, bullAof],
  ['Berth async invoke (Event)', `HTTP, ${single}`, `async.concurrency ${WORKERS}`, event, bull, bullAof, throughputTarget],
  ['Berth POST /_berth/queues → trigger', `HTTP, ${single}`, `batchSize 1, maxConcurrency ${WORKERS}`, send, bull, bullAof],
  [`BullMQ Queue.addBulk ×${BATCH}`, batched, `Worker, concurrency ${WORKERS}`, bulk, bulk, bulkAof],
  [`BullMQ Queue.addBulk ×${BATCH}, AOF everysec`, batched, `Worker, concurrency ${WORKERS}`, bulkAof, bulk, bulkAof],
  [`Berth SendMessageBatch ×${BATCH} → trigger`, `HTTP (SQS JSON), ${batched}`, `batchSize 1, maxConcurrency ${WORKERS}`, sqs1, bulk, bulkAof, throughputTarget],
  [`Berth SendMessageBatch ×${BATCH} → trigger`, `HTTP (SQS JSON), ${batched}`, `batchSize ${BATCH}, maxConcurrency ${WORKERS}`, sqs10, bulk, bulkAof],
];
const throughputTable = table(
  ['Path', 'Enqueue', 'Handled by', 'jobs/s', 'enqueue acks/s', 'vs BullMQ', 'vs BullMQ+AOF', 'CPU ms/1k jobs: platform, producer', 'failed', 'Target', 'Met?'],
  rows.map(([name, enqueue, handled, r, base, baseAof, target = '']) => {
    if (r instanceof Error) return [name, enqueue, handled, `error: ${r.message}`, '', '', '', '', '', target, target && 'n/a'];
    return [
      name,
      enqueue,
      handled,
      r.jobsPerSec.toFixed(0),
      r.acksPerSec.toFixed(0),
      ratio(r, base),
      ratio(r, baseAof),
      `${r.platformCpu.toFixed(0)}, ${r.producerCpu.toFixed(0)}`,
      failedText(r),
      target,
      target && (base instanceof Error ? 'n/a' : met(r.jobsPerSec >= base.jobsPerSec)),
    ];
  }),
);

const latencyRows: Array<[string, Latency | Error, string?]> = [
  ['BullMQ Queue.add → Worker', bullLat],
  ['BullMQ + AOF everysec', bullAofLat],
  ['Berth async invoke (Event)', eventLat, 'p99 ≤10 ms'],
];
const latencyTable = table(
  ['Competitor', 'offered jobs/s', 'samples / sent', 'p50 ms', 'p99 ms', 'max ms', `p99 ms after ${STEADY_AFTER_SECONDS} s`, 'producer late by ≤ ms', 'Target', 'Met?'],
  latencyRows.map(([name, r, target = '']) =>
    r instanceof Error
      ? [name, `error: ${r.message}`, '', '', '', '', '', '', target, target && 'n/a']
      : [
          name,
          String(r.rate),
          `${r.samples} / ${r.sent}${r.failed ? ` (${r.failed} failed)` : ''}`,
          ms(r.p50),
          ms(r.p99),
          ms(r.max),
          Number.isNaN(r.steadyP99) ? 'n/a' : ms(r.steadyP99),
          ms(r.maxBehindMs),
          target,
          target && met(r.p99 <= 10 && r.samples === r.sent),
        ],
  ),
);

const sqsTable = table(
  ['Path', 'msgs/s', `vs BullMQ addBulk ×${BATCH}`, `vs BullMQ addBulk ×${BATCH} + AOF`, 'CPU ms/1k msgs: Berth, SDK client', 'failed'],
  [
    [
      `SQS API: SendMessageBatch ×${BATCH} (${IN_FLIGHT / BATCH} in flight) + ${WORKERS} × (ReceiveMessage 10, wait 1 s → handler → DeleteMessageBatch)`,
      value(sqsApi, (r) => r.msgsPerSec.toFixed(0)),
      sqsApi instanceof Error || bulk instanceof Error ? 'n/a' : times(sqsApi.msgsPerSec / bulk.jobsPerSec),
      sqsApi instanceof Error || bulkAof instanceof Error ? 'n/a' : times(sqsApi.msgsPerSec / bulkAof.jobsPerSec),
      value(sqsApi, (r) => `${r.platformCpu.toFixed(0)}, ${r.clientCpu.toFixed(0)}`),
      value(sqsApi, failedText),
    ],
  ],
);

const date = new Date().toISOString().slice(0, 10);
const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
console.log(`
----- paste into docs/benchmarks.md -----
## Queue (bench:queue)

Measured ${date} with \`npm run bench:queue\`: Node ${process.version}, ${cpu}, ${CORES} cores;
${JOBS} jobs per throughput run after ${WARMUP_JOBS} warm-up jobs; ${WORKERS} jobs handled at once on every side;
producers, BullMQ's worker and Berth each in their own process; latency ${LATENCY_SECONDS} s open loop at
${halfLoad ?? 'n/a'} jobs/s (${process.env.BENCH_RATE ? 'BENCH_RATE' : 'half the lower single-enqueue throughput'}); enqueue-to-start measured by the handler.

Durable settings:
- Berth: acknowledged after the SQLite WAL commit, synchronous=NORMAL: survives kill -9 of Berth, not power loss.
- BullMQ: Redis as configured here: ${value(redisPersistence, (v) => v)}.${
  value(redisPersistence, (v) => v).includes('appendonly no') ? ' Nothing is on disk: a Redis restart loses every job.' : ''
}
- BullMQ + AOF: appendonly yes, appendfsync everysec (CONFIG SET for those rows, then restored): written to the AOF
  before Redis replies, so it survives kill -9 of Redis; up to 1 s is lost on power loss. The class Berth is in.

${throughputTable}

${latencyTable}

${sqsTable}
-----------------------------------------`);

const all = [bull, event, bullLat, eventLat, send, bulk, sqs1, sqs10, sqsApi, bullAof, bulkAof, bullAofLat].filter((r) => r !== skipped && r !== aofOff);
process.exitCode = all.some((r) => r instanceof Error) ? 1 : 0;
