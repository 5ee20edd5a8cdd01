/**
 * An environment for `runtime: provided`: the function's own `bootstrap` (any executable, any
 * language) runs the handler and talks to Lambda's Runtime API, which this environment serves on
 * a loopback port of its own (`AWS_LAMBDA_RUNTIME_API`). Init is over at its first `/next`; each
 * invocation is handed to a waiting `/next` and ends with `/response` or `/error`. Timeouts kill
 * the process, as they do a Node sandbox, and its stdout and stderr are the invocation's log.
 * A streamed response (`Lambda-Runtime-Function-Response-Mode: streaming`) is collected and
 * answered whole. The memory limit is watched on the bootstrap's process, as on a Node sandbox.
 * Status codes and error bodies follow the Runtime API. A bootstrap that breaks the protocol (an
 * answer for another request id, a second answer, a request that does not parse) fails the
 * invocation it is running and is replaced. An answer larger than `events.maxPayload` fails its
 * invocation with Lambda's `Function.ResponseSizeTooLarge`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Server } from 'node:net';
import path from 'node:path';
import { packageRoot } from '../package-root.js';
import { safeDecode } from '../strings.js';
import type { FunctionError, FunctionSpec } from '../types.js';
import {
  exitError,
  exitWords,
  memoryWatchdog,
  NOT_STARTED,
  outOfMemoryError,
  timeoutError,
  treeResidentBytes,
  type EnvironmentOptions,
  type Outcome,
  type Sandbox,
  type State,
} from './environment.js';
import type { InvokeMessage } from './protocol.js';
import { createRuntimeApiServer, type ApiReply, type ApiRequest } from './runtime-api-http.js';

const INIT_TIMEOUT_MS = 10_000;
/** Output between invocations is kept up to this much (its end), for the next invocation's log. */
const MAX_UNCLAIMED_LOG = 256 * 1024;
const BERTH_BIN_DIR = path.join(packageRoot(), 'bin');
const PREFIX = '/2018-06-01/runtime';

interface Invocation {
  message: Omit<InvokeMessage, 't'>;
  resolve: (outcome: Outcome) => void;
  log: string;
  timer?: NodeJS.Timeout;
  started: number;
  /** The bootstrap's answer, kept for a turn of the event loop so its last output lands first. */
  outcome?: Omit<Outcome, 'log'>;
}

export class RuntimeApiEnvironment implements Sandbox {
  readonly id = randomUUID().replace(/-/g, '');
  readonly spec: FunctionSpec;
  state: State = 'starting';
  key: string | undefined;
  lastUsed = Date.now();
  private child: ChildProcess | undefined;
  private readonly server: Server;
  private readonly readyPromise: Promise<void>;
  private markReady!: () => void;
  private pendingInit: { log: string; initMs: number } | undefined;
  /** Output with no invocation to go to: init's, then whatever comes between invocations. */
  private unclaimedLog = '';
  private initError: FunctionError | undefined;
  private exited: string | undefined;
  private current: Invocation | undefined;
  /** The invocation sent while one runs: handed to the bootstrap's next `/next` without a round trip through the pool. */
  private queued: Invocation | undefined;
  private peakRssMb = 0;
  private groupEnded = false;
  private overMemory = false;
  /** The invocation answered last: a second answer to it is a state error, not an unknown id. */
  private lastAnswered: string | undefined;
  /** A `/next` waiting for work: answered when an invocation arrives. */
  private waiting: ApiReply | undefined;
  private readonly startedAt = performance.now();

