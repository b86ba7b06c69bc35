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
import { Batcher, batcherFor } from './batch.ts';

const announcers = new WeakMap<Pool, Batcher<readonly string[], void>>();

/** Announces `payloads` (committed events) on EVENTS_CHANNEL; resolves once the NOTIFY carrying them was sent. */
export function announceCommitted(pool: Pool, payloads: readonly string[]): Promise<void> {
  if (payloads.length === 0) return Promise.resolve();
  const announcer = batcherFor(announcers, pool, () => new Batcher<readonly string[], void>(
    // An announcement that fails (the database went away) is dropped: what it announces is
    // committed, and the request that made it must not fail for it.
    async (batch) => {
      await announceEvents(pool, batch.flat()).catch(() => {});
      return batch.map(() => undefined);
    },
    // One NOTIFY statement in flight, in order: a client's next request is announced after this one.
    { maxInFlight: 1, maxBatch: Infinity, isolate: false },
  ));
  return announcer.submit(payloads);
}
