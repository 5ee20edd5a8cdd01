/**
 * Durable queues with SQS semantics, held in memory and journaled to the store.
 *
 * The store is the truth: a send is acknowledged only after its insert commits, and
 * on start every message is loaded back. Memory holds the order: a ready list per
 * queue (per message group for FIFO), and one timer heap for delayed messages and
 * visibility timeouts. Receivers wait on the queue and are woken by a send, not by
 * polling. Receives, visibility changes and deletes are journaled write-behind: after
 * a crash a message can at worst be delivered again, never lost.
 *
 * Queues whose names contain ":" are internal (a function's async events, deliveries
 * to HTTP subscribers): the same machinery, invisible to the SQS API.
 */
import { createHash, randomUUID } from 'node:crypto';
import Denque from 'denque';
import TinyQueue from 'tinyqueue';
import type { EventWrite, MessageRecord, QueueRecord, Store } from '../store/index.js';
import type { QueueSpec } from '../types.js';
import type { BlobStore } from './blobs.js';
import { EventError } from './errors.js';
import type { Idempotency } from './idempotency.js';
import type { Journal } from './journal.js';
import { md5Hex, md5OfAttributes, type MessageAttributes } from './md5.js';

/** What Berth needs to run an internal event; absent on user messages. */
export interface EventMeta {
  tenantId?: string;
  clientContext?: unknown;
  trigger?: string;
}

export interface SendInput {
  body: string;
  attributes?: MessageAttributes;
  delaySeconds?: number;
  groupId?: string;
  /** FIFO deduplication id, or on a standard queue an idempotency key. */
  dedupId?: string;
  meta?: EventMeta;
  /** A preset message id (an async invocation's id); otherwise a new UUID. */
  id?: string;
  /** Store writes that commit in the same transaction as the message (a schedule's tick), so neither exists without the other. */
  writes?: EventWrite[];
}

export interface SendResult {
  messageId: string;
  md5OfBody: string;
  md5OfAttributes?: string;
  sequenceNumber?: string;
  /** True when the send repeated an earlier one inside its deduplication window. */
  duplicate: boolean;
}

export interface Delivery {
  message: LiveMessage;
  receiptHandle: string;
  body: string;
}

export interface ReceiveOptions {
  max: number;
  visibilityTimeoutSeconds?: number;
  waitSeconds?: number;
  /** The receiver runs inside Berth: if Berth stops, the message is visible again at once on restart. */
  lease?: boolean;
  signal?: AbortSignal;
  /** Be served before other waiting receivers: a consumer filling a batch it has started. */
  first?: boolean;
}

/** A message as the service holds it: the stored fields, parsed, plus its place in the queue. */
interface LiveMessage extends Omit<MessageRecord, 'attributes' | 'meta'> {
  attributes: MessageAttributes | undefined;
  md5OfAttributes: string | undefined;
  meta: EventMeta | undefined;
  state: 'delayed' | 'ready' | 'inflight' | 'gone';
  /** Bumped whenever visibleAt changes, so stale timer entries are ignored. */
  version: number;
  /** Set when the message was moved here by a queue's dead-letter redrive. */
  deadLetterSource?: string;
}
export type { LiveMessage };

interface Waiter {
  queue: LiveQueue;
  options: ReceiveOptions;
  resolve: (messages: LiveMessage[]) => void;
  timer?: NodeJS.Timeout;
  onAbort?: () => void;
  done: boolean;
}

const FIFO_DEDUP_WINDOW_MS = 5 * 60_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const RETENTION_SWEEP_MS = 1000;
/** Below this many entries the timer heap is never compacted (see compactTimers). */
const COMPACT_TIMERS_ABOVE = 4096;

class LiveQueue {
  readonly messages = new Map<number, LiveMessage>();
  readonly ready = new Denque<LiveMessage>();
  /** FIFO: messages per group in send order, and the groups with nothing in flight. */
  readonly groups = new Map<string, LiveMessage[]>();
  readonly readyGroups = new Denque<string>();
  readonly inflightByGroup = new Map<string, number>();
  readonly waiters: Waiter[] = [];
  inflight = 0;
  delayed = 0;
  lastModified: number;

