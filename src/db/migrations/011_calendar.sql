-- Calendar feed tokens (issue 11): GET /v1/calendar.ics?token=… lets a calendar application
-- (Google Calendar, Outlook) subscribe to a team's deployments and freezes without a session.
-- A token is "shcal_" + 40 random base62 characters, shown once. As for API tokens (008), only
-- the SHA-256 of the whole token is stored, and a token is looked up by it. A user has at most
-- one live token: making a new one revokes the previous one (revoked_at), and the row stays.
CREATE TABLE calendar_tokens (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL REFERENCES users(id),
  token_hash bytea NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
-- At most one live token per user, whatever two requests do at once.
CREATE UNIQUE INDEX calendar_tokens_live_key ON calendar_tokens (user_id) WHERE revoked_at IS NULL;
