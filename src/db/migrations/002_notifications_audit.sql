-- Notifications (per-team webhooks told about final deployment states) and the audit log.

-- A team's subscription: POST the given events to `url`. `secret` is AES-256-GCM ciphertext of
-- the HMAC key used for X-Shipclock-Signature, never returned.
CREATE TABLE notification_subscriptions (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id    uuid NOT NULL REFERENCES teams(id),
  url        text NOT NULL,
  events     text[] NOT NULL CHECK (cardinality(events) > 0 AND events <@ ARRAY['failed', 'missed', 'skipped', 'succeeded']),
  format     text NOT NULL CHECK (format IN ('json', 'slack')),
  secret     bytea,
  created_by uuid REFERENCES users(id),
  created_at timestamptz NOT NULL DEFAULT now()
);
-- Listing by team (keyset on created_at, id) and the enqueue lookup by team.
CREATE INDEX notification_subscriptions_team_idx ON notification_subscriptions (team_id, created_at, id);

-- One row per (subscription, final state change): the outbox. Written in the same transaction as
-- the state change, so a committed final state always has its notifications queued and a rolled
-- back one never does. `due_at` is the next attempt (or, while one is in flight, when its claim
-- expires so that another process may take it over after a crash).
CREATE TABLE notification_deliveries (
  id              bigserial PRIMARY KEY,
  subscription_id uuid NOT NULL REFERENCES notification_subscriptions(id) ON DELETE CASCADE,
  team_id         uuid NOT NULL,
  deployment_id   uuid NOT NULL REFERENCES deployments(id),
  event           text NOT NULL,
  payload         jsonb NOT NULL,
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  due_at          timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  last_status     integer,
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz
);
-- The notifier's hot query: pending rows that are due.
CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (due_at) WHERE state = 'pending';
CREATE INDEX notification_deliveries_subscription_idx ON notification_deliveries (subscription_id);

-- Who did what, when. Append-only; `details` never holds secrets.
CREATE TABLE audit_log (
  id        bigserial PRIMARY KEY,
  team_id   uuid NOT NULL REFERENCES teams(id),
  actor_id  uuid REFERENCES users(id),
  action    text NOT NULL,
  target_id text,
  details   jsonb NOT NULL DEFAULT '{}',
  at        timestamptz NOT NULL DEFAULT now()
);
-- Newest first by team, keyset-paginated on id.
CREATE INDEX audit_log_team_idx ON audit_log (team_id, id DESC);

-- The "due in the next minute" gauge counts scheduled deployments by instant.
CREATE INDEX deployments_scheduled_run_at_idx ON deployments (run_at) WHERE state = 'scheduled';
