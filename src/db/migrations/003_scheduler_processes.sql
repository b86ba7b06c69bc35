-- Scheduler processes alive now (a heartbeat row each), so that a burst due at one instant is
-- shared between them: each claims about its share instead of the first one taking it all.
-- A row whose heartbeat stopped (a killed process) simply ages out; nothing depends on its removal.
CREATE TABLE scheduler_processes (
  id         text PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  seen_at    timestamptz NOT NULL DEFAULT now()
);

-- Hot queries at a million rows (npm run bench -- scale; docs/decisions/0002-precise-firing.md):
-- "is a deployment of this app running?" (the claim's per-app check) without scanning the app's
-- future deployments;
CREATE INDEX deployments_app_running_idx ON deployments (app_id) WHERE state = 'running';
-- the list filtered by state, and by app, in keyset order.
CREATE INDEX deployments_team_state_run_at_idx ON deployments (team_id, state, run_at, id);
CREATE INDEX deployments_app_run_at_idx ON deployments (app_id, run_at, id);
