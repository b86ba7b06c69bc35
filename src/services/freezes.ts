/**
 * Deploy freezes (issue 11): create, list, read, change, delete; each in one transaction with
 * its audit entry. A freeze created (or widened) over deployments already scheduled holds them
 * (state `held`, listed in `conflicts`); one deleted (or narrowed) returns the deployments it
 * held, whose instant is still ahead, to `scheduled` unless another freeze still covers them.
 * Every change announces itself on the fire gates' channel, so that claimed rows are checked
 * again at their instant (the gate at the bottom of this file).
 *
 * Other features read freezes through freezeWindows() and nextAllowedAt() (./freeze-check.ts).
 */
import { recordAudit } from '../audit/record.ts';
import { ShipclockError, ValidationError, NotFoundError } from '../core/errors.ts';
import { coveringAt, coveringIn, type FreezeSpec, type FreezeWindow, windowsOf, windowsOver } from '../core/freeze.ts';
import { parseCron } from '../core/recurrence.ts';
import { canonicalZone, isValidZone, type LocalTime, resolveLocalTime } from '../core/time.ts';
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { type ClaimedRow, type DeploymentRow, dependencyStates, getDeploymentsByIds } from '../db/sql/deployments.ts';
import { insertEvents, notifyDue } from '../db/sql/events.ts';
import {
  type FreezeFields, type FreezeRow, getFreeze, heldBy, holdCandidates, holdDeployments, insertFreeze, listFreezes, liveFreezes, pendingDependents,
  reassignHeld, releaseHeld, softDeleteFreeze, specOf, updateFreezeRow,
} from '../db/sql/freezes.ts';
import { type FireGate, notifyGates } from '../scheduler/gates.ts';
import type { User } from './auth.ts';
import { decodeCursor, page } from './cursor.ts';
import { DEFAULT_DEPENDENCY_LEAD_SECONDS, toApi } from './deployments.ts';
import { findFrozen, fmtIn, frozenError, heldWhy, type Part } from './freeze-check.ts';

export { freezeWindows, nextAllowedAt, type FreezeWindowOut, NEXT_ALLOWED_SEARCH_LIMIT_MS } from './freeze-check.ts';

export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

export interface FreezeInput {
  name: string;
  timezone: string;
  start?: WallTime;
  end?: WallTime;
  cron?: string;
  duration_seconds?: number;
  apps?: string[] | null;
  reason?: string | null;
}

/** How many upcoming windows a freeze shows (`next_windows`). */
export const NEXT_WINDOWS = 3;

const p2 = (n: number) => String(n).padStart(2, '0');
const wallString = (w: WallTime) => `${w.year}-${p2(w.month)}-${p2(w.day)}T${p2(w.hour)}:${p2(w.minute)}:00`;
function wallOf(s: string | null): WallTime | null {
  if (!s) return null;
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)/.exec(s)!;
  return { year: +m[1], month: +m[2], day: +m[3], hour: +m[4], minute: +m[5] };
}

export function freezeToApi(f: FreezeRow, nowMs: number) {
  let next: Array<{ start: string; end: string }> = [];
  try {
    next = windowsOf(specOf(f), nowMs, f.kind === 'once' ? Number.POSITIVE_INFINITY : nowMs + 400 * 86_400_000).slice(0, NEXT_WINDOWS)
      .map((w) => ({ start: new Date(w.startMs).toISOString(), end: new Date(w.endMs).toISOString() }));
  } catch { /* a zone or expression this runtime no longer takes: no windows shown */ }
  return {
    id: f.id,
    name: f.name,
    reason: f.reason,
    kind: f.kind,
    timezone: f.timezone,
    start: wallOf(f.start_local),
    end: wallOf(f.end_local),
    start_at: f.start_at?.toISOString() ?? null,
    end_at: f.end_at?.toISOString() ?? null,
    cron: f.cron,
    duration_seconds: f.duration_seconds,
    apps: f.apps,
    next_windows: next,
    created_by: f.created_by_email,
    created_at: f.created_at.toISOString(),
    updated_at: f.updated_at.toISOString(),
  };
}

async function dbNow(db: Queryable): Promise<number> {
  return (await db.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0].now.getTime();
}

