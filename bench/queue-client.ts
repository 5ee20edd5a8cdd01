// Producers (and for the SQS path, consumers) of bench/queue.ts. Always their own process, so
// they never share an event loop with a server or worker they measure:
//   node dist/bench/queue-client.js '<ClientJob json>'   (with an IPC channel)
// Sends { t: 'sent', sent } the moment the last enqueue is acknowledged (the orchestrator starts
// watching for the drain then), then the ClientResult, and exits.
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import {
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { clock, connectRedis, type Job, type RedisAddress } from './queue-common.js';

/** Where jobs go. */
export type Target =
  /** POST /2015-03-31/functions/<fn>/invocations with X-Amz-Invocation-Type: Event: 202 once stored. */
  | { kind: 'berth-event'; url: string; fn: string }
  /** Berth's own send API, POST /_berth/queues/<queue>/messages {"body": …}: one message per request. */
  | { kind: 'berth-send'; url: string; queue: string }
  /** SendMessageBatch on the SQS JSON protocol (plain HTTP, no SDK), `batch` entries per call. */
  | { kind: 'sqs-batch'; url: string; queue: string }
  /** Queue.add, or Queue.addBulk when `batch` > 1. */
  | { kind: 'bullmq'; redis: RedisAddress; prefix: string; queue: string };

/**
 * burst: `count` jobs as fast as the producers go, `inFlight` jobs outstanding at once
 *        (so inFlight / batch calls);
 * rate:  open loop, `rate` jobs/s for `seconds`, each call issued on schedule whether or not
 *        earlier ones have been answered;
 * sqs:   `count` messages through an SQS queue: SendMessageBatch of 10 with `inFlight` messages
 *        outstanding, and `consumers` loops of ReceiveMessage (10, wait 1 s) → handler per
 *        message → DeleteMessageBatch, in this process.
 */
export type ClientJob =
  | { mode: 'burst'; target: Target; count: number; inFlight: number; batch: number; firstN: number; stamp: boolean }
  | { mode: 'rate'; target: Target; rate: number; seconds: number; firstN: number }
  | { mode: 'sqs'; url: string; queue: string; count: number; inFlight: number; consumers: number; handlerFile: string; firstN: number };

export interface ClientResult {
  /** clock() at the first enqueue call and when the last enqueue was acknowledged. */
  startedAt: number;
  sentDoneAt: number;
  sent: number;
  failed: number;
  firstError?: string;
  /** CPU time (user + system) this process spent from the first enqueue to the end, ms. */
  cpuMs: number;
  /** rate: the latest an enqueue call left after its scheduled time (ms). */
  maxBehindMs?: number;
  /** sqs: messages received, handled and deleted, and clock() when the last delete returned. */
  deleted?: number;
  doneAt?: number;
}
export type FromClient = { t: 'sent'; sent: number } | { t: 'result'; result: ClientResult } | { t: 'error'; message: string };

type Enqueue = (jobs: Job[]) => Promise<void>;

const BATCH_SIZE = 10; // SQS's limit for SendMessageBatch and ReceiveMessage
/** Connections an HTTP producer opens before it starts: every burst lane's, or enough for a rate run. */
const PREOPEN_SOCKETS = 64;

function sqsClient(url: string, sockets: number): SQSClient {
  return new SQSClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    // A failure must count as one, not be hidden by a retry.
    maxAttempts: 1,
    requestHandler: { httpAgent: new http.Agent({ keepAlive: true, maxSockets: sockets }) },
  });
}

async function queueUrl(client: SQSClient, queue: string): Promise<string> {
  const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: queue }));
  if (!QueueUrl) throw new Error(`GetQueueUrl ${queue}: no QueueUrl in the answer`);
  return QueueUrl;
}

/** One POST on a keep-alive agent; resolves with the answer's body, rejects unless the status is `expect`. */
function post(agent: http.Agent, url: string, path: string, headers: Record<string, string>, body: string, expect: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === expect ? resolve(text) : reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Opens `count` keep-alive connections at once (GET /_berth/health on each), so the first
 * enqueues do not pay for connecting, as ioredis's one connection is open before the start.
 */
async function openSockets(agent: http.Agent, url: string, count: number): Promise<void> {
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve, reject) => {
          http.get(`${url}/_berth/health`, { agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
        }),
    ),
  );
}

