/**
 * berth/adapters with real Express and Fastify: a Lambda handler served by Express, Fastify and
 * plain node:http answers exactly as Berth's gateway does, and an Express app run as a Berth
 * function answers exactly as the app does on its own (streams, binary, cookies, repeated headers).
 * Seed 001's POST /lead/:leadId goes both ways: its Lambda handler inside servers, and the same
 * route written as an Express service, run on Berth with fromExpress.
 */
import assert from 'node:assert/strict';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { fromNodeHttp, lambdaRoutes, toExpress, toNodeHttp, type LambdaHandler } from '../src/adapters/index.js';
import { makeProject, repoRoot, startBerth, type RunningBerth } from './helpers/project.js';

/** Seed 001's POST /lead/{leadId} as a Lambda handler: validate {name, email}, answer 201 with the lead or 400 with the errors (also bench:adapters'). */
const LEAD_HANDLER = readFileSync(path.join(repoRoot, 'bench/fixtures/adapters/lead.mjs'), 'utf8');

/** An Express app using what apps use: streamed responses, binary, cookies, repeated headers, a streamed request body. */
const EXPRESS_APP = `
import express from 'express';
export const app = express();
app.get('/stream', (req, res) => {
  res.type('text/plain');
  let n = 0;
  const timer = setInterval(() => {
    res.write('chunk ' + n + '\\n');
    if (++n === 5) { clearInterval(timer); res.end('done'); }
  }, 5);
});
app.get('/binary', (req, res) => res.type('application/octet-stream').send(Buffer.from(Array.from({ length: 256 }, (_, i) => i))));
app.get('/cookies', (req, res) => {
  res.cookie('a', '1', { path: '/' });
  res.cookie('b', '2', { httpOnly: true });
  res.append('x-multi', 'one');
  res.append('x-multi', 'two');
  res.json({ got: req.headers.cookie ?? null, query: req.query });
});
app.post('/echo', (req, res) => {
  res.type(req.headers['content-type'] ?? 'application/octet-stream');
  req.pipe(res);
});
app.use((req, res) => res.status(404).json({ message: 'no route ' + req.method + ' ' + req.path }));
`;

interface Answer {
  status: number;
  body: Buffer;
  contentType: string | null;
  cookies: string[];
  headers: Headers;
}

async function ask(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init);
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type'), cookies: response.headers.getSetCookie(), headers: response.headers };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

const LEAD_REQUESTS: [string, RequestInit][] = [
  ['/lead/42?src=ad', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: ' Ada ', email: 'ada@example.com' }) }],
  ['/lead/43', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: '', email: 'nope' }) }],
  ['/lead/44', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'not json' }],
];

describe('a Lambda handler inside Express, Fastify and node:http answers as the Berth gateway does', () => {
  let berth: RunningBerth;
  let handler: LambdaHandler;
  const servers: Server[] = [];
  const urls: Record<string, string> = {};

  before(async () => {
    const dir = makeProject({ 'berth.yml': 'functions:\n  createLead:\n    handler: lead.handler\n    isolation: warm\n    events:\n      - http: POST /lead/{leadId}\n', 'lead.mjs': LEAD_HANDLER });
    berth = await startBerth(dir);
    urls.berth = berth.url;
    handler = (await import(pathToFileURL(path.join(dir, 'lead.mjs')).href)).handler as LambdaHandler;

    const app = express();
    app.post('/lead/:leadId', toExpress(handler));
    const expressServer = createServer(app);
    servers.push(expressServer);
    urls.express = await listen(expressServer);

    const fastify = Fastify();
    await fastify.register(lambdaRoutes, { routes: { 'POST /lead/{leadId}': handler } });
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    urls.fastify = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
    servers.push(fastify.server);
  });

  after(async () => {
    for (const server of servers) server.close();
    await berth?.stop();
  });

  test("seed 001's POST /lead/:leadId: the same status, body, headers and cookies every way", async () => {
    for (const [url, init] of LEAD_REQUESTS) {
      const viaBerth = await ask(urls.berth + url, init);
      for (const way of ['express', 'fastify'] as const) {
        const viaServer = await ask(urls[way] + url, init);
        assert.equal(viaServer.status, viaBerth.status, `${way} ${url}`);
        assert.deepEqual(JSON.parse(viaServer.body.toString()), JSON.parse(viaBerth.body.toString()), `${way} ${url}`);
        assert.equal(viaServer.contentType, viaBerth.contentType);
        assert.deepEqual(viaServer.cookies, viaBerth.cookies);
        assert.equal(viaServer.headers.get('x-lead'), viaBerth.headers.get('x-lead'));
      }
    }
    const created = JSON.parse((await ask(urls.express + LEAD_REQUESTS[0]![0], LEAD_REQUESTS[0]![1])).body.toString());
    assert.deepEqual(created, { id: '42', name: 'Ada', email: 'ada@example.com', query: { src: 'ad' }, routeKey: 'POST /lead/{leadId}' });
  });

  test('toNodeHttp serves any path with the $default route; a handler that throws is a 502, as from API Gateway', async () => {
    const plain = createServer(toNodeHttp(async (event: any) => ({ statusCode: 200, body: `${event.requestContext.http.method} ${event.rawPath} ${event.routeKey}` })));
    const failing = createServer(toNodeHttp(async () => { throw new Error('boom'); }));
    servers.push(plain, failing);
    const answer = await ask(`${await listen(plain)}/any/thing`, { method: 'PUT', body: 'x' });
    assert.equal(answer.body.toString(), 'PUT /any/thing $default');
    const failed = await ask(await listen(failing));
    assert.equal(failed.status, 502);
    assert.deepEqual(JSON.parse(failed.body.toString()), { message: 'Internal Server Error' });
  });
});

