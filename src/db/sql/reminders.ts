/**
 * SQL for reminders: which are about to be due, queuing one (at most once per subscription,
 * deployment and instant: the primary key of deployment_reminders), and the used-link nonces.
 *
 * A chain (a deployment and its pending dependency) is reminded once, through the dependent, at
 * the lead before its first instant (the dependency's); a pending dependency row is not reminded
 * on its own.
 */
import type { Queryable } from '../pool.ts';

/** The chain's first instant: the pending dependency's, else the deployment's own. */
const CHAIN_START = 'least(d.run_at, dep.run_at)';

export interface DueReminder {
  subscription_id: string;
  deployment_id: string;
  run_at: Date;
  remind_at: Date;
  db_now: Date;
}

/**
 * Reminders not yet queued that are due within `lookaheadSeconds` (or overdue: the deployment
 * was scheduled with less than the lead left, or no process ran), for chains not yet started.
 *
 * Driven by the chain's first row `x` (a deployment without a pending dependency, or a pending
 * dependency), whose instant must lie in (now, now + lead + lookahead]: a range on run_at, so a
 * poll reads only the deployments within one lead of now. The reminded row is x's scheduled
 * dependent if it has one, else x.
 */
export async function dueReminders(db: Queryable, lookaheadSeconds: number, limit: number): Promise<DueReminder[]> {
  const { rows } = await db.query<DueReminder>(
    `SELECT s.id AS subscription_id, coalesce(dd.id, x.id) AS deployment_id, coalesce(dd.run_at, x.run_at) AS run_at,
            x.run_at - make_interval(secs => s.remind_before_seconds) AS remind_at, clock_timestamp() AS db_now
       FROM notification_subscriptions s
       -- A range scan per subscription (OFFSET 0 keeps the planner from hashing the whole table instead).
       CROSS JOIN LATERAL (
         SELECT id, run_at, dependency_id FROM deployments
          WHERE team_id = s.team_id AND state = 'scheduled'
            AND run_at > now() AND run_at <= now() + make_interval(secs => s.remind_before_seconds + $1::float8)
          OFFSET 0) x
       LEFT JOIN deployments dd ON dd.dependency_id = x.id AND dd.state = 'scheduled'
      WHERE s.remind_before_seconds IS NOT NULL
        AND (x.dependency_id IS NULL OR NOT EXISTS (SELECT 1 FROM deployments p WHERE p.id = x.dependency_id AND p.state = 'scheduled'))
        AND NOT EXISTS (SELECT 1 FROM deployment_reminders r
                         WHERE r.subscription_id = s.id AND r.deployment_id = coalesce(dd.id, x.id) AND r.run_at = coalesce(dd.run_at, x.run_at))
      ORDER BY remind_at
      LIMIT $2`,
    [lookaheadSeconds, limit],
  );
  return rows;
}

export interface QueuedReminder {
  remind_at: Date;
  queued_at: Date;
}

/**
 * Records the reminder of (subscription, deployment, instant) if it is still due now: the
 * deployment is still scheduled at that instant, the subscription still wants reminders and its
 * lead makes it due (within `earlySeconds`, a timer's tolerance). Null when it is not due, no
 * longer applies (rescheduled, canceled, lead changed) or another process queued it first.
 */
export async function insertReminder(
  db: Queryable, r: { subscriptionId: string; deploymentId: string; runAt: Date }, earlySeconds = 1,
): Promise<QueuedReminder | null> {
  const { rows } = await db.query<QueuedReminder>(
    `INSERT INTO deployment_reminders (subscription_id, deployment_id, run_at, remind_at)
     SELECT s.id, d.id, d.run_at, ${CHAIN_START} - make_interval(secs => s.remind_before_seconds)
       FROM notification_subscriptions s
       JOIN deployments d ON d.id = $2 AND d.team_id = s.team_id AND d.state = 'scheduled' AND d.run_at = $3
       LEFT JOIN deployments dep ON dep.id = d.dependency_id AND dep.state = 'scheduled'
      WHERE s.id = $1 AND s.remind_before_seconds IS NOT NULL
        AND ${CHAIN_START} > now()
        AND ${CHAIN_START} - make_interval(secs => s.remind_before_seconds) <= clock_timestamp() + make_interval(secs => $4::float8)
     ON CONFLICT DO NOTHING
     RETURNING remind_at, queued_at`,
    [r.subscriptionId, r.deploymentId, r.runAt, earlySeconds],
  );
  return rows[0] ?? null;
}

