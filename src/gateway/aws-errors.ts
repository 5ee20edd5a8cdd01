/**
 * The one place Berth errors become AWS Lambda API errors: an `x-amzn-ErrorType`
 * header and the JSON body fields the AWS SDK parses into typed exceptions.
 */
import type { FastifyReply } from 'fastify';
import { isBerthError } from '../errors.js';
import { isEventError } from '../events/index.js';
import { functionArn } from '../runtime/index.js';

export type LambdaErrorName =
  | 'ResourceNotFoundException'
  | 'InvalidRequestContentException'
  | 'RequestTooLargeException'
  | 'InvalidParameterValueException'
  | 'TooManyRequestsException'
  | 'ServiceException';

const STATUS: Record<LambdaErrorName, number> = {
  ResourceNotFoundException: 404,
  InvalidRequestContentException: 400,
  RequestTooLargeException: 413,
  InvalidParameterValueException: 400,
  TooManyRequestsException: 429,
  ServiceException: 500,
};

export function sendLambdaError(reply: FastifyReply, name: LambdaErrorName, message: string, extra: Record<string, string> = {}): FastifyReply {
  // ResourceNotFoundException models `Message`; the others model `message`.
  const body = name === 'ResourceNotFoundException' ? { Type: 'User', Message: message } : { Type: name === 'ServiceException' ? 'Service' : 'User', message, ...extra };
  return reply.code(STATUS[name]).header('x-amzn-ErrorType', name).header('content-type', 'application/json').send(JSON.stringify(body));
}

/** What a throttled caller is told to wait: capacity frees as running invocations end. */
export const RETRY_AFTER_SECONDS = 1;

export function functionNotFound(reply: FastifyReply, name: string): FastifyReply {
  return sendLambdaError(reply, 'ResourceNotFoundException', `Function not found: ${functionArn(name)}`);
}

/** Maps an error thrown while serving a Lambda API call. */
export function sendLambdaErrorFor(reply: FastifyReply, err: unknown, functionName: string): FastifyReply {
  if (isBerthError(err, 'BERTH_ERR_FUNCTION_NOT_FOUND')) return functionNotFound(reply, functionName);
  if (isBerthError(err, 'BERTH_ERR_THROTTLED')) {
    reply.header('retry-after', String(RETRY_AFTER_SECONDS));
    return sendLambdaError(reply, 'TooManyRequestsException', 'Rate Exceeded.', { Reason: String(err.detail.reason) });
  }
  if (isBerthError(err) && err.status < 500) return sendLambdaError(reply, 'InvalidParameterValueException', err.message);
  if (isEventError(err) && err.code === 'InvalidMessageContents') return sendLambdaError(reply, 'RequestTooLargeException', err.message);
  return sendLambdaError(reply, 'ServiceException', err instanceof Error ? err.message : String(err));
}
