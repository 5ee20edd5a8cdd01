/**
 * An http step: Berth makes the call itself (no sandbox needed to wait on a socket). The step's
 * input is the body of a POST, PUT or PATCH that sets none; the output is the response, its
 * body parsed as JSON when it says it is JSON, text when it is text, base64 otherwise.
 * A response outside 2xx, a network error or the step's timeout fail the step.
 */
import { StepFailure } from './errors.js';

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
}

export interface HttpOutput {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  bodyEncoding?: 'base64';
}

const SENDS_BODY = new Set(['POST', 'PUT', 'PATCH']);
const TEXT = /^text\/|[+/](xml|html|csv|javascript)\b/i;

export async function callHttp(step: string, request: HttpRequest, input: unknown, timeoutSeconds: number): Promise<HttpOutput> {
  const body = request.body !== undefined ? request.body : SENDS_BODY.has(request.method) ? input : undefined;
  const headers = { ...request.headers };
  const hasContentType = Object.keys(headers).some((name) => name.toLowerCase() === 'content-type');
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  if (payload !== undefined && !hasContentType) headers['content-type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
  let response: Response;
  try {
    response = await fetch(request.url, { method: request.method, headers, ...(payload !== undefined ? { body: payload } : {}), signal: AbortSignal.timeout(timeoutSeconds * 1000) });
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError';
    throw new StepFailure(step, timedOut ? 'Berth.StepTimeout' : 'Berth.HttpError', timedOut ? `${request.method} ${request.url} did not answer within ${timeoutSeconds} s` : `${request.method} ${request.url}: ${causeOf(err)}`);
  }
  const contentType = response.headers.get('content-type') ?? '';
  const bytes = Buffer.from(await response.arrayBuffer());
  const output: HttpOutput = { status: response.status, headers: Object.fromEntries(response.headers), body: undefined };
  if (/\bjson\b/i.test(contentType)) {
    try {
      output.body = bytes.length === 0 ? null : JSON.parse(bytes.toString('utf8'));
    } catch {
      output.body = bytes.toString('utf8');
    }
  } else if (TEXT.test(contentType) || contentType === '') {
    output.body = bytes.toString('utf8');
  } else {
    output.body = bytes.toString('base64');
    output.bodyEncoding = 'base64';
  }
  if (!response.ok) {
    const text = typeof output.body === 'string' ? output.body : JSON.stringify(output.body);
    throw new StepFailure(step, 'Berth.HttpError', `${request.method} ${request.url} answered ${response.status}: ${text.slice(0, 300)}`);
  }
  return output;
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
