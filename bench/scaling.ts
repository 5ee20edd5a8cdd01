// Scaling benchmark (seed 003): the same bursty SQS traffic into two queues, one consumed by a
// service with a fixed number of always-on instances (seed 003's ECS service with fixed tasks),
// one by a function that Berth scales from its queue's backlog and back to zero (the Lambda
// function). Seed 003 found ECS step scaling slow to react (CloudWatch's one-minute alarms) and
// never scaling back in; this measures how fast Berth's autoscaler reacts to a burst, whether
// the autoscaled consumer drains at least as fast as the fixed one, and how soon it is back at
// zero instances once idle.
//
// One Berth server (embedded SQLite store) runs bench/fixtures/scaling/berth.yml:
//   fixed   mode: service, minInstances = maxInstances = 5, consuming fixed-work (batches of 10)
//   auto    a function, maxConcurrency 20, scaleUpRate 20/s, idleTimeout 5 s, consuming auto-work
// Both run bench/fixtures/scaling/consumer.mjs: per message, WORK_BASE_MS + WORK_MS_PER_KB per KB
// of body (at most WORK_MAX_MS) of waiting, I/O-bound work, so more instances drain faster even on
// two cores. It appends every handled message (function, burst, number, start, end on
// CLOCK_MONOTONIC) to a file: drain times, throughput and repeats come from it.
//
// The seeder (bench/scaling-seeder.ts, its own process) sends both queues the same sequence from a
// seeded PRNG: BENCH_BURSTS bursts of about BENCH_MESSAGES messages each (0.6–1.4×), in random
// SendMessageBatch batches of 1–10, bodies of 100 B – 64 KB (log-uniform), each burst spread over
// 3–5 s, then 9–13 s of silence, long enough for the autoscaled function to reach zero.
// A sampler polls GET /_berth/functions (each function's `scaling`: desired, running, starting,
// idle, ready, queueDepth, oldestAgeMs) and GET /_berth/queues (visible, inflight, delayed) every
// 100 ms; instances = running + idle + ready + starting.
//
// Measured, per consumer and per burst:
//   drain       from the burst's first SendMessageBatch call until the last of its messages has
//               been handled (the handler's own record; the queue is then empty unless the next
//               burst has begun); total = the union of the bursts' drain intervals, so bursts
//               that overlap are not counted twice; messages/s = messages ÷ total
//   reaction    auto only: from the first SendMessageBatch call of a burst that finds the queue
//               empty to the first sample (issued after it) showing more instances or a higher
//               desired count than before it; and to the first message handled
//   to zero     auto only: from the last message handled before the next burst (the queue empty,
//               every environment idle) to the first sample with no instance
// The chart (docs/scaling.svg) shows backlog, instances and throughput of both over time.
//
// Run: npm run bench:scaling   (env: BENCH_SEED, default 3; BENCH_BURSTS, 4; BENCH_MESSAGES mean
//   per burst, 3000; BENCH_IN_FLIGHT batches the seeder has outstanding, 16; BENCH_WORK_BASE_MS, 2;
//   BENCH_WORK_MS_PER_KB, 1; BENCH_WORK_MAX_MS, 66; BENCH_SVG, docs/scaling.svg;
//   BENCH_TIMELINE=1 also prints the run second by second)
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { lastError, repoRoot, spawnIpc, startServer, stopServer, tempDir, treeCpuMs } from './children.js';
import { clock } from './queue-common.js';
import { attempt, met, positive, table, times } from './report.js';
import type { BurstSent, FromSeeder, SeederJob, SeederResult } from './scaling-seeder.js';
import { renderLineChart, type Series } from './svg-chart.js';

const SEED = Math.round(positive('BENCH_SEED', 3));
const BURSTS = Math.round(positive('BENCH_BURSTS', 4));
const MESSAGES = Math.round(positive('BENCH_MESSAGES', 3000));
const IN_FLIGHT = Math.round(positive('BENCH_IN_FLIGHT', 16));
const WORK_BASE_MS = positive('BENCH_WORK_BASE_MS', 2);
const WORK_MS_PER_KB = positive('BENCH_WORK_MS_PER_KB', 1);
const WORK_MAX_MS = positive('BENCH_WORK_MAX_MS', 66);
const MIN_SIZE = 100;
const MAX_SIZE = 64 * 1024;
const BURST_SECONDS: [number, number] = [3, 5];
const PAUSE_SECONDS: [number, number] = [9, 13];
const SAMPLE_MS = 100;
/** Throughput in the chart and timeline: handled messages per bucket of this many ms, as messages/s. */
const BUCKET_MS = 500;
/** After the seeder's last burst: every message handled and the autoscaled function at zero, or give up. */
const SETTLE_TIMEOUT_MS = 60_000;
/** How long to wait for the service's instances to start before the first burst. */
const READY_TIMEOUT_MS = 30_000;
/** Sampled before the first burst and after the end, for the chart. */
const LEAD_MS = 1500;
const TAIL_MS = 1500;
/** Berth reaps idle environments about once a second: the scale-to-zero target is idleTimeout plus that. */
const REAP_INTERVAL_S = 1;
const TARGET_REACTION_S = 1;
const TARGET_RATIO = 1;
const TIMELINE = process.env.BENCH_TIMELINE === '1';
const SVG_FILE = path.resolve(repoRoot, process.env.BENCH_SVG ?? 'docs/scaling.svg');
const CORES = os.availableParallelism();

