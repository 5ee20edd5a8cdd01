/** The embedded store: one SQLite file in WAL mode, owned by one Berth process. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { loadMigrations } from '../migrations.js';
import type { FunctionRecord, InvocationRecord, LogChunk, LogQuery, Store, StoredLog } from '../types.js';

interface InvocationRow {
  id: string;
  function_name: string;
  tenant_id: string | null;
  trigger: string;
  status: InvocationRecord['status'];
  started_at: number;
  duration_ms: number;
  billed_ms: number;
  init_duration_ms: number | null;
  max_memory_mb: number;
  error_type: string | null;
  error_message: string | null;
}

interface LogRow {
  seq: number;
  invocation_id: string;
  function_name: string;
  tenant_id: string | null;
  ts: number;
  text: string;
}

export function openSqliteStore(dataDir: string): Store {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'berth.db'));
  db.pragma('journal_mode = WAL');
  // Invocation records are written in batches; NORMAL keeps WAL durable across
  // process crashes (not power loss) at a fraction of FULL's fsync cost.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return new SqliteStore(db);
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS berth_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const applied = new Set(
    (db.prepare('SELECT version FROM berth_migrations').all() as { version: number }[]).map((r) => r.version),
  );
  const record = db.prepare('INSERT INTO berth_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const migration of loadMigrations('sqlite')) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      record.run(migration.version, migration.name, Date.now());
    })();
  }
}

class SqliteStore implements Store {
  private readonly insertInvocation;
  private readonly insertLog;
  private readonly writeAll;
  private readonly upsertFunction;
  private readonly selectFunctions;
  private readonly selectInvocation;
  private readonly selectInvocations;
  private readonly selectLogsAfter;
  private readonly selectLatestLogs;

  constructor(private readonly db: Database.Database) {
    this.insertInvocation = db.prepare(
      `INSERT OR REPLACE INTO invocations (id, function_name, tenant_id, trigger, status, started_at, duration_ms,
         billed_ms, init_duration_ms, max_memory_mb, error_type, error_message)
       VALUES (@id, @functionName, @tenantId, @trigger, @status, @startedAt, @durationMs,
         @billedMs, @initDurationMs, @maxMemoryMb, @errorType, @errorMessage)`,
    );
    this.insertLog = db.prepare(
      `INSERT INTO logs (invocation_id, function_name, tenant_id, ts, text)
       VALUES (@invocationId, @functionName, @tenantId, @ts, @text)`,
    );
    this.writeAll = db.transaction((invocations: InvocationRecord[], logs: LogChunk[]) => {
      for (const invocation of invocations) this.insertInvocation.run(invocation);
      for (const log of logs) this.insertLog.run(log);
    });
    this.upsertFunction = db.prepare(
      `INSERT INTO functions (name, handler, spec, updated_at) VALUES (@name, @handler, @spec, @updatedAt)
       ON CONFLICT (name) DO UPDATE SET handler = excluded.handler, spec = excluded.spec, updated_at = excluded.updated_at`,
    );
    this.selectFunctions = db.prepare('SELECT name, handler, spec, updated_at FROM functions ORDER BY name');
    this.selectInvocation = db.prepare('SELECT * FROM invocations WHERE id = ?');
    this.selectInvocations = db.prepare(
      'SELECT * FROM invocations WHERE function_name = ? ORDER BY started_at DESC LIMIT ?',
    );
    this.selectLogsAfter = db.prepare(
      'SELECT * FROM logs WHERE function_name = ? AND seq > ? ORDER BY seq ASC LIMIT ?',
    );
    this.selectLatestLogs = db.prepare(
      'SELECT * FROM (SELECT * FROM logs WHERE function_name = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq ASC',
    );
  }

  async writeBatch(batch: { invocations: InvocationRecord[]; logs: LogChunk[] }): Promise<void> {
    this.writeAll(batch.invocations, batch.logs);
  }

  async saveFunctions(functions: FunctionRecord[]): Promise<void> {
    this.db.transaction(() => {
      for (const fn of functions) {
        this.upsertFunction.run({ name: fn.name, handler: fn.handler, spec: JSON.stringify(fn.spec), updatedAt: fn.updatedAt });
      }
    })();
  }

  async listFunctions(): Promise<FunctionRecord[]> {
    return (this.selectFunctions.all() as { name: string; handler: string; spec: string; updated_at: number }[]).map(
      (row) => ({ name: row.name, handler: row.handler, spec: JSON.parse(row.spec), updatedAt: row.updated_at }),
    );
  }

  async getInvocation(id: string): Promise<InvocationRecord | undefined> {
    const row = this.selectInvocation.get(id) as InvocationRow | undefined;
    return row && toInvocation(row);
  }

  async listInvocations(functionName: string, limit: number): Promise<InvocationRecord[]> {
    return (this.selectInvocations.all(functionName, limit) as InvocationRow[]).map(toInvocation);
  }

  async listLogs(query: LogQuery): Promise<StoredLog[]> {
    const rows =
      query.afterSeq === undefined
        ? this.selectLatestLogs.all(query.functionName, query.limit)
        : this.selectLogsAfter.all(query.functionName, query.afterSeq, query.limit);
    return (rows as LogRow[]).map((row) => ({
      seq: row.seq,
      invocationId: row.invocation_id,
      functionName: row.function_name,
      tenantId: row.tenant_id,
      ts: row.ts,
      text: row.text,
    }));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

function toInvocation(row: InvocationRow): InvocationRecord {
  return {
    id: row.id,
    functionName: row.function_name,
    tenantId: row.tenant_id,
    trigger: row.trigger,
    status: row.status,
    startedAt: row.started_at,
    durationMs: row.duration_ms,
    billedMs: row.billed_ms,
    initDurationMs: row.init_duration_ms,
    maxMemoryMb: row.max_memory_mb,
    errorType: row.error_type,
    errorMessage: row.error_message,
  };
}
