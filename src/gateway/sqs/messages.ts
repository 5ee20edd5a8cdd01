/**
 * Messages on the wire: a SendMessage entry validated into the engine's SendInput,
 * the MD5s of a send's result, and a delivery shaped as ReceiveMessage returns it.
 */
import { EventError } from '../../events/index.js';
import { md5Hex, md5OfAttributes, type MessageAttributes, type MessageAttributeValue } from '../../events/md5.js';
import { attributesSize, queueArn, sequenceNumber, type Delivery, type LiveMessage, type SendInput, type SendResult } from '../../events/queues.js';
import type { QueueSpec } from '../../types.js';
import { ACCOUNT_ID, invalidValue, objectMap, optionalInteger, optionalString, requiredString, stringList, type Input } from './wire.js';

/** Anything outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF, lone surrogates included. */
const FORBIDDEN_CHARACTER = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const ATTRIBUTE_NAME = /^(?![.])(?!.*[.][.])(?!.*[.]$)[A-Za-z0-9_.-]{1,256}$/;
const RESERVED_ATTRIBUTE_NAME = /^(aws|amazon)\./i;
const DATA_TYPE = /^(String|Number|Binary)(\..+)?$/;
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Group and deduplication ids: 1-128 printable ASCII characters. */
const MESSAGE_TOKEN = /^[\x21-\x7E]{1,128}$/;
const MAX_MESSAGE_ATTRIBUTES = 10;

function checkCharacters(text: string, what: string): void {
  const match = FORBIDDEN_CHARACTER.exec(text);
  if (!match) return;
  const code = match[0].codePointAt(0)!.toString(16).toUpperCase();
  throw new EventError(
    'InvalidMessageContents',
    `Invalid binary character #x${code} at index ${match.index} of ${what}. SQS allows only #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF; base64-encode binary data.`,
  );
}

function attributeValue(name: string, raw: Input): MessageAttributeValue {
  const invalid = (problem: string) => new EventError('InvalidParameterValue', `Message attribute '${name}' ${problem}`);
  if (!ATTRIBUTE_NAME.test(name) || RESERVED_ATTRIBUTE_NAME.test(name)) {
    throw invalid('has an invalid name. Use 1-256 letters, digits, _, - and . (not at either end, never two in a row), not starting with AWS. or Amazon.');
  }
  const dataType = raw.DataType;
  if (typeof dataType !== 'string' || !DATA_TYPE.test(dataType) || dataType.length > 256) {
    throw invalid(`has an invalid DataType ${JSON.stringify(dataType)}. Use String, Number or Binary, optionally followed by .<label> (e.g. Number.int).`);
  }
  if (dataType.startsWith('Binary')) {
    const value = raw.BinaryValue;
    if (typeof value !== 'string' || value === '' || !BASE64.test(value)) throw invalid('must contain a non-empty, base64-encoded BinaryValue for type Binary.');
    return { DataType: dataType, BinaryValue: value };
  }
  const value = raw.StringValue;
  if (typeof value !== 'string' || value === '') throw invalid(`must contain a non-empty StringValue for type ${dataType}.`);
  checkCharacters(value, `message attribute '${name}'`);
  if (dataType.startsWith('Number') && !NUMBER.test(value)) throw invalid(`has type Number but its value ${JSON.stringify(value)} is not a number. Send a decimal number such as 42 or -1.5e3.`);
  return { DataType: dataType, StringValue: value };
}

function messageAttributes(entry: Input): MessageAttributes | undefined {
  const raw = objectMap(entry, 'MessageAttributes');
  const names = Object.keys(raw);
  if (names.length === 0) return undefined;
  if (names.length > MAX_MESSAGE_ATTRIBUTES) {
    throw new EventError('InvalidParameterValue', `Number of message attributes [${names.length}] exceeds the allowed maximum [${MAX_MESSAGE_ATTRIBUTES}]. Move the rest into the body.`);
  }
  return Object.fromEntries(names.map((name) => [name, attributeValue(name, raw[name]!)]));
}

function messageToken(entry: Input, name: string): string | undefined {
  const value = optionalString(entry, name);
  if (value !== undefined && !MESSAGE_TOKEN.test(value)) throw invalidValue(name, value, 'Use 1 to 128 printable ASCII characters (a-z, A-Z, 0-9 and punctuation, no spaces).');
  return value;
}

/**
 * A SendMessage request, or one SendMessageBatch entry. FIFO rules (group id
 * required, no per-message delay) and the size limit are the engine's.
 * MessageSystemAttributes (an X-Ray trace header) are not kept.
 */
