/**
 * events: durable async work. Queues (SQS semantics) are the one mechanism; async
 * invocations, queue triggers, topic fan-out, schedules and webhooks all become
 * messages in them, so each is stored before it is acknowledged and survives a
 * restart. Data flows trigger → queue → consumer → dispatcher.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { Dispatcher } from '../dispatch/index.js';
import type { Store } from '../store/index.js';
import type { Destination, ProjectSpec } from '../types.js';
import { AsyncInvoker } from './async-invoke.js';
import type { QueueConsumer } from './consumer.js';
import { FileBlobStore, type BlobStore } from './blobs.js';
import { Idempotency } from './idempotency.js';
import { Journal } from './journal.js';
import { smtpMailer } from './mailer.js';
import { QueueTriggers } from './queue-triggers.js';
import { QueueService } from './queues.js';
import { RealtimeHub } from './realtime.js';
import { Scheduler } from './schedules.js';
import { TopicService } from './topics.js';

export { asyncQueueName } from './async-invoke.js';
export { EventError, isEventError } from './errors.js';
export type { QueueService } from './queues.js';
export type { TopicService } from './topics.js';

export interface EventsOptions {
  project: ProjectSpec;
  dataDir: string;
  store: Store;
  dispatcher: Dispatcher;
  logger: Logger;
  /** Run async work here (consumers, subscriptions, schedules); off for a one-off in-process invoke. */
  background: boolean;
}

export class Events {
  private constructor(
    readonly journal: Journal,
    readonly idempotency: Idempotency,
    readonly blobs: BlobStore,
    readonly queues: QueueService,
    readonly asyncInvoker: AsyncInvoker,
    readonly topics: TopicService,
    readonly realtime: RealtimeHub,
    private readonly queueTriggers: QueueTriggers,
    private readonly schedules: Scheduler,
    private project: ProjectSpec,
    private readonly background: boolean,
  ) {}

  static async open(options: EventsOptions): Promise<Events> {
    const { project, store, dispatcher, logger } = options;
    const onError = (err: unknown) => logger.error({ err }, 'event processing failed');
    const journal = new Journal(store, (err) => logger.error({ err }, 'event store write failed'));
    const idempotency = new Idempotency(store, journal);
    const blobs = new FileBlobStore(path.join(options.dataDir, 'blobs'));
    const queues = await QueueService.open(
      {
        store,
        journal,
        idempotency,
        blobs,
        maxPayloadBytes: project.events.maxPayloadBytes,
        inlineThresholdBytes: project.events.inlineThresholdBytes,
        idempotencyWindowSeconds: project.events.idempotencyWindowSeconds,
        onError,
      },
      [...project.queues.values()],
    );
    // Destinations and topics refer to each other; `events` is set before anything is delivered.
    let events: Events | undefined;
    const deliver = (destination: Destination, record: unknown) => events!.deliver(destination, record);
    const asyncInvoker = new AsyncInvoker({ queues, dispatcher, deliver, onError });
    const realtime = new RealtimeHub(onError, (detail) => logger.warn(detail, 'messages for an MQTT broker were dropped'));
    const topics = new TopicService({
      queues,
      asyncInvoker,
      idempotency,
      idempotencyWindowSeconds: project.events.idempotencyWindowSeconds,
      onError,
      onStored: (topic, envelope) => realtime.deliver(topic, envelope),
      onDeliveryFailed: (detail) => logger.warn(detail, 'topic delivery to an HTTP or email subscriber failed for good'),
    });
    const queueTriggers = new QueueTriggers(queues, dispatcher, onError);
    const schedules = await Scheduler.open({ store, journal, onError });
    events = new Events(journal, idempotency, blobs, queues, asyncInvoker, topics, realtime, queueTriggers, schedules, project, options.background);
    events.deploy(project);
    void store.deleteExpiredKeys(Date.now()).catch(onError);
    return events;
  }

  get idempotencyWindowMs(): number {
    return this.project.events.idempotencyWindowSeconds * 1000;
  }

  /** Starts or updates queues, consumers and subscriptions for a (re)loaded project. */
  deploy(project: ProjectSpec): void {
    this.project = project;
    const functions = [...project.functions.values()];
    this.queues.declare([...project.queues.values()]);
    this.asyncInvoker.deploy(functions, this.background);
    if (!this.background) return;
    this.topics.deploy(project.topics, project.smtp && smtpMailer(project.smtp));
    this.realtime.deploy(project.topics);
    this.queueTriggers.deploy(functions);
    this.schedules.deploy(
      functions.map((fn) => ({
        schedules: fn.schedules,
        fire: (event, options) => this.asyncInvoker.enqueue(fn.name, event, { trigger: 'schedule', ...options }),
      })),
    );
  }

  /** Every consumer running a function's queued work (async events, queue triggers), for the autoscaler. */
  consumersOf(functionName: string): QueueConsumer[] {
    const own = this.asyncInvoker.consumerOf(functionName);
    return [...(own ? [own] : []), ...this.queueTriggers.consumersOf(functionName)];
  }

  deliver(destination: Destination, record: unknown): Promise<unknown> {
    const body = JSON.stringify(record);
    if ('queue' in destination) return this.queues.send(destination.queue, { body });
    if ('topic' in destination) return this.topics.publish(destination.topic, { message: body });
    return this.asyncInvoker.enqueue(destination.function, record, { trigger: 'async' });
  }

  /** Stops consuming; what is in flight finishes (the dispatcher drains it) and its writes commit. */
  async stop(): Promise<void> {
    this.queues.close();
    await Promise.all([this.asyncInvoker.stop(), this.topics.stop(), this.realtime.stop(), this.queueTriggers.stop(), this.schedules.stop()]);
    await this.journal.commit().catch(() => {});
  }
}
