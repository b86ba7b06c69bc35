/**
 * Claiming: finding what is due and taking this process's share of it, ahead of the instant.
 *
 * - Every process LISTENs for "something became due" (DUE_CHANNEL) and polls every
 *   `pollIntervalMs` as a safety net; `kick` coalesces the two into one cycle at a time.
 * - A cycle claims the rows due within its horizon that no live process owns
 *   (`FOR UPDATE SKIP LOCKED`, leased for `leaseSeconds`, `batchSize` per statement). The horizon
 *   is `prefetchMs`, longer before a large burst: claiming takes time per row (measured here), so
 *   50,000 rows due at one instant are claimed starting early enough to be held before it. With other
 *   scheduler processes alive, a burst is shared: this one takes about ceil(due / live), at least
 *   MIN_SHARE, then leaves the rest to the others for SHARE_PAUSE_MS.
 * - Each claimed row is held right away: its target resolved (secrets decrypted, credentials
 *   loaded), the provider given a chance to prepare (a webhook opens its connection), the fire
 *   gates asked, and a local timer armed for its instant.
 * - The cycle then sets its own next wake-up: the next due row minus the lead its burst needs
 *   (leadFor), at most one poll interval away.
 */
import { claimDue, type ClaimedRow, nextDue } from '../db/sql/deployments.ts';
import { claimable } from '../db/sql/processes.ts';
import { providerFor } from '../providers/index.ts';
import type { DbClock } from './clock.ts';
import { checkGates, hasGates } from './gates.ts';
import type { Leases } from './leases.ts';
import type { Timers } from './timers.ts';
import type { GateCheck, Held, Run } from './types.ts';

/** Bursts up to this size are not split between processes: one claim is cheaper than the coordination. */
const MIN_SHARE = 50;
/** After taking its share of a burst, a process lets the others take theirs for this long. */
const SHARE_PAUSE_MS = 100;
/** A deployment claimed less than this long before its instant is not prepared (Provider.prepare). */
const PREPARE_MIN_LEAD_MS = 200;
/** Claiming and holding one row, until measured here (about 0.1 ms on a 2-core machine; assumed slower). */
const DEFAULT_CLAIM_COST_MS = 0.25;
/** The longest a burst is claimed ahead of its instant, however large. */
const MAX_LEAD_MS = 60_000;

/**
 * How long before its instant a burst of `rows` due together starts being claimed: the prefetch,
 * or twice the time claiming them is expected to take plus a margin, whichever is longer.
 */
export function leadFor(rows: number, costPerRowMs: number, prefetchMs: number): number {
  return Math.min(MAX_LEAD_MS, Math.max(prefetchMs, Math.ceil(rows * costPerRowMs * 2 + 250)));
}

export class Claimer {
  private readonly batch: number;
  private cycling = false;
  private again = false;
  private wakeTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  /** Database-clock time of the next cycle already armed (the poll or the next due row). */
  private nextCycleAt = 0;
  /** How far ahead the next cycle claims: the prefetch, or the lead the next burst needs. */
  private horizonMs: number;
  /** Measured cost of claiming and holding one row, in ms (moving average over large claims). */
  private costPerRowMs = DEFAULT_CLAIM_COST_MS;

  constructor(
    private readonly run: Run,
    private readonly clock: DbClock,
    private readonly leases: Leases,
    private readonly timers: Timers,
    /** The current gate epoch (bumped by every GATES_CHANNEL notification). */
    private readonly gateEpoch: () => number,
  ) {
    this.batch = run.o.batchSize ?? 500;
    this.horizonMs = run.o.prefetchMs;
  }

  start(): void {
    this.pollTimer = setInterval(() => this.kick(), this.run.o.pollIntervalMs);
    this.kick();
  }

  stop(): void {
    clearInterval(this.pollTimer);
    clearTimeout(this.wakeTimer);
  }

  /**
   * A DUE_CHANNEL notification (payload: the instant, or empty for "look now"). A deployment
   * scheduled far ahead needs no claim now: the next cycle (at most a poll interval away) sees it
   * in time. Ignoring those keeps a burst of scheduling (thousands of POSTs) from turning into
   * thousands of claim queries.
   */
  onDue(payload: string): void {
    const at = payload ? Date.parse(payload) : NaN;
    if (Number.isFinite(at) && at - this.run.o.prefetchMs > this.nextCycleAt + 50) return;
    this.kick();
  }

