/**
 * Entry point of a sandbox process: loads one function's bundle (the init phase),
 * then runs invocations one at a time as the platform sends them over IPC.
 * It imports only Node built-ins so that an environment starts fast.
 */
import { pathToFileURL } from 'node:url';
import { SANDBOX_ENV, type FromSandbox, type InvokeMessage, type StartMessage, type ToSandbox } from '../protocol.js';
import { findExport } from '../handler-export.js';
import { buildContext, callHandler } from './context.js';
import { handlerNotFound, importError, marshalError, rejectionError, toFunctionError } from './errors.js';
import { flush, installLogCapture, setInvocation, takeInitLog } from './logging.js';

type Handler = (event: unknown, context: unknown, callback: unknown) => unknown;
type StartFunction = (context: { functionName: string; instanceId: string }) => unknown;

const send = (message: FromSandbox) => process.send!(message);

/** The invocation being run, with what to report once the event loop drains. */
let running: { id: string; started: number; drainResult?: { value: unknown } } | undefined;
/** Invocations sent while one was running; they start in order, one at a time. */
const queued: InvokeMessage[] = [];
let handler: Handler;
let startExport: StartFunction | undefined;

/** What a service with only a start() answers an invocation with. */
const noHandler: Handler = () => {
  throw Object.assign(new Error(`${process.env.AWS_LAMBDA_FUNCTION_NAME} is a service with a start() and no handler; it cannot be invoked`), { name: 'Runtime.HandlerNotFound' });
};

installLogCapture((id, text) => send({ t: 'log', id, text }));
process.on('disconnect', () => process.exit(0));

/**
 * The process's peak resident memory, re-read at most every 50 ms: getrusage() is a
 * syscall, and on the hot path of a sub-millisecond handler it cost more than the handler.
 */
let peak = { kb: 0, at: 0 };
function peakRssKb(): number {
  const now = performance.now();
  if (now - peak.at > 50) peak = { kb: process.resourceUsage().maxRSS, at: now };
  return peak.kb;
}

function report(id: string, err: unknown, result: unknown): void {
  if (running?.id !== id) return;
  const durationMs = performance.now() - running.started;
  running = undefined;
  setInvocation(undefined);
  const maxRssKb = peakRssKb();
  if (err !== undefined && err !== null) {
    const error = toFunctionError(err);
    // Lambda's runtime logs every failed invocation this way.
    console.error('Invoke Error', JSON.stringify(error));
    flush();
    send({ t: 'result', id, error, maxRssKb, durationMs });
  } else {
    flush();
    try {
      send({ t: 'result', id, payload: result, maxRssKb, durationMs });
    } catch (marshal) {
      send({
        t: 'result',
        id,
        error: marshalError(marshal),
        maxRssKb,
        durationMs,
      });
    }
  }
  process.channel?.ref();
  const next = queued.shift();
  if (next) invoke(next);
}

// The IPC channel is unref'd while a handler runs, so 'beforeExit' tells us the
// handler's own work has drained (Lambda's callbackWaitsForEmptyEventLoop).
process.on('beforeExit', () => {
  if (!running) return;
  const { id, drainResult } = running;
  report(id, null, drainResult ? drainResult.value : null);
});

function fatal(err: unknown, exitCode: number): void {
  const id = running?.id;
  if (id === undefined) {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    flush();
    process.exit(exitCode);
  }
  running = undefined;
  const error = exitCode === 128 ? rejectionError(err) : toFunctionError(err);
  console.error('Invoke Error', JSON.stringify(error));
  setInvocation(undefined);
  send({ t: 'fatal', id, error });
  process.exit(exitCode);
}
process.on('uncaughtException', (err) => fatal(err, 129));
process.on('unhandledRejection', (err) => fatal(err, 128));

function invoke(message: InvokeMessage): void {
  running = { id: message.id, started: performance.now() };
  setInvocation(message.id);
  process.channel?.unref();
  const [context, callback] = buildContext(message, Date.now() + message.timeoutMs, {
    now: (err, result) => report(message.id, err, result),
    onDrain: (result) => {
      if (running?.id === message.id) running.drainResult = { value: result };
    },
  });
  callHandler(handler, message.event, context, callback);
}

/**
 * A service instance: start() runs once and the process lives as long as what it started. A
 * throw or rejection ends the process (the platform restarts the instance with backoff).
 */
function start(message: StartMessage): void {
  setInvocation(message.id);
  const fail = (err: unknown) => fatal(err, 1);
  try {
    const returned = startExport!({ functionName: message.functionName, instanceId: message.id });
    if (returned instanceof Promise) returned.catch(fail);
  } catch (err) {
    fail(err);
  }
}

async function init(): Promise<void> {
  const started = performance.now();
  const handlerName = process.env[SANDBOX_ENV.handler]!;
  try {
    const mod = (await import(pathToFileURL(process.env[SANDBOX_ENV.bundle]!).href)) as Record<string, unknown>;
    // A service may have only a start(): then there is no handler to look for.
    const exportName = process.env[SANDBOX_ENV.exportName]!;
    const startName = process.env[SANDBOX_ENV.startExport];
    const foundHandler = exportName ? findExport(mod, exportName) : undefined;
    const foundStart = startName ? findExport(mod, startName) : undefined;
    const missing = exportName && !foundHandler ? handlerName : startName && !foundStart ? `start ${startName}` : undefined;
    if (missing !== undefined) {
      send({ t: 'init-error', error: handlerNotFound(missing), log: takeInitLog() });
      return;
    }
    handler = (foundHandler as Handler | undefined) ?? noHandler;
    startExport = foundStart as StartFunction | undefined;
  } catch (err) {
    send({ t: 'init-error', error: importError(err), log: takeInitLog() });
    return;
  }
  process.on('message', (message: ToSandbox) => {
    if (message.t === 'invoke') {
      if (running) queued.push(message);
      else invoke(message);
    } else if (message.t === 'start') start(message);
    else if (message.t === 'shutdown') process.exit(0);
  });
  send({ t: 'ready', initMs: performance.now() - started, log: takeInitLog() });
}

void init();
