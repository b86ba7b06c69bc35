/**
 * Wall-clock time in an IANA zone → UTC instant, and back. Pure functions of their inputs:
 * nothing here reads the clock. Conversions go through the Temporal polyfill, which uses the
 * zone rules of the runtime's ICU data, never a fixed offset.
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

/** True when `zone` names a time zone the runtime knows (IANA names and their aliases, not fixed offsets). */
export function isValidZone(zone: string): boolean {
  if (typeof zone !== 'string' || zone.length === 0 || zone.length > 64) return false;
  // Temporal also accepts fixed offsets ("+05:00"); a fixed offset ignores daylight saving, the
  // very bug shipclock replaces, so only named zones are accepted.
  if (/^[+-]/.test(zone)) return false;
  try {
    Temporal.Now.instant().toZonedDateTimeISO(zone);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves a wall-clock time in `zone` to one UTC instant.
 * Throws ValidationError: `unknown_timezone` (field `timezone`), `invalid_date` (the field that is
 * out of range), `nonexistent_local_time` (skipped by a DST change), `ambiguous_local_time`
 * (occurs twice and `disambiguation` is `reject`).
 */
export function resolveLocalTime(local: LocalTime, zone: string, disambiguation: Disambiguation = 'earlier'): ResolvedTime {
  if (!isValidZone(zone)) {
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
  const daysInMonth = Temporal.PlainYearMonth.from({ year: local.year, month: local.month }).daysInMonth;
  if (!Number.isInteger(local.day) || local.day < 1 || local.day > daysInMonth) {
    throw new ValidationError('invalid_date', `day must be from 1 to ${daysInMonth} in ${local.year}-${String(local.month).padStart(2, '0')}`, 'day');
  }
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
  const z = Temporal.Instant.fromEpochMilliseconds(epochMs).toZonedDateTimeISO(zone);
  return { year: z.year, month: z.month, day: z.day, hour: z.hour, minute: z.minute, second: z.second, utcOffset: z.offset };
}

/** Every zone the runtime knows, for pickers; "UTC" first. */
export function listZones(): string[] {
  const zones = (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf('timeZone');
  return ['UTC', ...zones.filter((z) => z !== 'UTC')];
}
