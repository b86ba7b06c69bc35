/**
 * The instant: what happens to a group of held rows whose time has come.
 *
 * - Each row is sorted first: past its expiry → `missed`; a dependency that will never succeed →
 *   `skipped`, one still running → wait (looked at again each second, up to the expiry); a fire
 *   gate that says "not now" (gates.ts) → the gate parks or ends it; otherwise it runs.
 * - Webhooks are idempotent by their `Idempotency-Key`, so they are called at once, in one loop
 *   (DISPATCH_CHUNK at a time, yielding between chunks), with nothing awaited before them. Their
 *   scheduled → running write, like their final states, waits until the burst's calls have been
 *   answered (bounded by quietWindowMs), so it does not compete with them for the machine and the
 *   database. Other targets are marked running first: they must never start twice.
 * - Rows already running (a retry due, a rollout's next poll, a call cut short by a crash) take
 *   their next step: another attempt, a poll, or `recover`. Finished rows due for their rollback
 *   take its next step (rollback.ts).
 */
import { dependencyVerdict, type DeploymentState } from '../core/state.ts';
import { inTransaction } from '../db/pool.ts';
import { deferDeployment, dependencyStates, markAttempt, markRunning } from '../db/sql/deployments.ts';
import { insertEvents } from '../db/sql/events.ts';
import { fireLag } from '../observability/metrics.ts';
import { providerFor } from '../providers/index.ts';
import type { Provider, ProviderContext, StepResult } from '../providers/types.ts';
import type { DbClock } from './clock.ts';
import type { Finisher } from './finisher.ts';
import { checkGates, gateNamed, hasGates, type GateVerdict } from './gates.ts';
import type { Leases } from './leases.ts';
import type { Outcomes } from './outcome.ts';
import { isRollbackDue, type Rollbacks } from './rollback.ts';
import type { CallOutcome, Held, Run } from './types.ts';

/** Calls made in one go before the event loop gets a turn (to connect and write them). */
export const DISPATCH_CHUNK = 100;
const DEPENDENCY_RECHECK_MS = 1000;
/**
 * Rows written scheduled → running per transaction: a 50,000-row burst in one statement built
 * its parameters, events and answer all at once (tens of MB at the burst's peak).
 */
const MARK_CHUNK = 2000;
/** A burst's answered calls are applied this many at a time, as the finisher makes room for them. */
const SETTLE_CHUNK = 1000;

/**
 * How long the writes of a burst may wait for its calls to be answered: 1 s plus 0.5 ms per call,
 * at most QUIET_MAX_MS (50,000 calls to one receiver take 5–8 s on 2 cores; with the writes
 * started at 5 s they competed with the last calls). A receiver that stops answering ends the
 * wait sooner: QUIET_STALL_MS without an answer. The lease covers the wait either way (a burst
 * claimed ahead is leased until its instant plus the lease, 30 s by default).
 */
function quietWindowMs(calls: number): number {
  return Math.min(QUIET_MAX_MS, 1000 + calls / 2);
}
const QUIET_MAX_MS = 20_000;
const QUIET_STALL_MS = 1000;

/**
 * Resolves when `done` does, when `stallMs` pass without an answer (`lastAnswerAt`, a
 * performance.now() time, starting from now), or after `limitMs`, whichever comes first.
 */
export function quietWindow(done: Promise<unknown>, lastAnswerAt: () => number, limitMs: number, stallMs: number): Promise<void> {
  const from = performance.now();
  let timer: NodeJS.Timeout | undefined;
  return new Promise<void>((resolve) => {
    const check = () => {
      const now = performance.now();
      if (now - Math.max(from, lastAnswerAt()) >= stallMs || now - from >= limitMs) resolve();
      else timer = setTimeout(check, stallMs / 4);
    };
    timer = setTimeout(check, stallMs / 4);
    void done.then(() => resolve(), () => resolve());
  }).finally(() => clearTimeout(timer));
}

