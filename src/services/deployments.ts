/**
 * Scheduled deployments: schedule (with an optional dependency), reschedule, cancel, read.
 * A deployment and its dependency are written in one statement (decision 0013), and since the row
 * is its own job (due_at), nothing else needs writing for the scheduler to find it.
 */
import { recordAudit, scrubSecrets } from '../audit/record.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../core/errors.ts';
import { type DeploymentState, isFinal } from '../core/state.ts';
import { canonicalZone, type Disambiguation, type LocalTime, localTimeAt, resolveLocalTime } from '../core/time.ts';
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import {
  type ApiRow, clearLease, type DeploymentRow, getDeployment, getDeploymentsByIds, insertScheduledMany, isFiring, type ScheduledResult, type ScheduleStatement, leaseRunning,
  listDeployments, lockAgainstClaims, updateSchedule,
} from '../db/sql/deployments.ts';
import { insertEvents, listEvents, notifyDue } from '../db/sql/events.ts';
import { releaseHeld } from '../db/sql/freezes.ts';
import { requestRollback } from '../db/sql/rollbacks.ts';
import { providerFor } from '../providers/index.ts';
import { redact } from '../providers/redact.ts';
import type { Credentials, ProviderContext } from '../providers/types.ts';
import type { User } from './auth.ts';
import { decodeCursor, page } from './cursor.ts';
import { cachedSpecs, findFrozen, frozenError, frozenIn, type FrozenVerdict, type Part, reloadSpecs } from './freeze-check.ts';
import { announceCommitted } from './announce.ts';
import { Batcher, batcherFor } from './batch.ts';
import { endDeployments } from './transitions.ts';
import { notifyGates } from '../scheduler/gates.ts';
import { type ApprovalSummary, approvalSummaries, resetApprovals } from './approvals.ts';

export const DEFAULT_DEPENDENCY_LEAD_SECONDS = 900;
export const DEFAULT_EXPIRES_AFTER_SECONDS = 3600;

export interface TimeInput {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second?: number;
  timezone: string;
  disambiguation?: Disambiguation;
  dependency_lead_seconds?: number;
  expires_after_seconds?: number;
  /** Owners only: schedule into a deploy freeze on purpose, saying why. */
  override_freeze?: { reason: string };
}

export interface ScheduleInput extends TimeInput {
  app: string;
  dependency?: string | null;
}

/** Decrypts what a provider needs to act on an app (used to cancel an in-flight rollout). */
export type TargetResolver = (row: { team_id: string; target: Record<string, unknown>; target_secret: Buffer | null }) =>
  Promise<{ target: Record<string, unknown>; credentials?: Credentials; secrets: readonly string[] }>;

type DeploymentOut = Omit<ReturnType<typeof toApiBase<null>>, 'dependency'>;
type Approvals = ReadonlyMap<string, ApprovalSummary>;

/** The `approval` of a representation: null when it needs none; pending with none given when not looked up (just scheduled). */
function approvalOf(r: ApiRow, approvals?: Approvals): ApprovalSummary | null {
  if (r.approval_required === null || r.approval_required === undefined) return null;
  return approvals?.get(r.id) ?? { required: r.approval_required, approvals: [], rejection: null, status: 'pending' };
}

function toApiBase<D>(r: ApiRow, approvals: Approvals | undefined, dependency: D) {
  return {
    id: r.id,
    app: { id: r.app_id, name: r.app_name },
    state: r.state,
    run_at: r.run_at.toISOString(),
    timezone: r.timezone,
    local: { year: r.local_year, month: r.local_month, day: r.local_day, hour: r.local_hour, minute: r.local_minute, second: r.local_second },
    utc_offset: r.utc_offset,
    dependency_lead_seconds: r.dependency_lead_seconds,
    expires_at: r.expires_at.toISOString(),
    attempts: r.attempts,
    error: r.error,
    provider_ref: r.provider_ref,
    created_at: r.created_at.toISOString(),
    started_at: r.started_at?.toISOString() ?? null,
    finished_at: r.finished_at?.toISOString() ?? null,
    schedule_id: r.schedule_id ?? null,
    held_by: r.held_by ?? null,
    freeze_override: r.freeze_override ?? null,
    rollback: rollbackOut(r),
    approval: approvalOf(r, approvals),
    dependency,
  };
}

