/**
 * scaling: how many environments each function runs. The autoscaler sizes queued work from
 * the backlog; the service runner keeps long-running services' instances up. Both act through
 * the existing path (consumer → dispatcher → pool), so limits and priorities still apply.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from '../dispatch/index.js';
import type { Events } from '../events/index.js';
import type { Runtime } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import type { FunctionSpec } from '../types.js';
import { Autoscaler } from './autoscaler.js';
import { ServiceRunner, type ServiceInstanceStats } from './services.js';

export interface FunctionScaling {
  mode: FunctionSpec['mode'];
  /** Environments the function should have: the autoscaler's figure for queued work, else those in use. */
  desired: number;
  /** Environments running an invocation, being started, idle after one, and started but never used. */
  running: number;
  starting: number;
  idle: number;
  ready: number;
  queueDepth: number;
  oldestAgeMs: number;
  /** A long-running service's instances. */
  instances?: ServiceInstanceStats[];
}

export interface ScalingOptions {
  runtime: Runtime;
  dispatcher: Dispatcher;
  events: Events;
  store: Store;
  logger: Logger;
}

export class Scaling {
  private readonly autoscaler: Autoscaler;
  private readonly services: ServiceRunner;

  constructor(private readonly options: ScalingOptions) {
    const { runtime, dispatcher, events, store, logger } = options;
    this.autoscaler = new Autoscaler({
      functions: () => runtime.functions(),
      consumersOf: (name) => events.consumersOf(name),
      queueDepth: (queue) => events.queues.depth(queue),
      functionCap: (name) => {
        const limits = dispatcher.admission.current;
        const own = limits.functions.get(name) ?? {};
        return Math.min(limits.accountConcurrency, own.maxConcurrency ?? Infinity, own.reservedConcurrency ?? Infinity);
      },
      logger: logger.child({ component: 'autoscaler' }),
    });
    this.services = new ServiceRunner({ runtime, dispatcher, store, logger: logger.child({ component: 'services' }) });
  }

  deploy(functions: FunctionSpec[]): void {
    this.services.deploy(functions);
    this.autoscaler.tick();
  }

  snapshot(spec: FunctionSpec): FunctionScaling {
    const environments = this.options.runtime.pool(spec.name)?.stats() ?? { ready: 0, idle: 0, busy: 0, starting: 0 };
    const decision = this.autoscaler.decision(spec.name);
    const instances = this.services.stats(spec.name);
    const floor = spec.mode === 'service' ? spec.minInstances : spec.provisionedConcurrency;
    return {
      mode: spec.mode,
      desired: decision?.desired ?? Math.max(floor, environments.busy + environments.starting),
      // start() instances run in environments of their own, outside the pool.
      running: environments.busy + (spec.startExport !== undefined ? (instances ?? []).filter((i) => i.state === 'running').length : 0),
      starting: environments.starting,
      idle: environments.idle,
      ready: environments.ready,
      queueDepth: decision?.queueDepth ?? 0,
      oldestAgeMs: decision?.oldestAgeMs ?? 0,
      ...(instances ? { instances } : {}),
    };
  }

  async stop(): Promise<void> {
    this.autoscaler.stop();
    await this.services.stop();
  }
}
