// Client side of bench/http.ts. Always its own process (`node dist/bench/load.js '<job json>'`)
// so the client never shares an event loop with the server it measures. Prints one JSON line.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { percentile } from './stats.js';

/** Fixed-connection autocannon run; `tenants` spreads requests over tenant-0..tenant-(n-1). */
export interface LoadJob {
  mode: 'load';
  url: string;
  connections: number;
  duration: number;
  warmup: number;
  tenants?: number;
  /** Request path (default `/hello/42`). */
  path?: string;
  /** Request method (default GET), body and extra headers, sent the same on every request. */
  method?: string;
  body?: string;
  headers?: Record<string, string>;
}
/** Invoke → handler-start samples, taken in rounds of `concurrency` with `pauseMs` between rounds. */
export interface ProbeJob {
  mode: 'probe';
  url: string;
  samples: number;
  concurrency: number;
  pauseMs: number;
}
export interface LoadResult {
  rps: number; // 2xx responses per second: failures must not count as throughput
  p50: number;
  p99: number;
  failed: number;
}
export interface ProbeResult {
  p50: number;
  p99: number;
  ok: number;
  failed: number;
}

async function load(job: LoadJob): Promise<LoadResult> {
  let next = 0;
  const tenants = job.tenants;
  // One shared counter, so the tenants interleave evenly across all connections.
  const fixed = {
    ...(job.method !== undefined && { method: job.method }),
    ...(job.body !== undefined && { body: job.body }),
    ...(job.headers !== undefined && { headers: job.headers }),
  };
  const requests =
    tenants || Object.keys(fixed).length > 0
      ? [
          {
            ...fixed,
            ...(tenants && {
              setupRequest: (req: { headers?: Record<string, string> }) => ({ ...req, headers: { ...req.headers, 'x-berth-tenant': `tenant-${next++ % tenants}` } }),
            }),
          },
        ]
      : undefined;
  const run = autocannon({
    url: `${job.url}${job.path ?? '/hello/42'}`,
    connections: job.connections,
    duration: job.duration,
    ...(job.warmup > 0 && { warmup: { connections: job.connections, duration: job.warmup } }),
    ...(requests && { requests }),
  });
  // autocannon's histogram keeps whole milliseconds; keep exact times for a sub-ms p50.
  const latencies: number[] = [];
  run.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) latencies.push(ms);
  });
  const r = await run;
  const failed = r.non2xx + r.errors + r.timeouts;
  if (latencies.length === 0) throw new Error(`no 2xx response completed in ${job.duration} s (${failed} failed, the rest still in flight)`);
  latencies.sort((a, b) => a - b);
  return {
    rps: r['2xx'] / r.duration,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    failed,
  };
}

// Wall clock with sub-ms resolution, comparable with the handler's `start` (same machine clock).
// This process is freshly started, so its timeOrigin has had no time to drift from the clock.
const wallNow = () => performance.timeOrigin + performance.now();

async function probe(job: ProbeJob): Promise<ProbeResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const one = (i: number) =>
    new Promise<number>((resolve, reject) => {
      const sent = wallNow();
      const req = http.get(`${job.url}/hello/${i}`, { agent, timeout: 30_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          try {
            const start = res.statusCode === 200 ? (JSON.parse(body) as { start?: unknown }).start : undefined;
            if (typeof start !== 'number') throw new Error(`status ${res.statusCode}: ${body.slice(0, 100)}`);
            resolve(start - sent);
          } catch (err) {
            reject(err);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });

  const samples: number[] = [];
  let failed = 0;
  let firstError = '';
  for (let done = 0; done < job.samples; done += job.concurrency) {
    const round = Array.from({ length: Math.min(job.concurrency, job.samples - done) }, (_, i) => one(done + i));
    for (const r of await Promise.allSettled(round)) {
      if (r.status === 'fulfilled') samples.push(r.value);
      else {
        failed++;
        firstError ||= r.reason instanceof Error ? r.reason.message : String(r.reason);
      }
    }
    if (job.pauseMs > 0) await sleep(job.pauseMs);
  }
  agent.destroy();
  if (samples.length === 0) throw new Error(`all ${failed} probe requests failed, first: ${firstError}`);
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), ok: samples.length, failed };
}

try {
  const job = JSON.parse(process.argv[2] ?? '') as LoadJob | ProbeJob;
  const result = job.mode === 'load' ? await load(job) : await probe(job);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0); // autocannon can leave sockets behind; the answer is already written
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
