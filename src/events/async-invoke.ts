/**
 * Async invocations. An event is a message in its function's internal queue
 * (`fn:<name>`), so it is durable before the caller hears 202 and survives a
 * restart. Workers run it through the dispatcher; a failure is retried with
 * exponential backoff and jitter, keeping the invocation id, until `retries` or
 * `maxEventAge` runs out; then the failure destination and dead-letter queue get it.
 */
import { checkTenant, type Dispatcher } from '../dispatch/index.js';
import { BerthError, isBerthError } from '../errors.js';
import { invocationId } from '../ids.js';
import { functionArn } from '../runtime/index.js';
import type { EventWrite } from '../store/index.js';
import type { Destination, FunctionSpec, InvocationResult, Trigger } from '../types.js';
import { initialWorkers } from '../scaling/autoscaler.js';
import { QueueConsumer } from './consumer.js';
import type { Delivery, EventMeta, QueueService } from './queues.js';

export interface EnqueueOptions {
  tenantId?: string;
  clientContext?: unknown;
  trigger?: Trigger;
  /** A repeat with the same key inside the idempotency window enqueues nothing and gets the first id. */
  idempotencyKey?: string;
  /** Store writes that commit in the same transaction as the event (see SendInput.writes). */
  writes?: EventWrite[];
}

export interface AsyncInvokerOptions {
  queues: QueueService;
  dispatcher: Dispatcher;
  /** Sends a destination record on (to a queue, a topic or another function). */
  deliver: (destination: Destination, record: unknown) => Promise<unknown>;
  onError: (err: unknown) => void;
}

/** Beyond the function's timeout, how long a running event stays invisible before it may run again. */
const VISIBILITY_MARGIN_SECONDS = 60;

export function asyncQueueName(functionName: string): string {
  return `fn:${functionName}`;
}

export class AsyncInvoker {
  private specs = new Map<string, FunctionSpec>();
  private readonly consumers = new Map<string, QueueConsumer>();

  constructor(private readonly options: AsyncInvokerOptions) {}

  /** Creates the internal queue and workers of every function; later deploys update them. */
  /** With `consume: false` events can be enqueued here but run elsewhere (a one-off in-process CLI invoke). */
  deploy(functions: FunctionSpec[], consume = true): void {
    const { queues } = this.options;
    this.specs = new Map(functions.map((spec) => [spec.name, spec]));
    for (const spec of functions) {
      const name = asyncQueueName(spec.name);
      queues.ensureInternal({
        name,
        fifo: false,
        visibilityTimeoutSeconds: spec.timeoutSeconds + VISIBILITY_MARGIN_SECONDS,
        delaySeconds: 0,
        // Age is enforced by maxEventAge; retention only bounds what a removed function leaves behind.
        retentionSeconds: Math.max(spec.async.maxEventAgeSeconds * 2, 14 * 86_400),
        contentBasedDeduplication: false,
        // Events are grouped by tenant and taken in turn: one tenant's backlog never holds up another's.
        fairByGroup: true,
      });
      const running = this.consumers.get(spec.name);
      if (!consume || (running && running.concurrency === spec.async.concurrency)) continue;
      void running?.stop();
      this.consumers.set(
        spec.name,
        new QueueConsumer(
          queues,
          { queue: name, concurrency: spec.async.concurrency, batchSize: 1, maxBatchingWindowMs: 0 },
          ([delivery]) => this.run(spec.name, delivery!),
          this.options.onError,
        ).start(initialWorkers(spec)),
      );
    }
    for (const [name, consumer] of this.consumers) {
      if (this.specs.has(name)) continue;
      void consumer.stop();
      this.consumers.delete(name);
    }
  }

  /** The workers running a function's async events, for the autoscaler. */
  consumerOf(functionName: string): QueueConsumer | undefined {
    return this.consumers.get(functionName);
  }

  /** Stores the event; resolves with its invocation id once it is durable. */
  async enqueue(functionName: string, event: unknown, options: EnqueueOptions = {}): Promise<{ id: string; duplicate: boolean }> {
    const spec = this.specs.get(functionName);
    if (!spec) throw new BerthError('BERTH_ERR_FUNCTION_NOT_FOUND', { fn: functionName });
    checkTenant(spec, options.tenantId);
    const meta: EventMeta = {
      ...(options.tenantId !== undefined ? { tenantId: options.tenantId } : {}),
      ...(options.clientContext !== undefined ? { clientContext: options.clientContext } : {}),
      trigger: options.trigger ?? 'async',
    };
    const result = await this.options.queues.send(asyncQueueName(functionName), {
      id: invocationId(),
      body: JSON.stringify(event) ?? 'null',
      meta,
      ...(options.tenantId !== undefined ? { groupId: options.tenantId } : {}),
      ...(options.idempotencyKey !== undefined ? { dedupId: options.idempotencyKey } : {}),
      ...(options.writes !== undefined ? { writes: options.writes } : {}),
    });
    return { id: result.messageId, duplicate: result.duplicate };
  }

