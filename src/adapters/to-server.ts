/**
 * Lambda HTTP handlers inside an existing server: `toNodeHttp` for any `(req, res)` server,
 * `toExpress` as Express middleware, `lambdaRoutes` as a Fastify plugin. Requests become the
 * same API Gateway v2 events Berth's gateway builds, and results map back the same way
 * (src/gateway/apigw-v2.ts, one implementation for both).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fromApiGatewayV2Result, toApiGatewayV2Event, type HttpResponseParts } from '../gateway/apigw-v2.js';
import { callHandler, type HandlerOptions, type LambdaHandler } from './call-handler.js';

export interface ToServerOptions extends HandlerOptions {
  /** The event's routeKey (default `$default`; Express and Fastify give the matched route). */
  routeKey?: string;
}

interface RequestShape {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer | undefined;
  sourceIp: string;
  httpVersion: string;
  routeKey: string;
  pathParameters?: Record<string, string>;
}

/** Runs the handler for one request and gives the response API Gateway would send. */
async function respond(handler: LambdaHandler, request: RequestShape, options: HandlerOptions): Promise<HttpResponseParts> {
  const event = toApiGatewayV2Event({
    method: request.method,
    url: request.url,
    rawHeaders: request.rawHeaders,
    body: request.body,
    sourceIp: request.sourceIp,
    protocol: `HTTP/${request.httpVersion}`,
    routeKey: request.routeKey,
    ...(request.pathParameters ? { pathParameters: request.pathParameters } : {}),
    requestId: randomUUID(),
    now: Date.now(),
  });
  try {
    return fromApiGatewayV2Result(await callHandler(handler, event, options));
  } catch {
    // What API Gateway answers when the function fails.
    return { statusCode: 502, headers: { 'content-type': 'application/json' }, cookies: [], body: Buffer.from('{"message":"Internal Server Error"}') };
  }
}

function send(res: ServerResponse, response: HttpResponseParts): void {
  res.statusCode = response.statusCode;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  if (response.cookies.length > 0) res.setHeader('set-cookie', response.cookies);
  res.end(response.body);
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length > 0 ? Buffer.concat(chunks) : undefined;
}

/** A body a framework already parsed, back to bytes (as close to the original as it allows). */
function bodyBytes(parsed: unknown): Buffer | undefined {
  if (parsed === undefined || parsed === null) return undefined;
  if (Buffer.isBuffer(parsed)) return parsed;
  if (typeof parsed === 'string') return Buffer.from(parsed);
  if (typeof parsed === 'object' && Object.keys(parsed).length === 0) return undefined;
  return Buffer.from(JSON.stringify(parsed));
}

/** A `(req, res)` listener that answers every request with the handler. */
export function toNodeHttp(handler: LambdaHandler, options: ToServerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      const response = await respond(
        handler,
        {
          method: req.method ?? 'GET',
          url: req.url ?? '/',
          rawHeaders: req.rawHeaders,
          body: await readBody(req),
          sourceIp: req.socket.remoteAddress ?? '',
          httpVersion: req.httpVersion,
          routeKey: options.routeKey ?? '$default',
        },
        options,
      );
      send(res, response);
    })().catch((err: unknown) => res.destroy(err as Error));
  };
}

interface ExpressRequest extends IncomingMessage {
  params?: Record<string, string>;
  route?: { path?: string };
  body?: unknown;
  originalUrl?: string;
}

/**
 * Express middleware (or a route handler: `app.post('/lead/:leadId', toExpress(handler))`).
 * `req.params` become pathParameters. A body an Express parser already read is used as it was
 * parsed; without one, the raw bytes are read.
 */
export function toExpress(handler: LambdaHandler, options: ToServerOptions = {}) {
  return (req: ExpressRequest, res: ServerResponse, next: (err?: unknown) => void): void => {
    void (async () => {
      const parsed = req.body !== undefined;
      const response = await respond(
        handler,
        {
          method: req.method ?? 'GET',
          url: req.originalUrl ?? req.url ?? '/',
          rawHeaders: req.rawHeaders,
          body: parsed ? bodyBytes(req.body) : await readBody(req),
          sourceIp: req.socket.remoteAddress ?? '',
          httpVersion: req.httpVersion,
          routeKey: options.routeKey ?? (req.route?.path ? `${req.method} ${toApiGatewayPath(req.route.path)}` : '$default'),
          ...(req.params && Object.keys(req.params).length > 0 ? { pathParameters: req.params } : {}),
        },
        options,
      );
      send(res, response);
    })().catch(next);
  };
}

interface FastifyLike {
  addContentTypeParser(type: string, options: { parseAs: 'buffer' }, parser: (req: unknown, body: Buffer, done: (err: Error | null, body?: Buffer) => void) => void): void;
  route(options: { method: string | string[]; url: string; handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown> }): void;
}
interface FastifyRequestLike {
  method: string;
  url: string;
  raw: IncomingMessage;
  body?: unknown;
  ip: string;
  params?: unknown;
  routeOptions?: { url?: string };
}
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string | string[]): FastifyReplyLike;
  send(body: Buffer): unknown;
}

export interface LambdaRoutesOptions extends HandlerOptions {
  /** `'POST /lead/{leadId}'` (API Gateway paths, as in berth.yml) → handler. */
  routes: Record<string, LambdaHandler>;
}

/**
 * A Fastify plugin: `app.register(lambdaRoutes, { routes: { 'POST /lead/{leadId}': handler } })`.
 * Inside it, bodies stay bytes (its own content-type parser), as the gateway gives them.
 */
export async function lambdaRoutes(app: FastifyLike, options: LambdaRoutesOptions): Promise<void> {
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  for (const [routeKey, handler] of Object.entries(options.routes)) {
    const [method, path] = routeKey.split(/\s+/);
    if (!method || !path) throw new Error(`lambdaRoutes: route "${routeKey}" must be "METHOD /path", e.g. "POST /lead/{leadId}"`);
    app.route({
      method: method.toUpperCase() === 'ANY' ? ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] : method.toUpperCase(),
      url: path.replace(/\{([A-Za-z0-9_]+)\+\}/g, '*').replace(/\{([A-Za-z0-9_]+)\}/g, ':$1'),
      handler: async (request, reply) => {
        const params = (request.params ?? {}) as Record<string, string>;
        const response = await respond(
          handler,
          {
            method: request.method,
            url: request.url,
            rawHeaders: request.raw.rawHeaders,
            body: bodyBytes(request.body),
            sourceIp: request.ip,
            httpVersion: request.raw.httpVersion,
            routeKey,
            ...(Object.keys(params).length > 0 ? { pathParameters: params } : {}),
          },
          options,
        );
        reply.code(response.statusCode);
        for (const [name, value] of Object.entries(response.headers)) reply.header(name, value);
        if (response.cookies.length > 0) reply.header('set-cookie', response.cookies);
        return reply.send(response.body);
      },
    });
  }
}

/** `/lead/:leadId` → `/lead/{leadId}`, so an Express route key reads like API Gateway's. */
function toApiGatewayPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}