/** A wall time in the zone → instant; a 422 names `field.part` (start.hour, end.day). */
function resolveWall(w: WallTime, zone: string, field: string): number {
  const local: LocalTime = { ...w, second: 0 };
  try {
    return resolveLocalTime(local, zone, 'earlier').epochMs;
  } catch (err) {
    if (err instanceof ValidationError && err.field && err.field !== 'timezone') {
      throw new ValidationError(err.code, `${field}: ${err.message}`, `${field}.${err.field}`);
    }
    throw err;
  }
}

/** Checks and resolves the fields of a freeze (everything but the apps). Throws 422 naming the field. */
function checkFields(input: FreezeInput, nowMs: number): Omit<FreezeFields, 'apps'> {
  const name = String(input.name ?? '').trim();
  if (!name) throw new ValidationError('invalid_name', 'name must not be empty', 'name');
  if (!isValidZone(input.timezone)) {
    throw new ValidationError('unknown_timezone', `unknown time zone "${input.timezone}": use an IANA name such as Europe/Berlin`, 'timezone');
  }
  const timezone = canonicalZone(input.timezone);
  const reason = input.reason?.trim() || null;
  const once = input.start !== undefined || input.end !== undefined;
  const recurring = input.cron !== undefined || input.duration_seconds !== undefined;
  if (once && recurring) throw new ValidationError('invalid_freeze', 'give either start and end (one-off) or cron and duration_seconds (recurring), not both', 'cron');
  if (once) {
    if (!input.start) throw new ValidationError('invalid_freeze', 'start is required with end', 'start');
    if (!input.end) throw new ValidationError('invalid_freeze', 'end is required with start', 'end');
    const startMs = resolveWall(input.start, timezone, 'start');
    const endMs = resolveWall(input.end, timezone, 'end');
    if (endMs <= startMs) throw new ValidationError('invalid_window', `end (${fmtIn(endMs, timezone)}) must be after start (${fmtIn(startMs, timezone)})`, 'end');
    if (endMs <= nowMs) throw new ValidationError('past_instant', `end (${fmtIn(endMs, timezone)}) is in the past: the freeze would never apply`, 'end');
    return {
      name, reason, kind: 'once', timezone, start_local: wallString(input.start), end_local: wallString(input.end),
      start_at: new Date(startMs), end_at: new Date(endMs), cron: null, duration_seconds: null,
    };
  }
  if (input.cron === undefined) throw new ValidationError('invalid_freeze', 'give start and end (one-off) or cron and duration_seconds (recurring)', 'start');
  if (input.duration_seconds === undefined) throw new ValidationError('invalid_freeze', 'duration_seconds is required with cron', 'duration_seconds');
  const cron = parseCron(input.cron).expr;
  const spec: FreezeSpec = { id: '', name, reason, apps: null, timezone, kind: 'recurring', cron, durationSeconds: input.duration_seconds };
  if (!windowsOf(spec, nowMs, nowMs + 8 * 366 * 86_400_000).length) {
    throw new ValidationError('never_fires', `"${cron}" would never start a freeze in ${timezone}: no date matches it`, 'cron');
  }
  return { name, reason, kind: 'recurring', timezone, start_local: null, end_local: null, start_at: null, end_at: null, cron, duration_seconds: input.duration_seconds };
}

async function checkApps(db: Queryable, teamId: string, apps: string[] | null | undefined): Promise<string[] | null> {
  if (apps === undefined || apps === null) return null;
  const unique = [...new Set(apps)];
  if (!unique.length) throw new ValidationError('invalid_apps', 'apps must name at least one app, or be left out for every app of the team', 'apps');
  const r = await db.query<{ id: string }>('SELECT id FROM apps WHERE team_id = $1 AND id = ANY($2::uuid[]) AND deleted_at IS NULL', [teamId, unique]);
  const known = new Set(r.rows.map((x) => x.id));
  const missing = unique.find((a) => !known.has(a));
  if (missing) throw new ValidationError('unknown_app', `no app ${missing} in your team`, 'apps');
  return unique;
}

async function load(db: Queryable, teamId: string, id: string, forUpdate = false): Promise<FreezeRow> {
  const f = await getFreeze(db, teamId, id, forUpdate);
  if (!f) throw new NotFoundError('freeze');
  return f;
}

/**
 * Holds the team's scheduled deployments (ahead, not overridden, not being fired) that `f`
 * covers, and those that depend on one of them. Returns them, held, for `conflicts`.
 */