  /** Async events of a function not yet finished: waiting, retrying or running. */
  backlog(functionName: string): number {
    if (!this.specs.has(functionName)) return 0;
    const { visible, inflight, delayed } = this.options.queues.depth(asyncQueueName(functionName));
    return visible + inflight + delayed;
  }

  /** Where an async event that has not finished is: waiting (first run or a retry's backoff) or running. */
  pending(id: string): { functionName: string; status: 'queued' | 'running'; attempts: number } | undefined {
    for (const functionName of this.specs.keys()) {
      const message = this.options.queues.find(asyncQueueName(functionName), id);
      if (message) return { functionName, status: message.leased ? 'running' : 'queued', attempts: message.receiveCount };
    }
    return undefined;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.consumers.values()].map((consumer) => consumer.stop()));
    this.consumers.clear();
  }

  private async run(functionName: string, delivery: Delivery): Promise<void> {
    const { queues, dispatcher } = this.options;
    const spec = this.specs.get(functionName);
    const queue = asyncQueueName(functionName);
    if (!spec) return; // removed by a reload; the message stays for when it comes back
    const { message, receiptHandle } = delivery;
    const attempt = message.receiveCount;
    const event: unknown = JSON.parse(delivery.body);

    if (Date.now() - message.sentAt > spec.async.maxEventAgeSeconds * 1000) {
      await this.finish(spec, delivery, event, 'EventAgeExceeded', undefined);
      return;
    }

    let result: InvocationResult;
    try {
      result = await dispatcher.invoke({
        functionName,
        event,
        id: message.id,
        attempt,
        trigger: (message.meta?.trigger as Trigger | undefined) ?? 'async',
        ...(message.meta?.tenantId !== undefined ? { tenantId: message.meta.tenantId } : {}),
        ...(message.meta?.clientContext !== undefined ? { clientContext: message.meta.clientContext } : {}),
      });
    } catch (err) {
      // Shutting down: the lease is released on restart and the event runs then.
      if (isBerthError(err, 'BERTH_ERR_SHUTTING_DOWN')) return;
      throw err;
    }

    if (result.status === 'succeeded') {
      await this.finish(spec, delivery, event, 'Success', result);
    } else if (attempt <= spec.async.retries) {
      queues.changeVisibility(queue, receiptHandle, retryDelaySeconds(spec, attempt), { lease: false });
    } else {
      await this.finish(spec, delivery, event, 'RetriesExhausted', result);
    }
  }

  /** Sends the outcome to its destinations and deletes the event, in one transaction where possible. */
  private async finish(
    spec: FunctionSpec,
    delivery: Delivery,
    event: unknown,
    condition: 'Success' | 'RetriesExhausted' | 'EventAgeExceeded',
    result: InvocationResult | undefined,
  ): Promise<void> {
    const { message } = delivery;
    const sends: Promise<unknown>[] = [];
    const destination = condition === 'Success' ? spec.async.onSuccess : spec.async.onFailure;
    if (destination) {
      sends.push(
        this.options.deliver(destination, {
          version: '1.0',
          timestamp: new Date().toISOString(),
          requestContext: { requestId: message.id, functionArn: `${functionArn(spec.name)}:$LATEST`, condition, approximateInvokeCount: message.receiveCount },
          requestPayload: event,
          responseContext: {
            statusCode: 200,
            executedVersion: '$LATEST',
            ...(result && result.status !== 'succeeded' ? { functionError: 'Unhandled' } : {}),
          },
          responsePayload: result ? (result.status === 'succeeded' ? result.payload : result.error) : undefined,
        }),
      );
    }
    if (condition !== 'Success' && spec.async.deadLetterQueue) {
      // Lambda's dead-letter format: the original event, with the error in attributes.
      const error = result?.error ?? { errorType: condition, errorMessage: `Event older than maxEventAge (${spec.async.maxEventAgeSeconds} s)` };
      sends.push(
        this.options.queues.send(spec.async.deadLetterQueue, {
          body: delivery.body,
          attributes: {
            RequestID: { DataType: 'String', StringValue: message.id },
            ErrorCode: { DataType: 'Number', StringValue: '200' },
            ErrorMessage: { DataType: 'String', StringValue: `${error.errorType}: ${error.errorMessage}`.slice(0, 1024) },
          },
        }),
      );
    }
    this.options.queues.delete(asyncQueueName(spec.name), delivery.receiptHandle);
    const outcomes = await Promise.allSettled(sends);
    for (const outcome of outcomes) if (outcome.status === 'rejected') this.options.onError(outcome.reason);
  }
}

/** Exponential backoff with "equal jitter": half the step is fixed, half random. */
function retryDelaySeconds(spec: FunctionSpec, attempt: number): number {
  const step = Math.min(spec.async.maxRetryDelaySeconds, spec.async.retryDelaySeconds * 2 ** (attempt - 1));
  return step / 2 + Math.random() * (step / 2);
}