/** The deployment's rollback as the API shows it; null when none was asked for. */
export function rollbackOut(r: Pick<ApiRow, 'rollback_state' | 'rollback_ref' | 'rollback_error' | 'rollback_started_at' | 'rollback_finished_at'>) {
  if (!r.rollback_state) return null;
  return {
    state: r.rollback_state,
    ref: r.rollback_ref ?? null,
    ...(r.rollback_error ? { error: r.rollback_error } : {}),
    started_at: r.rollback_started_at?.toISOString() ?? null,
    finished_at: r.rollback_finished_at?.toISOString() ?? null,
  };
}

export function toApi(r: ApiRow, dep: ApiRow | null, approvals?: Approvals): DeploymentOut & { dependency: (DeploymentOut & { dependency: null }) | null } {
  // Built in one literal each (no spread: copying 20 fields per row showed in the API's profile).
  return toApiBase(r, approvals, dep ? toApiBase(dep, approvals, null) : null);
}

async function dbNow(db: Queryable): Promise<number> {
  const r = await db.query<{ now: Date }>('SELECT clock_timestamp() AS now');
  return r.rows[0].now.getTime();
}

interface Resolved {
  runAtMs: number;
  local: LocalTime;
  utcOffset: string;
}

function resolve(input: TimeInput): Resolved {
  const local: LocalTime = { year: input.year, month: input.month, day: input.day, hour: input.hour, minute: input.minute, second: input.second ?? 0 };
  const r = resolveLocalTime(local, input.timezone, input.disambiguation ?? 'earlier');
  return { runAtMs: r.epochMs, local, utcOffset: r.utcOffset };
}

function assertFuture(res: Resolved, input: TimeInput, now: number): void {
  if (res.runAtMs > now) return;
  const today = localTimeAt(now, input.timezone);
  const pastDay = [res.local.year - today.year, res.local.month - today.month, res.local.day - today.day].find((d) => d !== 0) ?? 0;
  throw new ValidationError(
    'past_instant',
    `${new Date(res.runAtMs).toISOString()} (${input.timezone} local ${fmtLocal(res.local)}) is in the past`,
    pastDay < 0 ? 'day' : 'hour',
  );
}

