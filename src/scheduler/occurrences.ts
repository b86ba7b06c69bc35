/**
 * The occurrence materializer: turns recurring schedules into ordinary deployment rows ahead of
 * their instants, in every process. The scheduler then fires them like any one-off deployment
 * (exactly once, dependency lead, expiry, retries, events, notifications).
 *
 * - Which schedules need rows: `schedules.materialize_at` is when a schedule must be looked at
 *   again. A process takes the due ones in batches of SCHEDULE_BATCH, locked FOR UPDATE SKIP
 *   LOCKED (processes share the work and never do the same schedule at once), plans their rows
 *   with the pure recurrence maths, writes all the rows of the batch in one statement, and
 *   records per schedule how far it got (`materialized_until`) and when to come back.
 * - How far ahead: occurrences within SHIPCLOCK_SCHEDULE_HORIZON_SECONDS (24 h; plus the
 *   dependency lead, so that a dependency row exists that far before its own instant), at most
 *   SHIPCLOCK_SCHEDULE_MAX_AHEAD (100) future rows per schedule, refilled when about half ran.
 * - Never two rows per instant: the unique index deployments_schedule_occurrence_key
 *   (schedule, generation, instant, role) and INSERT ... ON CONFLICT DO NOTHING, whatever the
 *   locks did.
 * - Downtime: occurrences whose instant passed while nothing materialized them are inserted
 *   directly as `missed` (once each: the unique index again), at most
 *   SHIPCLOCK_SCHEDULE_MAX_MISSED (100) per catch-up; beyond that, the last recorded one's event
 *   says how far the gap went and the schedule carries on with the next future occurrence. Only
 *   the latest past occurrence still within its expiry is left to run (late, as a one-off
 *   would); the earlier ones are missed, "superseded". Rows that existed already and were
 *   overtaken the same way (a later occurrence of the schedule is due too) are ended missed each
 *   cycle: a schedule never runs a burst of late occurrences.
 */
import { type Occurrence, occurrences, type RecurrenceSpec } from '../core/recurrence.ts';
import { localTimeAt } from '../core/time.ts';
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { DUE_NOTIFY_HORIZON_SECONDS, insertEvents, notifyDue } from '../db/sql/events.ts';
import {
  claimSchedulesToMaterialize, insertOccurrences, lockNotStarted, nextMaterializeAt, type OccurrenceRow, type ScheduleRow, setMaterialized,
  supersededOccurrences,
} from '../db/sql/schedules.ts';
import { enqueueNotifications } from '../notifications/enqueue.ts';
import { enqueueApprovalEvents } from '../db/sql/approvals.ts';
import type { Logger } from '../observability/logger.ts';
import { endDeployments } from '../services/transitions.ts';

/** The limits of materialization (src/config.ts: SHIPCLOCK_SCHEDULE_*). */
export interface MaterializeLimits {
  horizonMs: number;
  maxAhead: number;
  maxMissed: number;
}

/** Schedules planned and written per transaction. */
export const SCHEDULE_BATCH = 100;
/** Overtaken occurrences ended per statement. */
export const SUPERSEDE_BATCH = 500;
/** The materializer looks for due schedules at least this often (and at the next materialize_at). */
export const MATERIALIZE_POLL_MS = 1000;
/** A schedule whose plan throws (a zone or expression this runtime no longer takes) is tried again after this long. */
export const PLAN_ERROR_RETRY_MS = 3_600_000;

