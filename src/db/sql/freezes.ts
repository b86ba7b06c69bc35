/**
 * Every SQL statement on `freezes`, and those that hold and release deployments for them.
 * Each function takes its client, so callers compose them into one transaction.
 */
import type { FreezeSpec } from '../../core/freeze.ts';
import type { Queryable } from '../pool.ts';
import type { DeploymentRow } from './deployments.ts';

export interface FreezeRow {
  id: string;
  team_id: string;
  name: string;
  reason: string | null;
  kind: 'once' | 'recurring';
  timezone: string;
  /** "2026-12-24T18:00:00" (wall time, no zone) */
  start_local: string | null;
  end_local: string | null;
  start_at: Date | null;
  end_at: Date | null;
  cron: string | null;
  duration_seconds: number | null;
  apps: string[] | null;
  created_by: string | null;
  created_by_email: string | null;
  created_at: Date;
  updated_at: Date;
  /** created_at with microseconds, for keyset cursors. */
  cursor_at: string;
}

const SELECT = `SELECT f.id, f.team_id, f.name, f.reason, f.kind, f.timezone,
    to_char(f.start_local, 'YYYY-MM-DD"T"HH24:MI:SS') AS start_local, to_char(f.end_local, 'YYYY-MM-DD"T"HH24:MI:SS') AS end_local,
    f.start_at, f.end_at, f.cron, f.duration_seconds, f.apps, f.created_by, u.email AS created_by_email, f.created_at, f.updated_at,
    to_char(f.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
  FROM freezes f LEFT JOIN users u ON u.id = f.created_by`;

export function specOf(f: FreezeRow): FreezeSpec {
  return {
    id: f.id, name: f.name, reason: f.reason, apps: f.apps, timezone: f.timezone, kind: f.kind,
    startMs: f.start_at?.getTime(), endMs: f.end_at?.getTime(), cron: f.cron ?? undefined, durationSeconds: f.duration_seconds ?? undefined,
  };
}

export interface FreezeFields {
  name: string;
  reason: string | null;
  kind: 'once' | 'recurring';
  timezone: string;
  start_local: string | null;
  end_local: string | null;
  start_at: Date | null;
  end_at: Date | null;
  cron: string | null;
  duration_seconds: number | null;
  apps: string[] | null;
}

