/**
 * The Store conformance suite: what every store (SQLite today, PostgreSQL later)
 * must do, tested only through the Store interface. A backend's test file calls
 * storeConformance() with a factory that opens a new, empty store each time.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FunctionRecord, InvocationRecord, LogChunk, SecretRecord, Store } from '../../src/store/index.js';

export interface ConformanceOptions {
  /** Closes `store` and opens the same data again, as a restart would. Enables the persistence test. */
  reopen?: (store: Store) => Promise<Store>;
}

let counter = 0;

function invocation(overrides: Partial<InvocationRecord> = {}): InvocationRecord {
  counter++;
  return {
    id: `inv-${counter}-${Math.random().toString(36).slice(2)}`,
    attempt: 1,
    functionName: 'alpha',
    tenantId: null,
    trigger: 'http',
    status: 'succeeded',
    startedAt: 1_700_000_000_000 + counter,
    durationMs: 1.5,
    billedMs: 2,
    initDurationMs: null,
    maxMemoryMb: 40,
    errorType: null,
    errorMessage: null,
    ...overrides,
  };
}

function log(invocationId: string, text: string, overrides: Partial<LogChunk> = {}): LogChunk {
  return { invocationId, functionName: 'alpha', tenantId: null, ts: 1_700_000_000_000, text, ...overrides };
}

/** Opens a store, runs `body` with it and always closes it. */
async function withStore(open: () => Promise<Store>, body: (store: Store) => Promise<Store | void>): Promise<void> {
  let store = await open();
  try {
    store = (await body(store)) ?? store;
  } finally {
    await store.close();
  }
}