function fmtLocal(l: LocalTime): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${l.year}-${p(l.month)}-${p(l.day)} ${p(l.hour)}:${p(l.minute)}:${p(l.second)}`;
}

/** The dependency's instant: `lead` seconds before, in the same zone (pure; dependencyTime checks it is ahead). */
function dependencyAt(res: Resolved, zone: string, lead: number): Resolved {
  const runAtMs = res.runAtMs - lead * 1000;
  const l = localTimeAt(runAtMs, zone);
  return { runAtMs, local: { year: l.year, month: l.month, day: l.day, hour: l.hour, minute: l.minute, second: l.second }, utcOffset: l.utcOffset };
}

/** 422 naming dependency_lead_seconds when the dependency's instant is not after `now`. */
function assertDependencyFuture(runAtMs: number, lead: number, now: number): void {
  if (runAtMs > now) return;
  throw new ValidationError(
    'past_instant',
    `the dependency would deploy at ${new Date(runAtMs).toISOString()}, ${lead} s before, which is in the past: choose a later time or a shorter dependency_lead_seconds`,
    'dependency_lead_seconds',
  );
}

/** The dependency's instant: `lead` seconds before, in the same zone; must still be in the future. */
function dependencyTime(res: Resolved, zone: string, lead: number, now: number) {
  const dt = dependencyAt(res, zone, lead);
  assertDependencyFuture(dt.runAtMs, lead, now);
  return dt;
}

/** The owner's `override_freeze`, checked: 403 for other roles, 422 naming override_freeze.reason when it is empty. */
function checkOverride(actor: User, input: TimeInput): { reason: string } | null {
  if (!input.override_freeze) return null;
  if (actor.role !== 'owner') throw new ForbiddenError(`override_freeze needs the owner role; you are ${actor.role}`);
  const reason = String(input.override_freeze.reason ?? '').trim();
  if (!reason) throw new ValidationError('invalid_override', 'override_freeze.reason must say why the deployment goes out during the freeze', 'override_freeze.reason');
  return { reason };
}

/** What is stored on a deployment scheduled into a freeze on purpose. */
function overrideRecord(actor: User, reason: string, nowMs: number) {
  return { reason, by: actor.email, at: new Date(nowMs).toISOString() };
}

/** The audit details and timeline words of an owner's freeze override (`action`: scheduled, rescheduled). */
function overrideWords(actor: User, v: FrozenVerdict, reason: string, action: string) {
  return {
    details: { freeze: { id: v.window.freeze.id, name: v.window.freeze.name }, reason, on: action },
    message: `${action} into the deploy freeze "${v.window.freeze.name}" by ${actor.email} (override: ${reason})`,
  };
}

/** Audit entry and timeline message of a freeze override. */
async function recordOverride(c: Queryable, actor: User, id: string, v: FrozenVerdict, reason: string, action: string): Promise<string> {
  const w = overrideWords(actor, v, reason, action);
  await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'deployment.freeze_override', targetId: id, details: w.details });
  return w.message;
}

/** How many times schedule() reloads a team's freezes that changed under it before giving up (409 busy). */
const FREEZE_RELOADS = 3;

/**
 * Scheduling statements under way at once per process; concurrent requests beyond these wait and
 * go together in the next statement, at most SCHEDULE_BATCH_MAX in one (decision 0014). Idle, a
 * request runs at once, alone. Measured on 2 cores, 50 clients, with a dependency, on a fast day:
 * 1 in flight 2,270 req/s (p99 38 ms), 2: 2,410 (37 ms), 3: 2,140 (44 ms), 4: 1,990 (44–54 ms),
 * 8: 1,740 (50 ms); one statement per request before: 1,400 req/s (60 ms). On a slower day (the
 * same code 30 % slower), four interleaved pairs: 1 in flight p99 49.5–53.4 ms and 379–420 µs of
 * PostgreSQL CPU per request, 2 in flight 53.8–72.4 ms and 439–552 µs: fuller statements cost
 * the database less per request, which counts once it is the bottleneck. One also leaves the
 * default pool (SHIPCLOCK_DB_POOL_SIZE, 10) to the rest of the API. The price: a statement that
 * waits (for an app row another transaction updates) holds up this process's schedulings that long.
 */
export const SCHEDULE_STATEMENTS_IN_FLIGHT = 1;
/** The most scheduling requests one statement carries. */
export const SCHEDULE_BATCH_MAX = 100;

const schedulers = new WeakMap<Pool, Batcher<ScheduleStatement, ScheduledResult>>();

/** Runs one scheduling statement's request, grouped with the concurrent ones of this process (Batcher). */
function runScheduling(pool: Pool, statement: ScheduleStatement): Promise<ScheduledResult> {
  return batcherFor(schedulers, pool, () => new Batcher<ScheduleStatement, ScheduledResult>(
    (list) => insertScheduledMany(pool, list),
    // A failing statement (the database refused one request's rows) is run again one request at
    // a time, so that the others are written and only that caller sees the error.
    { maxInFlight: SCHEDULE_STATEMENTS_IN_FLIGHT, maxBatch: SCHEDULE_BATCH_MAX, isolate: true },
  )).submit(statement);
}

/**
 * Schedules a deployment, with its dependency when one is named, in one statement
 * (insertScheduledMany, grouped with concurrent requests; decisions 0013 and 0014). The freeze verdict is computed here from the team's freezes
 * as this process last loaded them, and the statement writes only if the team's freezes are still
 * those; otherwise they are reloaded and the statement runs again. Every refusal comes from the
 * same round trip, checked in the order the API has always used: the instant, the app, the
 * dependency (itself, its app, its instant), then the freezes.
 */
export async function schedule(pool: Pool, actor: User, input: ScheduleInput) {
  input = { ...input, timezone: canonicalZone(input.timezone) };
  const res = resolve(input);
  const lead = input.dependency_lead_seconds ?? DEFAULT_DEPENDENCY_LEAD_SECONDS;
  const expires = input.expires_after_seconds ?? DEFAULT_EXPIRES_AFTER_SECONDS;
  const disambiguation = input.disambiguation ?? 'earlier';
  const override = checkOverride(actor, input);
  const depId = input.dependency || null;
  const selfDependency = depId !== null && depId === input.app;
  const depAt = depId ? dependencyAt(res, input.timezone, lead) : null;
  // App names are filled in from the statement's answer, for the 409's wording.
  const parts: Part[] = [{ appId: input.app, appName: '', runAtMs: res.runAtMs, role: 'deployment', offsetMs: 0 }];
  if (depId && depAt) parts.push({ appId: depId, appName: '', runAtMs: depAt.runAtMs, role: 'dependency', offsetMs: lead * 1000 });
  const planned = (r: Resolved) => ({ run_at: new Date(r.runAtMs).toISOString(), local: r.local, utc_offset: r.utcOffset });

  let freezes = cachedSpecs(actor.team_id);
  for (let reloads = 0; ; reloads++) {
    const frozen = frozenIn(freezes.specs, parts);
    const r = await runScheduling(pool, {
      team_id: actor.team_id, created_by: actor.id, app_id: input.app, main: planned(res),
      dependency: depId && depAt ? { app_id: depId, row: planned(depAt), lead } : null,
      timezone: input.timezone, disambiguation, expires_after_seconds: expires,
      write: !selfDependency && !(frozen && !override),
      freeze_stamp: freezes.stamp,
      override: frozen && override ? overrideOf(actor, frozen, override.reason) : null,
    });
    if (r.row) {
      await announceCommitted(pool, r.events);
      return toApi(r.row, r.dependency);
    }
    const now = r.db_now.getTime();
    assertFuture(res, input, now);
    if (!r.found_app) throw new ValidationError('unknown_app', `no app ${input.app} in your team`, 'app');
    if (depId && depAt) {
      if (selfDependency) throw new ValidationError('self_dependency', 'an app cannot be its own dependency', 'dependency');
      if (!r.found_dependency) throw new ValidationError('unknown_app', `no app ${depId} in your team`, 'dependency');
      assertDependencyFuture(depAt.runAtMs, lead, now);
    }
    if (r.freeze_stamp !== freezes.stamp) {
      // The team's freezes changed since this process last loaded them: the verdict is stale.
      if (reloads >= FREEZE_RELOADS) throw new ConflictError('busy', 'the team\'s deploy freezes kept changing while scheduling; try again');
      freezes = await reloadSpecs(pool, actor.team_id);
      continue;
    }
    if (frozen && !override) {
      const names: Record<string, string | null> = { deployment: r.found_app, dependency: r.found_dependency };
      throw frozenError({ ...frozen, part: { ...frozen.part, appName: names[frozen.part.role] ?? '' } }, input.timezone);
    }
    throw new Error('the scheduling statement wrote nothing, and no rule says why');
  }
}

/** What the scheduling statement stores, audits and says for an owner's freeze override. */
function overrideOf(actor: User, v: FrozenVerdict, reason: string) {
  const w = overrideWords(actor, v, reason, 'scheduled');
  return {
    record: { reason, by: actor.email }, // the statement adds `at`, its clock
    audit: scrubSecrets(w.details) as Record<string, unknown>,
    note: `; ${w.message}`,
  };
}

/** One deployment's representation (with its dependency and approval state). */
export async function loadOut(db: Queryable, teamId: string, id: string) {
  const row = await getDeployment(db, teamId, id);
  if (!row) throw new NotFoundError('scheduled deployment');
  const dep = row.dependency_id ? (await getDeploymentsByIds(db, [row.dependency_id]))[0] ?? null : null;
  return toApi(row, dep, await approvalSummaries(db, dep ? [row, dep] : [row]));
}

export async function getOne(pool: Pool, actor: User, id: string) {
  const out = await loadOut(pool, actor.team_id, id);
  const events = await listEvents(pool, id);
  const log = (await pool.query<{ log: string }>('SELECT log FROM deployments WHERE id = $1', [id])).rows[0].log;
  return { ...out, events: events.map((e) => ({ id: e.id, at: e.at.toISOString(), state: e.state, message: e.message })), log };
}

export async function list(pool: Pool, actor: User, q: { state?: string; app?: string; schedule?: string; approval?: 'pending' | 'approved' | 'rejected'; from?: string; to?: string; cursor?: string; limit?: number }) {
  const limit = q.limit ?? 50;
  const after = decodeCursor<[string, string]>(q.cursor, (v) => Array.isArray(v) && v.length === 2 && !Number.isNaN(Date.parse(v[0])));
  const rows = await listDeployments(pool, {
    teamId: actor.team_id,
    states: q.state?.split(','),
    appId: q.app,
    scheduleId: q.schedule,
    approval: q.approval,
    from: q.from ? new Date(q.from) : undefined,
    to: q.to ? new Date(q.to) : undefined,
    after: after ? { runAt: new Date(after[0]), id: after[1] } : undefined,
    limit: limit + 1,
  });
  const p = page(rows, limit, (r) => [r.run_at.toISOString(), r.id]);
  const deps = new Map((await getDeploymentsByIds(pool, p.result.flatMap((r) => (r.dependency_id ? [r.dependency_id] : [])))).map((d) => [d.id, d]));
  const approvals = await approvalSummaries(pool, [...p.result, ...deps.values()]);
  return { result: p.result.map((r) => toApi(r, r.dependency_id ? deps.get(r.dependency_id) ?? null : null, approvals)), next_cursor: p.next_cursor };
}

function assertMovable(row: DeploymentRow & { lease_until?: Date | null }, now: number, what: string): void {
  if (row.state !== 'scheduled' && row.state !== 'held') throw new ConflictError('not_scheduled', `the ${what} is ${row.state}; only a scheduled (or held) deployment can be changed`);
  if (isFiring(row, new Date(now))) throw new ConflictError('firing', `the ${what} is being fired right now`);
}

export async function reschedule(pool: Pool, actor: User, id: string, input: TimeInput) {
  return inTransaction(pool, (c) => rescheduleIn(c, actor, id, input));
}

/**
 * How a reschedule came about when it was not the API's PATCH (a reminder link): added to the
 * audit entry's details and to the timeline message.
 */
export interface RescheduleVia {
  audit: Record<string, unknown>;
  note: string;
}

/** The wall time of an instant in a zone, as a reschedule's input (the disambiguation that gives back this very instant). */
export function timeInputAt(runAtMs: number, zone: string, keep: { expires_after_seconds?: number; dependency_lead_seconds?: number } = {}): TimeInput {
  const l = localTimeAt(runAtMs, zone);
  const local = { year: l.year, month: l.month, day: l.day, hour: l.hour, minute: l.minute, second: l.second };
  const disambiguation: Disambiguation = resolveLocalTime(local, zone, 'earlier').epochMs === runAtMs ? 'earlier' : 'later';
  return { ...local, timezone: zone, disambiguation, ...keep };
}

/** reschedule() inside the caller's transaction (a reminder link spends its nonce in the same one). */
export async function rescheduleIn(c: Queryable, actor: User, id: string, input: TimeInput, via?: RescheduleVia) {
  input = { ...input, timezone: canonicalZone(input.timezone) };
  const res = resolve(input);
  const override = checkOverride(actor, input);
  // A block where the transaction's callback was: keeps this diff small beside other branches' changes to reschedule.
  {
    const now = await dbNow(c);
    const row = await getDeployment(c, actor.team_id, id, true);
    if (!row) throw new NotFoundError('scheduled deployment');
    assertMovable(row, now, 'deployment');
    const dependent = await c.query<{ id: string }>(`SELECT id FROM deployments WHERE dependency_id = $1 AND state IN ('scheduled', 'held')`, [id]);
    if (dependent.rowCount) {
      throw new ConflictError('is_dependency', `this is the dependency of ${dependent.rows[0].id}: reschedule that one and its dependency moves with it`);
    }
    assertFuture(res, input, now);
    const expires = input.expires_after_seconds ?? row.expires_after_seconds;
    const disambiguation = input.disambiguation ?? 'earlier';
    const lead = input.dependency_lead_seconds ?? row.dependency_lead_seconds ?? DEFAULT_DEPENDENCY_LEAD_SECONDS;
    const moved: string[] = [id];
    const parts: Part[] = [{ appId: row.app_id, appName: row.app_name, runAtMs: res.runAtMs, role: 'deployment', offsetMs: 0 }];
    let depMove: { dep: DeploymentRow; dt: ReturnType<typeof dependencyTime> } | null = null;
    if (row.dependency_id) {
      const dep = await getDeployment(c, actor.team_id, row.dependency_id, true);
      // A dependency that already ran (or is running) stays where it was; a pending one moves, keeping the lead.
      if (dep && (dep.state === 'scheduled' || dep.state === 'held')) {
        assertMovable(dep, now, 'dependency');
        depMove = { dep, dt: dependencyTime(res, input.timezone, lead, now) };
        parts.push({ appId: dep.app_id, appName: dep.app_name, runAtMs: depMove.dt.runAtMs, role: 'dependency', offsetMs: lead * 1000 });
      }
    }
    const frozen = await findFrozen(c, actor.team_id, parts);
    if (frozen && !override) throw frozenError(frozen, input.timezone);
    const freezeOverride = frozen && override ? overrideRecord(actor, override.reason, now) : null;
    if (depMove) {
      const { dep, dt } = depMove;
      await updateSchedule(c, dep.id, {
        run_at: new Date(dt.runAtMs), timezone: input.timezone, local: dt.local, utc_offset: dt.utcOffset, disambiguation, expires_after_seconds: expires,
        dependency_lead_seconds: null, freeze_override: freezeOverride,
      });
      moved.push(dep.id);
    }
    await updateSchedule(c, id, {
      run_at: new Date(res.runAtMs), timezone: input.timezone, local: res.local, utc_offset: res.utcOffset, disambiguation,
      expires_after_seconds: expires, dependency_lead_seconds: row.dependency_id ? lead : null, freeze_override: freezeOverride,
    });
    const note = (frozen && override ? `; ${await recordOverride(c, actor, id, frozen, override.reason, 'rescheduled')}` : '') + (via ? ` (${via.note})` : '');
    await insertEvents(c, moved.map((x) => ({ id: x, state: 'scheduled', message: `rescheduled to ${new Date(x === id ? res.runAtMs : res.runAtMs - lead * 1000).toISOString()}${note}` })));
    // Approvals were given for a moment: moved by more than its expiry, it is another plan (decision 0006).
    const shift = Math.abs(res.runAtMs - row.run_at.getTime()) / 1000;
    const reset = shift > expires
      ? await resetApprovals(c, moved, `moved by ${Math.round(shift)} s, more than its expiry (${expires} s)`)
      : [];
    await notifyDue(c, null);
    // A claimed row's fire-gate verdict may be stale now.
    await notifyGates(c);
    await recordAudit(c, {
      teamId: actor.team_id, actorId: actor.id, action: 'deployment.reschedule', targetId: id,
      details: { from: row.run_at.toISOString(), to: new Date(res.runAtMs).toISOString(), timezone: input.timezone, ...(reset.length ? { approval_reset: reset } : {}), ...via?.audit },
    });
    return { ...(await loadOut(c, actor.team_id, id)), approval_reset: reset.length > 0 };
  }
}

/**
 * Cancels a scheduled deployment (and its pending dependency). A running one is canceled only
 * when its provider can recall the rollout (DigitalOcean); otherwise 409 says why.
 */
export async function cancel(pool: Pool, actor: User, id: string, resolveTarget: TargetResolver) {
  const recall = await inTransaction(pool, async (c) => {
    const now = await dbNow(c);
    const row = await getDeployment(c, actor.team_id, id, true);
    if (!row) throw new NotFoundError('scheduled deployment');
    if (isFinal(row.state)) throw new ConflictError('already_final', `the deployment already ended: ${row.state}`);
    if (row.state === 'running') return row;
    assertMovable(row, now, 'deployment');
    const items = [{ finish: { id, state: 'canceled' as const, error: null, log: '', ref: null }, message: `canceled by ${actor.email}` }];
    if (row.dependency_id) {
      const dep = await getDeployment(c, actor.team_id, row.dependency_id, true);
      if (dep && (dep.state === 'scheduled' || dep.state === 'held') && !isFiring(dep, new Date(now))) {
        items.push({ finish: { id: dep.id, state: 'canceled', error: null, log: '', ref: null }, message: `canceled with its dependent ${id}` });
      }
    }
    await endDeployments(c, items);
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'deployment.cancel', targetId: id, details: { also_canceled: items.slice(1).map((i) => i.finish.id) } });
    return null;
  });
  if (recall) await recallRunning(pool, actor, recall, resolveTarget);
  return loadOut(pool, actor.team_id, id);
}

/**
 * How long a cancel waits for the lease of a rollout the scheduler is looking at (it leases a
 * followed rollout from its claim, SHIPCLOCK_PREFETCH_MS before each poll, until the poll is
 * answered) before answering 409 `busy`. Meanwhile no scheduler may claim the row again
 * (lockAgainstClaims), so the wait ends as soon as the current poll does.
 */
export const CANCEL_LEASE_WAIT_MS = 5000;
/** How often the waiting cancel looks at the lease. */
const CANCEL_LEASE_LOOK_MS = 25;
/** How long the cancel holds the lease: the provider's cancel call is bounded at 30 s. */
const CANCEL_LEASE_SECONDS = 60;

/**
 * Takes the row's lease for a cancel, waiting up to CANCEL_LEASE_WAIT_MS for a scheduler that
 * holds it to let go. Returns the lease with the rollout's ref as of then, the state the
 * deployment reached meanwhile (it ended), or 'busy' when the lease was not given up in time.
 */
async function leaseForCancel(pool: Pool, id: string, owner: string): Promise<{ provider_ref: Record<string, unknown> | null } | 'busy' | DeploymentState> {
  return inTransaction(pool, async (c) => {
    const deadline = Date.now() + CANCEL_LEASE_WAIT_MS;
    for (;;) {
      const s = await lockAgainstClaims(c, id);
      if (!s) throw new NotFoundError('scheduled deployment');
      if (s.state !== 'running') return s.state;
      const leased = s.leased ? undefined : await leaseRunning(c, id, owner, CANCEL_LEASE_SECONDS);
      if (leased) return leased;
      if (Date.now() >= deadline) return 'busy';
      await new Promise((r) => setTimeout(r, CANCEL_LEASE_LOOK_MS));
    }
  });
}

async function recallRunning(pool: Pool, actor: User, row: DeploymentRow, resolveTarget: TargetResolver): Promise<void> {
  const app = await pool.query<{ target: Record<string, unknown>; target_secret: Buffer | null }>('SELECT target, target_secret FROM apps WHERE id = $1', [row.app_id]);
  const provider = providerFor(String(app.rows[0].target.type));
  if (!provider?.cancellable || !provider.cancel) {
    throw new ConflictError('not_cancellable', `a running ${String(app.rows[0].target.type)} deployment cannot be recalled; it will run to its end`);
  }
  if (!row.provider_ref) throw new ConflictError('not_cancellable', 'the deployment is starting; try again in a moment');
  // Take the row's lease for the length of the call, so no scheduler polls (and ends) it meanwhile.
  const owner = `cancel:${actor.id}`;
  const leased = await leaseForCancel(pool, row.id, owner);
  if (leased === 'busy') {
    throw new ConflictError('busy', `shipclock kept this rollout busy for ${CANCEL_LEASE_WAIT_MS / 1000} s; try again in a moment`);
  }
  if (typeof leased === 'string') throw new ConflictError('already_final', `the deployment already ended: ${leased}`);
  const ref = (leased.provider_ref ?? row.provider_ref) as ProviderContext['ref'];
  const release = () => clearLease(pool, row.id, owner);
  let secrets: readonly string[] = [];
  try {
    const resolved = await resolveTarget({ team_id: row.team_id, ...app.rows[0] });
    secrets = resolved.secrets;
    const ctx: ProviderContext = {
      deployment: { id: row.id, teamId: row.team_id, appId: row.app_id, appName: row.app_name, runAt: row.run_at, attempt: row.attempts, startedAt: row.started_at ?? row.run_at },
      target: resolved.target, credentials: resolved.credentials, ref,
      signal: AbortSignal.timeout(30_000), log: () => {},
    };
    await provider.cancel(ctx);
  } catch (err) {
    await release();
    const message = redact((err as Error).message ?? String(err), secrets);
    throw new ConflictError('cancel_refused', `${provider.type} did not cancel the rollout: ${message}`);
  }
  await inTransaction(pool, async (c) => {
    await endDeployments(c, [{ finish: { id: row.id, state: 'canceled', error: null, log: '', ref: null }, message: `rollout recalled by ${actor.email}` }]);
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'deployment.cancel', targetId: row.id, details: { recalled: true } });
  });
}

/**
 * Releases a held deployment (owners): scheduled again, with its held dependency, due at its
 * instant (or at once, when that passed within its expiry). A release is an override: the
 * freeze (and any other) no longer holds it, at scheduling or at its instant. Audited.
 */
export async function release(pool: Pool, actor: User, id: string, reasonRaw: string) {
  const reason = String(reasonRaw ?? '').trim();
  if (!reason) throw new ValidationError('invalid_reason', 'reason must say why the deployment goes out despite the freeze', 'reason');
  return inTransaction(pool, async (c) => {
    const now = await dbNow(c);
    const row = await getDeployment(c, actor.team_id, id, true);
    if (!row) throw new NotFoundError('scheduled deployment');
    if (row.state !== 'held') throw new ConflictError('not_held', `the deployment is ${row.state}; only a held deployment can be released`);
    if (isFiring(row, new Date(now))) throw new ConflictError('firing', 'the deployment is being looked at by the scheduler right now (its expiry); try again in a moment');
    const ids = [id];
    if (row.dependency_id) {
      const dep = await getDeployment(c, actor.team_id, row.dependency_id, true);
      if (dep && dep.state === 'held' && !isFiring(dep, new Date(now))) ids.push(dep.id);
    }
    const released = await releaseHeld(c, ids, overrideRecord(actor, reason, now));
    await insertEvents(c, released.map((x) => ({ id: x, state: 'scheduled', message: `released by ${actor.email}${x === id ? '' : ` with its dependent ${id}`}: ${reason}` })));
    await notifyDue(c, null);
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'deployment.release', targetId: id, details: { reason, freeze: row.held_by, also_released: released.filter((x) => x !== id) } });
    return loadOut(c, actor.team_id, id);
  });
}

/**
 * Rolls a finished deployment back by hand (deployers and owners): its rollback is asked for
 * (pending, due now) and the scheduler makes and follows it like an automatic one. 409 while the
 * deployment has not finished, while a rollback of it is pending or running, while its app has a
 * deployment running or another rollback in progress, or when the deployment changed nothing;
 * 422 when the target's provider cannot roll back. Audited.
 */
export async function rollbackByHand(pool: Pool, actor: User, id: string) {
  return inTransaction(pool, async (c) => {
    const row = await getDeployment(c, actor.team_id, id, true);
    if (!row) throw new NotFoundError('scheduled deployment');
    if (!['succeeded', 'failed', 'canceled'].includes(row.state)) {
      throw new ConflictError('not_finished', `the deployment is ${row.state}; only a finished deployment can be rolled back`);
    }
    if (row.rollback_state === 'pending' || row.rollback_state === 'running') {
      throw new ConflictError('rollback_running', `a rollback of this deployment is ${row.rollback_state}`);
    }
    const app = await c.query<{ target: Record<string, unknown>; deleted: boolean }>(
      'SELECT target, deleted_at IS NOT NULL AS deleted FROM apps WHERE id = $1', [row.app_id],
    );
    if (!app.rows[0] || app.rows[0].deleted) throw new ConflictError('app_deleted', 'the deployment\'s app was deleted');
    const type = String(app.rows[0].target.type);
    if (!providerFor(type)?.rollback) {
      throw new ValidationError('rollback_not_supported', `a ${type} target cannot be rolled back by shipclock: deploy the previous version instead`);
    }
    if (row.provider_ref?.changed !== true) {
      throw new ConflictError('nothing_changed', 'the deployment changed nothing on its target, so there is nothing to roll back');
    }
    const busy = await c.query<{ id: string; state: string; rollback_state: string | null }>(
      `SELECT id, state, rollback_state FROM deployments
        WHERE app_id = $1 AND id <> $2 AND (state = 'running' OR rollback_state IN ('pending', 'running')
              OR (state = 'scheduled' AND lease_owner IS NOT NULL AND lease_until > clock_timestamp()))
        LIMIT 1`,
      [row.app_id, id],
    );
    if (busy.rows[0]) {
      const b = busy.rows[0];
      const what = b.rollback_state === 'pending' || b.rollback_state === 'running' ? 'is being rolled back' : b.state === 'running' ? 'is running' : 'is being fired';
      throw new ConflictError('app_busy', `deployment ${b.id} of this app ${what}; roll back once it has ended`);
    }
    if (!(await requestRollback(c, id, actor.id))) throw new ConflictError('rollback_running', 'a rollback of this deployment is already asked for');
    await insertEvents(c, [{ id, state: 'rollback_started', message: `rollback asked for by ${actor.email}` }]);
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'deployment.rollback', targetId: id, details: { app: row.app_name, state: row.state } });
    await notifyDue(c, null);
    return loadOut(c, actor.team_id, id);
  });
}
