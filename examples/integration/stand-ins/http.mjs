/** What the stand-ins share: reading a request body, answering JSON, listening on a fixed port. */
import { createServer } from 'node:http';

export function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function sendJson(res, status, value, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

/**
 * Serves `handle` on 127.0.0.1:<PORT>. Resolves once listening; a port already taken rejects,
 * so start() fails and Berth restarts the instance with a backoff, logging why.
 */
export async function listen(name, handle, defaultPort) {
  const port = Number(process.env.PORT ?? defaultPort);
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      console.error(`${name}: ${req.method} ${req.url} failed:`, err);
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(undefined));
  });
  console.log(`${name} listening on http://127.0.0.1:${port}`);
  return server;
}