export class Burst {
  constructor(
    private readonly run: Run,
    private readonly clock: DbClock,
    private readonly leases: Leases,
    private readonly finisher: Finisher,
    private readonly outcomes: Outcomes,
    /** The current gate epoch (bumped by every GATES_CHANNEL notification). */
    private readonly gateEpoch: () => number,
    private readonly rollbacks: Rollbacks,
  ) {}

  /** Runs a group of held rows whose time has come. */
  async fire(group: Held[]): Promise<void> {
    const live: Held[] = [];
    const lapsed: string[] = [];
    for (const h of group) {
      if (this.run.stopping || !this.leases.isCurrent(h)) continue;
      // Our lease may have lapsed (the process stalled): another process may own the row now.
      if (this.leases.lapsing(h)) {
        this.leases.drop(h.row.id);
        lapsed.push(h.row.id);
        continue;
      }
      h.inFlight = true;
      live.push(h);
    }
    const releasing = lapsed.length ? this.leases.handBackIds(lapsed) : null;
    if (!live.length) {
      await releasing;
      return;
    }

    const now = this.clock.dbNow();
    let toRun: Held[] = [];
    const needDeps: Held[] = [];
    const running: Held[] = [];
    const missed: Held[] = [];
    const heldOut: Held[] = [];
    const rollingBack: Held[] = [];
    for (const h of live) {
      // A finished deployment due for its rollback (rollback.ts).
      if (isRollbackDue(h.row)) rollingBack.push(h);
      else if (h.row.state === 'running') running.push(h);
      // A held row comes due at its expiry (a freeze held it and nobody released it): missed.
      else if (h.row.state === 'held') heldOut.push(h);
      else if (h.row.state !== 'scheduled') continue;
      // Expired before they could start: missed, never run late.
      else if (now > h.row.expires_at.getTime()) missed.push(h);
      else if (h.row.dependency_id) needDeps.push(h);
      else toRun.push(h);
    }
    // The calls first: nothing is awaited before them (unless a gate's verdict is not known yet).
    if (toRun.length && hasGates()) toRun = await this.passGates(toRun);
    const started = toRun.length ? this.startScheduled(toRun) : null;
    for (const h of missed) {
      this.outcomes.end(h, 'missed', `not started within ${h.row.expires_after_seconds} s of its instant (expires_after_seconds); never run late`);
    }
    for (const h of heldOut) {
      this.outcomes.end(h, 'missed', `still held at its expiry (${h.row.expires_after_seconds} s after its instant), never released: ${h.row.error ?? 'held by a deploy freeze'}`);
    }
    if (needDeps.length) {
      const states = await dependencyStates(this.run.o.pool, needDeps.map((h) => h.row.dependency_id!));
      let ready: Held[] = [];
      for (const h of needDeps) {
        const depState = states.get(h.row.dependency_id!) ?? null;
        const verdict = dependencyVerdict(depState);
        if (verdict === 'run') ready.push(h);
        else if (verdict === 'skip') this.outcomes.end(h, 'skipped', `dependency ${h.row.dependency_id} ended ${depState}; this deployment was not run`);
        else await this.waitForDependency(h, depState!);
      }
      if (ready.length && hasGates()) ready = await this.passGates(ready);
      if (ready.length) await this.startScheduled(ready);
    }
    for (const h of running) this.run.track(this.continueRunning(h));
    for (const h of rollingBack) this.run.track(this.rollbacks.step(h));
    await started;
    await releasing;
  }

