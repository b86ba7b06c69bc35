/**
 * Recurring schedules: a cron expression in an IANA zone whose occurrences are ordinary
 * deployment rows (src/scheduler/occurrences.ts makes them ahead of time). Creating, changing,
 * pausing, resuming and deleting a schedule happen in one transaction each, with their audit
 * entry; a change cancels the occurrences that have not started and writes the new ones at once.
 */
import { recordAudit } from '../audit/record.ts';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.ts';
import {
  DEFAULT_DST_GAP, DEFAULT_DST_OVERLAP, type DstGapPolicy, type DstOverlapPolicy, occurrences, parseCron, type RecurrenceSpec,
} from '../core/recurrence.ts';
import { canonicalZone, isValidZone } from '../core/time.ts';
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import {
  getSchedule, insertSchedule, lastLiveOccurrence, listSchedules, pendingOccurrences, type ScheduleFields, type ScheduleRow, softDeleteSchedule,
  updateScheduleRow,
} from '../db/sql/schedules.ts';
import { type MaterializeLimits, materializeSchedules } from '../scheduler/occurrences.ts';
import type { User } from './auth.ts';
import { getAppRow } from './apps.ts';
import { decodeCursor, page } from './cursor.ts';
import { DEFAULT_DEPENDENCY_LEAD_SECONDS, DEFAULT_EXPIRES_AFTER_SECONDS } from './deployments.ts';
import { endDeployments } from './transitions.ts';

/** How many upcoming instants a schedule shows (`next_runs`). */
export const NEXT_RUNS = 5;
/** The most a preview lists. */
export const MAX_PREVIEW = 100;

export interface ScheduleInput {
  app: string;
  cron: string;
  timezone: string;
  dependency?: string | null;
  dependency_lead_seconds?: number;
  expires_after_seconds?: number;
  starts_at?: string | null;
  ends_at?: string | null;
  dst_gap?: DstGapPolicy;
  dst_overlap?: DstOverlapPolicy;
  paused?: boolean;
}

export type ScheduleChange = Partial<Omit<ScheduleInput, 'paused'>>;

function specOf(f: Pick<ScheduleFields, 'cron' | 'timezone' | 'dst_gap' | 'dst_overlap'>): RecurrenceSpec {
  return { cron: f.cron, timezone: f.timezone, dstGap: f.dst_gap, dstOverlap: f.dst_overlap };
}

/** The next `count` instants of a schedule from `nowMs` (none while paused), as RFC 3339 UTC. */
function nextRuns(s: ScheduleRow, nowMs: number, count = NEXT_RUNS): string[] {
  if (s.paused) return [];
  const from = Math.max(nowMs, s.starts_at ? s.starts_at.getTime() - 1 : Number.NEGATIVE_INFINITY);
  try {
    return occurrences(specOf(s), from, { count, untilMs: s.ends_at?.getTime() }).map((o) => new Date(o.epochMs).toISOString());
  } catch {
    return [];
  }
}

export function scheduleToApi(s: ScheduleRow, nowMs: number) {
  return {
    id: s.id,
    app: { id: s.app_id, name: s.app_name },
    cron: s.cron,
    timezone: s.timezone,
    dst_gap: s.dst_gap,
    dst_overlap: s.dst_overlap,
    dependency: s.dependency_app_id ? { id: s.dependency_app_id, name: s.dependency_app_name ?? '' } : null,
    dependency_lead_seconds: s.dependency_app_id ? s.dependency_lead_seconds : null,
    expires_after_seconds: s.expires_after_seconds,
    starts_at: s.starts_at?.toISOString() ?? null,
    ends_at: s.ends_at?.toISOString() ?? null,
    paused: s.paused,
    next_runs: nextRuns(s, nowMs),
    created_at: s.created_at.toISOString(),
    updated_at: s.updated_at.toISOString(),
  };
}

async function dbNow(db: Queryable): Promise<number> {
  return (await db.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0].now.getTime();
}

