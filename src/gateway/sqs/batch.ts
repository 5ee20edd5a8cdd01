/**
 * The batch operations' shared shape: 1-10 entries with distinct ids; each entry
 * succeeds or fails on its own, and the answer lists both.
 */
import { EventError, isEventError } from '../../events/index.js';
import { objectList, type Input } from './wire.js';

const MAX_ENTRIES = 10;
const ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;

export type BatchEntry = Input & { Id: string };

interface BatchResultErrorEntry {
  Id: string;
  SenderFault: boolean;
  Code: string;
  Message: string;
}

/** The request's Entries, or the error SQS gives for the whole batch. */
export function batchEntries(input: Input): BatchEntry[] {
  const entries = objectList(input, 'Entries');
  if (entries.length === 0) throw new EventError('EmptyBatchRequest', 'There should be at least one entry in the request. Send 1 to 10 Entries.');
  if (entries.length > MAX_ENTRIES) {
    throw new EventError('TooManyEntriesInBatchRequest', `Maximum number of entries per request are ${MAX_ENTRIES}. You have sent ${entries.length}. Split them into several requests.`);
  }
  const seen = new Set<string>();
  for (const { Id: id } of entries) {
    if (typeof id !== 'string' || !ENTRY_ID.test(id)) {
      throw new EventError('InvalidBatchEntryId', `A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long. Fix the Id ${JSON.stringify(id)}.`);
    }
    if (seen.has(id)) throw new EventError('BatchEntryIdsNotDistinct', `Id ${id} repeated. Give every entry of a batch its own Id.`);
    seen.add(id);
  }
  return entries as BatchEntry[];
}

/**
 * Runs every entry (one after another when order matters, as on a FIFO queue) and
 * sorts the outcomes into Successful and Failed. An error that is not an SQS error
 * is a Berth bug and fails the whole request.
 */
export async function runBatch<T extends object>(
  entries: BatchEntry[],
  run: (entry: BatchEntry, index: number) => Promise<T>,
  options: { sequential: boolean },
): Promise<{ Successful: (T & { Id: string })[]; Failed: BatchResultErrorEntry[] }> {
  const outcomes: PromiseSettledResult<T>[] = [];
  if (options.sequential) {
    for (const [index, entry] of entries.entries()) outcomes.push(...(await Promise.allSettled([run(entry, index)])));
  } else {
    outcomes.push(...(await Promise.allSettled(entries.map(run))));
  }
  const Successful: (T & { Id: string })[] = [];
  const Failed: BatchResultErrorEntry[] = [];
  outcomes.forEach((outcome, index) => {
    const Id = entries[index]!.Id;
    if (outcome.status === 'fulfilled') return void Successful.push({ Id, ...outcome.value });
    const err: unknown = outcome.reason;
    if (!isEventError(err)) throw err;
    Failed.push({ Id, SenderFault: err.status < 500, Code: err.queryCode, Message: err.message });
  });
  return { Successful, Failed };
}
