/**
 * Queue attributes as SQS names them: CreateQueue's Attributes become a QueueSpec,
 * and GetQueueAttributes picks from what the engine reports.
 */
import { defaults } from '../../config/schema.js';
import { EventError } from '../../events/index.js';
import type { QueueSpec } from '../../types.js';
import { QUEUE_NAME } from './wire.js';

/** Whole-second attributes and their SQS ranges. */
const INTEGER_ATTRIBUTES = {
  DelaySeconds: { min: 0, max: 900 },
  MaximumMessageSize: { min: 1024, max: 1_048_576 },
  MessageRetentionPeriod: { min: 60, max: 1_209_600 },
  ReceiveMessageWaitTimeSeconds: { min: 0, max: 20 },
  VisibilityTimeout: { min: 0, max: 43_200 },
} as const;

const CREATE_ATTRIBUTES = new Set([...Object.keys(INTEGER_ATTRIBUTES), 'RedrivePolicy', 'FifoQueue', 'ContentBasedDeduplication']);

/** Every queue attribute name SQS defines; GetQueueAttributes rejects others and returns those Berth has. */
const QUEUE_ATTRIBUTE_NAMES = new Set([
  'All',
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesDelayed',
  'ApproximateNumberOfMessagesNotVisible',
  'ContentBasedDeduplication',
  'CreatedTimestamp',
  'DeduplicationScope',
  'DelaySeconds',
  'FifoQueue',
  'FifoThroughputLimit',
  'KmsDataKeyReusePeriodSeconds',
  'KmsMasterKeyId',
  'LastModifiedTimestamp',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'Policy',
  'QueueArn',
  'ReceiveMessageWaitTimeSeconds',
  'RedriveAllowPolicy',
  'RedrivePolicy',
  'SqsManagedSseEnabled',
  'VisibilityTimeout',
]);

function invalidAttribute(name: string, value: string, fix: string): EventError {
  return new EventError('InvalidAttributeValue', `Invalid value for the parameter ${name}: ${JSON.stringify(value)}. ${fix}`);
}

function integerAttribute(name: keyof typeof INTEGER_ATTRIBUTES, value: string): number {
  const { min, max } = INTEGER_ATTRIBUTES[name];
  const number = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(number >= min && number <= max)) throw invalidAttribute(name, value, `Use a whole number from ${min} to ${max}.`);
  return number;
}

function booleanAttribute(name: string, value: string): boolean {
  const lower = value.toLowerCase();
  if (lower !== 'true' && lower !== 'false') throw invalidAttribute(name, value, 'Use "true" or "false".');
  return lower === 'true';
}

function checkQueueName(name: string, fifo: boolean): void {
  if (!QUEUE_NAME.test(name) || name.endsWith('.fifo') !== fifo) {
    const rule = fifo
      ? 'The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.'
      : 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length. Only a FIFO queue (FifoQueue "true") has a name ending in .fifo.';
    throw new EventError('InvalidParameterValue', `Value ${JSON.stringify(name)} for parameter QueueName is invalid. Reason: ${rule}`);
  }
}

/**
 * RedrivePolicy `{"deadLetterTargetArn": "arn:aws:sqs:<region>:<account>:<name>", "maxReceiveCount": n}`;
 * the target must be an existing queue of the same type.
 */
function redrivePolicy(value: string, fifo: boolean, lookup: (name: string) => QueueSpec | undefined, self: string): Pick<QueueSpec, 'deadLetterQueue' | 'maxReceiveCount'> {
  const invalid = (reason: string) => new EventError('InvalidParameterValue', `Value ${value} for parameter RedrivePolicy is invalid. Reason: ${reason}`);
  let policy: unknown;
  try {
    policy = JSON.parse(value);
  } catch {
    throw invalid('Redrive policy is not a valid JSON map. Send {"deadLetterTargetArn": "<queue ARN>", "maxReceiveCount": <1-1000>}.');
  }
  const { deadLetterTargetArn, maxReceiveCount } = (policy ?? {}) as Record<string, unknown>;
  const arn = typeof deadLetterTargetArn === 'string' ? deadLetterTargetArn.split(':') : [];
  if (arn.length !== 6 || arn[0] !== 'arn' || arn[2] !== 'sqs') {
    throw invalid('deadLetterTargetArn must be a queue ARN, arn:aws:sqs:<region>:<account>:<queue name> (GetQueueAttributes returns it as QueueArn).');
  }
  const count = Number(maxReceiveCount);
  if (!Number.isInteger(count) || count < 1 || count > 1000) throw invalid('maxReceiveCount must be a whole number from 1 to 1000.');
  const target = lookup(arn[5]!);
  if (!target) throw invalid(`Dead-letter target ${arn[5]} does not exist. Create the dead-letter queue first.`);
  if (target.name === self) throw invalid('A queue cannot be its own dead-letter queue.');
  if (target.fifo !== fifo) throw invalid('Dead-letter queue type does not match the source queue: FIFO queues need a FIFO dead-letter queue, standard queues a standard one.');
  return { deadLetterQueue: target.name, maxReceiveCount: count };
}

