/**
 * The SQS API over Berth's queues, in both of SQS's wire formats: AWS JSON 1.0, as
 * @aws-sdk/client-sqs and current SDKs speak it (`POST /` with `X-Amz-Target:
 * AmazonSQS.<Operation>`, aws-wire.md §3), and the Query protocol of older SDKs
 * (form-encoded `Action=<Operation>&...`, answered in XML). Both run the same
 * operations (operations.ts) on the same members; only reading and writing differ.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ConstraintStrategy, Handler, HTTPVersion } from 'find-my-way';
import type { BaseLogger } from 'pino';
import { EventError, isEventError, type QueueService } from '../../events/index.js';
import { operations, unsupportedOperations, type Operation } from './operations.js';
import { queryInput, queryParameters, sendQueryError, sendQueryResult } from './query.js';
import { parseBody, queueUrl, sendError, sendJson } from './wire.js';

export interface SqsApiOptions {
  queues: QueueService;
  /** events.maxPayload: the largest message, and the largest batch. */
  maxPayloadBytes: number;
  logger: BaseLogger;
}

const TARGET_PREFIX = 'AmazonSQS.';
/**
 * Room for a request's members around its messages: the queue URL, entry ids, group and
 * deduplication ids and (in a Query request) the parameter names: about 40 KiB at most,
 * for 10 entries with 10 message attributes, the longest ids and a trace header each.
 */
const ENVELOPE_BYTES = 64 * 1024;
/**
 * How much larger than its messages a valid Query request can be. A SendMessageBatch's
 * messages together fit events.maxPayload (SendMessageBatch enforces it), so a request
 * carries at most that much payload, form-encoded: a text byte becomes at most 3 (%XX),
 * and a binary attribute byte at most 4 (base64 writes 3 bytes as 4 characters, and its
 * + / = are percent-encoded too).
 */
const QUERY_ENCODING_FACTOR = 4;
/** A SigV4 credential scope for the sqs service, in an Authorization header or a presigned URL. */
const SQS_SCOPE = /Credential=[^,\s]*\/sqs\/aws4_request/;
const SQS_SCOPE_IN_QUERY = /[?&]X-Amz-Credential=[^&]*%2Fsqs%2Faws4_request/i;
const ACTION_IN_QUERY = /[?&]Action=([A-Za-z]+)(?:&|$)/;

type Protocol = 'json' | 'query';

/**
 * Routing: `POST /` carries SQS calls and a user's own `POST /` route, which the
 * gateway's catch-all serves. A route constraint tells them apart: a request with an
 * X-Amz-Target header is a JSON call; one without it is a Query call if it is signed
 * for the sqs service, or if its query string names an SQS action (`?Action=ListQueues`).
 * Anything else falls through to the catch-all. (A check inside a route could not
 * hand a request back to the catch-all.) Any X-Amz-Target counts, so a wrong one
 * gets an SQS error instead of reaching a user's function.
 */
function protocolOf(request: { headers: Record<string, string | string[] | undefined>; url?: string }): Protocol | undefined {
  if (request.headers['x-amz-target'] !== undefined) return 'json';
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string' && SQS_SCOPE.test(authorization)) return 'query';
  const url = request.url ?? '';
  if (!url.includes('?')) return undefined;
  if (SQS_SCOPE_IN_QUERY.test(url)) return 'query';
  const action = ACTION_IN_QUERY.exec(url)?.[1];
  return action !== undefined && (operations.has(action) || unsupportedOperations.has(action)) ? 'query' : undefined;
}

const sqsProtocol: ConstraintStrategy<HTTPVersion.V1, unknown> = {
  name: 'sqsProtocol',
  storage() {
    const handlers = new Map<unknown, Handler<HTTPVersion.V1>>();
    return { get: (value) => handlers.get(value) ?? null, set: (value, handler) => void handlers.set(value, handler) };
  },
  deriveConstraint: (request) => protocolOf(request),
};

