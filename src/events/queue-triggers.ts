/**
 * Queue triggers (`events: - queue: name`): workers take batches from a queue and
 * run the function with an SQS-shaped event. Success deletes the batch; with
 * ReportBatchItemFailures only the reported messages stay; a failure leaves the
 * whole batch to reappear after its visibility timeout, and the queue's redrive
 * policy moves a message that keeps failing to its dead-letter queue.
 */
import type { Dispatcher } from '../dispatch/index.js';
import { isBerthError } from '../errors.js';
import type { FunctionSpec, QueueTriggerSpec } from '../types.js';
import { initialWorkers } from '../scaling/autoscaler.js';
import { QueueConsumer, retryLater } from './consumer.js';
import type { Delivery, QueueService } from './queues.js';
import { queueArn, sequenceNumber } from './queues.js';

export class QueueTriggers {
  private readonly consumers = new Map<string, { trigger: QueueTriggerSpec; consumer: QueueConsumer }>();

  constructor(
    private readonly queues: QueueService,
    private readonly dispatcher: Dispatcher,
    private readonly onError: (err: unknown) => void,
  ) {}

  deploy(functions: FunctionSpec[]): void {
    const wanted = new Set<string>();
    for (const spec of functions) {
      for (const trigger of spec.queueTriggers) {
        const key = `${spec.name}\u0000${trigger.queue}`;
        wanted.add(key);
        const running = this.consumers.get(key);
        if (running && JSON.stringify(running.trigger) === JSON.stringify(trigger)) continue;
        running?.consumer.stop().catch(this.onError);
        const consumer = new QueueConsumer(
          this.queues,
          { queue: trigger.queue, concurrency: trigger.maxConcurrency, batchSize: trigger.batchSize, maxBatchingWindowMs: trigger.maxBatchingWindowSeconds * 1000 },
          (batch) => this.run(spec.name, trigger, batch),
          this.onError,
        );
        this.consumers.set(key, { trigger, consumer: consumer.start(initialWorkers(spec)) });
      }
    }
    for (const [key, { consumer }] of this.consumers) {
      if (wanted.has(key)) continue;
      consumer.stop().catch(this.onError);
      this.consumers.delete(key);
    }
  }

  /** The workers of a function's queue triggers, for the autoscaler. */
  consumersOf(functionName: string): QueueConsumer[] {
    const prefix = `${functionName}\u0000`;
    return [...this.consumers].filter(([key]) => key.startsWith(prefix)).map(([, { consumer }]) => consumer);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.consumers.values()].map(({ consumer }) => consumer.stop()));
    this.consumers.clear();
  }

  private async run(functionName: string, trigger: QueueTriggerSpec, batch: Delivery[]): Promise<void> {
    let result;
    try {
      result = await this.dispatcher.invoke({ functionName, event: sqsEvent(trigger.queue, batch), trigger: 'queue' });
    } catch (err) {
      if (isBerthError(err, 'BERTH_ERR_SHUTTING_DOWN')) return;
      throw err;
    }
    const failed = result.status !== 'succeeded' ? 'all' : trigger.reportBatchItemFailures ? failedItems(result.payload, batch) : new Set<string>();
    for (const delivery of batch) {
      if (failed === 'all' || failed.has(delivery.message.id)) retryLater(this.queues, trigger.queue, delivery);
      else this.queues.delete(trigger.queue, delivery.receiptHandle);
    }
  }
}

/** The message ids a partial batch response reports, or 'all' when the response is malformed. */
function failedItems(payload: unknown, batch: Delivery[]): Set<string> | 'all' {
  const failures = (payload as { batchItemFailures?: unknown } | null | undefined)?.batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) return 'all';
  const ids = new Set(batch.map((d) => d.message.id));
  const failed = new Set<string>();
  for (const item of failures) {
    const id = (item as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || !ids.has(id)) return 'all';
    failed.add(id);
  }
  return failed;
}

function sqsEvent(queue: string, batch: Delivery[]) {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  return {
    Records: batch.map(({ message, receiptHandle, body }) => ({
      messageId: message.id,
      receiptHandle,
      body,
      attributes: {
        ApproximateReceiveCount: String(message.receiveCount),
        SentTimestamp: String(message.sentAt),
        SenderId: '000000000000',
        ApproximateFirstReceiveTimestamp: String(message.firstReceiveAt ?? message.sentAt),
        ...(message.groupId !== null ? { MessageGroupId: message.groupId, SequenceNumber: sequenceNumber(message.seq) } : {}),
        ...(message.dedupId !== null ? { MessageDeduplicationId: message.dedupId } : {}),
        ...(message.deadLetterSource ? { DeadLetterQueueSourceArn: queueArn(message.deadLetterSource) } : {}),
      },
      messageAttributes: Object.fromEntries(
        Object.entries(message.attributes ?? {}).map(([name, value]) => [
          name,
          {
            dataType: value.DataType,
            ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
            ...(value.BinaryValue !== undefined ? { binaryValue: value.BinaryValue } : {}),
            stringListValues: value.StringListValues ?? [],
            binaryListValues: value.BinaryListValues ?? [],
          },
        ]),
      ),
      md5OfBody: message.md5,
      ...(message.md5OfAttributes ? { md5OfMessageAttributes: message.md5OfAttributes } : {}),
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn(queue),
      awsRegion: region,
    })),
  };
}
