/** examples/orders, as the README starts it: an HTTP order → queue → batch consumer → topic → receipt, and a signed webhook. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { cpSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, startBerth, type RunningBerth } from './helpers/project.js';
import { functionLogs, waitFor } from './helpers/lambda.js';

let berth: RunningBerth;

before(async () => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'berth-orders-')), 'orders');
  cpSync(path.join(repoRoot, 'examples', 'orders'), dir, { recursive: true, filter: (src) => !src.includes('.berth') });
  berth = await startBerth(dir);
});

after(async () => {
  await berth?.stop();
});

test('an order flows from POST /orders through the queue and topic to a receipt; a retried POST queues nothing twice', async () => {
  const order = { id: 'o-42', items: [{ sku: 'tea', quantity: 2 }] };
  const post = () => fetch(`${berth.url}/orders`, { method: 'POST', body: JSON.stringify(order) }).then((r) => r.json() as Promise<{ messageId: string; duplicate: boolean }>);
  const first = await post();
  const second = await post();
  assert.equal(second.messageId, first.messageId);
  assert.equal(second.duplicate, true);
  const receipts = await waitFor(
    async () => {
      const text = (await functionLogs(berth.url, 'sendReceipt', 20)).map((l) => l.text).join('');
      return text.includes('receipt sent for order o-42') ? text : undefined;
    },
    { what: 'the receipt' },
  );
  assert.equal(receipts.match(/receipt sent for order o-42/g)!.length, 1);
});

test('the payment webhook takes only signed requests', async () => {
  const body = JSON.stringify({ orderId: 'o-42', status: 'paid' });
  const unsigned = await fetch(`${berth.url}/hooks/payments`, { method: 'POST', body });
  assert.equal(unsigned.status, 401);
  const signature = createHmac('sha256', 'demo-secret').update(body).digest('hex');
  const signed = await fetch(`${berth.url}/hooks/payments`, { method: 'POST', headers: { 'x-signature': signature }, body });
  assert.equal(signed.status, 202);
  await waitFor(
    async () => (await functionLogs(berth.url, 'paymentWebhook', 5)).some((l) => l.text.includes('payment for order o-42: paid')),
    { what: 'the payment handler' },
  );
});