export function registerSqsApi(app: FastifyInstance, options: SqsApiOptions): void {
  app.addConstraintStrategy(sqsProtocol);
  const run = (operation: Operation, input: Record<string, unknown>, request: FastifyRequest, reply: FastifyReply) =>
    operation({ queues: options.queues, maxPayloadBytes: options.maxPayloadBytes, request, reply }, input);

  app.post(
    '/',
    {
      constraints: { sqsProtocol: 'json' },
      // JSON escaping at most doubles a valid message (a \n or \" for one byte); the
      // engine enforces the real limit on the decoded message.
      bodyLimit: 2 * options.maxPayloadBytes + ENVELOPE_BYTES,
      errorHandler: (err: FastifyError, request, reply) => sendError(request, reply, sqsError(err, request, jsonAction(request), options.logger)),
    },
    async (request, reply) => {
      const target = request.headers['x-amz-target'];
      const operation = operationNamed(jsonAction(request), () =>
        new EventError(
          'InvalidAction',
          `The action ${JSON.stringify(target)} is not valid for this endpoint. Send X-Amz-Target: ${TARGET_PREFIX}<Operation>, one of ${[...operations.keys()].join(', ')}.`,
        ),
      );
      const output = await run(operation, parseBody(request.body as Buffer | undefined), request, reply);
      return sendJson(request, reply, output);
    },
  );

  // Query calls go to `/` or to a queue's URL, by GET or by a form-encoded POST.
  for (const url of ['/', '/:account/:queue']) {
    app.route<{ Params: { account?: string; queue?: string } }>({
      method: ['GET', 'POST'],
      url,
      constraints: { sqsProtocol: 'query' },
      // Only a request that cannot be valid is refused here; the engine enforces the real limit.
      bodyLimit: QUERY_ENCODING_FACTOR * options.maxPayloadBytes + ENVELOPE_BYTES,
      errorHandler: (err: FastifyError, request, reply) => sendQueryError(request, reply, sqsError(err, request, queryActionInUrl(request), options.logger)),
      handler: async (request, reply) => {
        const params = queryParameters(request);
        const action = params.get('Action');
        if (action === null || action === '') {
          throw new EventError('MissingAction', `The request has no Action parameter. Send Action=<Operation>, one of ${[...operations.keys()].join(', ')}, with Version=2012-11-05.`);
        }
        const operation = operationNamed(action, () =>
          new EventError('InvalidAction', `The action ${action} is not valid for this endpoint. Send Action=<Operation>, one of ${[...operations.keys()].join(', ')}.`),
        );
        const pathQueue = request.params.queue === undefined ? undefined : queueUrl(request, request.params.queue);
        const output = await run(operation, queryInput(action, params, pathQueue), request, reply);
        return sendQueryResult(request, reply, action, output);
      },
    });
  }
}

function jsonAction(request: FastifyRequest): string | undefined {
  const target = request.headers['x-amz-target'];
  return typeof target === 'string' && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
}

/** The action a Query request's URL names; one in a POST's body is not read when the body is refused. */
function queryActionInUrl(request: FastifyRequest): string | undefined {
  return ACTION_IN_QUERY.exec(request.url)?.[1];
}

/** The operation an action names; one Berth does not offer is UnsupportedOperation, anything else `invalid()`. */
function operationNamed(name: string | undefined, invalid: () => EventError): Operation {
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
  throw invalid();
}

/** Every failure of an SQS call, as the SQS error it is shown as. */
function sqsError(err: FastifyError, request: FastifyRequest, action: string | undefined, logger: BaseLogger): EventError {
  if (isEventError(err)) return err;
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const limit = request.routeOptions.bodyLimit;
    return action === 'SendMessageBatch'
      ? new EventError('BatchRequestTooLong', `The request is larger than ${limit} bytes; its messages cannot fit the events.maxPayload limit in berth.yml. Send fewer or smaller messages per request.`)
      : new EventError('InvalidMessageContents', `The request is larger than ${limit} bytes; its message cannot fit the events.maxPayload limit in berth.yml. Send a smaller message, or raise events.maxPayload.`);
  }
  if (err.statusCode !== undefined && err.statusCode < 500) {
    return new EventError('SerializationException', `The request could not be read: ${err.message}. Send the operation's parameters as the AWS SDK does.`);
  }
  logger.error({ err, reqId: request.id }, 'unhandled SQS API error');
  return new EventError('InternalFailure', `Internal error in Berth while serving this request (id ${request.id}); see the gateway log. Retry the request.`);
}
