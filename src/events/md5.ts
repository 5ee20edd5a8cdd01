/** The MD5 digests SQS clients verify: of a body, and of message attributes in SQS's binary layout. */
import { createHash } from 'node:crypto';

export interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  /** Base64, as the JSON protocol carries it. */
  BinaryValue?: string;
  StringListValues?: string[];
  BinaryListValues?: string[];
}

export type MessageAttributes = Record<string, MessageAttributeValue>;

export function md5Hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * Names sorted; for each: length-prefixed name, length-prefixed data type, a
 * transport byte (1 string/number, 2 binary), then the length-prefixed value.
 */
export function md5OfAttributes(attributes: MessageAttributes | undefined): string | undefined {
  if (!attributes || Object.keys(attributes).length === 0) return undefined;
  const hash = createHash('md5');
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const value = attributes[name]!;
    lengthPrefixed(Buffer.from(name, 'utf8'));
    lengthPrefixed(Buffer.from(value.DataType, 'utf8'));
    if (value.BinaryValue !== undefined) {
      hash.update(Buffer.from([2]));
      lengthPrefixed(Buffer.from(value.BinaryValue, 'base64'));
    } else {
      hash.update(Buffer.from([1]));
      lengthPrefixed(Buffer.from(value.StringValue ?? '', 'utf8'));
    }
  }
  return hash.digest('hex');
}