  constructor(
    private readonly options: EnvironmentOptions,
    private readonly onExit: (env: Sandbox) => void,
  ) {
    this.spec = options.spec;
    this.readyPromise = new Promise((resolve) => (this.markReady = resolve));
    this.server = createRuntimeApiServer({
      maxBodyBytes: options.maxPayloadBytes,
      onRequest: (request, reply) => this.route(request, reply),
      onMalformed: (reply, problem) => this.violation(reply, 400, 'Runtime.MalformedRequest', `the bootstrap sent an HTTP request that does not parse (${problem})`),
    });
    this.server.once('error', (err) => this.cannotStart(`cannot serve the Runtime API: ${err.message}`));
    this.server.listen(0, '127.0.0.1', () => this.start());
    // A bootstrap that never asks for work is an init failure, not a hang.
    setTimeout(() => {
      if (this.state !== 'starting') return;
      this.initError = { errorType: 'Runtime.InitTimeout', errorMessage: `The bootstrap did not ask for an invocation within ${INIT_TIMEOUT_MS / 1000} seconds`, trace: [] };
      this.state = 'failed';
      this.kill();
      this.markReady();
    }, INIT_TIMEOUT_MS).unref();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** One more can wait behind the running one, as in a Node sandbox; the bootstrap still sees one at a time. */
  get canQueue(): boolean {
    return this.queued === undefined && this.state !== 'dead' && this.state !== 'failed';
  }

  get initFailure(): FunctionError | undefined {
    return this.initError;
  }

  get exitDescription(): string | undefined {
    return this.exited;
  }

  ready(): Promise<void> {
    return this.readyPromise;
  }

  takeInit(): { log: string; initMs: number } | undefined {
    const init = this.pendingInit;
    this.pendingInit = undefined;
    return init;
  }

  invoke(message: Omit<InvokeMessage, 't'>): Promise<Outcome> {
    if (this.initError || this.state === 'dead') {
      return Promise.resolve({ error: this.initError ?? exitError('before', this.exited ?? 'an unknown cause'), status: 'failed', maxMemoryMb: 0, log: '', lost: true });
    }
    if (this.queued) throw new Error(`environment ${this.id} already has an invocation queued`);
    return new Promise((resolve) => {
      const invocation: Invocation = { message, resolve, log: '', started: 0 };
      if (this.current) {
        this.queued = invocation;
        return;
      }
      this.state = 'busy';
      this.current = invocation;
      if (this.waiting) this.handOut(this.waiting);
    });
  }

  startService(): void {
    throw new Error('a provided runtime serves invocations only; start() needs the Node runtime');
  }

  /** The bootstrap and whatever it started: a bootstrap need not `exec` its runtime. */
  kill(): void {
    // Once the group has been killed after the exit, its id may belong to someone else.
    if (this.child?.pid === undefined || this.groupEnded) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
  }

  private start(): void {
    const { spec } = this;
    const port = (this.server.address() as AddressInfo).port;
    const today = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
    let child: ChildProcess;
    try {
      child = this.spawnBootstrap(port, today);
    } catch (err) {
      return this.cannotStart(`cannot run ${spec.bootstrap}: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.child = child;
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (this.current) this.current.log += text;
      else this.unclaimedLog = (this.unclaimedLog + text).slice(-MAX_UNCLAIMED_LOG);
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    child.on('error', (err) => {
      this.initError ??= { errorType: 'Runtime.InvalidEntrypoint', errorMessage: `cannot run ${spec.bootstrap}: ${err.message}`, trace: [] };
    });
    child.on('exit', (code, signal) => {
      // What the bootstrap started goes with it.
      this.kill();
      this.groupEnded = true;
      this.exited = signal ? `signal: ${signal}` : `exit status ${code}`;
      const wasStarting = this.state === 'starting';
      this.state = 'dead';
      if (wasStarting) this.initError ??= exitError('init', exitWords(code, signal), this.unclaimedLog);
      this.markReady();
      const id = this.current?.message.id ?? '';
      const error = this.overMemory ? outOfMemoryError(id, spec, 'signal: killed') : exitError({ id }, exitWords(code, signal));
      // An answer given just before the exit counts; an invocation the bootstrap never took runs elsewhere.
      const notStarted = this.current !== undefined && this.current.timer === undefined;
      this.finish(this.current?.outcome ?? { error, status: 'failed', maxMemoryMb: this.overMemory ? spec.memoryMb : this.peakRssMb, lost: true, ...(notStarted ? { notStarted } : {}) });
      this.server.close();
      this.onExit(this);
    });
  }

  /** In a process group of its own, so that a kill reaches whatever it started. */
  private spawnBootstrap(port: number, today: string): ChildProcess {
    const { spec } = this;
    return spawn(spec.bootstrap!, [], {
      cwd: path.dirname(spec.bootstrap!),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: {
        // `berth` itself comes first, so `exec berth bootstrap` runs Berth's runtime client.
        PATH: `${BERTH_BIN_DIR}${path.delimiter}${process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
        LANG: process.env.LANG ?? 'C.UTF-8',
        HOME: process.env.HOME ?? '/tmp',
        TZ: ':UTC',
        AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`,
        _HANDLER: spec.handler,
        LAMBDA_TASK_ROOT: path.dirname(spec.bootstrap!),
        AWS_LAMBDA_FUNCTION_NAME: spec.name,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memoryMb),
        AWS_LAMBDA_FUNCTION_TIMEOUT: String(spec.timeoutSeconds),
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${spec.name}`,
        AWS_LAMBDA_LOG_STREAM_NAME: `${today}/[$LATEST]${this.id}`,
        AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
        AWS_REGION: this.options.region,
        AWS_DEFAULT_REGION: this.options.region,
        AWS_EXECUTION_ENV: 'AWS_Lambda_provided',
        ...this.options.platformEnv,
        ...spec.environment,
      },
    });
  }

  /** Init fails before there is a process to run it: the environment is gone at once. */
  private cannotStart(errorMessage: string): void {
    if (this.state !== 'starting') return;
    this.initError = { errorType: 'Runtime.InvalidEntrypoint', errorMessage, trace: [] };
    this.state = 'dead';
    this.server.close();
    this.markReady();
    this.onExit(this);
  }

  private route(request: ApiRequest, reply: ApiReply): void {
    const { method, url } = request;
    if (method === 'GET' && url === `${PREFIX}/invocation/next`) return this.next(reply);
    if (method === 'POST' && url === `${PREFIX}/init/error`) return this.initErrorPosted(request, reply);
    const answer = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
    // Not a mistake of the bootstrap's: other APIs (extensions, telemetry) share the address on Lambda.
    if (method !== 'POST' || !answer) return sendJson(reply, 404, { errorMessage: `unknown Runtime API path ${method} ${url}`, errorType: 'InvalidRequest' });
    this.answer(safeDecode(answer[1]!), answer[2] as 'response' | 'error', request, reply);
  }

  /** `/next`: the first one ends init; each one is held until there is an invocation. */
  private next(reply: ApiReply): void {
    if (this.state === 'starting') {
      this.state = 'ready';
      this.pendingInit = { log: this.unclaimedLog, initMs: performance.now() - this.startedAt };
      this.unclaimedLog = '';
      this.markReady();
    }
    this.waiting = reply;
    reply.onClose(() => {
      if (this.waiting === reply) this.waiting = undefined;
    });
    if (this.current && !this.current.timer) this.handOut(reply);
  }

  private handOut(reply: ApiReply): void {
    const current = this.current!;
    const { message } = current;
    this.waiting = undefined;
    const deadline = Date.now() + message.timeoutMs;
    current.started = performance.now();
    // Output between invocations (after an answer was settled) goes with the next one.
    if (this.unclaimedLog) {
      current.log = this.unclaimedLog + current.log;
      this.unclaimedLog = '';
    }
    current.timer = setTimeout(() => this.timedOut(), message.timeoutMs);
    memoryWatchdog.watch(this);
    // Lambda's header names, spelled as Lambda spells them.
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Aws-Request-Id': message.id,
      'Lambda-Runtime-Deadline-Ms': String(deadline),
      'Lambda-Runtime-Invoked-Function-Arn': this.options.functionArn,
      'Lambda-Runtime-Trace-Id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomUUID().replace(/-/g, '').slice(0, 24)};Parent=${randomUUID().replace(/-/g, '').slice(0, 16)};Sampled=0`,
      // Berth's own: a retry's delivery count, which Berth's runtime client puts in context.attempt.
      'Berth-Attempt': String(message.attempt),
    };
    if (message.clientContext !== undefined) headers['Lambda-Runtime-Client-Context'] = JSON.stringify(message.clientContext);
    if (message.tenantId !== undefined) headers['Lambda-Runtime-Aws-Tenant-Id'] = message.tenantId;
    reply.send(200, headers, JSON.stringify(message.event ?? null));
  }

