// The client of bench/flow.ts: starts runs and waits for each to finish, `concurrency` runs in
// flight (closed loop: a lane starts its next run when its last one has finished). Always its
// own process, so it never shares an event loop with what it measures:
//   node dist/bench/flow-client.js '<FlowClientJob json>'   (with an IPC channel)
//   berth        POST <url>/_berth/flows/<flow>/runs?wait=true {"input": …}: answered when the run
//                has finished, with the run record (every step's timings); keep-alive node:http
//   bull-chain   Queue.add of the run's first job (fetch); the run is over when its post job
//                completes (QueueEvents)
//   bull-flow    FlowProducer.add of the run as a nested flow of six jobs; over when the root
//                (post) completes (QueueEvents)
// Latency is the client's: clock() before the call that starts the run → the moment it learns
// the run finished. Sends { t: 'result', result } and exits.
import http from 'node:http';
import { FlowProducer, Queue, QueueEvents, type FlowJob } from 'bullmq';
import { fileName, STEPS } from './flow-common.js';
import type { StepData } from './flow-worker.js';
import { clock, connectRedis, type RedisAddress } from './queue-common.js';

interface Common {
  runs: number;
  concurrency: number;
  customer: string;
  /** Run n pulls fileName(n, files). */
  files: number;
  /** Run ids are `${tag}${n}`: unique within one BullMQ prefix, whatever the measurement. */
  tag: string;
}
export type FlowClientJob =
  | (Common & {
      kind: 'berth';
      url: string;
      flow: string;
      extra?: Record<string, unknown>;
      /** The flow's top-level step ids in order (records of steps started in the same ms come back by name). */
      steps: string[];
      /** For a forEach, its id and its nested step ids in order: each item's timings are averaged. */
      forEach?: { id: string; steps: string[] };
    })
  | (Common & { kind: 'bull-chain' | 'bull-flow'; redis: RedisAddress; prefix: string; queue: string });

/** One finished run as Berth recorded it. */
export interface BerthRun {
  /** finishedAt − createdAt, ms (Berth's clock, whole ms). */
  own: number;
  /** Step records of the run (a forEach's items' steps included). */
  stepRecords: number;
  /**
   * For a flat flow: [start, step 1, gap, step 2, gap, …, step N, end] in ms: createdAt → the
   * first step's start, each top-level step's own duration, the gaps between one step's finish
   * and the next one's start, and the last finish → finishedAt.
   */
  segments: number[];
  /** With `forEach`: [step 1, gap, step 2, …] of its items, the mean over the run's items. */
  itemSegments?: number[];
}

export interface FlowClientResult {
  /** clock() when the first run was started and when the last one was seen finished. */
  startedAt: number;
  doneAt: number;
  /** Client-side latency (ms) of every run that succeeded. */
  latencies: number[];
  /** berth: what the run records say, per successful run. */
  berth: BerthRun[];
  ok: number;
  failed: number;
  firstError?: string;
  /** CPU time (user + system) this process spent from the first run to the last, ms; and in all, start included. */
  cpuMs: number;
  cpuTotalMs: number;
}
export type FromFlowClient = { t: 'result'; result: FlowClientResult } | { t: 'error'; message: string };

interface RunRecord {
  status: string;
  error: unknown;
  createdAt: number;
  finishedAt: number | null;
  steps: { step: string; status: string; startedAt: number; finishedAt: number | null }[];
}

