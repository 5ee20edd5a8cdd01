-- Concurrency limits changed live (berth limits set, the HTTP API, PutFunctionConcurrency):
-- one JSON document laid over berth.yml's limits, so they survive restarts.
CREATE TABLE limit_overrides (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  value       TEXT NOT NULL,
  updated_at  INTEGER NOT NULL
);
