/**
 * Calls a Lambda handler in this process, as the sandbox does (the same context and the same
 * promise/callback rules), for adapters that run handlers inside an existing server. There the
 * event loop never drains, so a callback result counts at once, and a handler that neither
 * returns a promise nor calls back fails at its timeout instead of holding its request forever.
 */
import { randomUUID } from 'node:crypto';
import { timeoutError } from '../runtime/environment.js';
import { buildContext, callHandler as callWithContext } from '../runtime/sandbox/context.js';

export type LambdaHandler = (event: unknown, context: unknown, callback: (error?: unknown, result?: unknown) => void) => unknown;

export interface HandlerOptions {
  /** What `context.functionName` says (default "handler"). */
  functionName?: string;
  /** Milliseconds the handler has (default 30 s): `context.getRemainingTimeInMillis()`, then a Sandbox.Timedout failure. */
  timeoutMs?: number;
}

export function callHandler(handler: LambdaHandler, event: unknown, options: HandlerOptions = {}): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const { errorType, errorMessage } = timeoutError(id, { timeoutSeconds: timeoutMs / 1000 });
      reject(Object.assign(new Error(errorMessage), { name: errorType }));
    }, timeoutMs);
    const complete = (err: unknown, result: unknown) => {
      clearTimeout(timer);
      if (err !== undefined && err !== null) reject(err);
      else resolve(result);
    };
    const [context, callback] = buildContext({ t: 'invoke', id, attempt: 1, event, timeoutMs }, Date.now() + timeoutMs, {
      now: complete,
      onDrain: (result) => complete(null, result),
    });
    if (options.functionName !== undefined) context.functionName = options.functionName;
    callWithContext(handler, event, context, callback);
  });
}
