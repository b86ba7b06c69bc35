/**
 * Recurrence: the instants at which a cron expression fires in an IANA zone, exact about
 * daylight saving. Pure: nothing here reads the clock; the caller passes "from".
 *
 * How (docs/decisions/0003-recurrence.md):
 * 1. The cron library (croner) only enumerates the *wall-clock* times an expression matches, on
 *    a calendar without a zone (it is evaluated at UTC offset 0 and its answers are read as local
 *    wall times: 2026-03-08T02:30Z means "02:30 on 8 March").
 * 2. Each wall time is mapped to instants here, with the zone rules of src/core/time.ts:
 *    - a wall time a DST change skips (a gap): `dstGap` "shift" moves it forward by the length of
 *      the gap, as Temporal's `compatible` does (02:30 → 03:30 in New York, 02:15 → 02:45 on Lord
 *      Howe Island), noted "shifted (DST gap)"; "skip" drops it;
 *    - a wall time that occurs twice (an overlap): `dstOverlap` "first" keeps the earlier instant,
 *      "both" keeps both, in order; either way noted "repeated hour".
 * 3. The instants are de-duplicated (a shifted 02:30 can be the same instant as a real 03:30
 *    match; the real one wins and carries no note) and come out strictly increasing.
 *
 * Bounds, so that no expression can make a call scan without end: a wall-clock stretch of
 * SCAN_LIMIT_MS with no match ends the enumeration (an expression such as "0 0 30 2 *" never
 * matches; croner itself already answers "no next run" for most of those).
 */
import { Cron } from 'croner';
import { Temporal } from '@js-temporal/polyfill';
import { ShipclockError, ValidationError } from './errors.ts';
import { isValidZone, type LocalTime, localTimeAt, resolveLocalTime } from './time.ts';

/** What to do with a wall time that a DST change skips. */
export type DstGapPolicy = 'shift' | 'skip';
/** What to do with a wall time that occurs twice when DST ends. */
export type DstOverlapPolicy = 'first' | 'both';

export const DEFAULT_DST_GAP: DstGapPolicy = 'shift';
export const DEFAULT_DST_OVERLAP: DstOverlapPolicy = 'first';

export const NOTE_SHIFTED = 'shifted (DST gap)';
export const NOTE_REPEATED = 'repeated hour';
export type OccurrenceNote = typeof NOTE_SHIFTED | typeof NOTE_REPEATED;

export interface RecurrenceSpec {
  /** 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first). */
  cron: string;
  /** IANA zone the expression is read in. */
  timezone: string;
  dstGap?: DstGapPolicy;
  dstOverlap?: DstOverlapPolicy;
}

export interface Occurrence {
  /** The UTC instant, epoch milliseconds. */
  epochMs: number;
  /** The wall-clock time in the zone at that instant (for a shifted one: after the shift). */
  local: LocalTime;
  /** The zone's offset at that instant, "+02:00". */
  utcOffset: string;
  note?: OccurrenceNote;
}

/**
 * A wall-clock stretch (about 8 years) without a single match ends an enumeration: February 29
 * is 8 years away at worst (2096 → 2104), so nothing that can match is cut off, and an
 * expression that cannot match ("0 0 30 2 *") is known for one in at most that much scanning.
 */
export const SCAN_LIMIT_MS = 8 * 366 * 86_400_000;

/**
 * The largest drop of a zone's offset at one change that we account for (clocks set back by
 * this much at most, at most one change within it). Real zones drop by 30 minutes to 2 hours.
 */
const MAX_OFFSET_DROP_MS = 3 * 3_600_000;

/** An invalid cron expression: 422 `invalid_cron` on the field it came from. */
export class CronError extends ValidationError {
  constructor(message: string, field = 'cron') {
    super('invalid_cron', message, field);
  }
}

export interface ParsedCron {
  /** The expression as given, trimmed. */
  expr: string;
  /** True for the 6-field form (seconds first). */
  seconds: boolean;
}

