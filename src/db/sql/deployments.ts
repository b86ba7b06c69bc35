/**
 * Every SQL statement on `deployments`. Each function takes its client, so callers compose
 * them into one transaction.
 */
import type { DeploymentState } from '../../core/state.ts';
import type { Queryable } from '../pool.ts';
import { approvalStatusSql } from './approvals.ts';
import { DUE_CHANNEL, DUE_NOTIFY_HORIZON_SECONDS, eventPayloadSql } from './events.ts';
import { freezeStampSql } from './freezes.ts';

export interface DeploymentRow {
  id: string;
  team_id: string;
  app_id: string;
  app_name: string;
  state: DeploymentState;
  run_at: Date;
  timezone: string;
  local_year: number;
  local_month: number;
  local_day: number;
  local_hour: number;
  local_minute: number;
  local_second: number;
  utc_offset: string;
  disambiguation: string;
  dependency_id: string | null;
  dependency_lead_seconds: number | null;
  expires_after_seconds: number;
  expires_at: Date;
  attempts: number;
  error: string | null;
  phase: string | null;
  provider_ref: Record<string, unknown> | null;
  log: string;
  due_at: Date | null;
  lease_owner: string | null;
  lease_until: Date | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  /** The recurring schedule this row is an occurrence (or an occurrence's dependency) of; null for one-off deployments. */
  schedule_id: string | null;
  /** state held: the freeze holding it (null when held because its dependency is). */
  held_by: string | null;
  /** An owner scheduled or released it into a freeze on purpose: freezes never hold it. */
  freeze_override: { reason: string; by: string; at: string } | null;
  /** The rollback's record (migration 009); rollback_state null when none was asked for. */
  rollback_state: RollbackState | null;
  rollback_phase: 'executing' | 'retry_wait' | 'following' | null;
  rollback_ref: Record<string, unknown> | null;
  rollback_error: string | null;
  rollback_attempts: number;
  rollback_seq: number;
  rollback_requested_by: string | null;
  rollback_started_at: Date | null;
  rollback_finished_at: Date | null;
  /** Approvals this deployment needs before it may fire (the app's policy when it was scheduled); null: none. */
  approval_required: number | null;
}

export type RollbackState = 'pending' | 'running' | 'succeeded' | 'failed' | 'not_possible';

const SELECT = `SELECT d.*, a.name AS app_name FROM deployments d JOIN apps a ON a.id = d.app_id`;

export interface NewDeployment {
  team_id: string;
  app_id: string;
  run_at: Date;
  timezone: string;
  local: { year: number; month: number; day: number; hour: number; minute: number; second: number };
  utc_offset: string;
  disambiguation: string;
  dependency_id: string | null;
  dependency_lead_seconds: number | null;
  expires_after_seconds: number;
  created_by: string | null;
}

/** The columns the API answers with (src/services/deployments.ts toApi). */
export const API_COLUMNS = [
  'id', 'app_id', 'state', 'run_at', 'timezone', 'local_year', 'local_month', 'local_day', 'local_hour', 'local_minute',
  'local_second', 'utc_offset', 'dependency_lead_seconds', 'expires_at', 'attempts', 'error', 'provider_ref', 'created_at',
  'started_at', 'finished_at', 'schedule_id', 'held_by', 'freeze_override', 'approval_required', 'rollback_state', 'rollback_ref', 'rollback_error',
  'rollback_started_at', 'rollback_finished_at',
] as const;
export type ApiRow = Pick<DeploymentRow, (typeof API_COLUMNS)[number] | 'app_name'>;

/** One deployment of a scheduling request, as the caller resolved it (src/services/deployments.ts). */
export interface PlannedRow {
  /** The instant, RFC 3339. */
  run_at: string;
  local: NewDeployment['local'];
  utc_offset: string;
}

/** What insertScheduledMany writes for one request: a deployment and, with `dependency`, its dependency's row. */
export interface ScheduleStatement {
  team_id: string;
  created_by: string;
  app_id: string;
  main: PlannedRow;
  /** The dependency's app and its row, `lead` seconds before main; null without a dependency. */
  dependency: { app_id: string; row: PlannedRow; lead: number } | null;
  timezone: string;
  disambiguation: string;
  expires_after_seconds: number;
  /** False: check only (the caller already knows it will refuse, e.g. the instant is frozen); nothing is written. */
  write: boolean;
  /** The freeze stamp (freezeStampSql) the caller's freeze verdict was computed from: nothing is written unless the team's is the same. */
  freeze_stamp: string;
  /** Scheduled into a freeze by an owner: stored on both rows (with `at`, the statement's clock), audited, and said on their timeline. */
  override: { record: Record<string, unknown>; audit: Record<string, unknown>; note: string } | null;
}

export interface ScheduledResult {
  /** The database clock when the statement ran. */
  db_now: Date;
  /** The app's name; null when the team has no such (live) app. */
  found_app: string | null;
  /** The dependency app's name; null when not asked for or the team has no such (live) app. */
  found_dependency: string | null;
  /** The team's freeze stamp in the statement's snapshot (nothing was written when it differs from the one given). */
  freeze_stamp: string;
  /** The deployment written; null when nothing was. */
  row: ApiRow | null;
  /** Its dependency's row, when one was written. */
  dependency: ApiRow | null;
  /** The EVENTS_CHANNEL payloads of the 'scheduled' events written, for the caller to announce once committed. */
  events: string[];
}

