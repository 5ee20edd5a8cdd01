/**
 * The client side of Lambda's Runtime API (`AWS_LAMBDA_RUNTIME_API`), on undici. One keep-alive
 * connection carries everything, and an answer and the next `/next` go out together, pipelined:
 * the server still takes them in order, and an invocation costs no round trip of its own. On
 * this path every syscall counts: Node's http client cost about twice the CPU per invocation.
 */
import { Client, type Dispatcher } from 'undici';
import type { FunctionError } from '../../types.js';

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

export class RuntimeApi {
  // A long-poll may wait for work for as long as nobody calls: no timeouts on it. An idle client
  // unrefs its socket, so a waiting connection never holds the event loop open while a handler
  // runs, and 'beforeExit' still says the handler's own work has drained.
  private readonly client: Client;

  constructor(address: string) {
    this.client = new Client(`http://${address}`, { pipelining: 2, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 600_000 });
  }

  /** Long-polls for the next invocation. */
  async next(): Promise<NextInvocation> {
    const { statusCode, headers, body } = await this.client.request({ method: 'GET', path: `${PREFIX}/invocation/next` });
    const text = await body.text();
    if (statusCode !== 200) throw new Error(`the Runtime API answered /next with ${statusCode}: ${text}`);
    const header = (name: string) => one(headers, name);
    const id = header('lambda-runtime-aws-request-id');
    if (!id) throw new Error('the Runtime API answered /next without Lambda-Runtime-Aws-Request-Id');
    return {
      id,
      deadlineMs: Number(header('lambda-runtime-deadline-ms')),
      functionArn: header('lambda-runtime-invoked-function-arn') ?? '',
      traceId: header('lambda-runtime-trace-id'),
      clientContext: parseHeaderJson(header('lambda-runtime-client-context')),
      identity: parseHeaderJson(header('lambda-runtime-cognito-identity')),
      tenantId: header('lambda-runtime-aws-tenant-id'),
      attempt: Number(header('berth-attempt') ?? 1) || 1,
      event: JSON.parse(text || 'null'),
    };
  }

  /** `durationMs` is the handler's own time, which Berth reports (Lambda ignores the header). */
  respond(id: string, payload: string, durationMs: number): Promise<void> {
    return this.post(`/invocation/${encodeURIComponent(id)}/response`, payload, { 'berth-duration-ms': durationMs.toFixed(3) });
  }

  fail(id: string, error: FunctionError, durationMs: number): Promise<void> {
    return this.post(`/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(error), {
      'lambda-runtime-function-error-type': error.errorType,
      'berth-duration-ms': durationMs.toFixed(3),
    });
  }

  initError(error: FunctionError): Promise<void> {
    return this.post('/init/error', JSON.stringify(error), { 'lambda-runtime-function-error-type': error.errorType });
  }

  private async post(path: string, body: string, headers: Record<string, string>): Promise<void> {
    // Not blocking: undici would otherwise hold the pipelined /next until this answer's headers came back.
    const response = await this.client.request({ method: 'POST', path: PREFIX + path, body, blocking: false, headers: { ...headers, 'content-type': 'application/json' } });
    const answer = await response.body.text();
    // 4xx is the server refusing this answer (an unknown id, a second answer): say so and go on
    // polling, as Lambda's own clients do; the server decides what becomes of the invocation.
    if (response.statusCode !== 202) process.stderr.write(`Runtime API refused POST ${path}: ${response.statusCode} ${answer}\n`);
  }
}

const PREFIX = '/2018-06-01/runtime';

function one(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseHeaderJson(value: string | undefined): unknown {
  if (value === undefined || value === '') return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}
