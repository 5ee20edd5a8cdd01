/** Webhook signatures: the hex HMAC of the raw body, optionally prefixed `sha256=` (GitHub's style). */
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { sameSecret } from '../strings.js';
import type { WebhookSpec } from '../types.js';

export function verifyWebhook(webhook: WebhookSpec, headers: IncomingHttpHeaders, body: Buffer | undefined): boolean {
  if (webhook.secret === undefined) return true;
  const raw = headers[webhook.header];
  const given = (Array.isArray(raw) ? raw[0] : raw)?.trim().replace(/^sha(1|256|512)=/i, '').toLowerCase();
  if (!given) return false;
  return sameSecret(given, createHmac(webhook.algorithm, webhook.secret).update(body ?? Buffer.alloc(0)).digest('hex'));
}