  private answer(id: string, kind: 'response' | 'error', request: ApiRequest, reply: ApiReply): void {
    const current = this.current;
    const to = `Invocation${kind === 'response' ? 'Response' : 'ErrorResponse'}`;
    // A second answer, or one after a broken request already settled the invocation.
    if (id === this.lastAnswered || (current?.message.id === id && current.outcome)) {
      return this.violation(reply, 403, 'InvalidStateTransition', `State transition from InvocationResponse to ${to} failed for runtime. Error: invocation ${id} has already been answered`);
    }
    if (!current?.timer || current.message.id !== id) {
      return this.violation(reply, 400, 'InvalidRequestID', `Invalid request ID: the bootstrap answered ${JSON.stringify(id)}, ${current?.timer ? `but the invocation in progress is ${current.message.id}` : 'but no invocation is in progress'}`);
    }
    const { headers, trailers, body } = request;
    const mode = headers['lambda-runtime-function-response-mode'];
    if (kind === 'response' && mode !== undefined && mode !== 'streaming') {
      return this.violation(reply, 400, 'Runtime.InvalidResponseModeHeader', `Lambda-Runtime-Function-Response-Mode must be "streaming", got "${mode}"`);
    }
    this.lastAnswered = id;
    // Berth's runtime client says how long the handler itself ran, as a Node sandbox does: the
    // REPORT line and the pool's sizing then leave out the round trips. Other bootstraps are timed here.
    const measuredMs = performance.now() - current.started;
    const reportedMs = Number(headers['berth-duration-ms']);
    const durationMs = reportedMs >= 0 && reportedMs < measuredMs ? reportedMs : measuredMs;
    const done = { maxMemoryMb: this.peakRssMb, durationMs, lost: false };
    const limit = this.options.maxPayloadBytes;
    if (request.bodyBytes > limit) {
      const errorMessage = `Response payload size (${request.bodyBytes} bytes) exceeded maximum allowed payload size (${limit} bytes, events.maxPayload in berth.yml).`;
      current.outcome = { ...done, error: { errorType: 'Function.ResponseSizeTooLarge', errorMessage, trace: [] }, status: 'failed' };
      return this.settle(current, () => sendJson(reply, 413, { errorMessage, errorType: 'RequestEntityTooLarge' }));
    }
    if (kind === 'response' && mode === 'streaming') {
      // Berth collects the stream and answers once it ends; a failure mid-stream comes as trailers.
      const errorType = trailers['lambda-runtime-function-error-type'];
      const errorBody = Buffer.from(trailers['lambda-runtime-function-error-body'] ?? '', 'base64');
      current.outcome = errorType
        ? { ...done, error: errorFrom(errorBody, errorType), status: 'failed' }
        : { ...done, payload: streamedPayload(headers['content-type'], body), status: 'succeeded' };
    } else if (kind === 'response') {
      current.outcome = { ...done, payload: parsePayload(body), status: 'succeeded' };
    } else {
      current.outcome = { ...done, error: errorFrom(body, headers['lambda-runtime-function-error-type']), status: 'failed' };
    }
    this.settle(current, () => sendJson(reply, 202, ACCEPTED));
  }