/**
 * Schedules deployments, each with its dependency when there is one, in one statement: one round
 * trip and one implicit transaction (one commit) for every request in `list` (decisions 0002,
 * 0013 and 0014). For each request it writes the rows, their 'scheduled' events, the audit
 * entries, the approval_requested notifications and the due NOTIFY of a near instant, and answers
 * the rows. It writes nothing for a request unless every rule holds for it (each CTE below says
 * which it enforces); the answer's db_now, found_app, found_dependency and freeze_stamp then let
 * the caller say which one failed, in the order the API has always checked. The requests are
 * independent: one refused writes nothing of its own and takes nothing from the others. An error
 * of the statement itself (the database) fails them all; the caller runs them again one by one.
 *
 * The events are not NOTIFYed here: a transaction that NOTIFYs holds PostgreSQL's cluster-wide
 * notify lock through its commit, so scheduling transactions would each wait for the previous
 * one's WAL flush instead of sharing it (decision 0013). The caller announces `events` once the
 * statement has returned (src/services/announce.ts). The due NOTIFY stays: only an instant within
 * DUE_NOTIFY_HORIZON_SECONDS needs one, and that is rare.
 *
 * A named (prepared) statement whose one parameter is the requests as a JSON array: each pooled
 * connection parses and plans it once, whatever the number of requests.
 */
