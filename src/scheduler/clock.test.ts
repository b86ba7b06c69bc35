/**
 * The database clock as a process knows it: a reading whose round trip was slow (a query that
 * waited for a pool connection before the database read its clock) would put the database ahead
 * by half the wait and fire timers early; it is set aside while a quick reading is fresh.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../observability/logger.ts';
import { DbClock } from './clock.ts';

describe('DbClock.measure', () => {
  it('takes a quick reading, and sets aside a slow one that would move the clock ahead', () => {
    const clock = new DbClock(createLogger('silent'));
    const t = Date.now();
    // Quick: the database reads 300 ms ahead of the midpoint of a 10 ms round trip.
    clock.measure(new Date(t + 305), t, t + 10);
    const ahead = clock.dbNow() - clock.localNow();
    assert.ok(Math.abs(ahead - 300) <= 1, `offset taken (${ahead} ms)`);
    // Slow: 400 ms round trip, the database read its clock at the end (waited for a connection).
    clock.measure(new Date(t + 20 + 400 + 300), t + 20, t + 420);
    const after = clock.dbNow() - clock.localNow();
    assert.ok(Math.abs(after - 300) <= 1, `slow reading set aside (${after} ms)`);
  });

  it('uses slow readings when nothing quicker is to be had (a distant database)', () => {
    const clock = new DbClock(createLogger('silent'));
    const t = Date.now();
    clock.measure(new Date(t + 150 + 300), t, t + 300);
    const ahead = clock.dbNow() - clock.localNow();
    assert.ok(Math.abs(ahead - 300) <= 1, `offset taken (${ahead} ms)`);
  });
});
