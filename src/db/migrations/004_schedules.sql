-- Recurring schedules (issue 10): a cron expression in an IANA zone whose occurrences become
-- ordinary deployment rows ahead of time (src/scheduler/occurrences.ts).
CREATE TABLE schedules (
  id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id                 uuid NOT NULL REFERENCES teams(id),
  app_id                  uuid NOT NULL REFERENCES apps(id),
  dependency_app_id       uuid REFERENCES apps(id),
  dependency_lead_seconds integer NOT NULL DEFAULT 900,
  expires_after_seconds   integer NOT NULL DEFAULT 3600,
  cron                    text NOT NULL,
  timezone                text NOT NULL,
  dst_gap                 text NOT NULL DEFAULT 'shift' CHECK (dst_gap IN ('shift', 'skip')),
  dst_overlap             text NOT NULL DEFAULT 'first' CHECK (dst_overlap IN ('first', 'both')),
  starts_at               timestamptz,
  ends_at                 timestamptz,
  paused                  boolean NOT NULL DEFAULT false,
  -- Bumped by every change that cancels the schedule's pending occurrences (PATCH, pause,
  -- resume, delete): the rows of the next generation may take the same instants.
  generation              integer NOT NULL DEFAULT 1,
  -- Occurrences up to this instant (inclusive) have been made rows (or recorded missed) for the
  -- current generation; the next materialization starts strictly after it.
  materialized_until      timestamptz NOT NULL,
  -- When a materializer must look at this schedule again; NULL: never (paused, deleted, ended).
  materialize_at          timestamptz,
  created_by              uuid REFERENCES users(id),
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  deleted_at              timestamptz,
  CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at)
);
-- Listing by team, keyset on (created_at, id).
CREATE INDEX schedules_team_idx ON schedules (team_id, created_at, id) WHERE deleted_at IS NULL;
-- The materializers' queue: what needs rows now.
CREATE INDEX schedules_materialize_idx ON schedules (materialize_at) WHERE materialize_at IS NOT NULL;
-- "Does this app have live schedules?" (deleting an app).
CREATE INDEX schedules_app_idx ON schedules (app_id) WHERE deleted_at IS NULL;

-- An occurrence is an ordinary deployment row with these set: the schedule, its generation,
-- the role of the row ('occurrence', or 'dependency' for the dependency deployed
-- dependency_lead_seconds before it), and the occurrence's instant (for the dependency row too:
-- its own run_at is earlier). NULL for one-off deployments.
ALTER TABLE deployments ADD COLUMN schedule_id uuid REFERENCES schedules(id);
ALTER TABLE deployments ADD COLUMN schedule_generation integer;
ALTER TABLE deployments ADD COLUMN schedule_role text CHECK (schedule_role IN ('occurrence', 'dependency'));
ALTER TABLE deployments ADD COLUMN occurrence_at timestamptz;
-- Never two rows for one (schedule, generation, instant, role), whatever number of processes
-- materialize at once: they INSERT ... ON CONFLICT DO NOTHING against this. The role keeps an
-- occurrence and its dependency apart even with a lead of 0 (same run_at).
CREATE UNIQUE INDEX deployments_schedule_occurrence_key
  ON deployments (schedule_id, schedule_generation, occurrence_at, schedule_role) WHERE schedule_id IS NOT NULL;
-- A schedule's deployments in instant order (GET /v1/scheduled_deployments?schedule=).
CREATE INDEX deployments_schedule_run_at_idx ON deployments (schedule_id, run_at, id) WHERE schedule_id IS NOT NULL;
