/**
 * The client side of Lambda's Runtime API (`AWS_LAMBDA_RUNTIME_API`): one keep-alive connection,
 * on which an answer and the next `/next` go out together in one write, pipelined. The server
 * still takes them in order, and an invocation costs no round trip of its own. On this path every
 * syscall counts, so requests are written by hand and responses parsed by http-parser-js: undici
 * cost twice the CPU per invocation, node:http four times.
 */
import net from 'node:net';
import { HTTPParser } from 'http-parser-js';
import type { FunctionError } from '../../types.js';
import { lowerCased } from '../runtime-api-http.js';

export interface NextInvocation {
  id: string;
  deadlineMs: number;
  functionArn: string;
  traceId: string | undefined;
  clientContext: unknown;
  identity: unknown;
  tenantId: string | undefined;
  /** Berth's delivery count; absent on Lambda itself. */
  attempt: number;
  event: unknown;
}

interface Response {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: Buffer;
}

export class RuntimeApi {
  private readonly connection: Connection;

  constructor(address: string) {
    this.connection = new Connection(address);
  }

  /** Long-polls for the next invocation. */
  async next(): Promise<NextInvocation> {
    const { status, headers, body } = await this.connection.request('GET', `${PREFIX}/invocation/next`);
    const text = body.toString('utf8');
    if (status !== 200) throw new Error(`the Runtime API answered /next with ${status}: ${text}`);
    const id = headers['lambda-runtime-aws-request-id'];
    if (!id) throw new Error('the Runtime API answered /next without Lambda-Runtime-Aws-Request-Id');
    return {
      id,
      deadlineMs: Number(headers['lambda-runtime-deadline-ms']),
      functionArn: headers['lambda-runtime-invoked-function-arn'] ?? '',
      traceId: headers['lambda-runtime-trace-id'],
      clientContext: parseHeaderJson(headers['lambda-runtime-client-context']),
      identity: parseHeaderJson(headers['lambda-runtime-cognito-identity']),
      tenantId: headers['lambda-runtime-aws-tenant-id'],
      attempt: Number(headers['berth-attempt'] ?? 1) || 1,
      event: JSON.parse(text || 'null'),
    };
  }

  /** `durationMs` is the handler's own time, which Berth reports (Lambda ignores the header). */
  respond(id: string, payload: string, durationMs: number): Promise<void> {
    return this.post(`/invocation/${encodeURIComponent(id)}/response`, payload, { 'Berth-Duration-Ms': durationMs.toFixed(3) });
  }

  fail(id: string, error: FunctionError, durationMs: number): Promise<void> {
    return this.post(`/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(error), {
      'Lambda-Runtime-Function-Error-Type': error.errorType,
      'Berth-Duration-Ms': durationMs.toFixed(3),
    });
  }

  initError(error: FunctionError): Promise<void> {
    return this.post('/init/error', JSON.stringify(error), { 'Lambda-Runtime-Function-Error-Type': error.errorType });
  }

  private async post(path: string, body: string, headers: Record<string, string>): Promise<void> {
    const response = await this.connection.request('POST', PREFIX + path, { ...headers, 'Content-Type': 'application/json' }, body);
    // 4xx is the server refusing this answer (an unknown id, a second answer): say so and go on
    // polling, as Lambda's own clients do; the server decides what becomes of the invocation.
    if (response.status !== 202) process.stderr.write(`Runtime API refused POST ${path}: ${response.status} ${response.body.toString('utf8')}\n`);
  }
}

const PREFIX = '/2018-06-01/runtime';

/**
 * One HTTP/1.1 connection with requests pipelined on it; responses come back in request order.
 * Requests made in one turn of the event loop leave in one write. With nothing outstanding the
 * socket is unref'd, so it never holds the event loop open while a handler runs, and 'beforeExit'
 * still says the handler's own work has drained.
 */
class Connection {
  private readonly socket: net.Socket;
  private readonly parser = new HTTPParser(HTTPParser.RESPONSE);
  private readonly waiting: { resolve: (response: Response) => void; reject: (err: Error) => void }[] = [];
  /** Requests of this turn, not written yet. */
  private unsent = '';
  private response: Omit<Response, 'body'> | undefined;
  private chunks: Buffer[] = [];
  private broken: Error | undefined;

  constructor(private readonly address: string) {
    const colon = address.lastIndexOf(':');
    this.socket = net.connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), noDelay: true });
    this.socket.unref();
    this.parser[HTTPParser.kOnHeadersComplete] = (info) => {
      this.response = { status: info.statusCode, headers: lowerCased(info.headers) };
    };
    this.parser[HTTPParser.kOnBody] = (chunk, offset, length) => {
      this.chunks.push(chunk.subarray(offset, offset + length));
    };
    this.parser[HTTPParser.kOnMessageComplete] = () => {
      const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [];
      const waiter = this.waiting.shift();
      if (this.waiting.length === 0) this.socket.unref();
      waiter?.resolve({ ...this.response!, body });
    };
    this.socket.on('data', (data) => {
      const parsed = this.parser.execute(data);
      if (parsed instanceof Error) this.break(new Error(`the Runtime API sent a response that does not parse: ${parsed.message}`));
    });
    this.socket.on('error', (err) => this.break(err));
    this.socket.on('close', () => {
      // A response delimited by the end of the connection ends here.
      this.parser.finish();
      this.break(new Error('the Runtime API closed the connection'));
    });
  }

  request(method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}, body = ''): Promise<Response> {
    if (this.broken) return Promise.reject(this.broken);
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.address}\r\n`;
    if (method === 'POST') head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
    for (const name in headers) head += `${name}: ${headerValue(headers[name]!)}\r\n`;
    if (this.unsent === '') process.nextTick(() => this.flush());
    this.unsent += `${head}\r\n${body}`;
    this.socket.ref();
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private flush(): void {
    this.socket.write(this.unsent);
    this.unsent = '';
  }

  private break(err: Error): void {
    this.broken ??= err;
    for (const waiter of this.waiting.splice(0)) waiter.reject(this.broken);
  }
}

/** A header value as HTTP allows it: an error type is the handler's to choose, and must not break the request. */
function headerValue(value: string): string {
  return value.replace(/[^\t\x20-\x7e]/g, '');
}

function parseHeaderJson(value: string | undefined): unknown {
  if (value === undefined || value === '') return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}
