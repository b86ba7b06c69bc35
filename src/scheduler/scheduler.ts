/**
 * The scheduler: fires each deployment at its instant, exactly once, across any number of
 * processes sharing one database.
 *
 * - The deployments table is the job table: `due_at` says when a row needs attention (its
 *   instant, a retry, the next rollout poll), a lease (`lease_owner`, `lease_until`) says which
 *   process owns it meanwhile. Claims use `FOR UPDATE SKIP LOCKED`, so two processes never
 *   take the same row.
 * - Every process LISTENs for "something became due" and polls as a safety net. It claims the
 *   rows due within `prefetchMs` *before* their instant, resolves their targets (secrets
 *   decrypted, credentials loaded) right away, and keeps one local timer per instant, so at the
 *   instant only the calls remain: they are made in one tight loop, with no await between them.
 * - Nothing else competes with those calls (docs/decisions/0002-precise-firing.md): the
 *   scheduled → running write and the final states of a burst wait until its calls have been
 *   answered (bounded), then go in a few batched statements.
 * - The database clock decides what is due: the process measures its offset from it at every
 *   claim and corrects its timers; it never fires before the instant.
 * - Webhooks are idempotent by their `Idempotency-Key`, so they go out at the instant while the
 *   scheduled → running write happens alongside. Other targets are marked running first, so a
 *   crash can never start them twice.
 * - While it runs them, the process renews its leases; if it dies, they lapse and another
 *   process resumes the work (`recover`), within `leaseSeconds`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dependencyVerdict, type DeploymentState } from '../core/state.ts';
import { backoffSeconds } from '../core/retry.ts';
import type { Pool } from '../db/pool.ts';
import { inTransaction } from '../db/pool.ts';
import { DUE_CHANNEL } from '../db/sql/events.ts';
import {
  appendLog, claimDue, type ClaimedRow, deferDeployment, dependencyStates, markAttempt, markRunning, nextDue,
  releaseLeases, renewLeases,
} from '../db/sql/deployments.ts';
import { insertEvents } from '../db/sql/events.ts';
import { claimable, heartbeatProcess, removeProcess } from '../db/sql/processes.ts';
import type { Listener } from '../db/listener.ts';
import { deploymentLogger, type Logger } from '../observability/logger.ts';
import { clockSkew, fireLag, providerCallDuration } from '../observability/metrics.ts';
import { providerFor } from '../providers/index.ts';
import type { Credentials, Provider, ProviderContext, StepResult } from '../providers/types.ts';
import { Finisher } from './finisher.ts';

export interface SchedulerOptions {
  pool: Pool;
  listener: Listener;
  logger: Logger;
  workerId: string;
  prefetchMs: number;
  pollIntervalMs: number;
  leaseSeconds: number;
  /** Rows claimed per statement. */
  batchSize?: number;
  /** Webhook calls made to a throwaway local server at start, DISPATCH_CHUNK at a time (default 2,000; 0: none). */
  warmUpCalls?: number;
  /**
   * Test only: pretend this machine's clock is off by this many ms (a process clock ahead of or
   * behind the database's). Default: SHIPCLOCK_TEST_CLOCK_OFFSET_MS, else 0. Never set it in production.
   */
  testClockOffsetMs?: number;
  /** Turns an app's stored target into the one a provider gets (secrets decrypted) and loads its credentials. */
  resolveTarget(row: ClaimedRow): Promise<{ target: Record<string, unknown>; credentials?: Credentials; secrets: string[] }>;
}

interface Held {
  row: ClaimedRow;
  /** Local-clock time until which our lease is certainly valid. */
  leaseValidUntil: number;
  inFlight: boolean;
  /** The instant (local timer slot) it waits for, while it waits. */
  slot?: number;
  /** Its target, resolved at claim time so that nothing is left to do at the instant but the call. */
  resolved?: Resolved;
}

type Resolved = Awaited<ReturnType<SchedulerOptions['resolveTarget']>>;