function postJson(agent: http.Agent, url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts a run and resolves when it has finished; rejects when it failed. */
type StartRun = (n: number) => Promise<BerthRun | undefined>;

async function berthRunner(job: Extract<FlowClientJob, { kind: 'berth' }>): Promise<{ start: StartRun; close: () => Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
  const url = `${job.url}/_berth/flows/${job.flow}/runs?wait=true`;
  // Open the connections before the clock starts, as ioredis's are open on the other side.
  await Promise.all(
    Array.from({ length: job.concurrency }, () => new Promise<void>((resolve, reject) => {
      http.get(`${job.url}/_berth/health`, { agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
    })),
  );
  return {
    start: async (n) => {
      const input = { customer: job.customer, file: fileName(n, job.files), ...job.extra };
      const { status, text } = await postJson(agent, url, JSON.stringify({ input }));
      if (status !== 200) throw new Error(`HTTP ${status}: ${text.slice(0, 300)}`);
      const run = JSON.parse(text) as RunRecord;
      if (run.status !== 'succeeded' || run.finishedAt === null) throw new Error(`run ${run.status}: ${JSON.stringify(run.error).slice(0, 300)}`);
      const byName = new Map(run.steps.map((s) => [s.step, s]));
      const segments: number[] = [];
      let at = run.createdAt;
      for (const id of job.steps) {
        const step = byName.get(id);
        if (!step) throw new Error(`run ${run.status} without a record of step ${id}`);
        segments.push(step.startedAt - at, (step.finishedAt ?? step.startedAt) - step.startedAt);
        at = step.finishedAt ?? step.startedAt;
      }
      segments.push(run.finishedAt - at);
      const result: BerthRun = { own: run.finishedAt - run.createdAt, stepRecords: run.steps.length, segments };
      if (job.forEach) {
        const { id, steps } = job.forEach;
        const sums = new Array<number>(steps.length * 2 - 1).fill(0);
        let items = 0;
        for (; byName.has(`${id}[${items}].${steps[0]}`); items++) {
          const records = steps.map((s) => byName.get(`${id}[${items}].${s}`));
          records.forEach((r, i) => {
            if (!r) return;
            sums[i * 2]! += (r.finishedAt ?? r.startedAt) - r.startedAt;
            if (i > 0 && records[i - 1]) sums[i * 2 - 1]! += r.startedAt - (records[i - 1]!.finishedAt ?? r.startedAt);
          });
        }
        if (items > 0) result.itemSegments = sums.map((v) => v / items);
      }
      return result;
    },
    close: async () => agent.destroy(),
  };
}

async function bullRunner(job: Extract<FlowClientJob, { kind: 'bull-chain' | 'bull-flow' }>): Promise<{ start: StartRun; close: () => Promise<void> }> {
  const connection = await connectRedis(job.redis);
  const eventsConnection = await connectRedis(job.redis);
  const events = new QueueEvents(job.queue, { connection: eventsConnection as never, prefix: job.prefix });
  const queue = job.kind === 'bull-chain' ? new Queue<StepData>(job.queue, { connection: connection as never, prefix: job.prefix }) : undefined;
  const producer = job.kind === 'bull-flow' ? new FlowProducer({ connection: connection as never, prefix: job.prefix }) : undefined;
  await events.waitUntilReady();
  await queue?.waitUntilReady();
  await producer?.waitUntilReady();
  // A run is over when its last job (`<run>-post`) completes; any of its jobs failing fails it.
  const pending = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  const last = `-${STEPS.at(-1)}`;
  events.on('completed', ({ jobId }) => {
    if (jobId.endsWith(last)) pending.get(jobId.slice(0, -last.length))?.resolve();
  });
  events.on('failed', ({ jobId, failedReason }) => {
    pending.get(jobId.slice(0, jobId.lastIndexOf('-')))?.reject(new Error(`job ${jobId} failed: ${failedReason}`));
  });
  return {
    start: (n) => {
      const run = `${job.tag}${n}`;
      const data: StepData = { run, input: { customer: job.customer, file: fileName(n, job.files) } };
      const finished = new Promise<undefined>((resolve, reject) => pending.set(run, { resolve: () => resolve(undefined), reject }));
      let added: Promise<unknown>;
      if (queue) {
        added = queue.add(STEPS[0], data, { jobId: `${run}-${STEPS[0]}` });
      } else {
        // Children first: the first step is the innermost child, the last the root.
        let node: FlowJob | undefined;
        for (const name of STEPS) node = { name, queueName: job.queue, data, opts: { jobId: `${run}-${name}` }, ...(node ? { children: [node] } : {}) };
        added = producer!.add(node!);
      }
      return Promise.all([added, finished]).then(() => undefined).finally(() => pending.delete(run));
    },
    close: async () => {
      await events.close();
      await queue?.close();
      await producer?.close();
      await connection.quit();
      await eventsConnection.quit();
    },
  };
}

async function main(job: FlowClientJob): Promise<FlowClientResult> {
  const { start, close } = job.kind === 'berth' ? await berthRunner(job) : await bullRunner(job);
  const latencies: number[] = [];
  const berth: BerthRun[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const cpu = process.cpuUsage();
  const startedAt = clock();
  await Promise.all(
    Array.from({ length: Math.min(job.concurrency, job.runs) }, async () => {
      while (next < job.runs) {
        const n = next++;
        const t0 = clock();
        try {
          const record = await start(n);
          latencies.push(clock() - t0);
          if (record) berth.push(record);
        } catch (err) {
          failed++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    }),
  );
  const doneAt = clock();
  const used = process.cpuUsage(cpu);
  await close();
  const total = process.cpuUsage();
  return {
    startedAt,
    doneAt,
    latencies,
    berth,
    ok: latencies.length,
    failed,
    cpuMs: (used.user + used.system) / 1000,
    cpuTotalMs: (total.user + total.system) / 1000,
    ...(firstError ? { firstError } : {}),
  };
}

/** The last message, then exit once it has left (process.exit would drop a queued IPC message). */
const finish = (message: FromFlowClient, code: number) => process.send!(message, () => process.exit(code));

try {
  finish({ t: 'result', result: await main(JSON.parse(process.argv[2] ?? '') as FlowClientJob) }, 0);
} catch (err) {
  finish({ t: 'error', message: err instanceof Error ? err.message : String(err) }, 1);
}