export interface Plan {
  rows: OccurrenceRow[];
  materializedUntil: number;
  /** Null: nothing left to materialize (the schedule ended). */
  materializeAt: number | null;
  /** How many past occurrences were recorded missed (for the log). */
  missed: number;
  /** Set when a catch-up recorded MAX_MISSED and jumped to now. */
  overflowed: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();

function specOf(s: ScheduleRow): RecurrenceSpec {
  return { cron: s.cron, timezone: s.timezone, dstGap: s.dst_gap, dstOverlap: s.dst_overlap };
}

/**
 * The rows one schedule needs now (pure: a function of the schedule, the database clock and the
 * limits). See the file header for the rules.
 */
export function planMaterialization(s: ScheduleRow, nowMs: number, limits: MaterializeLimits): Plan {
  const spec = specOf(s);
  const endMs = s.ends_at ? s.ends_at.getTime() : Number.POSITIVE_INFINITY;
  const floorMs = s.starts_at ? s.starts_at.getTime() - 1 : Number.NEGATIVE_INFINITY;
  const leadMs = s.dependency_app_id ? s.dependency_lead_seconds * 1000 : 0;
  const expiresMs = s.expires_after_seconds * 1000;
  const rows: OccurrenceRow[] = [];
  let from = Math.max(s.materialized_until.getTime(), floorMs);
  let missed = 0;
  let overflowed = false;

  const add = (o: Occurrence, state: 'scheduled' | 'missed', error: string | null) => {
    const base = {
      teamId: s.team_id, scheduleId: s.id, generation: s.generation, occurrenceAt: o.epochMs, timezone: s.timezone, state, error,
      expiresAfterSeconds: s.expires_after_seconds, createdBy: s.created_by,
    };
    const what = `occurrence of schedule ${s.id}${o.note ? ` (${o.note})` : ''}`;
    if (s.dependency_app_id) {
      const runAt = o.epochMs - leadMs;
      const l = localTimeAt(runAt, s.timezone);
      rows.push({
        ...base, appId: s.dependency_app_id, role: 'dependency', runAt, leadSeconds: null, utcOffset: l.utcOffset,
        local: { year: l.year, month: l.month, day: l.day, hour: l.hour, minute: l.minute, second: l.second },
        error: state === 'missed' ? `its occurrence (${iso(o.epochMs)}) was missed: ${error}` : null,
        message: state === 'missed' ? `its occurrence (${iso(o.epochMs)}) was missed` : `scheduled as the dependency of the ${iso(o.epochMs)} ${what}`,
      });
    }
    rows.push({
      ...base, appId: s.app_id, role: 'occurrence', runAt: o.epochMs, leadSeconds: s.dependency_app_id ? s.dependency_lead_seconds : null,
      local: o.local, utcOffset: o.utcOffset, message: state === 'missed' ? error! : `scheduled: ${what}`,
    });
    if (state === 'missed') missed++;
  };

  // 1. Instants that passed before any process made them rows (downtime, or a long pause of the
  //    materializers): recorded missed, except the latest one still within its expiry.
  if (from < nowMs) {
    const late = occurrences(spec, from, { count: limits.maxMissed + 1, untilMs: Math.min(nowMs, endMs) });
    if (late.length > limits.maxMissed) {
      overflowed = true;
      late.length = limits.maxMissed;
      late.forEach((o, i) => add(o, 'missed', i < late.length - 1
        ? `shipclock was not running at its instant; recorded as missed when it caught up`
        : `shipclock was not running at its instant; recorded as missed when it caught up. Every later occurrence up to ${iso(nowMs)} was missed too and is not recorded one by one (at most ${limits.maxMissed} per catch-up: SHIPCLOCK_SCHEDULE_MAX_MISSED)`));
      from = nowMs;
    } else {
      late.forEach((o, i) => {
        if (o.epochMs + expiresMs <= nowMs) {
          add(o, 'missed', `not started within ${s.expires_after_seconds} s of its instant (expires_after_seconds): shipclock was not running; never run late`);
        } else if (i < late.length - 1) {
          add(o, 'missed', `superseded by the occurrence at ${iso(late[late.length - 1].epochMs)}, due too: a schedule never runs a burst of late occurrences`);
        } else add(o, 'scheduled', null);
      });
      from = late.length ? late[late.length - 1].epochMs : Math.min(nowMs, endMs);
    }
  }

  // 2. What is ahead: up to maxAhead future rows, within the horizon (+ the lead) and the window.
  const untilMs = Math.min(nowMs + limits.horizonMs + leadMs, endMs);
  const aheadFrom = Math.max(nowMs, floorMs);
  const existing = from > aheadFrom ? occurrences(spec, aheadFrom, { count: limits.maxAhead, untilMs: from }) : [];
  const room = limits.maxAhead - existing.length;
  const added = room > 0 && untilMs > from ? occurrences(spec, Math.max(from, aheadFrom), { count: room, untilMs }) : [];
  for (const o of added) add(o, 'scheduled', null);
  const future = existing.concat(added);
  let materializedUntil: number;
  let materializeAt: number | null;
  if (future.length >= limits.maxAhead) {
    // Full: come back when about half of them ran.
    materializedUntil = future[future.length - 1].epochMs;
    materializeAt = future[Math.floor((future.length - 1) / 2)].epochMs;
  } else {
    // Everything up to the horizon (or the end) is a row: come back when the next one enters it.
    materializedUntil = Math.max(from, untilMs);
    const next = occurrences(spec, materializedUntil, { count: 1, untilMs: endMs })[0];
    materializeAt = next ? Math.max(nowMs, next.epochMs - limits.horizonMs - leadMs) : null;
  }
  return { rows, materializedUntil, materializeAt, missed, overflowed };
}

/**
 * Plans and writes the rows of these schedules (locked by the caller) in the caller's
 * transaction: one INSERT for all of them, one UPDATE of their progress, the notifications of
 * those recorded missed, one NOTIFY if something is due soon. Returns the rows written.
 */
export async function materializeSchedules(db: Queryable, schedules: ScheduleRow[], nowMs: number, limits: MaterializeLimits, logger?: Logger): Promise<number> {
  if (!schedules.length) return 0;
  const rows: OccurrenceRow[] = [];
  const progress: Array<{ id: string; materializedUntil: Date; materializeAt: Date | null }> = [];
  for (const s of schedules) {
    let plan: Plan;
    try {
      plan = planMaterialization(s, nowMs, limits);
    } catch (err) {
      logger?.error({ schedule_id: s.id, err: (err as Error).message }, 'cannot compute the occurrences of a schedule; trying again in an hour');
      progress.push({ id: s.id, materializedUntil: s.materialized_until, materializeAt: new Date(nowMs + PLAN_ERROR_RETRY_MS) });
      continue;
    }
    if (plan.overflowed) logger?.warn({ schedule_id: s.id, missed: plan.missed }, 'schedule caught up after downtime; further missed occurrences are not recorded one by one');
    else if (plan.missed) logger?.warn({ schedule_id: s.id, missed: plan.missed }, 'schedule caught up: occurrences recorded as missed');
    for (const r of plan.rows) rows.push(r);
    progress.push({ id: s.id, materializedUntil: new Date(plan.materializedUntil), materializeAt: plan.materializeAt === null ? null : new Date(plan.materializeAt) });
  }
  const inserted = await insertOccurrences(db, rows);
  // Their first timeline events (and the events NOTIFYs, in chunks), with the planned messages.
  const key = (scheduleId: string, at: number, role: string) => `${scheduleId}|${at}|${role}`;
  const messages = new Map(rows.map((r) => [key(r.scheduleId, r.occurrenceAt, r.role), r.message]));
  await insertEvents(db, inserted.map((r) => ({ id: r.id, state: r.state, message: messages.get(key(r.schedule_id, r.occurrence_at.getTime(), r.schedule_role)) ?? null })));
  await setMaterialized(db, progress);
  await enqueueNotifications(db, inserted.map((r) => ({ teamId: r.team_id, deploymentId: r.id, appId: r.app_id, state: r.state, error: r.error })));
  const asking = inserted.filter((r) => r.approval_required !== null && r.state === 'scheduled');
  if (asking.length) await enqueueApprovalEvents(db, asking.map((r) => ({ deploymentId: r.id, event: 'approval_requested' as const })));
  let earliest = Number.POSITIVE_INFINITY;
  for (const r of inserted) if (r.state === 'scheduled' && r.run_at.getTime() < earliest) earliest = r.run_at.getTime();
  if (earliest <= nowMs + DUE_NOTIFY_HORIZON_SECONDS * 1000) await notifyDue(db, new Date(earliest));
  return inserted.length;
}

/** Ends overtaken occurrences (and their dependency rows that have not started) as missed. */
export async function supersedeLate(pool: Pool): Promise<number> {
  return inTransaction(pool, async (c) => {
    const found = await supersededOccurrences(c, SUPERSEDE_BATCH);
    if (!found.length) return 0;
    const deps = new Set(await lockNotStarted(c, found.flatMap((f) => (f.dependency_id ? [f.dependency_id] : []))));
    const items = [];
    for (const f of found) {
      const why = `superseded by the occurrence at ${f.by.toISOString()}, due too: a schedule never runs a burst of late occurrences`;
      items.push({ finish: { id: f.id, state: 'missed' as const, error: why, log: '', ref: null }, message: why });
      if (f.dependency_id && deps.has(f.dependency_id)) {
        items.push({ finish: { id: f.dependency_id, state: 'missed' as const, error: `its occurrence ${f.id} was ${why}`, log: '', ref: null }, message: `its occurrence ${f.id} was superseded` });
      }
    }
    const ended = await endDeployments(c, items);
    return ended.length;
  });
}

export interface MaterializerOptions {
  pool: Pool;
  logger: Logger;
  limits: MaterializeLimits;
}

/** Runs in every process: materializes due schedules and ends overtaken occurrences. */
export class OccurrenceMaterializer {
  private timer?: NodeJS.Timeout;
  private running: Promise<void> | null = null;
  private again = false;
  private stopping = false;