  /**
   * The rows the fire gates let run now. A claim-time verdict is used as it is unless a gate
   * change was announced since (or it is still pending or failed); those rows are checked again
   * now. The rows a gate stopped are handed to it to park or end.
   */
  private async passGates(hs: Held[]): Promise<Held[]> {
    const epoch = this.gateEpoch();
    const stale: Held[] = [];
    const verdicts = new Map<Held, GateVerdict>();
    for (const h of hs) {
      if (h.gate?.verdicts && h.gate.epoch === epoch) {
        const v = h.gate.verdicts.get(h.row.id);
        if (v) verdicts.set(h, v);
      } else stale.push(h);
    }
    if (stale.length) {
      // A check made at claim time may still be on its way; a fresh one is cheaper to reason about.
      const fresh = await checkGates(this.run.o.pool, stale.map((h) => h.row));
      for (const h of stale) {
        const v = fresh.get(h.row.id);
        if (v) verdicts.set(h, v);
      }
    }
    if (!verdicts.size) return hs;
    const byGate = new Map<string, Array<{ h: Held; message: string }>>();
    for (const [h, v] of verdicts) {
      const list = byGate.get(v.gate) ?? [];
      list.push({ h, message: v.message });
      byGate.set(v.gate, list);
    }
    for (const [name, stopped] of byGate) {
      const gate = gateNamed(name)!;
      try {
        await inTransaction(this.run.o.pool, (c) => gate.apply(c, this.run.o.workerId, stopped.map((s) => ({ row: s.h.row, message: s.message }))));
        for (const s of stopped) {
          this.outcomes.logFor(s.h.row).info({ gate: name, reason: s.message }, 'not run now: a fire gate stopped it');
          this.leases.release(s.h);
        }
      } catch (err) {
        // Not written: hand them back, so that they are looked at again (never run unchecked).
        this.run.o.logger.warn({ gate: name, err: (err as Error).message }, 'cannot apply a fire gate\'s verdict; handing the rows back');
        await this.leases.handBack(stopped.map((s) => s.h));
      }
    }
    return hs.filter((h) => !verdicts.has(h));
  }

  private async waitForDependency(h: Held, depState: DeploymentState): Promise<void> {
    const first = h.row.due_at!.getTime() === h.row.run_at.getTime();
    await inTransaction(this.run.o.pool, async (c) => {
      await deferDeployment(c, this.run.o.workerId, h.row.id, { afterMs: DEPENDENCY_RECHECK_MS, phase: null, log: '', capAtExpiry: true });
      if (first) await insertEvents(c, [{ id: h.row.id, state: 'scheduled', message: `waiting for dependency ${h.row.dependency_id} (${depState})` }]);
    });
    this.leases.release(h);
  }

  /** scheduled → running, then the first attempt (webhooks at once, the others after the write). */
  private async startScheduled(hs: Held[]): Promise<void> {
    const webhooks: Held[] = [];
    const others: Held[] = [];
    for (const h of hs) (h.row.target.type === 'webhook' ? webhooks : others).push(h);
    let marking: Promise<unknown> | null = null;
    if (webhooks.length) marking = this.sendWebhooks(webhooks);
    if (others.length) {
      const marked = await this.markRunning(others);
      for (const h of others) {
        if (!marked.has(h.row.id)) {
          this.leases.release(h);
          continue;
        }
        fireLag.observe(Math.max(0, this.clock.dbNow() - h.row.run_at.getTime()) / 1000);
        h.row.attempts = 1;
        this.run.track(this.step(h, 'start'));
      }
    }
    await marking;
  }

