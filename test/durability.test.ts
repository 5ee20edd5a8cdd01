/**
 * Nothing acknowledged is lost: Berth is killed with SIGKILL while 10,000 async
 * events are queued and about 3,000 are done. After a restart every event
 * completes; an event that ran twice was in flight at the kill and kept its id.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { makeProject, startBerth } from './helpers/project.js';
import { waitFor } from './helpers/lambda.js';
import { readRecords } from './helpers/records.js';

const EVENTS = 10_000;
const CONCURRENCY = 10;

const BERTH_YML = `
functions:
  work:
    handler: work.handler
    environment: { RECORDS: ./done.jsonl }
    async: { concurrency: ${CONCURRENCY} }
`;

const HANDLER = `
import { appendFileSync } from 'node:fs';
export const handler = async (event, context) => {
  await new Promise((r) => setTimeout(r, 15));
  appendFileSync(process.env.RECORDS, JSON.stringify({ n: event.n, id: context.awsRequestId, attempt: context.attempt }) + '\\n');
};
`;

async function enqueueAll(url: string): Promise<Map<number, string>> {
  const ids = new Map<number, string>();
  let next = 0;
  const producer = async () => {
    while (next < EVENTS) {
      const n = next++;
      const response = await fetch(`${url}/2015-03-31/functions/work/invocations`, {
        method: 'POST',
        headers: { 'x-amz-invocation-type': 'Event' },
        body: JSON.stringify({ n }),
      });
      assert.equal(response.status, 202);
      ids.set(n, response.headers.get('x-berth-invocation-id')!);
    }
  };
  await Promise.all(Array.from({ length: 16 }, producer));
  return ids;
}

test('kill -9 with 10,000 async events queued: after a restart all complete; repeats were in flight and keep their id', { timeout: 120_000 }, async () => {
  const dir = makeProject({ 'berth.yml': BERTH_YML, 'work.mjs': HANDLER });
  const done = path.join(dir, 'done.jsonl');
  const first = await startBerth(dir);
  const ids = await enqueueAll(first.url);
  assert.equal(ids.size, EVENTS);

  await waitFor(() => readRecords(done).length >= 3_000, { what: '3,000 events done', timeoutMs: 60_000, intervalMs: 20 });
  first.process.kill('SIGKILL');
  await new Promise((resolve) => first.process.once('exit', resolve));
  const doneAtKill = readRecords(done).length;
  assert.ok(doneAtKill < EVENTS, `the kill came before the end (${doneAtKill} done)`);

  const second = await startBerth(dir, { home: first.home });
  try {
    await waitFor(() => new Set(readRecords(done).map((r) => r.n)).size === EVENTS, { what: 'every event done after the restart', timeoutMs: 90_000, intervalMs: 100 });
  } finally {
    await second.stop();
  }

  const runs = new Map<number, { id: string; attempt: number }[]>();
  for (const record of readRecords<{ n: number; id: string; attempt: number }>(done)) {
    runs.set(record.n, [...(runs.get(record.n) ?? []), record]);
  }
  assert.equal(runs.size, EVENTS, 'no event lost');
  const repeated = [...runs.entries()].filter(([, list]) => list.length > 1);
  for (const [n, list] of repeated) {
    assert.ok(list.every((run) => run.id === ids.get(n)), `event ${n} kept its request id on every run`);
    assert.equal(list.length, 2, `event ${n} ran at most twice`);
  }
  for (const [n, list] of runs) assert.equal(list[0]!.id, ids.get(n), `event ${n} ran with the id the caller was given`);
  // Only what was running (CONCURRENCY events) or finished but not yet acknowledged at the kill can run again.
  assert.ok(repeated.length <= 2 * CONCURRENCY, `${repeated.length} events ran twice; at most ${2 * CONCURRENCY} were in flight`);
});
