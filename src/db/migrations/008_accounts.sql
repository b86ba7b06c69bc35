-- Accounts a team can run on (issue 16): password changes that end other sessions, the one-time
-- printed password, members removed without breaking history, API tokens for CI, login rate
-- limiting shared by every process, and single sign-on (OIDC).

-- token_version: every login token (JWT) carries the version it was issued under; bumping it
--   revokes all of them at once (password change, removal). kept_token_id: the id (jti) of the
--   one login token that survives the bump: the one the password was changed with.
-- password_change_required: set for the admin created with a printed one-time password; until it
--   is changed, only GET /v1/me and POST /v1/me/password answer.
-- oidc_issuer + oidc_subject: the identity-provider account a single-sign-on user is, which
--   stays the same when the email changes. Such users have no password (password_hash NULL).
-- deleted_at: a removed member keeps its row, so deployments, subscriptions and audit entries
--   that point at it (created_by, actor_id) keep their history; it can no longer sign in, and
--   its email may be given to someone new.
ALTER TABLE users
  ADD COLUMN password_change_required boolean NOT NULL DEFAULT false,
  ADD COLUMN token_version integer NOT NULL DEFAULT 0,
  ADD COLUMN kept_token_id text,
  ADD COLUMN oidc_issuer text,
  ADD COLUMN oidc_subject text,
  ADD COLUMN deleted_at timestamptz;
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
DROP INDEX users_email_key;
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_oidc_key ON users (oidc_issuer, oidc_subject) WHERE deleted_at IS NULL AND oidc_subject IS NOT NULL;
-- Listing a team's members, keyset-paginated on (email, id).
CREATE INDEX users_team_idx ON users (team_id, email, id) WHERE deleted_at IS NULL;

-- API tokens for CI: "shc_" + 40 random base62 characters, shown once. Only the SHA-256 of the
-- whole token is stored. A token acts as its user with at most `role` (the lower of the two at
-- each request), never as an instance admin. last_used_at is written at most once a minute.
CREATE TABLE api_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES users(id),
  name         text NOT NULL,
  role         text NOT NULL CHECK (role IN ('owner', 'deployer', 'viewer')),
  token_hash   bytea NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, created_at, id) WHERE revoked_at IS NULL;

-- Failed sign-ins of the last window, by email and by client address: every process counts the
-- same rows, so the limit holds across processes. `email_key` is the SHA-256 of the lower-cased
-- email as typed (unknown ones too), so the table holds no addresses of people. Rows older
-- than the window are deleted as logins go by.
CREATE TABLE login_failures (
  id        bigserial PRIMARY KEY,
  email_key bytea NOT NULL,
  address   text NOT NULL,
  at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email_idx ON login_failures (email_key, at);
CREATE INDEX login_failures_address_idx ON login_failures (address, at);
CREATE INDEX login_failures_at_idx ON login_failures (at);

-- Single sign-on hands the browser a one-time code (its SHA-256 here), exchanged once, within
-- a minute, for a login token; the token itself never travels in a URL.
CREATE TABLE sso_handoffs (
  code_hash  bytea PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES users(id),
  created_at timestamptz NOT NULL DEFAULT now()
);
