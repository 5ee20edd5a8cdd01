// What the processes of bench/queue.ts share: the clock, the job, the lines the handler logs,
// and the Redis client BullMQ runs on. No side effects: every process of the benchmark imports it.

/**
 * Milliseconds on CLOCK_MONOTONIC (process.hrtime): one clock for every process on the machine,
 * sub-millisecond, never stepped by NTP. A producer's timestamp and a handler's are comparable
 * across processes, unlike performance.now() (per-process origin) or Date.now() (whole ms, steps).
 */
export const clock = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * One job, as every competitor's handler receives it (the SQS paths carry it as the JSON body).
 * `n` counts from 0 in a measured run and is negative in a warm-up; `sentAt` (clock()) is set
 * only in latency runs, just before the enqueue call.
 */
export interface Job {
  n: number;
  sentAt?: number;
}

/** One enqueue-to-start sample: the handler's first line minus the producer's `sentAt`. */
export interface Lag {
  n: number;
  ms: number;
}

/** Lag samples in what the handler (bench/fixtures/queue-handler.mjs) logged: `lag <n> <ms>` lines. */
export function parseLags(text: string): Lag[] {
  const lags: Lag[] = [];
  for (const m of text.matchAll(/\blag (-?\d+) (-?\d+(?:\.\d+)?)/g)) lags.push({ n: Number(m[1]), ms: Number(m[2]) });
  return lags;
}

/** The parts of an ioredis client the benchmark itself uses; BullMQ takes the instance as it is. */
export interface RedisClient {
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

export interface RedisAddress {
  host: string;
  port: number;
}

/**
 * A connected ioredis client. bullmq 6 no longer depends on a Redis driver (ioredis is an
 * optional peer), and this project does not list one, so it is loaded by a computed name:
 * without it the build still passes and the BullMQ rows fail with this message.
 */
export async function connectRedis(address: RedisAddress): Promise<RedisClient> {
  const name = 'ioredis';
  let mod: { default?: unknown; Redis?: unknown };
  try {
    mod = (await import(name)) as typeof mod;
  } catch {
    throw new Error('BullMQ needs a Redis driver: run `npm install --save-dev ioredis@5` (bullmq 6 lists it only as an optional peer)');
  }
  const Redis = (mod.Redis ?? mod.default) as new (options: Record<string, unknown>) => RedisClient & {
    connect(): Promise<void>;
  };
  // maxRetriesPerRequest: null is what BullMQ requires of a connection a Worker blocks on.
  const client = new Redis({ host: address.host, port: address.port, maxRetriesPerRequest: null, lazyConnect: true });
  await client.connect();
  return client;
}