const fixtureDir = path.join(repoRoot, 'bench/fixtures/scaling');

// ---- the project: the fixture, with where the consumers record --------------------------------

interface Consumer {
  key: 'fixed' | 'auto';
  fn: string;
  queue: string;
  label: string;
  color: string;
}

interface Setup {
  args: string[];
  env: Record<string, string>;
  recordFile: string;
  consumers: Consumer[];
  /** From berth.yml, for the labels and targets. */
  fixedInstances: number;
  fixedMax: number;
  autoMax: number;
  autoScaleUpRate: number;
  idleTimeoutS: number;
}

/** Seconds from berth.yml's number or duration string ("5s", "500ms", "2m"). */
function seconds(value: unknown, fallback: number): number {
  if (typeof value === 'number') return value;
  const m = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim()) : null;
  if (!m) return fallback;
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] ?? 's'] ?? 1;
  return Number(m[1]) * unit;
}

type RawFunction = { events?: Array<Record<string, unknown>>; environment?: Record<string, unknown> } & Record<string, unknown>;

function project(): Setup {
  const root = tempDir('berth-bench-scaling-');
  const dir = path.join(root, 'project');
  const data = path.join(root, 'data');
  const home = path.join(root, 'home');
  for (const d of [dir, data, home]) mkdirSync(d);
  cpSync(path.join(fixtureDir, 'consumer.mjs'), path.join(dir, 'consumer.mjs'));
  const recordFile = path.join(root, 'records');
  const config = parse(readFileSync(path.join(fixtureDir, 'berth.yml'), 'utf8')) as { functions: Record<string, RawFunction> };
  const fn = (name: string): RawFunction => {
    const spec = config.functions?.[name];
    if (!spec) throw new Error(`bench/fixtures/scaling/berth.yml has no function "${name}"`);
    spec.environment = {
      ...spec.environment,
      BENCH_RECORD_FILE: recordFile,
      WORK_BASE_MS: WORK_BASE_MS,
      WORK_MS_PER_KB: WORK_MS_PER_KB,
      WORK_MAX_MS: WORK_MAX_MS,
    };
    return spec;
  };
  const queueOf = (name: string, spec: RawFunction): string => {
    const queue = spec.events?.find((e) => typeof e.queue === 'string')?.queue;
    if (typeof queue !== 'string') throw new Error(`bench/fixtures/scaling/berth.yml: function "${name}" has no queue trigger`);
    return queue;
  };
  const fixed = fn('fixed');
  const auto = fn('auto');
  writeFileSync(path.join(dir, 'berth.yml'), stringify(config));
  const fixedInstances = Number(fixed.minInstances ?? 1);
  const autoMax = Number(auto.maxConcurrency ?? auto.maxInstances ?? NaN);
  return {
    args: [path.join(repoRoot, 'bin/berth'), 'start', dir, '--port', '0', '--data', data],
    env: { BERTH_HOME: home },
    recordFile,
    consumers: [
      { key: 'fixed', fn: 'fixed', queue: queueOf('fixed', fixed), label: `fixed (service, ${fixedInstances} instances)`, color: '#d95f02' },
      { key: 'auto', fn: 'auto', queue: queueOf('auto', auto), label: `auto (function, 0–${autoMax})`, color: '#1f6fb4' },
    ],
    fixedInstances,
    fixedMax: Number(fixed.maxInstances ?? fixedInstances),
    autoMax,
    autoScaleUpRate: Number(auto.scaleUpRate ?? NaN),
    idleTimeoutS: seconds(auto.idleTimeout, 300),
  };
}

// ---- the sampler: Berth's own view, every 100 ms ------------------------------------------------

interface FnSample {
  /** NaN when Berth does not report it. */
  desired: number;
  running: number;
  starting: number;
  idle: number;
  ready: number;
  instances: number;
  queueDepth: number;
  oldestAgeMs: number;
}

interface QueueSample {
  visible: number;
  inflight: number;
  delayed: number;
}

interface Tick {
  /** clock() when the requests were issued, and when both answers had arrived. */
  sentAt: number;
  at: number;
  fns: Record<string, FnSample>;
  queues: Record<string, QueueSample>;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);
const orZero = (v: number) => (Number.isNaN(v) ? 0 : v);

