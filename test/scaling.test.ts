/**
 * Autoscaling of queued work and always-on services, through the real server: a backlog is
 * answered within a second, at the configured rate and within the limits; a busy environment is
 * never scaled in; an idle function goes to zero after its idleTimeout; a service keeps its
 * instances; decisions are logged and exposed as metrics.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { FunctionScaling } from '../src/scaling/index.js';
import { functionInfo, sleep, waitFor } from './helpers/lambda.js';
import { makeProject, runCli, startBerth, type RunningBerth } from './helpers/project.js';
import { readRecords, waitForRecords } from './helpers/records.js';

/** Appends its start and end (wall clock) and sleeps for the message's `ms`. */
const TIMED_HANDLER = `
import { appendFileSync } from 'node:fs';
export const handler = async (event, context) => {
  const ids = (event.Records ?? []).map((r) => r.messageId);
  appendFileSync(process.env.RECORDS, JSON.stringify({ fn: context.functionName, phase: 'start', t: Date.now(), pid: process.pid, ids }) + '\\n');
  const ms = Math.max(0, ...(event.Records ?? []).map((r) => JSON.parse(r.body).ms ?? 0));
  await new Promise((r) => setTimeout(r, ms));
  appendFileSync(process.env.RECORDS, JSON.stringify({ fn: context.functionName, phase: 'end', t: Date.now(), pid: process.pid, ids }) + '\\n');
  return {};
};
`;

type Scaling = FunctionScaling;

async function scalingOf(url: string, name: string): Promise<Scaling> {
  return ((await functionInfo(url, name)) as unknown as { scaling: Scaling }).scaling;
}

const live = (s: Scaling) => s.running + s.starting + s.idle + s.ready;

/** The most invocations of `fn` running at once, from its start/end records. */
function peakConcurrency(records: Record<string, any>[], fn: string): number {
  const edges = records.filter((r) => r.fn === fn).map((r) => ({ t: r.t, d: r.phase === 'start' ? 1 : -1 }));
  // Ends before starts at the same millisecond: back-to-back runs are not concurrent.
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let peak = 0;
  for (const edge of edges) peak = Math.max(peak, (now += edge.d));
  return peak;
}

async function sendMessages(sqs: SQSClient, url: string, queue: string, bodies: unknown[]): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    const entries = bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: JSON.stringify(body) }));
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: `${url}/000000000000/${queue}`, Entries: entries }));
  }
}

