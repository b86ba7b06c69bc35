/**
 * SQL for the audit log. Append-only; read newest first.
 */
import type { Queryable } from '../pool.ts';

export interface AuditRow {
  id: string;
  at: Date;
  actor_id: string | null;
  actor_email: string | null;
  action: string;
  target_id: string | null;
  details: Record<string, unknown>;
}

export async function insertAudit(
  db: Queryable,
  e: { teamId: string; actorId: string | null; action: string; targetId: string | null; details: Record<string, unknown> },
): Promise<void> {
  await db.query(
    'INSERT INTO audit_log (team_id, actor_id, action, target_id, details) VALUES ($1, $2, $3, $4, $5)',
    [e.teamId, e.actorId, e.action, e.targetId, JSON.stringify(e.details)],
  );
}

/** Newest first, keyset-paginated on id; optional filters on action and target. */
export async function listAudit(
  db: Queryable,
  teamId: string,
  q: { beforeId: string | null; limit: number; action?: string; targetId?: string },
): Promise<AuditRow[]> {
  const { rows } = await db.query<AuditRow>(
    `SELECT l.id::text AS id, l.at, l.actor_id, u.email AS actor_email, l.action, l.target_id, l.details
       FROM audit_log l LEFT JOIN users u ON u.id = l.actor_id
      WHERE l.team_id = $1
        AND ($2::bigint IS NULL OR l.id < $2::bigint)
        AND ($3::text IS NULL OR l.action = $3)
        AND ($4::text IS NULL OR l.target_id = $4)
      ORDER BY l.id DESC
      LIMIT $5`,
    [teamId, q.beforeId, q.action ?? null, q.targetId ?? null, q.limit],
  );
  return rows;
}
