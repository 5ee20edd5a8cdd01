/**
 * Topics fan one published message out to their subscriptions: queues (SNS
 * envelope or raw), functions (an SNS-shaped async event) and HTTP endpoints
 * (through an internal queue, so delivery survives restarts and is retried).
 * All copies are enqueued before the publisher hears back.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { SubscriptionSpec, TopicSpec } from '../types.js';
import type { AsyncInvoker } from './async-invoke.js';
import { QueueConsumer } from './consumer.js';
import type { Mailer } from './mailer.js';
import { EventError } from './errors.js';
import { matchesFilter } from './filter-policy.js';
import type { Idempotency } from './idempotency.js';
import type { MessageAttributes } from './md5.js';
import type { Delivery, QueueService } from './queues.js';

export interface PublishInput {
  message: string;
  subject?: string;
  attributes?: MessageAttributes;
  /** A repeat with the same key inside the idempotency window delivers nothing and gets the first id. */
  idempotencyKey?: string;
}

export interface PublishResult {
  messageId: string;
  /** Subscriptions the message was delivered to (after filter policies). */
  deliveries: number;
  duplicate: boolean;
}

export interface TopicServiceOptions {
  queues: QueueService;
  asyncInvoker: AsyncInvoker;
  idempotency: Idempotency;
  idempotencyWindowSeconds: number;
  onError: (err: unknown) => void;
  /** Hears each message once it is stored, in publish order (real-time subscribers). */
  onStored?: (topic: string, envelope: SnsEnvelope) => void;
  /** Logs a delivery to an HTTP or email subscriber that failed for good. */
  onDeliveryFailed: (detail: { topic: string; to: string; messageId: string; attempts: number; error: string }) => void;
}

const HTTP_DELIVERY_TIMEOUT_MS = 15_000;
const RETRY_BASE_SECONDS = 1;

export function topicArn(name: string): string {
  return `arn:aws:sns:${process.env.AWS_REGION ?? 'us-east-1'}:000000000000:${name}`;
}

export class TopicService {
  private topics = new Map<string, TopicSpec>();
  private readonly deliverers = new Map<string, QueueConsumer>();

  constructor(private readonly options: TopicServiceOptions) {}

  /** `mailer` sends for email subscriptions; config refuses those without `smtp:`. */
  deploy(topics: Map<string, TopicSpec>, mailer?: Mailer): void {
    this.topics = topics;
    const wanted = new Set<string>();
    for (const topic of topics.values()) {
      for (const sub of topic.subscriptions) {
        if (!('http' in sub) && !('email' in sub)) continue;
        const queue = 'http' in sub ? httpQueueName(topic.name, sub.http) : emailQueueName(topic.name, sub.email);
        const send = 'http' in sub ? (envelope: SnsEnvelope, attempt: number) => this.post(sub.http, envelope, attempt) : (envelope: SnsEnvelope) => mail(mailer!, sub.email, topic.name, envelope);
        wanted.add(queue);
        this.options.queues.ensureInternal({
          name: queue,
          fifo: false,
          visibilityTimeoutSeconds: HTTP_DELIVERY_TIMEOUT_MS / 1000 + 5,
          delaySeconds: 0,
          retentionSeconds: 14 * 86_400,
          contentBasedDeduplication: false,
        });
        this.deliverers.get(queue)?.stop().catch(this.options.onError);
        this.deliverers.set(
          queue,
          new QueueConsumer(
            this.options.queues,
            { queue, concurrency: 4, batchSize: 1, maxBatchingWindowMs: 0 },
            ([d]) => this.attempt(topic.name, 'http' in sub ? sub.http : sub.email.join(', '), sub.retries, queue, d!, send),
            this.options.onError,
          ).start(),
        );
      }
    }
    for (const [queue, deliverer] of this.deliverers) {
      if (wanted.has(queue)) continue;
      deliverer.stop().catch(this.options.onError);
      this.deliverers.delete(queue);
    }
  }

