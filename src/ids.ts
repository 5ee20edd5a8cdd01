import { randomUUID } from 'node:crypto';

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