/** One function of GET /_berth/functions: its `scaling` block, or the pool's counts where there is none. */
function fnSample(f: Record<string, unknown>): FnSample {
  const s = (f.scaling ?? {}) as Record<string, unknown>;
  const e = (f.environments ?? {}) as Record<string, unknown>;
  const has = f.scaling !== undefined;
  const running = orZero(num(has ? s.running : e.busy));
  const starting = orZero(num(has ? s.starting : e.starting));
  const idle = orZero(num(has ? s.idle : e.idle));
  const ready = orZero(num(has ? s.ready : e.ready));
  return {
    desired: num(s.desired),
    running,
    starting,
    idle,
    ready,
    instances: running + starting + idle + ready,
    queueDepth: num(s.queueDepth),
    oldestAgeMs: num(s.oldestAgeMs),
  };
}

function getJson(agent: http.Agent, url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer after 5 s`)));
    req.on('error', reject);
  });
}

class Sampler {
  readonly ticks: Tick[] = [];
  errors = 0;
  firstError: string | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 2 });

  constructor(private readonly url: string) {}

  start(): this {
    this.loop = this.run();
    return this;
  }

  latest(): Tick | undefined {
    return this.ticks.at(-1);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.agent.destroy();
  }

  private async run(): Promise<void> {
    let next = clock();
    while (!this.stopped) {
      const sentAt = clock();
      try {
        const [functions, queues] = (await Promise.all([getJson(this.agent, `${this.url}/_berth/functions`), getJson(this.agent, `${this.url}/_berth/queues`)])) as [
          { functions: Array<Record<string, unknown>> },
          { queues: Array<Record<string, unknown>> },
        ];
        this.ticks.push({
          sentAt,
          at: clock(),
          fns: Object.fromEntries(functions.functions.map((f) => [String(f.name), fnSample(f)])),
          queues: Object.fromEntries(
            queues.queues.map((q) => [String(q.name), { visible: orZero(num(q.visible)), inflight: orZero(num(q.inflight)), delayed: orZero(num(q.delayed)) }]),
          ),
        });
      } catch (err) {
        this.errors++;
        this.firstError ??= err instanceof Error ? err.message : String(err);
      }
      next += SAMPLE_MS;
      const wait = next - clock();
      if (wait > 0) await sleep(wait);
      else next = clock();
    }
  }
}

const backlog = (tick: Tick, queue: string) => {
  const q = tick.queues[queue];
  return q ? q.visible + q.inflight + q.delayed : NaN;
};

/** Polls the latest sample until `done` holds; false at the deadline. */
async function until(sampler: Sampler, done: (tick: Tick) => boolean, deadline: number): Promise<boolean> {
  for (;;) {
    const tick = sampler.latest();
    if (tick && done(tick)) return true;
    if (clock() > deadline) return false;
    await sleep(SAMPLE_MS);
  }
}

// ---- the seeder -----------------------------------------------------------------------------------

function runSeeder(job: SeederJob, timeoutMs: number, onBurst: (burst: BurstSent) => void): Promise<SeederResult> {
  const { child, stderr } = spawnIpc('scaling-seeder.js', job);
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('message', (message: FromSeeder) => {
      if (message.t === 'burst') onBurst(message.burst);
      else if (message.t === 'result') {
        settled = true;
        resolve(message.result);
      } else {
        settled = true;
        reject(new Error(`seeder: ${message.message}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (settled) return;
      reject(new Error(signal === 'SIGKILL' ? `seeder timed out after ${timeoutMs / 1000} s` : `seeder exited (${code ?? signal}): ${lastError(stderr())}`));
    });
  });
}

// ---- what the consumers recorded ----------------------------------------------------------------

interface Handled {
  fn: string;
  burst: number;
  n: number;
  start: number;
  end: number;
}

function readRecords(file: string): Handled[] {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const out: Handled[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) (-?\d+) (\d+) (\S+) (\S+)$/.exec(line);
    if (m) out.push({ fn: m[1]!, burst: Number(m[2]), n: Number(m[3]), start: Number(m[4]), end: Number(m[5]) });
  }
  return out;
}

// ---- one run --------------------------------------------------------------------------------------

interface Run {
  setup: Setup;
  seeded: SeederResult;
  ticks: Tick[];
  records: Handled[];
  /** Whether the service's instances were all up and the function at zero before the first burst. */
  readyBefore: boolean;
  /** Whether everything was handled and the function back at zero before the settle timeout. */
  settled: boolean;
  samplerErrors: number;
  samplerError?: string;
  /** Average cores busy over the run: Berth and its sandboxes. */
  berthCores: number;
  seconds: number;
}