  constructor(
    public spec: QueueSpec,
    readonly origin: QueueRecord['origin'] | 'internal',
    readonly createdAt: number,
  ) {
    this.lastModified = createdAt;
  }

  get visible(): number {
    return this.messages.size - this.inflight - this.delayed;
  }
}

export interface QueueServiceOptions {
  store: Store;
  journal: Journal;
  idempotency: Idempotency;
  blobs: BlobStore;
  maxPayloadBytes: number;
  inlineThresholdBytes: number;
  idempotencyWindowSeconds: number;
  onError: (err: unknown) => void;
}

export class QueueService {
  private readonly queues = new Map<string, LiveQueue>();
  private readonly timers = new TinyQueue<{ at: number; message: LiveMessage; version: number }>([], (a, b) => a.at - b.at);
  private cancelTimer: () => void = () => {};
  private timerAt = Infinity;
  private seq = 0;
  /** Messages of queues not declared now (a function removed from berth.yml), kept in the store. */
  private orphans = new Map<string, MessageRecord[]>();
  private closed = false;

  private readonly retentionSweep: NodeJS.Timeout;

  private constructor(private readonly options: QueueServiceOptions) {
    this.retentionSweep = setInterval(() => this.dropExpired(Date.now()), RETENTION_SWEEP_MS).unref();
  }

  static async open(options: QueueServiceOptions, declared: QueueSpec[]): Promise<QueueService> {
    const service = new QueueService(options);
    const now = Date.now();
    for (const record of await options.store.loadQueues()) {
      service.queues.set(record.name, new LiveQueue(record.spec as QueueSpec, record.origin, record.createdAt));
    }
    service.declare(declared);
    for (const record of await options.store.loadMessages()) {
      service.seq = Math.max(service.seq, record.seq);
      const queue = service.queues.get(record.queue);
      if (!queue) {
        const list = service.orphans.get(record.queue) ?? [];
        list.push(record);
        service.orphans.set(record.queue, list);
        continue;
      }
      service.restore(queue, record, now);
    }
    return service;
  }

  /** Creates or updates the queues berth.yml declares. */
  declare(specs: QueueSpec[]): void {
    const now = Date.now();
    for (const spec of specs) {
      const existing = this.queues.get(spec.name);
      if (existing) existing.spec = spec;
      else this.queues.set(spec.name, new LiveQueue(spec, 'config', now));
      this.options.journal.writeBehind({
        op: 'saveQueue',
        queue: { name: spec.name, spec, origin: 'config', createdAt: existing?.createdAt ?? now },
      });
    }
  }

  /** An internal queue (async events of a function, HTTP deliveries); its messages come back from the store. */
  ensureInternal(spec: QueueSpec): void {
    const existing = this.queues.get(spec.name);
    if (existing) {
      existing.spec = spec;
      return;
    }
    const queue = new LiveQueue(spec, 'internal', Date.now());
    this.queues.set(spec.name, queue);
    const orphans = this.orphans.get(spec.name);
    if (orphans) {
      this.orphans.delete(spec.name);
      const now = Date.now();
      for (const record of orphans) this.restore(queue, record, now);
    }
  }

  has(name: string): boolean {
    return this.queues.has(name);
  }

  spec(name: string): QueueSpec {
    return this.get(name).spec;
  }

  /** User-visible queues (not internal ones), sorted by name. */
  list(): QueueSpec[] {
    return [...this.queues.values()]
      .filter((q) => q.origin !== 'internal')
      .map((q) => q.spec)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async create(spec: QueueSpec): Promise<{ created: boolean }> {
    const existing = this.queues.get(spec.name);
    if (existing) {
      if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) throw new EventError('QueueNameExists', `A queue named ${spec.name} already exists with different attributes. Create it with the attributes it has, or choose another name.`);
      return { created: false };
    }
    const queue = new LiveQueue(spec, 'api', Date.now());
    this.options.journal.write({ op: 'saveQueue', queue: { name: spec.name, spec, origin: 'api', createdAt: queue.createdAt } });
    await this.options.journal.commit();
    this.queues.set(spec.name, queue);
    return { created: true };
  }

