/**
 * Batches final state changes: many deployments ending within a few milliseconds (a thousand
 * webhooks answering) are written in one transaction — the state, the timeline event, the
 * wake-up of whatever waited on them and the queued notifications together. A write that fails
 * (the database is away) is retried until it lands; the rows stay leased to this process meanwhile.
 * While a burst of calls is in flight (`holdUntil`), nothing is written: the writes would compete
 * with the calls for the machine and the database; they go afterwards, in batches.
 */
import type { DeploymentState } from '../core/state.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import type { Finish } from '../db/sql/deployments.ts';
import { endDeployments } from '../services/transitions.ts';
import type { Logger } from '../observability/logger.ts';
import { deploymentsFinished } from '../observability/metrics.ts';

interface Item {
  finish: Finish;
  message: string;
  done: () => void;
}

const MAX_BATCH = 1000;
const LINGER_MS = 5;

export class Finisher {
  private queue: Item[] = [];
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> | null = null;
  private closed = false;
  private readonly gates = new Set<Promise<unknown>>();
  /** Ends in the batch being written now. */
  private writing = 0;
  /** roomFor callers waiting for the next write to start. */
  private flushStarts: Array<() => void> = [];

  constructor(private readonly pool: Pool, private readonly logger: Logger) {}

  /** Holds the writes until `p` settles (the scheduler bounds it: it never rejects and ends within seconds). */
  holdUntil(p: Promise<unknown>): void {
    this.gates.add(p);
    void p.finally(() => {
      this.gates.delete(p);
      if (!this.gates.size && this.queue.length) this.kick(0);
    });
  }

  /**
   * Resolves once fewer than `n` ends wait to be written or are being written (at once when closing): a burst hands its
   * 50,000 outcomes over as the writes make room, rather than all at once (a promise, a row to
   * write, a log and a callback each: 60 MB at once, measured).
   */
  async roomFor(n: number): Promise<void> {
    while (this.queue.length + this.writing >= n && !this.closed) {
      // A write under way makes room when it ends; otherwise the next one to start will (after the
      // linger, or once a burst's hold on the writes is over).
      await (this.flushing ?? new Promise<void>((r) => this.flushStarts.push(r)));
    }
  }

  /** Wakes whoever waits for a write to start (roomFor). */
  private flushStarted(): void {
    const waiting = this.flushStarts;
    this.flushStarts = [];
    for (const r of waiting) r();
  }

  add(finish: Finish, message: string, done: () => void): void {
    this.queue.push({ finish, message, done });
    if (this.queue.length >= MAX_BATCH) this.kick(0);
    else this.kick(LINGER_MS);
  }

  private kick(delay: number): void {
    if (this.flushing) return;
    if (this.gates.size && !this.closed) return;
    if (this.timer && delay > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushing = this.flush().finally(() => {
        this.flushing = null;
        if (this.queue.length) this.kick(0);
      });
      this.flushStarted();
    }, delay);
  }

  private async flush(): Promise<void> {
    const items = this.queue.splice(0, MAX_BATCH);
    if (!items.length) return;
    this.writing = items.length;
    try {
      await this.write(items);
    } finally {
      this.writing = 0;
    }
  }

  private async write(items: Item[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const changed = await inTransaction(this.pool, (c) => endDeployments(c, items));
        for (const r of changed) deploymentsFinished.inc({ state: r.state as DeploymentState });
        for (const i of items) i.done();
        return;
      } catch (err) {
        if (attempt === 0 || attempt % 20 === 0) {
          this.logger.warn({ err: (err as Error).message, count: items.length }, 'cannot record finished deployments yet; retrying');
        }
        if (this.closed && attempt > 5) {
          // Shutting down with the database away: the leases lapse and another process resumes them.
          for (const i of items) i.done();
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.flushStarted();
    while (this.flushing || this.queue.length) {
      if (this.flushing) await this.flushing;
      else this.flushing = this.flush().finally(() => { this.flushing = null; });
    }
  }
}