export async function insertScheduledMany(db: Queryable, list: readonly ScheduleStatement[]): Promise<ScheduledResult[]> {
  const requests = list.map((d, i) => {
    const dep = d.dependency;
    const due = dep?.row.run_at ?? d.main.run_at;
    return {
      i, team_id: d.team_id, created_by: d.created_by, app_id: d.app_id, run_at: d.main.run_at, timezone: d.timezone,
      y: d.main.local.year, mo: d.main.local.month, d: d.main.local.day, h: d.main.local.hour, mi: d.main.local.minute,
      s: d.main.local.second, utc_offset: d.main.utc_offset, disambiguation: d.disambiguation, expires: d.expires_after_seconds,
      dep_app_id: dep?.app_id ?? null, dep_run_at: dep?.row.run_at ?? null, dep_y: dep?.row.local.year ?? null,
      dep_mo: dep?.row.local.month ?? null, dep_d: dep?.row.local.day ?? null, dep_h: dep?.row.local.hour ?? null,
      dep_mi: dep?.row.local.minute ?? null, dep_s: dep?.row.local.second ?? null, dep_utc_offset: dep?.row.utc_offset ?? null,
      lead: dep?.lead ?? null, write: d.write, freeze_stamp: d.freeze_stamp,
      override: d.override?.record ?? null, override_note: d.override?.note ?? null, override_audit: d.override?.audit ?? null,
      due,
    };
  });
  const r = await db.query<ApiRow & {
    i: number; db_now: Date; found_app: string | null; found_dependency: string | null; freeze_stamp: string;
    role: 'deployment' | 'dependency' | null; event: string | null; notified_due: unknown;
  }>({
    name: 'shipclock_insert_scheduled',
    text: `WITH now AS MATERIALIZED (
       SELECT clock_timestamp() AS now
     ), req AS MATERIALIZED (
       -- The requests, one row each (i: its place in the list).
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
         i integer, team_id uuid, created_by uuid, app_id uuid, run_at timestamptz, timezone text,
         y integer, mo integer, d integer, h integer, mi integer, s integer, utc_offset text, disambiguation text, expires integer,
         dep_app_id uuid, dep_run_at timestamptz, dep_y integer, dep_mo integer, dep_d integer, dep_h integer, dep_mi integer,
         dep_s integer, dep_utc_offset text, lead integer, write boolean, freeze_stamp text,
         override jsonb, override_note text, override_audit jsonb, due text)
     ), app_row AS MATERIALIZED (
       -- The apps named (as app or dependency) by their primary key, and nothing else in this
       -- WHERE: the statement is prepared, and a generic plan given the team and deletion too chose
       -- apps_team_name_key (team_id, name) WHERE deleted_at IS NULL, reading all of the team's
       -- apps per request (10,000 apps: 5.8 ms per scheduling instead of 1.7). FOR KEY SHARE (the
       -- lock the foreign key takes anyway) until commit: a concurrent deleteApp (SELECT … FOR
       -- UPDATE, then counts the app's active deployments) either waits for this statement and
       -- then sees its rows (409 app_has_deployments), or this statement waits for it and then
       -- reads the row with deleted_at set (dropped below: 422 unknown_app), never a deployment of
       -- a deleted app. Key-share locks do not conflict with each other: concurrent schedulings of
       -- one app do not wait, and statements holding several never deadlock one another.
       SELECT id, name, approval_required, team_id, deleted_at FROM apps
        WHERE id = ANY (ARRAY(SELECT app_id FROM req UNION SELECT dep_app_id FROM req WHERE dep_app_id IS NOT NULL))
        ORDER BY id FOR KEY SHARE
     ), app AS MATERIALIZED (
       -- Each request's app: the caller's team's and not deleted.
       SELECT req.i, a.id, a.name, a.approval_required FROM req JOIN app_row a ON a.id = req.app_id AND a.team_id = req.team_id AND a.deleted_at IS NULL
     ), dep AS MATERIALIZED (
       -- Each request's dependency's app, under the same rules (none asked for: dep_app_id is null).
       SELECT req.i, a.id, a.name, a.approval_required FROM req JOIN app_row a ON a.id = req.dep_app_id AND a.team_id = req.team_id AND a.deleted_at IS NULL
     ), fz AS MATERIALIZED (
       -- Each team's freezes are the ones its callers' freeze verdicts were computed from.
       SELECT t.team_id, ${freezeStampSql('t.team_id')} AS stamp FROM (SELECT DISTINCT team_id FROM req) t
     ), ok AS MATERIALIZED (
       -- The requests for which every rule holds; for the others nothing is written below.
       SELECT req.i, gen_random_uuid() AS main_id, CASE WHEN req.dep_app_id IS NOT NULL THEN gen_random_uuid() END AS dep_id,
              to_char(now.now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
         FROM req JOIN app ON app.i = req.i JOIN fz ON fz.team_id = req.team_id, now
          -- the caller found nothing to refuse (a self-dependency, a freeze without an override)
        WHERE req.write
          -- the team's freezes are still those the caller's verdict was computed from
          AND fz.stamp = req.freeze_stamp
          -- the instant is after the database clock
          AND req.run_at > now.now
          -- with a dependency: its app was found, and its instant (lead seconds before) is after the clock too
          AND (req.dep_app_id IS NULL OR (EXISTS (SELECT 1 FROM dep WHERE dep.i = req.i) AND req.dep_run_at > now.now))
     ), rows AS (
       -- The rows to write: each deployment and, with a dependency, the dependency's row (its
       -- instant lead seconds earlier, no dependency of its own). One INSERT writes them all: the
       -- dependency_id foreign key is checked at the end of the statement, when both exist.
       SELECT ok.i, ok.main_id AS id, app.id AS app_id, req.run_at, req.y, req.mo, req.d, req.h, req.mi, req.s, req.utc_offset,
              ok.dep_id AS dependency_id, CASE WHEN ok.dep_id IS NOT NULL THEN req.lead END AS lead, app.approval_required,
              'deployment'::text AS role, app.name AS app_name, ok.at, ok.main_id
         FROM ok JOIN req ON req.i = ok.i JOIN app ON app.i = ok.i
       UNION ALL
       SELECT ok.i, ok.dep_id, dep.id, req.dep_run_at, req.dep_y, req.dep_mo, req.dep_d, req.dep_h, req.dep_mi, req.dep_s,
              req.dep_utc_offset, NULL::uuid, NULL::integer, dep.approval_required, 'dependency', dep.name, ok.at, ok.main_id
         FROM ok JOIN req ON req.i = ok.i JOIN dep ON dep.i = ok.i
        WHERE ok.dep_id IS NOT NULL
     ), ins AS (
       INSERT INTO deployments (id, team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour,
           local_minute, local_second, utc_offset, disambiguation, dependency_id, dependency_lead_seconds, expires_after_seconds,
           expires_at, due_at, created_by, approval_required, freeze_override)
       SELECT r.id, req.team_id, r.app_id, r.run_at, req.timezone, r.y, r.mo, r.d, r.h, r.mi, r.s, r.utc_offset, req.disambiguation,
              r.dependency_id, r.lead, req.expires, r.run_at + req.expires * interval '1 second', r.run_at, req.created_by,
              r.approval_required, req.override || jsonb_build_object('at', r.at)
         FROM rows r JOIN req ON req.i = r.i
        ORDER BY r.i, r.role DESC
       RETURNING ${API_COLUMNS.join(', ')}, team_id
     ), ev AS (
       -- The timeline: 'scheduled', the dependency saying whose it is; an override says so on both.
       -- From the rows to write, not from ins: the planner takes these CTEs for a row or two and
       -- joins them in nested loops, which over ins cost time quadratic in the requests grouped
       -- (100 x 100 at 50 requests). The foreign key to the rows is checked at the end of the statement.
       -- Their time is the statement's clock, which the answer's event payloads below say too.
       INSERT INTO deployment_events (deployment_id, team_id, state, message, at)
       SELECT r.id, req.team_id, 'scheduled',
              CASE WHEN r.role = 'dependency' THEN 'scheduled as the dependency of ' || r.main_id ELSE 'scheduled' END || COALESCE(req.override_note, ''),
              now.now
         FROM rows r JOIN req ON req.i = r.i CROSS JOIN now
        ORDER BY r.i, r.role DESC
     ), audit AS (
       -- The override's entry first (as recordOverride wrote it), then the creation.
       INSERT INTO audit_log (team_id, actor_id, action, target_id, details)
       SELECT req.team_id, req.created_by, x.action, ok.main_id::text, x.details
         FROM ok JOIN req ON req.i = ok.i JOIN app ON app.i = ok.i,
              LATERAL (VALUES (1, 'deployment.freeze_override', req.override_audit),
                          (2, 'deployment.create', jsonb_build_object('app', app.name, 'run_at', to_char(req.run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'timezone', req.timezone, 'dependency', ok.dep_id)))
              AS x(n, action, details)
        WHERE x.details IS NOT NULL
        ORDER BY ok.i, x.n
     ), asked AS (
       -- approval_requested notifications for the rows that need approval (the outbox, in this
       -- statement's implicit transaction; the payload enqueueApprovalEvents writes)
       INSERT INTO notification_deliveries (subscription_id, team_id, deployment_id, event, payload)
       SELECT s.id, s.team_id, ins.id, 'approval_requested', jsonb_build_object(
                'event', 'deployment.approval_requested', 'deployment_id', ins.id, 'app_id', ins.app_id, 'app_name', r.app_name,
                'state', ins.state, 'run_at', ins.run_at, 'timezone', ins.timezone,
                'approval', jsonb_build_object('required', ins.approval_required, 'approvals', 0), 'by', NULL, 'comment', NULL)
         FROM ins
         JOIN rows r ON r.id = ins.id
         JOIN notification_subscriptions s ON s.team_id = ins.team_id AND 'approval_requested' = ANY (s.events)
        WHERE ins.approval_required IS NOT NULL
     ), due AS (
       -- "Became due" for the earliest instant of each request written, when a scheduler would act on it now.
       SELECT pg_notify('${DUE_CHANNEL}', x.due) AS notified
         FROM (SELECT DISTINCT req.due FROM ok JOIN req ON req.i = ok.i, now
                WHERE req.due::timestamptz <= now.now + make_interval(secs => ${DUE_NOTIFY_HORIZON_SECONDS})) x
     )
     SELECT req.i, now.now AS db_now, app.name AS found_app, dep.name AS found_dependency, fz.stamp AS freeze_stamp,
            (SELECT count(*) FROM due) AS notified_due,
            ${API_COLUMNS.map((c) => `ins.${c}`).join(', ')}, x.app_name, x.role, ${eventPayloadSql('e', 'ins')} AS event
       FROM req CROSS JOIN now
       LEFT JOIN app ON app.i = req.i
       LEFT JOIN dep ON dep.i = req.i
       LEFT JOIN fz ON fz.team_id = req.team_id
       LEFT JOIN (rows x JOIN ins ON ins.id = x.id) ON x.i = req.i
       -- The 'scheduled' event ev wrote for the row (not joined back: another nested loop over ev).
       LEFT JOIN LATERAL (SELECT ins.id AS deployment_id, ins.team_id, 'scheduled'::text AS state, now.now AS at) e ON ins.id IS NOT NULL
      ORDER BY req.i, x.role DESC`,
    values: [JSON.stringify(requests)],
  });
  const byRequest: Array<typeof r.rows> = list.map(() => []);
  for (const row of r.rows) byRequest[row.i].push(row);
  return byRequest.map((rows) => {
    const first = rows[0];
    // The statement's row as it is: an ApiRow with the answer's own columns besides, which the
    // caller's toApi never reads (copying it without them cost 12 µs per request, profiled).
    const rowOf = (role: 'deployment' | 'dependency'): ApiRow | null => rows.find((y) => y.role === role) ?? null;
    return {
      db_now: first.db_now, found_app: first.found_app, found_dependency: first.found_dependency, freeze_stamp: first.freeze_stamp ?? '',
      row: rowOf('deployment'), dependency: rowOf('dependency'),
      events: rows.flatMap((x) => (x.event ? [x.event] : [])),
    };
  });
}

