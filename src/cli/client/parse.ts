/**
 * Parsing of the client's option values. Pure functions: a bad value throws UsageError, which
 * the CLI reports with exit code 2 like any other usage error.
 */
import { Temporal } from '@js-temporal/polyfill';
import { isValidZone, type LocalTime } from '../../core/time.ts';
import { STATES, type DeploymentState } from '../../core/state.ts';

export class UsageError extends Error {}

/** "YYYY-MM-DD HH:MM[:SS]" (a "T" instead of the space is accepted) → wall-clock fields. */
export function parseAt(raw: string): LocalTime {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(raw.trim());
  if (!m) throw new UsageError(`--at must be "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS", got "${raw}"`);
  const [year, month, day, hour, minute, second = 0] = m.slice(1).map((v) => (v === undefined ? 0 : Number(v)));
  // Calendar validity (February 30th, hour 24) is Temporal's to judge, not ours.
  try {
    Temporal.PlainDateTime.from({ year, month, day, hour, minute, second }, { overflow: 'reject' });
  } catch {
    throw new UsageError(`--at "${raw}" is not a valid date and time`);
  }
  return { year, month, day, hour, minute, second };
}

/** "15m", "90s", "1h", "1h30m" or a plain number of seconds → seconds. */
export function parseDuration(raw: string, option = '--lead'): number {
  const text = raw.trim().toLowerCase();
  if (/^\d+$/.test(text)) return Number(text);
  if (!/^(\d+h)?(\d+m)?(\d+s)?$/.test(text) || text === '') {
    throw new UsageError(`${option} must be a duration such as 15m, 90s, 1h or 1h30m, got "${raw}"`);
  }
  // "1h30m" is ISO 8601's "PT1H30M": let Temporal do the arithmetic.
  return Temporal.Duration.from(`PT${text.toUpperCase()}`).total({ unit: 'seconds' });
}

/** An IANA zone name the runtime knows. */
export function parseZone(raw: string): string {
  if (!isValidZone(raw)) throw new UsageError(`--tz: unknown time zone "${raw}" (use an IANA name such as Europe/Berlin)`);
  return raw;
}

export function parseState(raw: string): DeploymentState {
  if (!(STATES as readonly string[]).includes(raw)) {
    throw new UsageError(`--state must be one of ${STATES.join(', ')}, got "${raw}"`);
  }
  return raw as DeploymentState;
}

export function parseLimit(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new UsageError(`--limit must be an integer from 1 to 10000, got "${raw}"`);
  return n;
}

/** The machine's zone, what --tz defaults to. */
export function machineZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function looksLikeId(s: string): boolean {
  return UUID.test(s);
}
