/**
 * gateway: the HTTP front door. User routes become API Gateway v2 events; the
 * Lambda Invoke API and Berth's own API live beside them. Handlers never run here.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { BaseLogger } from 'pino';
import type { Dispatcher } from '../dispatch/index.js';
import type { LiveLimits } from '../dispatch/live-limits.js';
import type { Events } from '../events/index.js';
import type { FlowEngine } from '../flows/engine.js';
import { BerthError, isBerthError } from '../errors.js';
import { isEventError } from '../events/index.js';
import type { Runtime } from '../runtime/index.js';
import type { Scaling } from '../scaling/index.js';
import type { Store } from '../store/index.js';
import type { InvocationResult } from '../types.js';
import { fromApiGatewayV2Result, toApiGatewayV2Event } from './apigw-v2.js';
import { RETRY_AFTER_SECONDS, sendLambdaError } from './aws-errors.js';
import { registerBerthApi } from './berth-api.js';
import { registerRawBodyParser } from './body.js';
import { registerFlowsApi } from './flows-api.js';
import { registerInvokeApi } from './invoke-api.js';
import { registerLimitsApi } from './limits-api.js';
import { registerMetrics } from './metrics.js';
import { RouteTable } from './routes.js';
import { registerSqsApi } from './sqs/index.js';
import { optionalKey, tenantFrom } from './tenant.js';
import { verifyWebhook } from './webhook.js';

export { RouteTable } from './routes.js';

export interface GatewayOptions {
  runtime: Runtime;
  dispatcher: Dispatcher;
  events: Events;
  limits: LiveLimits;
  flows: FlowEngine;
  scaling: Scaling | undefined;
  store: Store;
  logger: BaseLogger;
  /** Limit for bodies of user routes and webhooks. */
  bodyLimitBytes: number;
  /** Limit for payloads of the Invoke, SQS and Berth APIs (events.maxPayload). */
  maxPayloadBytes: number;
  /** Show error types and stack traces in 502 responses (berth dev). */
  exposeErrors: boolean;
  routes: () => RouteTable;
}

export function createGateway(options: GatewayOptions): FastifyInstance {
  const app = Fastify({
    genReqId: () => randomUUID(),
    forceCloseConnections: false,
    bodyLimit: options.bodyLimitBytes,
  });

  // Bodies stay raw bytes: handlers get them as API Gateway would (text or base64).
  registerRawBodyParser(app);

  // One structured access-log line per request (pino), written off the response path.
  app.addHook('onResponse', async (request, reply) => {
    options.logger.info(
      { reqId: request.id, method: request.method, url: request.url, status: reply.statusCode, ms: Number(reply.elapsedTime.toFixed(2)) },
      'request',
    );
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, request, reply) => {
    const isInvokeApi = request.url.startsWith('/2015-03-31/');
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const limit = request.routeOptions.bodyLimit;
      const tooLarge = new BerthError('BERTH_ERR_BODY_TOO_LARGE', { limit });
      if (isInvokeApi) return sendLambdaError(reply, 'RequestTooLargeException', `Request must be smaller than ${limit} bytes for the InvokeFunction operation (events.maxPayload in berth.yml)`);
      return reply.code(413).send({ code: tooLarge.code, message: tooLarge.message });
    }
    if (isBerthError(err, 'BERTH_ERR_THROTTLED')) {
      // API Gateway's throttling answer, with what limit was hit.
      reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      return reply.code(429).send({ message: 'Too Many Requests', code: err.code, reason: err.detail.reason, detail: err.message });
    }
    if (isBerthError(err) || isEventError(err)) return reply.code(err.status).send({ code: err.code, message: err.message });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ code: err.code ?? 'BERTH_ERR_BAD_REQUEST', message: err.message });
    options.logger.error({ err, reqId: request.id }, 'unhandled gateway error');
    return reply.code(500).send({ code: 'BERTH_ERR_INTERNAL', message: 'Internal error in Berth; see the gateway log.' });
  });

  const apiBodyLimit = options.maxPayloadBytes;
  registerInvokeApi(app, { runtime: options.runtime, dispatcher: options.dispatcher, events: options.events, bodyLimit: apiBodyLimit });
  registerSqsApi(app, { queues: options.events.queues, maxPayloadBytes: options.maxPayloadBytes, logger: options.logger });
  registerLimitsApi(app, options.runtime, options.limits);
  registerBerthApi(app, { runtime: options.runtime, dispatcher: options.dispatcher, store: options.store, events: options.events, scaling: options.scaling, bodyLimit: apiBodyLimit });
  registerMetrics(app, options.runtime, options.dispatcher, options.scaling);
  registerFlowsApi(app, { flows: options.flows, store: options.store, bodyLimit: apiBodyLimit });

  app.all('/*', async (request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    const match = options.routes().match(request.method, path);
    if (!match) throw new BerthError('BERTH_ERR_ROUTE_NOT_FOUND', { method: request.method, path });
    if (match.webhook) {
      const body = request.body as Buffer | undefined;
      if (!verifyWebhook(match.webhook, request.headers, body)) {
        const { header, algorithm } = match.webhook;
        throw new BerthError('BERTH_ERR_WEBHOOK_SIGNATURE', { header, algorithm: algorithm.toUpperCase(), prefix: algorithm });
      }
    }
    const event = toApiGatewayV2Event({
      method: request.method,
      url: request.url,
      rawHeaders: request.raw.rawHeaders,
      body: request.body as Buffer | undefined,
      sourceIp: request.ip,
      protocol: `HTTP/${request.raw.httpVersion}`,
      routeKey: match.routeKey,
      pathParameters: match.pathParameters,
      requestId: request.id,
      now: Date.now(),
    });
    if (match.flow) {
      // The run is recorded before the 202; it goes on by itself.
      const { runId } = await options.flows.start(match.functionName, event, { trigger: 'webhook' });
      return reply.code(202).header('x-berth-flow-run-id', runId).send({ runId });
    }
    if (match.webhook) {
      // Durable before the 202: the event runs asynchronously, with the function's retries.
      const { id } = await options.events.asyncInvoker.enqueue(match.functionName, event, {
        // No tenant from headers: the signature does not cover them.
        trigger: 'webhook',
        ...optionalKey(request.headers),
      });
      return reply.code(202).header('x-berth-invocation-id', id).send({ invocationId: id });
    }
    const result = await options.dispatcher.invoke({
      functionName: match.functionName,
      event,
      tenantId: tenantFrom(request.headers),
      trigger: 'http',
    });
    reply.header('x-berth-invocation-id', result.id);
    if (result.status !== 'succeeded') return sendFunctionFailure(reply, result, options.exposeErrors);
    const response = fromApiGatewayV2Result(result.payload);
    reply.code(response.statusCode).headers(response.headers);
    if (response.cookies.length > 0) reply.header('set-cookie', response.cookies);
    return reply.send(response.body);
  });

  return app;
}

/** API Gateway's answers: 504 for a timeout, 502 for any other function failure. */
function sendFunctionFailure(reply: FastifyReply, result: InvocationResult, exposeErrors: boolean) {
  const timedOut = result.status === 'timed_out';
  const body: Record<string, unknown> = {
    message: timedOut ? 'Endpoint request timed out' : 'Internal Server Error',
    invocationId: result.id,
  };
  if (exposeErrors && result.error) body.error = result.error;
  return reply.code(timedOut ? 504 : 502).header('content-type', 'application/json').send(JSON.stringify(body));
}
