/**
 * Errors of the event layer, named as SQS names them so the SQS API can answer
 * with the exact wire shape (aws-wire.md §3); Berth's own API uses the same codes.
 */
const definitions = {
  QueueDoesNotExist: { status: 400, queryCode: 'AWS.SimpleQueueService.NonExistentQueue' },
  QueueNameExists: { status: 400, queryCode: 'QueueAlreadyExists' },
  ReceiptHandleIsInvalid: { status: 404, queryCode: 'ReceiptHandleIsInvalid' },
  MessageNotInflight: { status: 400, queryCode: 'AWS.SimpleQueueService.MessageNotInflight' },
  TooManyEntriesInBatchRequest: { status: 400, queryCode: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest' },
  EmptyBatchRequest: { status: 400, queryCode: 'AWS.SimpleQueueService.EmptyBatchRequest' },
  BatchEntryIdsNotDistinct: { status: 400, queryCode: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct' },
  InvalidBatchEntryId: { status: 400, queryCode: 'AWS.SimpleQueueService.InvalidBatchEntryId' },
  BatchRequestTooLong: { status: 400, queryCode: 'AWS.SimpleQueueService.BatchRequestTooLong' },
  UnsupportedOperation: { status: 400, queryCode: 'AWS.SimpleQueueService.UnsupportedOperation' },
  InvalidMessageContents: { status: 400, queryCode: 'InvalidMessageContents' },
  InvalidAttributeName: { status: 400, queryCode: 'InvalidAttributeName' },
  InvalidParameterValue: { status: 400, queryCode: 'InvalidParameterValue' },
  MissingParameter: { status: 400, queryCode: 'MissingParameter' },
  InvalidAttributeValue: { status: 400, queryCode: 'InvalidAttributeValue' },
  InvalidAddress: { status: 404, queryCode: 'InvalidAddress' },
  /** An X-Amz-Target or Query Action naming no SQS operation (SQS's documented common error for an unknown action). */
  InvalidAction: { status: 400, queryCode: 'InvalidAction' },
  /** A Query-protocol request with no Action parameter. */
  MissingAction: { status: 400, queryCode: 'MissingAction' },
  /** A request body that is not a JSON object of the operation's members, as AWS JSON services answer it. */
  SerializationException: { status: 400, queryCode: 'SerializationException' },
  InternalFailure: { status: 500, queryCode: 'InternalFailure' },
  TopicNotFound: { status: 404, queryCode: 'NotFound' },
  ServiceUnavailable: { status: 503, queryCode: 'ServiceUnavailable' },
} as const;

export type EventErrorCode = keyof typeof definitions;

export class EventError extends Error {
  readonly status: number;
  readonly queryCode: string;

  constructor(
    readonly code: EventErrorCode,
    message: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'EventError';
    this.status = definitions[code].status;
    this.queryCode = definitions[code].queryCode;
  }
}

export function isEventError(value: unknown): value is EventError {
  return value instanceof EventError;
}
