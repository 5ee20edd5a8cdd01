/**
 * `berth bootstrap [file.export]`: Berth's runtime client. It runs an unmodified Lambda Node.js
 * handler against Lambda's Runtime API, wherever `AWS_LAMBDA_RUNTIME_API` points: a Berth
 * `runtime: provided` environment, or a container image on Lambda itself. It does for a Node
 * image what aws-lambda-ric does, in plain JavaScript with no native build.
 *
 * The handler is called with the sandbox's own context and completion rules (sandbox/context.ts),
 * so callbacks, `callbackWaitsForEmptyEventLoop`, succeed/fail/done and promises behave alike on
 * both runtimes. Response streaming is aws-lambda-ric's; a streamifyResponse handler is an init
 * error here that says so.
 */
import type { FunctionError } from '../../types.js';
import { buildContext, callHandler } from '../sandbox/context.js';
import { marshalError, rejectionError, toFunctionError } from '../sandbox/errors.js';
import { installLambdaConsole } from '../sandbox/logging.js';
import { RuntimeApi, type NextInvocation } from './api.js';
import { InitError, loadHandler, type Handler } from './load-handler.js';

const address = process.env.AWS_LAMBDA_RUNTIME_API;
if (!address) {
  process.stderr.write(
    'berth bootstrap: AWS_LAMBDA_RUNTIME_API is not set. It runs as the bootstrap of a function with runtime: provided ' +
      '(or as a container image\'s entrypoint on Lambda), which sets it; see the README, "Other languages".\n',
  );
  process.exit(2);
}
const api = new RuntimeApi(address);

/** The invocation being run, with the callback's result while the event loop drains. */
let running: { id: string; started: number; drained?: { value: unknown } } | undefined;
/** Set once init has loaded it; until then a crash is an init error. */
let handler: Handler | undefined;

installLambdaConsole(() => running?.id);

(globalThis as Record<string, unknown>).awslambda = {
  streamifyResponse() {
    throw new Error('berth bootstrap answers whole responses; run a streamifyResponse handler with aws-lambda-ric as its bootstrap');
  },
};

/** A throw nobody caught ends the environment, as on Lambda: the invocation (or init) fails first. */
async function crash(error: FunctionError, exitCode: number): Promise<void> {
  const crashed = running;
  running = undefined;
  try {
    if (crashed !== undefined) {
      console.error('Invoke Error', JSON.stringify(error));
      await api.fail(crashed.id, error, performance.now() - crashed.started);
    } else if (!handler) {
      console.error('Init Error', JSON.stringify(error));
      await api.initError(error);
    } else {
      process.stderr.write(`${error.trace.join('\n') || `${error.errorType}: ${error.errorMessage}`}\n`);
    }
  } finally {
    process.exit(exitCode);
  }
}
process.on('uncaughtException', (err) => void crash(toFunctionError(err), 129));
process.on('unhandledRejection', (reason) => void crash(rejectionError(reason), 128));

// Nothing is pending but the handler's own work once it has drained: the callback's result
// (or null) is the answer, as with callbackWaitsForEmptyEventLoop on Lambda.
process.on('beforeExit', () => {
  if (running) void answer(running.id, null, running.drained ? running.drained.value : null);
});

async function answer(id: string, err: unknown, result: unknown): Promise<void> {
  if (running?.id !== id) return;
  const durationMs = performance.now() - running.started;
  const payload = err !== undefined && err !== null ? toFunctionError(err) : marshal(result);
  if (typeof payload !== 'string') console.error('Invoke Error', JSON.stringify(payload));
  running = undefined;
  const sent = typeof payload === 'string' ? api.respond(id, payload, durationMs) : api.fail(id, payload, durationMs);
  // Pipelined behind the answer on the same connection: the server reads them in order.
  const next = api.next();
  await sent.catch(lost);
  run(await next.catch(lost));
}

/** The result as the response body, or Lambda's error for one that is not JSON. */
function marshal(result: unknown): string | FunctionError {
  try {
    return JSON.stringify(result === undefined ? null : result);
  } catch (err) {
    return marshalError(err);
  }
}

function lost(err: unknown): never {
  process.stderr.write(`berth bootstrap: lost the Runtime API at ${address}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

function run(next: NextInvocation): void {
  running = { id: next.id, started: performance.now() };
  if (next.traceId !== undefined) process.env._X_AMZN_TRACE_ID = next.traceId;
  else delete process.env._X_AMZN_TRACE_ID;
  const [context, callback] = buildContext(
    {
      t: 'invoke',
      id: next.id,
      attempt: next.attempt,
      event: next.event,
      timeoutMs: next.deadlineMs - Date.now(),
      ...(next.tenantId !== undefined ? { tenantId: next.tenantId } : {}),
      ...(next.clientContext !== undefined ? { clientContext: next.clientContext } : {}),
    },
    next.deadlineMs,
    {
      now: (err, result) => void answer(next.id, err, result),
      onDrain: (result) => {
        if (running?.id === next.id) running.drained = { value: result };
      },
    },
  );
  context.invokedFunctionArn = next.functionArn;
  if (next.identity !== undefined) context.identity = next.identity;
  callHandler(handler!, next.event, context, callback);
}

const handlerName = process.argv[3] ?? process.env._HANDLER;
try {
  if (!handlerName) {
    throw new InitError({ errorType: 'Runtime.MalformedHandlerName', errorMessage: 'no handler: set handler: file.export on the function (it arrives as _HANDLER), or pass it: berth bootstrap index.handler', trace: [] });
  }
  handler = await loadHandler(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), handlerName);
} catch (err) {
  await crash(err instanceof InitError ? err.error : toFunctionError(err), 1);
}
run(await api.next().catch(lost));
