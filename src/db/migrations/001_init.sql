-- shipclock schema, version 1.

CREATE TABLE teams (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- A user belongs to one team with one role; `admin` users may also create teams.
CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text NOT NULL,
  password_hash text NOT NULL,
  team_id       uuid NOT NULL REFERENCES teams(id),
  role          text NOT NULL CHECK (role IN ('owner', 'deployer', 'viewer')),
  admin         boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Instance-wide values every process must share (the token signing key).
CREATE TABLE settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);

-- Cloud credentials; `secret` is AES-256-GCM ciphertext of the secret fields, never returned.
CREATE TABLE credentials (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id    uuid NOT NULL REFERENCES teams(id),
  name       text NOT NULL,
  provider   text NOT NULL CHECK (provider IN ('aws', 'digitalocean')),
  public     jsonb NOT NULL DEFAULT '{}',
  secret     bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (team_id, name)
);

-- Apps are soft-deleted so that the deployments that ran keep their history.
CREATE TABLE apps (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id               uuid NOT NULL REFERENCES teams(id),
  name                  text NOT NULL,
  target                jsonb NOT NULL,        -- the target without its secret
  target_secret         bytea,                 -- encrypted webhook secret, if any
  retry_max_attempts    integer NOT NULL DEFAULT 3,
  retry_backoff_seconds integer NOT NULL DEFAULT 10,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  deleted_at            timestamptz
);
CREATE UNIQUE INDEX apps_team_name_key ON apps (team_id, lower(name)) WHERE deleted_at IS NULL;

-- One row per scheduled deployment. It is also the job: `due_at` says when the scheduler must
-- look at it next (its instant, a retry, the next rollout poll, its expiry), `lease_*` which
-- process owns it meanwhile. Writing the deployment therefore writes its job, in one statement.
CREATE TABLE deployments (
  id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id                 uuid NOT NULL REFERENCES teams(id),
  app_id                  uuid NOT NULL REFERENCES apps(id),
  state                   text NOT NULL DEFAULT 'scheduled'
                          CHECK (state IN ('scheduled', 'running', 'succeeded', 'failed', 'canceled', 'skipped', 'missed')),
  run_at                  timestamptz NOT NULL,
  timezone                text NOT NULL,
  local_year              integer NOT NULL,
  local_month             integer NOT NULL,
  local_day               integer NOT NULL,
  local_hour              integer NOT NULL,
  local_minute            integer NOT NULL,
  local_second            integer NOT NULL,
  utc_offset              text NOT NULL,
  disambiguation          text NOT NULL DEFAULT 'earlier',
  dependency_id           uuid REFERENCES deployments(id),
  dependency_lead_seconds integer,
  expires_after_seconds   integer NOT NULL,
  expires_at              timestamptz NOT NULL,
  attempts                integer NOT NULL DEFAULT 0,
  error                   text,
  -- while running: 'executing' (a provider call in flight), 'retry_wait', 'following'
  phase                   text,
  provider_ref            jsonb,
  log                     text NOT NULL DEFAULT '',
  due_at                  timestamptz,
  lease_owner             text,
  lease_until             timestamptz,
  created_by              uuid REFERENCES users(id),
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  started_at              timestamptz,
  finished_at             timestamptz
);
-- The scheduler's hot query: what is due (or about to be), not leased.
CREATE INDEX deployments_due_idx ON deployments (due_at) WHERE due_at IS NOT NULL;
-- Listing, newest instants by team, keyset-paginated on (run_at, id).
CREATE INDEX deployments_team_run_at_idx ON deployments (team_id, run_at, id);
-- "Is another deployment of this app ahead of me?" (one deployment of an app runs at a time).
CREATE INDEX deployments_app_active_idx ON deployments (app_id, run_at) WHERE state IN ('scheduled', 'running');
CREATE INDEX deployments_dependency_idx ON deployments (dependency_id) WHERE dependency_id IS NOT NULL;

-- The timeline: one row per state change or notable step.
CREATE TABLE deployment_events (
  id            bigserial PRIMARY KEY,
  deployment_id uuid NOT NULL REFERENCES deployments(id),
  team_id       uuid NOT NULL,
  at            timestamptz NOT NULL DEFAULT clock_timestamp(),
  state         text NOT NULL,
  message       text
);
CREATE INDEX deployment_events_deployment_idx ON deployment_events (deployment_id, id);
CREATE INDEX deployment_events_team_idx ON deployment_events (team_id, id);
