/**
 * API Gateway HTTP API payload 2.0: request → event, and handler result → HTTP
 * response, as API Gateway maps them. Framework-free so the gateway and the
 * adapters share one implementation.
 */
import { ACCOUNT_ID } from '../aws-identity.js';
import { safeDecode } from '../strings.js';

export interface HttpRequestParts {
  method: string;
  /** Path and query string as received, e.g. `/lead/42?x=1`. */
  url: string;
  /** Node's rawHeaders: [name, value, name, value, ...]. */
  rawHeaders: string[];
  body: Buffer | undefined;
  sourceIp: string;
  protocol: string;
  routeKey: string;
  pathParameters?: Record<string, string>;
  requestId: string;
  now: number;
}

export interface ApiGatewayV2Event {
  version: '2.0';
  routeKey: string;
  rawPath: string;
  rawQueryString: string;
  cookies?: string[];
  headers: Record<string, string>;
  queryStringParameters?: Record<string, string>;
  pathParameters?: Record<string, string>;
  requestContext: {
    accountId: string;
    apiId: string;
    domainName: string;
    domainPrefix: string;
    http: { method: string; path: string; protocol: string; sourceIp: string; userAgent: string };
    requestId: string;
    routeKey: string;
    stage: string;
    time: string;
    timeEpoch: number;
  };
  body?: string;
  isBase64Encoded: boolean;
}

const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|graphql)|[^;]*\+(json|xml))/i;

/** Whether a body of this type travels as text in an event or result (else base64). */
export function isTextContentType(contentType: string): boolean {
  return TEXT_TYPES.test(contentType);
}

export function toApiGatewayV2Event(req: HttpRequestParts): ApiGatewayV2Event {
  const queryStart = req.url.indexOf('?');
  const rawPath = queryStart === -1 ? req.url : req.url.slice(0, queryStart);
  const rawQueryString = queryStart === -1 ? '' : req.url.slice(queryStart + 1);

  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!;
    if (name === 'cookie') {
      (cookies ??= []).push(...value.split(/;\s*/).filter((c) => c !== ''));
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }

  let queryStringParameters: Record<string, string> | undefined;
  if (rawQueryString !== '') {
    queryStringParameters = {};
    for (const [key, value] of new URLSearchParams(rawQueryString)) {
      queryStringParameters[key] = key in queryStringParameters ? `${queryStringParameters[key]},${value}` : value;
    }
  }

  const domainName = headers.host ?? 'localhost';
  const event: ApiGatewayV2Event = {
    version: '2.0',
    routeKey: req.routeKey,
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      accountId: ACCOUNT_ID,
      apiId: 'berth',
      domainName,
      domainPrefix: domainName.split('.')[0]!,
      http: {
        method: req.method,
        path: safeDecode(rawPath),
        protocol: req.protocol,
        sourceIp: req.sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: req.requestId,
      routeKey: req.routeKey,
      stage: '$default',
      time: clfTime(req.now),
      timeEpoch: req.now,
    },
    isBase64Encoded: false,
  };
  if (cookies) event.cookies = cookies;
  if (queryStringParameters) event.queryStringParameters = queryStringParameters;
  if (req.pathParameters && Object.keys(req.pathParameters).length > 0) event.pathParameters = req.pathParameters;
  if (req.body && req.body.length > 0) {
    if (isTextContentType(headers['content-type'] ?? 'text/plain')) {
      event.body = req.body.toString('utf8');
    } else {
      event.body = req.body.toString('base64');
      event.isBase64Encoded = true;
    }
  }
  return event;
}

export interface HttpResponseParts {
  statusCode: number;
  headers: Record<string, string>;
  cookies: string[];
  body: Buffer;
}

/** Maps a handler's return value to a response the way API Gateway does for payload 2.0. */
export function fromApiGatewayV2Result(result: unknown): HttpResponseParts {
  const structured =
    result !== null && typeof result === 'object' && !Array.isArray(result) && 'statusCode' in result
      ? (result as { statusCode?: unknown; headers?: unknown; cookies?: unknown; body?: unknown; isBase64Encoded?: unknown })
      : undefined;
  if (!structured) {
    // No statusCode: API Gateway answers 200 with the value as JSON.
    const body = typeof result === 'string' ? result : (JSON.stringify(result) ?? 'null');
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, cookies: [], body: Buffer.from(body) };
  }
  const headers: Record<string, string> = {};
  if (structured.headers && typeof structured.headers === 'object') {
    for (const [name, value] of Object.entries(structured.headers)) headers[name.toLowerCase()] = String(value);
  }
  const cookies = Array.isArray(structured.cookies) ? structured.cookies.map(String) : [];
  const rawBody = structured.body === undefined || structured.body === null ? '' : structured.body;
  const text = typeof rawBody === 'string' ? rawBody : JSON.stringify(rawBody);
  const body = structured.isBase64Encoded === true ? Buffer.from(text, 'base64') : Buffer.from(text);
  const statusCode = Number(structured.statusCode);
  return { statusCode: Number.isInteger(statusCode) && statusCode >= 100 && statusCode <= 599 ? statusCode : 500, headers, cookies, body };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `12/Mar/2020:19:03:58 +0000`, API Gateway's requestContext.time. */
function clfTime(epochMs: number): string {
  const d = new Date(epochMs);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}
