/**
 * Deploy freezes: the windows in which a freeze forbids deploying, and the first instant at or
 * after a given one that no freeze covers. Pure: the caller passes the freezes and the instants.
 *
 * - A one-off freeze is one window [start, end), both resolved from wall times in its zone.
 * - A recurring freeze opens a window at each instant of its cron expression in its zone
 *   (src/core/recurrence.ts, DST-exact), lasting `durationSeconds` of *wall-clock* time in that
 *   zone: "every Friday 16:00 for 64 hours" ends on Monday 08:00 local on the weekend clocks
 *   change too (63 or 65 real hours). An end that falls in a DST gap moves forward by the gap;
 *   one that occurs twice is the earlier instant (Temporal's "compatible").
 * - Windows are half-open: an instant equal to a window's end is allowed. That makes
 *   back-to-back freezes one stretch, and the end itself the next allowed instant.
 */
import { Temporal } from '@js-temporal/polyfill';
import { ShipclockError } from './errors.ts';
import { occurrences } from './recurrence.ts';
import { type LocalTime, resolveLocalTime } from './time.ts';

export interface FreezeSpec {
  id: string;
  name: string;
  reason: string | null;
  /** The apps it covers; null: every app of the team. */
  apps: string[] | null;
  timezone: string;
  kind: 'once' | 'recurring';
  /** one-off: the window's instants, epoch ms */
  startMs?: number;
  endMs?: number;
  /** recurring */
  cron?: string;
  durationSeconds?: number;
}

export interface FreezeWindow {
  freeze: FreezeSpec;
  startMs: number;
  endMs: number;
}

/**
 * How far ahead `nextAllowed` searches: a year. A freeze pattern that leaves no gap within it
 * ("every minute for two minutes") answers null rather than scanning without end.
 */
export const NEXT_ALLOWED_SEARCH_LIMIT_MS = 366 * 86_400_000;
/**
 * The most windows `nextAllowed` steps over in a row before it gives up (null), whatever the
 * date: a real freeze chains a few (back to back, overlapping); a pattern with no gap ("every
 * hour for two hours") would otherwise cost a year of windows (measured: 7.5 s for 8,784).
 */
export const NEXT_ALLOWED_MAX_STEPS = 500;
/** The stretch `nextAllowed` asks the windows of at a time. */
const SEARCH_CHUNK_MS = 7 * 86_400_000;
/** The most windows one recurring freeze yields per call (a calendar range, a search chunk). */
export const MAX_WINDOWS_PER_CALL = 10_000;
/** Wall-clock and real durations differ by at most this (one DST change of up to 3 h). */
const MAX_DST_SHIFT_MS = 3 * 3_600_000;

export function appliesTo(f: FreezeSpec, appId: string): boolean {
  return f.apps === null || f.apps.includes(appId);
}

/** `local` plus `seconds` of wall-clock time, resolved in `zone` ("compatible": a gap moves forward, an overlap takes the earlier). */
export function addWallSeconds(local: LocalTime, seconds: number, zone: string): number {
  const wall = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second) + seconds * 1000;
  const d = new Date(wall);
  const l: LocalTime = { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
  try {
    return resolveLocalTime(l, zone, 'earlier').epochMs;
  } catch (err) {
    if (!(err instanceof ShipclockError) || err.code !== 'nonexistent_local_time') throw err;
    return Temporal.PlainDateTime.from(l).toZonedDateTime(zone, { disambiguation: 'compatible' }).epochMilliseconds;
  }
}

/**
 * The windows of `f` that overlap [fromMs, toMs): end > fromMs and start < toMs, by start. A
 * recurring freeze yields at most MAX_WINDOWS_PER_CALL of them.
 */