function parseInstant(v: string | null | undefined, field: string): Date | null {
  if (v === undefined || v === null) return null;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw new ValidationError('invalid_date', `${field} must be an RFC 3339 date-time`, field);
  return new Date(ms);
}

/**
 * Checks the fields of a schedule (everything but the apps): the expression, the zone, the
 * window, and that it fires at least once from now on. Throws 422 naming the field.
 */
function checkFields(f: ScheduleFields, nowMs: number): ScheduleFields {
  const cron = parseCron(f.cron).expr;
  if (!isValidZone(f.timezone)) {
    throw new ValidationError('unknown_timezone', `unknown time zone "${f.timezone}": use an IANA name such as Europe/Berlin`, 'timezone');
  }
  const timezone = canonicalZone(f.timezone);
  if (f.starts_at && f.ends_at && f.ends_at.getTime() <= f.starts_at.getTime()) {
    throw new ValidationError('invalid_window', `ends_at (${f.ends_at.toISOString()}) must be after starts_at (${f.starts_at.toISOString()})`, 'ends_at');
  }
  if (f.ends_at && f.ends_at.getTime() <= nowMs) {
    throw new ValidationError('never_fires', `ends_at (${f.ends_at.toISOString()}) is in the past: the schedule would never fire`, 'ends_at');
  }
  const checked = { ...f, cron, timezone };
  const from = Math.max(nowMs, f.starts_at ? f.starts_at.getTime() - 1 : Number.NEGATIVE_INFINITY);
  const first = occurrences(specOf(checked), from, { count: 1 })[0];
  if (!first) throw new ValidationError('never_fires', `"${cron}" would never fire in ${timezone}: no date matches it`, 'cron');
  if (f.ends_at && first.epochMs > f.ends_at.getTime()) {
    throw new ValidationError('never_fires', `the first run would be ${new Date(first.epochMs).toISOString()}, after ends_at (${f.ends_at.toISOString()}): the schedule would never fire`, 'ends_at');
  }
  return checked;
}

async function checkApps(db: Queryable, teamId: string, f: ScheduleFields): Promise<{ app: string; dependency: string | null }> {
  const app = await getAppRow(db, teamId, f.app_id);
  if (!app) throw new ValidationError('unknown_app', `no app ${f.app_id} in your team`, 'app');
  if (!f.dependency_app_id) return { app: app.name, dependency: null };
  if (f.dependency_app_id === f.app_id) throw new ValidationError('self_dependency', 'an app cannot be its own dependency', 'dependency');
  const dep = await getAppRow(db, teamId, f.dependency_app_id);
  if (!dep) throw new ValidationError('unknown_app', `no app ${f.dependency_app_id} in your team`, 'dependency');
  return { app: app.name, dependency: dep.name };
}

async function load(db: Queryable, teamId: string, id: string) {
  const s = await getSchedule(db, teamId, id);
  if (!s) throw new NotFoundError('schedule');
  return s;
}

/**
 * Cancels a schedule's occurrences that have not started (and are not being fired this moment)
 * and returns after which instant a new generation may begin: now, or the last occurrence still
 * running or being fired, so that no instant runs twice.
 */
async function cancelPending(db: Queryable, s: ScheduleRow, nowMs: number, message: string): Promise<Date> {
  const pending = await pendingOccurrences(db, s.id);
  await endDeployments(db, pending.map((p) => ({ finish: { id: p.id, state: 'canceled' as const, error: null, log: '', ref: null }, message })));
  const live = await lastLiveOccurrence(db, s.id);
  return new Date(Math.max(nowMs, live?.getTime() ?? 0));
}

