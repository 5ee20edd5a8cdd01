/**
 * SQS's Query wire format, as older SDKs (boto3/botocore before the JSON protocol,
 * the AWS CLI v1) speak it: form-encoded parameters in, XML out. Parameters are
 * decoded into the same members the JSON body carries, so both formats run the same
 * operations with the same validation; results and errors are written as SQS's XML.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventError } from '../../events/index.js';
import { invalidValue, missing, type Input } from './wire.js';

const XMLNS = 'http://queue.amazonaws.com/doc/2012-11-05/';

/** The request's parameters: the query string's, then (for a POST) the form body's. */
export function queryParameters(request: FastifyRequest): URLSearchParams {
  const query = request.url.indexOf('?');
  const params = new URLSearchParams(query === -1 ? '' : request.url.slice(query + 1));
  const body = request.body as Buffer | undefined;
  if (request.method === 'POST' && body && body.length > 0) {
    for (const [name, value] of new URLSearchParams(body.toString('utf8'))) params.append(name, value);
  }
  return params;
}

/** The parameters as a tree on their dotted names: `Attribute.1.Name` is Attribute → 1 → Name. */
interface Node {
  value?: string;
  children: Map<string, Node>;
}

function tree(params: URLSearchParams): Node {
  const root: Node = { children: new Map() };
  for (const [name, value] of params) {
    let node = root;
    for (const part of name.split('.')) {
      let child = node.children.get(part);
      if (!child) node.children.set(part, (child = { children: new Map() }));
      node = child;
    }
    // A repeated parameter keeps its first value.
    node.value ??= value;
  }
  return root;
}

/** Members that are whole numbers; every other scalar member is a string. */
const INTEGERS = new Set(['DelaySeconds', 'MaxNumberOfMessages', 'VisibilityTimeout', 'WaitTimeSeconds', 'MaxResults']);
const STRINGS = new Set([
  'QueueUrl',
  'QueueName',
  'QueueNamePrefix',
  'QueueOwnerAWSAccountId',
  'NextToken',
  'MessageBody',
  'ReceiptHandle',
  'MessageGroupId',
  'MessageDeduplicationId',
  'ReceiveRequestAttemptId',
  'Id',
  // Inside a message attribute's Value.
  'DataType',
  'StringValue',
  'BinaryValue',
]);
/** Flattened lists, `AttributeName.1=All`: the parameter's name, and the member it fills. */
const LISTS: Record<string, string> = {
  AttributeName: 'AttributeNames',
  MessageAttributeName: 'MessageAttributeNames',
  MessageSystemAttributeName: 'MessageSystemAttributeNames',
  StringListValue: 'StringListValues',
  BinaryListValue: 'BinaryListValues',
};
/** Flattened maps, `Attribute.1.Name=...&Attribute.1.Value=...`: member, key name, value name. */
const MAPS: Record<string, { member: string; key: string }> = {
  Attribute: { member: 'Attributes', key: 'Name' },
  Tag: { member: 'tags', key: 'Key' },
  MessageAttribute: { member: 'MessageAttributes', key: 'Name' },
  MessageSystemAttribute: { member: 'MessageSystemAttributes', key: 'Name' },
};

/** A list's or map's numbered items, in order of their numbers. */
function items(node: Node, path: string): [string, Node][] {
  const numbered = [...node.children].map(([index, child]): [number, string, Node] => {
    if (!/^[1-9]\d{0,5}$/.test(index)) throw invalidValue(`${path}.${index}`, index, `${path} is a list: number its items ${path}.1, ${path}.2 and so on.`);
    return [Number(index), `${path}.${index}`, child];
  });
  return numbered.sort((a, b) => a[0] - b[0]).map(([, name, child]) => [name, child]);
}

/** A map value: a plain string (Attribute.N.Value) or a structure (MessageAttribute.N.Value.DataType). */
function mapValue(node: Node | undefined, path: string): unknown {
  if (!node) return undefined;
  return node.children.size > 0 ? members(node, path) : node.value;
}

/**
 * The members a node's parameters spell, under their JSON names. Parameters the
 * operations do not know (Action, Version, signature parameters) are left out, as
 * unknown JSON members are ignored.
 */
