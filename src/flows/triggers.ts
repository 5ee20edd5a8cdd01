/**
 * What starts flow runs besides `berth flow run` and the API: schedules and queue messages
 * (webhooks are routes of the gateway). Each start is exactly-once with what caused it: the
 * schedule's tick row, or the delete of the queue message, commits with the run's record.
 *  - A schedule's run gets the EventBridge "Scheduled Event" as its input.
 *  - A queue message's run gets its body, parsed when it is JSON. A worker waits for its run to
 *    finish before it takes the next message, so a trigger's maxConcurrency bounds the runs.
 */
import { QueueConsumer } from '../events/consumer.js';
import type { Journal } from '../events/journal.js';
import type { QueueService } from '../events/queues.js';
import { Scheduler } from '../events/schedules.js';
import type { Store } from '../store/index.js';
import type { QueueTriggerSpec } from '../types.js';
import type { FlowEngine } from './engine.js';
import type { FlowSpec } from './types.js';

export interface FlowTriggersOptions {
  engine: FlowEngine;
  store: Store;
  journal: Journal;
  queues: QueueService;
  onError: (err: unknown) => void;
}

export class FlowTriggers {
  private readonly consumers = new Map<string, { trigger: QueueTriggerSpec; consumer: QueueConsumer }>();

  private constructor(
    private readonly options: FlowTriggersOptions,
    private readonly scheduler: Scheduler,
  ) {}

  static async open(options: FlowTriggersOptions): Promise<FlowTriggers> {
    return new FlowTriggers(options, await Scheduler.open(options));
  }

  deploy(flows: FlowSpec[]): void {
    const { engine, journal, queues, onError } = this.options;
    this.scheduler.deploy(
      flows.map((flow) => ({
        schedules: flow.schedules,
        fire: async (event, { writes }) => {
          await engine.start(flow.name, event, { trigger: 'schedule', alongside: () => journal.write(...writes) });
          return { duplicate: false };
        },
      })),
    );
    const wanted = new Set<string>();
    for (const flow of flows) {
      for (const trigger of flow.queueTriggers) {
        const key = `${flow.name}\u0000${trigger.queue}`;
        wanted.add(key);
        const running = this.consumers.get(key);
        if (running && JSON.stringify(running.trigger) === JSON.stringify(trigger)) continue;
        running?.consumer.stop().catch(onError);
        const consumer = new QueueConsumer(
          queues,
          { queue: trigger.queue, concurrency: trigger.maxConcurrency, batchSize: 1, maxBatchingWindowMs: 0 },
          async ([delivery]) => {
            const { done } = await engine.start(flow.name, parseBody(delivery!.body), {
              trigger: 'queue',
              alongside: () => queues.delete(trigger.queue, delivery!.receiptHandle),
            });
            await done;
          },
          onError,
        );
        this.consumers.set(key, { trigger, consumer: consumer.start() });
      }
    }
    for (const [key, { consumer }] of this.consumers) {
      if (wanted.has(key)) continue;
      consumer.stop().catch(onError);
      this.consumers.delete(key);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.scheduler.stop(), ...[...this.consumers.values()].map(({ consumer }) => consumer.stop())]);
    this.consumers.clear();
  }
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
