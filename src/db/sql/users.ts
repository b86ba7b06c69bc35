/**
 * SQL for users and team membership (migrations 001 and 008). A removed member keeps its row
 * (`deleted_at`), so every lookup of a live user says `deleted_at IS NULL`.
 */
import type { Queryable } from '../pool.ts';

export type RoleName = 'owner' | 'deployer' | 'viewer';

/** What a request needs of its user, with what decides whether a login token is still good. */
export interface AuthUserRow {
  id: string;
  email: string;
  team_id: string;
  team_name: string;
  role: RoleName;
  admin: boolean;
  password_change_required: boolean;
  sso: boolean;
  token_version: number;
  kept_token_id: string | null;
}

const AUTH_USER_COLUMNS = `u.id, u.email, u.team_id, t.name AS team_name, u.role, u.admin, u.password_change_required,
  u.oidc_subject IS NOT NULL AS sso, u.token_version, u.kept_token_id`;

export async function selectAuthUser(db: Queryable, id: string): Promise<AuthUserRow | null> {
  const r = await db.query<AuthUserRow>(
    `SELECT ${AUTH_USER_COLUMNS} FROM users u JOIN teams t ON t.id = u.team_id WHERE u.id = $1 AND u.deleted_at IS NULL`,
    [id],
  );
  return r.rows[0] ?? null;
}

/** The live user with this email (any case): its id, password hash (null: single sign-on only) and token version. */
export async function selectLoginByEmail(db: Queryable, email: string): Promise<{ id: string; password_hash: string | null; token_version: number } | null> {
  const r = await db.query<{ id: string; password_hash: string | null; token_version: number }>(
    'SELECT id, password_hash, token_version FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL',
    [email],
  );
  return r.rows[0] ?? null;
}

/** The password hash and token version of a live user, its row locked for the caller's transaction. */
export async function lockUserForPasswordChange(db: Queryable, id: string): Promise<{ email: string; team_id: string; password_hash: string | null; token_version: number } | null> {
  const r = await db.query<{ email: string; team_id: string; password_hash: string | null; token_version: number }>(
    'SELECT email, team_id, password_hash, token_version FROM users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE',
    [id],
  );
  return r.rows[0] ?? null;
}

/**
 * Sets a new password hash and ends every login token of the user but `keptTokenId` (the one
 * the change was made with; null: none survives). Clears the one-time-password flag.
 */
export async function updatePassword(db: Queryable, id: string, hash: string, keptTokenId: string | null): Promise<void> {
  await db.query(
    `UPDATE users SET password_hash = $2, password_change_required = false, token_version = token_version + 1, kept_token_id = $3
      WHERE id = $1`,
    [id, hash, keptTokenId],
  );
}

export async function selectTokenVersion(db: Queryable, id: string): Promise<number | null> {
  const r = await db.query<{ token_version: number }>('SELECT token_version FROM users WHERE id = $1 AND deleted_at IS NULL', [id]);
  return r.rows[0]?.token_version ?? null;
}

export async function emailTaken(db: Queryable, email: string): Promise<boolean> {
  const r = await db.query('SELECT 1 FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL', [email]);
  return (r.rowCount ?? 0) > 0;
}

export interface MemberRow {
  id: string;
  email: string;
  role: RoleName;
  admin: boolean;
  sso: boolean;
  created_at: Date;
}

const MEMBER_COLUMNS = 'id, email, role, admin, oidc_subject IS NOT NULL AS sso, created_at';

/** A team's live members by email then id, keyset-paginated; `limit` rows at most. */
export async function listTeamMembers(db: Queryable, teamId: string, after: [string, string] | undefined, limit: number): Promise<MemberRow[]> {
  const r = await db.query<MemberRow>(
    `SELECT ${MEMBER_COLUMNS} FROM users
      WHERE team_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR (email, id::text) > ($2, $3))
      ORDER BY email, id LIMIT $4`,
    [teamId, after?.[0] ?? null, after?.[1] ?? null, limit],
  );
  return r.rows;
}

/**
 * Locks the team row: every change to a team's membership takes it first, so two owners
 * demoting or removing each other at once are serialized and the second sees the first's change.
 */
