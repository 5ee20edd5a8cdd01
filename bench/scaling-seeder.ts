// The SQS seeder of bench/scaling.ts (seed 003's queue seeder), always its own process:
//   node dist/bench/scaling-seeder.js '<SeederJob json>'   (with an IPC channel)
// It sends the same sequence of messages to every queue of the job: `bursts` bursts, each of
// a random number of messages in random batches of 1–10 (SendMessageBatch), bodies of random
// size (log-uniform between minSize and maxSize bytes), spread evenly over a random burst length,
// then a random pause. A seeded PRNG makes every run send the same sequence at the same offsets.
// Each batch goes to all queues at once (one SendMessageBatch per queue, in parallel), so both
// consumers receive each message at the same moment. The SQS JSON protocol is spoken by hand on
// keep-alive sockets, as bench/queue-client.ts does: the SDK's per-call cost would only make the
// seeder slower, not the experiment different.
// Sends { t: 'burst', burst } as each burst's last batch is acknowledged, then the result, and exits.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { clock } from './queue-common.js';

export interface SeederJob {
  url: string;
  queues: string[];
  seed: number;
  bursts: number;
  /** Mean messages per burst; each burst has 0.6–1.4 times as many. */
  messages: number;
  minSize: number;
  maxSize: number;
  /** Each burst's messages are spread over this many seconds (random in the range), then a pause (random in the range). */
  burstSeconds: [number, number];
  pauseSeconds: [number, number];
  /** Batches outstanding at once (each one SendMessageBatch per queue). */
  inFlight: number;
}

export interface BurstSent {
  burst: number;
  messages: number;
  bytes: number;
  /** Messages acknowledged and failed, per queue. */
  sent: Record<string, number>;
  failed: Record<string, number>;
  /** clock() when the burst's first SendMessageBatch was issued, and per queue when its first was acknowledged. */
  startedAt: number;
  firstAck: Record<string, number>;
  /** clock() when its last batch was acknowledged on every queue. */
  lastAck: number;
  plannedSeconds: number;
  /** How late the latest batch of the burst left after its planned time (ms). */
  maxBehindMs: number;
}

export interface SeederResult {
  bursts: BurstSent[];
  cpuMs: number;
  firstError?: string;
}

export type FromSeeder = { t: 'burst'; burst: BurstSent } | { t: 'result'; result: SeederResult } | { t: 'error'; message: string };

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface PlannedBatch {
  /** Milliseconds after the burst's start at which it is due. */
  dueMs: number;
  /** The first message's number in the burst; each message's filler length and where it starts in the filler. */
  first: number;
  pads: number[];
  offsets: number[];
}

interface PlannedBurst {
  messages: number;
  bytes: number;
  seconds: number;
  /** Milliseconds after the seeding's start at which it begins. */
  startMs: number;
  batches: PlannedBatch[];
}

/** The whole sequence, from the seed alone. */
function plan(job: SeederJob): PlannedBurst[] {
  const random = prng(job.seed);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();
  const int = (lo: number, hi: number) => Math.floor(uniform(lo, hi + 1));
  const bursts: PlannedBurst[] = [];
  let startMs = 0;
  for (let b = 0; b < job.bursts; b++) {
    const messages = Math.max(1, Math.round(job.messages * uniform(0.6, 1.4)));
    const seconds = uniform(...job.burstSeconds);
    const batches: PlannedBatch[] = [];
    let bytes = 0;
    for (let n = 0; n < messages; ) {
      const size = Math.min(int(1, 10), messages - n);
      const batch: PlannedBatch = { dueMs: (n / messages) * seconds * 1000, first: n, pads: [], offsets: [] };
      for (let i = 0; i < size; i++, n++) {
        const target = Math.round(Math.exp(uniform(Math.log(job.minSize), Math.log(job.maxSize))));
        const pad = Math.max(0, target - head(b, n).length - 2);
        batch.pads.push(pad);
        batch.offsets.push(int(0, job.maxSize - 1));
        bytes += head(b, n).length + pad + 2;
      }
      batches.push(batch);
    }
    bursts.push({ messages, bytes, seconds, startMs, batches });
    startMs += seconds * 1000 + uniform(...job.pauseSeconds) * 1000;
  }
  return bursts;
}