  constructor(private readonly o: MaterializerOptions) {}

  start(): void {
    this.kick();
  }

  /** Looks for work now (coalesces concurrent calls). */
  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.cycle()
      .catch((err) => {
        this.o.logger.warn({ err: (err as Error).message }, 'materializing schedules failed; retrying');
        return MATERIALIZE_POLL_MS;
      })
      .then((delay) => {
        this.running = null;
        if (this.stopping) return;
        if (this.again) {
          this.again = false;
          delay = 0;
        }
        this.timer = setTimeout(() => this.kick(), delay);
      });
  }

  /** One pass; returns how long to wait before the next. */
  private async cycle(): Promise<number> {
    for (;;) {
      if (this.stopping) return MATERIALIZE_POLL_MS;
      const n = await inTransaction(this.o.pool, async (c) => {
        const { rows, dbNow } = await claimSchedulesToMaterialize(c, SCHEDULE_BATCH);
        if (rows.length) await materializeSchedules(c, rows, dbNow.getTime(), this.o.limits, this.o.logger);
        return rows.length;
      });
      if (n < SCHEDULE_BATCH) break;
    }
    for (;;) {
      if (this.stopping) return MATERIALIZE_POLL_MS;
      const n = await supersedeLate(this.o.pool);
      if (n) this.o.logger.info({ ended: n }, 'overtaken schedule occurrences recorded as missed');
      if (n < SUPERSEDE_BATCH) break;
    }
    const { next, dbNow } = await nextMaterializeAt(this.o.pool);
    return next ? Math.max(0, Math.min(MATERIALIZE_POLL_MS, next.getTime() - dbNow.getTime())) : MATERIALIZE_POLL_MS;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.running;
    clearTimeout(this.timer);
  }
}