export async function createSchedule(pool: Pool, actor: User, input: ScheduleInput, limits: MaterializeLimits) {
  return inTransaction(pool, async (c) => {
    const now = await dbNow(c);
    const fields = checkFields({
      app_id: input.app, dependency_app_id: input.dependency ?? null,
      dependency_lead_seconds: input.dependency_lead_seconds ?? DEFAULT_DEPENDENCY_LEAD_SECONDS,
      expires_after_seconds: input.expires_after_seconds ?? DEFAULT_EXPIRES_AFTER_SECONDS,
      cron: input.cron, timezone: input.timezone, dst_gap: input.dst_gap ?? DEFAULT_DST_GAP, dst_overlap: input.dst_overlap ?? DEFAULT_DST_OVERLAP,
      starts_at: parseInstant(input.starts_at, 'starts_at'), ends_at: parseInstant(input.ends_at, 'ends_at'),
    }, now);
    const names = await checkApps(c, actor.team_id, fields);
    const paused = input.paused ?? false;
    const id = await insertSchedule(c, { ...fields, team_id: actor.team_id, paused, created_by: actor.id, materialized_until: new Date(now) });
    const s = (await getSchedule(c, actor.team_id, id, true))!;
    // Its first occurrences are rows before this answers (the materializers keep it going).
    if (!paused) await materializeSchedules(c, [s], now, limits);
    await recordAudit(c, {
      teamId: actor.team_id, actorId: actor.id, action: 'schedule.create', targetId: id,
      details: { app: names.app, cron: fields.cron, timezone: fields.timezone, dependency: names.dependency, paused },
    });
    return scheduleToApi(s, now);
  });
}

export async function getScheduleOut(pool: Pool, actor: User, id: string) {
  const s = await load(pool, actor.team_id, id);
  return scheduleToApi(s, await dbNow(pool));
}

export async function listSchedulesOut(pool: Pool, actor: User, limit: number, cursor?: string) {
  const after = decodeCursor<[string, string]>(cursor, (v) => Array.isArray(v) && v.length === 2 && !Number.isNaN(Date.parse(v[0])));
  const rows = await listSchedules(pool, actor.team_id, { after: after ? { createdAt: after[0], id: after[1] } : null, limit: limit + 1 });
  const now = await dbNow(pool);
  const p = page(rows, limit, (s) => [s.cursor_at, s.id]);
  return { result: p.result.map((s) => scheduleToApi(s, now)), next_cursor: p.next_cursor };
}

/**
 * Changes a schedule. The occurrences that have not started are canceled and the new ones
 * written from now on (a new generation); those that ran or are running stay as they were.
 */
export async function updateSchedule(pool: Pool, actor: User, id: string, change: ScheduleChange, limits: MaterializeLimits) {
  return inTransaction(pool, async (c) => {
    const now = await dbNow(c);
    const s = await getSchedule(c, actor.team_id, id, true);
    if (!s) throw new NotFoundError('schedule');
    const fields = checkFields({
      app_id: change.app ?? s.app_id,
      dependency_app_id: 'dependency' in change ? change.dependency ?? null : s.dependency_app_id,
      dependency_lead_seconds: change.dependency_lead_seconds ?? s.dependency_lead_seconds,
      expires_after_seconds: change.expires_after_seconds ?? s.expires_after_seconds,
      cron: change.cron ?? s.cron, timezone: change.timezone ?? s.timezone,
      dst_gap: change.dst_gap ?? s.dst_gap, dst_overlap: change.dst_overlap ?? s.dst_overlap,
      starts_at: 'starts_at' in change ? parseInstant(change.starts_at, 'starts_at') : s.starts_at,
      ends_at: 'ends_at' in change ? parseInstant(change.ends_at, 'ends_at') : s.ends_at,
    }, now);
    const names = await checkApps(c, actor.team_id, fields);
    const after = await cancelPending(c, s, now, `canceled: schedule ${id} was changed by ${actor.email}`);
    await updateScheduleRow(c, id, { ...fields, paused: s.paused, materialized_until: after });
    const updated = (await getSchedule(c, actor.team_id, id, true))!;
    if (!updated.paused) await materializeSchedules(c, [updated], now, limits);
    await recordAudit(c, {
      teamId: actor.team_id, actorId: actor.id, action: 'schedule.update', targetId: id,
      details: { fields: Object.keys(change), app: names.app, cron: fields.cron, timezone: fields.timezone, dependency: names.dependency },
    });
    return scheduleToApi(updated, now);
  });
}