async function run(): Promise<Run> {
  const setup = project();
  const server = await startServer(setup.args, setup.env);
  const sampler = new Sampler(server.url).start();
  try {
    const [fixed, auto] = setup.consumers as [Consumer, Consumer];
    const readyBefore = await until(
      sampler,
      (t) => (t.fns[fixed.fn]?.instances ?? 0) >= setup.fixedInstances && (t.fns[fixed.fn]?.starting ?? 1) === 0 && t.fns[auto.fn]?.instances === 0,
      clock() + READY_TIMEOUT_MS,
    );
    if (!sampler.latest()) throw new Error(`no answer from ${server.url}/_berth/functions: ${sampler.firstError ?? 'none yet'}`);
    await sleep(LEAD_MS);
    const cpuStart = { at: clock(), berth: treeCpuMs(server.child.pid!) };
    const seeded = await runSeeder(
      {
        url: server.url,
        queues: setup.consumers.map((c) => c.queue),
        seed: SEED,
        bursts: BURSTS,
        messages: MESSAGES,
        minSize: MIN_SIZE,
        maxSize: MAX_SIZE,
        burstSeconds: BURST_SECONDS,
        pauseSeconds: PAUSE_SECONDS,
        inFlight: IN_FLIGHT,
      },
      BURSTS * (BURST_SECONDS[1] + PAUSE_SECONDS[1] + 30) * 1000,
      (b) =>
        console.log(
          `  burst ${b.burst + 1}: ${b.messages} messages, ${(b.bytes / 1e6).toFixed(1)} MB, sent in ${((b.lastAck - b.startedAt) / 1000).toFixed(1)} s ` +
            `(planned ${b.plannedSeconds.toFixed(1)} s); backlog then: ${setup.consumers.map((c) => `${c.key} ${backlog(sampler.latest()!, c.queue)}`).join(', ')}`,
        ),
    );
    const sent = (queue: string) => seeded.bursts.reduce((s, b) => s + (b.sent[queue] ?? 0), 0);
    const settled = await until(
      sampler,
      (t) =>
        setup.consumers.every((c) => backlog(t, c.queue) === 0) &&
        t.fns[auto.fn]?.instances === 0 &&
        setup.consumers.every((c) => new Set(readRecords(setup.recordFile).filter((r) => r.fn === c.fn).map((r) => `${r.burst}:${r.n}`)).size >= sent(c.queue)),
      clock() + SETTLE_TIMEOUT_MS,
    );
    await sleep(TAIL_MS);
    const cpuEnd = { at: clock(), berth: treeCpuMs(server.child.pid!) };
    await sampler.stop();
    return {
      setup,
      seeded,
      ticks: sampler.ticks,
      records: readRecords(setup.recordFile),
      readyBefore,
      settled,
      samplerErrors: sampler.errors,
      ...(sampler.firstError ? { samplerError: sampler.firstError } : {}),
      berthCores: (cpuEnd.berth - cpuStart.berth) / (cpuEnd.at - cpuStart.at),
      seconds: (cpuEnd.at - cpuStart.at) / 1000,
    };
  } finally {
    await sampler.stop();
    await stopServer(server.child);
  }
}

// ---- analysis -------------------------------------------------------------------------------------

interface BurstOutcome {
  /** Seconds from the burst's first send until its last message was handled; NaN if some never were. */
  drain: number;
  handled: number;
}

interface ConsumerOutcome {
  consumer: Consumer;
  sent: number;
  failedSends: number;
  handled: number;
  repeats: number;
  bursts: BurstOutcome[];
  /** Union of the bursts' drain intervals, s. */
  totalDrain: number;
  perSecond: number;
  peakInstances: number;
  minInstances: number;
  peakBacklog: number;
  /** Most messages being handled at the same moment (one per invocation: a batch's run one after another). */
  peakRunning: number;
  /** The oldest waiting message's age at its worst (Berth's queueDepth/oldestAgeMs), s; NaN when not reported. */
  peakOldestAge: number;
}

interface Reaction {
  /** Why it was not measured, if it was not. */
  skipped?: string;
  baseline: number;
  /** s from the first send to the first sample with more instances (or desired), and to the first message handled. */
  instances: number;
  handled: number;
  /** s from the first send to the burst's peak of instances, and that peak. */
  toPeak: number;
  peak: number;
}

interface ToZero {
  /** s from the last message handled to the first sample with no instance; NaN when it did not get there before the next burst. */
  seconds: number;
  left: number;
}