const head = (burst: number, n: number) => `{"b":${burst},"n":${n},"p":"`;

/** A batch's bodies: `{"b":burst,"n":n,"p":"<filler>"}`, each of its planned size. */
function bodies(burst: number, batch: PlannedBatch, filler: string): string[] {
  return batch.pads.map((pad, i) => `${head(burst, batch.first + i)}${filler.slice(batch.offsets[i], batch.offsets[i]! + pad)}"}`);
}

function post(agent: http.Agent, url: string, operation: string, input: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/`,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${operation}` } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${operation}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`))));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(input));
  });
}

async function seed(job: SeederJob): Promise<SeederResult> {
  const bursts = plan(job);
  // Random capital letters, as the original seeder sends, twice over so any offset has maxSize after it.
  const random = prng(job.seed ^ 0x5eed);
  const once = Array.from({ length: job.maxSize }, () => String.fromCharCode(65 + Math.floor(random() * 26))).join('');
  const filler = once + once;
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.inFlight * job.queues.length });
  const urls = new Map<string, string>();
  for (const queue of job.queues) {
    const { QueueUrl } = JSON.parse(await post(agent, job.url, 'GetQueueUrl', { QueueName: queue })) as { QueueUrl: string };
    urls.set(queue, QueueUrl);
  }
  let firstError: string | undefined;
  const cpu = process.cpuUsage();
  const origin = clock();
  const results: BurstSent[] = [];
  for (const [b, burst] of bursts.entries()) {
    const wait = origin + burst.startMs - clock();
    if (wait > 0) await sleep(wait);
    const sent: Record<string, number> = Object.fromEntries(job.queues.map((q) => [q, 0]));
    const failed: Record<string, number> = Object.fromEntries(job.queues.map((q) => [q, 0]));
    const firstAck: Record<string, number> = {};
    let maxBehindMs = 0;
    let next = 0;
    const startedAt = clock();
    await Promise.all(
      Array.from({ length: job.inFlight }, async () => {
        while (next < burst.batches.length) {
          const batch = burst.batches[next++]!;
          const due = startedAt + batch.dueMs;
          const early = due - clock();
          if (early > 1) await sleep(early);
          maxBehindMs = Math.max(maxBehindMs, clock() - due);
          const entries = bodies(b, batch, filler).map((MessageBody, i) => ({ Id: String(i), MessageBody }));
          await Promise.all(
            job.queues.map(async (queue) => {
              try {
                const out = JSON.parse(await post(agent, job.url, 'SendMessageBatch', { QueueUrl: urls.get(queue), Entries: entries })) as {
                  Successful?: unknown[];
                  Failed?: { Code: string; Message: string }[];
                };
                firstAck[queue] ??= clock();
                const bad = out.Failed ?? [];
                sent[queue]! += entries.length - bad.length;
                failed[queue]! += bad.length;
                if (bad.length > 0) firstError ??= `SendMessageBatch ${queue}: ${bad[0]!.Code}: ${bad[0]!.Message}`;
              } catch (err) {
                failed[queue]! += entries.length;
                firstError ??= err instanceof Error ? err.message : String(err);
              }
            }),
          );
        }
      }),
    );
    const result: BurstSent = {
      burst: b,
      messages: burst.messages,
      bytes: burst.bytes,
      sent,
      failed,
      startedAt,
      firstAck,
      lastAck: clock(),
      plannedSeconds: burst.seconds,
      maxBehindMs,
    };
    results.push(result);
    process.send!({ t: 'burst', burst: result } satisfies FromSeeder);
  }
  const used = process.cpuUsage(cpu);
  agent.destroy();
  return { bursts: results, cpuMs: (used.user + used.system) / 1000, ...(firstError ? { firstError } : {}) };
}

/** The last message, then exit once it has left (process.exit would drop a queued IPC message). */
const finish = (message: FromSeeder, code: number) => process.send!(message, () => process.exit(code));

try {
  const job = JSON.parse(process.argv[2] ?? '') as SeederJob;
  finish({ t: 'result', result: await seed(job) }, 0);
} catch (err) {
  finish({ t: 'error', message: err instanceof Error ? err.message : String(err) }, 1);
}
