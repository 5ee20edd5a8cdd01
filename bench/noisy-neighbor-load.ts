// The user-facing load of bench/noisy-neighbor.ts. Always its own process, so it never shares an
// event loop with the server it measures or with the burst's producer:
//   node dist/bench/noisy-neighbor-load.js '<LoadJob json>'   (with an IPC channel)
// Open loop: GET <url><path><i> at `rate` requests per second on a fixed schedule (after a linear
// ramp from 0 over `rampSeconds`), each request issued when it is due whether or not earlier ones
// have been answered, until the orchestrator sends { t: 'stop' }. A request's latency runs from its scheduled time, not from when it left,
// so a stall on either side shows in the figures instead of thinning the samples (coordinated
// omission). Times are clock() (CLOCK_MONOTONIC), the orchestrator's clock too, so it can cut
// the samples into phases by scheduled time.
import http from 'node:http';
import { clock } from './queue-common.js';

export interface LoadJob {
  url: string;
  /** Request i goes to `${path}${i}`. */
  path: string;
  rate: number;
  /** The rate rises linearly from 0 to `rate` over this long, as real traffic does, rather than
   * meeting a cold platform with full load at once. */
  rampSeconds: number;
  /** Keep-alive connections at most; a request due while all are busy waits in the agent (and that wait counts). */
  sockets: number;
  /** A request unanswered this long after it left is an error. */
  timeoutMs: number;
}

/** Parallel arrays, one entry per scheduled request, in schedule order. */
export interface LoadResult {
  /** clock() at which the request was due. */
  scheduled: number[];
  /** ms from due to the end of the answer; for a request with no answer, to when it failed. */
  latency: number[];
  /** HTTP status; 0 when no answer came (connection error, timeout, still open at stop). */
  status: number[];
  /** The latest a request left after it was due (ms): above a few ms, this process could not keep up. */
  maxBehindMs: number;
  firstError?: string;
  /** CPU time (user + system) this process spent, ms. */
  cpuMs: number;
}

export type ToLoad = { t: 'stop' };
export type FromLoad = { t: 'started'; at: number } | { t: 'result'; result: LoadResult } | { t: 'error'; message: string };

/** How long, after stop, answers still outstanding are waited for before they count as errors. */
const STOP_GRACE_MS = 5000;

/**
 * The schedule: requests due by `elapsed` ms after the start, and when request i is due. Under
 * the ramp the rate is rate·t/ramp, so by t, rate·t²/(2·ramp) requests are due.
 */
function schedule(job: LoadJob): { dueBy: (elapsed: number) => number; dueAt: (i: number) => number } {
  const perMs = job.rate / 1000;
  const rampMs = job.rampSeconds * 1000;
  const inRamp = (perMs * rampMs) / 2;
  return {
    dueBy: (t) => Math.floor(t < rampMs ? (perMs * t * t) / (2 * rampMs) : inRamp + perMs * (t - rampMs)) + 1,
    dueAt: (i) => (i < inRamp ? Math.sqrt((2 * rampMs * i) / perMs) : rampMs + (i - inRamp) / perMs),
  };
}

async function run(job: LoadJob): Promise<LoadResult> {
  const { dueBy, dueAt } = schedule(job);
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.sockets });
  const scheduled: number[] = [];
  const latency: number[] = [];
  const status: number[] = [];
  let open = 0;
  let firstError: string | undefined;
  let maxBehindMs = 0;

  const one = (i: number, due: number) => {
    open++;
    let done = false;
    const finish = (code: number, error?: string) => {
      if (done) return;
      done = true;
      open--;
      latency[i] = clock() - due;
      status[i] = code;
      if (error) firstError ??= error;
    };
    const req = http.get(`${job.url}${job.path}${i}`, { agent, timeout: job.timeoutMs }, (res) => {
      const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
      let body = '';
      // The first failure's body says why (a 429 names the limit); success bodies are not kept.
      res.setEncoding('utf8').on('data', (chunk: string) => {
        if (!ok && firstError === undefined && body.length < 300) body += chunk;
      });
      res.on('end', () => finish(res.statusCode ?? 0, ok ? undefined : `HTTP ${res.statusCode} ${body.slice(0, 300)}`.trim()));
      res.on('error', (err) => finish(0, err.message));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer after ${job.timeoutMs} ms`)));
    req.on('error', (err) => finish(0, err.message));
  };

  let stopping = false;
  const stopped = new Promise<void>((resolve) =>
    process.on('message', (message: ToLoad) => {
      if (message.t !== 'stop') return;
      stopping = true;
      resolve();
    }),
  );

  // Orphaned (the orchestrator died without stopping us): nobody will read the result.
  process.once('disconnect', () => process.exit(1));
  const cpu = process.cpuUsage();
  const startedAt = clock();
  process.send!({ t: 'started', at: startedAt } satisfies FromLoad);
  let issued = 0;
  while (!stopping) {
    const now = clock();
    const due = dueBy(now - startedAt);
    for (; issued < due; issued++) {
      const at = startedAt + dueAt(issued);
      maxBehindMs = Math.max(maxBehindMs, now - at);
      scheduled[issued] = at;
      latency[issued] = NaN;
      status[issued] = 0;
      one(issued, at);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await stopped;
  const deadline = clock() + STOP_GRACE_MS;
  while (open > 0 && clock() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  if (open > 0) firstError ??= `${open} requests still unanswered ${STOP_GRACE_MS} ms after the load stopped`;
  for (let i = 0; i < issued; i++) if (Number.isNaN(latency[i])) latency[i] = clock() - scheduled[i]!;
  const used = process.cpuUsage(cpu);
  agent.destroy();
  return { scheduled, latency, status, maxBehindMs, cpuMs: (used.user + used.system) / 1000, ...(firstError ? { firstError } : {}) };
}

/** The last message, then exit once it has left (process.exit would drop a queued IPC message). */
const finish = (message: FromLoad, code: number) => process.send!(message, () => process.exit(code));

try {
  const job = JSON.parse(process.argv[2] ?? '') as LoadJob;
  finish({ t: 'result', result: await run(job) }, 0);
} catch (err) {
  finish({ t: 'error', message: err instanceof Error ? err.message : String(err) }, 1);
}
