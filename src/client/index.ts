/**
 * berth/client: reach the platform from a handler without credentials juggling.
 *
 *   import { send, publish, invoke } from 'berth/client';
 *   await send('orders', { id: 42 });
 *   await publish('lead-created', { leadId: 'a1' }, { attributes: { kind: 'hot' } });
 *   await invoke('notify', { to: 'x' }, { async: true }); // → { invocationId }
 *
 * Inside a sandbox it finds Berth by itself; elsewhere set BERTH_URL.
 */
import { readFileSync } from 'node:fs';
import { CLIENT_ENV } from './env.js';

export interface SendOptions {
  attributes?: Record<string, string | number | string[]>;
  delaySeconds?: number;
  /** FIFO queues: the message group. */
  groupId?: string;
  /** A repeat with the same key inside the idempotency window is not sent again. */
  idempotencyKey?: string;
}

export interface PublishOptions {
  subject?: string;
  attributes?: Record<string, string | number | string[]>;
  idempotencyKey?: string;
}

export interface InvokeOptions {
  /** Queue the event and return its id at once (Lambda's `Event` invocation type). */
  async?: boolean;
  tenantId?: string;
  idempotencyKey?: string;
}

export class BerthClientError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'BerthClientError';
  }
}

/** Sends a message (a string as is, anything else as JSON) to a queue; resolves once it is stored. */
export async function send(queue: string, body: unknown, options: SendOptions = {}): Promise<{ messageId: string; duplicate: boolean }> {
  const { idempotencyKey, ...rest } = options;
  return (await call(`/_berth/queues/${encodeURIComponent(queue)}/messages`, { body: text(body), ...rest }, idempotencyKey)).json();
}

/** Publishes to a topic; resolves once every subscriber's copy is stored. */
export async function publish(topic: string, message: unknown, options: PublishOptions = {}): Promise<{ messageId: string; deliveries: number; duplicate: boolean }> {
  const { idempotencyKey, ...rest } = options;
  return (await call(`/_berth/topics/${encodeURIComponent(topic)}/messages`, { message: text(message), ...rest }, idempotencyKey)).json();
}

/** Invokes a function: waits for its result, or with `async: true` only until the event is stored. */
export async function invoke(fn: string, event: unknown = {}, options: InvokeOptions = {}): Promise<unknown> {
  const headers: Record<string, string> = { 'x-amz-invocation-type': options.async ? 'Event' : 'RequestResponse' };
  if (options.tenantId !== undefined) headers['x-amz-tenant-id'] = options.tenantId;
  const response = await call(`/2015-03-31/functions/${encodeURIComponent(fn)}/invocations`, event, options.idempotencyKey, headers);
  if (options.async) return { invocationId: response.headers.get('x-berth-invocation-id') };
  const payload: unknown = await response.json();
  if (response.headers.get('x-amz-function-error')) {
    const error = payload as { errorType?: string; errorMessage?: string };
    throw new BerthClientError(`${fn} failed: ${error.errorType}: ${error.errorMessage}`, 200, error.errorType);
  }
  return payload;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

async function call(path: string, body: unknown, idempotencyKey?: string, headers: Record<string, string> = {}): Promise<Response> {
  if (idempotencyKey !== undefined) headers['x-berth-idempotency-key'] = idempotencyKey;
  const response = await fetch(baseUrl() + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  if (!response.ok) {
    const detail = (await response.json().catch(() => ({}))) as { code?: string; message?: string; Message?: string };
    throw new BerthClientError(`${path}: ${detail.message ?? detail.Message ?? `HTTP ${response.status}`}`, response.status, detail.code ?? response.headers.get('x-amzn-errortype') ?? undefined);
  }
  return response;
}

function baseUrl(): string {
  const explicit = process.env[CLIENT_ENV.url];
  if (explicit) return explicit.replace(/\/$/, '');
  const file = process.env[CLIENT_ENV.urlFile];
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      throw new BerthClientError('berth/client: Berth is not listening yet (no URL file); the client works in handlers run by `berth start` or `berth dev`.', 0, undefined);
    }
  }
  throw new BerthClientError('berth/client: Berth not found. Inside a handler run by Berth this is automatic; elsewhere set BERTH_URL=http://host:port.', 0, undefined);
}
