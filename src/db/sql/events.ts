import type { Queryable } from '../pool.ts';

/** Channel on which every committed state change is announced: `{id, team_id, app_id, state, at, error}`. */
export const EVENTS_CHANNEL = 'shipclock_events';
/** Channel announcing that something may have become due sooner: payload is the instant (ISO) or empty. */
export const DUE_CHANNEL = 'shipclock_due';

/**
 * How far ahead an instant must be for its "became due" NOTIFY to be left out. Every scheduler
 * ignores a DUE_CHANNEL instant later than its next cycle + its prefetch (+ 50 ms), and its next
 * cycle is never more than one poll interval away; SHIPCLOCK_POLL_INTERVAL_MS is at most 60 s and
 * SHIPCLOCK_PREFETCH_MS at most 30 s (src/config.ts). So an instant more than 2 × 60 s + 30 s ahead
 * is one no scheduler would act on: its poll finds it in time, and skipping the NOTIFY changes
 * nothing but the work of the listeners. Keep this at least 2 × the maximum poll interval + the
 * maximum prefetch if those bounds change.
 */
export const DUE_NOTIFY_HORIZON_SECONDS = 2 * 60 + 30;

/**
 * The events-channel payload of one timeline row `e` (deployment_events) of deployment `d`, as
 * src/api/events-hub.ts reads it. Shared by every statement that announces an event.
 */
export function eventPayloadSql(e: string, d: string): string {
  return `json_build_object('id', ${e}.deployment_id, 'team_id', ${e}.team_id, 'app_id', ${d}.app_id,
              'state', ${e}.state, 'at', ${e}.at, 'error', ${d}.error)::text`;
}

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
     SELECT pg_notify('${EVENTS_CHANNEL}', ${eventPayloadSql('ins', 'd')})
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
