/**
 * Lambda HTTP handlers inside an existing server: `toNodeHttp` for any `(req, res)` server,
 * `toExpress` as Express middleware, `lambdaRoutes` as a Fastify plugin. Requests become the
 * same API Gateway v2 events Berth's gateway builds, and results map back the same way
 * (src/gateway/apigw-v2.ts, one implementation for both).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { fromApiGatewayV2Result, toApiGatewayV2Event, type HttpResponseParts } from '../gateway/apigw-v2.js';
import { registerRawBodyParser } from '../gateway/body.js';
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

/**
 * The body as Express left it: the bytes themselves while nobody has read the stream, or what a
 * parser read (express.raw, express.text). After express.json or express.urlencoded only the parsed
 * object is left: the handler gets it as JSON, with headers that say so.
 */
async function expressBody(req: ExpressRequest): Promise<{ body: Buffer | undefined; rawHeaders: string[] }> {
  const parsed = req.body;
  if (!req.readableEnded || parsed === undefined || parsed === null) return { body: await readBody(req), rawHeaders: req.rawHeaders };
  if (Buffer.isBuffer(parsed) || typeof parsed === 'string') return { body: Buffer.from(parsed), rawHeaders: req.rawHeaders };
  const body = Buffer.from(JSON.stringify(parsed));
  const rawHeaders: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!/^content-(type|length)$/i.test(req.rawHeaders[i]!)) rawHeaders.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  rawHeaders.push('content-type', 'application/json', 'content-length', String(body.length));
  return { body, rawHeaders };
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
  /** Express 5 gives a greedy `*rest` as its segments. */
  params?: Record<string, string | string[]>;
  route?: { path?: string };
  body?: unknown;
  originalUrl?: string;
}

/**
 * Express middleware (or a route handler: `app.post('/lead/:leadId', toExpress(handler))`).
 * `req.params` become pathParameters, a greedy `*rest` as API Gateway's `{rest+}`. The body is
 * the request's bytes unless a parser already read them (see expressBody).
 */
export function toExpress(handler: LambdaHandler, options: ToServerOptions = {}) {
  return (req: ExpressRequest, res: ServerResponse, next: (err?: unknown) => void): void => {
    void (async () => {
      const { body, rawHeaders } = await expressBody(req);
      const pathParameters = Object.fromEntries(Object.entries(req.params ?? {}).map(([name, value]) => [name, [value].flat().join('/')]));
      const response = await respond(
        handler,
        {
          method: req.method ?? 'GET',
          url: req.originalUrl ?? req.url ?? '/',
          rawHeaders,
          body,
          sourceIp: req.socket.remoteAddress ?? '',
          httpVersion: req.httpVersion,
          routeKey: options.routeKey ?? (req.route?.path ? `${req.method} ${toApiGatewayPath(req.route.path)}` : '$default'),
          ...(Object.keys(pathParameters).length > 0 ? { pathParameters } : {}),
        },
        options,
      );
      send(res, response);
    })().catch(next);
  };
}

export interface LambdaRoutesOptions extends HandlerOptions {
  /** `'POST /lead/{leadId}'` (API Gateway paths, as in berth.yml) → handler. */
  routes: Record<string, LambdaHandler>;
}

/**
 * A Fastify plugin: `app.register(lambdaRoutes, { routes: { 'POST /lead/{leadId}': handler } })`.
 * Inside it, every body stays the bytes that were sent, as the gateway gives them: its own
 * content-type parsers are replaced by the gateway's raw one.
 */
export async function lambdaRoutes(app: FastifyInstance, options: LambdaRoutesOptions): Promise<void> {
  registerRawBodyParser(app);
  for (const [routeKey, handler] of Object.entries(options.routes)) {
    const [method, path] = routeKey.split(/\s+/);
    if (!method || !path) throw new Error(`lambdaRoutes: route "${routeKey}" must be "METHOD /path", e.g. "POST /lead/{leadId}"`);
    // Fastify has one unnamed wildcard, `*`; API Gateway names its greedy parameter.
    const greedy = /\{([A-Za-z0-9_]+)\+\}/.exec(path)?.[1];
    app.route({
      method: method.toUpperCase() === 'ANY' ? ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] : method.toUpperCase(),
      url: path.replace(/\{([A-Za-z0-9_]+)\+\}/g, '*').replace(/\{([A-Za-z0-9_]+)\}/g, ':$1'),
      handler: async (request, reply) => {
        const { '*': wildcard, ...named } = (request.params ?? {}) as Record<string, string>;
        const params = greedy !== undefined && wildcard !== undefined ? { ...named, [greedy]: wildcard } : named;
        const response = await respond(
          handler,
          {
            method: request.method,
            url: request.url,
            rawHeaders: request.raw.rawHeaders,
            body: Buffer.isBuffer(request.body) ? request.body : undefined,
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

/** `/lead/:leadId` → `/lead/{leadId}` and `/files/*rest` → `/files/{rest+}`, so an Express route key reads like API Gateway's. */
function toApiGatewayPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*([A-Za-z0-9_]+)/g, '{$1+}');
}
