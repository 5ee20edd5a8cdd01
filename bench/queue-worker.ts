// BullMQ side of bench/queue.ts: one process with one Worker running the no-op handler, apart
// from the producer, as Berth runs handlers in sandbox processes apart from its gateway.
//   node dist/bench/queue-worker.js '<WorkerJob json>'   (with an IPC channel)
// Sends 'ready' once the Worker is connected; on 'stop' closes the Worker and exits.
import { pathToFileURL } from 'node:url';
import { Worker } from 'bullmq';
import { connectRedis, type Job, type RedisAddress } from './queue-common.js';

export interface WorkerJob {
  redis: RedisAddress;
  prefix: string;
  queue: string;
  concurrency: number;
  handlerFile: string;
  /** Where the handler appends its lag lines (BENCH_LAG_FILE), as Berth's sandboxes do. */
  lagFile: string;
}
export type FromWorker = { t: 'ready' } | { t: 'error'; message: string };
export type ToWorker = { t: 'stop' };

const send = (message: FromWorker) => process.send!(message);

try {
  const job = JSON.parse(process.argv[2] ?? '') as WorkerJob;
  process.env.BENCH_LAG_FILE = job.lagFile;
  const { handler } = (await import(pathToFileURL(job.handlerFile).href)) as { handler: (event: Job) => Promise<void> };
  const connection = await connectRedis(job.redis);
  const worker = new Worker(job.queue, (j) => handler(j.data as Job), { connection: connection as never, prefix: job.prefix, concurrency: job.concurrency });
  worker.on('error', (err) => send({ t: 'error', message: err.message }));
  await worker.waitUntilReady();
  process.on('message', (message: ToWorker) => {
    if (message.t !== 'stop') return;
    void worker
      .close()
      .then(() => connection.quit())
      .finally(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  send({ t: 'ready' });
} catch (err) {
  process.send!({ t: 'error', message: err instanceof Error ? err.message : String(err) } satisfies FromWorker, () => process.exit(1));
}
