/**
 * SQL for notification subscriptions and their delivery outbox. One function per operation;
 * each takes its client so it can join the caller's transaction.
 */
import type { Queryable } from '../pool.ts';

/**
 * The notification event catalogue: final states, then the approval events (src/services/approvals.ts):
 * `approval_requested` (a deployment that needs approval was scheduled), `approved` (its required
 * count was reached), `rejected`.
 */
export const NOTIFY_EVENTS = [
  'failed', 'missed', 'skipped', 'succeeded', 'approval_requested', 'approved', 'rejected',
  // The ends of a rollback (rollback_failed: it failed or could not be made).
  'rollback_failed', 'rollback_succeeded',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
export type NotifyFormat = 'json' | 'slack';

export interface SubscriptionRow {
  id: string;
  team_id: string;
  url: string;
  events: NotifyEvent[];
  format: NotifyFormat;
  has_secret: boolean;
  /** Null: no reminders. */
  remind_before_seconds: number | null;
  created_at: Date;
  /** created_at with microseconds (a JS Date keeps milliseconds only), for keyset cursors. */
  cursor_at: string;
}

const SUBSCRIPTION_COLUMNS = `id, team_id, url, events, format, secret IS NOT NULL AS has_secret, remind_before_seconds, created_at,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at`;

export async function insertSubscription(
  db: Queryable,
  s: { teamId: string; url: string; events: NotifyEvent[]; format: NotifyFormat; secret: Buffer | null; createdBy: string | null; remindBeforeSeconds?: number | null },
): Promise<SubscriptionRow> {
  const { rows } = await db.query<SubscriptionRow>(
    `INSERT INTO notification_subscriptions (team_id, url, events, format, secret, created_by, remind_before_seconds)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${SUBSCRIPTION_COLUMNS}`,
    [s.teamId, s.url, s.events, s.format, s.secret, s.createdBy, s.remindBeforeSeconds ?? null],
  );
  return rows[0];
}

/** Oldest first, keyset-paginated on (created_at, id). */
export async function listSubscriptions(
  db: Queryable,
  teamId: string,
  page: { after: { createdAt: string; id: string } | null; limit: number },
): Promise<SubscriptionRow[]> {
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT ${SUBSCRIPTION_COLUMNS} FROM notification_subscriptions
     WHERE team_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
     ORDER BY created_at, id LIMIT $4`,
    [teamId, page.after?.createdAt ?? null, page.after?.id ?? null, page.limit],
  );
  return rows;
}

/**
 * Changes what is given (undefined: kept; `secret: null` removes it). Queued deliveries read the
 * subscription when they are sent, so they follow the change. Null when the team has no such one.
 */
export async function updateSubscription(
  db: Queryable,
  teamId: string,
  id: string,
  s: { url?: string; events?: NotifyEvent[]; format?: NotifyFormat; secret?: Buffer | null; remindBeforeSeconds?: number | null },
): Promise<SubscriptionRow | null> {
  const { rows } = await db.query<SubscriptionRow>(
    `UPDATE notification_subscriptions
        SET url = COALESCE($3, url), events = COALESCE($4, events), format = COALESCE($5, format),
            secret = CASE WHEN $6::boolean THEN $7 ELSE secret END,
            remind_before_seconds = CASE WHEN $8::boolean THEN $9::integer ELSE remind_before_seconds END
      WHERE team_id = $1 AND id = $2
      RETURNING ${SUBSCRIPTION_COLUMNS}`,
    [teamId, id, s.url ?? null, s.events ?? null, s.format ?? null, s.secret !== undefined, s.secret ?? null,
      s.remindBeforeSeconds !== undefined, s.remindBeforeSeconds ?? null],
  );
  return rows[0] ?? null;
}

/** Deletes a subscription and its queued deliveries. False when the team has no such subscription. */
export async function deleteSubscription(db: Queryable, teamId: string, id: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM notification_subscriptions WHERE team_id = $1 AND id = $2', [teamId, id]);
  return (rowCount ?? 0) > 0;
}

export interface DeliveryChange {
  teamId: string;
  deploymentId: string;
  appId: string;
  state: string;
  error: string | null;
}

/**
 * Queues one delivery per subscription of each change's team that wants its state, for any
 * number of changes in one statement (a burst ends a thousand deployments in one transaction).
 * The payload is captured now, inside the state change's transaction, so it describes exactly
 * the committed change. Returns the number queued.
 */
export async function enqueueDeliveries(db: Queryable, changes: DeliveryChange | DeliveryChange[]): Promise<number> {
  const list = Array.isArray(changes) ? changes : [changes];
  if (list.length === 0) return 0;
  const { rowCount } = await db.query(
    `INSERT INTO notification_deliveries (subscription_id, team_id, deployment_id, event, payload)
     SELECT s.id, s.team_id, x.deployment_id, x.state, jsonb_build_object(
              'event', 'deployment.' || x.state,
              'deployment_id', x.deployment_id,
              'app_id', x.app_id,
              'app_name', a.name,
              'state', x.state,
              'error', x.error,
              'run_at', d.run_at,
              'timezone', d.timezone,
              'attempts', d.attempts,
              'rollback', CASE WHEN d.rollback_state IS NOT NULL
                               THEN jsonb_build_object('state', d.rollback_state, 'ref', d.rollback_ref, 'error', d.rollback_error) END,
              'started_at', d.started_at,
              'finished_at', coalesce(d.finished_at, now()))
       FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[]) AS x(team_id, deployment_id, app_id, state, error)
       JOIN notification_subscriptions s ON s.team_id = x.team_id AND x.state = ANY (s.events)
       LEFT JOIN deployments d ON d.id = x.deployment_id
       LEFT JOIN apps a ON a.id = x.app_id`,
    [list.map((c) => c.teamId), list.map((c) => c.deploymentId), list.map((c) => c.appId), list.map((c) => c.state), list.map((c) => c.error)],
  );
  return rowCount ?? 0;
}

export interface ClaimedDelivery {
  id: string;
  event: string;
  payload: Record<string, unknown>;
  attempts: number;
  url: string;
  format: NotifyFormat;
  secret: Buffer | null;
}

/**
 * Claims up to `limit` due deliveries for this process: counts the attempt and pushes `due_at`
 * out by `claimSeconds`, so that if this process dies mid-delivery another one retries it then.
 * SKIP LOCKED lets several processes claim at once without waiting on each other.
 */
export async function claimDeliveries(db: Queryable, limit: number, claimSeconds: number): Promise<ClaimedDelivery[]> {
  const { rows } = await db.query<ClaimedDelivery>(
    `WITH due AS (
       SELECT id FROM notification_deliveries
        WHERE state = 'pending' AND due_at <= now()
        ORDER BY due_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
     )
     UPDATE notification_deliveries n
        SET attempts = n.attempts + 1, due_at = now() + make_interval(secs => $2)
       FROM due, notification_subscriptions s
      WHERE n.id = due.id AND s.id = n.subscription_id
     RETURNING n.id::text AS id, n.event, n.payload, n.attempts, s.url, s.format, s.secret`,
    [limit, claimSeconds],
  );
  return rows;
}

export async function markDelivered(db: Queryable, id: string, status: number): Promise<void> {
  await db.query(
    `UPDATE notification_deliveries SET state = 'delivered', delivered_at = now(), last_status = $2, last_error = NULL WHERE id = $1`,
    [id, status],
  );
}

/** Records a failed attempt: retried after `retryInSeconds`, or given up when that is null. */
export async function markAttemptFailed(
  db: Queryable,
  id: string,
  failure: { error: string; status: number | null; retryInSeconds: number | null },
): Promise<void> {
  await db.query(
    `UPDATE notification_deliveries
        SET last_error = $2, last_status = $3,
            state = CASE WHEN $4::float8 IS NULL THEN 'failed' ELSE 'pending' END,
            due_at = CASE WHEN $4::float8 IS NULL THEN due_at ELSE now() + make_interval(secs => $4::float8) END
      WHERE id = $1`,
    [id, failure.error.slice(0, 1000), failure.status, failure.retryInSeconds],
  );
}

/** Deletes finished deliveries older than `days` (at most `limit` per call). Returns how many. */
export async function pruneDeliveries(db: Queryable, days: number, limit = 1000): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM notification_deliveries WHERE id IN (
       SELECT id FROM notification_deliveries
        WHERE state <> 'pending' AND created_at < now() - make_interval(days => $1)
        LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [days, limit],
  );
  return rowCount ?? 0;
}