async function holdCovered(c: Queryable, teamId: string, f: FreezeSpec): Promise<DeploymentRow[]> {
  const once = f.kind === 'once';
  const candidates = await holdCandidates(c, teamId, f.apps, once ? new Date(f.startMs!) : null, once ? new Date(f.endMs!) : null);
  const items: Array<{ id: string; heldBy: string; why: string }> = [];
  for (const r of candidates) {
    const w = coveringAt([f], r.app_id, r.run_at.getTime());
    if (w) items.push({ id: r.id, heldBy: f.id, why: heldWhy(w, r.app_name, r.timezone) });
  }
  const held = await holdDeployments(c, items);
  const dependents = await pendingDependents(c, held);
  const depItems = dependents.map((d) => ({ id: d.id, heldBy: f.id, why: `held: its dependency ${d.dependency_id} is held by the deploy freeze "${f.name}"` }));
  const heldDeps = await holdDeployments(c, depItems);
  const why = new Map([...items, ...depItems].map((i) => [i.id, i.why]));
  const all = [...held, ...heldDeps];
  await insertEvents(c, all.map((id) => ({ id, state: 'held', message: why.get(id) ?? 'held' })));
  return getDeploymentsByIds(c, all);
}

/**
 * Returns the deployments `freezeId` holds to `scheduled` when their instant is still ahead and
 * no live freeze (the team's, as they are now) covers them; those another freeze covers are
 * held by that one instead. Returns the ids released.
 */
async function releaseUncovered(c: Queryable, teamId: string, freezeId: string, nowMs: number, because: string): Promise<string[]> {
  const rows = await heldBy(c, freezeId);
  if (!rows.length) return [];
  const specs = (await liveFreezes(c, [teamId])).map(specOf);
  const free: string[] = [];
  const stay: Array<{ id: string; heldBy: string | null; why: string }> = [];
  const stillHeld = new Set<string>();
  const depStates = await dependencyStates(c, rows.flatMap((r) => (r.dependency_id ? [r.dependency_id] : [])));
  for (const r of rows) {
    if (r.run_at.getTime() <= nowMs) continue; // its instant passed while held: it ends missed at its expiry, or an owner releases it
    const w = coveringAt(specs, r.app_id, r.run_at.getTime());
    if (w) {
      stay.push({ id: r.id, heldBy: w.freeze.id, why: heldWhy(w, r.app_name, r.timezone) });
      stillHeld.add(r.id);
    } else if (r.dependency_id && (stillHeld.has(r.dependency_id) || (depStates.get(r.dependency_id) === 'held' && !rows.some((x) => x.id === r.dependency_id)))) {
      stay.push({ id: r.id, heldBy: null, why: `held: its dependency ${r.dependency_id} is still held by a deploy freeze` });
      stillHeld.add(r.id);
    } else free.push(r.id);
  }
  await reassignHeld(c, stay);
  const released = await releaseHeld(c, free, null);
  await insertEvents(c, released.map((id) => ({ id, state: 'scheduled', message: `released: ${because}` })));
  if (released.length) await notifyDue(c, null);
  return released;
}

export async function createFreeze(pool: Pool, actor: User, input: FreezeInput) {
  return inTransaction(pool, async (c) => {
    const now = await dbNow(c);
    const fields = { ...checkFields(input, now), apps: await checkApps(c, actor.team_id, input.apps) };
    const id = await insertFreeze(c, { ...fields, team_id: actor.team_id, created_by: actor.id });
    const f = await load(c, actor.team_id, id);
    const conflicts = await holdCovered(c, actor.team_id, specOf(f));
    await notifyGates(c);
    await recordAudit(c, {
      teamId: actor.team_id, actorId: actor.id, action: 'freeze.create', targetId: id,
      details: { name: f.name, kind: f.kind, start_at: f.start_at, end_at: f.end_at, cron: f.cron, duration_seconds: f.duration_seconds, timezone: f.timezone, apps: f.apps, reason: f.reason, held: conflicts.map((d) => d.id) },
    });
    return { ...freezeToApi(f, now), conflicts: await conflictsOut(c, conflicts) };
  });
}

async function conflictsOut(db: Queryable, rows: DeploymentRow[]) {
  const deps = new Map((await getDeploymentsByIds(db, rows.flatMap((r) => (r.dependency_id ? [r.dependency_id] : [])))).map((d) => [d.id, d]));
  return rows.sort((a, b) => a.run_at.getTime() - b.run_at.getTime()).map((r) => toApi(r, r.dependency_id ? deps.get(r.dependency_id) ?? null : null));
}

