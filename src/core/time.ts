/**
 * Wall-clock time in an IANA zone → UTC instant, and back. Pure functions of their inputs:
 * nothing here reads the clock. Conversions use the zone rules of the runtime's ICU data, never
 * a fixed offset.
 *
 * Two paths give the same answers. The fast one reads the zone's offsets from a cached
 * `Intl.DateTimeFormat`, with the algorithm and the formatter the Temporal polyfill uses inside
 * (the offsets one day before and one day after, then each candidate instant that maps back to
 * the wall time), in plain numbers instead of jsbi big integers and Temporal objects: about a
 * tenth of the cost. It answers only when exactly one instant matches. A DST gap or overlap,
 * and a zone Intl cannot take (an ISO string with a fixed offset), go to Temporal, which words
 * the errors and picks between the two instants of an overlap.
 */
import { Temporal } from '@js-temporal/polyfill';
import { ValidationError } from './errors.ts';

export interface LocalTime {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** How to choose between the two instants of a local time that occurs twice (a DST fall-back). */
export type Disambiguation = 'earlier' | 'later' | 'reject';

export interface ResolvedTime {
  /** The UTC instant, epoch milliseconds. */
  epochMs: number;
  /** The zone's offset at that instant, as "+02:00". */
  utcOffset: string;
  /** True when the local time occurred twice and `disambiguation` picked one. */
  ambiguous: boolean;
}

const DAY_MS = 86_400_000;
/** 9999-12-31T23:59:59.999Z: the fast path of localTimeAt covers 1970 to 9999, as resolveLocalTime does. */
const MAX_FAST_MS = 253_402_300_799_999;

interface Zone {
  /** The name as the time zone database spells it ("europe/berlin" → "Europe/Berlin"). */
  id: string;
  /** The zone is UTC itself: no formatter needed. */
  utc: boolean;
  /** Formats an instant as the zone's wall time, "1/15/2027, 09:00:00"; undefined: Temporal only. */
  fmt: Intl.DateTimeFormat | undefined;
}

/**
 * Valid zones by the string the caller gave, each with its formatter (creating one costs far
 * more than using it). About 600 IANA names and aliases exist, but Temporal also takes any
 * upper/lower-case spelling of them, which a client could vary without end: past ZONE_CACHE_MAX
 * entries the oldest one goes. Invalid names are never cached.
 */
const zones = new Map<string, Zone>();
export const ZONE_CACHE_MAX = 2000;

/** How many zones are cached (for tests: the cache must stay bounded). */
export function zoneCacheSize(): number {
  return zones.size;
}

/** Letters first, then letters, digits, "_", "+", "-", in "/"-separated parts. */
const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;

function zoneOf(zone: string): Zone | undefined {
  const cached = zones.get(zone);
  if (cached) return cached;
  if (typeof zone !== 'string' || zone.length === 0 || zone.length > 64) return undefined;
  // Temporal also accepts fixed offsets ("+05:00") and reads a zone out of an ISO date-time
  // ("2020-01-01T00:00+05:00", "...Z"). A fixed offset ignores daylight saving, the very bug
  // shipclock replaces, so only what is shaped like an IANA name (Europe/Berlin, Etc/GMT+5,
  // America/Port-au-Prince, UTC) is accepted, and only if it names a zone, not an offset.
  if (!IANA_NAME.test(zone)) return undefined;
  let id: string;
  try {
    id = Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(zone).timeZoneId;
  } catch {
    return undefined;
  }
  if (/^[+-]/.test(id)) return undefined;
  const z: Zone = { id, utc: id === 'UTC', fmt: undefined };
  if (!z.utc && !/^[+-]/.test(id)) {
    try {
      // The polyfill's own formatter options, with h23 instead of its era and "24" workarounds:
      // the fast path only sees years 1969 to 10000.
      z.fmt = new Intl.DateTimeFormat('en-US', {
        timeZone: id.toLowerCase(), hourCycle: 'h23',
        year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
      });
    } catch {
      // Temporal knows the zone but Intl does not take its name: Temporal alone handles it.
    }
  }
  if (zones.size >= ZONE_CACHE_MAX) zones.delete(zones.keys().next().value as string);
  zones.set(zone, z);
  return z;
}

/** The zone's offset at `epochMs` in milliseconds (NaN if the formatter says something unexpected). */
function offsetAt(fmt: Intl.DateTimeFormat, epochMs: number): number {
  const p = fmt.format(epochMs).split(/\D+/); // M, D, YYYY, HH, MM, SS
  const ms = ((epochMs % 1000) + 1000) % 1000;
  return Date.UTC(+p[2], +p[0] - 1, +p[1], +p[3], +p[4], +p[5], ms) - epochMs;
}

/** "+05:45", "-03:00", and "-00:44:30" for the odd offset with seconds, as Temporal writes them. */
function formatOffset(offsetMs: number): string {
  const abs = Math.abs(offsetMs) / 1000;
  const two = (n: number) => (n < 10 ? `0${n}` : String(n));
  const s = abs % 60;
  return `${offsetMs < 0 ? '-' : '+'}${two(Math.floor(abs / 3600))}:${two(Math.floor(abs / 60) % 60)}${s ? `:${two(s)}` : ''}`;
}

/** True when `zone` names a time zone the runtime knows (IANA names and their aliases, not fixed offsets). */
export function isValidZone(zone: string): boolean {
  return zoneOf(zone) !== undefined;
}

/**
 * A zone name as the time zone database spells it ("europe/berlin" → "Europe/Berlin"; an alias
 * such as "US/Eastern" stays itself); an unknown name is returned as given.
 */
export function canonicalZone(zone: string): string {
  return zoneOf(zone)?.id ?? zone;
}

/**
 * Resolves a wall-clock time in `zone` to one UTC instant.
 * Throws ValidationError: `unknown_timezone` (field `timezone`), `invalid_date` (the field that is
 * out of range), `nonexistent_local_time` (skipped by a DST change), `ambiguous_local_time`
 * (occurs twice and `disambiguation` is `reject`).
 */
export function resolveLocalTime(local: LocalTime, zone: string, disambiguation: Disambiguation = 'earlier'): ResolvedTime {
  const z = zoneOf(zone);
  if (!z) {
    throw new ValidationError('unknown_timezone', `unknown time zone "${zone}": use an IANA name such as Europe/Berlin`, 'timezone');
  }
  const limits: Array<[keyof LocalTime, number, number]> = [
    ['year', 1970, 9999], ['month', 1, 12], ['hour', 0, 23], ['minute', 0, 59], ['second', 0, 59],
  ];
  for (const [field, min, max] of limits) {
    const v = local[field];
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new ValidationError('invalid_date', `${field} must be an integer from ${min} to ${max}`, field);
    }
  }
  // Day 0 of the next month is the last of this one (years 1970-9999, where Date.UTC is ISO).
  const daysInMonth = new Date(Date.UTC(local.year, local.month, 0)).getUTCDate();
  if (!Number.isInteger(local.day) || local.day < 1 || local.day > daysInMonth) {
    throw new ValidationError('invalid_date', `day must be from 1 to ${daysInMonth} in ${local.year}-${String(local.month).padStart(2, '0')}`, 'day');
  }

