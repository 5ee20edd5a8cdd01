/** The embedded store: one SQLite file in WAL mode, owned by one Berth process. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { loadMigrations } from '../migrations.js';
import type {
  EventWrite,
  FlowRunRecord,
  FlowStepRecord,
  FunctionRecord,
  InvocationRecord,
  LogChunk,
  LogQuery,
  MessageRecord,
  QueueRecord,
  SecretListing,
  SecretRecord,
  Store,
  StoredLog,
} from '../types.js';

interface InvocationRow {
  id: string;
  attempt: number;
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

interface MessageRow {
  seq: number;
  queue: string;
  id: string;
  body: string | null;
  blob_key: string | null;
  size: number;
  md5: string;
  attributes: string | null;
  meta: string | null;
  group_id: string | null;
  dedup_id: string | null;
  sent_at: number;
  visible_at: number;
  receive_count: number;
  first_receive_at: number | null;
  expires_at: number;
  leased: number;
}

interface LogRow {
  seq: number;
  invocation_id: string;
  function_name: string;
  tenant_id: string | null;
  ts: number;
  text: string;
}

export function openSqliteStore(dataDir: string, options: { maxSizeBytes?: number } = {}): Store {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, 'berth.db'));
  if (options.maxSizeBytes !== undefined) {
    db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxSizeBytes / (db.pragma('page_size', { simple: true }) as number)))}`);
  }
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

  private readonly events: EventStatements;
  private readonly flows: ReturnType<typeof flowStatements>;

  constructor(private readonly db: Database.Database) {
    this.events = new EventStatements(db);
    this.flows = flowStatements(db);
    this.insertInvocation = db.prepare(
      `INSERT OR REPLACE INTO invocations (id, attempt, function_name, tenant_id, trigger, status, started_at, duration_ms,
         billed_ms, init_duration_ms, max_memory_mb, error_type, error_message)
       VALUES (@id, @attempt, @functionName, @tenantId, @trigger, @status, @startedAt, @durationMs,
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
    this.selectInvocation = db.prepare('SELECT * FROM invocations WHERE id = ? ORDER BY attempt');
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

  async getInvocation(id: string): Promise<InvocationRecord[]> {
    return (this.selectInvocation.all(id) as InvocationRow[]).map(toInvocation);
  }

  async listInvocations(functionName: string, limit: number): Promise<InvocationRecord[]> {
    return (this.selectInvocations.all(functionName, limit) as InvocationRow[]).map(toInvocation);
  }

  async logsOf(invocationId: string): Promise<string> {
    const rows = this.flows.logs.all(invocationId) as { text: string }[];
    return rows.map((row) => row.text).join('');
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

  async writeEvents(writes: EventWrite[]): Promise<void> {
    this.events.apply(writes);
  }

  async loadQueues(): Promise<QueueRecord[]> {
    return (this.db.prepare('SELECT * FROM queues ORDER BY name').all() as { name: string; spec: string; origin: QueueRecord['origin']; created_at: number }[]).map(
      (row) => ({ name: row.name, spec: JSON.parse(row.spec), origin: row.origin, createdAt: row.created_at }),
    );
  }

  async loadMessages(): Promise<MessageRecord[]> {
    return (this.db.prepare('SELECT * FROM messages ORDER BY seq').all() as MessageRow[]).map(toMessage);
  }

  async getKey(scope: string, key: string, now: number): Promise<string | undefined> {
    return (this.events.selectKey.get(scope, key, now) as { value: string } | undefined)?.value;
  }

  async deleteExpiredKeys(now: number): Promise<void> {
    this.db.prepare('DELETE FROM idempotency_keys WHERE expires_at <= ?').run(now);
  }

  async loadLimitOverrides(): Promise<string | undefined> {
    return (this.db.prepare('SELECT value FROM limit_overrides WHERE id = 1').get() as { value: string } | undefined)?.value;
  }

  async saveLimitOverrides(value: string): Promise<void> {
    this.db
      .prepare('INSERT INTO limit_overrides (id, value, updated_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
      .run(value, Date.now());
  }

  async loadTicks(): Promise<{ id: string; expression: string; tick: number }[]> {
    return this.db.prepare('SELECT id, expression, last_tick AS tick FROM schedule_ticks').all() as { id: string; expression: string; tick: number }[];
  }

  async getFlowRun(id: string): Promise<{ run: FlowRunRecord; steps: FlowStepRecord[] } | undefined> {
    const run = this.flows.run.get(id) as FlowRunRow | undefined;
    if (!run) return undefined;
    return { run: toFlowRun(run), steps: (this.flows.steps.all(id) as FlowStepRow[]).map(toFlowStep) };
  }

  async listFlowRuns(flow: string, limit: number): Promise<FlowRunRecord[]> {
    return (this.flows.list.all(flow, limit) as FlowRunRow[]).map(toFlowRun);
  }

  async runningFlowRuns(): Promise<FlowRunRecord[]> {
    return (this.flows.running.all() as FlowRunRow[]).map(toFlowRun);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async putSecret(secret: SecretRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO secrets (tenant, name, kind, ciphertext, iv, tag, key_id, updated_at)
         VALUES (@tenant, @name, @kind, @ciphertext, @iv, @tag, @keyId, @updatedAt)
         ON CONFLICT (tenant, name) DO UPDATE SET kind = excluded.kind, ciphertext = excluded.ciphertext, iv = excluded.iv,
           tag = excluded.tag, key_id = excluded.key_id, updated_at = excluded.updated_at`,
      )
      .run(secret);
  }

  async getSecret(tenant: string, name: string): Promise<SecretRecord | undefined> {
    const row = this.db
      .prepare('SELECT tenant, name, kind, ciphertext, iv, tag, key_id AS keyId, updated_at AS updatedAt FROM secrets WHERE tenant = ? AND name = ?')
      .get(tenant, name);
    return row as SecretRecord | undefined;
  }

  async listSecrets(tenant: string): Promise<SecretListing[]> {
    return this.db.prepare('SELECT name, kind, updated_at AS updatedAt FROM secrets WHERE tenant = ? ORDER BY name').all(tenant) as SecretListing[];
  }

  async deleteSecret(tenant: string, name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM secrets WHERE tenant = ? AND name = ?').run(tenant, name).changes > 0;
  }
}

/** Reads of flow runs, prepared once: the flow API reads a run after every `?wait=true` start. */
function flowStatements(db: Database.Database) {
  return {
    run: db.prepare('SELECT * FROM flow_runs WHERE id = ?'),
    // In the order the steps first started: an upsert keeps a row's rowid.
    steps: db.prepare('SELECT * FROM flow_steps WHERE run_id = ? ORDER BY rowid'),
    list: db.prepare('SELECT * FROM flow_runs WHERE flow = ? ORDER BY created_at DESC, id DESC LIMIT ?'),
    running: db.prepare("SELECT * FROM flow_runs WHERE status = 'running' ORDER BY created_at"),
    logs: db.prepare('SELECT text FROM logs WHERE invocation_id = ? ORDER BY seq'),
  };
}