/** The enqueue call of a target, and what to close afterwards. */
async function connect(target: Target, sockets: number): Promise<{ enqueue: Enqueue; close: () => Promise<void> }> {
  switch (target.kind) {
    case 'berth-event': {
      const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
      const path = `/2015-03-31/functions/${target.fn}/invocations`;
      await openSockets(agent, target.url, Math.min(sockets, PREOPEN_SOCKETS));
      return {
        enqueue: async ([job]) => void (await post(agent, target.url, path, { 'x-amz-invocation-type': 'Event' }, JSON.stringify(job), 202)),
        close: async () => agent.destroy(),
      };
    }
    case 'berth-send': {
      const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
      const path = `/_berth/queues/${target.queue}/messages`;
      await openSockets(agent, target.url, Math.min(sockets, PREOPEN_SOCKETS));
      return {
        enqueue: async ([job]) => void (await post(agent, target.url, path, {}, JSON.stringify({ body: JSON.stringify(job) }), 200)),
        close: async () => agent.destroy(),
      };
    }
    case 'sqs-batch': {
      // The SQS wire protocol by hand (aws-wire.md §3), as the Event path skips the Lambda SDK:
      // these rows measure Berth, not the SDK's per-call cost (that is the SQS API row's part).
      const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
      await openSockets(agent, target.url, Math.min(sockets, PREOPEN_SOCKETS));
      const sqs = (operation: string, input: unknown) =>
        post(agent, target.url, '/', { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${operation}` }, JSON.stringify(input), 200);
      const { QueueUrl } = JSON.parse(await sqs('GetQueueUrl', { QueueName: target.queue })) as { QueueUrl: string };
      return {
        enqueue: async (jobs) => {
          const out = JSON.parse(await sqs('SendMessageBatch', { QueueUrl, Entries: jobs.map((job, i) => ({ Id: String(i), MessageBody: JSON.stringify(job) })) })) as {
            Failed?: { Code: string; Message: string }[];
          };
          const failed = out.Failed ?? [];
          if (failed.length > 0) throw new Error(`SendMessageBatch: ${failed.length} failed, first ${failed[0]!.Code}: ${failed[0]!.Message}`);
        },
        close: async () => agent.destroy(),
      };
    }
    case 'bullmq': {
      const connection = await connectRedis(target.redis);
      const queue = new Queue(target.queue, { connection: connection as never, prefix: target.prefix });
      await queue.waitUntilReady();
      return {
        enqueue: async (jobs) => {
          if (jobs.length === 1) await queue.add('job', jobs[0]!);
          else await queue.addBulk(jobs.map((data) => ({ name: 'job', data })));
        },
        close: async () => {
          await queue.close();
          await connection.quit();
        },
      };
    }
  }
}

const send = (message: FromClient) => process.send!(message);

/** CPU ms used since `from` (a process.cpuUsage() sample). */
const cpuSince = (from: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1000;
};

/** Tallies calls; the first error is kept for the report. */
class Tally {
  sent = 0;
  failed = 0;
  firstError: string | undefined;
  async run(enqueue: Enqueue, jobs: Job[]): Promise<void> {
    try {
      await enqueue(jobs);
      this.sent += jobs.length;
    } catch (err) {
      this.failed += jobs.length;
      this.firstError ??= err instanceof Error ? err.message : String(err);
    }
  }
}

async function burst(job: Extract<ClientJob, { mode: 'burst' }>): Promise<ClientResult> {
  const lanes = Math.max(1, Math.round(job.inFlight / job.batch));
  const { enqueue, close } = await connect(job.target, lanes);
  const tally = new Tally();
  let next = 0;
  const cpu = process.cpuUsage();
  const startedAt = clock();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < job.count) {
        const jobs: Job[] = [];
        for (; jobs.length < job.batch && next < job.count; next++) jobs.push({ n: job.firstN + next });
        if (job.stamp) {
          const now = clock();
          for (const j of jobs) j.sentAt = now;
        }
        await tally.run(enqueue, jobs);
      }
    }),
  );
  const sentDoneAt = clock();
  const cpuMs = cpuSince(cpu);
  send({ t: 'sent', sent: tally.sent });
  await close();
  return { startedAt, sentDoneAt, sent: tally.sent, failed: tally.failed, cpuMs, ...(tally.firstError ? { firstError: tally.firstError } : {}) };
}

async function rate(job: Extract<ClientJob, { mode: 'rate' }>): Promise<ClientResult> {
  // Enough sockets that a slow answer never holds back a call that is due.
  const { enqueue, close } = await connect(job.target, 256);
  const tally = new Tally();
  const total = Math.round(job.rate * job.seconds);
  const calls: Promise<void>[] = [];
  let maxBehindMs = 0;
  const cpu = process.cpuUsage();
  const startedAt = clock();
  for (let issued = 0; issued < total; ) {
    const now = clock();
    const due = Math.min(total, Math.floor(((now - startedAt) * job.rate) / 1000) + 1);
    for (; issued < due; issued++) {
      maxBehindMs = Math.max(maxBehindMs, now - (startedAt + (issued * 1000) / job.rate));
      calls.push(tally.run(enqueue, [{ n: job.firstN + issued, sentAt: clock() }]));
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(calls);
  const sentDoneAt = clock();
  const cpuMs = cpuSince(cpu);
  send({ t: 'sent', sent: tally.sent });
  await close();
  return { startedAt, sentDoneAt, sent: tally.sent, failed: tally.failed, cpuMs, maxBehindMs, ...(tally.firstError ? { firstError: tally.firstError } : {}) };
}

async function sqsRoundTrip(job: Extract<ClientJob, { mode: 'sqs' }>): Promise<ClientResult> {
  const { handler } = (await import(pathToFileURL(job.handlerFile).href)) as { handler: (event: Job) => Promise<void> };
  const producers = Math.max(1, Math.round(job.inFlight / BATCH_SIZE));
  const client = sqsClient(job.url, producers + job.consumers);
  const QueueUrl = await queueUrl(client, job.queue);
  const tally = new Tally();
  let next = 0;
  let deleted = 0;
  let doneAt = 0;
  let consumeFailed = 0;
  let consumeError: string | undefined;
  const cpu = process.cpuUsage();
  const startedAt = clock();
  const produce = Promise.all(
    Array.from({ length: producers }, async () => {
      while (next < job.count) {
        const jobs: Job[] = [];
        for (; jobs.length < BATCH_SIZE && next < job.count; next++) jobs.push({ n: job.firstN + next });
        await tally.run(async (batch) => {
          const out = await client.send(
            new SendMessageBatchCommand({ QueueUrl, Entries: batch.map((j, i) => ({ Id: String(i), MessageBody: JSON.stringify(j) })) }),
          );
          if ((out.Failed ?? []).length > 0) throw new Error(`SendMessageBatch: ${out.Failed!.length} failed, first ${out.Failed![0]!.Code}`);
        }, jobs);
      }
    }),
  ).then(() => {
    const at = clock();
    send({ t: 'sent', sent: tally.sent });
    return at;
  });
  // Consumers stop once every message sent has been deleted, or when sending failed for good.
  const consume = Promise.all(
    Array.from({ length: job.consumers }, async () => {
      while (deleted < job.count - tally.failed && consumeFailed < 100) {
        try {
          const { Messages = [] } = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: BATCH_SIZE, WaitTimeSeconds: 1 }));
          if (Messages.length === 0) continue;
          for (const message of Messages) await handler(JSON.parse(message.Body ?? 'null') as Job);
          const out = await client.send(
            new DeleteMessageBatchCommand({ QueueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
          );
          deleted += out.Successful?.length ?? 0;
          if ((out.Failed ?? []).length > 0) throw new Error(`DeleteMessageBatch: ${out.Failed!.length} failed, first ${out.Failed![0]!.Code}`);
          doneAt = clock();
        } catch (err) {
          consumeFailed++;
          consumeError ??= err instanceof Error ? err.message : String(err);
        }
      }
    }),
  );
  const [sentDoneAt] = await Promise.all([produce, consume]);
  const cpuMs = cpuSince(cpu);
  client.destroy();
  const firstError = tally.firstError ?? consumeError;
  return {
    startedAt,
    sentDoneAt,
    sent: tally.sent,
    failed: tally.failed + consumeFailed,
    cpuMs,
    deleted,
    doneAt,
    ...(firstError ? { firstError } : {}),
  };
}

/** The last message, then exit once it has left (process.exit would drop a queued IPC message). */
const finish = (message: FromClient, code: number) => process.send!(message, () => process.exit(code));

try {
  const job = JSON.parse(process.argv[2] ?? '') as ClientJob;
  const result = job.mode === 'burst' ? await burst(job) : job.mode === 'rate' ? await rate(job) : await sqsRoundTrip(job);
  finish({ t: 'result', result }, 0);
} catch (err) {
  finish({ t: 'error', message: err instanceof Error ? err.message : String(err) }, 1);
}