  async remove(name: string): Promise<void> {
    const queue = this.get(name);
    this.options.journal.write({ op: 'dropQueue', name });
    await this.options.journal.commit();
    this.queues.delete(name);
    for (const message of queue.messages.values()) this.discard(message);
    for (const waiter of queue.waiters.splice(0)) this.finishWaiter(waiter, []);
  }

  async purge(name: string): Promise<void> {
    const queue = this.get(name);
    this.options.journal.write({ op: 'purge', queue: name });
    await this.options.journal.commit();
    for (const message of [...queue.messages.values()]) this.drop(queue, message);
  }

  attributes(name: string): Record<string, string> {
    const queue = this.get(name);
    const { spec } = queue;
    const attributes: Record<string, string> = {
      ApproximateNumberOfMessages: String(queue.visible),
      ApproximateNumberOfMessagesNotVisible: String(queue.inflight),
      ApproximateNumberOfMessagesDelayed: String(queue.delayed),
      VisibilityTimeout: String(spec.visibilityTimeoutSeconds),
      DelaySeconds: String(spec.delaySeconds),
      MessageRetentionPeriod: String(spec.retentionSeconds),
      MaximumMessageSize: String(this.options.maxPayloadBytes),
      ReceiveMessageWaitTimeSeconds: '0',
      CreatedTimestamp: String(Math.floor(queue.createdAt / 1000)),
      LastModifiedTimestamp: String(Math.floor(queue.lastModified / 1000)),
      QueueArn: queueArn(name),
    };
    if (spec.deadLetterQueue) {
      attributes.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: queueArn(spec.deadLetterQueue), maxReceiveCount: spec.maxReceiveCount ?? 10 });
    }
    if (spec.fifo) {
      attributes.FifoQueue = 'true';
      attributes.ContentBasedDeduplication = String(spec.contentBasedDeduplication);
    }
    return attributes;
  }

  /** A message by id, while it is in the queue (a linear scan: for status lookups, not hot paths). */
  find(name: string, id: string): LiveMessage | undefined {
    const queue = this.queues.get(name);
    if (!queue) return undefined;
    for (const message of queue.messages.values()) if (message.id === id) return message;
    return undefined;
  }

  /** Counts for dashboards and autoscaling. */
  depth(name: string): { visible: number; inflight: number; delayed: number; oldestAgeMs: number } {
    const queue = this.get(name);
    return { visible: queue.visible, inflight: queue.inflight, delayed: queue.delayed, oldestAgeMs: oldestWaitingAge(queue) };
  }

  /**
   * Sends one message; resolves once it is durable. Sends issued together (a batch,
   * a topic's fan-out) share one transaction.
   */
  async send(name: string, input: SendInput): Promise<SendResult> {
    const queue = this.get(name);
    const { spec } = queue;
    const size = Buffer.byteLength(input.body, 'utf8') + attributesSize(input.attributes);
    if (size > this.options.maxPayloadBytes) {
      throw new EventError('InvalidMessageContents', `Message of ${size} bytes is larger than the ${this.options.maxPayloadBytes}-byte limit (events.maxPayload in berth.yml).`);
    }
    if (spec.fifo) {
      if (!input.groupId) throw new EventError('MissingParameter', 'The request must contain the parameter MessageGroupId.');
      if (input.delaySeconds) throw new EventError('InvalidParameterValue', 'Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.');
    }
    const dedupId =
      input.dedupId ?? (spec.fifo && spec.contentBasedDeduplication ? createHash('sha256').update(input.body).digest('hex') : undefined);
    if (spec.fifo && dedupId === undefined) {
      throw new EventError('InvalidParameterValue', 'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly');
    }
    if (dedupId === undefined) return this.insert(queue, input, undefined);

    const scope = spec.fifo ? `fifo:${name}` : `queue:${name}`;
    const windowMs = spec.fifo ? FIFO_DEDUP_WINDOW_MS : this.options.idempotencyWindowSeconds * 1000;
    const once = await this.options.idempotency.once<SendResult>(scope, dedupId, windowMs, (claim) => this.insert(queue, { ...input, dedupId }, claim));
    return once.repeated ? { ...once.value, duplicate: true } : once.value;
  }

  private async insert(queue: LiveQueue, input: SendInput, claim?: (result: SendResult) => void): Promise<SendResult> {
    const { spec } = queue;
    const now = Date.now();
    const seq = ++this.seq;
    const id = input.id ?? randomUUID();
    const bodyBytes = Buffer.byteLength(input.body, 'utf8');
    let blobKey: string | null = null;
    if (bodyBytes > this.options.inlineThresholdBytes) {
      blobKey = `m${seq}-${id}`;
      await this.options.blobs.put(blobKey, input.body);
    }
    const delayMs = (input.delaySeconds ?? spec.delaySeconds) * 1000;
    const message: LiveMessage = {
      seq,
      queue: spec.name,
      id,
      body: blobKey ? null : input.body,
      blobKey,
      size: bodyBytes,
      // Only SQS clients and queue triggers read it; internal queues skip the hashing.
      md5: queue.origin === 'internal' ? '' : md5Hex(input.body),
      attributes: input.attributes && Object.keys(input.attributes).length > 0 ? input.attributes : undefined,
      md5OfAttributes: md5OfAttributes(input.attributes),
      meta: input.meta,
      groupId: input.groupId ?? null,
      dedupId: input.dedupId ?? null,
      sentAt: now,
      visibleAt: now + delayMs,
      receiveCount: 0,
      firstReceiveAt: null,
      expiresAt: now + spec.retentionSeconds * 1000,
      leased: false,
      state: 'delayed',
      version: 0,
    };
    const result: SendResult = {
      messageId: id,
      md5OfBody: message.md5,
      ...(message.md5OfAttributes ? { md5OfAttributes: message.md5OfAttributes } : {}),
      ...(spec.fifo ? { sequenceNumber: sequenceNumber(seq) } : {}),
      duplicate: false,
    };
    this.options.journal.write({ op: 'insert', message: toRecord(message) }, ...(input.writes ?? []));
    claim?.(result);
    try {
      await this.options.journal.commit();
    } catch (err) {
      if (blobKey) void this.options.blobs.delete(blobKey).catch(() => {});
      throw new EventError('ServiceUnavailable', `The message could not be stored, so it was not accepted: ${(err as Error).message}. Retry once the store is writable.`, err);
    }
    if (this.queues.get(spec.name) !== queue) return result; // deleted meanwhile
    queue.messages.set(seq, message);
    queue.lastModified = now;
    if (delayMs > 0) {
      queue.delayed++;
      this.schedule(message);
    } else {
      this.makeReady(queue, message);
    }
    return result;
  }

  /**
   * Receives up to `max` messages, waiting up to `waitSeconds` for the first one.
   * Each received message is invisible for the visibility timeout, until deleted.
   */
  async receive(name: string, options: ReceiveOptions): Promise<Delivery[]> {
    const queue = this.get(name);
    let messages = this.take(queue, options);
    if (messages.length === 0 && (options.waitSeconds ?? 0) > 0 && !this.closed) {
      messages = await new Promise<LiveMessage[]>((resolve) => {
        const waiter: Waiter = { queue, options, resolve, done: false };
        waiter.timer = setTimeout(() => this.finishWaiter(waiter, []), options.waitSeconds! * 1000);
        if (options.signal) {
          waiter.onAbort = () => this.finishWaiter(waiter, []);
          options.signal.addEventListener('abort', waiter.onAbort, { once: true });
        }
        if (options.first) queue.waiters.unshift(waiter);
        else queue.waiters.push(waiter);
      });
    }
    // Inline bodies need no await: only blob-stored ones are read.
    return Promise.all(
      messages.map((message): Delivery | Promise<Delivery> =>
        message.body !== null
          ? { message, receiptHandle: receiptHandle(message), body: message.body }
          : this.options.blobs.get(message.blobKey!).then((body) => ({ message, receiptHandle: receiptHandle(message), body: body.toString('utf8') })),
      ),
    );
  }

  /** Deletes a received message. A stale handle (the message was received again since) deletes nothing, as in SQS. */
  delete(name: string, handle: string): void {
    const queue = this.get(name);
    const message = this.byHandle(queue, handle);
    if (!message) return;
    this.drop(queue, message);
    this.options.journal.writeBehind({ op: 'delete', seq: message.seq });
  }

  /** Makes a received message visible again after `seconds` (0: at once). */
  changeVisibility(name: string, handle: string, seconds: number, options: { lease?: boolean } = {}): void {
    const queue = this.get(name);
    const message = this.byHandle(queue, handle);
    if (!message || message.state !== 'inflight') {
      throw new EventError('MessageNotInflight', 'The message referred to is not in flight: it was deleted, became visible again or was received again since. Use the receipt handle of its latest receive.');
    }
    message.leased = options.lease ?? message.leased;
    if (seconds <= 0) {
      this.returnToQueue(queue, message);
    } else {
      message.visibleAt = Date.now() + seconds * 1000;
      message.version++;
      this.schedule(message);
    }
    this.journalUpdate(message);
  }

  /** Stops the timers and releases every waiting receiver with nothing. */
  close(): void {
    this.closed = true;
    this.cancelTimer();
    clearInterval(this.retentionSweep);
    for (const queue of this.queues.values()) for (const waiter of queue.waiters.splice(0)) this.finishWaiter(waiter, []);
  }

  // --- internals --------------------------------------------------------

  /**
   * Drops messages past their queue's retention, also from queues nobody reads. A queue's
   * messages are held in send order and share one retention, so the expired ones are at the
   * front: the sweep stops at the first that is not.
   */
  private dropExpired(now: number): void {
    for (const queue of this.queues.values()) {
      for (const message of queue.messages.values()) {
        if (message.expiresAt > now) break;
        this.drop(queue, message);
        this.options.journal.writeBehind({ op: 'delete', seq: message.seq });
      }
    }
  }

  private get(name: string): LiveQueue {
    const queue = this.queues.get(name);
    if (!queue) throw new EventError('QueueDoesNotExist', `The specified queue does not exist: ${name}. Create it (SQS CreateQueue) or declare it under queues: in berth.yml.`);
    return queue;
  }

  private restore(queue: LiveQueue, record: MessageRecord, now: number): void {
    const message: LiveMessage = {
      ...record,
      attributes: record.attributes ? (JSON.parse(record.attributes) as MessageAttributes) : undefined,
      md5OfAttributes: undefined,
      meta: record.meta ? (JSON.parse(record.meta) as EventMeta) : undefined,
      state: 'delayed',
      version: 0,
    };
    message.md5OfAttributes = md5OfAttributes(message.attributes);
    queue.messages.set(message.seq, message);
    // Its consumer was this process, which stopped: nobody holds it any more.
    if (message.leased) {
      message.leased = false;
      message.visibleAt = now;
    }
    if (message.visibleAt <= now) this.makeReady(queue, message);
    else if (message.receiveCount > 0) {
      message.state = 'inflight';
      queue.inflight++;
      if (message.groupId !== null && queue.spec.fifo) queue.inflightByGroup.set(message.groupId, (queue.inflightByGroup.get(message.groupId) ?? 0) + 1);
      this.schedule(message);
    } else {
      queue.delayed++;
      this.schedule(message);
    }
  }

  private take(queue: LiveQueue, options: ReceiveOptions): LiveMessage[] {
    const taken: LiveMessage[] = [];
    const now = Date.now();
    const max = Math.max(1, options.max);
    if (queue.spec.fairByGroup) {
      // One message per group in turn; groups are never blocked by what they have in flight.
      while (taken.length < max && queue.readyGroups.length > 0) {
        const groupId = queue.readyGroups.shift()!;
        const list = queue.groups.get(groupId);
        const message = list?.shift();
        if (list && list.length > 0) queue.readyGroups.push(groupId);
        else queue.groups.delete(groupId);
        if (message && this.claim(queue, message, now, options)) taken.push(message);
      }
    } else if (queue.spec.fifo) {
      while (taken.length < max && queue.readyGroups.length > 0) {
        const groupId = queue.readyGroups.shift()!;
        const list = queue.groups.get(groupId);
        while (list && list.length > 0 && taken.length < max) {
          const message = list.shift()!;
          if (this.claim(queue, message, now, options)) taken.push(message);
        }
        if (list && list.length === 0) queue.groups.delete(groupId);
        // A group with nothing in flight can be taken again (its message expired or moved).
        if (list && list.length > 0 && !queue.inflightByGroup.get(groupId)) queue.readyGroups.push(groupId);
      }
    } else {
      while (taken.length < max && queue.ready.length > 0) {
        const message = queue.ready.shift()!;
        if (this.claim(queue, message, now, options)) taken.push(message);
      }
    }
    return taken;
  }

  /** Marks a ready message in flight, or expires or dead-letters it instead. */
  private claim(queue: LiveQueue, message: LiveMessage, now: number, options: ReceiveOptions): boolean {
    if (message.state !== 'ready') return false;
    if (now >= message.expiresAt) {
      this.drop(queue, message);
      this.options.journal.writeBehind({ op: 'delete', seq: message.seq });
      return false;
    }
    const { spec } = queue;
    if (spec.deadLetterQueue && spec.maxReceiveCount !== undefined && message.receiveCount >= spec.maxReceiveCount) {
      const target = this.queues.get(spec.deadLetterQueue);
      if (target) {
        this.moveTo(queue, target, message);
        return false;
      }
    }
    message.state = 'inflight';
    queue.inflight++;
    if (message.groupId !== null && queue.spec.fifo) queue.inflightByGroup.set(message.groupId, (queue.inflightByGroup.get(message.groupId) ?? 0) + 1);
    message.receiveCount++;
    message.firstReceiveAt ??= now;
    message.leased = options.lease ?? false;
    message.visibleAt = now + (options.visibilityTimeoutSeconds ?? spec.visibilityTimeoutSeconds) * 1000;
    message.version++;
    // A consumer inside Berth always ends its lease (delete or visibility change; the function
    // timeout bounds the run), and may hold it while its invocation waits for admission: no timer,
    // so waiting for capacity never makes the message visible to a second consumer. Nor is the
    // receive journaled: if Berth stops first the message must be redelivered at once anyway,
    // which is what its stored, un-received state says.
    if (!message.leased) {
      this.schedule(message);
      this.journalUpdate(message);
    }
    return true;
  }

  private moveTo(from: LiveQueue, to: LiveQueue, message: LiveMessage): void {
    this.drop(from, message, { keepBody: true });
    message.queue = to.spec.name;
    message.receiveCount = 0;
    message.firstReceiveAt = null;
    message.leased = false;
    message.visibleAt = Date.now();
    message.deadLetterSource = from.spec.name;
    message.groupId = to.spec.fifo ? message.groupId : null;
    to.messages.set(message.seq, message);
    to.lastModified = Date.now();
    this.journalUpdate(message);
    this.makeReady(to, message);
  }

  private makeReady(queue: LiveQueue, message: LiveMessage): void {
    message.state = 'ready';
    const group = readyGroupOf(queue, message);
    if (group !== undefined) {
      const list = queue.groups.get(group);
      if (list) {
        // Keep send order inside the group, also for a message coming back from flight.
        let at = list.length;
        while (at > 0 && list[at - 1]!.seq > message.seq) at--;
        list.splice(at, 0, message);
      } else {
        queue.groups.set(group, [message]);
        if (!queue.inflightByGroup.get(group)) queue.readyGroups.push(group);
      }
    } else {
      queue.ready.push(message);
    }
    this.serveWaiters(queue);
  }

  private returnToQueue(queue: LiveQueue, message: LiveMessage): void {
    this.leaveFlight(queue, message);
    message.visibleAt = Date.now();
    message.version++;
    message.leased = false;
    this.makeReady(queue, message);
  }

  /** Ends the in-flight state; a FIFO group with nothing else in flight becomes available. */
  private leaveFlight(queue: LiveQueue, message: LiveMessage): void {
    if (message.state !== 'inflight') return;
    queue.inflight--;
    if (message.groupId !== null && queue.spec.fifo) {
      const left = (queue.inflightByGroup.get(message.groupId) ?? 1) - 1;
      if (left > 0) queue.inflightByGroup.set(message.groupId, left);
      else {
        queue.inflightByGroup.delete(message.groupId);
        if ((queue.groups.get(message.groupId)?.length ?? 0) > 0) {
          queue.readyGroups.push(message.groupId);
          this.serveWaiters(queue);
        }
      }
    }
  }

  /** Removes a message from memory (the caller journals the delete). */
  private drop(queue: LiveQueue, message: LiveMessage, options: { keepBody?: boolean } = {}): void {
    if (message.state === 'gone') return;
    if (message.state === 'inflight') this.leaveFlight(queue, message);
    else if (message.state === 'delayed') queue.delayed--;
    else if (message.state === 'ready' && readyGroupOf(queue, message) !== undefined) {
      const list = queue.groups.get(readyGroupOf(queue, message)!);
      const at = list?.indexOf(message) ?? -1;
      if (at >= 0) list!.splice(at, 1);
    }
    // Standard ready lists skip messages that are no longer ready when they are taken.
    message.state = 'gone';
    queue.messages.delete(message.seq);
    queue.lastModified = Date.now();
    if (!options.keepBody) this.discard(message);
  }

  private discard(message: LiveMessage): void {
    message.state = 'gone';
    const { blobKey } = message;
    if (blobKey) this.options.journal.commit().then(() => this.options.blobs.delete(blobKey)).catch(this.options.onError);
  }

  private byHandle(queue: LiveQueue, handle: string): LiveMessage | undefined {
    const parsed = parseReceiptHandle(handle);
    if (!parsed || parsed.queue !== queue.spec.name) {
      throw new EventError('ReceiptHandleIsInvalid', `The input receipt handle "${handle.slice(0, 64)}" is not a valid receipt handle for queue ${queue.spec.name}. Pass a receipt handle that a receive from this queue returned.`);
    }
    const message = queue.messages.get(parsed.seq);
    return message && message.receiveCount === parsed.receiveCount ? message : undefined;
  }

  private journalUpdate(message: LiveMessage): void {
    this.options.journal.writeBehind({
      op: 'update',
      seq: message.seq,
      queue: message.queue,
      visibleAt: message.visibleAt,
      receiveCount: message.receiveCount,
      firstReceiveAt: message.firstReceiveAt,
      leased: message.leased,
    });
  }

  private serveWaiters(queue: LiveQueue): void {
    while (queue.waiters.length > 0 && (queue.ready.length > 0 || queue.readyGroups.length > 0)) {
      const waiter = queue.waiters[0]!;
      const messages = this.take(queue, waiter.options);
      if (messages.length === 0) break;
      queue.waiters.shift();
      this.finishWaiter(waiter, messages);
    }
  }

  private finishWaiter(waiter: Waiter, messages: LiveMessage[]): void {
    if (waiter.done) return;
    waiter.done = true;
    clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.options.signal?.removeEventListener('abort', waiter.onAbort);
    const at = waiter.queue.waiters.indexOf(waiter);
    if (at >= 0) waiter.queue.waiters.splice(at, 1);
    waiter.resolve(messages);
  }

  private schedule(message: LiveMessage): void {
    this.timers.push({ at: message.visibleAt, message, version: message.version });
    if (this.timers.length > COMPACT_TIMERS_ABOVE && this.timers.length > 2 * this.timedMessages()) this.compactTimers();
    this.arm();
  }

  /** Messages waiting on a timer: delayed or in flight. */
  private timedMessages(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.inflight + queue.delayed;
    return count;
  }

  /**
   * Deleted and re-timed messages leave their old entries in the heap (it cannot remove from the
   * middle); at high throughput those would hold every deleted message until its visibility
   * timeout. Rebuilding from the live entries keeps the heap proportional to what is in flight.
   */
  private compactTimers(): void {
    const live = [];
    for (let entry = this.timers.pop(); entry; entry = this.timers.pop()) {
      const { message, version } = entry;
      if (message.version === version && (message.state === 'delayed' || message.state === 'inflight')) live.push(entry);
    }
    for (const entry of live) this.timers.push(entry);
  }

  private arm(): void {
    const next = this.timers.peek();
    if (!next || this.closed || next.at >= this.timerAt) return;
    this.cancelTimer();
    this.timerAt = next.at;
    const delay = next.at - Date.now();
    if (delay <= 0) {
      // Already due (a visibility timeout of 0): setImmediate runs before the next request is
      // read, where a 1 ms timer could lose the race to a fast client receiving again.
      const immediate = setImmediate(() => this.fire());
      this.cancelTimer = () => clearImmediate(immediate);
    } else {
      const timeout = setTimeout(() => this.fire(), Math.min(delay, MAX_TIMER_MS));
      this.cancelTimer = () => clearTimeout(timeout);
    }
  }

  private fire(): void {
    this.timerAt = Infinity;
    const now = Date.now();
    for (let next = this.timers.peek(); next && next.at <= now; next = this.timers.peek()) {
      this.timers.pop();
      const { message, version } = next;
      if (message.version !== version || message.state === 'gone' || message.state === 'ready') continue;
      const queue = this.queues.get(message.queue);
      if (!queue) continue;
      if (message.state === 'delayed') {
        queue.delayed--;
        this.makeReady(queue, message);
      } else {
        this.returnToQueue(queue, message);
      }
    }
    this.arm();
  }
}