interface Slot {
  timer?: NodeJS.Timeout;
  members: Set<Held>;
}

interface CallOutcome {
  result: StepResult;
  lines: string[];
  secrets: string[];
}

/**
 * How long the writes of a burst may wait for its calls to be answered: long enough for a
 * 10,000-webhook burst on a small machine, short enough that a hanging receiver does not hold
 * the scheduled → running write for long (the lease covers the wait either way).
 */
function quietWindowMs(calls: number): number {
  return Math.min(5000, 1000 + calls / 2);
}

/** Resolves once every promise has settled or after `ms`, whichever comes first; never rejects. */
function settledOrAfter(ps: Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    Promise.allSettled(ps).then(() => {}),
    new Promise<void>((r) => { timer = setTimeout(r, ms); }),
  ]).finally(() => clearTimeout(timer));
}

const SKEW_WARN_MS = 500;
/** Offsets smaller than this are measurement noise on a local link; timers then use the local clock. */
const SKEW_IGNORE_MS = 50;
const DEPENDENCY_RECHECK_MS = 1000;
/** Bursts up to this size are not split between processes: one claim is cheaper than the coordination. */
const MIN_SHARE = 50;
/** Calls made in one go before the event loop gets a turn (to connect and write them). */
const DISPATCH_CHUNK = 100;
/** A rollout's timeout_seconds when its target does not say (the API's default). */
const DEFAULT_ROLLOUT_TIMEOUT_SECONDS = 1800;
/** A deployment claimed less than this long before its instant is not prepared (Provider.prepare). */
const PREPARE_MIN_LEAD_MS = 200;
/** After taking its share of a burst, a process lets the others take theirs for this long. */
const SHARE_PAUSE_MS = 100;

export class Scheduler {
  private readonly held = new Map<string, Held>();
  /** One timer per instant, however many deployments are due then. */
  private readonly slots = new Map<number, Slot>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly finisher: Finisher;
  private stopping = false;
  private cycling = false;
  private again = false;
  private wakeTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  /** Database clock minus local clock, ms. */
  private offsetMs = 0;
  private skewWarned = false;
  private readonly batch: number;
  /** Database-clock time of the next cycle already armed (the poll or the next due row). */
  private nextCycleAt = 0;
  private readonly onNotification = (channel: string, payload: string) => {
    if (channel !== DUE_CHANNEL) return;
    // A deployment scheduled far ahead needs no claim now: the next cycle (at most a poll
    // interval away) sees it in time. Ignoring those keeps a burst of scheduling (thousands of
    // POSTs) from turning into thousands of claim queries.
    const at = payload ? Date.parse(payload) : NaN;
    if (Number.isFinite(at) && at - this.o.prefetchMs > this.nextCycleAt + 50) return;
    this.kick();
  };
  private readonly onReconnect = () => this.kick();

  private readonly testOffsetMs: number;

  constructor(private readonly o: SchedulerOptions) {
    this.batch = o.batchSize ?? 500;
    this.testOffsetMs = o.testClockOffsetMs ?? (Number(process.env.SHIPCLOCK_TEST_CLOCK_OFFSET_MS) || 0);
    this.finisher = new Finisher(o.pool, o.logger);
  }