export async function getDeployment(db: Queryable, teamId: string, id: string, forUpdate = false): Promise<DeploymentRow | null> {
  const r = await db.query<DeploymentRow>(`${SELECT} WHERE d.id = $1 AND d.team_id = $2${forUpdate ? ' FOR UPDATE OF d' : ''}`, [id, teamId]);
  return r.rows[0] ?? null;
}

export async function getDeploymentsByIds(db: Queryable, ids: string[]): Promise<DeploymentRow[]> {
  if (ids.length === 0) return [];
  const r = await db.query<DeploymentRow>(`${SELECT} WHERE d.id = ANY($1::uuid[])`, [ids]);
  return r.rows;
}

export interface ListFilter {
  teamId: string;
  states?: string[];
  appId?: string;
  scheduleId?: string;
  approval?: 'pending' | 'approved' | 'rejected';
  from?: Date;
  to?: Date;
  after?: { runAt: Date; id: string };
  limit: number;
}

/** Keyset pagination on (run_at, id), served by deployments_team_run_at_idx. */
export async function listDeployments(db: Queryable, f: ListFilter): Promise<DeploymentRow[]> {
  const where = ['d.team_id = $1'];
  const args: unknown[] = [f.teamId];
  const add = (sql: string, v: unknown) => { args.push(v); where.push(sql.replace('?', `$${args.length}`)); };
  if (f.states?.length) add('d.state = ANY(?::text[])', f.states);
  if (f.appId) add('d.app_id = ?', f.appId);
  if (f.scheduleId) add('d.schedule_id = ?', f.scheduleId);
  if (f.approval) where.push(approvalStatusSql('d', f.approval));
  if (f.from) add('d.run_at >= ?', f.from);
  if (f.to) add('d.run_at < ?', f.to);
  if (f.after) {
    args.push(f.after.runAt, f.after.id);
    where.push(`(d.run_at, d.id) > ($${args.length - 1}, $${args.length})`);
  }
  args.push(f.limit);
  const r = await db.query<DeploymentRow>(`${SELECT} WHERE ${where.join(' AND ')} ORDER BY d.run_at, d.id LIMIT $${args.length}`, args);
  return r.rows;
}

