/** String handling that input from outside must never break: percent-decoding and comparing secrets. */
import { timingSafeEqual } from 'node:crypto';

/** decodeURIComponent, but input that is not valid percent-encoding is kept as it stands instead of throwing. */
export function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Whether two secrets are equal, in time that does not tell how much of them matched. Compared as
 * bytes: a string with non-ASCII characters has more bytes than characters, and timingSafeEqual
 * throws on unequal lengths.
 */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