export async function listFreezesOut(pool: Pool, actor: User, limit: number, cursor?: string) {
  const after = decodeCursor<[string, string]>(cursor, (v) => Array.isArray(v) && v.length === 2 && !Number.isNaN(Date.parse(v[0])));
  const rows = await listFreezes(pool, actor.team_id, after ? { at: after[0], id: after[1] } : null, limit + 1);
  const now = await dbNow(pool);
  const p = page(rows, limit, (r) => [r.cursor_at, r.id]);
  return { result: p.result.map((f) => freezeToApi(f, now)), next_cursor: p.next_cursor };
}

export async function getFreezeOut(pool: Pool, actor: User, id: string) {
  return freezeToApi(await load(pool, actor.team_id, id), await dbNow(pool));
}

export type FreezeChange = Partial<FreezeInput>;

/**
 * Changes a freeze (owners). A one-off freeze stays one-off and a recurring one recurring
 * (switching answers 422 naming the field). Deployments it no longer covers are released (if
 * ahead), those it now covers are held and returned in `conflicts`.
 */
export async function updateFreeze(pool: Pool, actor: User, id: string, change: FreezeChange) {
  return inTransaction(pool, async (c) => {
    const now = await dbNow(c);
    const cur = await load(c, actor.team_id, id, true);
    const merged: FreezeInput = {
      name: change.name ?? cur.name,
      timezone: change.timezone ?? cur.timezone,
      reason: change.reason !== undefined ? change.reason : cur.reason,
      apps: change.apps !== undefined ? change.apps : cur.apps,
    };
    if (cur.kind === 'once') {
      if (change.cron !== undefined || change.duration_seconds !== undefined) {
        throw new ValidationError('invalid_freeze', 'a one-off freeze has start and end, not cron: delete it and create a recurring one', change.cron !== undefined ? 'cron' : 'duration_seconds');
      }
      merged.start = change.start ?? wallOf(cur.start_local)!;
      merged.end = change.end ?? wallOf(cur.end_local)!;
    } else {
      if (change.start !== undefined || change.end !== undefined) {
        throw new ValidationError('invalid_freeze', 'a recurring freeze has cron and duration_seconds, not start and end: delete it and create a one-off one', change.start !== undefined ? 'start' : 'end');
      }
      merged.cron = change.cron ?? cur.cron!;
      merged.duration_seconds = change.duration_seconds ?? cur.duration_seconds!;
    }
    const fields = { ...checkFields(merged, now), apps: await checkApps(c, actor.team_id, merged.apps) };
    await updateFreezeRow(c, id, fields);
    const f = await load(c, actor.team_id, id);
    const released = await releaseUncovered(c, actor.team_id, id, now, `the deploy freeze "${f.name}" was changed by ${actor.email} and no longer covers it`);
    const conflicts = await holdCovered(c, actor.team_id, specOf(f));
    await notifyGates(c);
    await recordAudit(c, {
      teamId: actor.team_id, actorId: actor.id, action: 'freeze.update', targetId: id,
      details: { changed: Object.keys(change), released, held: conflicts.map((d) => d.id) },
    });
    return { ...freezeToApi(f, now), conflicts: await conflictsOut(c, conflicts), released };
  });
}

/** Deletes a freeze (owners): the deployments it held whose instant is ahead are scheduled again, unless another freeze covers them. */
export async function deleteFreeze(pool: Pool, actor: User, id: string): Promise<{ released: string[] }> {
  return inTransaction(pool, async (c) => {
    const now = await dbNow(c);
    const f = await load(c, actor.team_id, id, true);
    await softDeleteFreeze(c, id);
    const released = await releaseUncovered(c, actor.team_id, id, now, `the deploy freeze "${f.name}" was deleted by ${actor.email}`);
    await notifyGates(c);
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'freeze.delete', targetId: id, details: { name: f.name, released } });
    return { released };
  });
}

/**
 * GET /v1/freezes/check: would a deployment of `app` at `run_at` (and its dependency
 * `dependency_lead_seconds` before) be refused as frozen? Nothing is stored. For the schedule
 * form's warning and its "Use next allowed time".
 */
