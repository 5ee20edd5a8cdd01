/**
 * The HTTP/1.1 server under the Runtime API: a net server whose requests are parsed by
 * http-parser-js and whose answers are written by hand, in request order per connection.
 *
 * Why not node:http: a runtime client pipelines its answer and its next `/next` on one
 * connection, and each invocation then needs two responses from Berth, the 202 and the next
 * event. node:http writes every response on its own and holds a pipelined response until the
 * one before it has been flushed, so the two always cost two writes; here, answers given in
 * the same turn of the event loop leave in one write. On this path a write that wakes another
 * process is the dearest thing there is (see docs/benchmarks.md, bench:adapters).
 *
 * What the Runtime API's clients need of a server, and no more: Content-Length and chunked
 * request bodies with trailers (streaming responses), `Expect: 100-continue` (curl), keep-alive
 * and `Connection: close`, pipelining. After a request that does not parse, nothing more is
 * read from its connection, which ends once that request is answered.
 */
import net from 'node:net';
import { HTTPParser } from 'http-parser-js';

export interface ApiRequest {
  method: string;
  url: string;
  /** Lower-cased names; a repeated header keeps its first value. */
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
  /** The body's size: over `maxBodyBytes`, `body` holds only its start. */
  bodyBytes: number;
}

/** One request's answer slot: answered at most once, written once every earlier one on the connection is. */
export interface ApiReply {
  send(status: number, headers: Record<string, string>, body: string): void;
  /** Called if the client goes away before the answer is written. */
  onClose(listener: () => void): void;
}

export interface RuntimeApiServerOptions {
  /** Bodies are read to their end but kept only up to this size. */
  maxBodyBytes: number;
  onRequest(request: ApiRequest, reply: ApiReply): void;
  /** A request that does not parse; whatever `reply` says, the connection ends after it. */
  onMalformed(reply: ApiReply, problem: string): void;
}

export function createRuntimeApiServer(options: RuntimeApiServerOptions): net.Server {
  return net.createServer({ noDelay: true }, (socket) => new Connection(socket, options));
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  202: 'Accepted',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  413: 'Payload Too Large',
  500: 'Internal Server Error',
};

class Reply implements ApiReply {
  /** The whole response, once answered. */
  response: string | undefined;
  private closeListeners: (() => void)[] | undefined = [];

  constructor(
    private readonly connection: Connection,
    readonly keepAlive: boolean,
  ) {}

  send(status: number, headers: Record<string, string>, body: string): void {
    if (this.response !== undefined) throw new Error('a Runtime API request was answered twice');
    let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Unknown'}\r\nDate: ${httpDate()}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
    if (!this.keepAlive) head += 'Connection: close\r\n';
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    this.response = `${head}\r\n${body}`;
    this.connection.flushSoon();
  }

  onClose(listener: () => void): void {
    this.closeListeners?.push(listener);
  }

  close(): void {
    const listeners = this.closeListeners ?? [];
    this.closeListeners = undefined;
    for (const listener of listeners) listener();
  }
}

class Connection {
  private readonly parser = new HTTPParser(HTTPParser.REQUEST);
  /** Requests in arrival order whose answers have not been written yet. */
  private readonly replies: Reply[] = [];
  private flushScheduled = false;
  /** Nothing more is read: the request did not parse. */
  private refused = false;
  private request: ApiRequest | undefined;
  private keepAlive = true;
  private chunks: Buffer[] = [];

  constructor(
    private readonly socket: net.Socket,
    private readonly options: RuntimeApiServerOptions,
  ) {
    this.parser[HTTPParser.kOnHeadersComplete] = (info) => {
      const headers = lowerCased(info.headers);
      // http-parser-js takes a negative length and then parses the same bytes forever.
      if (headers['content-length'] !== undefined && !/^\d+$/.test(headers['content-length'])) throw new Error(`invalid Content-Length ${JSON.stringify(headers['content-length'])}`);
      this.request = { method: HTTPParser.methods[info.method] ?? '', url: info.url, headers, trailers: {}, body: EMPTY, bodyBytes: 0 };
      this.keepAlive = info.shouldKeepAlive;
      // An interim answer may not overtake the answers owed to earlier requests; without it, the client sends its body after a wait of its own.
      if (headers.expect?.toLowerCase() === '100-continue' && this.replies.length === 0) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    };
    this.parser[HTTPParser.kOnBody] = (chunk, offset, length) => {
      const request = this.request!;
      if (request.bodyBytes + length <= options.maxBodyBytes) this.chunks.push(chunk.subarray(offset, offset + length));
      request.bodyBytes += length;
    };
    this.parser[HTTPParser.kOnHeaders] = (trailers) => {
      this.request!.trailers = lowerCased(trailers);
    };
    this.parser[HTTPParser.kOnMessageComplete] = () => {
      const request = this.request!;
      if (this.chunks.length > 0) request.body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [];
      this.request = undefined;
      const reply = new Reply(this, this.keepAlive);
      this.replies.push(reply);
      options.onRequest(request, reply);
    };
    socket.on('data', (data) => {
      if (this.refused) return;
      // What the callbacks throw comes out of execute(); it is this connection's end, not the server's.
      let parsed: number | Error;
      try {
        parsed = this.parser.execute(data);
      } catch (err) {
        parsed = err instanceof Error ? err : new Error(String(err));
      }
      if (parsed instanceof Error) this.refuse(parsed);
    });
    // A client that resets the connection is only a client gone: its requests' answers go nowhere.
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const reply of this.replies.splice(0)) reply.close();
    });
  }

  /** Answers given in one turn of the event loop leave together, in request order. */
  flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    let out = '';
    let last = false;
    while (this.replies[0]?.response !== undefined && !last) {
      const reply = this.replies.shift()!;
      out += reply.response;
      last = !reply.keepAlive;
    }
    if (out === '' || !this.socket.writable) return;
    if (!last) return void this.socket.write(out);
    this.socket.end(out);
    for (const reply of this.replies.splice(0)) reply.close();
  }

  /** Its answer is written after the answers owed before it, and ends the connection. */
  private refuse(error: Error & { code?: string }): void {
    this.refused = true;
    this.socket.pause();
    const reply = new Reply(this, false);
    this.replies.push(reply);
    this.options.onMalformed(reply, error.code ?? error.message);
  }
}

const EMPTY = Buffer.alloc(0);

/** http-parser-js's [name, value, ...] as an object by lower-cased name; a repeated header keeps its first value. */
export function lowerCased(raw: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    headers[name] ??= raw[i + 1]!;
  }
  return headers;
}

/** The Date header, formatted once a second as node:http does. */
let dateCache = { second: -1, text: '' };
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateCache.second) dateCache = { second, text: new Date(second * 1000).toUTCString() };
  return dateCache.text;
}
