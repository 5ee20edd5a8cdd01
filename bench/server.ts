// Baseline servers for bench/http.ts, each run in its own child process so it never shares
// an event loop with the load generator or the orchestrator:
//   node dist/bench/server.js bare    <handler.mjs>   node:http calling the handler in-process
//   node dist/bench/server.js express <handler.mjs>   Express + a lambda-to-express wrapper
// Prints `http://127.0.0.1:<port>` once listening, like `berth start` does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import express from 'express';
import type { Request, Response } from 'express';

interface LambdaResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}
type Handler = (event: Record<string, unknown>) => Promise<LambdaResult>;

const [kind, handlerFile] = process.argv.slice(2);
if ((kind !== 'bare' && kind !== 'express') || !handlerFile) {
  console.error('usage: server.js bare|express <handler.mjs>');
  process.exit(2);
}
const { handler } = (await import(pathToFileURL(handlerFile).href)) as { handler: Handler };

// The floor: the least work that still hands the handler a v2-shaped event.
function bare(): http.Server {
  const route = /^\/hello\/([^/?]+)/;
  return http.createServer((req, res) => {
    const m = route.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const event = {
      version: '2.0',
      routeKey: 'GET /hello/{id}',
      rawPath: req.url,
      headers: req.headers,
      pathParameters: { id: m[1] },
      isBase64Encoded: false,
    };
    handler(event).then(
      (r) => res.writeHead(r.statusCode, r.headers).end(r.body),
      () => res.writeHead(500).end(),
    );
  });
}

// Seed 001's pattern, as teams that left Lambda for ECS run it: Express request → Lambda
// event (body re-serialised, as their wrapper did), handler, Lambda result → Express response.
function lambdaToExpress(fn: Handler) {
  return async (req: Request, res: Response): Promise<void> => {
    const event = {
      version: '2.0',
      rawPath: req.path,
      headers: req.headers,
      pathParameters: req.params,
      queryStringParameters: req.query,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      isBase64Encoded: false,
    };
    try {
      const r = await fn(event);
      res.status(r.statusCode).set(r.headers ?? {}).send(r.body);
    } catch {
      res.status(500).send();
    }
  };
}

function viaExpress(): http.Server {
  const app = express();
  app.use(express.json());
  app.get('/hello/:id', lambdaToExpress(handler));
  return http.createServer(app);
}

const server = kind === 'bare' ? bare() : viaExpress();
server.listen(0, '127.0.0.1', () => {
  console.log(`${kind} listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
process.on('SIGTERM', () => process.exit(0));
