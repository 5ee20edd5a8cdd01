/**
 * Berth's own HTTP API under /_berth: health, functions with live environment
 * counts, logs, invocations with every attempt, and sending to queues and topics
 * (what `berth send`, `berth publish` and `berth/client` use).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { BerthError } from '../errors.js';
import type { Events } from '../events/index.js';
import type { MessageAttributes, MessageAttributeValue } from '../events/md5.js';
import type { Dispatcher } from '../dispatch/index.js';
import type { Runtime } from '../runtime/index.js';
import type { Scaling } from '../scaling/index.js';
import type { Store } from '../store/index.js';
import { optionalKey } from './tenant.js';

export interface BerthApiOptions {
  runtime: Runtime;
  dispatcher: Dispatcher;
  store: Store;
  events: Events;
  scaling: Scaling | undefined;
  bodyLimit: number;
}

export function registerBerthApi(app: FastifyInstance, { runtime, dispatcher, store, events, scaling, bodyLimit }: BerthApiOptions): void {
  app.get('/_berth/health', async () => ({ status: 'ok', pid: process.pid }));

  app.get('/_berth/functions', async () => {
    const usage = dispatcher.admission.stats().functions;
    const limits = dispatcher.admission.current.functions;
    const functions = runtime.functions().map((spec) => {
      const pool = runtime.pool(spec.name)!;
      return {
        name: spec.name,
        handler: spec.handler,
        isolation: spec.isolation,
        timeout: spec.timeoutSeconds,
        memory: spec.memoryMb,
        routes: spec.routes.map((r) => `${r.method} ${r.path}`),
        environments: pool.stats(),
        pids: pool.pids(),
        invocations: {
          running: usage[spec.name]?.running ?? 0,
          waiting: usage[spec.name]?.waiting ?? 0,
          queued: events.asyncInvoker.backlog(spec.name),
          throttles: usage[spec.name]?.throttles ?? 0,
          ...dispatcher.startsOf(spec.name),
        },
        limits: limits.get(spec.name) ?? {},
        ...(scaling ? { scaling: scaling.snapshot(spec) } : {}),
      };
    });
    return { functions };
  });

  app.get<{ Params: { name: string }; Querystring: { limit?: string; after?: string } }>(
    '/_berth/functions/:name/logs',
    async (request) => {
      const { name } = request.params;
      if (!runtime.pool(name)) throw new BerthError('BERTH_ERR_FUNCTION_NOT_FOUND', { fn: name });
      const limit = Math.min(Math.max(Number(request.query.limit) || 20, 1), 1000);
      const after = request.query.after === undefined ? undefined : Number(request.query.after);
      if (after !== undefined && !Number.isInteger(after)) {
        throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'after', problem: `must be a log sequence number, got "${request.query.after}"` });
      }
      return { logs: await store.listLogs({ functionName: name, limit, ...(after !== undefined ? { afterSeq: after } : {}) }) };
    },
  );

  app.get<{ Params: { id: string } }>('/_berth/invocations/:id', async (request) => {
    const { id } = request.params;
    const attempts = await store.getInvocation(id);
    // An async event that has not finished is in its queue: queued (or waiting to retry) or running.
    const pending = events.asyncInvoker.pending(id);
    if (pending) return { id, functionName: pending.functionName, status: pending.status, attempt: pending.attempts, attempts };
    if (attempts.length === 0) throw new BerthError('BERTH_ERR_INVOCATION_NOT_FOUND', { id });
    // The latest attempt's fields at the top level, every attempt below.
    return { ...attempts[attempts.length - 1], attempts };
  });

  app.get('/_berth/queues', async () => ({
    queues: events.queues.list().map((spec) => ({ ...spec, ...events.queues.depth(spec.name) })),
  }));

  app.post<{ Params: { name: string } }>('/_berth/queues/:name/messages', { bodyLimit }, async (request) => {
    const input = jsonBody(request.body);
    const body = input.body;
    if (body === undefined) throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'body', problem: 'is required: send {"body": "..."} (a string, or any JSON value to send as JSON text)' });
    const result = await events.queues.send(request.params.name, {
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...optionalAttributes(input.attributes),
      ...(typeof input.delaySeconds === 'number' ? { delaySeconds: input.delaySeconds } : {}),
      ...(typeof input.groupId === 'string' ? { groupId: input.groupId } : {}),
      ...(typeof input.deduplicationId === 'string' ? { dedupId: input.deduplicationId } : {}),
      ...dedupFromHeader(request.headers),
    });
    return { messageId: result.messageId, duplicate: result.duplicate, ...(result.sequenceNumber ? { sequenceNumber: result.sequenceNumber } : {}) };
  });

  app.get('/_berth/topics', async () => ({ topics: events.topics.list() }));

  app.post<{ Params: { name: string } }>('/_berth/topics/:name/messages', { bodyLimit }, async (request) => {
    const input = jsonBody(request.body);
    const message = input.message;
    if (message === undefined) throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'message', problem: 'is required: send {"message": "..."} (a string, or any JSON value to send as JSON text)' });
    return events.topics.publish(request.params.name, {
      message: typeof message === 'string' ? message : JSON.stringify(message),
      ...(typeof input.subject === 'string' ? { subject: input.subject } : {}),
      ...optionalAttributes(input.attributes),
      ...optionalKey(request.headers),
    });
  });
}

function dedupFromHeader(headers: IncomingHttpHeaders): { dedupId?: string } {
  const key = optionalKey(headers).idempotencyKey;
  return key === undefined ? {} : { dedupId: key };
}

export function jsonBody(raw: unknown): Record<string, unknown> {
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : '';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'request body', problem: `is not valid JSON (${(err as Error).message}); send a JSON object` });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'request body', problem: 'must be a JSON object' });
  }
  return value as Record<string, unknown>;
}

/** Accepts `{name: "text" | 42 | {DataType, StringValue|BinaryValue}}`. */
function optionalAttributes(raw: unknown): { attributes?: MessageAttributes } {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'attributes', problem: 'must be an object of name → value' });
  }
  const attributes: MessageAttributes = {};
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value === 'string') attributes[name] = { DataType: 'String', StringValue: value };
    else if (typeof value === 'number') attributes[name] = { DataType: 'Number', StringValue: String(value) };
    else if (Array.isArray(value)) attributes[name] = { DataType: 'String.Array', StringValue: JSON.stringify(value) };
    else if (value && typeof value === 'object' && typeof (value as MessageAttributeValue).DataType === 'string') attributes[name] = value as MessageAttributeValue;
    else throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `attributes.${name}`, problem: 'must be a string, a number, a list or {DataType, StringValue}' });
  }
  return { attributes };
}
