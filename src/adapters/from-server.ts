/**
 * An existing server as a Lambda HTTP handler: `fromNodeHttp(listener)` / `fromExpress(app)`.
 * The app runs on a real node:http server on a Unix socket inside the same process, and each
 * event becomes a real request to it, so everything an app relies on (streams, Express's own
 * request and response objects, chunked responses) behaves as in production. The response comes
 * back as API Gateway v2 expects it: Set-Cookie as `cookies`, repeated headers joined, and
 * binary bodies in base64.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import http, { type IncomingMessage, type RequestListener } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { isTextContentType, type ApiGatewayV2Event } from '../gateway/apigw-v2.js';

export interface ApiGatewayV2Result {
  statusCode: number;
  headers: Record<string, string>;
  cookies?: string[];
  body: string;
  isBase64Encoded: boolean;
}

/** A Lambda handler serving every event with `listener` (any `(req, res)` app). */
export function fromNodeHttp(listener: RequestListener): (event: ApiGatewayV2Event) => Promise<ApiGatewayV2Result> {
  let socket: Promise<string> | undefined;
  const agent = new http.Agent({ keepAlive: true });
  return async (event) => {
    socket ??= listen(listener);
    const socketPath = await socket;
    const body = event.body === undefined ? undefined : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
    // The event's framing headers described the request that reached the gateway, not this one.
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(event.headers ?? {})) if (!HOP_BY_HOP.has(name.toLowerCase())) headers[name] = value;
    if (event.cookies?.length) headers.cookie = event.cookies.join('; ');
    headers['content-length'] = String(body?.length ?? 0);
    const target = event.rawPath + (event.rawQueryString ? `?${event.rawQueryString}` : '');
    return new Promise((resolve, reject) => {
      const request = http.request({ socketPath, agent, method: event.requestContext.http.method, path: target, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve(toResult(response, Buffer.concat(chunks))));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end(body);
    });
  };
}

const HOP_BY_HOP = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'expect', 'upgrade', 'te', 'trailer']);

/** An Express app (or anything Express-like that is a request listener). */
export const fromExpress = fromNodeHttp;

function toResult(response: IncomingMessage, body: Buffer): ApiGatewayV2Result {
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, value] of Object.entries(response.headers)) {
    if (value === undefined || name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding') continue;
    if (name === 'set-cookie') cookies = [value].flat();
    else headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const text = isTextContentType(headers['content-type'] ?? 'text/plain');
  return {
    statusCode: response.statusCode ?? 500,
    headers,
    ...(cookies ? { cookies } : {}),
    body: body.toString(text ? 'utf8' : 'base64'),
    isBase64Encoded: !text,
  };
}

/** Starts the app on a fresh Unix socket; neither it nor its kept-alive connections keep the process alive. */
function listen(listener: RequestListener): Promise<string> {
  const socketPath = path.join(os.tmpdir(), `berth-app-${process.pid}-${randomUUID().slice(0, 8)}.sock`);
  const server = http.createServer(listener);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.on('connection', (connection) => connection.unref());
    server.listen(socketPath, () => {
      server.unref();
      process.once('exit', () => rmSync(socketPath, { force: true }));
      resolve(socketPath);
    });
  });
}
