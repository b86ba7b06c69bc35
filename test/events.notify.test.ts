/**
 * Events are announced in batches: insertEvents sends one NOTIFY per chunk of events, each under
 * PostgreSQL's 8,000-byte payload limit whatever the errors hold, and the events hub fans a batch
 * out to each team's streams one deployment change at a time.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, test } from 'node:test';
import { EventsHub } from '../src/api/events-hub.ts';
import type { Listener } from '../src/db/listener.ts';
import { inTransaction } from '../src/db/pool.ts';
import { EVENT_ERROR_CHARS, EVENTS_CHANNEL, insertEvents, readEventsPayload } from '../src/db/sql/events.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { listenTo, type Notifications } from './helpers/notifications.ts';

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

async function deployments(n: number): Promise<{ team: string; app: string; ids: string[] }> {
  const team = (await db.pool.query(`INSERT INTO teams (name) VALUES ('t-' || gen_random_uuid()) RETURNING id`)).rows[0].id as string;
  const app = (await db.pool.query(
    `INSERT INTO apps (team_id, name, target) VALUES ($1, 'web', '{"type":"webhook","url":"http://127.0.0.1:9/"}') RETURNING id`, [team],
  )).rows[0].id as string;
  const ids = (await db.pool.query(
    `INSERT INTO deployments (team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute,
        local_second, utc_offset, disambiguation, expires_after_seconds, expires_at, due_at)
     SELECT $1, $2, now() + interval '1 hour', 'UTC', 2030, 1, 1, 0, 0, 0, '+00:00', 'earlier', 3600, now() + interval '2 hours', NULL
       FROM generate_series(1, $3) RETURNING id`, [team, app, n],
  )).rows.map((r) => r.id as string);
  return { team, app, ids };
}

function drain(): Promise<string[]> {
  return listener.payloads(EVENTS_CHANNEL, 100);
}

test('a batch of events is a few NOTIFYs, each under 8,000 bytes, carrying every event once, in order', async () => {
  const { team, app, ids } = await deployments(600);
  // Long errors, some of them all escapes (6 bytes per character in JSON), some multi-byte.
  const long = (i: number) => (i % 3 === 0 ? '\u0001'.repeat(5000) : i % 3 === 1 ? '€'.repeat(5000) : 'x'.repeat(5000));
  const withError = ids.filter((_, i) => i % 50 === 7);
  for (const [i, id] of withError.entries()) await db.pool.query('UPDATE deployments SET error = $2 WHERE id = $1', [id, long(i)]);
  await drain();
  await inTransaction(db.pool, (c) => insertEvents(c, ids.map((id, i) => ({ id, state: i % 2 ? 'succeeded' : 'failed', message: null }))));
  const payloads = await drain();
  assert.ok(payloads.length >= 15 && payloads.length <= 60, `${payloads.length} notifications for 600 events`);
  for (const p of payloads) assert.ok(Buffer.byteLength(p) < 8000, `a payload of ${Buffer.byteLength(p)} bytes`);
  const events = payloads.flatMap(readEventsPayload);
  assert.deepEqual(events.map((e) => e.id), ids, 'every event once, in the order given');
  for (const [i, e] of events.entries()) {
    assert.equal(e.team_id, team);
    assert.equal(e.app_id, app);
    assert.equal(e.state, i % 2 ? 'succeeded' : 'failed');
    assert.ok(Number.isFinite(Date.parse(e.at)));
  }
  const errors = events.filter((e) => e.error !== null);
  assert.equal(errors.length, withError.length);
  for (const [i, e] of errors.entries()) assert.equal(e.error, long(i).slice(0, EVENT_ERROR_CHARS), 'the error is cut to EVENT_ERROR_CHARS');
  // Nothing is announced for a batch that is rolled back.
  await inTransaction(db.pool, async (c) => {
    await insertEvents(c, ids.slice(0, 10).map((id) => ({ id, state: 'running', message: null })));
    throw new Error('rolled back');
  }).catch(() => {});
  assert.deepEqual(await drain(), []);
});

test('the hub hands each stream its own team\'s changes, one per deployment, from batched and lone payloads', () => {
  const emitter = new EventEmitter();
  const hub = new EventsHub(emitter as unknown as Listener);
  const a: unknown[] = [];
  const b: unknown[] = [];
  hub.subscribe('team-a', (e) => a.push(e));
  hub.subscribe('team-b', (e) => b.push(e));
  const ev = (id: string, team: string) => ({ id, team_id: team, app_id: 'app', state: 'running', at: '2030-01-01T00:00:00Z', error: null });
  emitter.emit('notification', EVENTS_CHANNEL, JSON.stringify([ev('1', 'team-a'), ev('2', 'team-b'), ev('3', 'team-a'), ev('4', 'team-c')]));
  // A lone object, as a process of the previous version announces it.
  emitter.emit('notification', EVENTS_CHANNEL, JSON.stringify(ev('5', 'team-b')));
  emitter.emit('notification', EVENTS_CHANNEL, 'not json');
  emitter.emit('notification', 'another_channel', JSON.stringify([ev('6', 'team-a')]));
  const strip = ({ team_id: _t, ...rest }: ReturnType<typeof ev>) => rest;
  assert.deepEqual(a, [strip(ev('1', 'team-a')), strip(ev('3', 'team-a'))]);
  assert.deepEqual(b, [strip(ev('2', 'team-b')), strip(ev('5', 'team-b'))]);
});