/**
 * The spec CreateQueue asks for. For an existing queue, the attributes given replace
 * its own and the rest stay, so asking again with the same (or no) attributes
 * matches it, as in SQS; the engine rejects a spec that differs.
 * ReceiveMessageWaitTimeSeconds and MaximumMessageSize are validated but not kept:
 * receives wait only when asked to, and events.maxPayload is the size limit.
 */
export function queueSpecFor(
  name: string,
  attributes: Record<string, string>,
  existing: QueueSpec | undefined,
  lookup: (name: string) => QueueSpec | undefined,
): QueueSpec {
  for (const attribute of Object.keys(attributes)) {
    if (!CREATE_ATTRIBUTES.has(attribute)) {
      throw new EventError('InvalidAttributeName', `Unknown Attribute ${attribute}. Berth's CreateQueue takes: ${[...CREATE_ATTRIBUTES].join(', ')}.`);
    }
  }
  const fifo = attributes.FifoQueue !== undefined ? booleanAttribute('FifoQueue', attributes.FifoQueue) : name.endsWith('.fifo');
  checkQueueName(name, fifo);
  if (!fifo && attributes.ContentBasedDeduplication !== undefined) {
    throw new EventError('InvalidAttributeName', 'Unknown Attribute ContentBasedDeduplication. It applies only to FIFO queues (FifoQueue "true", name ending in .fifo).');
  }
  for (const key of ['MaximumMessageSize', 'ReceiveMessageWaitTimeSeconds'] as const) {
    if (attributes[key] !== undefined) integerAttribute(key, attributes[key]);
  }

  // Starting from the existing spec keeps its key order: the engine compares specs as JSON.
  const spec: QueueSpec = existing ? { ...existing } : {
    name,
    fifo,
    visibilityTimeoutSeconds: defaults.queue.visibilityTimeoutSeconds,
    delaySeconds: defaults.queue.delaySeconds,
    retentionSeconds: defaults.queue.retentionSeconds,
    contentBasedDeduplication: false,
  };
  spec.fifo = fifo;
  if (attributes.VisibilityTimeout !== undefined) spec.visibilityTimeoutSeconds = integerAttribute('VisibilityTimeout', attributes.VisibilityTimeout);
  if (attributes.DelaySeconds !== undefined) spec.delaySeconds = integerAttribute('DelaySeconds', attributes.DelaySeconds);
  if (attributes.MessageRetentionPeriod !== undefined) spec.retentionSeconds = integerAttribute('MessageRetentionPeriod', attributes.MessageRetentionPeriod);
  if (attributes.ContentBasedDeduplication !== undefined) spec.contentBasedDeduplication = booleanAttribute('ContentBasedDeduplication', attributes.ContentBasedDeduplication);
  if (attributes.RedrivePolicy) Object.assign(spec, redrivePolicy(attributes.RedrivePolicy, fifo, lookup, name));
  return spec;
}

/** GetQueueAttributes: "All", or the names asked for that the queue has. */
export function selectQueueAttributes(all: Record<string, string>, names: string[]): Record<string, string> {
  for (const name of names) {
    if (!QUEUE_ATTRIBUTE_NAMES.has(name)) {
      throw new EventError('InvalidAttributeName', `Unknown Attribute ${name}. Ask for All or any of: ${[...QUEUE_ATTRIBUTE_NAMES].filter((n) => n !== 'All').join(', ')}.`);
    }
  }
  if (names.includes('All')) return all;
  return Object.fromEntries(names.filter((name) => all[name] !== undefined).map((name) => [name, all[name]!]));
}