function analyse(r: Run) {
  const origin = r.seeded.bursts[0]!.startedAt;
  const end = r.ticks.at(-1)?.at ?? origin;
  const activeTicks = r.ticks.filter((t) => t.sentAt >= origin);
  const consumers: ConsumerOutcome[] = r.setup.consumers.map((consumer) => {
    const mine = r.records.filter((x) => x.fn === consumer.fn);
    const seen = new Set<string>();
    let repeats = 0;
    for (const x of mine) {
      const key = `${x.burst}:${x.n}`;
      if (seen.has(key)) repeats++;
      seen.add(key);
    }
    const intervals: Array<[number, number]> = [];
    const bursts = r.seeded.bursts.map((b): BurstOutcome => {
      const ofBurst = mine.filter((x) => x.burst === b.burst);
      const distinct = new Set(ofBurst.map((x) => x.n)).size;
      const last = Math.max(...ofBurst.map((x) => x.end));
      const complete = distinct >= (b.sent[consumer.queue] ?? 0) && ofBurst.length > 0;
      if (complete) intervals.push([b.startedAt, last]);
      return { drain: complete ? (last - b.startedAt) / 1000 : NaN, handled: distinct };
    });
    intervals.sort((a, b) => a[0] - b[0]);
    let total = 0;
    let cursor = -Infinity;
    for (const [from, to] of intervals) {
      const start = Math.max(from, cursor);
      if (to > start) total += to - start;
      cursor = Math.max(cursor, to);
    }
    // At the same instant an end comes before a start: a slot handed straight on is not two.
    const edges = mine.flatMap((x): Array<[number, number]> => [[x.start, 1], [x.end, -1]]).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
    let runningNow = 0;
    let peakRunning = 0;
    for (const [, delta] of edges) peakRunning = Math.max(peakRunning, (runningNow += delta));
    const instances = activeTicks.map((t) => t.fns[consumer.fn]?.instances ?? NaN).filter(Number.isFinite);
    const sent = r.seeded.bursts.reduce((s, b) => s + (b.sent[consumer.queue] ?? 0), 0);
    const allDrained = bursts.every((b) => Number.isFinite(b.drain));
    return {
      consumer,
      sent,
      failedSends: r.seeded.bursts.reduce((s, b) => s + (b.failed[consumer.queue] ?? 0), 0),
      handled: seen.size,
      repeats,
      bursts,
      totalDrain: allDrained ? total / 1000 : NaN,
      perSecond: allDrained ? (seen.size * 1000) / total : NaN,
      peakInstances: Math.max(...instances),
      minInstances: Math.min(...instances),
      peakBacklog: Math.max(...activeTicks.map((t) => backlog(t, consumer.queue)).filter(Number.isFinite)),
      peakRunning,
      peakOldestAge: Math.max(-Infinity, ...activeTicks.map((t) => t.fns[consumer.fn]?.oldestAgeMs ?? NaN).filter(Number.isFinite)) / 1000,
    };
  });

  const auto = r.setup.consumers.find((c) => c.key === 'auto')!;
  const autoRecords = r.records.filter((x) => x.fn === auto.fn);
  const reactions: Reaction[] = [];
  const toZero: ToZero[] = [];
  r.seeded.bursts.forEach((b, i) => {
    const t0 = b.startedAt;
    const next = r.seeded.bursts[i + 1]?.startedAt ?? Infinity;
    const before = [...r.ticks].reverse().find((t) => t.at <= t0);
    const during = r.ticks.filter((t) => t.sentAt >= t0 && t.sentAt < next);
    const fnOf = (t: Tick) => t.fns[auto.fn];
    const firstHandled = Math.min(...autoRecords.filter((x) => x.burst === b.burst).map((x) => x.start));
    const peak = Math.max(0, ...during.map((t) => fnOf(t)?.instances ?? 0));
    const peakTick = during.find((t) => fnOf(t)?.instances === peak);
    const reaction: Reaction = {
      baseline: before ? (fnOf(before)?.instances ?? NaN) : NaN,
      instances: NaN,
      handled: (firstHandled - t0) / 1000,
      toPeak: peakTick ? (peakTick.at - t0) / 1000 : NaN,
      peak,
    };
    if (!before) reaction.skipped = 'no sample before it';
    else if (backlog(before, auto.queue) > 0) reaction.skipped = `backlog of ${backlog(before, auto.queue)} left`;
    else {
      const base = fnOf(before)!;
      const rose = during.find((t) => {
        const now = fnOf(t);
        return now !== undefined && (now.instances > base.instances || now.desired > base.desired);
      });
      if (rose) reaction.instances = (rose.at - t0) / 1000;
    }
    reactions.push(reaction);

    // Idle from the last message handled before the next burst; at zero by the first sample with none.
    const lastUse = Math.max(...autoRecords.filter((x) => x.start < next).map((x) => x.end));
    const zero = r.ticks.find((t) => t.sentAt >= lastUse && t.sentAt < next && fnOf(t)?.instances === 0);
    const lastBefore = [...r.ticks].reverse().find((t) => t.sentAt < next);
    toZero.push({ seconds: zero ? (zero.at - lastUse) / 1000 : NaN, left: zero ? 0 : (lastBefore && fnOf(lastBefore)?.instances) ?? NaN });
  });

  return { origin, end, consumers, reactions, toZero };
}

type Analysis = ReturnType<typeof analyse>;

