/**
 * "Is this instant frozen?" for the features that need it (scheduling, rescheduling, the fire
 * gate, occurrences, the calendar, reminders), on top of the pure maths of src/core/freeze.ts.
 * Each answer reads the team's live freezes in one statement.
 */
import { type Constraint, coveringAt, type FreezeSpec, type FreezeWindow, NEXT_ALLOWED_SEARCH_LIMIT_MS, nextAllowed, windowsFor } from '../core/freeze.ts';
import { FrozenError } from '../core/errors.ts';
import { localTimeAt } from '../core/time.ts';
import type { Queryable } from '../db/pool.ts';
import { liveFreezes, liveFreezesStamped, specOf } from '../db/sql/freezes.ts';

export { NEXT_ALLOWED_SEARCH_LIMIT_MS };

/** A freeze window as other features see it. */
export interface FreezeWindowOut {
  id: string;
  name: string;
  reason: string | null;
  start: Date;
  end: Date;
  /** The apps it covers; null: every app of the team. */
  apps: string[] | null;
}

/** "2026-12-27 08:00 Europe/Berlin" (seconds only when not :00). */
export function fmtIn(epochMs: number, zone: string): string {
  const l = localTimeAt(epochMs, zone);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${l.year}-${p(l.month)}-${p(l.day)} ${p(l.hour)}:${p(l.minute)}${l.second ? `:${p(l.second)}` : ''} ${zone}`;
}

/** Why a deployment of `appName` at `atMs` is held by window `w`, in `zone` (for the timeline and the row's error). */
export function heldWhy(w: FreezeWindow, appName: string, zone: string): string {
  return `held: "${appName}" is inside the deploy freeze "${w.freeze.name}"${w.freeze.reason ? ` (${w.freeze.reason})` : ''} until ${fmtIn(w.endMs, zone)}`;
}

export async function loadSpecs(db: Queryable, teamId: string, from: Date | null = null): Promise<FreezeSpec[]> {
  return (await liveFreezes(db, [teamId], from)).map(specOf);
}

/**
 * The team's freeze windows overlapping [fromUtc, toUtc), by start; with `appIds`, only those of
 * freezes covering at least one of them. A recurring freeze yields at most MAX_WINDOWS_PER_CALL
 * windows per call (src/core/freeze.ts).
 */
export async function freezeWindows(db: Queryable, teamId: string, fromUtc: Date, toUtc: Date, appIds?: string[]): Promise<FreezeWindowOut[]> {
  const specs = (await loadSpecs(db, teamId, fromUtc)).filter((f) => !appIds || f.apps === null || f.apps.some((a) => appIds.includes(a)));
  return windowsFor(specs, null, fromUtc.getTime(), toUtc.getTime()).map((w) => ({
    id: w.freeze.id, name: w.freeze.name, reason: w.freeze.reason, start: new Date(w.startMs), end: new Date(w.endMs), apps: w.freeze.apps,
  }));
}

/**
 * The first instant ≥ `fromUtc` at which no freeze covers any of `appIds` (all of them may deploy
 * at that same instant). Back-to-back, overlapping and recurring windows are one stretch. Null
 * when there is none within NEXT_ALLOWED_SEARCH_LIMIT_MS (366 days) of `fromUtc`.
 */
export async function nextAllowedAt(db: Queryable, teamId: string, appIds: string[], fromUtc: Date): Promise<Date | null> {
  const specs = await loadSpecs(db, teamId);
  const t = nextAllowed(specs, appIds.map((appId) => ({ appId, offsetMs: 0 })), fromUtc.getTime());
  return t === null ? null : new Date(t);
}

/** One deployment a scheduling request would write: its app and instant. */
export interface Part {
  appId: string;
  appName: string;
  runAtMs: number;
  /** 'dependency' for the row deployed `offsetMs` before the requested instant. */
  role: 'deployment' | 'dependency';
  offsetMs: number;
}

export interface FrozenVerdict {
  window: FreezeWindow;
  part: Part;
  /** The first requested instant (of the deployment itself, not its dependency) no freeze covers for any part; null: none within the bound. */
  nextAllowedMs: number | null;
}

/** The freeze (if any) covering one of `parts`, and where the next allowed instant is. `specs` defaults to the team's live freezes. */
export async function findFrozen(db: Queryable, teamId: string, parts: Part[], specs?: FreezeSpec[]): Promise<FrozenVerdict | null> {
  return frozenIn(specs ?? await loadSpecs(db, teamId), parts);
}

/** findFrozen on specs at hand (pure). */
export function frozenIn(specs: FreezeSpec[], parts: Part[]): FrozenVerdict | null {
  if (!specs.length) return null;
  for (const part of parts) {
    const window = coveringAt(specs, part.appId, part.runAtMs);
    if (!window) continue;
    const main = parts.find((p) => p.role === 'deployment')!;
    const constraints: Constraint[] = parts.map((p) => ({ appId: p.appId, offsetMs: p.offsetMs }));
    return { window, part, nextAllowedMs: nextAllowed(specs, constraints, main.runAtMs) };
  }
  return null;
}

/** The 409 `frozen` for a verdict, worded in the request's zone. */
export function frozenError(v: FrozenVerdict, zone: string): FrozenError {
  const f = v.window.freeze;
  const who = v.part.role === 'dependency' ? `its dependency "${v.part.appName}", which would deploy at ${fmtIn(v.part.runAtMs, zone)},` : `"${v.part.appName}" at ${fmtIn(v.part.runAtMs, zone)}`;
  const next = v.nextAllowedMs === null
    ? `no time within ${NEXT_ALLOWED_SEARCH_LIMIT_MS / 86_400_000} days is free of freezes`
    : `the next allowed time is ${fmtIn(v.nextAllowedMs, zone)}`;
  return new FrozenError(
    `${who} falls inside the deploy freeze "${f.name}"${f.reason ? ` (${f.reason})` : ''}, which ends ${fmtIn(v.window.endMs, zone)}; ${next}. An owner may schedule it anyway with override_freeze: {reason}`,
    { id: f.id, name: f.name },
    v.nextAllowedMs === null ? null : new Date(v.nextAllowedMs).toISOString(),
  );
}

/** A team's live freezes as this process last loaded them, with their stamp (freezeStampSql). */
export interface StampedSpecs {
  stamp: string;
  specs: FreezeSpec[];
}

/** What a team without freezes looks like: the first guess for a team not seen yet. */
const NO_FREEZES: StampedSpecs = { stamp: '', specs: [] };
/** Bounds the cache below (cleared when full: a miss costs one query). */
const SPEC_CACHE_MAX_TEAMS = 10_000;
/**
 * Teams' live freezes, by team id. Never trusted on its own: the scheduling statement compares
 * the stamp a verdict was computed from with the team's stamp in its own snapshot and writes
 * nothing when they differ (src/services/deployments.ts), so a stale entry costs a reload, never
 * a wrong answer. A team never seen is first assumed to have no freezes.
 */
const specCache = new Map<string, StampedSpecs>();

/** The team's freezes as last loaded here (NO_FREEZES for a team not seen yet). */
export function cachedSpecs(teamId: string): StampedSpecs {
  return specCache.get(teamId) ?? NO_FREEZES;
}

/** Loads the team's live freezes and their stamp in one statement, and caches them. */
export async function reloadSpecs(db: Queryable, teamId: string): Promise<StampedSpecs> {
  const { stamp, rows } = await liveFreezesStamped(db, teamId);
  const entry = { stamp, specs: rows.map(specOf) };
  if (specCache.size >= SPEC_CACHE_MAX_TEAMS) specCache.clear();
  specCache.set(teamId, entry);
  return entry;
}
