// BullMQ side of bench/flow.ts: seed 000's integration as a team would build it on a Redis
// queue (the seed's ECS runner), one worker process doing every step in-process, apart from the
// client, as Berth runs steps apart from its gateway:
//   node dist/bench/flow-worker.js '<FlowWorkerJob json>'   (with an IPC channel)
// The same work as Berth's steps: fetch the XML over HTTP with the same fetch Berth's http step
// uses, call the very modules Berth runs as code and function steps (bench/fixtures/flow/*),
// post with the bearer token. Customer code runs in this process, without isolation.
//   chain  each job is one step; its processor adds the next step's job (with its output as
//          the data) before it completes, as seed 000 chained Lambdas through SQS
//   flow   FlowProducer: the client adds the run as a nested flow of six jobs, post the root
//          and fetch the leaf (children complete first); a step reads its child's return value
// Sends 'ready' once the Worker is connected; on 'stop' closes and exits.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Queue, Worker, type Job } from 'bullmq';
import type { StepName } from './flow-common.js';
import { connectRedis, type RedisAddress } from './queue-common.js';

export interface FlowWorkerJob {
  redis: RedisAddress;
  prefix: string;
  queue: string;
  mode: 'chain' | 'flow';
  concurrency: number;
  filesUrl: string;
  apiUrl: string;
  token: string;
  /** bench/fixtures/flow: the modules Berth runs. */
  fixtureDir: string;
}
export type FromFlowWorker = { t: 'ready' } | { t: 'error'; message: string };
export type ToFlowWorker = { t: 'stop' };

/** What each job carries: the run, its input, and in a chain the previous step's output. */
export interface StepData {
  run: string;
  input: { customer: string; file: string };
  prev?: unknown;
}

type Handler = (event: unknown, context: object) => Promise<unknown>;

const send = (message: FromFlowWorker) => process.send!(message);

/** Berth's http step in a few lines: the response as {status, headers, body}, JSON parsed, text as text; not 2xx fails. */
async function callHttp(method: string, url: string, headers: Record<string, string>, body?: string) {
  const response = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(30_000) });
  const type = response.headers.get('content-type') ?? '';
  const text = await response.text();
  const output = { status: response.status, headers: Object.fromEntries(response.headers), body: /\bjson\b/i.test(type) ? (JSON.parse(text) as unknown) : text };
  if (!response.ok) throw new Error(`${method} ${url} answered ${response.status}: ${text.slice(0, 300)}`);
  return output;
}

try {
  const job = JSON.parse(process.argv[2] ?? '') as FlowWorkerJob;
  const load = async (file: string) =>
    ((await import(pathToFileURL(path.join(job.fixtureDir, file)).href)) as { handler: Handler }).handler;
  const [transform, validate, map, enrich] = await Promise.all(
    ['customer/transform.mjs', 'customer/validate.mjs', 'customer/map.mjs', 'functions/enrich.mjs'].map(load),
  ) as [Handler, Handler, Handler, Handler];

  const work: Record<StepName, (prev: unknown, data: StepData, j: Job) => Promise<unknown>> = {
    fetch: (_prev, data) => callHttp('GET', `${job.filesUrl}/files/${data.input.file}`, {}),
    transform: (prev, data, j) => transform({ file: data.input.file, xml: (prev as { body: string }).body }, { awsRequestId: j.id }),
    validate: (prev, _data, j) => validate(prev, { awsRequestId: j.id }),
    map: (prev, _data, j) => map(prev, { awsRequestId: j.id }),
    enrich: (prev, _data, j) => enrich(prev, { awsRequestId: j.id }),
    post: (prev) =>
      callHttp('POST', `${job.apiUrl}/records`, { authorization: `Bearer ${job.token}`, 'content-type': 'application/json' }, JSON.stringify(prev)),
  };
  const NEXT: Partial<Record<StepName, StepName>> = { fetch: 'transform', transform: 'validate', validate: 'map', map: 'enrich', enrich: 'post' };

  const connection = await connectRedis(job.redis);
  const producer = job.mode === 'chain' ? new Queue(job.queue, { connection: (await connectRedis(job.redis)) as never, prefix: job.prefix }) : undefined;

  const processor = async (j: Job<StepData>) => {
    const name = j.name as StepName;
    if (job.mode === 'chain') {
      const output = await work[name](j.data.prev, j.data, j);
      const next = NEXT[name];
      if (next) await producer!.add(next, { run: j.data.run, input: j.data.input, prev: output }, { jobId: `${j.data.run}-${next}` });
      return output;
    }
    // A flow: the one child's return value is this step's input (fetch, the leaf, has none).
    const children = name === 'fetch' ? {} : await j.getChildrenValues();
    return work[name](Object.values(children)[0], j.data, j);
  };

  const worker = new Worker<StepData>(job.queue, processor, { connection: connection as never, prefix: job.prefix, concurrency: job.concurrency });
  worker.on('error', (err) => send({ t: 'error', message: err.message }));
  await worker.waitUntilReady();
  await producer?.waitUntilReady();
  process.on('message', (message: ToFlowWorker) => {
    if (message.t !== 'stop') return;
    void worker
      .close()
      .then(() => producer?.close())
      .then(() => connection.quit())
      .finally(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  send({ t: 'ready' });
} catch (err) {
  process.send!({ t: 'error', message: err instanceof Error ? err.message : String(err) } satisfies FromFlowWorker, () => process.exit(1));
}
