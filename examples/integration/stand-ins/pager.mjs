/**
 * A stand-in for the alerting service of seed 000 (SMS or email when an integration errors):
 * the flows' `alerts: { webhook }` posts each failed run here as an SNS notification.
 *   POST /alerts   prints the alert (see `berth logs pager`) and keeps it
 *   GET  /alerts   the alerts received so far
 */
import { listen, readBody, sendJson } from './http.mjs';

const alerts = [];

export async function start() {
  await listen('pager stand-in', handle, 4712);
}

async function handle(req, res) {
  const body = await readBody(req);
  if (req.method === 'GET' && req.url === '/alerts') return sendJson(res, 200, { alerts });
  if (req.method !== 'POST' || req.url !== '/alerts') return sendJson(res, 404, { error: `no such endpoint: ${req.method} ${req.url}` });
  const notification = JSON.parse(body);
  const alert = { subject: notification.Subject, ...JSON.parse(notification.Message) };
  // One alert may be delivered more than once (retries): keep the first.
  if (!alerts.some((seen) => seen.runId === alert.runId)) {
    alerts.push(alert);
    console.log(`ALERT ${alert.subject} (tenant ${alert.tenant}): ${alert.error.errorType}: ${alert.error.errorMessage}`);
  }
  sendJson(res, 200, { ok: true });
}
