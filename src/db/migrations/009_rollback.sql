-- Rollback (issue 15). An app says what happens when one of its deployments fails after it
-- changed something: 'none' (default) or 'rollback' (restore what ran before).
ALTER TABLE apps ADD COLUMN on_failure text NOT NULL DEFAULT 'none' CHECK (on_failure IN ('none', 'rollback'));

-- A deployment has at most one rollback at a time, so its record lives on the deployment row
-- (no second store to keep in step): the row stays in its final state (failed, or succeeded
-- when rolled back by hand) while `due_at`/`lease_*` drive the rollback like a rollout, with the
-- same claim, lease and recovery. A rollback asked for again (by hand, after one ended) reuses
-- the columns; the timeline keeps every one (rollback_* events).
--   rollback_state: pending (asked for, not started) | running | succeeded | failed | not_possible
--   rollback_phase (internal, while pending/running): executing (a provider call in flight; a
--     lapsed lease means the process died in it: the call is made again as a recovery),
--     retry_wait, following
--   rollback_seq: how many rollbacks this deployment has had (the webhook's Idempotency-Key)
ALTER TABLE deployments
  ADD COLUMN rollback_state text CHECK (rollback_state IN ('pending', 'running', 'succeeded', 'failed', 'not_possible')),
  ADD COLUMN rollback_phase text CHECK (rollback_phase IN ('executing', 'retry_wait', 'following')),
  ADD COLUMN rollback_ref jsonb,
  ADD COLUMN rollback_error text,
  ADD COLUMN rollback_attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN rollback_seq integer NOT NULL DEFAULT 0,
  ADD COLUMN rollback_requested_by uuid REFERENCES users(id),
  ADD COLUMN rollback_started_at timestamptz,
  ADD COLUMN rollback_finished_at timestamptz;

-- "Is a rollback of this app in progress?" (it blocks the app's next deployment, as a running one does).
CREATE INDEX deployments_app_rollback_idx ON deployments (app_id) WHERE rollback_state IN ('pending', 'running');

-- A rollback that fails (or cannot be made) is an event a team can be told about. The list keeps
-- every event earlier migrations allow (006 added the approval events).
ALTER TABLE notification_subscriptions DROP CONSTRAINT notification_subscriptions_events_check;
ALTER TABLE notification_subscriptions ADD CONSTRAINT notification_subscriptions_events_check
  CHECK (cardinality(events) > 0 AND events <@ ARRAY['failed', 'missed', 'skipped', 'succeeded', 'approval_requested', 'approved',
                                                      'rejected', 'rollback_failed', 'rollback_succeeded']);
