import { createHash, randomUUID } from 'node:crypto';

/**
 * A time-ordered UUID (version 7) for invocation ids: the store appends them to its
 * index instead of scattering random keys across it. Built on randomUUID(), whose
 * batched randomness is ~20x faster than generating the random part separately.
 */
export function invocationId(now = Date.now()): string {
  const time = now.toString(16).padStart(12, '0');
  const random = randomUUID();
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15)}`;
}

/** A name-based UUID (version 5 layout): the same name always gives the same id, e.g. one schedule tick or one flow step. */
export function nameBasedId(name: string): string {
  const hex = createHash('sha1').update(name).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