/**
 * Compiled expressions by their text, least recently used dropped first. A compiled croner
 * pattern holds a table per field, its year table 10,000 entries: about 80 KB each, and ~0.3 ms
 * to build. 2,000 of them cost 158 MB of heap (measured with 10,000 schedules), so the cache is
 * small: the materializer asks for one schedule's expression several times in a row, and a page
 * of previews repeats a few; the rest is compiled again.
 */
const compiled = new Map<string, Cron>();
export const CRON_CACHE_MAX = 64;

function compile(expr: string, field: string): Cron {
  const cached = compiled.get(expr);
  if (cached) {
    compiled.delete(expr);
    compiled.set(expr, cached);
    return cached;
  }
  if (typeof expr !== 'string' || expr.length === 0 || expr.length > 200) {
    throw new CronError('cron must be 1 to 200 characters', field);
  }
  const parts = expr.split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) {
    throw new CronError(`"${expr}" has ${parts.length} field(s): give 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)`, field);
  }
  let cron: Cron;
  try {
    // utcOffset 0: a calendar without daylight saving, on which a match is a wall time. No
    // callback, so croner starts no timer. Day-of-month and day-of-week are ORed, as in Vixie cron.
    cron = new Cron(expr, { utcOffset: 0, mode: '5-or-6-parts', paused: true });
  } catch (err) {
    const why = String((err as Error).message ?? err).replace(/^CronPattern:\s*/, '');
    throw new CronError(`"${expr}" is not a valid cron expression: ${why}`, field);
  }
  if (compiled.size >= CRON_CACHE_MAX) compiled.delete(compiled.keys().next().value as string);
  compiled.set(expr, cron);
  return cron;
}

/**
 * Checks a cron expression: 5 fields, or 6 with seconds first (croner's syntax: lists, ranges,
 * steps, names such as MON and JAN, L, W and #). Throws CronError (422 `invalid_cron`, naming
 * `field`) when it is not one.
 */
export function parseCron(expr: string, field = 'cron'): ParsedCron {
  const e = typeof expr === 'string' ? expr.trim() : expr;
  compile(e, field);
  return { expr: e, seconds: e.split(/\s+/).length === 6 };
}

/** Wall-clock milliseconds (the local fields read as if UTC) of an instant in a zone. */
function wallOf(epochMs: number, zone: string): number {
  const l = localTimeAt(epochMs, zone);
  return Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second) + (((epochMs % 1000) + 1000) % 1000);
}

function fieldsOf(wallMs: number): LocalTime {
  const d = new Date(wallMs);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
}

function occurrenceAt(epochMs: number, zone: string, note?: OccurrenceNote): Occurrence {
  const l = localTimeAt(epochMs, zone);
  const o: Occurrence = {
    epochMs,
    local: { year: l.year, month: l.month, day: l.day, hour: l.hour, minute: l.minute, second: l.second },
    utcOffset: l.utcOffset,
  };
  if (note) o.note = note;
  return o;
}

/** Inserts into a list sorted by instant; on the same instant a match without a note wins. */
function insertSorted(list: Occurrence[], o: Occurrence): void {
  let i = list.length;
  while (i > 0 && list[i - 1].epochMs > o.epochMs) i--;
  if (i > 0 && list[i - 1].epochMs === o.epochMs) {
    if (list[i - 1].note === NOTE_SHIFTED && o.note !== NOTE_SHIFTED) list[i - 1] = o;
    return;
  }
  list.splice(i, 0, o);
}

/**
 * The instants of `spec` strictly after `fromMs`, in order, until `count` of them or the last one
 * at or before `untilMs` (inclusive), whichever comes first; at least one of the two bounds must
 * be given. Fewer than `count` without `untilMs` means the expression matches nothing more within
 * SCAN_LIMIT_MS of wall time (none at all: it never fires).
 *
 * Throws CronError (`cron`) for an invalid expression and ValidationError `unknown_timezone`
 * (`timezone`) for an unknown zone.
 */