function members(node: Node, path: string, entryName?: string): Input {
  const input: Input = {};
  for (const [name, child] of node.children) {
    const at = path === '' ? name : `${path}.${name}`;
    if (STRINGS.has(name)) {
      if (child.value !== undefined) input[name] = child.value;
    } else if (INTEGERS.has(name)) {
      if (child.value !== undefined) input[name] = integer(at, child.value);
    } else if (LISTS[name] !== undefined) {
      input[LISTS[name]] = items(child, at).map(([, item]) => item.value ?? '');
    } else if (MAPS[name] !== undefined) {
      const { member, key } = MAPS[name];
      input[member] = Object.fromEntries(
        items(child, at).map(([itemPath, item]) => {
          const keyValue = item.children.get(key)?.value;
          if (keyValue === undefined) throw missing(`${itemPath}.${key}`);
          return [keyValue, mapValue(item.children.get('Value'), `${itemPath}.Value`)];
        }),
      );
    } else if (entryName !== undefined && name === entryName) {
      input.Entries = items(child, at).map(([itemPath, item]) => members(item, itemPath));
    }
  }
  return input;
}

function integer(name: string, value: string): number {
  if (!/^[+-]?\d{1,15}$/.test(value)) throw invalidValue(name, value, 'Must be a whole number.');
  return Number(value);
}

/**
 * An operation's input from its Query parameters. A batch's entries are
 * `<Action>RequestEntry.N.*` (SendMessageBatchRequestEntry.1.Id). A request sent to
 * a queue's URL (`/<account>/<queue>`) names its queue by that path.
 */
export function queryInput(action: string, params: URLSearchParams, pathQueueUrl: string | undefined): Input {
  const input = members(tree(params), '', `${action}RequestEntry`);
  if (input.QueueUrl === undefined && pathQueueUrl !== undefined) input.QueueUrl = pathQueueUrl;
  return input;
}

/** Operations whose response has no Result element. */
const VOID_OPERATIONS = new Set(['DeleteMessage', 'ChangeMessageVisibility', 'PurgeQueue', 'DeleteQueue']);

/** Result members that are lists, and the element each item is written as. */
const LIST_ITEMS: Record<string, string> = {
  QueueUrls: 'QueueUrl',
  Messages: 'Message',
  Failed: 'BatchResultErrorEntry',
  StringListValues: 'StringListValue',
  BinaryListValues: 'BinaryListValue',
};
/** Result members that are maps, written as `<Attribute><Name>k</Name><Value>v</Value></Attribute>`. */
const MAP_ITEMS: Record<string, string> = { Attributes: 'Attribute', MessageAttributes: 'MessageAttribute' };

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#xD;' };

/**
 * Text as XML character data. A carriage return is written as a reference: XML
 * parsers turn a literal one into a line feed, and the body's MD5 would no longer match.
 */
function escapeXml(text: string): string {
  return text.replace(/[&<>"'\r]/g, (c) => XML_ESCAPES[c]!);
}

function element(action: string, name: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) {
    const item = name === 'Successful' ? `${action}ResultEntry` : (LIST_ITEMS[name] ?? name);
    return value.map((entry) => element(action, item, entry)).join('');
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    const mapItem = MAP_ITEMS[name];
    if (mapItem !== undefined) {
      return entries.map(([key, entry]) => `<${mapItem}><Name>${escapeXml(key)}</Name>${element(action, 'Value', entry)}</${mapItem}>`).join('');
    }
    return `<${name}>${entries.map(([key, entry]) => element(action, key, entry)).join('')}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

function metadata(requestId: string): string {
  return `<ResponseMetadata><RequestId>${escapeXml(requestId)}</RequestId></ResponseMetadata>`;
}

/** `<SendMessageResponse><SendMessageResult>…</SendMessageResult><ResponseMetadata>…` */
export function sendQueryResult(request: FastifyRequest, reply: FastifyReply, action: string, output: object): FastifyReply {
  const result = VOID_OPERATIONS.has(action) ? '' : element(action, `${action}Result`, output);
  return sendXml(request, reply, 200, `<${action}Response xmlns="${XMLNS}">${result}${metadata(request.id)}</${action}Response>`);
}

/** SQS's Query error: the legacy code (AWS.SimpleQueueService.NonExistentQueue), Sender or Receiver, the modeled status. */
export function sendQueryError(request: FastifyRequest, reply: FastifyReply, err: EventError): FastifyReply {
  const type = err.status >= 500 ? 'Receiver' : 'Sender';
  const error = `<Error><Type>${type}</Type><Code>${escapeXml(err.queryCode)}</Code><Message>${escapeXml(err.message)}</Message><Detail/></Error>`;
  return sendXml(request, reply, err.status, `<ErrorResponse xmlns="${XMLNS}">${error}<RequestId>${escapeXml(request.id)}</RequestId></ErrorResponse>`);
}

/** Sent as bytes: Fastify would add a charset to a string's content type, which SQS does not send. */
function sendXml(request: FastifyRequest, reply: FastifyReply, status: number, xml: string): FastifyReply {
  return reply
    .code(status)
    .header('x-amzn-requestid', request.id)
    .header('content-type', 'text/xml')
    .send(Buffer.from(`<?xml version="1.0"?>${xml}`));
}