  list(): TopicSpec[] {
    return [...this.topics.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  has(name: string): boolean {
    return this.topics.has(name);
  }

  async publish(name: string, input: PublishInput): Promise<PublishResult> {
    const topic = this.topics.get(name);
    if (!topic) throw new EventError('TopicNotFound', `Topic does not exist: ${name}. Declare it under topics: in berth.yml.`);
    if (input.idempotencyKey === undefined) return { ...(await this.fanOut(topic, input)), duplicate: false };
    const once = await this.options.idempotency.once<Omit<PublishResult, 'duplicate'>>(
      `topic:${name}`,
      input.idempotencyKey,
      this.options.idempotencyWindowSeconds * 1000,
      (claim) => this.fanOut(topic, input, claim),
    );
    return { ...once.value, duplicate: once.repeated };
  }

  async stop(): Promise<void> {
    await Promise.all([...this.deliverers.values()].map((d) => d.stop()));
    this.deliverers.clear();
  }

  private async fanOut(topic: TopicSpec, input: PublishInput, claim?: (result: Omit<PublishResult, 'duplicate'>) => void): Promise<Omit<PublishResult, 'duplicate'>> {
    const messageId = randomUUID();
    const timestamp = new Date().toISOString();
    const matching = topic.subscriptions.map((sub, index) => ({ sub, index })).filter(({ sub }) => matchesFilter(sub.filter, input.attributes));
    const envelope = snsEnvelope(topic.name, messageId, timestamp, input);
    // Issued in one turn, so the copies (and the idempotency key) commit in one transaction.
    const sends = matching.map(({ sub, index }) => this.deliver(topic.name, sub, index, envelope, input));
    const result = { messageId, deliveries: matching.length };
    claim?.(result);
    await Promise.all(sends);
    this.options.onStored?.(topic.name, envelope);
    return result;
  }

  private deliver(topic: string, sub: SubscriptionSpec, index: number, envelope: SnsEnvelope, input: PublishInput): Promise<unknown> {
    const { queues, asyncInvoker } = this.options;
    if ('queue' in sub) {
      return sub.raw
        ? queues.send(sub.queue, { body: input.message, ...(input.attributes ? { attributes: input.attributes } : {}) })
        : queues.send(sub.queue, { body: JSON.stringify(envelope) });
    }
    if ('function' in sub) {
      const { SigningCertURL, UnsubscribeURL, ...rest } = envelope;
      const event = {
        Records: [
          {
            EventVersion: '1.0',
            EventSubscriptionArn: `${topicArn(topic)}:${index}`,
            EventSource: 'aws:sns',
            Sns: { ...rest, SigningCertUrl: SigningCertURL, UnsubscribeUrl: UnsubscribeURL },
          },
        ],
      };
      return asyncInvoker.enqueue(sub.function, event, { trigger: 'topic' });
    }
    const queue = 'http' in sub ? httpQueueName(topic, sub.http) : emailQueueName(topic, sub.email);
    return queues.send(queue, { body: JSON.stringify(envelope) });
  }

  /**
   * One delivery attempt to an HTTP or email subscriber: done, or back after a backoff that
   * doubles from 1 s (with jitter) until `retries` are used up, then dropped and reported.
   */
  private async attempt(topic: string, to: string, retries: number, queue: string, delivery: Delivery, send: (envelope: SnsEnvelope, attempt: number) => Promise<void>): Promise<void> {
    const envelope = JSON.parse(delivery.body) as SnsEnvelope;
    const attempt = delivery.message.receiveCount;
    let error: string;
    try {
      await send(envelope, attempt);
      this.options.queues.delete(queue, delivery.receiptHandle);
      return;
    } catch (err) {
      error = (err as Error).message;
    }
    if (attempt <= retries) {
      const step = RETRY_BASE_SECONDS * 2 ** (attempt - 1);
      this.options.queues.changeVisibility(queue, delivery.receiptHandle, step / 2 + (Math.random() * step) / 2, { lease: false });
      return;
    }
    this.options.queues.delete(queue, delivery.receiptHandle);
    this.options.onDeliveryFailed({ topic, to, messageId: envelope.MessageId, attempts: attempt, error });
  }

  /** As SNS posts to an HTTP(S) subscriber; anything but 2xx is a failed attempt. */
  private async post(url: string, envelope: SnsEnvelope, attempt: number): Promise<void> {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'text/plain; charset=UTF-8',
        'x-amz-sns-message-type': 'Notification',
        'x-amz-sns-message-id': envelope.MessageId,
        'x-amz-sns-topic-arn': envelope.TopicArn,
        'x-berth-attempt': String(attempt),
      },
      body: JSON.stringify(envelope),
      signal: AbortSignal.timeout(HTTP_DELIVERY_TIMEOUT_MS),
    });
    await response.arrayBuffer().catch(() => {});
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
  }
}

/** As SNS mails an email subscriber: the subject, and the message as the text. */
function mail(mailer: Mailer, to: string[], topic: string, envelope: SnsEnvelope): Promise<void> {
  return mailer.send({ to, subject: envelope.Subject ?? `Notification from ${topic}`, text: envelope.Message });
}

/** Named by the URL, not the position, so reordering subscriptions keeps pending deliveries with their endpoint. */
function httpQueueName(topic: string, url: string): string {
  return `http:${topic}#${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;
}

function emailQueueName(topic: string, to: string[]): string {
  return `email:${topic}#${createHash('sha256').update(to.join(',')).digest('hex').slice(0, 16)}`;
}

export type SnsEnvelope = ReturnType<typeof snsEnvelope>;

function snsEnvelope(topic: string, messageId: string, timestamp: string, input: PublishInput) {
  return {
    Type: 'Notification',
    MessageId: messageId,
    TopicArn: topicArn(topic),
    ...(input.subject !== undefined ? { Subject: input.subject } : {}),
    Message: input.message,
    Timestamp: timestamp,
    SignatureVersion: '1',
    Signature: '',
    SigningCertURL: '',
    UnsubscribeURL: '',
    MessageAttributes: Object.fromEntries(
      Object.entries(input.attributes ?? {}).map(([name, value]) => [
        name,
        { Type: value.DataType, Value: value.BinaryValue ?? value.StringValue ?? '' },
      ]),
    ),
  };
}
