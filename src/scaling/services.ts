/**
 * Long-running services (`mode: service` with a `start` export, or with nothing to trigger its
 * handler): each of `minInstances` instances runs for as long as Berth does, as a task of an ECS
 * service would.
 *  - start(): run once in its own environment; the instance lives as long as that process.
 *  - a handler with no events: a poller, invoked again as soon as each call returns.
 * An instance that crashes, exits or fails is restarted after a backoff that doubles from 1 s up
 * to 30 s, and resets once the instance has stayed up for a minute (or a poll succeeded).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Dispatcher } from '../dispatch/index.js';
import { Recorder } from '../dispatch/recorder.js';
import type { Sandbox } from '../runtime/environment.js';
import type { Runtime } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import type { FunctionSpec } from '../types.js';

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const HEALTHY_AFTER_MS = 60_000;

/** Whether a function runs as long-lived instances here rather than on demand. */
export function isLongRunning(spec: FunctionSpec): boolean {
  if (spec.mode !== 'service') return false;
  const triggered = spec.routes.length + spec.queueTriggers.length + spec.schedules.length + spec.webhooks.length > 0;
  return spec.startExport !== undefined || !triggered;
}

export interface ServiceInstanceStats {
  id: string;
  state: 'starting' | 'running' | 'backoff';
  restarts: number;
  pid?: number;
}

export interface ServiceRunnerOptions {
  runtime: Runtime;
  dispatcher: Dispatcher;
  store: Store;
  logger: Logger;
}

export class ServiceRunner {
  private readonly instances = new Map<string, { spec: FunctionSpec; instances: Instance[] }>();
  private readonly recorder: Recorder;

  constructor(private readonly options: ServiceRunnerOptions) {
    this.recorder = new Recorder(options.store, (err) => options.logger.error({ err }, 'service log write failed'));
  }

  /** Starts the instances of new or changed services and stops those of removed ones. */
  deploy(functions: FunctionSpec[]): void {
    const wanted = new Map(functions.filter(isLongRunning).map((spec) => [spec.name, spec]));
    for (const [name, running] of this.instances) {
      const next = wanted.get(name);
      if (next && JSON.stringify(next) === JSON.stringify(running.spec)) {
        wanted.delete(name);
        continue;
      }
      for (const instance of running.instances) void instance.stop();
      this.instances.delete(name);
    }
    for (const spec of wanted.values()) {
      const instances = Array.from({ length: spec.minInstances }, (_, i) => new Instance(spec, i + 1, this.options, this.recorder));
      this.instances.set(spec.name, { spec, instances });
    }
  }

  stats(functionName: string): ServiceInstanceStats[] | undefined {
    return this.instances.get(functionName)?.instances.map((instance) => instance.stats());
  }

  async stop(): Promise<void> {
    await Promise.all([...this.instances.values()].flatMap(({ instances }) => instances.map((instance) => instance.stop())));
    this.instances.clear();
    await this.recorder.flush();
  }
}

class Instance {
  private readonly id: string;
  private readonly abort = new AbortController();
  private state: ServiceInstanceStats['state'] = 'starting';
  private restarts = 0;
  private env: Sandbox | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly spec: FunctionSpec,
    number: number,
    private readonly options: ServiceRunnerOptions,
    private readonly recorder: Recorder,
  ) {
    this.id = `${spec.name}-instance-${number}`;
    this.done = this.supervise();
  }

  stats(): ServiceInstanceStats {
    return { id: this.id, state: this.state, restarts: this.restarts, ...(this.env?.pid !== undefined ? { pid: this.env.pid } : {}) };
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.env?.kill();
    await this.done;
  }

  private async supervise(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      const startedAt = Date.now();
      this.state = 'starting';
      const why = this.spec.startExport !== undefined ? await this.runStart() : await this.poll();
      if (this.abort.signal.aborted) return;
      failures = Date.now() - startedAt >= HEALTHY_AFTER_MS || why.healthy ? 1 : failures + 1;
      const delayMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (failures - 1));
      this.restarts++;
      this.state = 'backoff';
      this.log(`Service instance ${this.id} ${why.reason}; restarting in ${delayMs / 1000} s\n`);
      this.options.logger.warn({ function: this.spec.name, instance: this.id, reason: why.reason, restartInMs: delayMs }, 'service instance restarting');
      await sleep(delayMs, undefined, { signal: this.abort.signal }).catch(() => {});
    }
  }

  /** Runs start() in a fresh environment until its process ends. */
  private async runStart(): Promise<{ reason: string; healthy?: boolean }> {
    const pool = this.options.runtime.pool(this.spec.name)!;
    let exited!: () => void;
    const exit = new Promise<void>((resolve) => (exited = resolve));
    const env = pool.spawnDetached(() => exited());
    this.env = env;
    await env.ready();
    const init = env.takeInit();
    if (init?.log) this.log(init.log);
    const failure = env.initFailure;
    if (failure) {
      env.kill();
      await exit;
      return { reason: `failed to start: ${failure.errorType}: ${failure.errorMessage}` };
    }
    if (this.abort.signal.aborted) {
      env.kill();
      return { reason: 'stopped' };
    }
    env.startService(this.id, (text) => this.log(text));
    this.state = 'running';
    await exit;
    return { reason: `exited (${env.exitDescription})` };
  }

  /** Calls the handler again and again through the dispatcher, so every call is an invocation with its record. */
  private async poll(): Promise<{ reason: string; healthy?: boolean }> {
    let polls = 0;
    while (!this.abort.signal.aborted) {
      this.state = 'running';
      let result;
      try {
        result = await this.options.dispatcher.invoke({ functionName: this.spec.name, event: {}, trigger: 'service' });
      } catch (err) {
        return { reason: `could not be invoked: ${(err as Error).message}`, healthy: polls > 0 };
      }
      if (result.status !== 'succeeded') return { reason: `failed: ${result.error?.errorType}: ${result.error?.errorMessage}`, healthy: polls > 0 };
      polls++;
    }
    return { reason: 'stopped' };
  }

  private log(text: string): void {
    this.recorder.log({ invocationId: this.id, functionName: this.spec.name, tenantId: null, ts: Date.now(), text });
  }
}
