/**
 * SQL for the calendar (issue 11): what a team has in a time range, and the per-user calendar
 * feed tokens (migration 011). Only the SHA-256 of a feed token is stored; a token is found by
 * that hash. A revoked token keeps its row, with revoked_at.
 */
import type { DeploymentState } from '../../core/state.ts';
import type { Queryable } from '../pool.ts';

export interface CalendarDeploymentRow {
  id: string;
  app_id: string;
  app_name: string;
  state: DeploymentState;
  run_at: Date;
  schedule_id: string | null;
  schedule_generation: number | null;
  schedule_role: 'occurrence' | 'dependency' | null;
  occurrence_at: Date | null;
  /** For a one-off dependency row: the app of the deployment it is the dependency of. */
  dependent_app_name: string | null;
}

/**
 * A team's deployment rows (one-off and schedule occurrences) whose instant is in [from, to),
 * in instant order, at most `limit` (served by deployments_team_run_at_idx).
 */
export async function calendarDeployments(db: Queryable, teamId: string, from: Date, to: Date, limit: number): Promise<CalendarDeploymentRow[]> {
  const r = await db.query<CalendarDeploymentRow>(
    `SELECT d.id, d.app_id, a.name AS app_name, d.state, d.run_at, d.schedule_id, d.schedule_generation, d.schedule_role, d.occurrence_at,
            (SELECT da.name FROM deployments dd JOIN apps da ON da.id = dd.app_id WHERE dd.dependency_id = d.id LIMIT 1) AS dependent_app_name
       FROM deployments d JOIN apps a ON a.id = d.app_id
      WHERE d.team_id = $1 AND d.run_at >= $2 AND d.run_at < $3
      ORDER BY d.run_at, d.id LIMIT $4`,
    [teamId, from, to, limit],
  );
  return r.rows;
}

export interface CalendarScheduleRow {
  id: string;
  app_id: string;
  app_name: string;
  cron: string;
  timezone: string;
  dst_gap: 'shift' | 'skip';
  dst_overlap: 'first' | 'both';
  starts_at: Date | null;
  ends_at: Date | null;
  generation: number;
  materialized_until: Date;
}

/** A team's schedules that will still make occurrences: neither deleted nor paused. */
export async function activeSchedules(db: Queryable, teamId: string): Promise<CalendarScheduleRow[]> {
  const r = await db.query<CalendarScheduleRow>(
    `SELECT s.id, s.app_id, a.name AS app_name, s.cron, s.timezone, s.dst_gap, s.dst_overlap, s.starts_at, s.ends_at,
            s.generation, s.materialized_until
       FROM schedules s JOIN apps a ON a.id = s.app_id
      WHERE s.team_id = $1 AND s.deleted_at IS NULL AND NOT s.paused
      ORDER BY s.created_at, s.id`,
    [teamId],
  );
  return r.rows;
}

/** Every app of a team, deleted ones too (a freeze may name one), id → name. */
export async function teamAppNames(db: Queryable, teamId: string): Promise<Map<string, string>> {
  const r = await db.query<{ id: string; name: string }>('SELECT id, name FROM apps WHERE team_id = $1', [teamId]);
  return new Map(r.rows.map((a) => [a.id, a.name]));
}

// ─── feed tokens ─────────────────────────────────────────────────────────────────────────

/** Revokes the user's live feed token, if any; whether there was one. */
export async function revokeCalendarToken(db: Queryable, userId: string): Promise<boolean> {
  const r = await db.query('UPDATE calendar_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL', [userId]);
  return (r.rowCount ?? 0) > 0;
}

/** Stores a new live feed token (the caller revoked the previous one in the same transaction). */
export async function insertCalendarToken(db: Queryable, userId: string, hash: Buffer): Promise<{ id: string; created_at: Date }> {
  const r = await db.query<{ id: string; created_at: Date }>(
    'INSERT INTO calendar_tokens (user_id, token_hash) VALUES ($1, $2) RETURNING id, created_at',
    [userId, hash],
  );
  return r.rows[0];
}

/** When the user's live feed token was made, or null when there is none. */
export async function liveCalendarToken(db: Queryable, userId: string): Promise<{ created_at: Date } | null> {
  const r = await db.query<{ created_at: Date }>('SELECT created_at FROM calendar_tokens WHERE user_id = $1 AND revoked_at IS NULL', [userId]);
  return r.rows[0] ?? null;
}

/** The live feed token with this hash: its user and the user's team (a live user only). */
export async function selectCalendarTokenForFeed(db: Queryable, hash: Buffer): Promise<{ user_id: string; team_id: string; team_name: string } | null> {
  const r = await db.query<{ user_id: string; team_id: string; team_name: string }>(
    `SELECT u.id AS user_id, u.team_id, t.name AS team_name
       FROM calendar_tokens k JOIN users u ON u.id = k.user_id JOIN teams t ON t.id = u.team_id
      WHERE k.token_hash = $1 AND k.revoked_at IS NULL AND u.deleted_at IS NULL`,
    [hash],
  );
  return r.rows[0] ?? null;
}
