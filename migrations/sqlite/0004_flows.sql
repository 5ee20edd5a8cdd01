-- Flow runs and their steps. A step's result is committed before the next step starts,
-- so a run interrupted by a crash resumes after its last completed step. Outputs above the
-- inline threshold live in the blob store and are referenced by key.
CREATE TABLE flow_runs (
  id           TEXT PRIMARY KEY,
  flow         TEXT NOT NULL,
  tenant_id    TEXT,
  trigger      TEXT NOT NULL,
  status       TEXT NOT NULL,            -- running | succeeded | failed
  input        TEXT,
  input_blob   TEXT,
  output       TEXT,
  output_blob  TEXT,
  error        TEXT,                     -- JSON: { step, errorType, errorMessage }
  created_at   INTEGER NOT NULL,
  finished_at  INTEGER
);
CREATE INDEX flow_runs_by_flow ON flow_runs (flow, created_at);
CREATE INDEX flow_runs_running ON flow_runs (status) WHERE status = 'running';

CREATE TABLE flow_steps (
  run_id         TEXT NOT NULL,
  step           TEXT NOT NULL,          -- its path in the flow: fetch, files[3].transform
  status         TEXT NOT NULL,          -- running | succeeded | failed | skipped
  attempts       INTEGER NOT NULL,
  input          TEXT,
  input_blob     TEXT,
  output         TEXT,
  output_blob    TEXT,
  error          TEXT,
  invocation_id  TEXT,                   -- function and code steps: their logs are this invocation's
  started_at     INTEGER NOT NULL,
  finished_at    INTEGER,
  PRIMARY KEY (run_id, step)
);