  start(): void {
    this.o.listener.on('notification', this.onNotification);
    this.o.listener.on('reconnect', this.onReconnect);
    this.pollTimer = setInterval(() => this.kick(), this.o.pollIntervalMs);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), Math.max(1000, (this.o.leaseSeconds * 1000) / 3));
    void heartbeatProcess(this.o.pool, this.o.workerId).catch(() => {});
    this.kick();
    void this.warmUp().catch(() => {});
  }

  /**
   * Loads and compiles the webhook path (undici loads lazily; V8 optimizes what runs often) with
   * calls to a throwaway local server, so that the first burst after a start is sent as fast as
   * later ones. No request leaves the machine. The calls go DISPATCH_CHUNK at a time, the shape
   * of a burst: with 10 at a time, the first 3,000-deployment burst of three fresh processes was
   * 1.8× slower than the next one (docs/decisions/0002).
   */
  private async warmUp(): Promise<void> {
    const provider = providerFor('webhook');
    const calls = this.o.warmUpCalls ?? 2000;
    if (!provider || calls <= 0) return;
    const started = performance.now();
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/warm-up`;
      for (let round = 0; round * DISPATCH_CHUNK < calls && !this.stopping; round++) {
        await Promise.all(Array.from({ length: Math.min(DISPATCH_CHUNK, calls - round * DISPATCH_CHUNK) }, (_, i) => provider.start({
          deployment: { id: `warm-up-${round}-${i}`, teamId: '', appId: '', appName: 'warm-up', runAt: new Date(), attempt: 1, startedAt: new Date() },
          target: { type: 'webhook', url, secret: 'warm-up', timeout_seconds: 5 },
          ref: null, signal: this.abort.signal, log: () => {},
        })));
      }
      this.o.logger.debug({ calls, ms: Math.round(performance.now() - started) }, 'webhook path warmed up');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }

  /** This machine's clock (shifted in tests that simulate a skewed machine). */
  private localNow(): number {
    return Date.now() + this.testOffsetMs;
  }

  /** Database clock now, as this process best knows it. */
  private dbNow(): number {
    return this.localNow() + this.offsetMs;
  }

  private measureOffset(dbNow: Date, sentAt: number, receivedAt: number): void {
    const raw = dbNow.getTime() - (sentAt + receivedAt) / 2;
    clockSkew.set(-raw / 1000);
    if (Math.abs(raw) > SKEW_WARN_MS) {
      if (!this.skewWarned) this.o.logger.warn({ skew_ms: Math.round(-raw) }, 'this machine\'s clock differs from the database\'s by more than 500 ms; the database clock decides when deployments fire');
      this.skewWarned = true;
    } else this.skewWarned = false;
    this.offsetMs = Math.abs(raw) < SKEW_IGNORE_MS ? 0 : raw;
  }

  /** Looks for due work now (coalesces concurrent calls). */
  kick(): void {
    if (this.stopping) return;
    if (this.cycling) {
      this.again = true;
      return;
    }
    this.cycling = true;
    this.cycle()
      .catch((err) => this.o.logger.warn({ err: (err as Error).message }, 'scheduler cycle failed; retrying on the next poll'))
      .finally(() => {
        this.cycling = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async cycle(): Promise<void> {
    let claimedAny = false;
    // Our share of what is due soon: with other scheduler processes alive, a burst is split
    // between them (each takes about 1/n), so that they all send at the instant.
    const { due, live } = await claimable(this.o.pool, this.o.prefetchMs, this.o.leaseSeconds);
    const share = live > 1 && due > MIN_SHARE ? Math.max(MIN_SHARE, Math.ceil(due / live)) : due;
    let budget = share;
    while (budget > 0) {
      if (this.stopping) return;
      const limit = Math.min(this.batch, budget);
      const sentAt = this.localNow();
      const rows = await claimDue(this.o.pool, this.o.workerId, this.o.prefetchMs, this.o.leaseSeconds, limit);
      const receivedAt = this.localNow();
      if (rows.length) this.measureOffset(rows[0].db_now, sentAt, receivedAt);
      for (const row of rows) {
        if (row.blocked) continue;
        claimedAny = true;
        this.hold(row, sentAt + this.o.leaseSeconds * 1000);
      }
      budget -= rows.length;
      if (rows.length < limit) break;
    }
    const limited = share < due && budget <= 0;
    if (share) this.o.logger.debug({ due, live, share, claimed: share - Math.max(0, budget) }, 'claimed');
    const sentAt = this.localNow();
    const { next, dbNow } = await nextDue(this.o.pool);
    this.measureOffset(dbNow, sentAt, this.localNow());
    clearTimeout(this.wakeTimer);
    // With nothing due, the poll is the next cycle.
    this.nextCycleAt = this.dbNow() + this.o.pollIntervalMs;
    if (!next || this.stopping) return;
    const untilDue = next.getTime() - this.dbNow();
    const wait = untilDue - this.o.prefetchMs;
    let delay: number;
    if (wait > 0) delay = Math.min(wait, this.o.pollIntervalMs);
    // We took our share: let the others take theirs, then take what is left (unless it is due now).
    else if (limited) delay = untilDue > SHARE_PAUSE_MS * 3 ? SHARE_PAUSE_MS : 0;
    // Something due is locked by another process's claim right now: look again shortly.
    else delay = claimedAny ? 0 : 50;
    this.nextCycleAt = this.dbNow() + delay;
    this.wakeTimer = setTimeout(() => this.kick(), delay);
  }

  /** Keeps a claimed row, starts resolving its target, and puts it in the slot of its instant. */
  private hold(row: ClaimedRow, leaseValidUntil: number): void {
    const existing = this.held.get(row.id);
    if (existing?.inFlight) return;
    if (existing) this.unslot(existing);
    const h: Held = { row, leaseValidUntil, inFlight: false };
    this.held.set(row.id, h);
    if (row.state === 'scheduled') {
      // Errors surface when the call is made (it resolves again then).
      this.o.resolveTarget(row).then((r) => {
        h.resolved = r;
        // Get ready for the call (a webhook opens its connection), unless it is about to be made anyway.
        if (h.row.due_at!.getTime() - this.dbNow() > PREPARE_MIN_LEAD_MS) {
          try {
            providerFor(String(row.target.type))?.prepare?.(r.target);
          } catch { /* the call will do without */ }
        }
      }, () => {});
    }
    this.arm(h);
  }

  private arm(h: Held): void {
    const due = h.row.due_at!.getTime();
    if (due - this.dbNow() <= 0) {
      // Coalesce everything already due into one batch on the next tick.
      this.queueNow(h);
      return;
    }
    let slot = this.slots.get(due);
    if (!slot) {
      slot = { members: new Set() };
      this.slots.set(due, slot);
      this.armSlot(due, slot);
    }
    slot.members.add(h);
    h.slot = due;
  }

  private armSlot(due: number, slot: Slot): void {
    slot.timer = setTimeout(() => {
      // Timers may wake a millisecond early, and the clock offset may have moved: never fire early.
      if (due - this.dbNow() > 0) return this.armSlot(due, slot);
      this.slots.delete(due);
      for (const h of slot.members) {
        h.slot = undefined;
        this.queueNow(h);
      }
    }, Math.max(1, due - this.dbNow()));
  }

  private unslot(h: Held): void {
    const due = h.slot;
    if (due === undefined) return;
    h.slot = undefined;
    const slot = this.slots.get(due);
    if (!slot) return;
    slot.members.delete(h);
    if (!slot.members.size) {
      clearTimeout(slot.timer);
      this.slots.delete(due);
    }
  }

  private nowQueue: Held[] = [];
  private nowScheduled = false;

  private queueNow(h: Held): void {
    this.nowQueue.push(h);
    if (this.nowScheduled) return;
    this.nowScheduled = true;
    setImmediate(() => {
      this.nowScheduled = false;
      const group = this.nowQueue;
      this.nowQueue = [];
      this.track(this.fire(group));
    });
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    p.catch((err) => this.o.logger.error({ err: (err as Error).message }, 'scheduler step failed')).finally(() => this.inFlight.delete(p));
  }

  /** Runs a group of held rows whose time has come. */
  private async fire(group: Held[]): Promise<void> {
    const live: Held[] = [];
    const lapsed: string[] = [];
    for (const h of group) {
      if (this.stopping || this.held.get(h.row.id) !== h) continue;
      // Our lease may have lapsed (the process stalled): another process may own the row now.
      if (this.localNow() > h.leaseValidUntil - 1000) {
        this.held.delete(h.row.id);
        lapsed.push(h.row.id);
        continue;
      }
      h.inFlight = true;
      live.push(h);
    }
    const releasing = lapsed.length ? releaseLeases(this.o.pool, this.o.workerId, lapsed).catch(() => {}) : null;
    if (!live.length) {
      await releasing;
      return;
    }

    const now = this.dbNow();
    // Expired before they could start: missed, never run late.
    const toRun: Held[] = [];
    const needDeps: Held[] = [];
    const running: Held[] = [];
    const missed: Held[] = [];
    for (const h of live) {
      if (h.row.state === 'running') running.push(h);
      else if (h.row.state !== 'scheduled') continue;
      else if (now > h.row.expires_at.getTime()) missed.push(h);
      else if (h.row.dependency_id) needDeps.push(h);
      else toRun.push(h);
    }
    // The calls first: nothing is awaited before them.
    const started = toRun.length ? this.startScheduled(toRun) : null;
    for (const h of missed) {
      this.end(h, 'missed', `not started within ${h.row.expires_after_seconds} s of its instant (expires_after_seconds); never run late`);
    }
    if (needDeps.length) {
      const states = await dependencyStates(this.o.pool, needDeps.map((h) => h.row.dependency_id!));
      const ready: Held[] = [];
      for (const h of needDeps) {
        const depState = states.get(h.row.dependency_id!) ?? null;
        const verdict = dependencyVerdict(depState);
        if (verdict === 'run') ready.push(h);
        else if (verdict === 'skip') this.end(h, 'skipped', `dependency ${h.row.dependency_id} ended ${depState}; this deployment was not run`);
        else await this.waitForDependency(h, depState!);
      }
      if (ready.length) await this.startScheduled(ready);
    }
    for (const h of running) this.track(this.continueRunning(h));
    await started;
    await releasing;
  }

  private async waitForDependency(h: Held, depState: DeploymentState): Promise<void> {
    const first = h.row.due_at!.getTime() === h.row.run_at.getTime();
    await inTransaction(this.o.pool, async (c) => {
      await deferDeployment(c, this.o.workerId, h.row.id, { afterMs: DEPENDENCY_RECHECK_MS, phase: null, log: '', capAtExpiry: true });
      if (first) await insertEvents(c, [{ id: h.row.id, state: 'scheduled', message: `waiting for dependency ${h.row.dependency_id} (${depState})` }]);
    });
    this.release(h);
  }

  /**
   * scheduled → running, then the first attempt. Webhooks are called at once, in one loop: a
   * repeat is harmless (same Idempotency-Key), so they need not wait for the write. Their
   * scheduled → running write, like their final states, waits until the burst's calls are
   * answered (bounded by quietWindowMs), so that it does not compete with them for this machine
   * and the database's. Other targets are marked running first: they must never start twice.
   */
  private async startScheduled(hs: Held[]): Promise<void> {
    const webhooks: Held[] = [];
    const others: Held[] = [];
    for (const h of hs) (h.row.target.type === 'webhook' ? webhooks : others).push(h);
    let marking: Promise<unknown> | null = null;
    if (webhooks.length) {
      const calls = new Array<Promise<CallOutcome>>(webhooks.length);
      // Each call's lag is taken as it is made and given to the histogram after the burst.
      const lags = new Float64Array(webhooks.length);
      for (let i = 0; i < webhooks.length; i++) {
        if (i > 0 && i % DISPATCH_CHUNK === 0) {
          // Let the calls made so far connect and write while the rest are made: the receivers
          // start on the first ones instead of waiting for the whole burst to be dispatched.
          this.o.logger.debug({ dispatched: i, lag_ms: this.dbNow() - webhooks[0].row.run_at.getTime() }, 'dispatching');
          await new Promise<void>((r) => setImmediate(r));
        }
        webhooks[i].row.attempts = 1;
        lags[i] = Math.max(0, this.dbNow() - webhooks[i].row.run_at.getTime()) / 1000;
        calls[i] = this.call(webhooks[i], 'start');
      }
      this.o.logger.debug({ webhooks: webhooks.length, lag_ms: this.dbNow() - webhooks[0].row.run_at.getTime() }, 'fired');
      const quiet = settledOrAfter(calls, quietWindowMs(calls.length));
      this.finisher.holdUntil(quiet);
      const marked = quiet.then(() => {
        for (const lag of lags) fireLag.observe(lag);
        return this.markRunning(webhooks);
      });
      for (let i = 0; i < webhooks.length; i++) this.track(this.complete(webhooks[i], calls[i], marked));
      marking = marked;
    }
    if (others.length) {
      const marked = await this.markRunning(others);
      for (const h of others) {
        if (!marked.has(h.row.id)) {
          this.release(h);
          continue;
        }
        fireLag.observe(Math.max(0, this.dbNow() - h.row.run_at.getTime()) / 1000);
        h.row.attempts = 1;
        this.track(this.step(h, 'start'));
      }
    }
    await marking;
  }

  private async markRunning(hs: Held[]): Promise<Set<string>> {
    if (!hs.length) return new Set();
    for (let attempt = 0; ; attempt++) {
      try {
        return await inTransaction(this.o.pool, async (c) => {
          const ids = await markRunning(c, this.o.workerId, hs.map((h) => h.row.id));
          await insertEvents(c, ids.map((id) => ({ id, state: 'running', message: `attempt 1 on ${this.o.workerId}` })));
          return new Set(ids);
        });
      } catch (err) {
        // The database is away: webhooks already went out; keep trying while our leases hold.
        if (attempt > 20 || this.stopping) throw err;
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      }
    }
  }

  private async continueRunning(h: Held): Promise<void> {
    const row = h.row;
    if (row.phase === 'following') return this.step(h, 'poll');
    if (row.phase === 'retry_wait') {
      row.attempts += 1;
      if (!(await markAttempt(this.o.pool, this.o.workerId, row.id, row.attempts))) return this.release(h);
      await insertEvents(this.o.pool, [{ id: row.id, state: 'running', message: `attempt ${row.attempts} on ${this.o.workerId}` }]);
      return this.step(h, 'start');
    }
    // phase 'executing' with a lapsed lease: the process running it died mid-call.
    return this.step(h, 'recover');
  }

  /** Runs one provider call for a held row and applies its outcome. */
  private step(h: Held, kind: 'start' | 'poll' | 'recover'): Promise<void> {
    return this.complete(h, this.call(h, kind));
  }

  /**
   * Makes one provider call. With the target resolved at claim time, the call is made
   * synchronously, before this returns; it never rejects.
   */
  private async call(h: Held, kind: 'start' | 'poll' | 'recover'): Promise<CallOutcome> {
    const row = h.row;
    const provider = providerFor(String(row.target.type));
    const lines: string[] = [];
    let result: StepResult;
    let secrets: string[] = [];
    const t0 = performance.now();
    if (!provider) {
      result = { kind: 'failed', error: `no provider for target type "${String(row.target.type)}"` };
    } else if (kind === 'recover' && !provider.recover) {
      result = { kind: 'failed', error: `shipclock stopped while this ${provider.type} deployment was starting; it is not started again automatically, so that it cannot deploy twice` };
    } else if (kind === 'poll' && !provider.poll) {
      result = { kind: 'failed', error: `${provider.type} cannot follow a rollout` };
    } else {
      try {
        const resolved = h.resolved ?? (await this.o.resolveTarget(row));
        h.resolved = undefined; // decrypted secrets are kept no longer than needed
        secrets = resolved.secrets;
        const ctx: ProviderContext = {
          deployment: {
            id: row.id, teamId: row.team_id, appId: row.app_id, appName: row.app_name, runAt: row.run_at,
            attempt: Math.max(1, row.attempts), startedAt: row.started_at ?? new Date(this.dbNow()),
          },
          target: resolved.target,
          credentials: resolved.credentials,
          ref: (row.provider_ref as ProviderContext['ref']) ?? null,
          signal: this.abort.signal,
          log: (line) => lines.push(`${new Date().toISOString()} ${line}\n`),
        };
        const p = provider as Provider;
        result = await (kind === 'start' ? p.start(ctx) : kind === 'poll' ? p.poll!(ctx) : p.recover!(ctx));
      } catch (err) {
        result = { kind: 'retry', error: (err as Error).message || String(err) };
      }
      providerCallDuration.observe({ provider: provider.type, outcome: result.kind }, (performance.now() - t0) / 1000);
    }
    return { result, lines, secrets };
  }

  /** Applies the outcome of a call (after the scheduled → running write, when one is pending). */
  private async complete(h: Held, call: Promise<CallOutcome>, marked?: Promise<Set<string>>): Promise<void> {
    const { result, lines, secrets } = await call;
    const row = h.row;
    if (marked) {
      // The scheduled → running write must land before the outcome's.
      const ok = await marked.catch(() => new Set<string>());
      if (!ok.has(row.id)) {
        this.o.logger.warn({ deployment_id: row.id }, 'deployment was canceled or taken over while its webhook was sent');
        return this.release(h);
      }
    }
    if (this.stopping && this.abort.signal.aborted) {
      // Shutdown cut the call short: hand it back; the next process resumes it (recover).
      await appendLog(this.o.pool, row.id, lines.join('')).catch(() => {});
      return this.handBack([h]);
    }
    await this.apply(h, result, redactAll(lines.join(''), secrets), secrets);
  }

  private async apply(h: Held, result: StepResult, log: string, secrets: string[]): Promise<void> {
    const row = h.row;
    if (result.kind === 'succeeded') return this.end(h, 'succeeded', null, log, result.ref ?? null, result.message);
    if (result.kind === 'failed') return this.end(h, 'failed', redactAll(result.error, secrets), log, result.ref ?? null);
    if (result.kind === 'follow') {
      const firstFollow = row.phase !== 'following';
      if (firstFollow) this.logFor(row).info({ provider_ref: result.ref }, 'rollout started; following it');
      await inTransaction(this.o.pool, async (c) => {
        await deferDeployment(c, this.o.workerId, row.id, { afterMs: result.afterSeconds * 1000, phase: 'following', ref: result.ref, log });
        if (firstFollow || result.message) {
          await insertEvents(c, [{ id: row.id, state: 'running', message: result.message ?? 'rollout started; following it' }]);
        }
      });
      return this.release(h);
    }
    // retry
    const error = redactAll(result.error, secrets);
    if (row.phase === 'following') {
      // A transient error while following a rollout: the deployment started already, so this is
      // not a failed attempt; poll again after a backoff. The rollout's timeout bounds it here
      // too, since the provider that would enforce it may not even be reached (a credential that
      // can no longer be loaded, a key that does not decrypt).
      const timeoutS = Number(row.target.timeout_seconds ?? DEFAULT_ROLLOUT_TIMEOUT_SECONDS);
      if (row.started_at && this.dbNow() - row.started_at.getTime() > timeoutS * 1000) {
        return this.end(h, 'failed', `the rollout did not finish within ${timeoutS} s (timeout_seconds); last error: ${error}`, log, result.ref ?? null);
      }
      this.logFor(row).warn({ error }, 'following the rollout failed; trying again');
      const wait = result.afterSeconds ?? Math.max(1, row.retry_backoff_seconds);
      await inTransaction(this.o.pool, async (c) => {
        await deferDeployment(c, this.o.workerId, row.id, { afterMs: wait * 1000, phase: 'following', ref: result.ref ?? null, log });
        await insertEvents(c, [{ id: row.id, state: 'running', message: `following the rollout failed: ${error}; trying again in ${wait} s` }]);
      });
      return this.release(h);
    }
    const max = row.retry_max_attempts;
    if (row.attempts >= max) {
      return this.end(h, 'failed', `${error} (gave up after ${row.attempts} attempt${row.attempts === 1 ? '' : 's'})`, log, result.ref ?? null);
    }
    const wait = result.afterSeconds ?? backoffSeconds({ max_attempts: max, backoff_seconds: row.retry_backoff_seconds }, row.attempts);
    this.logFor(row).warn({ attempt: row.attempts, error, retry_in_s: wait }, 'attempt failed; retrying');
    await inTransaction(this.o.pool, async (c) => {
      await deferDeployment(c, this.o.workerId, row.id, { afterMs: wait * 1000, phase: 'retry_wait', ref: result.ref ?? null, log, error });
      await insertEvents(c, [{ id: row.id, state: 'running', message: `attempt ${row.attempts} failed: ${error}; retrying in ${wait} s` }]);
    });
    this.release(h);
  }

  private end(h: Held, state: DeploymentState, error: string | null, log = '', ref: Record<string, unknown> | null = null, message?: string): void {
    this.finisher.add({ id: h.row.id, state, error, log, ref }, message ?? error ?? state, () => {
      this.release(h);
      // Logged once the state is written (after a burst's quiet window), not during the sends.
      const line = { state, attempts: h.row.attempts, ...(error ? { error } : {}) };
      if (state === 'succeeded') this.logFor(h.row).info(line, 'deployment succeeded');
      else this.logFor(h.row).warn(line, `deployment ${state}`);
    });
  }

  /** A logger whose lines carry the deployment, its app and its team. */
  private logFor(row: { id: string; app_name: string; team_id: string }): Logger {
    return deploymentLogger(this.o.logger, { deploymentId: row.id, app: row.app_name, team: row.team_id });
  }

  private release(h: Held): void {
    this.unslot(h);
    h.resolved = undefined;
    if (this.held.get(h.row.id) === h) this.held.delete(h.row.id);
  }

  private async handBack(hs: Held[]): Promise<void> {
    await releaseLeases(this.o.pool, this.o.workerId, hs.map((h) => h.row.id)).catch(() => {});
    for (const h of hs) this.release(h);
  }

  private async heartbeat(): Promise<void> {
    void heartbeatProcess(this.o.pool, this.o.workerId).catch(() => {});
    const ids = [...this.held.keys()];
    if (!ids.length) return;
    const sentAt = this.localNow();
    try {
      await renewLeases(this.o.pool, this.o.workerId, ids, this.o.leaseSeconds);
      for (const id of ids) {
        const h = this.held.get(id);
        if (h) h.leaseValidUntil = sentAt + this.o.leaseSeconds * 1000;
      }
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'cannot renew leases; the database is unreachable');
    }
  }

  /** Number of deployments this process holds (claimed, not yet handed back or ended). */
  get holding(): number {
    return this.held.size;
  }

  /**
   * Graceful stop: claims nothing more, hands back what has not started, lets in-flight calls
   * finish for up to `graceMs`, then aborts them and hands them back too.
   */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.o.listener.off('notification', this.onNotification);
    this.o.listener.off('reconnect', this.onReconnect);
    clearInterval(this.pollTimer);
    clearTimeout(this.wakeTimer);
    const waiting = [...this.held.values()].filter((h) => !h.inFlight);
    for (const h of waiting) this.unslot(h);
    await this.handBack(waiting);
    const deadline = Date.now() + graceMs;
    while (this.inFlight.size && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, 100))]);
    }
    if (this.inFlight.size) {
      this.abort.abort();
      await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, 3000))]);
    }
    await this.finisher.close();
    clearInterval(this.heartbeatTimer);
    await this.handBack([...this.held.values()]);
    await removeProcess(this.o.pool, this.o.workerId).catch(() => {});
  }
}

function redactAll(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out;
}