  /**
   * A burst's webhooks: made at once, lane by lane (a provider's `lane`, the receiver's origin
   * for webhooks): up to the lane's width at once, and the next one as each is answered, so a
   * burst of 50,000 to one receiver never holds 50,000 calls in memory at once. The first calls
   * of the lanes go DISPATCH_CHUNK at a time with a turn of the event loop between chunks. The
   * scheduled → running write and the final states wait until the calls are answered (bounded by
   * quietWindowMs); until that write lands, an answer is only kept (its outcome, nothing else).
   * Resolves when every call is answered and that write is done.
   */
  private sendWebhooks(webhooks: Held[]): Promise<unknown> {
    const n = webhooks.length;
    const runAt = webhooks[0].row.run_at.getTime();
    // Each call's lag is taken as it is made and given to the histogram after the burst.
    const lags = new Float64Array(n);
    // Answers that came before the scheduled → running write, applied once it has landed.
    let waiting: Array<CallOutcome | undefined> | undefined = new Array<CallOutcome | undefined>(n);
    let markedIds: Set<string> | undefined;
    let made = 0;
    let answered = 0;
    let allAnswered!: () => void;
    const done = new Promise<void>((r) => { allAnswered = r; });
    let lastAnswerAt = performance.now();
    const quiet = quietWindow(done, () => lastAnswerAt, quietWindowMs(n), QUIET_STALL_MS);
    this.finisher.holdUntil(quiet);
    const marked = quiet
      .then(() => {
        for (const lag of lags) fireLag.observe(lag);
        return this.markRunning(webhooks);
      })
      // Not written (the database stayed away for long): every row is let go; leases lapse and
      // another process resumes them (recover).
      .catch(() => new Set<string>())
      .then((ids) => {
        markedIds = ids;
        const kept = waiting!;
        waiting = undefined;
        // Applied as the finisher makes room (SETTLE_CHUNK at a time), not 50,000 at once.
        this.run.track((async () => {
          for (let i = 0; i < n; i++) {
            if (!kept[i]) continue;
            this.run.track(this.outcomes.settle(webhooks[i], kept[i]!, ids));
            kept[i] = undefined;
            // One batch being written and the next one ready.
            if (i % SETTLE_CHUNK === SETTLE_CHUNK - 1) await this.finisher.roomFor(2 * SETTLE_CHUNK);
          }
        })());
      });

    interface Lane { next: number; members: number[]; width: number }
    const lanes = new Map<string, Lane>();
    const unlimited: Lane = { next: 0, members: [], width: Infinity };
    const provider = providerFor('webhook');
    for (let i = 0; i < n; i++) {
      const l = provider?.lane?.(webhooks[i].row.target);
      let lane = unlimited;
      if (l) {
        lane = lanes.get(l.key) ?? { next: 0, members: [], width: l.width };
        lanes.set(l.key, lane);
      }
      lane.members.push(i);
    }
    const start = (lane: Lane) => {
      const i = lane.members[lane.next++];
      const h = webhooks[i];
      h.row.attempts = 1;
      lags[i] = Math.max(0, this.clock.dbNow() - h.row.run_at.getTime()) / 1000;
      made++;
      void this.call(h, 'start').then((outcome) => {
        lastAnswerAt = performance.now();
        if (lane.next < lane.members.length) start(lane);
        if (waiting) waiting[i] = outcome;
        else this.run.track(this.outcomes.settle(h, outcome, markedIds));
        if (++answered === n) allAnswered();
      });
    };

    const first = async () => {
      for (const lane of [unlimited, ...lanes.values()]) {
        const upTo = Math.min(lane.members.length, lane.width);
        while (lane.next < upTo) {
          if (made > 0 && made % DISPATCH_CHUNK === 0) {
            // Let the calls made so far connect and write while the rest are made: the receivers
            // start on the first ones instead of waiting for the whole burst to be dispatched.
            this.run.o.logger.debug({ dispatched: made, lag_ms: this.clock.dbNow() - runAt }, 'dispatching');
            await new Promise<void>((r) => setImmediate(r));
          }
          start(lane);
        }
      }
      this.run.o.logger.debug({ webhooks: n, lanes: lanes.size, first: made, lag_ms: this.clock.dbNow() - runAt }, 'fired');
    };
    first().catch((err) => this.run.o.logger.error({ err: (err as Error).message }, 'dispatching a burst failed'));
    // Over for the scheduler (a stop may proceed) once every call is answered and the running
    // state written; each outcome is applied (and tracked) on its own.
    return Promise.all([marked, done]);
  }