  /** Looks for due work now (coalesces concurrent calls). */
  kick(): void {
    if (this.run.stopping) return;
    if (this.cycling) {
      this.again = true;
      return;
    }
    this.cycling = true;
    this.cycle()
      .catch((err) => this.run.o.logger.warn({ err: (err as Error).message }, 'scheduler cycle failed; retrying on the next poll'))
      .finally(() => {
        this.cycling = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async cycle(): Promise<void> {
    const { pool, workerId, prefetchMs, leaseSeconds, pollIntervalMs, logger } = this.run.o;
    const horizon = this.horizonMs;
    let claimedAny = false;
    // Our share of what is due soon: with other scheduler processes alive, a burst is split
    // between them (each takes about 1/n), so that they all send at the instant.
    const { due, live } = await claimable(pool, horizon, leaseSeconds);
    const share = live > 1 && due > MIN_SHARE ? Math.max(MIN_SHARE, Math.ceil(due / live)) : due;
    let budget = share;
    const claimStarted = performance.now();
    let claimedRows = 0;
    while (budget > 0) {
      if (this.run.stopping) return;
      const limit = Math.min(this.batch, budget);
      const sentAt = this.clock.localNow();
      const rows = await claimDue(pool, workerId, horizon, leaseSeconds, limit);
      const receivedAt = this.clock.localNow();
      if (rows.length) this.clock.measure(rows[0].db_now, sentAt, receivedAt);
      const taken: Held[] = [];
      for (const row of rows) {
        if (row.blocked) continue;
        claimedAny = true;
        // Leased until its due time plus the lease (claimDue).
        const h = this.hold(row, this.leases.validUntil(sentAt, row.due_at!.getTime() - row.db_now.getTime()));
        if (h) taken.push(h);
      }
      this.askGates(taken);
      for (const h of taken) this.timers.arm(h);
      budget -= rows.length;
      claimedRows += rows.length;
      if (rows.length < limit) break;
    }
    if (claimedRows >= this.batch) {
      const cost = (performance.now() - claimStarted) / claimedRows;
      this.costPerRowMs = (this.costPerRowMs + cost) / 2;
    }
    const limited = share < due && budget <= 0;
    if (share) logger.debug({ due, live, share, claimed: claimedRows, horizon_ms: horizon, ms_per_row: +this.costPerRowMs.toFixed(3) }, 'claimed');
    const sentAt = this.clock.localNow();
    const { next, burst, dbNow } = await nextDue(pool);
    this.clock.measure(dbNow, sentAt, this.clock.localNow());
    clearTimeout(this.wakeTimer);
    // With nothing due, the poll is the next cycle.
    this.nextCycleAt = this.clock.dbNow() + pollIntervalMs;
    this.horizonMs = prefetchMs;
    if (!next || this.run.stopping) return;
    // A large burst is claimed early enough to be held before its instant.
    const lead = leadFor(burst, this.costPerRowMs, prefetchMs);
    this.horizonMs = lead;
    const untilDue = next.getTime() - this.clock.dbNow();
    const wait = untilDue - lead;
    let delay: number;
    if (wait > 0) delay = Math.min(wait, pollIntervalMs);
    // We took our share: let the others take theirs, then take what is left (unless it is due now).
    else if (limited) delay = untilDue > SHARE_PAUSE_MS * 3 ? SHARE_PAUSE_MS : 0;
    // Something due is locked by another process's claim right now: look again shortly.
    else delay = claimedAny ? 0 : 50;
    this.nextCycleAt = this.clock.dbNow() + delay;
    this.wakeTimer = setTimeout(() => this.kick(), delay);
  }

  /** Keeps a claimed row and starts resolving its target; undefined when a call for it is in flight here. */
  private hold(row: ClaimedRow, leaseValidUntil: number): Held | undefined {
    const existing = this.leases.get(row.id);
    if (existing?.inFlight) return undefined;
    if (existing) this.timers.unslot(existing);
    // Every field named up front: V8 keeps them inside the object, with no separate property array
    // for the ones set later (50,000 held rows in a burst).
    const h: Held = { row, leaseValidUntil, inFlight: false, slot: undefined, resolved: undefined, gate: undefined };
    this.leases.set(h);
    if (row.state === 'scheduled') {
      // Errors surface when the call is made (it resolves again then).
      this.run.o.resolveTarget(row).then((r) => {
        h.resolved = r;
        // Get ready for the call (a webhook opens its connection), unless it is about to be made anyway.
        if (h.row.due_at!.getTime() - this.clock.dbNow() > PREPARE_MIN_LEAD_MS) {
          try {
            providerFor(String(row.target.type))?.prepare?.(r.target);
          } catch { /* the call will do without */ }
        }
      }, () => {});
    }
    return h;
  }

  /** The fire gates' claim-time verdicts for the scheduled rows of one claimed batch (one check, and one GateCheck, per batch). */
  private askGates(taken: Held[]): void {
    if (!hasGates()) return;
    const scheduled = taken.filter((h) => h.row.state === 'scheduled');
    if (!scheduled.length) return;
    const g: GateCheck = { epoch: this.gateEpoch() };
    // A failed check leaves the verdicts unknown: the instant checks those rows again (passGates).
    void checkGates(this.run.o.pool, scheduled.map((h) => h.row)).then((v) => { g.verdicts = v; }, () => {});
    for (const h of scheduled) h.gate = g;
  }
}
