import type { Queryable } from '../pool.ts';

/** Channel on which every committed state change is announced: `{id, team_id, app_id, state, at, error}`. */
export const EVENTS_CHANNEL = 'shipclock_events';
/** Channel announcing that something may have become due sooner: payload is the instant (ISO) or empty. */
export const DUE_CHANNEL = 'shipclock_due';

/**
 * Appends timeline events for deployments and announces them, in the caller's transaction (so a
 * listener never hears of a change that was rolled back).
 */
export async function insertEvents(db: Queryable, rows: Array<{ id: string; state: string; message: string | null }>): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `WITH ins AS (
       INSERT INTO deployment_events (deployment_id, team_id, state, message)
       SELECT d.id, d.team_id, x.state, x.message
         FROM unnest($1::uuid[], $2::text[], $3::text[]) AS x(id, state, message)
         JOIN deployments d ON d.id = x.id
       RETURNING deployment_id, team_id, state, at
     )
     SELECT pg_notify('${EVENTS_CHANNEL}', json_build_object('id', ins.deployment_id, 'team_id', ins.team_id, 'app_id', d.app_id,
              'state', ins.state, 'at', ins.at, 'error', d.error)::text)
       FROM ins JOIN deployments d ON d.id = ins.deployment_id`,
    [rows.map((r) => r.id), rows.map((r) => r.state), rows.map((r) => r.message)],
  );
}

export async function notifyDue(db: Queryable, at: Date | null): Promise<void> {
  await db.query(`SELECT pg_notify('${DUE_CHANNEL}', $1)`, [at ? at.toISOString() : '']);
}

export interface EventRow {
  id: string;
  at: Date;
  state: string;
  message: string | null;
}

export async function listEvents(db: Queryable, deploymentId: string): Promise<EventRow[]> {
  const r = await db.query<EventRow>(
    'SELECT id::text, at, state, message FROM deployment_events WHERE deployment_id = $1 ORDER BY id',
    [deploymentId],
  );
  return r.rows;
}
