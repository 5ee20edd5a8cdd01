/**
 * The HTTP gateway: requests become API Gateway HTTP API (payload 2.0) events and
 * handler results become responses, as API Gateway maps them. One server for the file.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';

const BERTH_YML = `
gateway:
  bodyLimit: 1kb
functions:
  echo:
    handler: echo.handler
    events:
      - http: POST /items/{id}
      - http: GET /files/{proxy+}
      - http: ANY /any
      - http: POST /upload
  respond:
    handler: respond.handler
    events:
      - http: GET /respond/{kind}
  boom:
    handler: boom.handler
    events:
      - http: GET /boom
  ids:
    handler: ids.handler
    isolation: warm
    events:
      - http: POST /id
`;

const ECHO = `export const handler = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(event),
});
`;

const RESPOND = `const BYTES = Buffer.from([0, 255, 1, 254, 128, 10, 13, 0, 42]);
export const handler = async (event) => {
  switch (event.pathParameters.kind) {
    case 'full':
      return { statusCode: 201, headers: { 'X-Custom': 'yes', 'Content-Type': 'text/plain' }, body: 'created' };
    case 'cookies':
      return { statusCode: 200, cookies: ['a=1; Path=/', 'b=2; HttpOnly'], body: 'ok' };
    case 'binary':
      return { statusCode: 200, headers: { 'content-type': 'application/octet-stream' }, body: BYTES.toString('base64'), isBase64Encoded: true };
    case 'plain':
      return { hello: 'world', list: [1, 2, 3] };
    default:
      return { statusCode: 400, body: 'unknown kind' };
  }
};
`;

const BOOM = `export const handler = async () => {
  throw new TypeError('kaboom from the handler');
};
`;

const IDS = `export const handler = async (event) => ({ id: JSON.parse(event.body).id });
`;

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** node:http gives control fetch does not: repeated header lines and a Cookie header. */
function rawRequest(
  url: string,
  options: { method: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

// Typed loosely: the test checks the shape, it does not trust it.
type Event = Record<string, any>;

let berth: RunningBerth;

before(async () => {
  const dir = makeProject({
    'berth.yml': BERTH_YML,
    'echo.mjs': ECHO,
    'respond.mjs': RESPOND,
    'boom.mjs': BOOM,
    'ids.mjs': IDS,
  });
  berth = await startBerth(dir);
});

after(async () => {
  assert.equal(await berth.stop(), 0);
});

describe('request → API Gateway v2 event', () => {
  let event: Event;
  const before_ = Date.now();

  before(async () => {
    const response = await rawRequest(`${berth.url}/items/42?a=1&a=2&b=x%20y&empty=`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 'berth-test/1.0',
        'X-Dup': ['first', 'second'],
        'X-Mixed-Case': 'Value',
        Cookie: 'session=abc; theme=dark',
      },
      body: JSON.stringify({ hello: 'world' }),
    });
    assert.equal(response.status, 200, response.body.toString());
    event = JSON.parse(response.body.toString()) as Event;
  });

  test('version, routeKey, rawPath and rawQueryString', () => {
    assert.equal(event.version, '2.0');
    assert.equal(event.routeKey, 'POST /items/{id}');
    assert.equal(event.rawPath, '/items/42');
    assert.equal(event.rawQueryString, 'a=1&a=2&b=x%20y&empty=');
  });

  test('queryStringParameters decode values and join duplicate keys with ","', () => {
    assert.deepEqual(event.queryStringParameters, { a: '1,2', b: 'x y', empty: '' });
  });

  test('headers are lower-cased and repeated headers joined with ","', () => {
    assert.equal(event.headers['x-dup'], 'first,second');
    assert.equal(event.headers['x-mixed-case'], 'Value');
    assert.equal(event.headers['content-type'], 'application/json');
    assert.equal(event.headers['user-agent'], 'berth-test/1.0');
    for (const name of Object.keys(event.headers)) assert.equal(name, name.toLowerCase(), `header ${name} is lower-case`);
  });

  test('cookies come from the Cookie header, which is not repeated in headers', () => {
    assert.deepEqual(event.cookies, ['session=abc', 'theme=dark']);
    assert.equal('cookie' in event.headers, false);
  });

  test('pathParameters', () => {
    assert.deepEqual(event.pathParameters, { id: '42' });
  });

  test('requestContext: http, requestId, routeKey, stage, time, timeEpoch', () => {
    const ctx = event.requestContext as Event;
    assert.deepEqual(ctx.http, {
      method: 'POST',
      path: '/items/42',
      protocol: 'HTTP/1.1',
      sourceIp: '127.0.0.1',
      userAgent: 'berth-test/1.0',
    });
    assert.equal(typeof ctx.requestId, 'string');
    assert.ok(ctx.requestId.length > 0);
    assert.equal(ctx.routeKey, 'POST /items/{id}');
    assert.equal(ctx.stage, '$default');
    assert.match(ctx.time, /^\d{2}\/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    assert.equal(typeof ctx.timeEpoch, 'number');
    assert.ok(ctx.timeEpoch >= before_ - 1000 && ctx.timeEpoch <= Date.now() + 1000, `timeEpoch ${ctx.timeEpoch} is now`);
    // time and timeEpoch describe the same instant (to the second).
    const d = new Date(ctx.timeEpoch);
    assert.ok(ctx.time.startsWith(`${String(d.getUTCDate()).padStart(2, '0')}/`), `${ctx.time} matches ${d.toISOString()}`);
    assert.ok(ctx.time.includes(`:${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}:`));
  });

  test('a JSON body arrives as a string with isBase64Encoded false', () => {
    assert.equal(event.body, '{"hello":"world"}');
    assert.equal(event.isBase64Encoded, false);
  });

  test('each request gets its own requestId', async () => {
    const again = await rawRequest(`${berth.url}/items/42`, { method: 'POST' });
    const second = JSON.parse(again.body.toString()) as Event;
    assert.notEqual(second.requestContext.requestId, event.requestContext.requestId);
  });
});

test('a request without a query or cookies has no queryStringParameters or cookies', async () => {
  const response = await fetch(`${berth.url}/items/7`, { method: 'POST' });
  assert.equal(response.status, 200);
  const event = (await response.json()) as Event;
  assert.equal(event.rawQueryString, '');
  assert.equal(event.queryStringParameters, undefined);
  assert.equal(event.cookies, undefined);
  assert.deepEqual(event.pathParameters, { id: '7' });
});

test('a binary body arrives base64-encoded with isBase64Encoded true', async () => {
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const response = await fetch(`${berth.url}/upload`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  assert.equal(response.status, 200);
  const event = (await response.json()) as Event;
  assert.equal(event.isBase64Encoded, true);
  assert.equal(event.body, bytes.toString('base64'));
  assert.deepEqual(Buffer.from(event.body as string, 'base64'), bytes);
});

test('{proxy+} routes are greedy and name the rest of the path', async () => {
  const response = await fetch(`${berth.url}/files/a/b/c`);
  assert.equal(response.status, 200);
  const event = (await response.json()) as Event;
  assert.equal(event.routeKey, 'GET /files/{proxy+}');
  assert.deepEqual(event.pathParameters, { proxy: 'a/b/c' });
  assert.equal(event.rawPath, '/files/a/b/c');
});

test('ANY routes match every method', async () => {
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const response = await fetch(`${berth.url}/any`, { method });
    assert.equal(response.status, 200, `${method} /any`);
    const event = (await response.json()) as Event;
    assert.equal(event.routeKey, 'ANY /any', method);
    assert.equal(event.requestContext.http.method, method);
  }
});

describe('handler result → HTTP response', () => {
  test('statusCode, headers and body', async () => {
    const response = await fetch(`${berth.url}/respond/full`);
    assert.equal(response.status, 201);
    assert.equal(response.headers.get('x-custom'), 'yes');
    assert.equal(response.headers.get('content-type'), 'text/plain');
    assert.equal(await response.text(), 'created');
  });

  test('cookies become one set-cookie header each', async () => {
    const response = await fetch(`${berth.url}/respond/cookies`);
    assert.equal(response.status, 200);
    assert.deepEqual(response.headers.getSetCookie(), ['a=1; Path=/', 'b=2; HttpOnly']);
    assert.equal(await response.text(), 'ok');
  });

  test('an isBase64Encoded body is decoded to the exact bytes', async () => {
    const response = await fetch(`${berth.url}/respond/binary`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), Buffer.from([0, 255, 1, 254, 128, 10, 13, 0, 42]));
  });

  test('a plain object is 200 application/json of the object', async () => {
    const response = await fetch(`${berth.url}/respond/plain`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await response.json(), { hello: 'world', list: [1, 2, 3] });
  });
});