export function storeConformance(name: string, open: () => Promise<Store>, options: ConformanceOptions = {}): void {
  describe(`Store conformance: ${name}`, () => {
    test('writeBatch + getInvocation round-trips every field, nulls included', () =>
      withStore(open, async (store) => {
        const full = invocation({
          tenantId: 'tenant-a',
          trigger: 'invoke-api',
          status: 'failed',
          startedAt: 1_712_345_678_901,
          durationMs: 123.456,
          billedMs: 124,
          initDurationMs: 87.25,
          maxMemoryMb: 77,
          errorType: 'TypeError',
          errorMessage: "Cannot read properties of undefined (reading 'x') — ünïcødé ✓",
        });
        const bare = invocation({ status: 'timed_out', trigger: 'cli' });
        await store.writeBatch({ invocations: [full, bare], logs: [log(full.id, 'START\n')] });
        assert.deepEqual(await store.getInvocation(full.id), [full]);
        assert.deepEqual(await store.getInvocation(bare.id), [bare]);
        assert.deepEqual(await store.getInvocation('no-such-id'), []);
      }));

    test('writeBatch is all or nothing', () =>
      withStore(open, async (store) => {
        const good = invocation({ functionName: 'atomic' });
        // A record the store must refuse (a required field missing), in the same batch as valid ones.
        const bad = { ...invocation({ functionName: 'atomic' }), status: null } as unknown as InvocationRecord;
        await assert.rejects(store.writeBatch({ invocations: [good, bad], logs: [log(good.id, 'lost?\n', { functionName: 'atomic' })] }));
        assert.deepEqual(await store.getInvocation(good.id), []);
        assert.deepEqual(await store.listLogs({ functionName: 'atomic', limit: 10 }), []);
        // The store still works afterwards.
        await store.writeBatch({ invocations: [good], logs: [] });
        assert.deepEqual(await store.getInvocation(good.id), [good]);
      }));

    test('listInvocations: newest first, limited, one function only', () =>
      withStore(open, async (store) => {
        const base = 1_800_000_000_000;
        const records = [3, 1, 5, 2, 4].map((n) => invocation({ functionName: 'listed', startedAt: base + n * 1000 }));
        const other = invocation({ functionName: 'other', startedAt: base + 10_000 });
        await store.writeBatch({ invocations: records.slice(0, 3), logs: [] });
        await store.writeBatch({ invocations: [...records.slice(3), other], logs: [] });
        const newest3 = await store.listInvocations('listed', 3);
        assert.deepEqual(
          newest3.map((r) => r.startedAt),
          [base + 5000, base + 4000, base + 3000],
        );
        assert.deepEqual(newest3[0], records[2]);
        assert.equal((await store.listInvocations('listed', 100)).length, 5);
        assert.deepEqual(await store.listInvocations('nobody', 10), []);
      }));

    test('logsOf: one invocation\'s output across batches, in order, and nothing of others', () =>
      withStore(open, async (store) => {
        const id = invocation().id;
        await store.writeBatch({ invocations: [], logs: [log(id, 'first\n'), log(invocation().id, 'other\n')] });
        await store.writeBatch({ invocations: [], logs: [log(id, 'second\n')] });
        assert.equal(await store.logsOf(id), 'first\nsecond\n');
        assert.equal(await store.logsOf('no-such-invocation'), '');
      }));

    test('listLogs without a cursor: the latest N, in ascending seq', () =>
      withStore(open, async (store) => {
        const id = invocation().id;
        await store.writeBatch({ invocations: [], logs: ['one', 'two', 'three'].map((t) => log(id, `${t}\n`, { functionName: 'logged' })) });
        await store.writeBatch({ invocations: [], logs: [log(id, 'noise\n', { functionName: 'elsewhere' })] });
        await store.writeBatch({
          invocations: [],
          logs: ['four', 'five'].map((t) => log(id, `${t}\n`, { functionName: 'logged', tenantId: 't9', ts: 1_900_000_000_000 })),
        });
        const latest = await store.listLogs({ functionName: 'logged', limit: 3 });
        assert.deepEqual(
          latest.map((l) => l.text),
          ['three\n', 'four\n', 'five\n'],
        );
        for (let i = 1; i < latest.length; i++) assert.ok(latest[i]!.seq > latest[i - 1]!.seq, 'seq ascends');
        const last = latest.at(-1)!;
        assert.equal(last.invocationId, id);
        assert.equal(last.functionName, 'logged');
        assert.equal(last.tenantId, 't9');
        assert.equal(last.ts, 1_900_000_000_000);
        assert.equal(typeof last.seq, 'number');
        const all = await store.listLogs({ functionName: 'logged', limit: 100 });
        assert.deepEqual(
          all.map((l) => l.text),
          ['one\n', 'two\n', 'three\n', 'four\n', 'five\n'],
        );
      }));

    test('listLogs with afterSeq pages forward through every entry exactly once', () =>
      withStore(open, async (store) => {
        const id = invocation().id;
        const texts = Array.from({ length: 7 }, (_, i) => `line ${i}\n`);
        for (const text of texts) {
          await store.writeBatch({ invocations: [], logs: [log(id, text, { functionName: 'paged' }), log(id, 'x\n', { functionName: 'interleaved' })] });
        }
        const seen: string[] = [];
        let cursor = 0;
        for (let pages = 0; pages < 10; pages++) {
          const page = await store.listLogs({ functionName: 'paged', afterSeq: cursor, limit: 3 });
          if (page.length === 0) break;
          assert.ok(page.length <= 3);
          for (const entry of page) {
            assert.ok(entry.seq > cursor, 'every entry is after the cursor');
            cursor = entry.seq;
            seen.push(entry.text);
          }
        }
        assert.deepEqual(seen, texts);
        // A follower at the end sees only what is written next.
        assert.deepEqual(await store.listLogs({ functionName: 'paged', afterSeq: cursor, limit: 10 }), []);
        await store.writeBatch({ invocations: [], logs: [log(id, 'late\n', { functionName: 'paged' })] });
        const next = await store.listLogs({ functionName: 'paged', afterSeq: cursor, limit: 10 });
        assert.deepEqual(
          next.map((l) => l.text),
          ['late\n'],
        );
      }));

    test('saveFunctions inserts and then updates by name', () =>
      withStore(open, async (store) => {
        const a: FunctionRecord = { name: 'a', handler: 'a.handler', spec: { timeout: 3, routes: ['GET /a'], nested: { x: [1, null] } }, updatedAt: 1000 };
        const b: FunctionRecord = { name: 'b', handler: 'b.handler', spec: { timeout: 5 }, updatedAt: 1000 };
        await store.saveFunctions([b, a]);
        const byName = (list: FunctionRecord[]) => [...list].sort((x, y) => x.name.localeCompare(y.name));
        assert.deepEqual(byName(await store.listFunctions()), [a, b]);
        const a2: FunctionRecord = { name: 'a', handler: 'src/a.main', spec: { timeout: 9 }, updatedAt: 2000 };
        await store.saveFunctions([a2]);
        assert.deepEqual(byName(await store.listFunctions()), [a2, b]);
      }));

    if (options.reopen) {
      const reopen = options.reopen;
      test('data survives closing and reopening the store', () =>
        withStore(open, async (store) => {
          const record = invocation({ functionName: 'durable', tenantId: 'kept' });
          await store.writeBatch({ invocations: [record], logs: [log(record.id, 'kept\n', { functionName: 'durable' })] });
          await store.saveFunctions([{ name: 'durable', handler: 'd.handler', spec: { kept: true }, updatedAt: 5 }]);
          const before = await store.listLogs({ functionName: 'durable', limit: 10 });
          const reopened = await reopen(store);
          assert.deepEqual(await reopened.getInvocation(record.id), [record]);
          assert.deepEqual(await reopened.listLogs({ functionName: 'durable', limit: 10 }), before);
          assert.deepEqual(await reopened.listFunctions(), [{ name: 'durable', handler: 'd.handler', spec: { kept: true }, updatedAt: 5 }]);
          // New entries continue after the old ones.
          await reopened.writeBatch({ invocations: [], logs: [log(record.id, 'after\n', { functionName: 'durable' })] });
          const after = await reopened.listLogs({ functionName: 'durable', afterSeq: before.at(-1)!.seq, limit: 10 });
          assert.deepEqual(
            after.map((l) => l.text),
            ['after\n'],
          );
          return reopened;
        }));
    }

    test('secrets: put, get, replace, list by tenant and delete, the sealed bytes unchanged', () =>
      withStore(open, async (store) => {
        const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);
        const secret = (tenant: string, name: string, fill: number, updatedAt: number): SecretRecord => ({
          tenant,
          name,
          kind: 'value',
          ciphertext: Buffer.from([0, fill, 255, 10, 13]),
          iv: bytes(12, fill),
          tag: bytes(16, fill),
          keyId: 'abcdef0123456789',
          updatedAt,
        });
        const a = secret('acme', 'token', 1, 1000);
        await store.putSecret(a);
        await store.putSecret(secret('acme', 'api-key', 2, 2000));
        await store.putSecret(secret('globex', 'token', 3, 3000));
        assert.deepEqual(await store.getSecret('acme', 'token'), a);
        assert.equal(await store.getSecret('acme', 'nothing'), undefined);
        assert.equal(await store.getSecret('initech', 'token'), undefined);

        const replaced = { ...secret('acme', 'token', 4, 4000), kind: 'oauth2', keyId: '0123456789abcdef' };
        await store.putSecret(replaced);
        assert.deepEqual(await store.getSecret('acme', 'token'), replaced);
        assert.deepEqual(await store.getSecret('globex', 'token'), secret('globex', 'token', 3, 3000), 'same name, other tenant: untouched');

        assert.deepEqual(await store.listSecrets('acme'), [
          { name: 'api-key', kind: 'value', updatedAt: 2000 },
          { name: 'token', kind: 'oauth2', updatedAt: 4000 },
        ]);
        assert.deepEqual(await store.listSecrets('initech'), []);

        assert.equal(await store.deleteSecret('acme', 'token'), true);
        assert.equal(await store.deleteSecret('acme', 'token'), false);
        assert.equal(await store.getSecret('acme', 'token'), undefined);
        assert.deepEqual((await store.listSecrets('acme')).map((s) => s.name), ['api-key']);
        assert.equal((await store.listSecrets('globex')).length, 1);
      }));
  });
}