/** Moves a scheduled deployment to a new instant (reschedule). */
export async function updateSchedule(
  db: Queryable,
  id: string,
  s: {
    run_at: Date; timezone: string; local: NewDeployment['local']; utc_offset: string; disambiguation: string; expires_after_seconds: number;
    dependency_lead_seconds: number | null; freeze_override?: Record<string, unknown> | null;
  },
): Promise<void> {
  // A held row moved to a new instant is scheduled again (the caller checked the freezes).
  await db.query(
    `UPDATE deployments SET run_at = $2, timezone = $3, local_year = $4, local_month = $5, local_day = $6, local_hour = $7,
        local_minute = $8, local_second = $9, utc_offset = $10, disambiguation = $11, expires_after_seconds = $12,
        expires_at = $2::timestamptz + $12::integer * interval '1 second', due_at = $2, dependency_lead_seconds = $13,
        state = 'scheduled', held_by = NULL, error = CASE WHEN state = 'held' THEN NULL ELSE error END, freeze_override = $14::jsonb,
        lease_owner = NULL, lease_until = NULL, updated_at = now()
      WHERE id = $1 AND state IN ('scheduled', 'held')`,
    [id, s.run_at, s.timezone, s.local.year, s.local.month, s.local.day, s.local.hour, s.local.minute, s.local.second,
      s.utc_offset, s.disambiguation, s.expires_after_seconds, s.dependency_lead_seconds, s.freeze_override ? JSON.stringify(s.freeze_override) : null],
  );
}

/** True while a process holds the lease of a scheduled deployment: it is about to fire it. */
export function isFiring(row: { state: string; lease_owner: string | null; lease_until?: Date | null }, now: Date): boolean {
  return (row.state === 'scheduled' || row.state === 'held') && row.lease_owner !== null && !!row.lease_until && row.lease_until > now;
}

/**
 * Locks a deployment row FOR KEY SHARE in the caller's transaction and reads its state and
 * whether a live lease is held. While the lock is held, no scheduler claims the row (claimDue
 * locks FOR UPDATE SKIP LOCKED, which passes it by), yet the lease holder's own writes (they
 * change no key) go through: what it holds, it can still hand back.
 */
export async function lockAgainstClaims(db: Queryable, id: string): Promise<{ state: DeploymentState; leased: boolean } | null> {
  const r = await db.query<{ state: DeploymentState; leased: boolean }>(
    `SELECT state, lease_until IS NOT NULL AND lease_until >= clock_timestamp() AS leased
       FROM deployments WHERE id = $1 FOR KEY SHARE`,
    [id],
  );
  return r.rows[0] ?? null;
}

/**
 * Leases a running deployment to `owner` (a cancel recalling its rollout) for `seconds`, if no
 * live lease is held. Returns its provider_ref as of then, or undefined when not taken. Uses the
 * clock, not the transaction's start, so a caller waiting inside a transaction sees leases lapse.
 */
export async function leaseRunning(db: Queryable, id: string, owner: string, seconds: number): Promise<{ provider_ref: Record<string, unknown> | null } | undefined> {
  const r = await db.query<{ provider_ref: Record<string, unknown> | null }>(
    `UPDATE deployments SET lease_owner = $2, lease_until = clock_timestamp() + make_interval(secs => $3)
      WHERE id = $1 AND state = 'running' AND (lease_until IS NULL OR lease_until < clock_timestamp())
      RETURNING provider_ref`,
    [id, owner, seconds],
  );
  return r.rows[0];
}

/** Clears a lease `owner` holds (a cancel that did not end the deployment gives its lease back). */
export async function clearLease(db: Queryable, id: string, owner: string): Promise<void> {
  await db.query('UPDATE deployments SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2', [id, owner]);
}

// ─── scheduler operations ────────────────────────────────────────────────────────────────

/**
 * The columns of a deployment the scheduler works with: a claimed row is held in memory from its
 * claim to its end, 50,000 at once in a burst, so the columns only the API shows (local time
 * fields, the log, timestamps of record) are not fetched.
 */
