/**
 * Workers that take messages from a queue inside Berth and hand them to a
 * handler: async events to their function, queue messages to a trigger,
 * deliveries to HTTP subscribers. Each worker waits on the queue (woken by a
 * send, no polling), so `concurrency` bounds how many batches run at once.
 */
import { setMaxListeners } from 'node:events';
import type { Delivery, QueueService } from './queues.js';

export interface ConsumerOptions {
  queue: string;
  concurrency: number;
  batchSize: number;
  /** Wait up to this long for a batch to fill once its first message is there. */
  maxBatchingWindowMs: number;
  visibilityTimeoutSeconds?: number;
}

const WAIT_SECONDS = 20;

/** A failed message comes back after its queue's visibility timeout, as on SQS. */
export function retryLater(queues: QueueService, queue: string, delivery: Delivery): void {
  queues.changeVisibility(queue, delivery.receiptHandle, queues.spec(queue).visibilityTimeoutSeconds, { lease: false });
}

export class QueueConsumer {
  private readonly abort = new AbortController();
  /** Each worker's own stop signal (aborted by stop() too), newest last: scaling in stops the newest. */
  private readonly workers: { stop: AbortController; done: Promise<void> }[] = [];
  /** Every worker still running, including those told to stop that are finishing a batch. */
  private readonly finishing = new Set<Promise<void>>();
  private handling = 0;

  constructor(
    private readonly queues: QueueService,
    private readonly options: ConsumerOptions,
    private readonly handle: (batch: Delivery[]) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {
    // Every worker's waiting receive listens on this one signal: as many listeners as workers, not a leak.
    setMaxListeners(options.concurrency + 10, this.abort.signal);
  }

  get queue(): string {
    return this.options.queue;
  }

  get batchSize(): number {
    return this.options.batchSize;
  }

  /** The most workers this consumer runs. */
  get concurrency(): number {
    return this.options.concurrency;
  }

  get workerCount(): number {
    return this.workers.length;
  }

  /** Workers handling a batch right now. */
  get busy(): number {
    return this.handling;
  }

  /** Starts `workers` workers (all of them unless told); the autoscaler resizes later. */
  start(workers = this.options.concurrency): this {
    this.resize(workers);
    return this;
  }

  /**
   * Runs `count` workers (at most `concurrency`). A worker told to stop while waiting stops at
   * once; one handling a batch finishes it first, so scaling in never interrupts an invocation.
   */
  resize(count: number): void {
    const target = Math.max(0, Math.min(count, this.options.concurrency));
    while (!this.abort.signal.aborted && this.workers.length < target) {
      const stop = new AbortController();
      const worker = { stop, done: Promise.resolve() };
      worker.done = this.work(AbortSignal.any([this.abort.signal, stop.signal])).finally(() => {
        const index = this.workers.indexOf(worker);
        if (index >= 0) this.workers.splice(index, 1);
        this.finishing.delete(worker.done);
      });
      this.workers.push(worker);
      this.finishing.add(worker.done);
    }
    while (this.workers.length > target) {
      const worker = this.workers.pop()!;
      worker.stop.abort();
    }
  }

  /** Stops taking messages and waits for the batches being handled. */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.finishing);
  }

  private async work(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let batch: Delivery[] = [];
      try {
        batch = await this.receive(signal);
        if (batch.length === 0) continue;
        this.handling++;
        try {
          await this.handle(batch);
        } finally {
          this.handling--;
        }
      } catch (err) {
        this.onError(err);
        // Leases end here when the handler could not: the batch comes back after the visibility timeout.
        for (const delivery of batch) {
          try {
            retryLater(this.queues, this.options.queue, delivery);
          } catch {
            // Already deleted or returned.
          }
        }
        // A queue that keeps failing (deleted under us) must not spin.
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  private async receive(signal: AbortSignal): Promise<Delivery[]> {
    const { queue, batchSize, maxBatchingWindowMs, visibilityTimeoutSeconds } = this.options;
    const base = { lease: true, signal, ...(visibilityTimeoutSeconds !== undefined ? { visibilityTimeoutSeconds } : {}) };
    const batch = await this.queues.receive(queue, { ...base, max: batchSize, waitSeconds: WAIT_SECONDS });
    if (batch.length === 0 || batch.length >= batchSize || maxBatchingWindowMs <= 0) return batch;
    const deadline = Date.now() + maxBatchingWindowMs;
    while (batch.length < batchSize && !signal.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      batch.push(...(await this.queues.receive(queue, { ...base, max: batchSize - batch.length, waitSeconds: left / 1000, first: true })));
    }
    return batch;
  }
}
