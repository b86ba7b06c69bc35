/**
 * Scheduling without a dependency runs as one statement (insertScheduledMany): it must write and
 * announce exactly what the multi-statement path writes — the row, its 'scheduled' event, the
 * audit entry, the events NOTIFY, the due NOTIFY for an instant that is near — and, when it
 * writes nothing, fail with the same errors, leaving nothing behind and announcing nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { type Heard, listenTo, type Notifications } from './helpers/notifications.ts';
import { DUE_CHANNEL, DUE_NOTIFY_HORIZON_SECONDS, EVENTS_CHANNEL, readEventsPayload } from '../src/db/sql/events.ts';
import { schedule } from '../src/services/deployments.ts';
import type { User } from '../src/services/auth.ts';
import { ValidationError } from '../src/core/errors.ts';

let db: TestDatabase;
let listener: Notifications;

before(async () => {
  db = await createTestDatabase();
  listener = await listenTo(db.url, [EVENTS_CHANNEL, DUE_CHANNEL]);
});
after(async () => {
  await listener.end();
  await db.drop();
});

async function team(name: string): Promise<{ user: User; app: string; deletedApp: string }> {
  const id = (await db.pool.query(`INSERT INTO teams (name) VALUES ($1) RETURNING id`, [name])).rows[0].id as string;
  const user = (await db.pool.query(
    `INSERT INTO users (email, password_hash, team_id, role) VALUES ($1, 'x', $2, 'deployer') RETURNING id`,
    [`${name}@example.com`, id],
  )).rows[0].id as string;
  const app = async (n: string, deleted: boolean) => (await db.pool.query(
    `INSERT INTO apps (team_id, name, target, deleted_at) VALUES ($1, $2, '{"type":"webhook","url":"http://127.0.0.1:9/"}', $3) RETURNING id`,
    [id, n, deleted ? new Date() : null],
  )).rows[0].id as string;
  return {
    user: { id: user, email: `${name}@example.com`, team_id: id, team_name: name, role: 'deployer', admin: false },
    app: await app(`${name}-app`, false),
    deletedApp: await app(`${name}-gone`, true),
  };
}

/** UTC fields `ms` from now, whole seconds. */
function at(ms: number) {
  const d = new Date(Math.floor((Date.now() + ms) / 1000) * 1000);
  return {
    year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(),
    minute: d.getUTCMinutes(), second: d.getUTCSeconds(), timezone: 'UTC', iso: d.toISOString(),
  };
}

/** Waits for notifications to arrive (they are delivered after commit, asynchronously). */
function drain(): Promise<Heard[]> {
  return listener.drain();
}

test('one statement writes the row, its event and audit entry, and announces them', async () => {
  const t = await team('one-a');
  await drain();
  const near = at(60_000);
  const { iso, ...fields } = near;
  const out = await schedule(db.pool, t.user, { app: t.app, ...fields });
  assert.equal(out.state, 'scheduled');
  assert.deepEqual(out.app, { id: t.app, name: 'one-a-app' });
  assert.equal(out.run_at, iso);
  assert.equal(out.dependency, null);
  assert.equal(out.dependency_lead_seconds, null);
  assert.equal(out.expires_at, new Date(Date.parse(iso) + 3600_000).toISOString());
  assert.deepEqual(out.local, { year: near.year, month: near.month, day: near.day, hour: near.hour, minute: near.minute, second: near.second });
  assert.equal(out.utc_offset, '+00:00');

  const row = (await db.pool.query('SELECT * FROM deployments WHERE id = $1', [out.id])).rows[0];
  assert.equal(row.due_at.toISOString(), iso);
  assert.equal(row.created_by, t.user.id);
  assert.equal(row.disambiguation, 'earlier');
  assert.equal(row.expires_after_seconds, 3600);

  const events = (await db.pool.query('SELECT team_id, state, message FROM deployment_events WHERE deployment_id = $1', [out.id])).rows;
  assert.deepEqual(events, [{ team_id: t.user.team_id, state: 'scheduled', message: 'scheduled' }]);

  const audit = (await db.pool.query('SELECT team_id, actor_id, action, target_id, details FROM audit_log WHERE target_id = $1', [out.id])).rows;
  assert.deepEqual(audit, [{
    team_id: t.user.team_id, actor_id: t.user.id, action: 'deployment.create', target_id: out.id,
    details: { app: 'one-a-app', run_at: iso, timezone: 'UTC', dependency: null },
  }]);

  const notes = await drain();
  const ev = notes.filter((n) => n.channel === EVENTS_CHANNEL).flatMap((n) => readEventsPayload(n.payload));
  assert.equal(ev.length, 1);
  assert.ok(Array.isArray(JSON.parse(notes.find((n) => n.channel === EVENTS_CHANNEL)!.payload)), 'announced as a batch of one, like insertEvents');
  assert.deepEqual(Object.keys(ev[0]).sort(), ['app_id', 'at', 'error', 'id', 'state', 'team_id']);
  assert.equal(ev[0].id, out.id);
  assert.equal(ev[0].team_id, t.user.team_id);
  assert.equal(ev[0].app_id, t.app);
  assert.equal(ev[0].state, 'scheduled');
  assert.equal(ev[0].error, null);
  assert.ok(Number.isFinite(Date.parse(ev[0].at)));
  assert.deepEqual(notes.filter((n) => n.channel === DUE_CHANNEL).map((n) => n.payload), [iso]);
});