export function sendInput(entry: Input, spec: QueueSpec): SendInput {
  const body = requiredString(entry, 'MessageBody');
  checkCharacters(body, 'the message body');
  const attributes = messageAttributes(entry);
  const delaySeconds = optionalInteger(entry, 'DelaySeconds', 0, 900);
  const groupId = messageToken(entry, 'MessageGroupId');
  const dedupId = messageToken(entry, 'MessageDeduplicationId');
  if (dedupId !== undefined && !spec.fifo) {
    throw invalidValue('MessageDeduplicationId', dedupId, 'The request includes a parameter that is not valid for this queue type: deduplication ids apply only to FIFO queues.');
  }
  return {
    body,
    ...(attributes ? { attributes } : {}),
    ...(delaySeconds !== undefined ? { delaySeconds } : {}),
    ...(groupId !== undefined ? { groupId } : {}),
    ...(dedupId !== undefined ? { dedupId } : {}),
  };
}

/** What counts toward the size limit: body and attributes. */
export function messageSize(input: SendInput): number {
  return Buffer.byteLength(input.body, 'utf8') + attributesSize(input.attributes);
}

/**
 * A duplicate send answers with the first send's ids but with the MD5s of this
 * request, which is what the SDK checks them against.
 */
export function sendResult(input: SendInput, result: SendResult): Record<string, string> {
  const attributesMd5 = result.duplicate ? md5OfAttributes(input.attributes) : result.md5OfAttributes;
  return {
    MessageId: result.messageId,
    MD5OfMessageBody: result.duplicate ? md5Hex(input.body) : result.md5OfBody,
    ...(attributesMd5 ? { MD5OfMessageAttributes: attributesMd5 } : {}),
    ...(result.sequenceNumber ? { SequenceNumber: result.sequenceNumber } : {}),
  };
}

/** ReceiveMessage's system attributes; a value is left out when the message has none. */
const SYSTEM_ATTRIBUTES: Record<string, (message: LiveMessage, spec: QueueSpec) => string | undefined> = {
  SenderId: () => ACCOUNT_ID,
  SentTimestamp: (message) => String(message.sentAt),
  ApproximateReceiveCount: (message) => String(message.receiveCount),
  ApproximateFirstReceiveTimestamp: (message) => (message.firstReceiveAt === null ? undefined : String(message.firstReceiveAt)),
  SequenceNumber: (message, spec) => (spec.fifo ? sequenceNumber(message.seq) : undefined),
  MessageDeduplicationId: (message, spec) => (spec.fifo ? (message.dedupId ?? undefined) : undefined),
  MessageGroupId: (message) => message.groupId ?? undefined,
  DeadLetterQueueSourceArn: (message) => (message.deadLetterSource ? queueArn(message.deadLetterSource) : undefined),
  AWSTraceHeader: () => undefined,
};

/** Which attributes a ReceiveMessage asked for. */
export interface ReceiveSelection {
  system: string[];
  messageAttribute: (name: string) => boolean;
}

/**
 * AttributeNames (deprecated) and MessageSystemAttributeNames name system attributes;
 * MessageAttributeNames takes names, "All", ".*" or a prefix such as "order.*".
 */
export function receiveSelection(input: Input): ReceiveSelection {
  const requested = [...stringList(input, 'AttributeNames'), ...stringList(input, 'MessageSystemAttributeNames')];
  for (const name of requested) {
    if (name !== 'All' && !Object.hasOwn(SYSTEM_ATTRIBUTES, name)) {
      throw new EventError('InvalidAttributeName', `Unknown Attribute ${name}. Ask for All or any of: ${Object.keys(SYSTEM_ATTRIBUTES).join(', ')}.`);
    }
  }
  const system = requested.includes('All') ? Object.keys(SYSTEM_ATTRIBUTES) : [...new Set(requested)];
  const names = stringList(input, 'MessageAttributeNames');
  if (names.includes('All') || names.includes('.*')) return { system, messageAttribute: () => true };
  const exact = new Set(names.filter((name) => !name.endsWith('.*')));
  const prefixes = names.filter((name) => name.endsWith('.*')).map((name) => name.slice(0, -1));
  return { system, messageAttribute: (name) => exact.has(name) || prefixes.some((prefix) => name.startsWith(prefix)) };
}

/**
 * One received message. MD5OfMessageAttributes covers the attributes returned (what
 * SDKs that check it hash); with none returned it is the digest of them all, as SQS sends.
 */
export function wireMessage({ message, receiptHandle, body }: Delivery, spec: QueueSpec, selection: ReceiveSelection): Record<string, unknown> {
  const wire: Record<string, unknown> = { MessageId: message.id, ReceiptHandle: receiptHandle, MD5OfBody: message.md5, Body: body };
  const system: Record<string, string> = {};
  for (const name of selection.system) {
    const value = SYSTEM_ATTRIBUTES[name]!(message, spec);
    if (value !== undefined) system[name] = value;
  }
  if (Object.keys(system).length > 0) wire.Attributes = system;
  const chosen = Object.entries(message.attributes ?? {}).filter(([name]) => selection.messageAttribute(name));
  if (chosen.length > 0) {
    const attributes = Object.fromEntries(chosen);
    wire.MessageAttributes = attributes;
    wire.MD5OfMessageAttributes = md5OfAttributes(attributes);
  } else if (message.md5OfAttributes) {
    wire.MD5OfMessageAttributes = message.md5OfAttributes;
  }
  return wire;
}