/** Notes for a consumer that had more environments live than its limit: which states they were in at the peak. */
function overLimit(r: Run, a: Analysis): string[] {
  const limits: Record<Consumer['key'], [number, string]> = {
    fixed: [r.setup.fixedMax, 'maxInstances'],
    auto: [r.setup.autoMax, 'maxConcurrency'],
  };
  return a.consumers.flatMap((c) => {
    const [limit, name] = limits[c.consumer.key];
    if (!(c.peakInstances > limit)) return [];
    const peak = r.ticks.find((t) => t.sentAt >= a.origin && t.fns[c.consumer.fn]?.instances === c.peakInstances)!;
    return [`- ${c.consumer.key}: up to ${c.peakInstances} environments live, above its ${name} of ${limit} (at the peak ${counts(peak.fns[c.consumer.fn]!)}); at most ${c.peakRunning} handled messages at once.`];
  });
}

// ---- chart and timeline ---------------------------------------------------------------------------

function throughputSeries(records: Handled[], fn: string, origin: number, end: number): Array<[number, number]> {
  const buckets = new Map<number, number>();
  for (const x of records) if (x.fn === fn) buckets.set(Math.floor((x.end - origin) / BUCKET_MS), (buckets.get(Math.floor((x.end - origin) / BUCKET_MS)) ?? 0) + 1);
  const points: Array<[number, number]> = [];
  for (let k = Math.floor(-LEAD_MS / BUCKET_MS); k * BUCKET_MS <= end - origin; k++) points.push([((k + 0.5) * BUCKET_MS) / 1000, ((buckets.get(k) ?? 0) * 1000) / BUCKET_MS]);
  return points;
}

function chart(r: Run, a: Analysis): string {
  const s = (t: number) => (t - a.origin) / 1000;
  const series = (c: Consumer, value: (t: Tick) => number, extra: Partial<Series> = {}): Series => ({
    name: c.label,
    color: c.color,
    points: r.ticks.map((t) => [s(t.at), value(t)] as [number, number]),
    ...extra,
  });
  const [fixed, auto] = r.setup.consumers as [Consumer, Consumer];
  const hasDesired = r.ticks.some((t) => Number.isFinite(t.fns[auto.fn]?.desired));
  return renderLineChart({
    title: `Bursty SQS traffic: fixed service (${r.setup.fixedInstances} instances) vs autoscaled function (0–${r.setup.autoMax}), same messages`,
    xLabel: 'seconds since the first burst (shaded: messages being sent)',
    width: 900,
    height: 520,
    xMin: Math.max(-LEAD_MS / 1000 - 0.5, s(r.ticks[0]?.at ?? a.origin)),
    xMax: s(a.end),
    bands: r.seeded.bursts.map((b) => ({ from: s(b.startedAt), to: s(b.lastAck), label: `burst ${b.burst + 1}: ${b.messages}` })),
    panels: [
      {
        title: 'Backlog (visible + in flight)',
        yLabel: 'messages',
        series: [series(fixed, (t) => backlog(t, fixed.queue)), series(auto, (t) => backlog(t, auto.queue))],
      },
      {
        title: 'Instances (running + starting + idle + ready)',
        yLabel: 'instances',
        yMin: Math.max(r.setup.fixedInstances, 5),
        series: [
          series(fixed, (t) => t.fns[fixed.fn]?.instances ?? NaN, { step: true, legend: false }),
          series(auto, (t) => t.fns[auto.fn]?.instances ?? NaN, { step: true, legend: false }),
          ...(hasDesired ? [series(auto, (t) => t.fns[auto.fn]?.desired ?? NaN, { name: 'auto desired', dashed: true, step: true, color: '#6baed6' })] : []),
        ],
      },
      {
        title: `Throughput (messages handled per ${BUCKET_MS} ms, as per second)`,
        yLabel: 'messages/s',
        series: r.setup.consumers.map((c) => ({ name: c.label, color: c.color, legend: false, points: throughputSeries(r.records, c.fn, a.origin, a.end) })),
      },
    ],
  });
}

/** "9: 5 running, 4 idle" — the instances and the states they are in. */
const counts = (f: FnSample) =>
  `${f.instances}${f.instances > 0 ? `: ${(['running', 'starting', 'idle', 'ready'] as const).filter((k) => f[k] > 0).map((k) => `${f[k]} ${k}`).join(', ')}` : ''}`;

