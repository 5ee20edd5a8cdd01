/** Handlers in event tests append one JSON line per call to a file; tests read them back. */
import { existsSync, readFileSync } from 'node:fs';
import { waitFor } from './lambda.js';

export function readRecords<T = Record<string, any>>(file: string): T[] {
  if (!existsSync(file)) return [];
  // Only whole lines: a handler may be writing the last one right now.
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(0, -1)
    .map((line) => JSON.parse(line) as T);
}

/** Waits until the file holds at least `count` records matching `filter`, and returns them. */
export function waitForRecords<T = Record<string, any>>(
  file: string,
  count: number,
  options: { what: string; timeoutMs?: number; filter?: (record: T) => boolean } = { what: 'records' },
): Promise<T[]> {
  return waitFor(
    () => {
      const records = readRecords<T>(file).filter(options.filter ?? (() => true));
      return records.length >= count ? records : undefined;
    },
    { what: `${options.what} (${count} in ${file})`, timeoutMs: options.timeoutMs ?? 10_000 },
  );
}

/** A handler module that records `{id, attempt, event}` and fails while `event.failUntil` > attempt. */
export const RECORDING_HANDLER = `
import { appendFileSync } from 'node:fs';
export const handler = async (event, context) => {
  appendFileSync(process.env.RECORDS, JSON.stringify({ fn: context.functionName, id: context.awsRequestId, attempt: context.attempt, event }) + '\\n');
  if (event && event.sleepMs) await new Promise((r) => setTimeout(r, event.sleepMs));
  if (event && event.failUntil && context.attempt < event.failUntil) throw new Error('failing attempt ' + context.attempt);
  return { handled: event, attempt: context.attempt };
};
`;
