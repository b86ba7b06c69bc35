/**
 * Every SQL statement on `schedules`, and those on the deployment rows of their occurrences.
 * Each function takes its client, so callers compose them into one transaction.
 */
import type { DeploymentState } from '../../core/state.ts';
import type { Queryable } from '../pool.ts';

export interface ScheduleRow {
  id: string;
  team_id: string;
  app_id: string;
  app_name: string;
  dependency_app_id: string | null;
  dependency_app_name: string | null;
  dependency_lead_seconds: number;
  expires_after_seconds: number;
  cron: string;
  timezone: string;
  dst_gap: 'shift' | 'skip';
  dst_overlap: 'first' | 'both';
  starts_at: Date | null;
  ends_at: Date | null;
  paused: boolean;
  generation: number;
  materialized_until: Date;
  materialize_at: Date | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
  /** created_at with microseconds (a JS Date keeps milliseconds only), for keyset cursors. */
  cursor_at: string;
}

const SELECT = `SELECT s.*, a.name AS app_name, da.name AS dependency_app_name,
    to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
  FROM schedules s JOIN apps a ON a.id = s.app_id LEFT JOIN apps da ON da.id = s.dependency_app_id`;

/** The fields a user sets. */
export interface ScheduleFields {
  app_id: string;
  dependency_app_id: string | null;
  dependency_lead_seconds: number;
  expires_after_seconds: number;
  cron: string;
  timezone: string;
  dst_gap: 'shift' | 'skip';
  dst_overlap: 'first' | 'both';
  starts_at: Date | null;
  ends_at: Date | null;
}

