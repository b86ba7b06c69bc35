/**
 * Announces committed events on EVENTS_CHANNEL after the statement that wrote them, grouping the
 * announcements of concurrent requests: while one NOTIFY statement is in flight, the events that
 * arrive wait and go together in the next. Under load that is one NOTIFY statement for many
 * schedulings, instead of one each.
 *
 * Why after, not inside: a transaction that NOTIFYs takes PostgreSQL's cluster-wide notify lock
 * before its commit and holds it until the commit record is flushed, so every NOTIFYing scheduling
 * waited for the previous one's WAL flush (decision 0013). The price: a process that dies between
 * the commit and this NOTIFY leaves live views without that one event (the row, its timeline and
 * its audit entry are committed; a reload shows it). A listener still never hears of a change
 * that was rolled back.
 */
import type { Pool } from '../db/pool.ts';
import { announceEvents } from '../db/sql/events.ts';

interface Waiting {
  payloads: readonly string[];
  done: () => void;
}

class Announcer {
  private queue: Waiting[] = [];
  private flushing = false;

  constructor(private readonly pool: Pool) {}

  announce(payloads: readonly string[]): Promise<void> {
    if (payloads.length === 0) return Promise.resolve();
    return new Promise<void>((done) => {
      this.queue.push({ payloads, done });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length) {
      const batch = this.queue.splice(0);
      // An announcement that fails (the database went away) is dropped: what it announces is
      // committed, and the request that made it must not fail for it.
      await announceEvents(this.pool, batch.flatMap((w) => w.payloads)).catch(() => {});
      for (const w of batch) w.done();
    }
    this.flushing = false;
  }
}

const announcers = new WeakMap<Pool, Announcer>();

/** Announces `payloads` (committed events) on EVENTS_CHANNEL; resolves once the NOTIFY carrying them was sent. */
export function announceCommitted(pool: Pool, payloads: readonly string[]): Promise<void> {
  let a = announcers.get(pool);
  if (!a) announcers.set(pool, (a = new Announcer(pool)));
  return a.announce(payloads);
}