export async function insertFreeze(db: Queryable, f: FreezeFields & { team_id: string; created_by: string }): Promise<string> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO freezes (team_id, name, reason, kind, timezone, start_local, end_local, start_at, end_at, cron, duration_seconds, apps, created_by)
     VALUES ($1, $2, $3, $4, $5, $6::timestamp, $7::timestamp, $8, $9, $10, $11, $12::uuid[], $13) RETURNING id`,
    [f.team_id, f.name, f.reason, f.kind, f.timezone, f.start_local, f.end_local, f.start_at, f.end_at, f.cron, f.duration_seconds, f.apps, f.created_by],
  );
  return r.rows[0].id;
}

export async function updateFreezeRow(db: Queryable, id: string, f: FreezeFields): Promise<void> {
  await db.query(
    `UPDATE freezes SET name = $2, reason = $3, kind = $4, timezone = $5, start_local = $6::timestamp, end_local = $7::timestamp, start_at = $8,
        end_at = $9, cron = $10, duration_seconds = $11, apps = $12::uuid[], updated_at = now()
      WHERE id = $1 AND deleted_at IS NULL`,
    [id, f.name, f.reason, f.kind, f.timezone, f.start_local, f.end_local, f.start_at, f.end_at, f.cron, f.duration_seconds, f.apps],
  );
}

export async function softDeleteFreeze(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE freezes SET deleted_at = now(), updated_at = now() WHERE id = $1', [id]);
}

export async function getFreeze(db: Queryable, teamId: string, id: string, forUpdate = false): Promise<FreezeRow | null> {
  const r = await db.query<FreezeRow>(`${SELECT} WHERE f.id = $1 AND f.team_id = $2 AND f.deleted_at IS NULL${forUpdate ? ' FOR UPDATE OF f' : ''}`, [id, teamId]);
  return r.rows[0] ?? null;
}

/** A team's freezes, oldest first, keyset on (created_at, id). */
export async function listFreezes(db: Queryable, teamId: string, after: { at: string; id: string } | null, limit: number): Promise<FreezeRow[]> {
  const r = await db.query<FreezeRow>(
    `${SELECT} WHERE f.team_id = $1 AND f.deleted_at IS NULL AND ($2::timestamptz IS NULL OR (f.created_at, f.id) > ($2::timestamptz, $3::uuid))
      ORDER BY f.created_at, f.id LIMIT $4`,
    [teamId, after?.at ?? null, after?.id ?? null, limit],
  );
  return r.rows;
}

/**
 * The live freezes of these teams that can still cover an instant at or after `from` (recurring
 * ones, and one-off ones not ended by then): what every check reads, one indexed statement.
 */
export async function liveFreezes(db: Queryable, teamIds: readonly string[], from: Date | null = null): Promise<FreezeRow[]> {
  if (!teamIds.length) return [];
  const r = await db.query<FreezeRow>(
    `${SELECT} WHERE f.team_id = ANY($1::uuid[]) AND f.deleted_at IS NULL
       AND (f.kind = 'recurring' OR f.end_at > COALESCE($2::timestamptz, now()))`,
    [teamIds, from],
  );
  return r.rows;
}

/**
 * A fingerprint of a team's live freezes (every one not deleted, ended or not): the md5 of their
 * ids and updated_at, '' for none. Every change to a freeze (create, update, delete) changes it,
 * so a freeze verdict computed from the specs loaded with one stamp is still true in a statement
 * that finds the same stamp (src/services/freeze-check.ts caches the specs by it). `team` is the
 * SQL of the team id; freezes_team_idx serves it.
 */
export function freezeStampSql(team: string): string {
  return `(SELECT COALESCE(md5(string_agg(f.id::text || '@' || f.updated_at::text, ',' ORDER BY f.id)), '')
             FROM freezes f WHERE f.team_id = ${team} AND f.deleted_at IS NULL)`;
}

/** Every live freeze of a team (also those that ended) and their stamp (freezeStampSql), read in one snapshot. */
export async function liveFreezesStamped(db: Queryable, teamId: string): Promise<{ stamp: string; rows: FreezeRow[] }> {
  const r = await db.query<FreezeRow & { stamp: string }>(
    `SELECT x.*, ${freezeStampSql('$1::uuid')} AS stamp
       FROM (${SELECT} WHERE f.team_id = $1::uuid AND f.deleted_at IS NULL) x`,
    [teamId],
  );
  return { stamp: r.rows[0]?.stamp ?? '', rows: r.rows };
}

/**
 * The team's scheduled deployments a freeze on `apps` (null: all) could hold, locked: instant
 * ahead, in [from, to) when given, not overridden, not being fired right now (leased: the fire
 * gate checks those at their instant).
 */
export async function holdCandidates(db: Queryable, teamId: string, apps: string[] | null, from: Date | null, to: Date | null): Promise<DeploymentRow[]> {
  const r = await db.query<DeploymentRow>(
    `SELECT d.*, a.name AS app_name FROM deployments d JOIN apps a ON a.id = d.app_id
      WHERE d.team_id = $1 AND d.state = 'scheduled' AND d.run_at > now() AND d.freeze_override IS NULL
        AND ($2::uuid[] IS NULL OR d.app_id = ANY($2::uuid[]))
        AND ($3::timestamptz IS NULL OR d.run_at >= $3) AND ($4::timestamptz IS NULL OR d.run_at < $4)
        AND NOT (d.lease_owner IS NOT NULL AND d.lease_until > now())
      ORDER BY d.run_at, d.id
      FOR UPDATE OF d`,
    [teamId, apps, from, to],
  );
  return r.rows;
}

/** Scheduled deployments (not leased) whose dependency is one of `ids`: they wait on a held row, so they are held too. */
export async function pendingDependents(db: Queryable, ids: readonly string[]): Promise<DeploymentRow[]> {
  if (!ids.length) return [];
  const r = await db.query<DeploymentRow>(
    `SELECT d.*, a.name AS app_name FROM deployments d JOIN apps a ON a.id = d.app_id
      WHERE d.dependency_id = ANY($1::uuid[]) AND d.state = 'scheduled' AND d.freeze_override IS NULL
        AND NOT (d.lease_owner IS NOT NULL AND d.lease_until > now())
      FOR UPDATE OF d`,
    [ids],
  );
  return r.rows;
}

/**
 * scheduled → held: never fires by itself; the scheduler looks at it again at its expiry (due_at)
 * to end it missed. `error` says why it is held. Clears any lease. Returns the rows changed.
 */
export async function holdDeployments(db: Queryable, items: ReadonlyArray<{ id: string; heldBy: string | null; why: string }>, owner: string | null = null): Promise<string[]> {
  if (!items.length) return [];
  const r = await db.query<{ id: string }>(
    `UPDATE deployments d SET state = 'held', held_by = x.held_by, error = x.why, due_at = d.expires_at,
        lease_owner = NULL, lease_until = NULL, updated_at = now()
       FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS x(id, held_by, why)
      WHERE d.id = x.id AND d.state = 'scheduled' AND ($4::text IS NULL OR d.lease_owner = $4)
      RETURNING d.id`,
    [items.map((i) => i.id), items.map((i) => i.heldBy), items.map((i) => i.why), owner],
  );
  return r.rows.map((x) => x.id);
}

/** The held deployments of a freeze (and those held because their dependency is), locked, by instant. */
export async function heldBy(db: Queryable, freezeId: string): Promise<DeploymentRow[]> {
  const r = await db.query<DeploymentRow>(
    `SELECT d.*, a.name AS app_name FROM deployments d JOIN apps a ON a.id = d.app_id
      WHERE d.state = 'held' AND (d.held_by = $1 OR d.dependency_id IN (SELECT id FROM deployments WHERE held_by = $1 AND state = 'held'))
      ORDER BY d.run_at, d.id
      FOR UPDATE OF d`,
    [freezeId],
  );
  return r.rows;
}

/** Moves held rows to another freeze that still covers them. */
export async function reassignHeld(db: Queryable, items: ReadonlyArray<{ id: string; heldBy: string | null; why: string }>): Promise<void> {
  if (!items.length) return;
  await db.query(
    `UPDATE deployments d SET held_by = x.held_by, error = x.why, updated_at = now()
       FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS x(id, held_by, why)
      WHERE d.id = x.id AND d.state = 'held'`,
    [items.map((i) => i.id), items.map((i) => i.heldBy), items.map((i) => i.why)],
  );
}

/**
 * held → scheduled, due at its instant (or now, when that passed within its expiry). With
 * `override`, freezes never hold it again (an owner released it on purpose). Returns the rows changed.
 */
export async function releaseHeld(db: Queryable, ids: readonly string[], override: Record<string, unknown> | null): Promise<string[]> {
  if (!ids.length) return [];
  const r = await db.query<{ id: string }>(
    `UPDATE deployments SET state = 'scheduled', held_by = NULL, error = NULL, due_at = GREATEST(run_at, now()),
        freeze_override = COALESCE($2::jsonb, freeze_override), lease_owner = NULL, lease_until = NULL, updated_at = now()
      WHERE id = ANY($1::uuid[]) AND state = 'held'
      RETURNING id`,
    [ids, override ? JSON.stringify(override) : null],
  );
  return r.rows.map((x) => x.id);
}

/** Marks deployments as scheduled into a freeze on purpose. */
export async function setFreezeOverride(db: Queryable, ids: readonly string[], override: Record<string, unknown>): Promise<void> {
  await db.query('UPDATE deployments SET freeze_override = $2::jsonb WHERE id = ANY($1::uuid[])', [ids, JSON.stringify(override)]);
}
