/**
 * The finisher's back-pressure: a burst hands its answered calls over as the writes make room
 * (Finisher.roomFor), so 50,000 outcomes are never all pending at once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { useTestDatabase } from './helpers/db.ts';
import { createLogger } from '../src/observability/logger.ts';
import { Finisher } from '../src/scheduler/finisher.ts';

const db = useTestDatabase();

describe('Finisher.roomFor', () => {
  it('waits while the queue is full (held by a burst in flight) and resolves once the writes made room', async () => {
    const f = new Finisher(db.pool, createLogger('silent'));
    let endBurst!: () => void;
    f.holdUntil(new Promise<void>((r) => { endBurst = r; }));
    let written = 0;
    for (let i = 0; i < 5; i++) {
      f.add({ id: randomUUID(), state: 'succeeded', error: null, log: '', ref: null }, 'succeeded', () => { written++; });
    }
    let room = false;
    const waiting = f.roomFor(3).then(() => { room = true; });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(room, false, 'no room while the burst holds the writes');
    assert.equal(written, 0);
    endBurst();
    await waiting;
    assert.equal(room, true);
    await f.roomFor(1);
    assert.equal(written, 5, 'every end written');
    await f.close();
  });

  it('a wait begun while a burst holds the writes ends when the finisher closes', { timeout: 10_000 }, async () => {
    const f = new Finisher(db.pool, createLogger('silent'));
    f.holdUntil(new Promise<void>(() => {}));
    for (let i = 0; i < 3; i++) f.add({ id: randomUUID(), state: 'succeeded', error: null, log: '', ref: null }, 'succeeded', () => {});
    const waiting = f.roomFor(1);
    await new Promise((r) => setTimeout(r, 50));
    await f.close();
    await waiting;
  });

  it('does not wait once closing', async () => {
    const f = new Finisher(db.pool, createLogger('silent'));
    f.holdUntil(new Promise<void>(() => {}));
    for (let i = 0; i < 3; i++) f.add({ id: randomUUID(), state: 'succeeded', error: null, log: '', ref: null }, 'succeeded', () => {});
    await f.close();
    await f.roomFor(1);
  });
});