  const wallMs = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second);
  if (z.utc) return { epochMs: wallMs, utcOffset: '+00:00', ambiguous: false };
  if (z.fmt) {
    const before = offsetAt(z.fmt, wallMs - DAY_MS);
    const after = offsetAt(z.fmt, wallMs + DAY_MS);
    // An offset fits when the instant it gives shows the same wall time in the zone.
    const fitsBefore = offsetAt(z.fmt, wallMs - before) === before;
    const fitsAfter = before !== after && offsetAt(z.fmt, wallMs - after) === after;
    if (fitsBefore !== fitsAfter) {
      const offset = fitsBefore ? before : after;
      return { epochMs: wallMs - offset, utcOffset: formatOffset(offset), ambiguous: false };
    }
  }
  return resolveWithTemporal(local, zone, disambiguation);
}

/** The gap, the overlap and the odd zone: Temporal decides and words the error. */
function resolveWithTemporal(local: LocalTime, zone: string, disambiguation: Disambiguation): ResolvedTime {
  const wall = Temporal.PlainDateTime.from(local, { overflow: 'reject' });
  const earlier = wall.toZonedDateTime(zone, { disambiguation: 'earlier' });
  const later = wall.toZonedDateTime(zone, { disambiguation: 'later' });
  if (!earlier.toPlainDateTime().equals(wall)) {
    // Temporal moved the time: it falls in a gap (clocks jumped forward over it).
    throw new ValidationError(
      'nonexistent_local_time',
      `${wall.toString()} does not exist in ${zone}: the clocks skip it for daylight saving time`,
      'hour',
    );
  }
  const ambiguous = earlier.epochMilliseconds !== later.epochMilliseconds;
  if (ambiguous && disambiguation === 'reject') {
    throw new ValidationError(
      'ambiguous_local_time',
      `${wall.toString()} occurs twice in ${zone} (daylight saving time ends): choose disambiguation "earlier" (${earlier.offset}) or "later" (${later.offset})`,
      'disambiguation',
    );
  }
  const chosen = ambiguous && disambiguation === 'later' ? later : earlier;
  return { epochMs: chosen.epochMilliseconds, utcOffset: chosen.offset, ambiguous };
}

/** The wall-clock fields and offset of an instant in `zone`. */
export function localTimeAt(epochMs: number, zone: string): LocalTime & { utcOffset: string } {
  const z = zoneOf(zone);
  if (z && (z.utc || z.fmt) && Number.isSafeInteger(epochMs) && epochMs >= 0 && epochMs <= MAX_FAST_MS) {
    const offset = z.fmt ? offsetAt(z.fmt, epochMs) : 0;
    if (!Number.isNaN(offset)) {
      const d = new Date(epochMs + offset);
      return {
        year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(),
        hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), utcOffset: formatOffset(offset),
      };
    }
  }
  // Fixed offsets, instants before 1970 or after 9999, fractions of a millisecond: Temporal
  // (which also throws the RangeError for an unknown zone).
  const t = Temporal.Instant.fromEpochMilliseconds(epochMs).toZonedDateTimeISO(zone);
  return { year: t.year, month: t.month, day: t.day, hour: t.hour, minute: t.minute, second: t.second, utcOffset: t.offset };
}

/** Every zone the runtime knows, for pickers; "UTC" first. */
export function listZones(): string[] {
  const zones = (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf('timeZone');
  return ['UTC', ...zones.filter((z) => z !== 'UTC')];
}
