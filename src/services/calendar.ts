/**
 * One calendar of a team (issue 11): its deployments (one-off), the occurrences of its recurring
 * schedules (the rows already made, and the instants planned beyond the materialized horizon,
 * computed with the same recurrence maths) and its deploy freezes, for a time range, with times
 * in a zone the caller chooses. GET /v1/calendar answers it as JSON; GET /v1/calendar.ics as an
 * iCalendar feed (src/services/calendar-feed.ts).
 *
 * Freezes come through an injected `freezeWindows` (CalendarDeps): this file does not know how
 * freezes are stored or how a recurring freeze expands into windows.
 */
import { type Occurrence, occurrences } from '../core/recurrence.ts';
import { canonicalZone, isValidZone, localTimeAt } from '../core/time.ts';
import { ValidationError } from '../core/errors.ts';
import type { Pool, Queryable } from '../db/pool.ts';
import { activeSchedules, calendarDeployments, type CalendarDeploymentRow, type CalendarScheduleRow, teamAppNames } from '../db/sql/calendar.ts';

/** The longest range one GET /v1/calendar may ask for: a quarter (92 days), whatever the zone. */
export const MAX_RANGE_DAYS = 92;
/** The most entries one answer lists (deployments, occurrences and freezes together); `truncated` says when more matched. */
export const MAX_ENTRIES = 5000;
/**
 * About the most planned occurrences one answer computes (a 5-minute cron makes 26,000 in 92
 * days); past it, planned ones are listed up to `planned_until` only (deployment rows and freezes
 * are all listed).
 */
export const MAX_PLANNED = 1000;
/** Planned occurrences computed per step, per schedule, at most (fewer with many schedules, so that each gets its turn within the budget). */
const PLANNED_CHUNK = 64;

/** One window of a deploy freeze: [start, end). `apps` null: every app of the team. */
export interface FreezeWindow {
  id: string;
  name: string;
  reason: string | null;
  start: Date;
  end: Date;
  apps: string[] | null;
}

/** The freeze windows of a team that overlap [fromUtc, toUtc) (recurring freezes expanded). */
export type FreezeWindows = (db: Queryable, teamId: string, fromUtc: Date, toUtc: Date) => Promise<FreezeWindow[]>;

export interface CalendarDeps {
  freezeWindows: FreezeWindows;
}

export type EntryKind = 'deployment' | 'occurrence' | 'freeze';
/** A deployment's state; "planned" for an occurrence not yet a row; a freeze is "upcoming", "active" or "ended". */
export type EntryState = string;

export interface CalendarEntry {
  kind: EntryKind;
  /** The deployment's id; for a planned occurrence its schedule's id; for a freeze the freeze's id. */
  id: string;
  /**
   * Stable and unique within a calendar: the feed's UID. A schedule's occurrence keeps its uid
   * when it turns from planned into a row (schedule, generation, instant, role).
   */
  uid: string;
  title: string;
  state: EntryState;
  /** RFC 3339 in the requested zone, with its offset at that instant. */
  start: string;
  start_utc: string;
  /** Freezes only (null otherwise): when the window ends (exclusive). */
  end: string | null;
  end_utc: string | null;
  app: { id: string; name: string } | null;
  schedule_id: string | null;
  /** The UI path that shows it. */
  link: string;
  /** Freezes only: the apps it covers, null for every app of the team. */
  apps?: Array<{ id: string; name: string }> | null;
  /** Freezes only. */
  reason?: string | null;
}