export function occurrences(spec: RecurrenceSpec, fromMs: number, opts: { count?: number; untilMs?: number }): Occurrence[] {
  const count = opts.count ?? Number.POSITIVE_INFINITY;
  const untilMs = opts.untilMs ?? Number.POSITIVE_INFINITY;
  if (!Number.isFinite(count) && !Number.isFinite(untilMs)) throw new Error('occurrences() needs a count or an untilMs');
  const cron = compile(typeof spec.cron === 'string' ? spec.cron.trim() : spec.cron, 'cron');
  const zone = spec.timezone;
  if (!isValidZone(zone)) {
    throw new ValidationError('unknown_timezone', `unknown time zone "${zone}": use an IANA name such as Europe/Berlin`, 'timezone');
  }
  const gap = spec.dstGap ?? DEFAULT_DST_GAP;
  const overlap = spec.dstOverlap ?? DEFAULT_DST_OVERLAP;
  const out: Occurrence[] = [];
  if (count <= 0 || untilMs <= fromMs) return out;

  // The earliest wall time whose instant can be after fromMs: fromMs's own wall time, or earlier
  // by the drop if the clocks go back within MAX_OFFSET_DROP_MS (the repeated times come again).
  const startWall = Math.min(wallOf(fromMs, zone), wallOf(fromMs + MAX_OFFSET_DROP_MS, zone) - MAX_OFFSET_DROP_MS);
  // Matches (whole seconds) at or after startWall: croner's enumeration starts after its argument.
  const it = cron.enumerate(new Date(Math.ceil(startWall / 1000) * 1000 - 1000));

  /** Candidates not yet certain to be in order: a later wall time can still give an earlier instant. */
  const pending: Occurrence[] = [];
  let lastMatchWall = startWall;
  const emit = (o: Occurrence): boolean => {
    if (o.epochMs > untilMs) return false;
    out.push(o);
    return out.length < count;
  };

  for (;;) {
    const step = it.next();
    if (step.done) break;
    const wall = step.value.getTime();
    if (wall - lastMatchWall > SCAN_LIMIT_MS) break;
    lastMatchWall = wall;
    const local = fieldsOf(wall);
    // `low`: no instant of this wall time, nor of any later one, is earlier than this.
    let low: number;
    const found: Occurrence[] = [];
    let resolved: ReturnType<typeof resolveLocalTime> | null = null;
    try {
      resolved = resolveLocalTime(local, zone, 'earlier');
    } catch (err) {
      if (!(err instanceof ShipclockError) || err.code !== 'nonexistent_local_time') throw err;
    }
    if (resolved) {
      low = resolved.epochMs;
      if (resolved.ambiguous) {
        found.push(occurrenceAt(resolved.epochMs, zone, NOTE_REPEATED));
        if (overlap === 'both') found.push(occurrenceAt(resolveLocalTime(local, zone, 'later').epochMs, zone, NOTE_REPEATED));
      } else {
        found.push({ epochMs: resolved.epochMs, local, utcOffset: resolved.utcOffset });
      }
    } else {
      // In a gap. Temporal's 'earlier' reads it with the offset after the change (an instant
      // before the change, below every later wall time's instant); 'compatible' with the offset
      // before it, which is the wall time moved forward by the gap's length.
      const wallTime = Temporal.PlainDateTime.from(local);
      low = wallTime.toZonedDateTime(zone, { disambiguation: 'earlier' }).epochMilliseconds;
      if (gap === 'shift') found.push(occurrenceAt(wallTime.toZonedDateTime(zone, { disambiguation: 'compatible' }).epochMilliseconds, zone, NOTE_SHIFTED));
    }
    while (pending.length && pending[0].epochMs < low) {
      if (!emit(pending.shift()!)) return out;
    }
    if (low > untilMs) return out;
    for (const o of found) if (o.epochMs > fromMs) insertSorted(pending, o);
  }
  for (const o of pending) if (!emit(o)) break;
  return out;
}

/** The first instant of `spec` strictly after `fromMs` (within SCAN_LIMIT_MS), or null. */
export function nextOccurrence(spec: RecurrenceSpec, fromMs: number, untilMs?: number): Occurrence | null {
  return occurrences(spec, fromMs, { count: 1, untilMs })[0] ?? null;
}