test('an instant beyond the due horizon is announced as an event only', async () => {
  const t = await team('one-b');
  await drain();
  const { iso: _i, ...far } = at((DUE_NOTIFY_HORIZON_SECONDS + 60) * 1000);
  const out = await schedule(db.pool, t.user, { app: t.app, ...far });
  const notes = await drain();
  assert.deepEqual(notes.map((n) => n.channel), [EVENTS_CHANNEL]);
  assert.deepEqual(readEventsPayload(notes[0].payload).map((e) => e.id), [out.id]);
});

test('the statement\'s payload matches the one of the multi-statement path', async () => {
  const t = await team('one-c');
  const dep = (await db.pool.query(
    `INSERT INTO apps (team_id, name, target) VALUES ($1, 'one-c-dep', '{"type":"webhook","url":"http://127.0.0.1:9/"}') RETURNING id`,
    [t.user.team_id],
  )).rows[0].id as string;
  await drain();
  const { iso: _a, ...f1 } = at(3_600_000);
  await schedule(db.pool, t.user, { app: t.app, ...f1, dependency: dep, dependency_lead_seconds: 60 });
  const multi = (await drain()).filter((n) => n.channel === EVENTS_CHANNEL).flatMap((n) => readEventsPayload(n.payload));
  const { iso: _b, ...f2 } = at(7_200_000);
  await schedule(db.pool, t.user, { app: t.app, ...f2 });
  const one = (await drain()).filter((n) => n.channel === EVENTS_CHANNEL).flatMap((n) => readEventsPayload(n.payload));
  // json_build_object's timestamptz text, e.g. 2026-01-01T10:00:00.12345+00:00 (trailing zeros dropped)
  const isoLike = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d:\d\d$/;
  const shape = (e: object) => Object.entries(e).map(([k, v]) => [k, typeof v, k === 'at' ? isoLike.test(String(v)) : null]);
  assert.equal(multi.length, 2);
  assert.deepEqual(shape(one[0]), shape(multi[1]));
  const details = (await db.pool.query(`SELECT details FROM audit_log WHERE team_id = $1 ORDER BY id`, [t.user.team_id])).rows.map((r) => Object.keys(r.details).sort());
  assert.deepEqual(details[0], details[1]);
});

test('nothing written: the same errors as before, nothing stored, nothing announced', async () => {
  const t = await team('one-d');
  const other = await team('one-e');
  await drain();
  const count = async () => (await db.pool.query(
    `SELECT (SELECT count(*) FROM deployments WHERE team_id = $1)::int + (SELECT count(*) FROM deployment_events WHERE team_id = $1)::int
          + (SELECT count(*) FROM audit_log WHERE team_id = $1 AND action = 'deployment.create')::int AS n`,
    [t.user.team_id],
  )).rows[0].n as number;
  const expect = async (input: object, code: string, field: string) => {
    await assert.rejects(schedule(db.pool, t.user, input as never), (e: unknown) => {
      assert.ok(e instanceof ValidationError, String(e));
      assert.equal(e.code, code);
      assert.equal(e.field, field);
      return true;
    });
  };
  const strip = ({ iso: _i, ...f }: ReturnType<typeof at>) => f;
  // An earlier hour of today names `hour`, an earlier day `day` (near midnight, -1 h is yesterday).
  const pastField = (ms: number) => (new Date(Date.now() + ms).getUTCDate() === new Date().getUTCDate() ? 'hour' : 'day');
  await expect({ app: t.app, ...strip(at(-3_600_000)) }, 'past_instant', pastField(-3_600_000));
  await expect({ app: t.app, ...strip(at(-3 * 86_400_000)) }, 'past_instant', 'day');
  await expect({ app: t.app, ...strip(at(-1000)) }, 'past_instant', pastField(-1000));
  await expect({ app: '00000000-0000-4000-8000-000000000000', ...strip(at(3_600_000)) }, 'unknown_app', 'app');
  await expect({ app: other.app, ...strip(at(3_600_000)) }, 'unknown_app', 'app');
  await expect({ app: t.deletedApp, ...strip(at(3_600_000)) }, 'unknown_app', 'app');
  // Both wrong: the instant is checked first, as before.
  await expect({ app: other.app, ...strip(at(-3 * 86_400_000)) }, 'past_instant', 'day');
  await assert.rejects(schedule(db.pool, t.user, { app: t.app, ...strip(at(-3_600_000)) }), /is in the past/);
  await assert.rejects(schedule(db.pool, t.user, { app: other.app, ...strip(at(3_600_000)) }), new RegExp(`no app ${other.app} in your team`));
  assert.equal(await count(), 0);
  assert.deepEqual(await drain(), []);
});

test('a zone named in another case is stored as the time zone database spells it', async () => {
  const t = await team('one-zone');
  const { iso: _iso, ...fields } = at(120_000);
  const out = await schedule(db.pool, t.user, { app: t.app, ...fields, timezone: 'etc/utc' });
  assert.equal(out.timezone, 'Etc/UTC');
  const row = (await db.pool.query('SELECT timezone FROM deployments WHERE id = $1', [out.id])).rows[0];
  assert.equal(row.timezone, 'Etc/UTC');
});