export interface CalendarOut {
  from: string;
  to: string;
  timezone: string;
  result: CalendarEntry[];
  /** More than MAX_ENTRIES matched (the earliest are listed), or more than MAX_PLANNED planned occurrences (see planned_until). */
  truncated: boolean;
  /** Planned occurrences are listed up to this instant (in the zone) only; null: all of them. */
  planned_until: string | null;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** An instant as RFC 3339 in `zone` with the zone's offset at that instant: "2026-03-29T03:30:00+02:00". */
export function rfc3339In(epochMs: number, zone: string): string {
  const l = localTimeAt(epochMs, zone);
  const ms = ((epochMs % 1000) + 1000) % 1000;
  // RFC 3339 offsets have no seconds: the odd historical "-00:44:30" is cut to minutes.
  const offset = l.utcOffset.slice(0, 6);
  return `${pad(l.year, 4)}-${pad(l.month)}-${pad(l.day)}T${pad(l.hour)}:${pad(l.minute)}:${pad(l.second)}${ms ? `.${pad(ms, 3)}` : ''}${offset}`;
}

function parseInstant(v: string, field: string): number {
  // The route's schema checks the format; this also serves callers that bypass it.
  const ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(v) ? Date.parse(v) : Number.NaN;
  if (!Number.isFinite(ms)) throw new ValidationError('invalid_date', `${field} must be an RFC 3339 date-time with an offset, such as 2026-03-01T00:00:00+01:00`, field);
  return ms;
}

/** Checks a request's range and zone: 422 naming the field. */
export function checkRange(q: { from: string; to: string; timezone?: string }): { fromMs: number; toMs: number; zone: string } {
  const fromMs = parseInstant(q.from, 'from');
  const toMs = parseInstant(q.to, 'to');
  if (toMs <= fromMs) throw new ValidationError('invalid_range', `to (${q.to}) must be after from (${q.from})`, 'to');
  if (toMs - fromMs > MAX_RANGE_DAYS * 86_400_000) {
    throw new ValidationError('range_too_long', `from … to spans more than ${MAX_RANGE_DAYS} days, the most one calendar request covers; ask for a shorter range`, 'to');
  }
  const zone = q.timezone ?? 'UTC';
  if (!isValidZone(zone)) throw new ValidationError('unknown_timezone', `unknown time zone "${zone}": use an IANA name such as Europe/Berlin`, 'timezone');
  return { fromMs, toMs, zone: canonicalZone(zone) };
}

function deploymentEntry(d: CalendarDeploymentRow, zone: string): CalendarEntry {
  const ms = d.run_at.getTime();
  const scheduled = d.schedule_id !== null;
  let uid = `deployment-${d.id}`;
  if (scheduled && d.occurrence_at && d.schedule_generation !== null) {
    uid = `${d.schedule_role ?? 'occurrence'}-${d.schedule_id}-g${d.schedule_generation}-${d.occurrence_at.toISOString()}`;
  }
  let title = `Deploy ${d.app_name}`;
  if (d.schedule_role === 'dependency') title += ' (dependency of a scheduled occurrence)';
  else if (d.dependent_app_name) title += ` (dependency of ${d.dependent_app_name})`;
  else if (scheduled) title += ' (recurring schedule)';
  return {
    kind: scheduled ? 'occurrence' : 'deployment', id: d.id, uid, title, state: d.state,
    start: rfc3339In(ms, zone), start_utc: d.run_at.toISOString(), end: null, end_utc: null,
    app: { id: d.app_id, name: d.app_name }, schedule_id: d.schedule_id, link: `/deployments/${d.id}`,
  };
}

function plannedEntry(s: CalendarScheduleRow, epochMs: number, zone: string): CalendarEntry {
  const at = new Date(epochMs).toISOString();
  return {
    kind: 'occurrence', id: s.id, uid: `occurrence-${s.id}-g${s.generation}-${at}`,
    title: `Deploy ${s.app_name} (recurring schedule, planned)`, state: 'planned',
    start: rfc3339In(epochMs, zone), start_utc: at, end: null, end_utc: null,
    app: { id: s.app_id, name: s.app_name }, schedule_id: s.id, link: '/schedules',
  };
}

/**
 * The occurrences in [fromMs, toMs) that are not rows yet: for each schedule, those after its
 * `materialized_until` (and after now), within its own window. Computing one costs real CPU
 * (~0.1–0.3 ms, on the event loop that also fires deployments), so at most about MAX_PLANNED are, in time order across the schedules: each step
 * extends the schedule that is furthest behind by a chunk. When the budget runs out, `cutMs`
 * says up to which instant the list is complete (every planned occurrence after it is left out).
 */
function plannedOccurrences(schedules: CalendarScheduleRow[], fromMs: number, toMs: number, nowMs: number, zone: string): { entries: CalendarEntry[]; cutMs: number | null } {
  const cursors = schedules.map((s) => ({
    s,
    after: Math.max(fromMs - 1, s.materialized_until.getTime(), nowMs, s.starts_at ? s.starts_at.getTime() - 1 : Number.NEGATIVE_INFINITY),
    until: Math.min(toMs - 1, s.ends_at ? s.ends_at.getTime() : Number.POSITIVE_INFINITY),
    done: false,
  })).filter((c) => c.until > c.after);
  const entries: CalendarEntry[] = [];
  const chunk = Math.max(1, Math.min(PLANNED_CHUNK, Math.floor(MAX_PLANNED / (2 * Math.max(1, cursors.length)))));
  for (;;) {
    let c: (typeof cursors)[number] | undefined;
    for (const x of cursors) if (!x.done && (!c || x.after < c.after)) c = x;
    if (!c) return { entries, cutMs: null };
    // Every occurrence up to c.after is known: the other schedules are at or beyond it.
    if (entries.length >= MAX_PLANNED) return { entries, cutMs: c.after };
    let list: Occurrence[];
    try {
      list = occurrences({ cron: c.s.cron, timezone: c.s.timezone, dstGap: c.s.dst_gap, dstOverlap: c.s.dst_overlap }, c.after, { count: chunk, untilMs: c.until });
    } catch {
      list = []; // an expression or zone this runtime no longer takes: the materializer reports it
    }
    for (const o of list) entries.push(plannedEntry(c.s, o.epochMs, zone));
    if (list.length < chunk) c.done = true;
    else c.after = list[list.length - 1].epochMs;
  }
}

function freezeEntry(f: FreezeWindow, zone: string, nowMs: number, apps: Map<string, string>): CalendarEntry {
  const start = f.start.getTime();
  const end = f.end.getTime();
  return {
    kind: 'freeze', id: f.id, uid: `freeze-${f.id}-${f.start.toISOString()}`, title: `Freeze: ${f.name}`,
    state: nowMs < start ? 'upcoming' : nowMs < end ? 'active' : 'ended',
    start: rfc3339In(start, zone), start_utc: f.start.toISOString(), end: rfc3339In(end, zone), end_utc: f.end.toISOString(),
    app: null, schedule_id: null, link: '/freezes',
    apps: f.apps === null ? null : f.apps.map((id) => ({ id, name: apps.get(id) ?? '(deleted app)' })),
    reason: f.reason,
  };
}

/**
 * Everything of a team in [fromMs, toMs), ordered by start (then kind, then uid); at most
 * MAX_ENTRIES, the earliest. No range limit here: GET /v1/calendar checks it (checkRange), the
 * feed uses its own window.
 */
export async function calendarEntries(
  db: Queryable,
  deps: CalendarDeps,
  teamId: string,
  range: { fromMs: number; toMs: number; zone: string; nowMs: number },
): Promise<{ entries: CalendarEntry[]; truncated: boolean; plannedUntilMs: number | null }> {
  const { fromMs, toMs, zone, nowMs } = range;
  const from = new Date(fromMs);
  const to = new Date(toMs);
  const [rows, schedules, freezes] = await Promise.all([
    calendarDeployments(db, teamId, from, to, MAX_ENTRIES + 1),
    activeSchedules(db, teamId),
    deps.freezeWindows(db, teamId, from, to),
  ]);
  const apps = freezes.some((f) => f.apps?.length) ? await teamAppNames(db, teamId) : new Map<string, string>();
  // Rows beyond the cap are unknown: nothing at or after the first one left out is listed.
  let cut = rows.length > MAX_ENTRIES ? rows.pop()!.run_at.toISOString() : null;
  const entries: CalendarEntry[] = rows.map((d) => deploymentEntry(d, zone));
  // A row and a planned instant are never the same occurrence (planned starts after
  // materialized_until); the uid set guards against a race with a materializer all the same.
  const seen = new Set(entries.map((e) => e.uid));
  const planned = plannedOccurrences(schedules, fromMs, toMs, nowMs, zone);
  const plannedCut = planned.cutMs === null ? null : new Date(planned.cutMs + 1).toISOString();
  for (const p of planned.entries) if (!seen.has(p.uid) && (plannedCut === null || p.start_utc < plannedCut)) entries.push(p);
  for (const f of freezes) {
    if (f.end.getTime() > fromMs && f.start.getTime() < toMs) entries.push(freezeEntry(f, zone, nowMs, apps));
  }
  const order: Record<EntryKind, number> = { freeze: 0, deployment: 1, occurrence: 2 };
  entries.sort((a, b) => a.start_utc.localeCompare(b.start_utc) || order[a.kind] - order[b.kind] || a.uid.localeCompare(b.uid));
  let kept = cut === null ? entries : entries.filter((e) => e.start_utc < cut);
  if (kept.length > MAX_ENTRIES) kept = kept.slice(0, MAX_ENTRIES);
  return { entries: kept, truncated: cut !== null || kept.length < entries.length || planned.cutMs !== null, plannedUntilMs: planned.cutMs };
}

async function dbNow(db: Queryable): Promise<number> {
  return (await db.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0].now.getTime();
}

/** GET /v1/calendar: the team's calendar for [from, to) in `timezone` (default UTC). */
export async function getCalendar(pool: Pool, deps: CalendarDeps, teamId: string, q: { from: string; to: string; timezone?: string }): Promise<CalendarOut> {
  const { fromMs, toMs, zone } = checkRange(q);
  const { entries, truncated, plannedUntilMs } = await calendarEntries(pool, deps, teamId, { fromMs, toMs, zone, nowMs: await dbNow(pool) });
  return {
    from: rfc3339In(fromMs, zone), to: rfc3339In(toMs, zone), timezone: zone, result: entries, truncated,
    planned_until: plannedUntilMs === null ? null : rfc3339In(plannedUntilMs, zone),
  };
}

export { dbNow as calendarClock };
