/** The embedded SQLite store: the shared Store conformance suite, plus its migrations. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore, type Store } from '../src/store/index.js';
import { repoRoot } from './helpers/project.js';
import { storeConformance } from './helpers/store-conformance.js';

/** Each store's data directory, so a reopen finds the same file. */
const dataDirs = new WeakMap<Store, string>();

function openAt(dataDir: string): Store {
  const store = openSqliteStore(dataDir);
  dataDirs.set(store, dataDir);
  return store;
}

/** A data directory that does not exist yet: opening the store creates it. */
const freshDataDir = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'berth-store-')), 'data', '.berth');

storeConformance('sqlite', async () => openAt(freshDataDir()), {
  reopen: async (store) => {
    const dir = dataDirs.get(store)!;
    await store.close();
    return openAt(dir);
  },
});

test('sqlite: migrations run once; reopening keeps data and does not re-run them', async () => {
  const dataDir = freshDataDir();
  const migrationFiles = readdirSync(path.join(repoRoot, 'migrations', 'sqlite')).filter((f) => /^\d{4}_.+\.sql$/.test(f));
  assert.ok(migrationFiles.length >= 1);

  const first = openSqliteStore(dataDir);
  await first.saveFunctions([{ name: 'f', handler: 'f.handler', spec: {}, updatedAt: 1 }]);
  await first.close();

  const readMigrations = () => {
    const db = new Database(path.join(dataDir, 'berth.db'), { readonly: true });
    try {
      return db.prepare('SELECT version, name, applied_at FROM berth_migrations ORDER BY version').all() as {
        version: number;
        name: string;
        applied_at: number;
      }[];
    } finally {
      db.close();
    }
  };
  const applied = readMigrations();
  assert.deepEqual(
    applied.map((m) => m.version),
    migrationFiles.map((f) => Number(f.slice(0, 4))),
    'one row per migration file',
  );
  assert.equal(applied[0]!.name, migrationFiles[0]!.slice(5, -4));

  await new Promise((resolve) => setTimeout(resolve, 5)); // a re-run would record a later applied_at
  const second = openSqliteStore(dataDir);
  try {
    assert.deepEqual(await second.listFunctions(), [{ name: 'f', handler: 'f.handler', spec: {}, updatedAt: 1 }]);
  } finally {
    await second.close();
  }
  assert.deepEqual(readMigrations(), applied, 'reopening applied nothing again');
});