describe('gateway errors', () => {
  test('an unknown route is 404 JSON with a message', async () => {
    for (const [method, path] of [
      ['GET', '/nowhere'],
      ['GET', '/items/42'], // the path exists, but only for POST
    ] as const) {
      const response = await fetch(`${berth.url}${path}`, { method });
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
      const body = (await response.json()) as { message?: string };
      assert.equal(typeof body.message, 'string');
      assert.ok(body.message!.includes(path), `message names the path: ${body.message}`);
    }
  });

  test('a handler that throws is 502 JSON {message}', async () => {
    const response = await fetch(`${berth.url}/boom`);
    assert.equal(response.status, 502);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await response.json()) as { message?: string };
    assert.equal(body.message, 'Internal Server Error');
    // `berth start` does not leak the handler's error to HTTP clients.
    assert.doesNotMatch(JSON.stringify(body), /kaboom/);
  });

  test('a body over gateway.bodyLimit is 413 with a clear message', async () => {
    const response = await fetch(`${berth.url}/items/1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(2048) }),
    });
    assert.equal(response.status, 413);
    const body = (await response.json()) as { message?: string };
    assert.match(body.message ?? '', /larger than the 1024-byte limit/);
    assert.match(body.message ?? '', /gateway\.bodyLimit/);
  });

  test('a body just under the limit is accepted', async () => {
    const payload = JSON.stringify({ pad: 'x'.repeat(900) });
    assert.ok(Buffer.byteLength(payload) <= 1024);
    const response = await fetch(`${berth.url}/items/1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as Event).body, payload);
  });
});

test('1,000 concurrent requests to a warm function are all answered with their own id', async () => {
  const count = 1000;
  const results = await Promise.all(
    Array.from({ length: count }, async (_, id) => {
      try {
        const response = await fetch(`${berth.url}/id`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id }),
          signal: AbortSignal.timeout(30_000),
        });
        const text = await response.text();
        return { id, status: response.status, echoed: response.status === 200 ? (JSON.parse(text) as { id?: number }).id : text };
      } catch (err) {
        return { id, status: 0, echoed: String((err as Error).cause ?? err) };
      }
    }),
  );
  const failed = results.filter((r) => r.status !== 200 || r.echoed !== r.id);
  const summary = new Map<string, number>();
  for (const r of failed) summary.set(`${r.status} ${String(r.echoed).slice(0, 120)}`, (summary.get(`${r.status} ${String(r.echoed).slice(0, 120)}`) ?? 0) + 1);
  assert.equal(failed.length, 0, `${failed.length} of ${count} requests failed or got another id: ${JSON.stringify([...summary].slice(0, 8))}`);
  // And the gateway is still serving afterwards.
  const health = await fetch(`${berth.url}/_berth/health`);
  assert.equal(health.status, 200);
});