/**
 * How long the oldest message waiting to be received has been in the queue (0 when none waits).
 * Lists are in send order, so only their heads are looked at; a message back from flight joins
 * the end of a standard queue, which makes this a slight underestimate there.
 */
function oldestWaitingAge(queue: LiveQueue): number {
  let oldest = queue.ready.peekFront()?.sentAt ?? Infinity;
  for (const list of queue.groups.values()) oldest = Math.min(oldest, list[0]?.sentAt ?? Infinity);
  return oldest === Infinity ? 0 : Math.max(0, Date.now() - oldest);
}

/** The ready list a message waits in: its group in FIFO and fair queues (no group is a group of its own), none otherwise. */
function readyGroupOf(queue: LiveQueue, message: LiveMessage): string | undefined {
  if (queue.spec.fairByGroup) return message.groupId ?? '';
  return queue.spec.fifo && message.groupId !== null ? message.groupId : undefined;
}

export function queueArn(name: string): string {
  return `arn:aws:sqs:${process.env.AWS_REGION ?? 'us-east-1'}:000000000000:${name}`;
}

export function sequenceNumber(seq: number): string {
  return String(seq).padStart(20, '0');
}

export function attributesSize(attributes: MessageAttributes | undefined): number {
  if (!attributes) return 0;
  let size = 0;
  for (const [name, value] of Object.entries(attributes)) {
    size += Buffer.byteLength(name) + Buffer.byteLength(value.DataType);
    size += value.BinaryValue !== undefined ? Buffer.byteLength(value.BinaryValue, 'base64') : Buffer.byteLength(value.StringValue ?? '');
  }
  return size;
}

function receiptHandle(message: LiveMessage): string {
  return Buffer.from(`${message.seq}:${message.receiveCount}:${message.queue}`).toString('base64url');
}

function parseReceiptHandle(handle: string): { seq: number; receiveCount: number; queue: string } | undefined {
  const match = /^(\d+):(\d+):(.+)$/.exec(Buffer.from(handle, 'base64url').toString('utf8'));
  return match ? { seq: Number(match[1]), receiveCount: Number(match[2]), queue: match[3]! } : undefined;
}

/** Field by field: this runs for every message sent, and spreading the object costs more. */
function toRecord(message: LiveMessage): MessageRecord {
  return {
    seq: message.seq,
    queue: message.queue,
    id: message.id,
    body: message.body,
    blobKey: message.blobKey,
    size: message.size,
    md5: message.md5,
    attributes: message.attributes ? JSON.stringify(message.attributes) : null,
    meta: message.meta ? JSON.stringify(message.meta) : null,
    groupId: message.groupId,
    dedupId: message.dedupId,
    sentAt: message.sentAt,
    visibleAt: message.visibleAt,
    receiveCount: message.receiveCount,
    firstReceiveAt: message.firstReceiveAt,
    expiresAt: message.expiresAt,
    leased: message.leased,
  };
}