/** Inserts a schedule whose materialization starts after `materializedUntil` (now, on the database clock). */
export async function insertSchedule(
  db: Queryable,
  s: ScheduleFields & { team_id: string; paused: boolean; created_by: string; materialized_until: Date },
): Promise<string> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO schedules (team_id, app_id, dependency_app_id, dependency_lead_seconds, expires_after_seconds, cron, timezone,
        dst_gap, dst_overlap, starts_at, ends_at, paused, materialized_until, materialize_at, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, CASE WHEN $12 THEN NULL ELSE $13::timestamptz END, $14)
     RETURNING id`,
    [s.team_id, s.app_id, s.dependency_app_id, s.dependency_lead_seconds, s.expires_after_seconds, s.cron, s.timezone,
      s.dst_gap, s.dst_overlap, s.starts_at, s.ends_at, s.paused, s.materialized_until, s.created_by],
  );
  return r.rows[0].id;
}

export async function getSchedule(db: Queryable, teamId: string, id: string, forUpdate = false): Promise<ScheduleRow | null> {
  const r = await db.query<ScheduleRow>(
    `${SELECT} WHERE s.id = $1 AND s.team_id = $2 AND s.deleted_at IS NULL${forUpdate ? ' FOR UPDATE OF s' : ''}`,
    [id, teamId],
  );
  return r.rows[0] ?? null;
}

/** Oldest first, keyset-paginated on (created_at, id). */
export async function listSchedules(db: Queryable, teamId: string, page: { after: { createdAt: string; id: string } | null; limit: number }): Promise<ScheduleRow[]> {
  const r = await db.query<ScheduleRow>(
    `${SELECT} WHERE s.team_id = $1 AND s.deleted_at IS NULL
        AND ($2::timestamptz IS NULL OR (s.created_at, s.id) > ($2::timestamptz, $3::uuid))
      ORDER BY s.created_at, s.id LIMIT $4`,
    [teamId, page.after?.createdAt ?? null, page.after?.id ?? null, page.limit],
  );
  return r.rows;
}

/**
 * Changes a schedule and starts a new generation of its occurrences: they are materialized
 * again after `materializedUntil` (NULL `materialize_at` when paused).
 */
export async function updateScheduleRow(
  db: Queryable,
  id: string,
  s: ScheduleFields & { paused: boolean; materialized_until: Date },
): Promise<void> {
  await db.query(
    `UPDATE schedules SET app_id = $2, dependency_app_id = $3, dependency_lead_seconds = $4, expires_after_seconds = $5, cron = $6,
        timezone = $7, dst_gap = $8, dst_overlap = $9, starts_at = $10, ends_at = $11, paused = $12,
        generation = generation + 1, materialized_until = $13, materialize_at = CASE WHEN $12 THEN NULL ELSE $13::timestamptz END,
        updated_at = now()
      WHERE id = $1`,
    [id, s.app_id, s.dependency_app_id, s.dependency_lead_seconds, s.expires_after_seconds, s.cron, s.timezone, s.dst_gap,
      s.dst_overlap, s.starts_at, s.ends_at, s.paused, s.materialized_until],
  );
}

export async function softDeleteSchedule(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE schedules SET deleted_at = now(), materialize_at = NULL, generation = generation + 1, updated_at = now() WHERE id = $1', [id]);
}

/** Live (not deleted) schedules of an app, as its own app or as the dependency. */
export async function countAppSchedules(db: Queryable, appId: string): Promise<number> {
  const r = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM schedules WHERE deleted_at IS NULL AND (app_id = $1 OR dependency_app_id = $1)',
    [appId],
  );
  return r.rows[0].n;
}

// ─── materialization ─────────────────────────────────────────────────────────────────────

/**
 * Takes up to `limit` schedules whose materialization is due (materialize_at passed), locked for
 * the caller's transaction; those another process has locked are skipped, so processes share
 * the work instead of repeating it. Returns them with the database clock.
 */
export async function claimSchedulesToMaterialize(db: Queryable, limit: number): Promise<{ rows: ScheduleRow[]; dbNow: Date }> {
  const r = await db.query<ScheduleRow & { db_now: Date }>(
    `WITH due AS (
       SELECT id FROM schedules WHERE materialize_at <= now() ORDER BY materialize_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
     )
     ${SELECT.replace('SELECT s.*', 'SELECT s.*, clock_timestamp() AS db_now')} JOIN due ON due.id = s.id
      WHERE s.deleted_at IS NULL AND NOT s.paused`,
    [limit],
  );
  const dbNow = r.rows[0]?.db_now ?? (await db.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0].now;
  return { rows: r.rows, dbNow };
}

/** Records how far each schedule has been materialized and when to look at it again (one statement). */
export async function setMaterialized(db: Queryable, rows: Array<{ id: string; materializedUntil: Date; materializeAt: Date | null }>): Promise<void> {
  if (!rows.length) return;
  await db.query(
    `UPDATE schedules s SET materialized_until = x.until, materialize_at = x.at
       FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS x(id, until, at)
      WHERE s.id = x.id`,
    [rows.map((r) => r.id), rows.map((r) => r.materializedUntil), rows.map((r) => r.materializeAt)],
  );
}

/** One deployment row of an occurrence, as the materializer plans it. */
export interface OccurrenceRow {
  teamId: string;
  appId: string;
  scheduleId: string;
  generation: number;
  role: 'occurrence' | 'dependency';
  /** The occurrence's instant (for the dependency row too). */
  occurrenceAt: number;
  runAt: number;
  timezone: string;
  local: { year: number; month: number; day: number; hour: number; minute: number; second: number };
  utcOffset: string;
  /** 'scheduled', or 'missed' for one recorded after the fact (never run). */
  state: DeploymentState;
  error: string | null;
  /** The occurrence row's lead when it has a dependency row; null otherwise. */
  leadSeconds: number | null;
  expiresAfterSeconds: number;
  createdBy: string | null;
  /** The text of its first timeline event. */
  message: string;
}

export interface InsertedOccurrence {
  id: string;
  team_id: string;
  app_id: string;
  state: DeploymentState;
  error: string | null;
  run_at: Date;
  schedule_id: string;
  occurrence_at: Date;
  schedule_role: 'occurrence' | 'dependency';
  /** Approvals it needs before it may fire (its app's policy now); null: none. */
  approval_required: number | null;
}

/**
 * Inserts the rows of many occurrences in one statement: the dependency rows first, then the
 * occurrence rows pointing at them. A row that exists already (same schedule, generation,
 * instant and role; another process was first) is left alone: ON CONFLICT DO NOTHING against
 * deployments_schedule_occurrence_key. Rows recorded as missed are written final (finished_at,
 * no due_at). Returns the rows written (the caller adds their timeline events: insertEvents).
 */
export async function insertOccurrences(db: Queryable, rows: OccurrenceRow[]): Promise<InsertedOccurrence[]> {
  if (!rows.length) return [];
  const col = <T>(f: (r: OccurrenceRow) => T) => rows.map(f);
  const cols = `team_id, app_id, schedule_id, schedule_generation, schedule_role, occurrence_at, run_at, timezone, local_year, local_month,
      local_day, local_hour, local_minute, local_second, utc_offset, state, error, expires_after_seconds, expires_at, due_at,
      finished_at, created_by, approval_required`;
  const values = `x.team_id, x.app_id, x.schedule_id, x.generation, x.role, x.occurrence_at, x.run_at, x.timezone, x.ly, x.lmo,
      x.ld, x.lh, x.lmi, x.ls, x.utc_offset, x.state, x.error, x.expires, x.run_at + x.expires * interval '1 second',
      CASE WHEN x.state = 'scheduled' THEN x.run_at END, CASE WHEN x.state IN ('scheduled', 'held') THEN NULL ELSE now() END, x.created_by,
      (SELECT a.approval_required FROM apps a WHERE a.id = x.app_id)`;
  const conflict = `ON CONFLICT (schedule_id, schedule_generation, occurrence_at, schedule_role) WHERE schedule_id IS NOT NULL DO NOTHING`;
  const returning = 'RETURNING id, team_id, app_id, state, error, run_at, schedule_id, occurrence_at, schedule_role, approval_required';
  const r = await db.query<InsertedOccurrence>(
    `WITH x AS (
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::text[],
                            $9::int[], $10::int[], $11::int[], $12::int[], $13::int[], $14::int[], $15::text[], $16::text[], $17::text[],
                            $18::int[], $19::int[], $20::uuid[])
         AS x(team_id, app_id, schedule_id, generation, role, occurrence_at, run_at, timezone, ly, lmo, ld, lh, lmi, ls, utc_offset,
              state, error, lead, expires, created_by)
     ), deps AS (
       INSERT INTO deployments (${cols})
       SELECT ${values} FROM x WHERE x.role = 'dependency'
       ${conflict}
       ${returning}
     ), occ AS (
       INSERT INTO deployments (${cols}, dependency_id, dependency_lead_seconds)
       SELECT ${values},
              -- the dependency row written just now, or one written before (the statement cannot see its own rows)
              COALESCE(deps.id, (SELECT e.id FROM deployments e
                                  WHERE e.schedule_id = x.schedule_id AND e.schedule_generation = x.generation
                                    AND e.occurrence_at = x.occurrence_at AND e.schedule_role = 'dependency')),
              x.lead
         FROM x LEFT JOIN deps ON deps.schedule_id = x.schedule_id AND deps.occurrence_at = x.occurrence_at
        WHERE x.role = 'occurrence'
       ${conflict}
       ${returning}
     )
     SELECT * FROM deps UNION ALL SELECT * FROM occ`,
    [col((r) => r.teamId), col((r) => r.appId), col((r) => r.scheduleId), col((r) => r.generation), col((r) => r.role),
      col((r) => new Date(r.occurrenceAt)), col((r) => new Date(r.runAt)), col((r) => r.timezone), col((r) => r.local.year),
      col((r) => r.local.month), col((r) => r.local.day), col((r) => r.local.hour), col((r) => r.local.minute), col((r) => r.local.second),
      col((r) => r.utcOffset), col((r) => r.state), col((r) => r.error), col((r) => r.leadSeconds), col((r) => r.expiresAfterSeconds),
      col((r) => r.createdBy)],
  );
  return r.rows;
}

/**
 * A schedule's rows that have not started, locked: those of the current generation that a
 * change replaces. Rows a process is firing right now (leased) are left out: they run.
 */
export async function pendingOccurrences(db: Queryable, scheduleId: string): Promise<Array<{ id: string }>> {
  const r = await db.query<{ id: string }>(
    `SELECT id FROM deployments
      WHERE schedule_id = $1 AND state = 'scheduled' AND NOT (lease_owner IS NOT NULL AND lease_until > now())
      FOR UPDATE`,
    [scheduleId],
  );
  return r.rows;
}

/**
 * The latest instant among a schedule's occurrences that are running or being fired: a new
 * generation starts after it, so that no instant runs twice.
 */
export async function lastLiveOccurrence(db: Queryable, scheduleId: string): Promise<Date | null> {
  const r = await db.query<{ at: Date | null }>(
    `SELECT max(occurrence_at) AS at FROM deployments
      WHERE schedule_id = $1 AND (state = 'running' OR (state = 'scheduled' AND lease_owner IS NOT NULL AND lease_until > now()))`,
    [scheduleId],
  );
  return r.rows[0].at;
}

/**
 * Occurrences overtaken while waiting (the service was down, or the app busy): scheduled, not
 * leased, past their instant, while a later occurrence of the same schedule is due too. Locked
 * (those another transaction holds are skipped). Up to `limit`, with the later instant.
 */
export async function supersededOccurrences(db: Queryable, limit: number): Promise<Array<{ id: string; dependency_id: string | null; by: Date }>> {
  const r = await db.query<{ id: string; dependency_id: string | null; by: Date }>(
    `SELECT d.id, d.dependency_id, later.at AS by
       FROM deployments d
       CROSS JOIN LATERAL (
         SELECT max(o.occurrence_at) AS at FROM deployments o
          WHERE o.schedule_id = d.schedule_id AND o.schedule_generation = d.schedule_generation AND o.schedule_role = 'occurrence'
            AND o.occurrence_at > d.occurrence_at AND o.occurrence_at <= now()
       ) later
      WHERE d.state = 'scheduled' AND d.run_at < now() AND d.schedule_role = 'occurrence'
        AND NOT (d.lease_owner IS NOT NULL AND d.lease_until > now())
        AND later.at IS NOT NULL
      ORDER BY d.run_at
      LIMIT $1
      FOR UPDATE OF d SKIP LOCKED`,
    [limit],
  );
  return r.rows;
}

/** Of these deployments, those still scheduled and not being fired, locked (rows locked elsewhere are skipped). */
export async function lockNotStarted(db: Queryable, ids: string[]): Promise<string[]> {
  if (!ids.length) return [];
  const r = await db.query<{ id: string }>(
    `SELECT id FROM deployments WHERE id = ANY($1::uuid[]) AND state = 'scheduled'
        AND NOT (lease_owner IS NOT NULL AND lease_until > now())
      FOR UPDATE SKIP LOCKED`,
    [ids],
  );
  return r.rows.map((x) => x.id);
}

/** The earliest instant at which some schedule needs materializing (for the materializer's timer). */
export async function nextMaterializeAt(db: Queryable): Promise<{ next: Date | null; dbNow: Date }> {
  const r = await db.query<{ next: Date | null; db_now: Date }>(
    'SELECT (SELECT min(materialize_at) FROM schedules WHERE materialize_at IS NOT NULL) AS next, clock_timestamp() AS db_now',
  );
  return { next: r.rows[0].next, dbNow: r.rows[0].db_now };
}
