-- Deploy freezes (issue 11): windows in which a team's apps (or some of them) must not deploy.
-- A one-off freeze keeps the wall times and zone it was given beside the UTC instants they
-- resolved to; a recurring one is a cron expression read in a zone (src/core/recurrence.ts),
-- each occurrence opening a window of duration_seconds of wall-clock time in that zone.
CREATE TABLE freezes (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id          uuid NOT NULL REFERENCES teams(id),
  name             text NOT NULL,
  reason           text,
  kind             text NOT NULL CHECK (kind IN ('once', 'recurring')),
  timezone         text NOT NULL,
  -- one-off: the wall times as given, and their instants
  start_local      timestamp,
  end_local        timestamp,
  start_at         timestamptz,
  end_at           timestamptz,
  -- recurring
  cron             text,
  duration_seconds integer CHECK (duration_seconds IS NULL OR duration_seconds > 0),
  -- NULL: every app of the team (also those created later)
  apps             uuid[],
  created_by       uuid REFERENCES users(id),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  deleted_at       timestamptz,
  CHECK (kind <> 'once' OR (start_at IS NOT NULL AND end_at IS NOT NULL AND end_at > start_at AND start_local IS NOT NULL AND end_local IS NOT NULL)),
  CHECK (kind <> 'recurring' OR (cron IS NOT NULL AND duration_seconds IS NOT NULL))
);
-- Listing by team (keyset on created_at, id), and the checks' "the team's live freezes".
CREATE INDEX freezes_team_idx ON freezes (team_id, created_at, id) WHERE deleted_at IS NULL;

-- A deployment a freeze stopped is `held`: it never fires by itself. An owner releases it (back to
-- `scheduled`), or it is rescheduled or canceled; deleting or shortening the freeze releases it;
-- past its expiry it ends `missed` (due_at = expires_at, so the scheduler looks at it then).
ALTER TABLE deployments DROP CONSTRAINT deployments_state_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_state_check
  CHECK (state IN ('scheduled', 'held', 'running', 'succeeded', 'failed', 'canceled', 'skipped', 'missed'));
-- The freeze holding it (NULL when held because its dependency is held, or not held).
ALTER TABLE deployments ADD COLUMN held_by uuid REFERENCES freezes(id);
-- An owner scheduled it into a freeze on purpose: {reason, by, at}. Freezes never hold it.
ALTER TABLE deployments ADD COLUMN freeze_override jsonb;
CREATE INDEX deployments_held_idx ON deployments (team_id, run_at) WHERE state = 'held';