export async function checkInstant(pool: Pool, actor: User, q: { app: string; run_at: string; dependency?: string; dependency_lead_seconds?: number; timezone?: string }) {
  const runAtMs = Date.parse(q.run_at);
  if (!Number.isFinite(runAtMs)) throw new ValidationError('invalid_date', 'run_at must be an RFC 3339 date-time', 'run_at');
  const zone = q.timezone && isValidZone(q.timezone) ? canonicalZone(q.timezone) : 'UTC';
  const names = await pool.query<{ id: string; name: string }>(
    'SELECT id, name FROM apps WHERE team_id = $1 AND id = ANY($2::uuid[]) AND deleted_at IS NULL', [actor.team_id, [q.app, q.dependency ?? q.app]],
  );
  const name = (id: string, field: string) => {
    const a = names.rows.find((x) => x.id === id);
    if (!a) throw new ValidationError('unknown_app', `no app ${id} in your team`, field);
    return a.name;
  };
  const parts: Part[] = [{ appId: q.app, appName: name(q.app, 'app'), runAtMs, role: 'deployment', offsetMs: 0 }];
  if (q.dependency) {
    const lead = q.dependency_lead_seconds ?? DEFAULT_DEPENDENCY_LEAD_SECONDS;
    parts.push({ appId: q.dependency, appName: name(q.dependency, 'dependency'), runAtMs: runAtMs - lead * 1000, role: 'dependency', offsetMs: lead * 1000 });
  }
  const v = await findFrozen(pool, actor.team_id, parts);
  if (!v) return { frozen: false, next_allowed_at: new Date(runAtMs).toISOString() };
  const f = v.window.freeze;
  return {
    frozen: true,
    freeze: { id: f.id, name: f.name, reason: f.reason, end: new Date(v.window.endMs).toISOString() },
    app: (v.part.role === 'dependency' ? 'dependency' : 'app') as 'app' | 'dependency',
    message: frozenError(v, zone).message,
    next_allowed_at: v.nextAllowedMs === null ? null : new Date(v.nextAllowedMs).toISOString(),
  };
}

// ─── the fire gate ───────────────────────────────────────────────────────────────────────

/** Which freeze stopped a row (set by check, read by apply in the same process); bounded. */
const stoppedBy = new Map<string, string>();
const STOPPED_BY_MAX = 10_000;

/**
 * The fire-time check: a claimed deployment whose instant (or now, when it fires late) is inside
 * a freeze for its app is held, never run. Deployments with a freeze override pass. One read of
 * the claimed teams' live freezes per batch.
 */
export const freezeGate: FireGate = {
  name: 'freeze',
  async check(db: Queryable, rows: readonly ClaimedRow[]) {
    const out = new Map<string, string>();
    const candidates = rows.filter((r) => !r.freeze_override);
    if (!candidates.length) return out;
    const freezes = await liveFreezes(db, [...new Set(candidates.map((r) => r.team_id))]);
    if (!freezes.length) return out;
    const byTeam = new Map<string, FreezeSpec[]>();
    for (const f of freezes) byTeam.set(f.team_id, [...(byTeam.get(f.team_id) ?? []), specOf(f)]);
    const now = Date.now();
    const at = (r: ClaimedRow) => Math.max(r.run_at.getTime(), now);
    // One computation of each team's windows over the batch's instants (a claimed batch spans seconds).
    const windows = new Map<string, FreezeWindow[]>();
    for (const [team, specs] of byTeam) {
      const mine = candidates.filter((r) => r.team_id === team).map(at);
      if (!mine.length) continue;
      const ok = specs.filter((f) => {
        try {
          windowsOf(f, now, now + 1);
          return true;
        } catch (err) {
          if (err instanceof ShipclockError) return false; // a freeze this runtime cannot read (its zone) never stops a deployment
          throw err;
        }
      });
      windows.set(team, windowsOver(ok, Math.min(...mine), Math.max(...mine)));
    }
    for (const r of candidates) {
      const list = windows.get(r.team_id);
      if (!list?.length) continue;
      const w = coveringIn(list, r.app_id, at(r));
      if (!w) continue;
      out.set(r.id, heldWhy(w, r.app_name, r.timezone));
      if (stoppedBy.size >= STOPPED_BY_MAX) stoppedBy.clear();
      stoppedBy.set(r.id, w.freeze.id);
    }
    return out;
  },
  async apply(db: Queryable, owner: string, stopped) {
    const held = await holdDeployments(db, stopped.map((s) => ({ id: s.row.id, heldBy: stoppedBy.get(s.row.id) ?? null, why: s.message })), owner);
    const why = new Map(stopped.map((s) => [s.row.id, s.message]));
    for (const s of stopped) stoppedBy.delete(s.row.id);
    await insertEvents(db, held.map((id) => ({ id, state: 'held', message: `${why.get(id)} (checked at its instant)` })));
  },
};