function timeline(r: Run, a: Analysis): string {
  const rows: string[][] = [];
  const [fixed, auto] = r.setup.consumers as [Consumer, Consumer];
  for (let t = Math.floor((r.ticks[0]!.at - a.origin) / 1000); a.origin + t * 1000 < a.end; t++) {
    const from = a.origin + t * 1000;
    const tick = [...r.ticks].reverse().find((x) => x.at < from + 1000);
    const done = (fn: string) => r.records.filter((x) => x.fn === fn && x.end >= from && x.end < from + 1000).length;
    const bursts = r.seeded.bursts.filter((b) => b.startedAt >= from && b.startedAt < from + 1000).map((b) => `burst ${b.burst + 1}`);
    const f = tick?.fns[fixed.fn];
    const au = tick?.fns[auto.fn];
    rows.push([
      String(t),
      bursts.join(', '),
      tick ? String(backlog(tick, fixed.queue)) : '',
      tick ? String(backlog(tick, auto.queue)) : '',
      f ? counts(f) : '',
      au ? counts(au) : '',
      au && Number.isFinite(au.desired) ? String(au.desired) : '',
      String(done(fixed.fn)),
      String(done(auto.fn)),
    ]);
  }
  return table(['s', 'event', 'fixed backlog', 'auto backlog', 'fixed instances', 'auto instances', 'auto desired', 'fixed handled', 'auto handled'], rows);
}

// ---- main -----------------------------------------------------------------------------------------

// Hard stop: every step has its own timeout, this catches anything that still hangs.
const budgetMs = (READY_TIMEOUT_MS + BURSTS * (BURST_SECONDS[1] + PAUSE_SECONDS[1] + 30) * 1000 + SETTLE_TIMEOUT_MS + 60_000);
setTimeout(() => {
  console.error(`bench:scaling: watchdog fired after ${budgetMs / 1000} s, killing children`);
  process.exit(1);
}, budgetMs).unref();

console.log(
  `bench:scaling: seed ${SEED}, ${BURSTS} bursts of ~${MESSAGES} messages (${MIN_SIZE} B – ${MAX_SIZE / 1024} KB, batches of 1–10) into both queues; ` +
    `work ${WORK_BASE_MS} ms + ${WORK_MS_PER_KB} ms/KB (≤ ${WORK_MAX_MS} ms) per message; ${CORES} cores`,
);
const outcome = await attempt('fixed service and autoscaled function, same bursts', run);
if (outcome instanceof Error) {
  process.exitCode = 1;
} else {
  report(outcome);
}