describe('an Express app run as a Berth function answers as the app does on its own', () => {
  let berth: RunningBerth;
  let bare: Server;
  let bareUrl: string;

  before(async () => {
    const dir = makeProject({
      'berth.yml': 'functions:\n  web:\n    handler: web.handler\n    isolation: warm\n    events:\n      - http: ANY /{proxy+}\n',
      'app.mjs': EXPRESS_APP,
      'web.mjs': "import { fromExpress } from 'berth/adapters';\nimport { app } from './app.mjs';\nexport const handler = fromExpress(app);\n",
    });
    // The handler's own dependency (express) resolves from the project's node_modules, as in a real project.
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
    writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
    berth = await startBerth(dir);
    const { app } = (await import(pathToFileURL(path.join(dir, 'app.mjs')).href)) as { app: express.Express };
    bare = createServer(app);
    bareUrl = await listen(bare);
  });

  after(async () => {
    bare?.close();
    await berth?.stop();
  });

  const cases: [string, RequestInit][] = [
    ['/stream', {}],
    ['/binary', {}],
    ['/cookies?x=1&x=2', { headers: { cookie: 'session=abc; theme=dark' } }],
    ['/echo', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256)) }],
    ['/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"é":"ü"}' }],
    ['/missing', {}],
  ];

  test('a chunked upload (no Content-Length) reaches the app whole', async () => {
    const parts = ['first part, ', 'second part'];
    const body = new ReadableStream({
      start(controller) {
        for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
        controller.close();
      },
    });
    const answer = await ask(`${berth.url}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body, duplex: 'half' } as RequestInit);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.toString(), parts.join(''));
  });

  for (const [url, init] of cases) {
    test(`${init.method ?? 'GET'} ${url}`, async () => {
      const viaApp = await ask(bareUrl + url, init);
      const viaBerth = await ask(berth.url + url, init);
      assert.equal(viaBerth.status, viaApp.status);
      assert.ok(viaBerth.body.equals(viaApp.body), `the same ${viaApp.body.length} bytes (got ${viaBerth.body.length})`);
      assert.equal(viaBerth.contentType, viaApp.contentType);
      assert.deepEqual(viaBerth.cookies, viaApp.cookies, 'every Set-Cookie, in order');
      assert.equal(viaBerth.headers.get('x-multi'), viaApp.headers.get('x-multi'));
    });
  }
});

describe("seed 001's Express service run as a Berth function answers as its Lambda handler does", () => {
  let berth: RunningBerth;
  const servers: Server[] = [];
  const urls: Record<string, string> = {};

  before(async () => {
    const dir = makeProject({
      'berth.yml': 'functions:\n  leads:\n    handler: web.handler\n    isolation: warm\n    events:\n      - http: ANY /{proxy+}\n',
      // The route as the team wrote it for ECS: express.json() and the handler's validation (also bench:adapters' (a)).
      'app.mjs': readFileSync(path.join(repoRoot, 'bench/fixtures/adapters/app.mjs'), 'utf8'),
      'web.mjs': "import { fromExpress } from 'berth/adapters';\nimport { app } from './app.mjs';\nexport const handler = fromExpress(app);\n",
      'lead.mjs': LEAD_HANDLER,
    });
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
    writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
    berth = await startBerth(dir);
    urls.berth = berth.url;
    const { app } = (await import(pathToFileURL(path.join(dir, 'app.mjs')).href)) as { app: express.Express };
    const { handler } = (await import(pathToFileURL(path.join(dir, 'lead.mjs')).href)) as { handler: LambdaHandler };
    // The handler under the gateway's own mapping, which the first suite proves equal to Berth's gateway.
    const lambda = express();
    lambda.post('/lead/:leadId', toExpress(handler));
    for (const [way, server] of [['app', createServer(app)], ['lambda', createServer(lambda)]] as const) {
      servers.push(server);
      urls[way] = await listen(server);
    }
  });

  after(async () => {
    for (const server of servers) server.close();
    await berth?.stop();
  });

  test('the same status, body, headers and cookies from the app on Berth, the app alone and the Lambda handler', async () => {
    for (const [url, init] of LEAD_REQUESTS) {
      const viaBerth = await ask(urls.berth + url, init);
      for (const way of ['app', 'lambda'] as const) {
        const other = await ask(urls[way] + url, init);
        assert.equal(viaBerth.status, other.status, `${way} ${url}`);
        assert.deepEqual(JSON.parse(viaBerth.body.toString()), JSON.parse(other.body.toString()), `${way} ${url}`);
        // Express's res.json adds "; charset=utf-8", which the handler does not: the media type is what the two share.
        const contentType = (answer: Answer) => (way === 'app' ? answer.contentType : answer.contentType?.split(';')[0]);
        assert.equal(contentType(viaBerth), contentType(other), `${way} ${url}`);
        assert.deepEqual(viaBerth.cookies, other.cookies, `${way} ${url}`);
        assert.equal(viaBerth.headers.get('x-lead'), other.headers.get('x-lead'), `${way} ${url}`);
      }
    }
    const created = await ask(urls.berth + LEAD_REQUESTS[0]![0], LEAD_REQUESTS[0]![1]);
    assert.equal(created.status, 201);
    assert.deepEqual(JSON.parse(created.body.toString()), { id: '42', name: 'Ada', email: 'ada@example.com', query: { src: 'ad' }, routeKey: 'POST /lead/{leadId}' });
  });
});

describe('what reaches a handler is what was sent, in every adapter', () => {
  /** Answers with the event's body, path parameters, route key and content type, as it got them. */
  const echo: LambdaHandler = async (event: any) => ({
    statusCode: 200,
    body: JSON.stringify({ body: event.body ?? null, pathParameters: event.pathParameters ?? null, routeKey: event.routeKey, contentType: event.headers['content-type'] ?? null }),
  });
  const servers: Server[] = [];
  let fastifyUrl: string;
  let expressUrl: string;

  before(async () => {
    const fastify = Fastify();
    await fastify.register(lambdaRoutes, { routes: { 'POST /echo': echo, 'GET /files/{path+}': echo } });
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    fastifyUrl = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
    servers.push(fastify.server);

    const app = express();
    app.post('/raw', toExpress(echo));
    app.post('/parsed', express.json(), toExpress(echo));
    app.post('/form', express.urlencoded({ extended: false }), toExpress(echo));
    app.get('/files/*rest', toExpress(echo));
    const server = createServer(app);
    servers.push(server);
    expressUrl = await listen(server);
  });

  after(() => {
    for (const server of servers) server.close();
  });

  const json = async (url: string, init?: RequestInit) => JSON.parse((await ask(url, init)).body.toString());
  const BYTES = '{"id": 12345678901234567890, "a":  1}';

  test('the Fastify plugin gives JSON, text and an empty object as their bytes', async () => {
    for (const [contentType, body] of [['application/json', BYTES], ['text/plain', 'plain  text'], ['application/json', '{}']]) {
      const got = await json(`${fastifyUrl}/echo`, { method: 'POST', headers: { 'content-type': contentType! }, body });
      assert.equal(got.body, body, contentType);
    }
  });

  test('toExpress gives the bytes when no parser ran, and a parsed body as JSON with headers that say so', async () => {
    assert.equal((await json(`${expressUrl}/raw`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BYTES })).body, BYTES);
    const parsed = await json(`${expressUrl}/parsed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.deepEqual([parsed.body, parsed.contentType], ['{}', 'application/json']);
    const form = await json(`${expressUrl}/form`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=two' });
    assert.deepEqual([JSON.parse(form.body), form.contentType], [{ a: '1', b: 'two' }, 'application/json']);
  });

  test('a greedy path parameter is named as in API Gateway, in Fastify and Express', async () => {
    assert.deepEqual(await json(`${fastifyUrl}/files/a/b.txt`), { body: null, pathParameters: { path: 'a/b.txt' }, routeKey: 'GET /files/{path+}', contentType: null });
    assert.deepEqual(await json(`${expressUrl}/files/a/b.txt`), { body: null, pathParameters: { rest: 'a/b.txt' }, routeKey: 'GET /files/{rest+}', contentType: null });
  });

  test('a handler that never answers fails at its timeout with a 502, not a request held forever', async () => {
    const silent = createServer(toNodeHttp(() => undefined, { timeoutMs: 200 }));
    servers.push(silent);
    const started = performance.now();
    const answer = await ask(await listen(silent));
    assert.equal(answer.status, 502);
    assert.ok(performance.now() - started < 2_000, 'answered at the timeout');
  });

  test("fromNodeHttp ignores the event's framing headers: a chunked upload's and a Content-Length without a body", async () => {
    const handler = fromNodeHttp((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.end(`${req.headers['content-length']}:${Buffer.concat(chunks).toString()}`));
    });
    const event = (headers: Record<string, string>, body?: string) =>
      ({ rawPath: '/', rawQueryString: '', headers, requestContext: { http: { method: 'POST' } }, isBase64Encoded: false, ...(body !== undefined ? { body } : {}) }) as any;
    const chunked = await handler(event({ 'transfer-encoding': 'chunked', 'content-length': '99', expect: '100-continue' }, 'hello'));
    assert.deepEqual([chunked.statusCode, chunked.body], [200, '5:hello']);
    const empty = await handler(event({ 'content-length': '12' }));
    assert.deepEqual([empty.statusCode, empty.body], [200, '0:']);
  });
});
