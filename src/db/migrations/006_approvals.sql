-- Approvals before a deployment fires (issue 12; decision 0006).

-- An app's approval policy: `approval_required` approvals (1–5) from users whose role is in
-- `approval_from_roles`; NULL required: no approval needed.
ALTER TABLE apps
  ADD COLUMN approval_required integer CHECK (approval_required BETWEEN 1 AND 5),
  ADD COLUMN approval_from_roles text[] NOT NULL DEFAULT ARRAY['owner', 'deployer']
    CHECK (cardinality(approval_from_roles) > 0 AND approval_from_roles <@ ARRAY['owner', 'deployer']);

-- The app's `approval_required` as it was when the deployment was scheduled (a snapshot: a later
-- change of the policy does not silently approve or block what is already planned). NULL: none.
ALTER TABLE deployments ADD COLUMN approval_required integer;
-- `?approval=pending` and the UI's pending badge: only scheduled rows that need approval, so a
-- team's many deployments without a policy are never scanned for them.
CREATE INDEX deployments_team_awaiting_approval_idx ON deployments (team_id, run_at, id)
  WHERE approval_required IS NOT NULL AND state = 'scheduled';

-- One decision per user and deployment. A reschedule by more than the expiry voids them
-- (reset_at): they stay as history, and the users may decide again.
CREATE TABLE deployment_approvals (
  id            bigserial PRIMARY KEY,
  deployment_id uuid NOT NULL REFERENCES deployments(id),
  team_id       uuid NOT NULL REFERENCES teams(id),
  user_id       uuid NOT NULL REFERENCES users(id),
  decision      text NOT NULL CHECK (decision IN ('approve', 'reject')),
  comment       text,
  -- how it was given when not through the API or UI directly, e.g. 'reminder link'
  via           text,
  at            timestamptz NOT NULL DEFAULT now(),
  reset_at      timestamptz
);
CREATE UNIQUE INDEX deployment_approvals_once_key ON deployment_approvals (deployment_id, user_id) WHERE reset_at IS NULL;

-- The approval events join the notification catalogue.
ALTER TABLE notification_subscriptions DROP CONSTRAINT notification_subscriptions_events_check;
ALTER TABLE notification_subscriptions ADD CONSTRAINT notification_subscriptions_events_check
  CHECK (cardinality(events) > 0 AND events <@ ARRAY['failed', 'missed', 'skipped', 'succeeded', 'approval_requested', 'approved', 'rejected']);