/** Pause (cancels what has not started) or resume (from now on, never back-filling). */
export async function setPaused(pool: Pool, actor: User, id: string, paused: boolean, limits: MaterializeLimits) {
  return inTransaction(pool, async (c) => {
    const now = await dbNow(c);
    const s = await getSchedule(c, actor.team_id, id, true);
    if (!s) throw new NotFoundError('schedule');
    if (s.paused === paused) throw new ConflictError(paused ? 'already_paused' : 'not_paused', `the schedule is ${paused ? 'already paused' : 'not paused'}`);
    let after = new Date(now);
    if (paused) after = await cancelPending(c, s, now, `canceled: schedule ${id} was paused by ${actor.email}`);
    else {
      // Resuming starts after now (and after any occurrence still running): nothing in between is back-filled.
      const live = await lastLiveOccurrence(c, id);
      after = new Date(Math.max(now, live?.getTime() ?? 0));
      if (s.ends_at && s.ends_at.getTime() <= now) throw new ValidationError('never_fires', `the schedule ended at ${s.ends_at.toISOString()}`, 'ends_at');
    }
    await updateScheduleRow(c, id, { ...s, paused, materialized_until: after });
    const updated = (await getSchedule(c, actor.team_id, id, true))!;
    if (!paused) await materializeSchedules(c, [updated], now, limits);
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: paused ? 'schedule.pause' : 'schedule.resume', targetId: id, details: { app: s.app_name, cron: s.cron } });
    return scheduleToApi(updated, now);
  });
}

/**
 * Deletes a schedule: its occurrences that have not started are canceled; it stays in the
 * database (soft-deleted, like apps) so that the deployments it produced keep their schedule_id.
 */
export async function deleteSchedule(pool: Pool, actor: User, id: string): Promise<void> {
  await inTransaction(pool, async (c) => {
    const now = await dbNow(c);
    const s = await getSchedule(c, actor.team_id, id, true);
    if (!s) throw new NotFoundError('schedule');
    await cancelPending(c, s, now, `canceled: schedule ${id} was deleted by ${actor.email}`);
    await softDeleteSchedule(c, id);
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'schedule.delete', targetId: id, details: { app: s.app_name, cron: s.cron } });
  });
}

/** The instants a schedule with these settings would fire at, without storing anything. */
export function preview(q: { cron: string; timezone: string; count?: number; from?: string; dst_gap?: DstGapPolicy; dst_overlap?: DstOverlapPolicy }, nowMs: number) {
  const fromMs = q.from === undefined ? nowMs : Date.parse(q.from);
  if (!Number.isFinite(fromMs)) throw new ValidationError('invalid_date', 'from must be an RFC 3339 date-time', 'from', 400);
  const cron = parseCron(q.cron).expr;
  if (!isValidZone(q.timezone)) {
    throw new ValidationError('unknown_timezone', `unknown time zone "${q.timezone}": use an IANA name such as Europe/Berlin`, 'timezone');
  }
  const list = occurrences(
    { cron, timezone: canonicalZone(q.timezone), dstGap: q.dst_gap ?? DEFAULT_DST_GAP, dstOverlap: q.dst_overlap ?? DEFAULT_DST_OVERLAP },
    fromMs, { count: Math.min(q.count ?? NEXT_RUNS, MAX_PREVIEW) },
  );
  if (!list.length) throw new ValidationError('never_fires', `"${cron}" would never fire: no date matches it`, 'cron');
  return {
    result: list.map((o) => ({ run_at: new Date(o.epochMs).toISOString(), local: o.local, utc_offset: o.utcOffset, ...(o.note ? { note: o.note } : {}) })),
  };
}

export async function dbClock(pool: Pool): Promise<number> {
  return dbNow(pool);
}
