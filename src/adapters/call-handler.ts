/**
 * Calls a Lambda handler in this process, as the sandbox does (the same context and the same
 * promise/callback rules), for adapters that run handlers inside an existing server. There the
 * event loop never drains, so a callback result counts at once.
 */
import { randomUUID } from 'node:crypto';
import { buildContext } from '../runtime/sandbox/context.js';

export type LambdaHandler = (event: unknown, context: unknown, callback: (error?: unknown, result?: unknown) => void) => unknown;

export interface HandlerOptions {
  /** What `context.functionName` says (default "handler"). */
  functionName?: string;
  /** Milliseconds before `context.getRemainingTimeInMillis()` reaches 0 (default 30 s); nothing is stopped. */
  timeoutMs?: number;
}

export function callHandler(handler: LambdaHandler, event: unknown, options: HandlerOptions = {}): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const complete = (err: unknown, result: unknown) => (err !== undefined && err !== null ? reject(err) : resolve(result));
    const [context, callback] = buildContext({ t: 'invoke', id: randomUUID(), attempt: 1, event, timeoutMs }, Date.now() + timeoutMs, {
      now: complete,
      onDrain: (result) => complete(null, result),
    });
    if (options.functionName !== undefined) context.functionName = options.functionName;
    try {
      const returned = handler(event, context, callback);
      if (returned instanceof Promise) returned.then(context.succeed, context.fail);
    } catch (err) {
      callback(err);
    }
  });
}