  /**
   * Settles an answered invocation one turn of the event loop later: what the bootstrap printed
   * before answering is in its pipes already but may be read after the answer, and that turn
   * reads it, so it is this invocation's log, not the next's. The bootstrap's own answer waits for
   * that turn too, so that it leaves in one write with the next invocation when one is queued.
   */
  private settle(current: Invocation, acknowledge: () => void): void {
    setImmediate(() => {
      acknowledge();
      if (this.current === current) this.finish(current.outcome!);
    });
  }

  /**
   * The bootstrap broke the protocol and cannot be trusted with another invocation: it hears what
   * Lambda would tell it, the invocation it is running fails with that error, and the environment
   * is replaced (one queued behind runs on another). With no invocation to carry the error, the
   * operator is told.
   */
  private violation(reply: ApiReply, status: number, errorType: string, errorMessage: string): void {
    sendJson(reply, status, { errorMessage, errorType });
    const current = this.current;
    if (current?.timer && !current.outcome) {
      current.outcome = { error: { errorType, errorMessage, trace: [] }, status: 'failed', maxMemoryMb: this.peakRssMb, lost: true };
    } else {
      this.options.warn(`function ${this.spec.name}: environment ${this.id} replaced, its bootstrap broke the Runtime API: ${errorType}: ${errorMessage}`);
    }
    this.kill();
  }

