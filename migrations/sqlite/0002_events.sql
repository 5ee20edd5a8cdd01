-- Events: queues and their messages, idempotency keys, schedule ticks; and one
-- invocation record per attempt, since every retry of an event keeps its id.
CREATE TABLE invocations_by_attempt (
  id               TEXT NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 1,
  function_name    TEXT NOT NULL,
  tenant_id        TEXT,
  trigger          TEXT NOT NULL,
  status           TEXT NOT NULL,
  started_at       INTEGER NOT NULL,
  duration_ms      REAL NOT NULL,
  billed_ms        INTEGER NOT NULL,
  init_duration_ms REAL,
  max_memory_mb    INTEGER NOT NULL,
  error_type       TEXT,
  error_message    TEXT,
  PRIMARY KEY (id, attempt)
);
INSERT INTO invocations_by_attempt (id, attempt, function_name, tenant_id, trigger, status, started_at, duration_ms,
  billed_ms, init_duration_ms, max_memory_mb, error_type, error_message)
  SELECT id, 1, function_name, tenant_id, trigger, status, started_at, duration_ms,
    billed_ms, init_duration_ms, max_memory_mb, error_type, error_message FROM invocations;
DROP TABLE invocations;
ALTER TABLE invocations_by_attempt RENAME TO invocations;
CREATE INDEX invocations_by_function ON invocations (function_name, started_at);

CREATE TABLE queues (
  name        TEXT PRIMARY KEY,
  spec        TEXT NOT NULL,          -- JSON of the QueueSpec
  origin      TEXT NOT NULL,          -- config | api
  created_at  INTEGER NOT NULL
);

CREATE TABLE messages (
  seq               INTEGER PRIMARY KEY,  -- assigned by Berth, increasing: the order of sending
  queue             TEXT NOT NULL,
  id                TEXT NOT NULL,
  body              TEXT,                 -- null when the body is in the blob store
  blob_key          TEXT,
  size              INTEGER NOT NULL,
  md5               TEXT NOT NULL,
  attributes        TEXT,                 -- JSON of SQS message attributes
  meta              TEXT,                 -- JSON: what Berth needs to run an internal event
  group_id          TEXT,
  dedup_id          TEXT,
  sent_at           INTEGER NOT NULL,
  visible_at        INTEGER NOT NULL,
  receive_count     INTEGER NOT NULL DEFAULT 0,
  first_receive_at  INTEGER,
  expires_at        INTEGER NOT NULL,
  leased            INTEGER NOT NULL DEFAULT 0  -- 1 while a consumer inside Berth holds it
);

CREATE TABLE idempotency_keys (
  scope       TEXT NOT NULL,
  key         TEXT NOT NULL,
  value       TEXT NOT NULL,          -- JSON: the first request's message id or result
  expires_at  INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);

CREATE TABLE schedule_ticks (
  id          TEXT PRIMARY KEY,       -- <function>#<event index>
  expression  TEXT NOT NULL,
  last_tick   INTEGER NOT NULL        -- epoch ms of the last tick handled (fired or skipped)
);
