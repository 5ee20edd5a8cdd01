// The outside world of bench/flow.ts, in its own process: a file server standing in for
// Dropbox and a third-party API that checks a bearer token, two node:http servers answering at
// once (no artificial delay), so what is measured is the platform between them.
//   node dist/bench/flow-stand-ins.js '<StandInJob json>'   (with an IPC channel)
// Sends { t: 'ready', filesUrl, apiUrl } once both listen; exits when the orchestrator goes.
//
// Files server:  GET /files?count=N   → {"files": ["order-00000.xml", …]} (application/json)
//                GET /files/<name>    → the order as XML (application/xml), the same bytes for
//                                       the same name every time: LINES order lines
// API:           POST /records        → 201 {"id", "received"} with Authorization: Bearer TOKEN
//                                       and a JSON object with an externalId or orderId;
//                                       401 without the token, 422 for another body
//                GET /_stats[?samples=1], POST /_reset: counters, and the first body posted per
//                                       order id, so the orchestrator can check that every
//                                       competitor posted the same thing
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StandInStats } from './flow-common.js';

export interface StandInJob {
  token: string;
  /** Order lines per XML file. */
  lines: number;
}
export type FromStandIns = { t: 'ready'; filesUrl: string; apiUrl: string } | { t: 'error'; message: string };

const COUNTRIES = ['DE', 'FR', 'NL', 'US', 'GB'];
const CITIES = ['Berlin', 'Lyon', 'Utrecht', 'Austin', 'Leeds'];
const PRODUCTS = ['Widget', 'Gadget', 'Bracket', 'Hinge', 'Sprocket & Gear', 'Valve <small>'];

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The order file `name`, deterministic: a small linear congruential generator seeded by its number. */
function orderXml(name: string, lines: number): string {
  const n = Number(/(\d+)/.exec(name)?.[1] ?? 0);
  let seed = (n * 2654435761 + 1) >>> 0;
  const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)]!;
  const country = n % COUNTRIES.length;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<order id="PO-${String(n).padStart(5, '0')}" customer="acme" currency="EUR" date="2026-11-${String((n % 28) + 1).padStart(2, '0')}">`,
    `  <shipTo><name>${escape(`Receiving dock ${n}`)}</name><city>${CITIES[country]}</city><country>${COUNTRIES[country]}</country></shipTo>`,
  ];
  for (let i = 0; i < lines; i++) {
    const sku = `SKU-${String(Math.floor(random() * 10_000)).padStart(4, '0')}`;
    const qty = 1 + Math.floor(random() * 12);
    const price = (Math.floor(random() * 20_000) / 100).toFixed(2);
    out.push(`  <line sku="${sku}" qty="${qty}" price="${price}">${escape(`${pick(PRODUCTS)} ${i + 1}`)}</line>`);
  }
  out.push('</order>', '');
  return out.join('\n');
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

try {
  const job = JSON.parse(process.argv[2] ?? '') as StandInJob;
  const stats: Required<StandInStats> = { fetches: 0, lists: 0, posts: 0, unauthorized: 0, rejected: 0, samples: {} };
  const files = new Map<string, string>();
  let nextId = 1;

  const filesServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/files') {
      const count = Math.max(0, Math.min(100_000, Number(url.searchParams.get('count') ?? 10) || 0));
      stats.lists++;
      return send(res, 200, 'application/json', JSON.stringify({ files: Array.from({ length: count }, (_, i) => `order-${String(i).padStart(5, '0')}.xml`) }));
    }
    const m = /^\/files\/(order-\d+\.xml)$/.exec(url.pathname);
    if (req.method === 'GET' && m) {
      let xml = files.get(m[1]!);
      if (xml === undefined) files.set(m[1]!, (xml = orderXml(m[1]!, job.lines)));
      stats.fetches++;
      return send(res, 200, 'application/xml', xml);
    }
    send(res, 404, 'text/plain', `no such file: ${url.pathname}`);
  });

  const apiServer = http.createServer((req, res) => {
    void readBody(req).then((text) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'POST' && url.pathname === '/records') {
        if (req.headers.authorization !== `Bearer ${job.token}`) {
          stats.unauthorized++;
          return send(res, 401, 'application/json', JSON.stringify({ message: 'missing or wrong bearer token' }));
        }
        let body: { externalId?: unknown; orderId?: unknown } | undefined;
        try {
          body = JSON.parse(text) as typeof body;
        } catch {
          /* not JSON: refused below */
        }
        const key = body?.externalId ?? body?.orderId;
        if (typeof key !== 'string' || !/^application\/json/.test(req.headers['content-type'] ?? '')) {
          stats.rejected++;
          return send(res, 422, 'application/json', JSON.stringify({ message: 'expected a JSON order with externalId or orderId' }));
        }
        stats.posts++;
        if (!(key in stats.samples) && Object.keys(stats.samples).length < 1000) stats.samples[key] = text;
        return send(res, 201, 'application/json', JSON.stringify({ id: nextId++, received: key }));
      }
      if (req.method === 'GET' && url.pathname === '/_stats') {
        const { samples, ...counters } = stats;
        return send(res, 200, 'application/json', JSON.stringify(url.searchParams.get('samples') === '1' ? { ...counters, samples } : counters));
      }
      if (req.method === 'POST' && url.pathname === '/_reset') {
        stats.samples = {};
        return send(res, 204, 'text/plain', '');
      }
      send(res, 404, 'text/plain', `no such route: ${req.method} ${url.pathname}`);
    });
  });

  for (const server of [filesServer, apiServer]) server.keepAliveTimeout = 60_000;
  const [filesUrl, apiUrl] = await Promise.all([listen(filesServer), listen(apiServer)]);
  process.on('disconnect', () => process.exit(0));
  process.send!({ t: 'ready', filesUrl, apiUrl } satisfies FromStandIns);
} catch (err) {
  process.send!({ t: 'error', message: err instanceof Error ? err.message : String(err) } satisfies FromStandIns, () => process.exit(1));
}