export const CLAIMED_COLUMNS = [
  'id', 'team_id', 'app_id', 'state', 'run_at', 'timezone', 'dependency_id', 'expires_after_seconds', 'expires_at', 'attempts',
  'error', 'phase', 'provider_ref', 'due_at', 'started_at', 'schedule_id', 'freeze_override', 'approval_required',
  'rollback_state', 'rollback_phase', 'rollback_ref', 'rollback_attempts', 'rollback_seq', 'rollback_started_at',
] as const;

export interface ClaimedRow extends Pick<DeploymentRow, (typeof CLAIMED_COLUMNS)[number] | 'app_name'> {
  target: Record<string, unknown>;
  target_secret: Buffer | null;
  retry_max_attempts: number;
  retry_backoff_seconds: number;
  lease_until: Date;
  blocked: boolean;
  db_now: Date;
}

/**
 * Claims up to `limit` deployments due before `now() + horizonMs` that no live process owns,
 * leasing them to `owner` for `leaseSeconds` past their due time (or past now, if that is later).
 * A scheduled deployment whose app already has a
 * deployment running (or an earlier one still pending, or a rollback in progress) is not leased:
 * it is "blocked" and looked at again a second later, so two deployments of one app never run at
 * once and the later waits. Rows due for their rollback (final, rollback pending or running) are
 * claimed like any other.
 */
export async function claimDue(db: Queryable, owner: string, horizonMs: number, leaseSeconds: number, limit: number): Promise<ClaimedRow[]> {
  const r = await db.query<Omit<ClaimedRow, 'target'> & { target: string }>(
    `WITH cand AS (
       SELECT d.id,
              d.state = 'scheduled' AND d.expires_at > now() AND (
                -- two index probes (deployments_app_running_idx, deployments_app_active_idx), so
                -- that an app's thousands of future deployments are never scanned
                EXISTS (SELECT 1 FROM deployments o WHERE o.app_id = d.app_id AND o.state = 'running' AND o.id <> d.id)
                -- a rollback in progress holds the app as a running deployment does (deployments_app_rollback_idx)
                OR EXISTS (SELECT 1 FROM deployments o WHERE o.app_id = d.app_id AND o.rollback_state IN ('pending', 'running') AND o.id <> d.id)
                OR EXISTS (
                  SELECT 1 FROM deployments o
                   WHERE o.app_id = d.app_id AND o.state IN ('scheduled', 'running') AND o.run_at <= d.run_at
                     AND (o.run_at, o.id) < (d.run_at, d.id))
              ) AS blocked
         FROM deployments d
        WHERE d.due_at IS NOT NULL AND d.due_at <= now() + make_interval(secs => $2::float8 / 1000)
          AND (d.lease_until IS NULL OR d.lease_until < now())
        ORDER BY d.due_at
        LIMIT $4
        FOR UPDATE OF d SKIP LOCKED
     )
     UPDATE deployments d
        SET lease_owner = CASE WHEN cand.blocked THEN NULL ELSE $1 END,
            -- A row claimed ahead of its instant is leased until the instant plus the lease: the
            -- heartbeat need not renew a burst's 50,000 leases while it fires (leases.ts).
            lease_until = CASE WHEN cand.blocked THEN NULL ELSE GREATEST(now(), d.due_at) + make_interval(secs => $3) END,
            due_at = CASE WHEN cand.blocked THEN GREATEST(d.due_at, now() + interval '1 second') ELSE d.due_at END
       FROM cand, apps a
      WHERE d.id = cand.id AND a.id = d.app_id
      RETURNING ${CLAIMED_COLUMNS.map((c) => `d.${c}`).join(', ')}, a.name AS app_name, a.target::text AS target, a.target_secret,
                a.retry_max_attempts, a.retry_backoff_seconds, cand.blocked, clock_timestamp() AS db_now`,
    [owner, horizonMs, leaseSeconds, limit],
  );
  return shareEqualValues(r.rows);
}

/** The columns of a claimed row whose equal values the rows of one claim share (shareEqualValues). */
const SHARED_DATES = ['run_at', 'expires_at', 'due_at', 'started_at', 'db_now'] as const;
const SHARED_TEXTS = ['team_id', 'state', 'timezone', 'phase', 'rollback_state'] as const;

/**
 * Makes the rows of one claim share one object per distinct value where they repeat: a Date per
 * instant (a Date is 96 bytes of heap; a burst's rows have the same instant, expiry and clock
 * reading), one string per team, state and timezone, and one parsed target per distinct target
 * (the claim returns it as text, parsed here once per distinct text rather than by pg once per
 * row). 50,000 held rows took 19 MB in Dates alone. Nothing in the scheduler mutates these values
 * (a row's fields are reassigned, never changed in place), so sharing them is safe.
 */
function shareEqualValues(rows: Array<Omit<ClaimedRow, 'target'> & { target: string }>): ClaimedRow[] {
  const dates = new Map<number, Date>();
  const texts = new Map<string, string>();
  const targets = new Map<string, Record<string, unknown>>();
  for (const row of rows) {
    const r = row as unknown as Record<string, unknown>;
    for (const k of SHARED_DATES) {
      const d = r[k] as Date | null;
      if (!d) continue;
      const t = d.getTime();
      const seen = dates.get(t);
      if (seen) r[k] = seen;
      else dates.set(t, d);
    }
    for (const k of SHARED_TEXTS) {
      const v = r[k] as string | null;
      if (v === null || v === undefined) continue;
      const seen = texts.get(v);
      if (seen !== undefined) r[k] = seen;
      else texts.set(v, v);
    }
    let target = targets.get(row.target);
    if (!target) targets.set(row.target, (target = JSON.parse(row.target) as Record<string, unknown>));
    r.target = target;
  }
  return rows as unknown as ClaimedRow[];
}