  /**
   * scheduled → running with its timeline event, MARK_CHUNK rows per transaction, their leases
   * renewed on the way; the ids it changed.
   */
  private async markRunning(hs: Held[]): Promise<Set<string>> {
    const out = new Set<string>();
    const { pool, workerId, leaseSeconds } = this.run.o;
    for (let from = 0; from < hs.length; from += MARK_CHUNK) {
      const held = hs.slice(from, from + MARK_CHUNK);
      const chunk = held.map((h) => h.row.id);
      for (let attempt = 0; ; attempt++) {
        try {
          const sentAt = this.clock.localNow();
          const ids = await inTransaction(pool, async (c) => {
            const changed = await markRunning(c, workerId, chunk, leaseSeconds);
            await insertEvents(c, changed.map((id) => ({ id, state: 'running', message: `attempt 1 on ${workerId}` })));
            return changed;
          });
          for (const id of ids) out.add(id);
          for (const h of held) if (out.has(h.row.id)) this.leases.renewed(h, sentAt);
          break;
        } catch (err) {
          // The database is away: webhooks already went out; keep trying while our leases hold.
          if (attempt > 20 || this.run.stopping) throw err;
          await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
        }
      }
    }
    return out;
  }

  private async continueRunning(h: Held): Promise<void> {
    const row = h.row;
    const { pool, workerId } = this.run.o;
    if (row.phase === 'following') return this.step(h, 'poll');
    if (row.phase === 'retry_wait') {
      row.attempts += 1;
      if (!(await markAttempt(pool, workerId, row.id, row.attempts))) return this.leases.release(h);
      await insertEvents(pool, [{ id: row.id, state: 'running', message: `attempt ${row.attempts} on ${workerId}` }]);
      return this.step(h, 'start');
    }
    // phase 'executing' with a lapsed lease: the process running it died mid-call.
    return this.step(h, 'recover');
  }

  /** Runs one provider call for a held row and applies its outcome. */
  private step(h: Held, kind: 'start' | 'poll' | 'recover'): Promise<void> {
    return this.outcomes.complete(h, this.call(h, kind));
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
    let secrets: readonly string[] = [];
    let took: CallOutcome['took'];
    const t0 = performance.now();
    if (!provider) {
      result = { kind: 'failed', error: `no provider for target type "${String(row.target.type)}"` };
    } else if (kind === 'recover' && !provider.recover) {
      result = { kind: 'failed', error: `shipclock stopped while this ${provider.type} deployment was starting; it is not started again automatically, so that it cannot deploy twice` };
    } else if (kind === 'poll' && !provider.poll) {
      result = { kind: 'failed', error: `${provider.type} cannot follow a rollout` };
    } else {
      try {
        const resolved = h.resolved ?? (await this.run.o.resolveTarget(row));
        h.resolved = undefined; // decrypted secrets are kept no longer than needed
        secrets = resolved.secrets;
        const ctx: ProviderContext = {
          deployment: {
            id: row.id, teamId: row.team_id, appId: row.app_id, appName: row.app_name, runAt: row.run_at,
            attempt: Math.max(1, row.attempts), startedAt: row.started_at ?? new Date(this.clock.dbNow()),
          },
          target: resolved.target,
          credentials: resolved.credentials,
          ref: (row.provider_ref as ProviderContext['ref']) ?? null,
          signal: this.run.signal,
          log: (line) => lines.push(`${isoNow()} ${line}\n`),
        };
        const p = provider as Provider;
        result = await (kind === 'start' ? p.start(ctx) : kind === 'poll' ? p.poll!(ctx) : p.recover!(ctx));
      } catch (err) {
        result = { kind: 'retry', error: (err as Error).message || String(err) };
      }
      // Observed when the outcome is applied (Outcomes.settle): for a burst's calls, after the sends.
      took = { provider: provider.type, seconds: (performance.now() - t0) / 1000 };
    }
    return { result, lines, secrets, took };
  }
}

let isoAt = 0;
let isoText = '';
/** The time now as ISO 8601 text, made once per millisecond (a burst logs a line per call, many in one ms). */
function isoNow(): string {
  const now = Date.now();
  if (now !== isoAt) {
    isoAt = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}
