/**
 * Events announced after their commit (src/services/announce.ts, decision 0013): every event is
 * heard exactly once, in order, each NOTIFY under PostgreSQL's 8,000-byte payload limit, also
 * when concurrent requests' events share one NOTIFY statement.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { listenTo, type Notifications } from './helpers/notifications.ts';
import { announceEvents, EVENTS_CHANNEL, readEventsPayload } from '../src/db/sql/events.ts';
import { announceCommitted } from '../src/services/announce.ts';

let db: TestDatabase;
let listener: Notifications;

before(async () => {
  db = await createTestDatabase();
  listener = await listenTo(db.url, [EVENTS_CHANNEL]);
});
after(async () => {
  await listener.end();
  await db.drop();
});

function drain(): Promise<string[]> {
  return listener.payloads(EVENTS_CHANNEL);
}

const event = (i: number, error: string | null = null) =>
  JSON.stringify({ id: `d-${i}`, team_id: 't', app_id: 'a', state: 'scheduled', at: '2027-01-01T00:00:00+00:00', error });

test('large batches are cut into NOTIFYs under 8,000 bytes, in order; a large event goes alone', async () => {
  const payloads = Array.from({ length: 300 }, (_, i) => event(i, i === 150 ? 'x'.repeat(5000) : i % 7 === 0 ? 'y'.repeat(900) : null));
  await announceEvents(db.pool, payloads);
  const notes = await drain();
  assert.ok(notes.length > 1);
  for (const n of notes) assert.ok(Buffer.byteLength(n) < 8000, `a NOTIFY of ${Buffer.byteLength(n)} bytes`);
  assert.deepEqual(notes.flatMap((n) => readEventsPayload(n)).map((e) => e.id), payloads.map((_, i) => `d-${i}`));
  assert.ok(notes.some((n) => readEventsPayload(n).length === 1 && readEventsPayload(n)[0].id === 'd-150'), 'the 5,000-byte event alone');
});

test('concurrent announcements are each heard once, and each resolves after its NOTIFY was sent', async () => {
  await Promise.all(Array.from({ length: 60 }, (_, i) => announceCommitted(db.pool, [event(2 * i), event(2 * i + 1)])));
  const ids = (await drain()).flatMap((n) => readEventsPayload(n)).map((e) => e.id);
  assert.equal(ids.length, 120);
  assert.deepEqual([...ids].sort(), Array.from({ length: 120 }, (_, i) => `d-${i}`).sort());
  // A request's own events stay together and in order.
  for (let i = 0; i < 60; i++) assert.equal(ids.indexOf(`d-${2 * i + 1}`), ids.indexOf(`d-${2 * i}`) + 1);
});
