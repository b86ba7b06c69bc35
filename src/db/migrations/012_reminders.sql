-- Reminders (issue 12): a subscription with `remind_before_seconds` is told about each scheduled
-- deployment of its team that long before it, with signed one-click links.

-- Null: no reminders. From 1 minute to 7 days.
ALTER TABLE notification_subscriptions
  ADD COLUMN remind_before_seconds integer CHECK (remind_before_seconds BETWEEN 60 AND 604800);

-- One row per reminder queued: the primary key makes a second one for the same (subscription,
-- deployment, instant) impossible whatever the processes do. A rescheduled deployment has a new
-- instant, so it gets a new reminder; the old instant's row stays and matches nothing.
CREATE TABLE deployment_reminders (
  subscription_id uuid NOT NULL REFERENCES notification_subscriptions(id) ON DELETE CASCADE,
  deployment_id   uuid NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
  run_at          timestamptz NOT NULL,
  -- when it was due (the chain's first instant minus the lead) and when it was queued (database clock)
  remind_at       timestamptz NOT NULL,
  queued_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (subscription_id, deployment_id, run_at)
);
CREATE INDEX deployment_reminders_deployment_idx ON deployment_reminders (deployment_id);

-- A reminder link's nonce once it has acted: inserted once, in the transaction of its action.
CREATE TABLE reminder_link_uses (
  nonce         text PRIMARY KEY,
  deployment_id uuid NOT NULL,
  action        text NOT NULL,
  used_at       timestamptz NOT NULL DEFAULT now()
);
