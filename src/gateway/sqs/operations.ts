/**
 * One function per SQS operation: read the members, call the queue engine, return
 * the response members. Errors are EventErrors, written by the caller.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EventError, type QueueService } from '../../events/index.js';
import type { QueueSpec } from '../../types.js';
import { batchEntries, runBatch } from './batch.js';
import { messageSize, receiveSelection, sendInput, sendResult, wireMessage } from './messages.js';
import { queueSpecFor, selectQueueAttributes } from './queue-attributes.js';
import {
  invalidValue,
  missing,
  optionalInteger,
  optionalString,
  QUEUE_NAME,
  queueNameFromUrl,
  queueUrl,
  requiredString,
  stringList,
  stringMap,
  type Input,
} from './wire.js';

export interface SqsContext {
  queues: QueueService;
  maxPayloadBytes: number;
  request: FastifyRequest;
  reply: FastifyReply;
}

export type Operation = (context: SqsContext, input: Input) => Promise<object>;

const MAX_VISIBILITY_TIMEOUT = 43_200;
const DEFAULT_LIST_LIMIT = 1000;

/** A user queue by name; internal queues (names with ':') do not exist as far as SQS is concerned. */
function userQueue(queues: QueueService, name: string): QueueSpec | undefined {
  return QUEUE_NAME.test(name) && queues.has(name) ? queues.spec(name) : undefined;
}

function existingQueue(queues: QueueService, name: string): QueueSpec {
  const spec = userQueue(queues, name);
  if (!spec) throw new EventError('QueueDoesNotExist', `The specified queue does not exist: ${name}. Create it with CreateQueue or declare it under queues: in berth.yml.`);
  return spec;
}

/** The queue a request's QueueUrl names. */
function targetQueue({ queues }: SqsContext, input: Input): QueueSpec {
  return existingQueue(queues, queueNameFromUrl(requiredString(input, 'QueueUrl')));
}

function visibilityTimeout(input: Input): number {
  const seconds = optionalInteger(input, 'VisibilityTimeout', 0, MAX_VISIBILITY_TIMEOUT);
  if (seconds === undefined) throw missing('VisibilityTimeout');
  return seconds;
}

/** ListQueues' NextToken: the last name of the previous page. */
function decodeNextToken(token: string): string {
  const name = Buffer.from(token, 'base64url').toString('utf8');
  if (!QUEUE_NAME.test(name)) throw invalidValue('NextToken', token, 'Invalid NextToken value. Pass the NextToken of the previous ListQueues response unchanged.');
  return name;
}

const CreateQueue: Operation = async ({ queues, request }, input) => {
  const name = requiredString(input, 'QueueName');
  const spec = queueSpecFor(name, stringMap(input, 'Attributes'), userQueue(queues, name), (target) => userQueue(queues, target));
  await queues.create(spec);
  return { QueueUrl: queueUrl(request, name) };
};

const GetQueueUrl: Operation = async ({ queues, request }, input) => {
  const { name } = existingQueue(queues, requiredString(input, 'QueueName'));
  return { QueueUrl: queueUrl(request, name) };
};

const ListQueues: Operation = async ({ queues, request }, input) => {
  const prefix = optionalString(input, 'QueueNamePrefix') ?? '';
  const maxResults = optionalInteger(input, 'MaxResults', 1, 1000);
  const token = optionalString(input, 'NextToken');
  const after = token === undefined ? undefined : decodeNextToken(token);
  // Sorted by code unit, the order the token's "after" comparison uses.
  const names = queues
    .list()
    .map((spec) => spec.name)
    .filter((name) => name.startsWith(prefix) && (after === undefined || name > after))
    .sort();
  const page = names.slice(0, maxResults ?? DEFAULT_LIST_LIMIT);
  // As in SQS, only a request with MaxResults pages; without it the first 1000 come back.
  const more = maxResults !== undefined && names.length > page.length;
  return {
    QueueUrls: page.map((name) => queueUrl(request, name)),
    ...(more ? { NextToken: Buffer.from(page.at(-1)!).toString('base64url') } : {}),
  };
};

const GetQueueAttributes: Operation = async (context, input) => {
  const { name } = targetQueue(context, input);
  const attributes = selectQueueAttributes(context.queues.attributes(name), stringList(input, 'AttributeNames'));
  return Object.keys(attributes).length > 0 ? { Attributes: attributes } : {};
};

const PurgeQueue: Operation = async (context, input) => {
  await context.queues.purge(targetQueue(context, input).name);
  return {};
};