interface FlowRunRow {
  id: string;
  flow: string;
  tenant_id: string | null;
  trigger: string;
  status: FlowRunRecord['status'];
  input: string | null;
  input_blob: string | null;
  output: string | null;
  output_blob: string | null;
  error: string | null;
  created_at: number;
  finished_at: number | null;
}

interface FlowStepRow {
  run_id: string;
  step: string;
  status: FlowStepRecord['status'];
  attempts: number;
  input: string | null;
  input_blob: string | null;
  output: string | null;
  output_blob: string | null;
  error: string | null;
  invocation_id: string | null;
  started_at: number;
  finished_at: number | null;
}

function toFlowRun(row: FlowRunRow): FlowRunRecord {
  return {
    id: row.id,
    flow: row.flow,
    tenantId: row.tenant_id,
    trigger: row.trigger,
    status: row.status,
    input: { json: row.input, blob: row.input_blob },
    output: { json: row.output, blob: row.output_blob },
    error: row.error,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

function toFlowStep(row: FlowStepRow): FlowStepRecord {
  return {
    runId: row.run_id,
    step: row.step,
    status: row.status,
    attempts: row.attempts,
    input: { json: row.input, blob: row.input_blob },
    output: { json: row.output, blob: row.output_blob },
    error: row.error,
    invocationId: row.invocation_id,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

/** Prepared statements for event writes, and the transaction that applies a batch of them. */
class EventStatements {
  readonly selectKey;
  readonly apply: (writes: EventWrite[]) => void;

  constructor(db: Database.Database) {
    const insert = db.prepare(
      `INSERT INTO messages (seq, queue, id, body, blob_key, size, md5, attributes, meta, group_id, dedup_id,
         sent_at, visible_at, receive_count, first_receive_at, expires_at, leased)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const update = db.prepare(
      `UPDATE messages SET queue = @queue, visible_at = @visibleAt, receive_count = @receiveCount,
         first_receive_at = @firstReceiveAt, leased = @leased WHERE seq = @seq`,
    );
    const remove = db.prepare('DELETE FROM messages WHERE seq = ?');
    const purge = db.prepare('DELETE FROM messages WHERE queue = ?');
    const putKey = db.prepare(
      `INSERT INTO idempotency_keys (scope, key, value, expires_at) VALUES (@scope, @key, @value, @expiresAt)
       ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
    );
    const tick = db.prepare(
      `INSERT INTO schedule_ticks (id, expression, last_tick) VALUES (@id, @expression, @tick)
       ON CONFLICT (id) DO UPDATE SET expression = excluded.expression, last_tick = excluded.last_tick`,
    );
    const saveQueue = db.prepare(
      `INSERT INTO queues (name, spec, origin, created_at) VALUES (@name, @spec, @origin, @createdAt)
       ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, origin = excluded.origin`,
    );
    const dropQueue = db.prepare('DELETE FROM queues WHERE name = ?');
    const flowRun = db.prepare(
      `INSERT INTO flow_runs (id, flow, tenant_id, trigger, status, input, input_blob, output, output_blob, error, created_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, output = excluded.output, output_blob = excluded.output_blob,
         error = excluded.error, finished_at = excluded.finished_at`,
    );
    const flowStep = db.prepare(
      `INSERT INTO flow_steps (run_id, step, status, attempts, input, input_blob, output, output_blob, error, invocation_id, started_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, input = excluded.input,
         input_blob = excluded.input_blob, output = excluded.output, output_blob = excluded.output_blob, error = excluded.error,
         invocation_id = excluded.invocation_id, started_at = excluded.started_at, finished_at = excluded.finished_at`,
    );
    this.selectKey = db.prepare('SELECT value FROM idempotency_keys WHERE scope = ? AND key = ? AND expires_at > ?');
    this.apply = db.transaction((writes: EventWrite[]) => {
      for (const write of writes) {
        switch (write.op) {
          case 'insert': {
            // Positional: the hottest write, and SQLite takes no booleans.
            const m = write.message;
            insert.run(m.seq, m.queue, m.id, m.body, m.blobKey, m.size, m.md5, m.attributes, m.meta, m.groupId, m.dedupId,
              m.sentAt, m.visibleAt, m.receiveCount, m.firstReceiveAt, m.expiresAt, m.leased ? 1 : 0);
            break;
          }
          case 'update':
            update.run({ ...write, leased: write.leased ? 1 : 0 });
            break;
          case 'delete':
            remove.run(write.seq);
            break;
          case 'purge':
            purge.run(write.queue);
            break;
          case 'putKey':
            putKey.run(write);
            break;
          case 'tick':
            tick.run(write);
            break;
          case 'saveQueue':
            saveQueue.run({ ...write.queue, spec: JSON.stringify(write.queue.spec) });
            break;
          case 'dropQueue':
            dropQueue.run(write.name);
            purge.run(write.name);
            break;
          case 'flowRun': {
            const r = write.run;
            flowRun.run(r.id, r.flow, r.tenantId, r.trigger, r.status, r.input.json, r.input.blob, r.output.json, r.output.blob, r.error, r.createdAt, r.finishedAt);
            break;
          }
          case 'flowStep': {
            const s = write.step;
            flowStep.run(s.runId, s.step, s.status, s.attempts, s.input.json, s.input.blob, s.output.json, s.output.blob, s.error, s.invocationId, s.startedAt, s.finishedAt);
            break;
          }
        }
      }
    });
  }
}

function toMessage(row: MessageRow): MessageRecord {
  return {
    seq: row.seq,
    queue: row.queue,
    id: row.id,
    body: row.body,
    blobKey: row.blob_key,
    size: row.size,
    md5: row.md5,
    attributes: row.attributes,
    meta: row.meta,
    groupId: row.group_id,
    dedupId: row.dedup_id,
    sentAt: row.sent_at,
    visibleAt: row.visible_at,
    receiveCount: row.receive_count,
    firstReceiveAt: row.first_receive_at,
    expiresAt: row.expires_at,
    leased: row.leased === 1,
  };
}

function toInvocation(row: InvocationRow): InvocationRecord {
  return {
    id: row.id,
    attempt: row.attempt,
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
