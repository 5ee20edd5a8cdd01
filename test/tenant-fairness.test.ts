/**
 * Fair scheduling across tenants: one tenant's backlog of async events does not delay
 * another tenant's first event behind it; and tenantConcurrency caps each tenant.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { makeProject, startBerth } from './helpers/project.js';
import { readRecords, waitForRecords } from './helpers/records.js';

const BERTH_YML = `
functions:
  work:
    handler: work.handler
    isolation: tenant
    tenantConcurrency: 1
    async: { concurrency: 4 }
    environment: { RECORDS: ./records.jsonl }
`;

const HANDLER = `
import { appendFileSync } from 'node:fs';
export const handler = async (event, context) => {
  const startedAt = Date.now();
  await new Promise((r) => setTimeout(r, 100));
  appendFileSync(process.env.RECORDS, JSON.stringify({ tenant: context.tenantId, n: event.n, startedAt, endedAt: Date.now() }) + '\\n');
};
`;

test("one tenant's backlog does not hold up another tenant's first event; each tenant runs at most tenantConcurrency at once", { timeout: 60_000 }, async () => {
  const dir = makeProject({ 'berth.yml': BERTH_YML, 'work.mjs': HANDLER });
  const berth = await startBerth(dir);
  try {
    const send = (tenant: string, n: number) =>
      fetch(`${berth.url}/2015-03-31/functions/work/invocations`, {
        method: 'POST',
        headers: { 'x-amz-invocation-type': 'Event', 'x-amz-tenant-id': tenant },
        body: JSON.stringify({ n }),
      }).then((r) => assert.equal(r.status, 202));
    for (let n = 0; n < 40; n++) await send('noisy', n);
    const sentQuiet = Date.now();
    await send('quiet', 0);

    const records = path.join(dir, 'records.jsonl');
    const [quiet] = await waitForRecords(records, 1, { what: "the quiet tenant's event", filter: (r) => r.tenant === 'quiet', timeoutMs: 15_000 });
    // Behind 40 events of 100 ms at one at a time it would wait 4 s; taken in turn it waits for about one.
    assert.ok(quiet!.startedAt - sentQuiet < 1_500, `the quiet tenant's event started ${quiet!.startedAt - sentQuiet} ms after it was sent`);

    const noisy = await waitForRecords(records, 40, { what: 'the whole backlog', filter: (r) => r.tenant === 'noisy', timeoutMs: 30_000 });
    const overlaps = noisy.filter((a) => noisy.some((b) => a !== b && a.startedAt < b.endedAt && b.startedAt < a.endedAt));
    assert.equal(overlaps.length, 0, 'tenantConcurrency 1: no two of one tenant ran at once');
    assert.equal(readRecords(records).length, 41, 'every event ran once');
  } finally {
    await berth.stop();
  }
});