export async function lockTeam(db: Queryable, teamId: string): Promise<boolean> {
  const r = await db.query('SELECT 1 FROM teams WHERE id = $1 FOR UPDATE', [teamId]);
  return (r.rowCount ?? 0) > 0;
}

export async function selectMember(db: Queryable, teamId: string, userId: string): Promise<MemberRow | null> {
  const r = await db.query<MemberRow>(`SELECT ${MEMBER_COLUMNS} FROM users WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL`, [userId, teamId]);
  return r.rows[0] ?? null;
}

/** The caller's own role in a team, read again inside the membership transaction. */
export async function selectRoleInTeam(db: Queryable, teamId: string, userId: string): Promise<RoleName | null> {
  const r = await db.query<{ role: RoleName }>('SELECT role FROM users WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL', [userId, teamId]);
  return r.rows[0]?.role ?? null;
}

export async function countOwners(db: Queryable, teamId: string): Promise<number> {
  const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM users WHERE team_id = $1 AND role = 'owner' AND deleted_at IS NULL`, [teamId]);
  return r.rows[0].n;
}

export async function countAdmins(db: Queryable): Promise<number> {
  const r = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE admin AND deleted_at IS NULL');
  return r.rows[0].n;
}

export async function updateRole(db: Queryable, userId: string, role: RoleName): Promise<void> {
  await db.query('UPDATE users SET role = $2 WHERE id = $1', [userId, role]);
}

/**
 * Removes a member: the row stays (deployments, subscriptions and audit entries point at it),
 * marked deleted, without a password and with every login token ended.
 */
export async function softDeleteUser(db: Queryable, userId: string): Promise<void> {
  await db.query(
    `UPDATE users SET deleted_at = now(), password_hash = NULL, token_version = token_version + 1, kept_token_id = NULL
      WHERE id = $1`,
    [userId],
  );
}

/** A single-sign-on user by its identity-provider account. */
export async function selectByOidcSubject(db: Queryable, issuer: string, subject: string): Promise<{ id: string; email: string; team_id: string; role: RoleName } | null> {
  const r = await db.query<{ id: string; email: string; team_id: string; role: RoleName }>(
    'SELECT id, email, team_id, role FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2 AND deleted_at IS NULL',
    [issuer, subject],
  );
  return r.rows[0] ?? null;
}

/** A live user with this email not yet linked to an identity-provider account. */
export async function selectUnlinkedByEmail(db: Queryable, email: string): Promise<{ id: string; email: string; team_id: string; role: RoleName } | null> {
  const r = await db.query<{ id: string; email: string; team_id: string; role: RoleName }>(
    'SELECT id, email, team_id, role FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL AND oidc_subject IS NULL',
    [email],
  );
  return r.rows[0] ?? null;
}

export async function insertSsoUser(db: Queryable, u: { email: string; teamId: string; role: RoleName; issuer: string; subject: string }): Promise<string> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO users (email, password_hash, team_id, role, oidc_issuer, oidc_subject) VALUES ($1, NULL, $2, $3, $4, $5) RETURNING id`,
    [u.email, u.teamId, u.role, u.issuer, u.subject],
  );
  return r.rows[0].id;
}

/**
 * Brings a single-sign-on user in line with what the identity provider says. A move to another
 * team ends its login tokens (they would act in the new team otherwise).
 */
export async function syncSsoUser(
  db: Queryable,
  u: { id: string; email: string; teamId: string; role: RoleName; issuer: string; subject: string; teamChanged: boolean },
): Promise<void> {
  await db.query(
    `UPDATE users SET email = $2, team_id = $3, role = $4, oidc_issuer = $5, oidc_subject = $6,
            token_version = token_version + CASE WHEN $7 THEN 1 ELSE 0 END
      WHERE id = $1`,
    [u.id, u.email, u.teamId, u.role, u.issuer, u.subject, u.teamChanged],
  );
}

/** A team by id (when `ref` is a uuid) or by name (the oldest of that name). */
export async function selectTeamByRef(db: Queryable, ref: string): Promise<{ id: string; name: string } | null> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);
  const r = await db.query<{ id: string; name: string }>(
    isUuid ? 'SELECT id, name FROM teams WHERE id = $1' : 'SELECT id, name FROM teams WHERE name = $1 ORDER BY created_at, id LIMIT 1',
    [ref],
  );
  return r.rows[0] ?? null;
}