/**
 * The earliest due_at no live process owns (the next thing to claim), how many unowned rows come
 * due within a second of it (the size of the burst there, counted up to `burstCap`), and the
 * database clock.
 */
export async function nextDue(db: Queryable, burstCap = 200_000): Promise<{ next: Date | null; burst: number; dbNow: Date }> {
  const r = await db.query<{ next: Date | null; burst: number; db_now: Date }>(
    `WITH n AS (
       SELECT due_at FROM deployments
        WHERE due_at IS NOT NULL AND (lease_until IS NULL OR lease_until < now())
        ORDER BY due_at LIMIT 1
     )
     SELECT (SELECT due_at FROM n) AS next,
            (SELECT count(*) FROM (
               SELECT 1 FROM deployments d, n
                WHERE d.due_at IS NOT NULL AND d.due_at <= n.due_at + interval '1 second'
                  AND (d.lease_until IS NULL OR d.lease_until < now())
                LIMIT $1) b)::int AS burst,
            clock_timestamp() AS db_now`,
    [burstCap],
  );
  return { next: r.rows[0].next, burst: r.rows[0].burst, dbNow: r.rows[0].db_now };
}

/**
 * Extends the leases this process holds, skipping the rows another transaction has locked right
 * now (this process's own final-state or running writes, a cancel): the next heartbeat renews
 * those, well within the lease. Answers the ids not renewed.
 *
 * Never waiting is what keeps the heartbeat out of deadlocks: it renews every held row in one
 * statement, in no particular order, while the finisher and the running writes update some of the
 * same rows in theirs; waiting, two of them could each hold a row the other wants (seen with
 * 50,000 held: "deadlock detected", a second lost each time).
 */
export async function renewLeases(db: Queryable, owner: string, ids: string[], leaseSeconds: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const r = await db.query<{ skipped: string[] | null }>(
    `WITH mine AS (
       SELECT id FROM deployments WHERE lease_owner = $1 AND id = ANY($2::uuid[]) FOR NO KEY UPDATE SKIP LOCKED
     ), renewed AS (
       UPDATE deployments d SET lease_until = now() + make_interval(secs => $3) FROM mine WHERE d.id = mine.id RETURNING d.id
     )
     SELECT array_agg(x.id) AS skipped FROM unnest($2::uuid[]) AS x(id) WHERE x.id NOT IN (SELECT id FROM renewed)`,
    [owner, ids, leaseSeconds],
  );
  return r.rows[0]?.skipped ?? [];
}

/** Gives deployments back (shutdown, or a lease about to lapse): another process takes them now. */
export async function releaseLeases(db: Queryable, owner: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `UPDATE deployments SET lease_owner = NULL, lease_until = NULL, due_at = LEAST(due_at, now())
      WHERE lease_owner = $1 AND id = ANY($2::uuid[]) AND due_at IS NOT NULL`,
    [owner, ids],
  );
}

/**
 * scheduled → running for the deployments this process leased (one statement for a batch), their
 * leases renewed for `leaseSeconds` on the way (the heartbeat then has nothing to renew for them).
 * Returns the ids that moved; one missing was canceled or taken over meanwhile and must not run.
 */
export async function markRunning(db: Queryable, owner: string, ids: string[], leaseSeconds: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const r = await db.query<{ id: string }>(
    `UPDATE deployments SET state = 'running', phase = 'executing', attempts = 1, started_at = now(), updated_at = now(),
            lease_until = GREATEST(lease_until, now() + make_interval(secs => $3))
      WHERE id = ANY($2::uuid[]) AND lease_owner = $1 AND state = 'scheduled'
      RETURNING id`,
    [owner, ids, leaseSeconds],
  );
  return r.rows.map((x) => x.id);
}

/** A retry attempt (or a recovery) begins: phase executing, attempt counted. */
export async function markAttempt(db: Queryable, owner: string, id: string, attempts: number): Promise<boolean> {
  const r = await db.query(
    `UPDATE deployments SET phase = 'executing', attempts = $3, updated_at = now()
      WHERE id = $2 AND lease_owner = $1 AND state = 'running'`,
    [owner, id, attempts],
  );
  return r.rowCount === 1;
}

export interface Finish {
  id: string;
  state: DeploymentState;
  error: string | null;
  log: string;
  ref: Record<string, unknown> | null;
}

/**
 * Ends deployments (succeeded, failed, skipped, missed, canceled) in one statement, and brings
 * forward whatever waited on them: their dependents and the next deployment of the same app.
 * Returns the rows that actually changed (a row that already ended is left alone).
 *
 * A deployment that fails after it changed something (its provider_ref says `changed: true`)
 * while its app's on_failure is 'rollback' gets its rollback asked for in the same statement
 * (`rollback` true: rollback_state pending, due now), so no crash can lose it; `rollback_wanted`
 * says the app asked for one whatever the ref said.
 */
