/**
 * The SQS API over Berth's queues, as @aws-sdk/client-sqs speaks it: AWS JSON 1.0,
 * `POST /` with `X-Amz-Target: AmazonSQS.<Operation>` (aws-wire.md §3).
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { ConstraintStrategy, Handler, HTTPVersion } from 'find-my-way';
import type { BaseLogger } from 'pino';
import { EventError, isEventError, type QueueService } from '../../events/index.js';
import { operations, unsupportedOperations, type Operation } from './operations.js';
import { parseBody, sendError, sendJson } from './wire.js';

export interface SqsApiOptions {
  queues: QueueService;
  /** events.maxPayload: the largest message, and the largest batch. */
  maxPayloadBytes: number;
  logger: BaseLogger;
}

const TARGET_PREFIX = 'AmazonSQS.';
/** Room for a request's JSON around its messages (ids, attribute names, queue URL). */
const ENVELOPE_BYTES = 64 * 1024;

/**
 * Routing: `POST /` carries both SQS calls and a user's own `POST /` route, which the
 * gateway's catch-all serves. A route constraint on the X-Amz-Target header lets the
 * router tell them apart: a request with the header matches this route, one without
 * it falls through to the catch-all. (A check inside a `POST /` route could not hand
 * a request back to the catch-all.) Any X-Amz-Target counts, so a wrong one gets an
 * SQS error instead of reaching a user's function.
 */
const awsTarget: ConstraintStrategy<HTTPVersion.V1, unknown> = {
  name: 'awsTarget',
  storage() {
    const handlers = new Map<unknown, Handler<HTTPVersion.V1>>();
    return { get: (value) => handlers.get(value) ?? null, set: (value, handler) => void handlers.set(value, handler) };
  },
  deriveConstraint: (request) => (request.headers['x-amz-target'] === undefined ? undefined : 'present'),
};

export function registerSqsApi(app: FastifyInstance, options: SqsApiOptions): void {
  app.addConstraintStrategy(awsTarget);
  app.post(
    '/',
    {
      constraints: { awsTarget: 'present' },
      // JSON escaping at most doubles a valid message (a \n or \" for one byte); the
      // engine enforces the real limit on the decoded message.
      bodyLimit: 2 * options.maxPayloadBytes + ENVELOPE_BYTES,
      errorHandler: (err: FastifyError, request, reply) => sendError(request, reply, sqsError(err, request, options.logger)),
    },
    async (request, reply) => {
      const operation = operationFor(request.headers['x-amz-target']);
      const input = parseBody(request.body as Buffer | undefined);
      const output = await operation({ queues: options.queues, maxPayloadBytes: options.maxPayloadBytes, request, reply }, input);
      return sendJson(request, reply, output);
    },
  );
}

function operationFor(target: string | string[] | undefined): Operation {
  const name = typeof target === 'string' && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
  const operation = name === undefined ? undefined : operations.get(name);
  if (operation) return operation;
  if (name !== undefined && unsupportedOperations.has(name)) {
    throw new EventError(
      'UnsupportedOperation',
      name === 'SetQueueAttributes'
        ? "SetQueueAttributes is not supported by Berth: a queue's attributes are set when it is created. Change them in berth.yml, or delete the queue and create it again with the new attributes."
        : `${name} is not supported by Berth. Supported operations: ${[...operations.keys()].join(', ')}.`,
    );
  }
  throw new EventError(
    'InvalidAction',
    `The action ${JSON.stringify(target)} is not valid for this endpoint. Send X-Amz-Target: ${TARGET_PREFIX}<Operation>, one of ${[...operations.keys()].join(', ')}.`,
  );
}

/** Every failure of an SQS call, as the SQS error it is shown as. */
function sqsError(err: FastifyError, request: FastifyRequest, logger: BaseLogger): EventError {
  if (isEventError(err)) return err;
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const limit = request.routeOptions.bodyLimit;
    return request.headers['x-amz-target'] === `${TARGET_PREFIX}SendMessageBatch`
      ? new EventError('BatchRequestTooLong', `The request is larger than ${limit} bytes; its messages cannot fit the events.maxPayload limit in berth.yml. Send fewer or smaller messages per request.`)
      : new EventError('InvalidMessageContents', `The request is larger than ${limit} bytes; its message cannot fit the events.maxPayload limit in berth.yml. Send a smaller message, or raise events.maxPayload.`);
  }
  if (err.statusCode !== undefined && err.statusCode < 500) {
    return new EventError('SerializationException', `The request could not be read: ${err.message}. Send a JSON body as the AWS SDK does.`);
  }
  logger.error({ err, reqId: request.id }, 'unhandled SQS API error');
  return new EventError('InternalFailure', `Internal error in Berth while serving this request (id ${request.id}); see the gateway log. Retry the request.`);
}
