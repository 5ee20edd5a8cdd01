/**
 * The platform's handle on one sandbox process: starts it, sends it invocations (one
 * running, at most one queued behind it), enforces the timeout and memory limit, and
 * turns every way a process can die into a function error.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionError, FunctionSpec } from '../types.js';
import { SANDBOX_ENV, type FromSandbox, type InvokeMessage } from './protocol.js';

const SANDBOX_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sandbox', 'main.js');
const INIT_TIMEOUT_MS = 10_000;
const PAGE_SIZE = 4096;

export interface Outcome {
  payload?: unknown;
  error?: FunctionError;
  status: 'succeeded' | 'failed' | 'timed_out';
  maxMemoryMb: number;
  /** Everything the handler printed during this invocation. */
  log: string;
  /** The handler's own time, measured in the sandbox; absent when the process died. */
  durationMs?: number;
  /** The environment is gone and must not be reused. */
  lost: boolean;
  /** The invocation was queued in an environment that died before starting it: run it elsewhere. */
  notStarted?: boolean;
}

/** What an invocation queued behind one that killed its environment gets, in either kind of environment. */
export const NOT_STARTED: Readonly<Outcome> = { status: 'failed', maxMemoryMb: 0, log: '', lost: true, notStarted: true };

/** Lambda's error for an invocation that ran past the function's timeout, in either kind of environment. */
export function timeoutError(id: string, spec: Pick<FunctionSpec, 'timeoutSeconds'>): FunctionError {
  return { errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${id} Error: Task timed out after ${spec.timeoutSeconds.toFixed(2)} seconds`, trace: [] };
}

/** How Lambda words the end of a runtime's process: "exit status 1", "signal: killed". */
export function exitWords(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal: ${signal === 'SIGKILL' ? 'killed' : signal}` : `exit status ${code}`;
}

/**
 * Lambda's error for a runtime process that exited: during init, before an invocation could
 * start, or during invocation `when.id`. Its last line of output, if any, says why.
 */
export function exitError(when: 'init' | 'before' | { id: string }, exit: string, output = ''): FunctionError {
  const what =
    when === 'init' ? `Runtime exited during init with ${exit}` : when === 'before' ? `Runtime exited before the invocation with ${exit}` : `RequestId: ${when.id} Error: Runtime exited with error: ${exit}`;
  const lastLine = output.trim().split('\n').at(-1);
  return { errorType: 'Runtime.ExitError', errorMessage: lastLine ? `${what}: ${lastLine}` : what, trace: [] };
}

/** Lambda's error for an invocation whose process went over the function's memory. */
export function outOfMemoryError(id: string, spec: FunctionSpec, exit: string): FunctionError {
  return { errorType: 'Runtime.OutOfMemory', errorMessage: `RequestId: ${id} Error: Runtime exited with error: ${exit} (memory limit of ${spec.memoryMb} MB exceeded)`, trace: [] };
}

export interface EnvironmentOptions {
  spec: FunctionSpec;
  bundle: string;
  functionArn: string;
  region: string;
  /** Variables every sandbox gets from the platform (how to reach Berth's API). */
  platformEnv: Record<string, string>;
  /** The largest result a Runtime API bootstrap may post: the project's `events.maxPayload`. */
  maxPayloadBytes: number;
  /** Tells the operator what went wrong in an environment when no invocation is there to carry it. */
  warn: (message: string) => void;
}

export type State = 'starting' | 'ready' | 'busy' | 'failed' | 'dead';

/** What the pool, the dispatcher and the service runner use of an environment, whatever runs in it. */
export interface Sandbox {
  readonly id: string;
  readonly spec: FunctionSpec;
  state: State;
  key: string | undefined;
  lastUsed: number;
  readonly pid: number | undefined;
  readonly canQueue: boolean;
  readonly initFailure: FunctionError | undefined;
  readonly exitDescription: string | undefined;
  ready(): Promise<void>;
  takeInit(): { log: string; initMs: number } | undefined;
  invoke(message: Omit<InvokeMessage, 't'>): Promise<Outcome>;
  startService(id: string, onLog: (text: string) => void): void;
  kill(): void;
}

interface Queued {
  id: string;
  timeoutMs: number;
  resolve: (outcome: Outcome) => void;
}

interface Running extends Queued {
  log: string;
  timer: NodeJS.Timeout;
  /** Why the platform killed the process, if it did. */
  killedFor?: 'timeout' | 'memory';
}

export class Environment implements Sandbox {
  readonly id = randomUUID().replace(/-/g, '');
  readonly spec: FunctionSpec;
  state: State = 'starting';
  /** The isolation key (tenant) this environment is bound to, once bound. */
  key: string | undefined;
  lastUsed = Date.now();
  /** Highest resident memory seen (MB), reported for invocations whose process died. */
  private peakRssMb = 0;
  /** Init's output and duration, reported with the first invocation only. */
  private pendingInit: { log: string; initMs: number } | undefined;
  private initError: FunctionError | undefined;
  private running: Running | undefined;
  /** A service instance running start(): where its output goes. */
  private service: { id: string; onLog: (text: string) => void } | undefined;
  private exited: string | undefined;
  /** Sent while another runs; the sandbox starts it next (see protocol.ts). */
  private queued: Queued | undefined;
  private readonly child: ChildProcess;
  private readonly readyPromise: Promise<void>;
  private readonly onExit: (env: Environment) => void;

  constructor(options: EnvironmentOptions, onExit: (env: Environment) => void) {
    this.spec = options.spec;
    this.onExit = onExit;
    const { spec } = options;
    const today = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
    this.child = fork(SANDBOX_MAIN, [], {
      cwd: path.dirname(spec.file),
      execArgv: [`--max-old-space-size=${spec.memoryMb}`, '--enable-source-maps'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
        LANG: process.env.LANG ?? 'C.UTF-8',
        TZ: ':UTC',
        HOME: process.env.HOME ?? '/tmp',
        AWS_LAMBDA_FUNCTION_NAME: spec.name,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memoryMb),
        AWS_LAMBDA_FUNCTION_TIMEOUT: String(spec.timeoutSeconds),
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${spec.name}`,
        AWS_LAMBDA_LOG_STREAM_NAME: `${today}/[$LATEST]${this.id}`,
        AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
        AWS_EXECUTION_ENV: `AWS_Lambda_nodejs${process.versions.node.split('.')[0]}.x`,
        AWS_REGION: options.region,
        AWS_DEFAULT_REGION: options.region,
        LAMBDA_TASK_ROOT: path.dirname(spec.file),
        _HANDLER: spec.handler,
        BERTH_FUNCTION_ARN: options.functionArn,
        ...options.platformEnv,
        [SANDBOX_ENV.bundle]: options.bundle,
        [SANDBOX_ENV.handler]: spec.handler,
        [SANDBOX_ENV.exportName]: spec.exportName,
        ...(spec.startExport !== undefined ? { [SANDBOX_ENV.startExport]: spec.startExport } : {}),
        ...spec.environment,
      },
    });
    // JavaScript output arrives over IPC; the pipes only carry what bypasses it
    // (native writes, V8's fatal errors), attributed to the running invocation.
    const onRaw = (chunk: Buffer) => {
      if (this.running) this.running.log += chunk.toString('utf8');
    };
    this.child.stdout!.on('data', onRaw);
    this.child.stderr!.on('data', onRaw);
    // A send to a process that is dying fails with EPIPE; its 'exit' reports the invocation.
    this.child.on('error', () => {});

    this.readyPromise = new Promise<void>((resolve) => {
      const initTimer = setTimeout(() => {
        this.initError = { errorType: 'Runtime.InitTimeout', errorMessage: `Init did not finish within ${INIT_TIMEOUT_MS / 1000} seconds`, trace: [] };
        this.state = 'failed';
        this.child.kill('SIGKILL');
        resolve();
      }, INIT_TIMEOUT_MS);
      this.child.on('message', (message: FromSandbox) => {
        switch (message.t) {
          case 'ready':
            clearTimeout(initTimer);
            this.pendingInit = { log: message.log, initMs: message.initMs };
            if (this.state === 'starting') this.state = 'ready';
            resolve();
            break;
          case 'init-error':
            clearTimeout(initTimer);
            this.initError = message.error;
            this.pendingInit = { log: message.log, initMs: 0 };
            this.state = 'failed';
            resolve();
            break;
          case 'log':
            if (this.running?.id === message.id) this.running.log += message.text;
            else if (this.service?.id === message.id) this.service.onLog(message.text);
            break;
          case 'result':
            this.finish({
              ...(message.error ? { error: message.error } : { payload: message.payload }),
              status: message.error ? 'failed' : 'succeeded',
              maxMemoryMb: (this.peakRssMb = Math.max(this.peakRssMb, Math.ceil(message.maxRssKb / 1024))),
              durationMs: message.durationMs,
              lost: false,
            });
            break;
          case 'fatal':
            this.finish({ error: message.error, status: 'failed', maxMemoryMb: this.peakRssMb, lost: true });
            break;
        }
      });
      this.child.on('exit', (code, signal) => {
        clearTimeout(initTimer);
        this.exited = signal ? `signal: ${signal}` : `exit status ${code}`;
        const wasStarting = this.state === 'starting';
        this.state = 'dead';
        if (wasStarting) this.initError = exitError('init', exitWords(code, signal));
        resolve();
        this.finish(this.exitOutcome(code, signal));
        this.onExit(this);
      });
    });
  }

  /** Why init failed, once it has; undefined while starting or after a good init. */
  get initFailure(): FunctionError | undefined {
    return this.initError;
  }

  /** How the process ended, once it has: "exit status 1" or "signal: SIGKILL". */
  get exitDescription(): string | undefined {
    return this.exited;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resolves once init has finished, successfully or not. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /** Init output and duration, handed out once: to the first invocation's log. */
  takeInit(): { log: string; initMs: number } | undefined {
    const init = this.pendingInit;
    this.pendingInit = undefined;
    return init;
  }

  /** Whether another invocation can be sent now: nothing queued behind the running one. */
  get canQueue(): boolean {
    return this.queued === undefined && this.state !== 'dead';
  }

  /**
   * Runs an invocation, or queues it behind the running one (one at most). Its timeout
   * starts when the sandbox starts it.
   */
  invoke(message: Omit<InvokeMessage, 't'>): Promise<Outcome> {
    if (this.initError || this.state === 'dead') {
      return Promise.resolve({
        error: this.initError ?? exitError('before', this.exited ?? 'an unknown cause'),
        status: 'failed',
        maxMemoryMb: this.peakRssMb,
        log: '',
        lost: true,
      });
    }
    if (this.queued) throw new Error(`environment ${this.id} already has an invocation queued`);
    return new Promise<Outcome>((resolve) => {
      const entry = { id: message.id, timeoutMs: message.timeoutMs, resolve };
      if (this.running) this.queued = entry;
      else this.start(entry);
      this.child.send({ t: 'invoke', ...message });
    });
  }

  /**
   * Runs the service's start() in this environment, which from then on belongs to that instance
   * and takes no invocations. Its end is the process's exit, reported by the exit callback.
   */
  startService(id: string, onLog: (text: string) => void): void {
    this.service = { id, onLog };
    this.state = 'busy';
    this.child.send({ t: 'start', id, functionName: this.spec.name });
  }

  private start(entry: Queued): void {
    this.state = 'busy';
    const timer = setTimeout(() => {
      if (this.running?.id !== entry.id) return;
      this.running.killedFor = 'timeout';
      this.child.kill('SIGKILL');
    }, entry.timeoutMs);
    this.running = { ...entry, log: '', timer };
    memoryWatchdog.watch(this);
  }

  /** Called by the memory watchdog. */
  async checkMemory(): Promise<void> {
    const pid = this.child.pid;
    if (!this.running || pid === undefined) return;
    const rssBytes = await residentBytes(pid);
    // Undefined: the process exited between the check and the read; 'exit' reports it.
    if (rssBytes === undefined) return;
    this.peakRssMb = Math.max(this.peakRssMb, Math.ceil(rssBytes / 1024 / 1024));
    if (rssBytes > this.spec.memoryMb * 1024 * 1024 && this.running) {
      this.running.killedFor = 'memory';
      this.child.kill('SIGKILL');
    }
  }

  kill(): void {
    if (this.state === 'dead') return;
    this.child.kill('SIGKILL');
  }

  private finish(outcome: Omit<Outcome, 'log'>): void {
    const running = this.running;
    if (!running) return;
    this.running = undefined;
    clearTimeout(running.timer);
    memoryWatchdog.unwatch(this);
    this.lastUsed = Date.now();
    if (this.state === 'busy') this.state = outcome.lost ? 'dead' : 'ready';
    running.resolve({ ...outcome, log: running.log });
    const queued = this.queued;
    this.queued = undefined;
    if (!queued) return;
    // The sandbox starts the queued invocation as soon as it has reported this one.
    if (!outcome.lost) this.start(queued);
    else queued.resolve(NOT_STARTED);
  }

  private exitOutcome(code: number | null, signal: NodeJS.Signals | null): Omit<Outcome, 'log'> {
    const running = this.running;
    const id = running?.id ?? '';
    if (running?.killedFor === 'timeout') return { status: 'timed_out', error: timeoutError(id, this.spec), maxMemoryMb: this.peakRssMb, lost: true };
    const exit = exitWords(code, signal);
    const outOfMemory =
      running?.killedFor === 'memory' || signal === 'SIGABRT' || /heap out of memory/.test(running?.log ?? '');
    if (outOfMemory) return { status: 'failed', error: outOfMemoryError(id, this.spec, exit), maxMemoryMb: this.spec.memoryMb, lost: true };
    return { status: 'failed', error: exitError({ id }, exit), maxMemoryMb: this.peakRssMb, lost: true };
  }
}

/**
 * One timer polls the RSS of every busy environment; the V8 heap limit alone misses
 * Buffers and native memory. It stops itself once nothing is busy, rather than being
 * set up and torn down around every invocation.
 */
export const memoryWatchdog = {
  busy: new Set<{ checkMemory(): Promise<void> }>(),
  timer: undefined as NodeJS.Timeout | undefined,
  watch(env: { checkMemory(): Promise<void> }) {
    this.busy.add(env);
    this.timer ??= setInterval(() => {
      if (this.busy.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
      for (const watched of this.busy) void watched.checkMemory();
    }, 100).unref();
  },
  unwatch(env: { checkMemory(): Promise<void> }) {
    this.busy.delete(env);
  },
};

/**
 * The resident memory of a process and its descendants from /proc, or undefined once the process
 * has gone: a bootstrap's runtime may be its child. Shared pages count once per process, so this
 * errs high, as a memory limit should.
 */
export async function treeResidentBytes(pid: number): Promise<number | undefined> {
  const own = await residentBytes(pid);
  if (own === undefined) return undefined;
  let total = own;
  for (const child of await childrenOf(pid)) total += (await treeResidentBytes(child)) ?? 0;
  return total;
}

/** A process's children, from each of its threads' /proc children list (empty where the kernel has none). */
async function childrenOf(pid: number): Promise<number[]> {
  try {
    const tasks = await readdir(`/proc/${pid}/task`);
    const lists = await Promise.all(tasks.map((tid) => readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '')));
    return lists.flatMap((list) => list.split(' ').filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** A process's resident memory from /proc, or undefined once it has gone. */
async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const statm = await readFile(`/proc/${pid}/statm`, 'utf8');
    return Number(statm.split(' ')[1]) * PAGE_SIZE;
  } catch {
    return undefined;
  }
}