export async function finishMany(db: Queryable, rows: Finish[]): Promise<Array<{ id: string; team_id: string; app_id: string; state: DeploymentState; error: string | null; rollback: boolean; rollback_wanted: boolean }>> {
  if (rows.length === 0) return [];
  const r = await db.query(
    `WITH x AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[]) AS x(id, state, error, log, ref)
     ), xr AS (
       SELECT x.*, wanted, wanted AND COALESCE(x.ref, d.provider_ref) ->> 'changed' = 'true' AS rb
         FROM x JOIN deployments d ON d.id = x.id JOIN apps a ON a.id = d.app_id,
              LATERAL (SELECT x.state = 'failed' AND a.on_failure = 'rollback' AS wanted) w
     ), done AS (
       UPDATE deployments d
          SET state = xr.state, error = xr.error, finished_at = now(), updated_at = now(),
              due_at = CASE WHEN xr.rb THEN now() END, lease_owner = NULL, lease_until = NULL, phase = NULL,
              log = right(d.log || xr.log, 65536), provider_ref = COALESCE(xr.ref, d.provider_ref),
              rollback_state = CASE WHEN xr.rb THEN 'pending' ELSE d.rollback_state END,
              rollback_seq = d.rollback_seq + CASE WHEN xr.rb THEN 1 ELSE 0 END,
              rollback_phase = CASE WHEN xr.rb THEN NULL ELSE d.rollback_phase END
         FROM xr
        WHERE d.id = xr.id AND d.state IN ('scheduled', 'held', 'running')
        RETURNING d.id, d.team_id, d.app_id, d.state, d.error, xr.rb AS rollback, xr.wanted AS rollback_wanted
     ), waiting AS (
       -- What may have waited on them: their dependents, and deployments of the same apps whose
       -- instant has come (a row is only ever pushed past its instant once that instant is within
       -- the claim horizon, at most 30 s ahead; the bound keeps an app's future rows out of the scan).
       SELECT o.id FROM deployments o WHERE o.dependency_id IN (SELECT id FROM done) AND o.state = 'scheduled'
       UNION
       SELECT o.id FROM deployments o
        WHERE o.app_id IN (SELECT app_id FROM done) AND o.state IN ('scheduled', 'running')
          AND o.run_at <= now() + interval '60 seconds'
     ), wake AS (
       UPDATE deployments w SET due_at = GREATEST(w.run_at, now())
        WHERE w.id IN (SELECT id FROM waiting)
          AND w.state = 'scheduled' AND w.due_at > GREATEST(w.run_at, now())
        RETURNING w.id
     )
     SELECT done.*, (SELECT count(*) FROM wake)::int AS woken FROM done`,
    [rows.map((x) => x.id), rows.map((x) => x.state), rows.map((x) => x.error), rows.map((x) => x.log), rows.map((x) => (x.ref ? JSON.stringify(x.ref) : null))],
  );
  return r.rows;
}

/** Leaves a running deployment for later (a retry backoff, the next rollout poll, a dependency wait). */
export async function deferDeployment(
  db: Queryable,
  owner: string,
  id: string,
  p: { afterMs: number; phase: string | null; ref?: Record<string, unknown> | null; log: string; error?: string | null; capAtExpiry?: boolean },
): Promise<boolean> {
  const r = await db.query(
    `UPDATE deployments
        SET due_at = CASE WHEN $7 THEN LEAST(expires_at, now() + make_interval(secs => $3::float8 / 1000))
                          ELSE now() + make_interval(secs => $3::float8 / 1000) END,
            phase = COALESCE($4, phase), provider_ref = COALESCE($5::jsonb, provider_ref),
            log = right(log || $6, 65536), error = COALESCE($8, error),
            lease_owner = NULL, lease_until = NULL, updated_at = now()
      WHERE id = $2 AND lease_owner = $1 AND state IN ('scheduled', 'running')`,
    [owner, id, p.afterMs, p.phase, p.ref ? JSON.stringify(p.ref) : null, p.log, p.capAtExpiry ?? false, p.error ?? null],
  );
  return r.rowCount === 1;
}

export async function appendLog(db: Queryable, id: string, log: string, ref?: Record<string, unknown> | null): Promise<void> {
  if (!log && !ref) return;
  await db.query(`UPDATE deployments SET log = right(log || $2, 65536), provider_ref = COALESCE($3::jsonb, provider_ref) WHERE id = $1`, [id, log, ref ? JSON.stringify(ref) : null]);
}

export async function dependencyStates(db: Queryable, ids: string[]): Promise<Map<string, DeploymentState>> {
  if (ids.length === 0) return new Map();
  const r = await db.query<{ id: string; state: DeploymentState }>('SELECT id, state FROM deployments WHERE id = ANY($1::uuid[])', [ids]);
  return new Map(r.rows.map((x) => [x.id, x.state]));
}