  private initErrorPosted(request: ApiRequest, reply: ApiReply): void {
    if (this.state !== 'starting') return this.violation(reply, 403, 'InvalidStateTransition', 'State transition from Ready to InitError failed for runtime. Error: init is over');
    sendJson(reply, 202, ACCEPTED);
    this.initError = errorFrom(request.body, request.headers['lambda-runtime-function-error-type']);
    this.pendingInit = { log: this.unclaimedLog, initMs: performance.now() - this.startedAt };
    this.state = 'failed';
    this.markReady();
    this.kill();
  }

  /** Called by the memory watchdog while an invocation runs: the bootstrap's resident memory against `memory`. */
  async checkMemory(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined || !this.current) return;
    const rssBytes = await treeResidentBytes(pid);
    if (rssBytes === undefined) return;
    this.peakRssMb = Math.max(this.peakRssMb, Math.ceil(rssBytes / 1024 / 1024));
    if (rssBytes > this.spec.memoryMb * 1024 * 1024 && this.current) {
      this.overMemory = true;
      this.kill();
    }
  }

  private timedOut(): void {
    const current = this.current;
    if (!current || current.outcome) return;
    this.finish({ status: 'timed_out', error: timeoutError(current.message.id, this.spec), maxMemoryMb: 0, lost: true });
    this.kill();
  }

  private finish(outcome: Omit<Outcome, 'log'>): void {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    clearTimeout(current.timer);
    memoryWatchdog.unwatch(this);
    this.lastUsed = Date.now();
    if (this.state === 'busy') this.state = outcome.lost ? 'dead' : 'ready';
    current.resolve({ ...outcome, log: current.log });
    const queued = this.queued;
    this.queued = undefined;
    if (!queued) return;
    if (outcome.lost || this.state === 'dead') {
      queued.resolve(NOT_STARTED);
      return;
    }
    this.state = 'busy';
    this.current = queued;
    if (this.waiting) this.handOut(this.waiting);
  }
}

const ACCEPTED = { status: 'OK' };


function sendJson(reply: ApiReply, status: number, body: unknown): void {
  reply.send(status, { 'Content-Type': 'application/json' }, JSON.stringify(body));
}

const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';
const PRELUDE_END = Buffer.alloc(8);

/**
 * A streamed response as a result: with awslambda.HttpResponseStream, a JSON prelude
 * ({statusCode, headers, cookies}) and 8 NUL bytes come before the body, which makes it an
 * API Gateway result; any other stream is its bytes.
 */
function streamedPayload(contentType: string | undefined, body: Buffer): unknown {
  if (contentType !== HTTP_INTEGRATION) return parsePayload(body);
  const end = body.indexOf(PRELUDE_END);
  if (end < 0) return parsePayload(body);
  let prelude: Record<string, unknown>;
  try {
    prelude = JSON.parse(body.subarray(0, end).toString('utf8')) as Record<string, unknown>;
  } catch {
    return parsePayload(body);
  }
  return { ...prelude, body: body.subarray(end + PRELUDE_END.length).toString('base64'), isBase64Encoded: true };
}

/** The response as the caller gets it: JSON when it is JSON, else its text. */
function parsePayload(body: Buffer): unknown {
  const text = body.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Real clients put errorType in the body (aws-lambda-ric sends no header); the header is the fallback. */
function errorFrom(body: Buffer, header: string | string[] | undefined | null): FunctionError {
  const fallback = (Array.isArray(header) ? header[0] : header) ?? 'Runtime.Unknown';
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errorType?: unknown; errorMessage?: unknown; trace?: unknown; stackTrace?: unknown };
    const trace = Array.isArray(parsed.trace) ? parsed.trace : Array.isArray(parsed.stackTrace) ? parsed.stackTrace : [];
    return {
      errorType: typeof parsed.errorType === 'string' ? parsed.errorType : fallback,
      errorMessage: typeof parsed.errorMessage === 'string' ? parsed.errorMessage : '',
      trace: trace.map(String),
    };
  } catch {
    return { errorType: fallback, errorMessage: body.toString('utf8').slice(0, 1000), trace: [] };
  }
}
