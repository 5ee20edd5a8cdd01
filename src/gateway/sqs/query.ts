/**
 * SQS's Query wire format, as older SDKs (boto3/botocore before the JSON protocol,
 * the AWS CLI v1) speak it: form-encoded parameters in, XML out. Parameters are
 * decoded into the same members the JSON body carries, so both formats run the same
 * operations with the same validation; results and errors are written as SQS's XML.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EventError } from '../../events/index.js';
import { invalidValue, missing, type Input } from './wire.js';

const XMLNS = 'http://queue.amazonaws.com/doc/2012-11-05/';

/**
 * The most parameters a Query request may carry. The largest real one, a SendMessageBatch
 * of 10 entries, each with 5 members, 10 message attributes (3 parameters apiece) and an
 * X-Ray trace header (3 more), has about 400; 1000 leaves room for signature parameters
 * and long MessageAttributeName lists. Checked before any parameter is decoded, so a
 * request of millions costs a scan of its bytes, not a decoding of each.
 */
const MAX_PARAMETERS = 1000;
/**
 * Longer than any name in SQS's model: the deepest, SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringListValue.1,
 * has 7 parts. Bounds the nodes a name can cost.
 */
const MAX_NAME_PARTS = 8;

/** The request's parameters: the query string's, then (for a POST) the form body's. */
export function queryParameters(request: FastifyRequest): URLSearchParams {
  const query = request.url.indexOf('?');
  const queryString = query === -1 ? '' : request.url.slice(query + 1);
  const body = request.method === 'POST' ? (request.body as Buffer | undefined) : undefined;
  if (fieldCount(queryString) + fieldCount(body) > MAX_PARAMETERS) {
    throw new EventError(
      'InvalidParameterValue',
      `The request has more than ${MAX_PARAMETERS} parameters; no SQS request needs that many (a SendMessageBatch of 10 entries with 10 message attributes each has about 400). Send only the operation's parameters.`,
    );
  }
  const params = new URLSearchParams(queryString);
  if (body && body.length > 0) {
    for (const [name, value] of new URLSearchParams(body.toString('utf8'))) params.append(name, value);
  }
  return params;
}

/** How many `&`-separated fields a form has, counted no further than one past the limit. */
function fieldCount(form: string | Buffer | undefined): number {
  if (!form || form.length === 0) return 0;
  let count = 1;
  for (let at = form.indexOf('&'); at !== -1 && count <= MAX_PARAMETERS; at = form.indexOf('&', at + 1)) count++;
  return count;
}

/** The parameters as a tree on their dotted names: `Attribute.1.Name` is Attribute → 1 → Name. */
interface Node {
  value?: string;
  children: Map<string, Node>;
}

/** Parameters under a name `members` does not read are dropped here, before they cost a node. */
function tree(params: URLSearchParams, entryName: string): Node {
  const root: Node = { children: new Map() };
  for (const [name, value] of params) {
    const dot = name.indexOf('.');
    const top = dot === -1 ? name : name.slice(0, dot);
    if (!readsMember(top, entryName)) continue;
    const parts = name.split('.', MAX_NAME_PARTS + 1);
    if (parts.length > MAX_NAME_PARTS) {
      throw new EventError(
        'InvalidParameterValue',
        `A parameter named ${top}.… has more than ${MAX_NAME_PARTS} dot-separated parts; the deepest SQS parameter, SendMessageBatchRequestEntry.N.MessageAttribute.N.Value.StringListValue.N, has 7. Fix the parameter's name.`,
      );
    }
    let node = root;
    for (const part of parts) {
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
  'NextToken',
  'MessageBody',
  'ReceiptHandle',
  'MessageGroupId',
  'MessageDeduplicationId',
  'Id',
  // Inside a message attribute's Value.
  'DataType',
  'StringValue',
  'BinaryValue',
]);
/** Flattened lists, `AttributeName.1=All`: the parameter's name, and the member it fills. */
const LISTS = new Map([
  ['AttributeName', 'AttributeNames'],
  ['MessageAttributeName', 'MessageAttributeNames'],
  ['MessageSystemAttributeName', 'MessageSystemAttributeNames'],
]);
/** Flattened maps, `Attribute.1.Name=...&Attribute.1.Value=...`: the parameter's name, and the member it fills. */
const MAPS = new Map([
  ['Attribute', 'Attributes'],
  ['MessageAttribute', 'MessageAttributes'],
]);

/** Whether `members` reads a parameter of this name (a batch's entries are `entryName`). */
function readsMember(name: string, entryName: string): boolean {
  return STRINGS.has(name) || INTEGERS.has(name) || LISTS.has(name) || MAPS.has(name) || name === entryName;
}

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
    const list = LISTS.get(name);
    const map = MAPS.get(name);
    if (STRINGS.has(name)) {
      if (child.value !== undefined) input[name] = child.value;
    } else if (INTEGERS.has(name)) {
      if (child.value !== undefined) input[name] = integer(at, child.value);
    } else if (list !== undefined) {
      input[list] = items(child, at).map(([, item]) => item.value ?? '');
    } else if (map !== undefined) {
      input[map] = Object.fromEntries(
        items(child, at).map(([itemPath, item]) => {
          const key = item.children.get('Name')?.value;
          if (key === undefined) throw missing(`${itemPath}.Name`);
          return [key, mapValue(item.children.get('Value'), `${itemPath}.Value`)];
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
  const entryName = `${action}RequestEntry`;
  const input = members(tree(params, entryName), '', entryName);
  if (input.QueueUrl === undefined && pathQueueUrl !== undefined) input.QueueUrl = pathQueueUrl;
  return input;
}

/** Operations whose response has no Result element. */
const VOID_OPERATIONS = new Set(['DeleteMessage', 'ChangeMessageVisibility', 'PurgeQueue', 'DeleteQueue']);

/** Result members that are lists, and the element each item is written as. */
const LIST_ITEMS = new Map([
  ['QueueUrls', 'QueueUrl'],
  ['Messages', 'Message'],
  ['Failed', 'BatchResultErrorEntry'],
  // SendMessage never stores list values, but a message sent through Berth's own API can carry them.
  ['StringListValues', 'StringListValue'],
  ['BinaryListValues', 'BinaryListValue'],
]);
/** Result members that are maps, written as `<Attribute><Name>k</Name><Value>v</Value></Attribute>`. */
const MAP_ITEMS = new Map([
  ['Attributes', 'Attribute'],
  ['MessageAttributes', 'MessageAttribute'],
]);

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
    const item = name === 'Successful' ? `${action}ResultEntry` : (LIST_ITEMS.get(name) ?? name);
    return value.map((entry) => element(action, item, entry)).join('');
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    const mapItem = MAP_ITEMS.get(name);
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
