/**
 * SQL for API tokens (migration 008). Only the SHA-256 of a token is stored; a token is found by
 * that hash. A revoked token keeps its row (audit), and leaves every list.
 */
import type { Queryable } from '../pool.ts';
import type { AuthUserRow, RoleName } from './users.ts';

export interface ApiTokenRow {
  id: string;
  name: string;
  role: RoleName;
  created_at: Date;
  expires_at: Date;
  last_used_at: Date | null;
  /** created_at with microseconds (a JS Date keeps milliseconds only), for keyset cursors. */
  cursor_at: string;
}

const COLUMNS = `id, name, role, created_at, expires_at, last_used_at,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at`;

export async function insertApiToken(
  db: Queryable,
  t: { userId: string; name: string; role: RoleName; hash: Buffer; expiresInDays: number },
): Promise<ApiTokenRow> {
  const r = await db.query<ApiTokenRow>(
    `INSERT INTO api_tokens (user_id, name, role, token_hash, expires_at)
     VALUES ($1, $2, $3, $4, now() + make_interval(days => $5)) RETURNING ${COLUMNS}`,
    [t.userId, t.name, t.role, t.hash, t.expiresInDays],
  );
  return r.rows[0];
}

/** Tokens of a user that are neither revoked nor expired. */
export async function countActiveApiTokens(db: Queryable, userId: string): Promise<number> {
  const r = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()',
    [userId],
  );
  return r.rows[0].n;
}

/** A user's tokens not revoked (expired ones too, until revoked), oldest first, keyset on (created_at, id). */
export async function listApiTokens(db: Queryable, userId: string, after: [string, string] | undefined, limit: number): Promise<ApiTokenRow[]> {
  const r = await db.query<ApiTokenRow>(
    `SELECT ${COLUMNS} FROM api_tokens
      WHERE user_id = $1 AND revoked_at IS NULL AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
      ORDER BY created_at, id LIMIT $4`,
    [userId, after?.[0] ?? null, after?.[1] ?? null, limit],
  );
  return r.rows;
}

/** Revokes one token of the user; its name, or null when there is no such live token. */
export async function revokeApiToken(db: Queryable, userId: string, id: string): Promise<string | null> {
  const r = await db.query<{ name: string }>(
    'UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING name',
    [id, userId],
  );
  return r.rows[0]?.name ?? null;
}

/** Revokes every token of a user (password change, removal). */
export async function revokeUserApiTokens(db: Queryable, userId: string): Promise<number> {
  const r = await db.query('UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL', [userId]);
  return r.rowCount ?? 0;
}

export interface ApiTokenAuthRow extends AuthUserRow {
  token_id: string;
  token_role: RoleName;
  expires_at: Date;
  last_used_at: Date | null;
}

/** The live token with this hash and its live user, for authenticating a request. */
export async function selectApiTokenForAuth(db: Queryable, hash: Buffer): Promise<ApiTokenAuthRow | null> {
  const r = await db.query<ApiTokenAuthRow>(
    `SELECT k.id AS token_id, k.role AS token_role, k.expires_at, k.last_used_at,
            u.id, u.email, u.team_id, t.name AS team_name, u.role, u.admin, u.password_change_required,
            u.oidc_subject IS NOT NULL AS sso, u.token_version, u.kept_token_id
       FROM api_tokens k JOIN users u ON u.id = k.user_id JOIN teams t ON t.id = u.team_id
      WHERE k.token_hash = $1 AND k.revoked_at IS NULL AND u.deleted_at IS NULL`,
    [hash],
  );
  return r.rows[0] ?? null;
}

/** Records a use, unless one was recorded within `resolutionSeconds` (by any process). */
export async function touchApiToken(db: Queryable, id: string, resolutionSeconds: number): Promise<void> {
  await db.query(
    `UPDATE api_tokens SET last_used_at = now()
      WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))`,
    [id, resolutionSeconds],
  );
}
