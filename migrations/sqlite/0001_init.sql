-- Functions as last deployed, invocation records and their logs.
CREATE TABLE functions (
  name        TEXT PRIMARY KEY,
  handler     TEXT NOT NULL,
  spec        TEXT NOT NULL,          -- JSON of the resolved FunctionSpec
  updated_at  INTEGER NOT NULL        -- epoch ms
);

CREATE TABLE invocations (
  id               TEXT PRIMARY KEY,  -- time-ordered UUIDv7, so inserts append
  function_name    TEXT NOT NULL,
  tenant_id        TEXT,
  trigger          TEXT NOT NULL,
  status           TEXT NOT NULL,     -- succeeded | failed | timed_out
  started_at       INTEGER NOT NULL,  -- epoch ms
  duration_ms      REAL NOT NULL,
  billed_ms        INTEGER NOT NULL,
  init_duration_ms REAL,
  max_memory_mb    INTEGER NOT NULL,
  error_type       TEXT,
  error_message    TEXT
);
CREATE INDEX invocations_by_function ON invocations (function_name, started_at);

CREATE TABLE logs (
  seq            INTEGER PRIMARY KEY,  -- rowid: increasing, a cursor for following
  invocation_id  TEXT NOT NULL,
  function_name  TEXT NOT NULL,
  tenant_id      TEXT,
  ts             INTEGER NOT NULL,    -- epoch ms
  text           TEXT NOT NULL
);
CREATE INDEX logs_by_function ON logs (function_name, seq);
CREATE INDEX logs_by_invocation ON logs (invocation_id, seq);
