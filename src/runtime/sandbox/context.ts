/**
 * The Lambda Node.js programming model for one invocation: context fields, the
 * legacy callback, succeed/fail/done and callbackWaitsForEmptyEventLoop, with the
 * semantics of the Lambda Node runtime (see docs: "Lambda semantics"):
 *  - only the first completion counts;
 *  - callback(err) reports at once; callback(null, r) reports at once when
 *    callbackWaitsForEmptyEventLoop is false, else when the event loop drains;
 *  - done/succeed/fail and a settled promise report at once;
 *  - a handler that neither returns a promise nor calls back succeeds with null
 *    once the event loop drains.
 */
import type { InvokeMessage } from '../protocol.js';

export interface Completion {
  /** Report now. */
  now(err: unknown, result: unknown): void;
  /** Report when the event loop drains. */
  onDrain(result: unknown): void;
}

export interface LambdaContext {
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  /** Berth: 1 on the first delivery of an event, 2 on its first retry, ... (awsRequestId stays the same). */
  attempt: number;
  logGroupName: string;
  logStreamName: string;
  tenantId?: string;
  clientContext?: unknown;
  identity?: unknown;
  callbackWaitsForEmptyEventLoop: boolean;
  getRemainingTimeInMillis(): number;
  succeed(result?: unknown): void;
  fail(error?: unknown): void;
  done(error?: unknown, result?: unknown): void;
}

export type Callback = (error?: unknown, result?: unknown) => void;

export function buildContext(message: InvokeMessage, deadlineMs: number, complete: Completion): [LambdaContext, Callback] {
  let finished = false;
  const once =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A) => {
      if (finished) return;
      finished = true;
      fn(...args);
    };

  const env = process.env;
  const context: LambdaContext = {
    functionName: env.AWS_LAMBDA_FUNCTION_NAME ?? '',
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST',
    invokedFunctionArn: env.BERTH_FUNCTION_ARN ?? '',
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '',
    awsRequestId: message.id,
    attempt: message.attempt,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME ?? '',
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME ?? '',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => deadlineMs - Date.now(),
    succeed: once((result?: unknown) => complete.now(null, result)),
    fail: once((error?: unknown) => complete.now(error ?? 'handled', undefined)),
    done: once((error?: unknown, result?: unknown) => complete.now(error, result)),
  };
  if (message.tenantId !== undefined) context.tenantId = message.tenantId;
  if (message.clientContext !== undefined) context.clientContext = message.clientContext;
  // Not enumerable: a handler that logs its context must not print them.
  if (message.secrets !== undefined) Object.defineProperty(context, 'secrets', { value: message.secrets, enumerable: false });

  const callback: Callback = once((error?: unknown, result?: unknown) => {
    if (error !== undefined && error !== null) complete.now(error, undefined);
    else if (context.callbackWaitsForEmptyEventLoop) complete.onDrain(result);
    else complete.now(null, result);
  });

  // A settled promise completes through succeed/fail, which share `finished`.
  return [context, callback];
}

/** Calls a handler as Lambda's Node runtime does: a promise it returns settles it, a throw fails it. */
export function callHandler(
  handler: (event: unknown, context: LambdaContext, callback: Callback) => unknown,
  event: unknown,
  context: LambdaContext,
  callback: Callback,
): void {
  try {
    const returned = handler(event, context, callback);
    if (returned instanceof Promise) returned.then(context.succeed, context.fail);
  } catch (err) {
    callback(err);
  }
}