function report(r: Run): void {
  const a = analyse(r);
  mkdirSync(path.dirname(SVG_FILE), { recursive: true });
  writeFileSync(SVG_FILE, chart(r, a));
  if (TIMELINE) console.log(`\nSecond by second:\n${timeline(r, a)}\n`);

  const [fixed, auto] = a.consumers as [ConsumerOutcome, ConsumerOutcome];
  const sec = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
  const targetZero = r.setup.idleTimeoutS + REAP_INTERVAL_S;

  const burstTable = table(
    ['Burst', 'messages', 'MB', 'sent over s', 'fixed drain s', 'auto drain s', 'auto ÷ fixed', 'auto reaction s', 'auto first handled s', 'auto peak (after s)', 'auto to zero s'],
    r.seeded.bursts.map((b, i) => {
      const re = a.reactions[i]!;
      const z = a.toZero[i]!;
      return [
        String(b.burst + 1),
        String(b.messages),
        (b.bytes / 1e6).toFixed(1),
        ((b.lastAck - b.startedAt) / 1000).toFixed(2),
        sec(fixed.bursts[i]!.drain),
        sec(auto.bursts[i]!.drain),
        times(auto.bursts[i]!.drain / fixed.bursts[i]!.drain),
        re.skipped ? `n/a (${re.skipped})` : `${sec(re.instances)} (from ${re.baseline})`,
        sec(re.handled),
        `${re.peak} (${sec(re.toPeak)})`,
        Number.isFinite(z.seconds) ? z.seconds.toFixed(2) : `not before ${i + 1 < r.seeded.bursts.length ? 'the next burst' : 'the end'} (${z.left} left)`,
      ];
    }),
  );

  const consumerTable = table(
    ['Consumer', 'messages sent (failed)', 'handled (repeats)', 'total drain s', 'messages/s', 'instances min–peak', 'handlers at once, peak', 'peak backlog', 'oldest waiting, worst s'],
    a.consumers.map((c) => [
      c.consumer.label,
      `${c.sent} (${c.failedSends})`,
      `${c.handled} (${c.repeats})`,
      sec(c.totalDrain),
      Number.isFinite(c.perSecond) ? c.perSecond.toFixed(0) : 'n/a',
      `${c.minInstances}–${c.peakInstances}`,
      String(c.peakRunning),
      String(c.peakBacklog),
      sec(c.peakOldestAge),
    ]),
  );

  const measured = a.reactions.filter((x) => !x.skipped);
  const worstReaction = measured.length > 0 ? Math.max(...measured.map((x) => x.instances)) : NaN;
  const ratio = auto.totalDrain / fixed.totalDrain;
  const zeros = a.toZero.map((z) => z.seconds);
  const worstZero = zeros.some((z) => !Number.isFinite(z)) ? NaN : Math.max(...zeros);
  const everyOnce = a.consumers.every((c) => c.failedSends === 0 && c.handled === c.sent);
  const targetRows: string[][] = [
    [
      'Autoscaled reaction: first send of a burst → more instances (worst burst)',
      `${sec(worstReaction)} s (${measured.map((x) => sec(x.instances)).join(', ')})`,
      `≤ ${TARGET_REACTION_S} s`,
      measured.length === 0 ? 'n/a' : met(worstReaction <= TARGET_REACTION_S),
    ],
    [
      'Drain time, autoscaled ÷ fixed (all bursts)',
      `${times(ratio)} (${sec(auto.totalDrain)} s vs ${sec(fixed.totalDrain)} s)`,
      `≤ ${times(TARGET_RATIO)}`,
      Number.isFinite(ratio) ? met(ratio <= TARGET_RATIO) : 'n/a',
    ],
    [
      'Scale to zero: last message handled → 0 instances (worst)',
      `${sec(worstZero)} s (${zeros.map(sec).join(', ')})`,
      `≤ idleTimeout ${r.setup.idleTimeoutS} s + reap ${REAP_INTERVAL_S} s = ${targetZero} s`,
      met(Number.isFinite(worstZero) && worstZero <= targetZero),
    ],
    ['Every message sent handled, by both consumers', everyOnce ? 'yes' : `fixed ${fixed.handled}/${fixed.sent}, auto ${auto.handled}/${auto.sent}`, 'all', met(everyOnce)],
  ];
  const targetTable = table(['Measurement', 'Value', 'Target', 'Met?'], targetRows);

  const notes = [
    `- Berth and its sandboxes kept ${r.berthCores.toFixed(2)} of ${CORES} cores busy on average over the ${r.seconds.toFixed(0)} s from the first burst.`,
    `- Seeder: the latest batch left ${Math.max(...r.seeded.bursts.map((b) => b.maxBehindMs)).toFixed(0)} ms after its planned time${r.seeded.firstError ? `; first failed send: ${r.seeded.firstError.slice(0, 160)}` : ''}.`,
    ...(r.readyBefore ? [] : [`- Before the first burst the service did not have its ${r.setup.fixedInstances} instances up, or the function was not at zero, within ${READY_TIMEOUT_MS / 1000} s.`]),
    ...(r.settled ? [] : [`- Not settled ${SETTLE_TIMEOUT_MS / 1000} s after the last burst: messages left unhandled or the function not at zero.`]),
    ...overLimit(r, a),
    ...(r.samplerErrors > 0 ? [`- ${r.samplerErrors} samples failed: ${r.samplerError?.slice(0, 160)}`] : []),
    ...(r.ticks.some((t) => Number.isFinite(t.fns[auto.consumer.fn]?.desired)) ? [] : ['- Berth reported no `scaling` block: instances are the pool\'s environment counts and there is no desired count.']),
  ].join('\n');

  const date = new Date().toISOString().slice(0, 10);
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const svgRel = path.relative(path.join(repoRoot, 'docs'), SVG_FILE);
  console.log(`
----- paste into docs/benchmarks.md -----
## Scaling: fixed service vs autoscaled function (bench:scaling)

Measured ${date} with \`npm run bench:scaling\`: Node ${process.version}, ${cpu}, ${CORES} cores. Seed 003's experiment: an SQS seeder
sends the same messages to two queues; an ECS-style service with ${r.setup.fixedInstances} fixed instances consumes one, a function
autoscaled from its queue's backlog (≤ ${r.setup.autoMax} environments, ${r.setup.autoScaleUpRate}/s scale-up, idleTimeout ${r.setup.idleTimeoutS} s) the other.
- Seeder (its own process, seed ${SEED}): ${BURSTS} bursts of 0.6–1.4 × ${MESSAGES} messages, SendMessageBatch of 1–10, bodies ${MIN_SIZE} B – ${MAX_SIZE / 1024} KB
  log-uniform, each burst spread over ${BURST_SECONDS[0]}–${BURST_SECONDS[1]} s, then ${PAUSE_SECONDS[0]}–${PAUSE_SECONDS[1]} s of silence; one Berth, embedded SQLite store; batches of 10 to both consumers.
- Consumer: ${WORK_BASE_MS} ms + ${WORK_MS_PER_KB} ms per KB (≤ ${WORK_MAX_MS} ms) of waiting per message, one message after the other.
- Drain: burst's first send → its last message handled; total = union over bursts. Reaction: first send → first ${SAMPLE_MS} ms sample
  with more instances (or a higher desired count). To zero: last message handled → first sample with 0 instances. Both are
  read off samples of GET /_berth/functions every ${SAMPLE_MS} ms, so they may be up to ${SAMPLE_MS} ms late.

![Backlog, instances and throughput over time](${svgRel})

${burstTable}

${consumerTable}

${targetTable}

${notes}
-----------------------------------------`);
  process.exitCode = r.settled ? 0 : 1;
}