const DeleteQueue: Operation = async (context, input) => {
  await context.queues.remove(targetQueue(context, input).name);
  return {};
};

const SendMessage: Operation = async (context, input) => {
  const spec = targetQueue(context, input);
  const message = sendInput(input, spec);
  return sendResult(message, await context.queues.send(spec.name, message));
};

/** Entries that fail validation fail alone; the valid ones together must fit the size limit. */
const SendMessageBatch: Operation = async (context, input) => {
  const spec = targetQueue(context, input);
  const entries = batchEntries(input);
  const prepared = entries.map((entry) => {
    try {
      return sendInput(entry, spec);
    } catch (err) {
      return err as Error;
    }
  });
  const total = prepared.reduce((sum, message) => sum + (message instanceof Error ? 0 : messageSize(message)), 0);
  if (total > context.maxPayloadBytes) {
    throw new EventError(
      'BatchRequestTooLong',
      `The messages of this batch total ${total} bytes, more than the ${context.maxPayloadBytes}-byte limit (events.maxPayload in berth.yml). Send fewer or smaller messages per request.`,
    );
  }
  // A FIFO queue keeps the batch's order, so its entries are sent one after another.
  return runBatch(
    entries,
    async (_entry, index) => {
      const message = prepared[index]!;
      if (message instanceof Error) throw message;
      return sendResult(message, await context.queues.send(spec.name, message));
    },
    { sequential: spec.fifo },
  );
};

/** Long polls end early if the client goes away, so no message is taken for nobody. */
const ReceiveMessage: Operation = async (context, input) => {
  const spec = targetQueue(context, input);
  const max = optionalInteger(input, 'MaxNumberOfMessages', 1, 10) ?? 1;
  const visibilityTimeoutSeconds = optionalInteger(input, 'VisibilityTimeout', 0, MAX_VISIBILITY_TIMEOUT);
  const waitSeconds = optionalInteger(input, 'WaitTimeSeconds', 0, 20) ?? 0;
  const selection = receiveSelection(input);
  const gone = new AbortController();
  const abort = () => gone.abort();
  context.reply.raw.once('close', abort);
  try {
    const deliveries = await context.queues.receive(spec.name, {
      max,
      waitSeconds,
      signal: gone.signal,
      ...(visibilityTimeoutSeconds !== undefined ? { visibilityTimeoutSeconds } : {}),
    });
    return deliveries.length > 0 ? { Messages: deliveries.map((delivery) => wireMessage(delivery, spec, selection)) } : {};
  } finally {
    context.reply.raw.off('close', abort);
  }
};

const DeleteMessage: Operation = async (context, input) => {
  context.queues.delete(targetQueue(context, input).name, requiredString(input, 'ReceiptHandle'));
  return {};
};

const DeleteMessageBatch: Operation = async (context, input) => {
  const { name } = targetQueue(context, input);
  return runBatch(
    batchEntries(input),
    async (entry) => {
      context.queues.delete(name, requiredString(entry, 'ReceiptHandle'));
      return {};
    },
    { sequential: false },
  );
};

const ChangeMessageVisibility: Operation = async (context, input) => {
  context.queues.changeVisibility(targetQueue(context, input).name, requiredString(input, 'ReceiptHandle'), visibilityTimeout(input));
  return {};
};

const ChangeMessageVisibilityBatch: Operation = async (context, input) => {
  const { name } = targetQueue(context, input);
  return runBatch(
    batchEntries(input),
    async (entry) => {
      context.queues.changeVisibility(name, requiredString(entry, 'ReceiptHandle'), visibilityTimeout(entry));
      return {};
    },
    { sequential: false },
  );
};

export const operations = new Map<string, Operation>(
  Object.entries({
    CreateQueue,
    GetQueueUrl,
    ListQueues,
    GetQueueAttributes,
    PurgeQueue,
    DeleteQueue,
    SendMessage,
    SendMessageBatch,
    ReceiveMessage,
    DeleteMessage,
    DeleteMessageBatch,
    ChangeMessageVisibility,
    ChangeMessageVisibilityBatch,
  }),
);

/** SQS operations Berth does not offer, answered as unsupported rather than unknown. */
export const unsupportedOperations = new Set([
  'SetQueueAttributes',
  'TagQueue',
  'UntagQueue',
  'ListQueueTags',
  'AddPermission',
  'RemovePermission',
  'ListDeadLetterSourceQueues',
  'StartMessageMoveTask',
  'CancelMessageMoveTask',
  'ListMessageMoveTasks',
]);