/** A Berth on `yml` with TIMED_HANDLER as h.mjs, an SQS client for it, and the handler's records file. */
async function startWithQueues(yml: string): Promise<{ berth: RunningBerth; sqs: SQSClient; records: string }> {
  const dir = makeProject({ 'berth.yml': yml, 'h.mjs': TIMED_HANDLER });
  const berth = await startBerth(dir);
  const sqs = new SQSClient({ endpoint: berth.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  return { berth, sqs, records: path.join(dir, 'records.jsonl') };
}

function gatewayLog(berth: RunningBerth): Record<string, any>[] {
  return readFileSync(path.join(berth.dataDir, 'logs', 'gateway.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

describe('autoscaling a function from its queue backlog', () => {
  const BERTH_YML = `
queues:
  burst: {}
  slow: {}
  rated: {}
functions:
  burst:
    handler: h.handler
    isolation: warm
    idleTimeout: 2
    maxConcurrency: 6
    environment: { RECORDS: ./records.jsonl }
    events:
      - queue: burst
        batchSize: 1
  slow:
    handler: h.handler
    isolation: warm
    idleTimeout: 1
    environment: { RECORDS: ./records.jsonl }
    events:
      - queue: slow
        batchSize: 1
  rated:
    handler: h.handler
    isolation: warm
    scaleUpRate: 2
    environment: { RECORDS: ./records.jsonl }
    events:
      - queue: rated
        batchSize: 1
`;
  let berth: RunningBerth;
  let sqs: SQSClient;
  let records: string;

  before(async () => ({ berth, sqs, records } = await startWithQueues(BERTH_YML)));
  after(async () => {
    sqs?.destroy();
    await berth?.stop();
  });

  test('reacts within a second, stays within maxConcurrency, drains, logs and exposes its decisions, then scales to zero', async () => {
    await waitFor(async () => live(await scalingOf(berth.url, 'burst')) === 0, { what: 'burst to start at zero (idleTimeout 2 s)', timeoutMs: 8_000 });
    const sentAt = Date.now();
    await sendMessages(sqs, berth.url, 'burst', Array.from({ length: 60 }, () => ({ ms: 250 })));

    const reacted = await waitFor(
      async () => {
        const s = await scalingOf(berth.url, 'burst');
        return s.desired > 1 ? { s, at: Date.now() } : undefined;
      },
      { what: 'the autoscaler to want more than one environment', intervalMs: 20, timeoutMs: 5_000 },
    );
    assert.ok(reacted.at - sentAt <= 1_000, `desired rose ${reacted.at - sentAt} ms after the backlog appeared`);
    assert.ok(reacted.s.queueDepth > 0 && reacted.s.oldestAgeMs >= 0, 'the decision sees the backlog');

    const metrics = await (await fetch(`${berth.url}/_berth/metrics`)).text();
    for (const name of ['berth_scaling_desired_environments', 'berth_environments_running', 'berth_environments_starting', 'berth_queue_depth', 'berth_queue_oldest_age_seconds']) {
      assert.match(metrics, new RegExp(`^${name}\\{function="burst"\\} \\d`, 'm'), `${name} for burst in /_berth/metrics`);
    }

    const done = await waitForRecords(records, 120, { what: 'all 60 messages handled', timeoutMs: 30_000, filter: (r) => r.fn === 'burst' });
    const drainedAt = Date.now();
    assert.equal(new Set(done.filter((r) => r.phase === 'end').flatMap((r) => r.ids)).size, 60);
    const peak = peakConcurrency(done, 'burst');
    assert.ok(peak <= 6, `maxConcurrency 6, ${peak} ran at once`);
    assert.ok(peak >= 4, `a backlog of 60 should run near the limit of 6, ran ${peak} at once`);

    const decisions = gatewayLog(berth).filter((line) => line.component === 'autoscaler' && line.function === 'burst');
    assert.ok(decisions.some((d) => d.msg === 'scale up' && d.queueDepth > 0), 'a scale-up decision is logged with the queue depth');
    assert.ok(decisions.every((d) => d.to <= 6), 'no decision goes above the function limit');

    await waitFor(async () => live(await scalingOf(berth.url, 'burst')) === 0, { what: 'burst to scale back to zero', timeoutMs: 6_000 });
    const zeroAfter = Date.now() - drainedAt;
    assert.ok(zeroAfter <= 2_000 + 2_500, `zero ${zeroAfter} ms after draining; idleTimeout 2 s plus the reaper's second`);
    assert.ok(decisions.some((d) => d.msg === 'scale down'), 'the scale-in decision is logged');
  });

  test('adds environments no faster than scaleUpRate', async () => {
    const samples: { t: number; desired: number }[] = [];
    const start = Date.now();
    await sendMessages(sqs, berth.url, 'rated', Array.from({ length: 40 }, () => ({ ms: 1500 })));
    while (Date.now() - start < 3_000) {
      samples.push({ t: Date.now() - start, desired: (await scalingOf(berth.url, 'rated')).desired });
      await sleep(100);
    }
    // A full bucket (2) at once, then 2 per second.
    for (const { t, desired } of samples) assert.ok(desired <= 2 + Math.ceil((2 * t) / 1000) + 1, `desired ${desired} at ${t} ms with scaleUpRate 2`);
    assert.ok(samples.at(-1)!.desired >= 5, `after 3 s at 2/s desired should be about 8, got ${samples.at(-1)!.desired}`);
  });

  test('never scales in an environment running an invocation', async () => {
    await sendMessages(sqs, berth.url, 'slow', Array.from({ length: 4 }, () => ({ ms: 2_500 })));
    await waitForRecords(records, 4, { what: 'four slow invocations started', filter: (r) => r.fn === 'slow' && r.phase === 'start' });
    // The queue is empty now, so the autoscaler scales in, and the idle timeout (1 s) passes while they run.
    await waitFor(async () => (await scalingOf(berth.url, 'slow')).queueDepth === 0, { what: 'the slow queue to empty' });
    const ended = await waitForRecords(records, 4, { what: 'four slow invocations ended', timeoutMs: 10_000, filter: (r) => r.fn === 'slow' && r.phase === 'end' });
    const starts = readRecords(records).filter((r) => r.fn === 'slow' && r.phase === 'start');
    assert.equal(starts.length, 4, 'each ran once: none was cut short and redelivered');
    for (const end of ended) assert.ok(starts.some((s) => s.pid === end.pid && end.t - s.t >= 2_400), 'ended in the process it started in, after its full 2.5 s');
  });
});

describe('a service with fixed instances consuming a queue', () => {
  const BERTH_YML = `
queues:
  jobs: {}
functions:
  worker:
    handler: h.handler
    mode: service
    minInstances: 3
    maxInstances: 3
    idleTimeout: 1
    environment: { RECORDS: ./records.jsonl }
    events:
      - queue: jobs
        batchSize: 1
`;
  let berth: RunningBerth;
  let sqs: SQSClient;
  let records: string;

  before(async () => ({ berth, sqs, records } = await startWithQueues(BERTH_YML)));
  after(async () => {
    sqs?.destroy();
    await berth?.stop();
  });

  test('keeps minInstances started before any work and after idleTimeout, and runs at most maxInstances at once', async () => {
    await waitFor(async () => live(await scalingOf(berth.url, 'worker')) >= 3, { what: 'three instances started before any message' });
    await sendMessages(sqs, berth.url, 'jobs', Array.from({ length: 15 }, () => ({ ms: 200 })));
    const done = await waitForRecords(records, 30, { what: 'all 15 jobs handled', timeoutMs: 15_000 });
    const peak = peakConcurrency(done, 'worker');
    assert.ok(peak <= 3, `maxInstances 3, ${peak} ran at once`);
    assert.equal(peak, 3, 'all three instances took work');
    await sleep(2_500); // idleTimeout 1 s, reaped every second
    const s = await scalingOf(berth.url, 'worker');
    assert.equal(s.mode, 'service');
    assert.equal(live(s), 3, 'a service is never scaled below minInstances');
    assert.equal(s.desired, 3);
  });
});

describe('long-running services: start() and a handler-style poller', () => {
  const BERTH_YML = `
functions:
  ticker:
    mode: service
    minInstances: 2
    start: worker.start
  crasher:
    mode: service
    start: crash.start
  poller:
    mode: service
    handler: poller.handler
`;
  let berth: RunningBerth;

  before(async () => {
    berth = await startBerth(
      makeProject({
        'berth.yml': BERTH_YML,
        'worker.mjs': `export async function start({ instanceId }) {\n  console.log('started', instanceId, process.pid);\n  setInterval(() => {}, 1000);\n}\n`,
        'crash.mjs': `export async function start() {\n  console.log('crashing soon');\n  await new Promise((r) => setTimeout(r, 100));\n  throw new Error('lost the connection');\n}\n`,
        'poller.mjs': `let calls = 0;\nexport const handler = async () => {\n  calls++;\n  await new Promise((r) => setTimeout(r, 200));\n  return { calls };\n};\n`,
      }),
    );
  });

  after(async () => {
    await berth?.stop();
  });

  async function logsOf(name: string): Promise<{ invocationId: string; text: string }[]> {
    const response = await fetch(`${berth.url}/_berth/functions/${name}/logs?limit=200`);
    return ((await response.json()) as { logs: { invocationId: string; text: string }[] }).logs;
  }

  test('start() runs once per instance, and a killed instance is started again', async () => {
    const running = await waitFor(
      async () => {
        const s = await scalingOf(berth.url, 'ticker');
        return s.instances?.length === 2 && s.instances.every((i) => i.state === 'running' && i.pid) ? s : undefined;
      },
      { what: 'two running ticker instances' },
    );
    assert.equal(running.running, 2);
    const logs = await waitFor(async () => {
      const lines = (await logsOf('ticker')).filter((l) => l.text.includes('started'));
      return lines.length >= 2 ? lines : undefined;
    }, { what: "both instances' start() output in the function's logs" });
    assert.deepEqual(new Set(logs.map((l) => l.invocationId)), new Set(['ticker-instance-1', 'ticker-instance-2']));

    const victim = running.instances![0]!;
    process.kill(victim.pid!, 'SIGKILL');
    const restarted = await waitFor(
      async () => {
        const again = (await scalingOf(berth.url, 'ticker')).instances!.find((i) => i.id === victim.id)!;
        return again.state === 'running' && again.pid !== victim.pid ? again : undefined;
      },
      { what: 'the killed instance to be running again in a new process', timeoutMs: 5_000 },
    );
    assert.equal(restarted.restarts, 1);
    const note = (await logsOf('ticker')).find((l) => l.invocationId === victim.id && /exited \(signal: SIGKILL\); restarting in 1 s/.test(l.text));
    assert.ok(note, 'the restart is logged with its reason');
  });

  test('a crashing start() is restarted with a backoff that doubles', async () => {
    const notes = await waitFor(
      async () => {
        const lines = (await logsOf('crasher')).filter((l) => /restarting in/.test(l.text));
        return lines.length >= 3 ? lines : undefined;
      },
      { what: 'three restarts of the crashing service', timeoutMs: 15_000 },
    );
    const delays = notes.map((l) => Number(/restarting in (\d+) s/.exec(l.text)![1]));
    assert.deepEqual(delays.slice(0, 3), [1, 2, 4]);
    assert.ok((await logsOf('crasher')).some((l) => l.text.includes('lost the connection')), "the error's stack is in the logs");
  });

  test('a service handler with no events is called again as soon as it returns', async () => {
    const calls = await waitFor(
      async () => {
        const response = await fetch(`${berth.url}/_berth/functions`);
        const { functions } = (await response.json()) as { functions: { name: string; invocations: { warm: number; cold: number } }[] };
        const poller = functions.find((f) => f.name === 'poller')!;
        const total = poller.invocations.warm + poller.invocations.cold;
        return total >= 5 ? total : undefined;
      },
      { what: 'five polls', timeoutMs: 5_000 },
    );
    assert.ok(calls >= 5);
    const s = await scalingOf(berth.url, 'poller');
    assert.equal(s.instances?.length, 1, 'minInstances defaults to 1');
  });
});

describe('service and scaling settings that cannot work stop berth start and name the field', () => {
  const startFails = async (yml: string) => {
    const dir = makeProject({
      'berth.yml': yml,
      'h.mjs': 'export const handler = async () => ({});\n',
      'other.mjs': 'export async function start() {}\n',
    });
    const run = await runCli(['start', dir, '--port', '0', '--data', path.join(dir, '.berth')], { timeoutMs: 20_000 });
    assert.notEqual(run.code, 0, `berth start should have failed:\n${run.stdout}`);
    assert.doesNotMatch(run.stdout, /listening/);
    return run.stderr;
  };

  const cases: [string, string, RegExp][] = [
    ['instances on a function', 'h:\n    handler: h.handler\n    minInstances: 2', /functions\.h\.minInstances: minInstances applies to mode: service/],
    ['maxInstances below minInstances', 'h:\n    handler: h.handler\n    mode: service\n    minInstances: 3\n    maxInstances: 2', /functions\.h\.maxInstances: maxInstances \(2\) is below minInstances \(3\)/],
    ['a negative instance count', 'h:\n    handler: h.handler\n    mode: service\n    minInstances: -1', /functions\.h\.minInstances: expected 0 or more instances/],
    ['maxConcurrency on a service', 'h:\n    handler: h.handler\n    mode: service\n    maxConcurrency: 4', /functions\.h\.maxConcurrency: a service is sized by minInstances and maxInstances/],
    ['start() on a function', 'h:\n    handler: h.handler\n    start: h.start', /functions\.h\.start: start applies to mode: service/],
    ['start() in another file than the handler', 'h:\n    handler: h.handler\n    mode: service\n    start: other.start', /functions\.h\.start: start must be exported by the handler's file \(h\.mjs\)/],
    ['a start export that does not exist', 'h:\n    mode: service\n    start: other.begin', /functions\.h\.start: other\.mjs does not export "begin" \(its exports: start\)/],
    ['neither handler nor start', 'h:\n    mode: service', /functions\.h\.handler: expected "path\/to\/file\.exportName"/],
    ['an unknown mode', 'h:\n    handler: h.handler\n    mode: daemon', /functions\.h\.mode: expected function \(on demand, scales to zero\) or service/],
    ['a scaleUpRate of zero', 'h:\n    handler: h.handler\n    scaleUpRate: 0', /functions\.h\.scaleUpRate: expected more than 0 environments per second/],
  ];
  for (const [what, fn, expected] of cases) {
    test(what, async () => {
      assert.match(await startFails(`functions:\n  ${fn}\n`), expected);
    });
  }
});
