/**
 * The scheduler: fires each deployment at its instant, exactly once, across any number of
 * processes sharing one database. This file only wires its parts together and runs its life
 * (start, graceful stop); each part says in its header what it owns:
 *
 * - `claim.ts`     finding due rows and taking this process's share, ahead of the instant;
 * - `timers.ts`    one local timer per instant, on database time, never early;
 * - `burst.ts`     the instant: expiry, dependency and fire-gate checks, then the calls;
 * - `outcome.ts`   what a provider's answer does: end, retry later, or follow a rollout;
 * - `rollback.ts`  a finished deployment's rollback, taken step by step like a rollout;
 * - `finisher.ts`  final states written in batches, after a burst's calls are answered;
 * - `leases.ts`    what this process holds, the heartbeat that keeps it, handing it back;
 * - `gates.ts`     the plug-in point for "may this run now?" checks (freezes, approvals);
 * - `clock.ts`     the database clock and this machine's offset from it;
 * - `warm-up.ts`   compiling the webhook path at start, so the first burst is as fast as later ones.
 *
 * The deployments table is the job table: `due_at` says when a row needs attention (its instant,
 * a retry, the next rollout poll), a lease (`lease_owner`, `lease_until`) which process owns it
 * meanwhile. If a process dies, its leases lapse and another process resumes the work
 * (`recover`), within `leaseSeconds`.
 */
import { DUE_CHANNEL } from '../db/sql/events.ts';
import { Burst } from './burst.ts';
import { Claimer } from './claim.ts';
import { DbClock } from './clock.ts';
import { Finisher } from './finisher.ts';
import { GATES_CHANNEL } from './gates.ts';
import { Leases } from './leases.ts';
import { Outcomes } from './outcome.ts';
import { Rollbacks } from './rollback.ts';
import { Timers } from './timers.ts';
import type { Run, SchedulerOptions } from './types.ts';
import { warmUp } from './warm-up.ts';

export type { SchedulerOptions } from './types.ts';

export class Scheduler implements Run {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly clock: DbClock;
  private readonly timers: Timers;
  private readonly leases: Leases;
  private readonly finisher: Finisher;
  private readonly claimer: Claimer;
  private readonly burst: Burst;
  private isStopping = false;
  /** Bumped by every GATES_CHANNEL notification: a fire gate's claim-time verdict older than this is stale. */
  private gateEpoch = 0;

  private readonly onNotification = (channel: string, payload: string) => {
    if (channel === DUE_CHANNEL) this.claimer.onDue(payload);
    else if (channel === GATES_CHANNEL) this.gateEpoch++;
  };
  private readonly onReconnect = () => {
    // Notifications sent while the listener was away are lost: any gate verdict may be stale.
    this.gateEpoch++;
    this.claimer.kick();
  };

  constructor(readonly o: SchedulerOptions) {
    this.clock = new DbClock(o.logger, o.testClockOffsetMs ?? (Number(process.env.SHIPCLOCK_TEST_CLOCK_OFFSET_MS) || 0));
    this.timers = new Timers(this.clock, (group) => this.track(this.burst.fire(group)));
    this.leases = new Leases(o.pool, o.workerId, o.leaseSeconds, this.clock, this.timers, o.logger);
    this.finisher = new Finisher(o.pool, o.logger);
    const outcomes = new Outcomes(this, this.clock, this.leases, this.finisher);
    const epoch = () => this.gateEpoch;
    const rollbacks = new Rollbacks(this, this.clock, this.leases, outcomes);
    this.burst = new Burst(this, this.clock, this.leases, this.finisher, outcomes, epoch, rollbacks);
    this.claimer = new Claimer(this, this.clock, this.leases, this.timers, epoch);
  }

  get stopping(): boolean {
    return this.isStopping;
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  start(): void {
    this.o.listener.on('notification', this.onNotification);
    this.o.listener.on('reconnect', this.onReconnect);
    this.leases.start();
    this.claimer.start();
    void warmUp(this.o.warmUpCalls ?? 2000, this.abort.signal, () => this.isStopping, this.o.logger).catch(() => {});
  }

  /** Looks for due work now. */
  kick(): void {
    this.claimer.kick();
  }

  track(p: Promise<void>): void {
    this.inFlight.add(p);
    p.catch((err) => this.o.logger.error({ err: (err as Error).message }, 'scheduler step failed')).finally(() => this.inFlight.delete(p));
  }

  /** Number of deployments this process holds (claimed, not yet handed back or ended). */
  get holding(): number {
    return this.leases.size;
  }

  /**
   * Graceful stop: claims nothing more, hands back what has not started, lets in-flight calls
   * finish for up to `graceMs`, then aborts them and hands them back too.
   */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.isStopping) return;
    this.isStopping = true;
    this.o.listener.off('notification', this.onNotification);
    this.o.listener.off('reconnect', this.onReconnect);
    this.claimer.stop();
    await this.leases.handBack(this.leases.waiting());
    const deadline = Date.now() + graceMs;
    while (this.inFlight.size && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, 100))]);
    }
    if (this.inFlight.size) {
      this.abort.abort();
      await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, 3000))]);
    }
    await this.finisher.close();
    await this.leases.stop();
  }
}
