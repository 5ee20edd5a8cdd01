/**
 * SQS's AWS JSON 1.0 wire format (aws-wire.md §3): reading request members with
 * the errors SQS gives for them, writing errors, and queue URLs.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EventError } from '../../events/index.js';

const CONTENT_TYPE = 'application/x-amz-json-1.0';
export const ACCOUNT_ID = '000000000000';

/** A request's members, as the JSON body carries them. */
export type Input = Record<string, unknown>;

/** 1-80 letters, digits, - and _; FIFO names end in .fifo. Internal queues (names with ':') never match. */
export const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}(\.fifo)?$/;

export function parseBody(body: Buffer | undefined): Input {
  const text = body && body.length > 0 ? body.toString('utf8') : '{}';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EventError('SerializationException', `The request body is not valid JSON (${(err as Error).message}). Send the operation's parameters as one JSON object, as the AWS SDK does.`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EventError('SerializationException', "The request body must be a JSON object of the operation's parameters, e.g. {\"QueueUrl\": \"...\"}.");
  }
  return value as Input;
}

function wrongType(name: string, expected: string): EventError {
  return new EventError('SerializationException', `Parameter ${name} must be ${expected}. Fix its type in the request.`);
}

export function missing(name: string): EventError {
  return new EventError('MissingParameter', `The request must contain the parameter ${name}.`);
}

export function invalidValue(name: string, value: unknown, reason: string): EventError {
  return new EventError('InvalidParameterValue', `Value ${JSON.stringify(value)} for parameter ${name} is invalid. Reason: ${reason}`);
}

export function optionalString(input: Input, name: string): string | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw wrongType(name, 'a string');
  return value;
}

export function requiredString(input: Input, name: string): string {
  const value = optionalString(input, name);
  if (value === undefined || value === '') throw missing(name);
  return value;
}

/** A whole number in [min, max]; SQS words the range error as below. */
export function optionalInteger(input: Input, name: string, min: number, max: number): number | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongType(name, 'a whole number');
  if (value < min || value > max) throw invalidValue(name, value, `Must be between ${min} and ${max}, if provided.`);
  return value;
}

export function stringList(input: Input, name: string): string[] {
  const value = input[name];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) throw wrongType(name, 'a list of strings');
  return value as string[];
}

export function stringMap(input: Input, name: string): Record<string, string> {
  const value = input[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((item) => typeof item !== 'string')) {
    throw wrongType(name, 'a map of string values');
  }
  return value as Record<string, string>;
}

export function objectMap(input: Input, name: string): Record<string, Input> {
  const value = input[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((item) => typeof item !== 'object' || item === null || Array.isArray(item))) {
    throw wrongType(name, 'a map of objects');
  }
  return value as Record<string, Input>;
}

export function objectList(input: Input, name: string): Input[] {
  const value = input[name];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'object' || item === null || Array.isArray(item))) throw wrongType(name, 'a list of objects');
  return value as Input[];
}

/**
 * `x-amzn-query-error` carries the legacy Query code, from which the SDK names the
 * exception (QueueDoesNotExist with Code AWS.SimpleQueueService.NonExistentQueue).
 * Modeled statuses (404, 403) are used only for clients in query mode, as SQS does;
 * any other client error is a 400.
 */
export function sendError(request: FastifyRequest, reply: FastifyReply, err: EventError): FastifyReply {
  const queryMode = request.headers['x-amzn-query-mode'] === 'true';
  reply.code(queryMode || err.status >= 500 ? err.status : 400).header('x-amzn-query-error', `${err.queryCode};${err.status >= 500 ? 'Receiver' : 'Sender'}`);
  return sendJson(request, reply, { __type: `com.amazonaws.sqs#${err.code}`, message: err.message });
}

/** Sent as bytes: Fastify would add a charset to a string's content type, which SQS does not send. */
export function sendJson(request: FastifyRequest, reply: FastifyReply, value: object): FastifyReply {
  return reply.header('x-amzn-requestid', request.id).header('content-type', CONTENT_TYPE).send(Buffer.from(JSON.stringify(value)));
}

/**
 * Built from the request's Host, so a client that follows the URL (the SDK does when
 * it has no explicit endpoint) comes back to this Berth.
 */
export function queueUrl(request: FastifyRequest, name: string): string {
  return `${request.protocol}://${request.headers.host ?? 'localhost'}/${ACCOUNT_ID}/${name}`;
}

/** The queue a QueueUrl names; any host and account are accepted, only the last path segment counts. */
export function queueNameFromUrl(url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    throw new EventError('InvalidAddress', `The address ${JSON.stringify(url)} is not a valid queue URL. Use the QueueUrl that CreateQueue or GetQueueUrl returned, e.g. http://host:port/${ACCOUNT_ID}/<queue name>.`);
  }
  return path.split('/').filter(Boolean).pop() ?? '';
}
