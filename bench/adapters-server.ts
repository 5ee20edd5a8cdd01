// Servers for bench/adapters.ts, each run in its own child process:
//   node dist/bench/adapters-server.js native       (a) the route written natively in Express (fixtures/adapters/app.mjs)
//   node dist/bench/adapters-server.js to-express   (b) Express + toExpress(handler) from src/adapters (fixtures/adapters/lead.mjs)
// Prints `http://127.0.0.1:<port>` once listening, like `berth start` does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import express from 'express';
import { toExpress, type LambdaHandler } from '../src/adapters/index.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/fixtures/adapters');
const fixture = async <T>(file: string): Promise<T> => (await import(pathToFileURL(path.join(fixtures, file)).href)) as T;

const kind = process.argv[2];
let app: http.RequestListener;
if (kind === 'native') {
  app = (await fixture<{ app: http.RequestListener }>('app.mjs')).app;
} else if (kind === 'to-express') {
  const { handler } = await fixture<{ handler: LambdaHandler }>('lead.mjs');
  const wrapped = express();
  wrapped.post('/lead/:leadId', toExpress(handler)); // as the README shows it: no body parser, the raw bytes are read
  app = wrapped;
} else {
  console.error('usage: adapters-server.js native|to-express');
  process.exit(2);
}

const server = http.createServer(app);
server.listen(0, '127.0.0.1', () => {
  console.log(`${kind} listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
process.on('SIGTERM', () => process.exit(0));
