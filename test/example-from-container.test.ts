/**
 * examples/from-container: seed 003's container-image SQS worker on Berth, unchanged. The image's
 * ENTRYPOINT + CMD is the bootstrap of a `runtime: provided` function; the real
 * @aws-sdk/client-sqs plays the seeder, and a poison message ends up in the dead-letter queue.
 */
import assert from 'node:assert/strict';
import { createHash, randomInt } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { escapeRegExp, functionInfo, functionLogs, waitFor } from './helpers/lambda.js';
import { repoRoot, startBerth, type RunningBerth } from './helpers/project.js';

const example = path.join(repoRoot, 'examples', 'from-container');

let berth: RunningBerth;
let dir: string;
let sqs: SQSClient;
/** MessageId → body of the good messages the seeder sent. */
const sent = new Map<string, string>();

before(async () => {
  dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'berth-from-container-')), 'from-container');
  cpSync(example, dir, { recursive: true, filter: (src) => !src.includes('.berth') && !src.includes('node_modules') });
  berth = await startBerth(dir);
  sqs = new SQSClient({ endpoint: berth.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
});

after(async () => {
  sqs?.destroy();
  await berth?.stop();
});

/** The seeder's messages: 10 to 50 random uppercase letters. */
function randomMessage(): string {
  return Array.from({ length: randomInt(10, 51) }, () => String.fromCharCode(65 + randomInt(26))).join('');
}

async function queueUrl(name: string): Promise<string> {
  return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
}

async function consumerLog(): Promise<string> {
  return (await functionLogs(berth.url, 'consumer', 1000)).map((log) => log.text).join('');
}

test('the bootstrap is executable in the example itself, where git records its mode', () => {
  // Without the bit the environment fails with Runtime.InvalidEntrypoint, far from the cause.
  assert.ok(statSync(path.join(example, 'app', 'bootstrap')).mode & 0o100, 'examples/from-container/app/bootstrap must be mode 755');
  assert.ok(statSync(path.join(dir, 'app', 'bootstrap')).mode & 0o100, 'the copy kept the executable bit');
});

test('the seeder\'s messages are all processed; a poison message goes to the dead-letter queue after 2 receives', async () => {
  const work = await queueUrl('work');
  const dlq = await queueUrl('work-dlq');

  const poison = 'poison: not for processing';
  // Poison goes out first: its two visibility timeouts are the slowest part of the test.
  const bodies = [poison, ...Array.from({ length: 30 }, randomMessage)];
  let poisonId = '';
  const sentAt = Date.now();
  for (let start = 0; start < bodies.length; start += 10) {
    const entries = bodies.slice(start, start + 10);
    const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: work, Entries: entries.map((MessageBody, i) => ({ Id: `m${i}`, MessageBody })) }));
    assert.equal(out.Failed?.length ?? 0, 0, JSON.stringify(out.Failed));
    for (const ok of out.Successful!) {
      const body = entries[Number(ok.Id!.slice(1))]!;
      if (body === poison) poisonId = ok.MessageId!;
      else sent.set(ok.MessageId!, body);
    }
  }
  assert.equal(sent.size, 30);
  assert.ok(poisonId);

  const dead = await waitFor(
    async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, WaitTimeSeconds: 2, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['All'] }));
      return out.Messages?.length ? out.Messages : undefined;
    },
    { what: 'the poison message in work-dlq', timeoutMs: 15_000 },
  );
  assert.equal(dead.length, 1);
  assert.equal(dead[0]!.Body, poison);
  assert.equal(dead[0]!.MessageId, poisonId);
  assert.match(dead[0]!.Attributes!.DeadLetterQueueSourceArn!, /:work$/);
  // Moved only at its third delivery, two 4 s visibility timeouts after the first: it was retried, not dropped at once.
  assert.ok(Date.now() - sentAt >= 7_500, `moved after ${Date.now() - sentAt} ms`);

  // A queue trigger deletes a message only when the handler returned without listing it in
  // batchItemFailures: an empty queue is every good message processed and acknowledged.
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: work, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  assert.deepEqual(Attributes, { ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
});

test('what the consumer logged is what the seeder sent, in Lambda\'s log format', async () => {
  const log = await consumerLog();
  const lines = [...log.matchAll(/\t(INFO|ERROR)\t(?:message|rejected message) ([0-9a-f-]{36}): (.*)\n/g)];
  assert.ok(lines.length > 0, log);
  for (const [, level, id, rest] of lines) {
    const body = sent.get(id!);
    if (body === undefined) {
      assert.match(rest!, /^marked poison \(receive [12]\)$/, `only the poison message is unknown or rejected: ${id} ${rest}`);
      assert.equal(level, 'ERROR');
      continue;
    }
    const sha256 = createHash('sha256').update(body).digest('hex');
    assert.equal(rest, `${body.length} chars, upper ${body.slice(0, 12)}, sha256 ${sha256}`, `message ${id} reached the handler intact`);
  }
});

test('the handler runs under runtime: provided: the bootstrap exec\'d berth bootstrap with the CMD, in the task root', async (t) => {
  if (!existsSync('/proc/self/cmdline')) return t.skip('reads the environments\' processes from /proc');
  const { pids } = await functionInfo(berth.url, 'consumer');
  assert.ok(pids.length > 0, 'prewarm keeps an environment');
  // `exec` in the bootstrap makes the environment's process the runtime client itself; a
  // just-started one may still be the shell for an instant, hence the wait.
  const argv = await waitFor(
    () => {
      const args = readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0').filter(Boolean);
      return path.basename(args.at(-3) ?? '') === 'berth' ? args : undefined;
    },
    { what: 'the environment to run berth bootstrap', timeoutMs: 5_000 },
  );
  assert.deepEqual(argv.slice(-2), ['bootstrap', 'consumer.handler'], argv.join(' '));
  const env = new Map(readFileSync(`/proc/${pids[0]}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const taskRoot = path.join(dir, 'app');
  assert.equal(env.get('AWS_EXECUTION_ENV'), 'AWS_Lambda_provided');
  assert.equal(env.get('_HANDLER'), 'consumer.handler');
  assert.equal(env.get('LAMBDA_TASK_ROOT'), taskRoot);
  assert.match(env.get('AWS_LAMBDA_RUNTIME_API') ?? '', /^127\.0\.0\.1:\d+$/);
  assert.equal(realpathSync(`/proc/${pids[0]}/cwd`), realpathSync(taskRoot));
});

// The bootstrap prints before it answers, but its pipe may be read after the answer's socket:
// every line must still be filed under its own invocation (RuntimeApiEnvironment waits a turn).
test('every message, and the cold start, has its line in the consumer\'s log', async () => {
  const log = await consumerLog();
  assert.match(log, new RegExp(`consumer starting: node v\\d+[^,]*, AWS_Lambda_provided, task root ${escapeRegExp(path.join(dir, 'app'))}\\n`));
  const missing = [...sent.keys()].filter((id) => !log.includes(`message ${id}:`));
  assert.deepEqual(missing, []);
  const processed = [...log.matchAll(/processed (\d+) messages/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  assert.equal(processed, 30);
  assert.equal(log.match(/marked poison \(receive [12]\)/g)?.length, 2);
});