export interface ReminderSubject {
  deployment_id: string;
  team_id: string;
  app_id: string;
  app_name: string;
  run_at: Date;
  timezone: string;
  local_year: number;
  local_month: number;
  local_day: number;
  local_hour: number;
  local_minute: number;
  local_second: number;
  utc_offset: string;
  /** The pending dependency, if any. */
  dependency_id: string | null;
  dependency_app_id: string | null;
  dependency_app_name: string | null;
  dependency_run_at: Date | null;
  remind_before_seconds: number;
}

/** What a reminder says about its deployment (and its pending dependency). */
export async function reminderSubject(db: Queryable, deploymentId: string, subscriptionId: string): Promise<ReminderSubject | null> {
  const { rows } = await db.query<ReminderSubject>(
    `SELECT d.id AS deployment_id, d.team_id, d.app_id, a.name AS app_name, d.run_at, d.timezone,
            d.local_year, d.local_month, d.local_day, d.local_hour, d.local_minute, d.local_second, d.utc_offset,
            dep.id AS dependency_id, dep.app_id AS dependency_app_id, da.name AS dependency_app_name, dep.run_at AS dependency_run_at,
            s.remind_before_seconds
       FROM deployments d
       JOIN apps a ON a.id = d.app_id
       JOIN notification_subscriptions s ON s.id = $2
       LEFT JOIN deployments dep ON dep.id = d.dependency_id AND dep.state = 'scheduled'
       LEFT JOIN apps da ON da.id = dep.app_id
      WHERE d.id = $1`,
    [deploymentId, subscriptionId],
  );
  return rows[0] ?? null;
}

/** Queues the reminder's delivery in the notification outbox (the notifier sends and retries it). */
export async function insertReminderDelivery(
  db: Queryable, d: { subscriptionId: string; teamId: string; deploymentId: string; payload: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `INSERT INTO notification_deliveries (subscription_id, team_id, deployment_id, event, payload)
     VALUES ($1, $2, $3, 'reminder', $4)`,
    [d.subscriptionId, d.teamId, d.deploymentId, JSON.stringify(d.payload)],
  );
}

/**
 * Gives up queued reminders whose deployment was rescheduled or ended meanwhile (a receiver that
 * was down would otherwise get a stale reminder on a retry). Returns how many.
 */
export async function dropStaleReminderDeliveries(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE notification_deliveries n
        SET state = 'failed', last_error = 'not sent: the deployment was rescheduled or ended before this reminder went out'
      WHERE n.state = 'pending' AND n.event = 'reminder' AND n.due_at <= now()
        AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.id = n.deployment_id AND d.state = 'scheduled'
                          AND d.run_at = (n.payload->>'run_at')::timestamptz)`,
  );
  return rowCount ?? 0;
}

/** Spends a link's nonce; false when it was spent before. Call in the transaction of the link's action. */
export async function spendNonce(db: Queryable, u: { nonce: string; deploymentId: string; action: string }): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO reminder_link_uses (nonce, deployment_id, action) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
    [u.nonce, u.deploymentId, u.action],
  );
  return (rowCount ?? 0) > 0;
}

export async function nonceUse(db: Queryable, nonce: string): Promise<{ action: string; used_at: Date } | null> {
  const { rows } = await db.query<{ action: string; used_at: Date }>('SELECT action, used_at FROM reminder_link_uses WHERE nonce = $1', [nonce]);
  return rows[0] ?? null;
}