export function windowsOf(f: FreezeSpec, fromMs: number, toMs: number): FreezeWindow[] {
  if (f.kind === 'once') {
    return f.endMs! > fromMs && f.startMs! < toMs ? [{ freeze: f, startMs: f.startMs!, endMs: f.endMs! }] : [];
  }
  const span = f.durationSeconds! * 1000 + MAX_DST_SHIFT_MS;
  const out: FreezeWindow[] = [];
  // Occurrences strictly after (from − the longest a window can last) can still cover `from`.
  for (const o of occurrences({ cron: f.cron!, timezone: f.timezone }, fromMs - span, { untilMs: toMs - 1, count: MAX_WINDOWS_PER_CALL })) {
    const endMs = addWallSeconds(o.local, f.durationSeconds!, f.timezone);
    if (endMs > fromMs && endMs > o.epochMs) out.push({ freeze: f, startMs: o.epochMs, endMs });
  }
  return out;
}

/** The windows of the freezes that cover `appId` and overlap [fromMs, toMs), by start. */
export function windowsFor(freezes: readonly FreezeSpec[], appId: string | null, fromMs: number, toMs: number): FreezeWindow[] {
  const out: FreezeWindow[] = [];
  for (const f of freezes) if (appId === null || appliesTo(f, appId)) out.push(...windowsOf(f, fromMs, toMs));
  return out.sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
}

/** Of `windows` (any apps), the one covering `atMs` for `appId` that ends last, or null. */
export function coveringIn(windows: readonly FreezeWindow[], appId: string, atMs: number): FreezeWindow | null {
  let best: FreezeWindow | null = null;
  for (const w of windows) {
    if (w.startMs <= atMs && atMs < w.endMs && appliesTo(w.freeze, appId) && (!best || w.endMs > best.endMs)) best = w;
  }
  return best;
}

/** The window covering `atMs` for `appId` that ends last, or null when none does. */
export function coveringAt(freezes: readonly FreezeSpec[], appId: string, atMs: number): FreezeWindow | null {
  return coveringIn(windowsFor(freezes, appId, atMs, atMs + 1), appId, atMs);
}

/**
 * For many instants at once (a claimed batch, a schedule's occurrences): the windows of all
 * `freezes` over [fromMs, toMs], computed once, then `coveringIn` for each instant. A recurring
 * freeze contributes at most MAX_WINDOWS_PER_CALL windows (the fire gate re-checks at the instant).
 */
export function windowsOver(freezes: readonly FreezeSpec[], fromMs: number, toMs: number): FreezeWindow[] {
  return windowsFor(freezes, null, fromMs, toMs + 1);
}

/** One condition of a search: `appId` must not be frozen at (t − offsetMs). */
export interface Constraint {
  appId: string;
  /** How long before the candidate instant this app deploys (a dependency's lead); 0 for the app itself. */
  offsetMs: number;
}

/**
 * The first instant t ≥ fromMs at which, for every constraint, (t − offset) is covered by no
 * freeze of that app; null when there is none within NEXT_ALLOWED_SEARCH_LIMIT_MS (or `limitMs`)
 * or within NEXT_ALLOWED_MAX_STEPS windows in a row.
 * Back-to-back and overlapping windows, of one freeze or several, are one stretch.
 */
export function nextAllowed(freezes: readonly FreezeSpec[], constraints: readonly Constraint[], fromMs: number, limitMs = NEXT_ALLOWED_SEARCH_LIMIT_MS): number | null {
  const deadline = fromMs + limitMs;
  let t = fromMs;
  let chunkEnd = Number.NEGATIVE_INFINITY;
  let windows: FreezeWindow[][] = [];
  let steps = 0;
  for (;;) {
    if (t >= deadline || steps > NEXT_ALLOWED_MAX_STEPS) return null;
    if (t >= chunkEnd) {
      chunkEnd = t + SEARCH_CHUNK_MS;
      windows = constraints.map((c) => windowsFor(freezes, c.appId, t - c.offsetMs, chunkEnd - c.offsetMs));
    }
    let moved = false;
    constraints.forEach((c, i) => {
      for (const w of windows[i]) {
        const at = t - c.offsetMs;
        if (w.startMs <= at && at < w.endMs) {
          t = w.endMs + c.offsetMs;
          moved = true;
          steps++;
        }
      }
    });
    if (!moved) return t;
  }
}
