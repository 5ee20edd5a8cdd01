/**
 * The autoscaler sizes every function's queued work: how many consumer workers (and so
 * environments, one invocation each) run for its async events and queue triggers. It looks at
 * the in-flight count, the backlog and the age of the oldest waiting message five times a
 * second, so a backlog is answered within a fraction of a second, not a minute.
 *
 *  - Scale up: one environment per batch waiting, on top of those busy, within the function's
 *    limits, added at most `scaleUpRate` per second (a token bucket, full after a quiet second).
 *  - Scale in: only once the queue keeps up (its oldest message is young), and only by telling
 *    workers to stop taking batches; a worker finishes the batch it has, so no running
 *    invocation is cut short. The environments left idle go after the function's idleTimeout.
 *  - A function has one idle worker per queue even at zero, so the first message after a quiet
 *    spell runs at once instead of waiting for a tick; a service keeps minInstances workers.
 *
 * Synchronous work (HTTP, RequestResponse) is not sized here: it starts environments as it
 * arrives, and admission puts it ahead of queued work.
 */
import type { Logger } from 'pino';
import type { QueueConsumer } from '../events/consumer.js';
import type { FunctionSpec } from '../types.js';

const TICK_MS = 200;
/** The queue is keeping up while its oldest message is younger than this; only then scale in. */
const KEEPING_UP_MS = 1000;

export interface ScalingInputs {
  functions(): FunctionSpec[];
  consumersOf(functionName: string): QueueConsumer[];
  queueDepth(queue: string): { visible: number; oldestAgeMs: number };
  /** The most invocations the function's limits allow at once (Infinity when none). */
  functionCap(functionName: string): number;
  logger: Logger;
}

export interface ScalingDecision {
  desired: number;
  /** Workers handling a batch. */
  inFlight: number;
  /** Messages waiting in the function's queues, and the oldest one's age. */
  queueDepth: number;
  oldestAgeMs: number;
}

interface FunctionState extends ScalingDecision {
  /** Environments the function may still add right now (token bucket). */
  tokens: number;
  at: number;
}

/** Workers a consumer starts with, before the autoscaler's first look: a service's minimum, else one. */
export function initialWorkers(spec: FunctionSpec): number {
  return spec.mode === 'service' ? Math.max(1, spec.minInstances) : 1;
}

export class Autoscaler {
  private readonly states = new Map<string, FunctionState>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly inputs: ScalingInputs) {
    this.timer = setInterval(() => this.tick(), TICK_MS).unref();
  }

  /** The latest decision for a function with queued work; undefined for one without. */
  decision(functionName: string): ScalingDecision | undefined {
    const state = this.states.get(functionName);
    return state && { desired: state.desired, inFlight: state.inFlight, queueDepth: state.queueDepth, oldestAgeMs: state.oldestAgeMs };
  }

  tick(now = Date.now()): void {
    const present = new Set<string>();
    for (const spec of this.inputs.functions()) {
      const consumers = this.inputs.consumersOf(spec.name);
      if (consumers.length === 0) continue;
      present.add(spec.name);
      this.size(spec, consumers, now);
    }
    for (const name of this.states.keys()) if (!present.has(name)) this.states.delete(name);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private size(spec: FunctionSpec, consumers: QueueConsumer[], now: number): void {
    const floor = spec.mode === 'service' ? spec.minInstances : 0;
    const state = this.states.get(spec.name) ?? { desired: floor, inFlight: 0, queueDepth: 0, oldestAgeMs: 0, tokens: spec.scaleUpRate, at: now };
    let inFlight = 0;
    let queueDepth = 0;
    let oldestAgeMs = 0;
    let workersMax = 0;
    const wanted = consumers.map((consumer) => {
      const depth = this.inputs.queueDepth(consumer.queue);
      inFlight += consumer.busy;
      queueDepth += depth.visible;
      oldestAgeMs = Math.max(oldestAgeMs, depth.oldestAgeMs);
      workersMax += consumer.concurrency;
      return Math.min(consumer.concurrency, consumer.busy + Math.ceil(depth.visible / consumer.batchSize));
    });
    const cap = Math.max(floor, Math.min(workersMax, this.inputs.functionCap(spec.name)));
    const target = Math.min(cap, Math.max(floor, sum(wanted)));

    state.tokens = Math.min(spec.scaleUpRate, state.tokens + (spec.scaleUpRate * (now - state.at)) / 1000);
    state.at = now;
    const previous = state.desired;
    if (target > state.desired) {
      const step = Math.min(target - state.desired, Math.floor(state.tokens));
      state.desired += step;
      state.tokens -= step;
    } else if (target < state.desired && (queueDepth === 0 || oldestAgeMs < KEEPING_UP_MS)) {
      state.desired = target;
    }
    Object.assign(state, { inFlight, queueDepth, oldestAgeMs });
    this.states.set(spec.name, state);
    if (state.desired !== previous) {
      this.inputs.logger.info(
        { function: spec.name, from: previous, to: state.desired, target, cap, inFlight, queueDepth, oldestAgeMs },
        state.desired > previous ? 'scale up' : 'scale down',
      );
    }
    const minWorkers = spec.mode === 'service' ? 0 : 1;
    shareOut(state.desired, wanted).forEach((workers, i) => consumers[i]!.resize(Math.max(minWorkers, workers)));
  }
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * Splits `total` workers over queues in proportion to what each wants; with nothing wanted
 * (a quiet service), evenly, so each of a service's queues has a worker waiting.
 */
function shareOut(total: number, wanted: number[]): number[] {
  const wantedTotal = sum(wanted);
  if (wantedTotal === 0) return wanted.map((_, i) => Math.floor(total / wanted.length) + (i < total % wanted.length ? 1 : 0));
  if (wantedTotal <= total) {
    const shares = [...wanted];
    shares[0]! += total - wantedTotal;
    return shares;
  }
  const shares = wanted.map((w) => Math.floor((total * w) / wantedTotal));
  for (let left = total - sum(shares), i = 0; left > 0; left--, i = (i + 1) % shares.length) shares[i]!++;
  return shares;
}
