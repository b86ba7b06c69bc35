/**
 * Scheduling with a dependency, into freezes and with approvals runs as one statement too
 * (insertScheduledMany, decisions 0013 and 0014). These tests would fail if that statement broke a rule the
 * multi-statement transaction enforced: the dependency's team, deletion and instant, the order of
 * the errors, a freeze this process has not seen (its cache of the team's freezes), an owner's
 * override, approval requests for both rows, and an app deleted while a request is scheduling it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { type Heard, listenTo, type Notifications } from './helpers/notifications.ts';
import { DUE_CHANNEL, EVENTS_CHANNEL, readEventsPayload } from '../src/db/sql/events.ts';
import { schedule } from '../src/services/deployments.ts';
import type { User } from '../src/services/auth.ts';
import { ShipclockError } from '../src/core/errors.ts';

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

interface Team {
  id: string;
  owner: User;
  deployer: User;
  app(name: string, opts?: { deleted?: boolean; approval?: number }): Promise<string>;
}

let teams = 0;
async function team(): Promise<Team> {
  const name = `st-${++teams}`;
  const id = (await db.pool.query(`INSERT INTO teams (name) VALUES ($1) RETURNING id`, [name])).rows[0].id as string;
  const user = async (role: 'owner' | 'deployer'): Promise<User> => {
    const email = `${role}@${name}.example.com`;
    const uid = (await db.pool.query(`INSERT INTO users (email, password_hash, team_id, role) VALUES ($1, 'x', $2, $3) RETURNING id`, [email, id, role])).rows[0].id;
    return { id: uid, email, team_id: id, team_name: name, role, admin: false };
  };
  return {
    id,
    owner: await user('owner'),
    deployer: await user('deployer'),
    app: async (app, opts = {}) => (await db.pool.query(
      `INSERT INTO apps (team_id, name, target, deleted_at, approval_required) VALUES ($1, $2, '{"type":"webhook","url":"http://127.0.0.1:9/"}', $3, $4) RETURNING id`,
      [id, app, opts.deleted ? new Date() : null, opts.approval ?? null],
    )).rows[0].id as string,
  };
}

/** UTC time fields `ms` from now (whole seconds), and that instant. */
function at(ms: number) {
  const d = new Date(Math.floor((Date.now() + ms) / 1000) * 1000);
  return {
    fields: { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), timezone: 'UTC' },
    ms: d.getTime(),
  };
}

function drain(): Promise<Heard[]> {
  return listener.drain();
}

/** Rows a team has in every table a scheduling writes. */
async function written(teamId: string): Promise<number> {
  return (await db.pool.query(
    `SELECT (SELECT count(*) FROM deployments WHERE team_id = $1)::int + (SELECT count(*) FROM deployment_events WHERE team_id = $1)::int
          + (SELECT count(*) FROM audit_log WHERE team_id = $1)::int + (SELECT count(*) FROM notification_deliveries WHERE team_id = $1)::int AS n`,
    [teamId],
  )).rows[0].n as number;
}

async function rejects(p: Promise<unknown>, status: number, code: string, field?: string): Promise<ShipclockError> {
  let caught: ShipclockError | undefined;
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ShipclockError, String(e));
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code, e.message);
    if (field !== undefined) assert.equal(e.field, field, e.message);
    caught = e;
    return true;
  });
  return caught!;
}

/** A one-off freeze written straight into the table, as another process would: this process's cache has not seen it. */
async function freezeBehindTheBack(teamId: string, name: string, fromMs: number, toMs: number, apps: string[] | null): Promise<string> {
  const iso = (ms: number) => new Date(ms).toISOString().slice(0, 19);
  return (await db.pool.query(
    `INSERT INTO freezes (team_id, name, kind, timezone, start_local, end_local, start_at, end_at, apps)
     VALUES ($1, $2, 'once', 'UTC', $3::timestamp, $4::timestamp, $5, $6, $7::uuid[]) RETURNING id`,
    [teamId, name, iso(fromMs), iso(toMs), new Date(fromMs), new Date(toMs), apps],
  )).rows[0].id as string;
}

describe('scheduling with a dependency in one statement', () => {
  it('writes both rows, their events, the audit entry and the approval requests, and announces both', async () => {
    const t = await team();
    const api = await t.app('api', { approval: 2 });
    const dbApp = await t.app('db');
    const sub = (await db.pool.query(
      `INSERT INTO notification_subscriptions (team_id, url, events, format) VALUES ($1, 'http://127.0.0.1:9/n', ARRAY['approval_requested'], 'json') RETURNING id`,
      [t.id],
    )).rows[0].id as string;
    await drain();
    const when = at(120_000);
    const out = await schedule(db.pool, t.deployer, { app: api, ...when.fields, dependency: dbApp, dependency_lead_seconds: 60 });
    assert.equal(out.state, 'scheduled');
    assert.equal(out.run_at, new Date(when.ms).toISOString());
    assert.equal(out.dependency_lead_seconds, 60);
    assert.deepEqual(out.approval, { required: 2, approvals: [], rejection: null, status: 'pending' });
    const dep = out.dependency!;
    assert.deepEqual(dep.app, { id: dbApp, name: 'db' });
    assert.equal(dep.run_at, new Date(when.ms - 60_000).toISOString());
    assert.equal(dep.dependency_lead_seconds, null);
    assert.equal(dep.approval, null, 'the dependency\'s app needs no approval');
    assert.equal(dep.dependency, null);

    const rows = (await db.pool.query(
      `SELECT id, dependency_id, due_at, expires_at, approval_required, created_by FROM deployments WHERE team_id = $1 ORDER BY run_at`, [t.id],
    )).rows;
    assert.deepEqual(rows.map((r) => [r.id, r.dependency_id, r.approval_required, r.created_by]), [
      [dep.id, null, null, t.deployer.id],
      [out.id, dep.id, 2, t.deployer.id],
    ]);
    assert.equal(rows[0].due_at.getTime(), when.ms - 60_000);
    assert.equal(rows[0].expires_at.getTime(), when.ms - 60_000 + 3600_000);

    const events = (await db.pool.query(`SELECT deployment_id, state, message FROM deployment_events WHERE team_id = $1 ORDER BY id`, [t.id])).rows;
    assert.deepEqual(events.sort((a, b) => a.message.localeCompare(b.message)), [
      { deployment_id: out.id, state: 'scheduled', message: 'scheduled' },
      { deployment_id: dep.id, state: 'scheduled', message: `scheduled as the dependency of ${out.id}` },
    ]);
    const audit = (await db.pool.query(`SELECT actor_id, action, target_id, details FROM audit_log WHERE team_id = $1`, [t.id])).rows;
    assert.deepEqual(audit, [{
      actor_id: t.deployer.id, action: 'deployment.create', target_id: out.id,
      details: { app: 'api', run_at: new Date(when.ms).toISOString(), timezone: 'UTC', dependency: dep.id },
    }]);
    const asked = (await db.pool.query(`SELECT subscription_id, deployment_id, event, payload FROM notification_deliveries WHERE team_id = $1`, [t.id])).rows;
    assert.equal(asked.length, 1, 'only the row that needs approval is asked about');
    assert.equal(asked[0].subscription_id, sub);
    assert.equal(asked[0].deployment_id, out.id);
    assert.equal(asked[0].payload.event, 'deployment.approval_requested');
    assert.deepEqual(asked[0].payload.approval, { required: 2, approvals: 0 });
    assert.equal(asked[0].payload.app_name, 'api');

    const notes = await drain();
    const announced = notes.filter((n) => n.channel === EVENTS_CHANNEL).flatMap((n) => readEventsPayload(n.payload));
    assert.deepEqual(announced.map((e) => e.id).sort(), [out.id, dep.id].sort());
    assert.ok(announced.every((e) => e.state === 'scheduled' && e.team_id === t.id));
    // Each announced event says the time its stored event has.
    const storedAt = new Map((await db.pool.query(`SELECT deployment_id, at FROM deployment_events WHERE team_id = $1`, [t.id])).rows
      .map((r) => [r.deployment_id as string, (r.at as Date).getTime()]));
    for (const e of announced) assert.equal(Date.parse(String(e.at)), storedAt.get(e.id), `the announced time of ${e.id}'s event`);
    // "Became due" for the earlier of the two instants (the dependency's).
    assert.deepEqual(notes.filter((n) => n.channel === DUE_CHANNEL).map((n) => n.payload), [new Date(when.ms - 60_000).toISOString()]);
  });

  it('refuses as the transaction did, in the same order, and stores and announces nothing', async () => {
    const t = await team();
    const other = await team();
    const api = await t.app('api');
    const dbApp = await t.app('db');
    const gone = await t.app('gone', { deleted: true });
    const theirs = await other.app('theirs');
    const unknown = '00000000-0000-4000-8000-000000000000';
    await drain();
    const soon = at(3_600_000).fields;
    const past = at(-3 * 86_400_000).fields;
    const s = (input: Record<string, unknown>) => schedule(db.pool, t.deployer, { app: api, ...soon, ...input } as never);

    await rejects(s({ dependency: theirs }), 422, 'unknown_app', 'dependency');
    await rejects(s({ dependency: gone }), 422, 'unknown_app', 'dependency');
    await rejects(s({ dependency: unknown }), 422, 'unknown_app', 'dependency');
    await rejects(s({ dependency: api }), 422, 'self_dependency', 'dependency');
    // The dependency would deploy before now: 2 h of lead for an instant 1 h ahead.
    const early = await rejects(s({ dependency: dbApp, dependency_lead_seconds: 7200 }), 422, 'past_instant', 'dependency_lead_seconds');
    assert.match(early.message, /7200 s before, which is in the past/);
    // The order: the instant, then the app, then the dependency (itself, its app, its instant).
    await rejects(s({ app: theirs, dependency: theirs }), 422, 'unknown_app', 'app');
    await rejects(s({ app: unknown, dependency: unknown }), 422, 'unknown_app', 'app');
    await rejects(s({ ...past, app: theirs, dependency: gone }), 422, 'past_instant', 'day');
    await rejects(s({ dependency: theirs, dependency_lead_seconds: 7200 }), 422, 'unknown_app', 'dependency');
    await rejects(s({ dependency: api, dependency_lead_seconds: 7200 }), 422, 'self_dependency', 'dependency');

    assert.equal(await written(t.id), 0);
    assert.deepEqual(await drain(), []);
    // And the same request with a known dependency goes through.
    const ok = await s({ dependency: dbApp });
    assert.equal(ok.dependency?.app.id, dbApp);
  });
});

describe('freezes in the one statement', () => {
  it('refuses a freeze this process has not loaded yet, and schedules again once it is gone', async () => {
    const t = await team();
    const api = await t.app('api');
    const dbApp = await t.app('db');
    const when = at(2 * 86_400_000);
    // This process sees the team without freezes (and caches that).
    await schedule(db.pool, t.deployer, { app: api, ...at(86_400_000).fields });
    const freeze = await freezeBehindTheBack(t.id, 'behind the back', when.ms - 3600_000, when.ms + 3600_000, [api]);
    const before = await written(t.id);
    const e = await rejects(schedule(db.pool, t.deployer, { app: api, ...when.fields }), 409, 'frozen', 'time');
    assert.equal((e.extra as { freeze: { id: string } }).freeze.id, freeze);
    assert.equal((e.extra as { next_allowed_at: string }).next_allowed_at, new Date(when.ms + 3600_000).toISOString());
    assert.match(e.message, /"api" at .* falls inside the deploy freeze "behind the back"/);
    assert.equal(await written(t.id), before, 'nothing stored');

    // The freeze covers only `api`: as the dependency (of `db`, 15 min before), it is frozen too, named as the dependency.
    const depFrozen = await rejects(schedule(db.pool, t.deployer, { app: dbApp, ...at(2 * 86_400_000 + 900_000).fields, dependency: api }), 409, 'frozen', 'time');
    assert.match(depFrozen.message, /its dependency "api", which would deploy at/);
    // Another app is not frozen.
    await schedule(db.pool, t.deployer, { app: dbApp, ...when.fields });

    await db.pool.query('UPDATE freezes SET deleted_at = now(), updated_at = now() WHERE id = $1', [freeze]);
    const out = await schedule(db.pool, t.deployer, { app: api, ...when.fields });
    assert.equal(out.state, 'scheduled');
    assert.equal(out.freeze_override, null);
  });

  it('lets an owner override a freeze over the pair: stored on both, audited, on both timelines', async () => {
    const t = await team();
    const api = await t.app('api');
    const dbApp = await t.app('db');
    const when = at(3 * 86_400_000);
    const freeze = await freezeBehindTheBack(t.id, 'all hands', when.ms - 7200_000, when.ms + 7200_000, null);
    const input = { app: api, ...when.fields, dependency: dbApp };
    await rejects(schedule(db.pool, t.owner, input), 409, 'frozen', 'time');
    await rejects(schedule(db.pool, t.deployer, { ...input, override_freeze: { reason: 'hotfix' } }), 403, 'forbidden');
    const out = await schedule(db.pool, t.owner, { ...input, override_freeze: { reason: 'hotfix' } });
    for (const x of [out, out.dependency!]) {
      assert.equal(x.freeze_override?.reason, 'hotfix');
      assert.equal(x.freeze_override?.by, t.owner.email);
      assert.ok(Number.isFinite(Date.parse(String(x.freeze_override?.at))), 'with the time it was given');
    }
    const audit = (await db.pool.query(`SELECT action, target_id, details FROM audit_log WHERE team_id = $1 ORDER BY id`, [t.id])).rows;
    assert.deepEqual(audit.map((a) => [a.action, a.target_id]), [['deployment.freeze_override', out.id], ['deployment.create', out.id]]);
    assert.deepEqual(audit[0].details, { freeze: { id: freeze, name: 'all hands' }, reason: 'hotfix', on: 'scheduled' });
    const messages = (await db.pool.query(`SELECT message FROM deployment_events WHERE team_id = $1`, [t.id])).rows.map((r) => r.message as string);
    assert.equal(messages.length, 2);
    for (const m of messages) assert.match(m, /; scheduled into the deploy freeze "all hands" by owner@\S+ \(override: hotfix\)$/);
    // An override outside any freeze is not stored.
    const free = await schedule(db.pool, t.owner, { app: api, ...at(10 * 86_400_000).fields, override_freeze: { reason: 'just in case' } });
    assert.equal(free.freeze_override, null);
  });
});

describe('an app deleted while a request schedules it', () => {
  for (const which of ['app', 'dependency'] as const) {
    it(`never leaves a deployment of a deleted ${which}: the request waits for the deletion and then refuses`, async () => {
      const t = await team();
      const api = await t.app('api');
      const dbApp = await t.app('db');
      const victim = which === 'app' ? api : dbApp;
      // deleteApp's transaction, held open: the app row locked FOR UPDATE, deleted_at set.
      const deleter = new pg.Client({ connectionString: db.url });
      await deleter.connect();
      try {
        await deleter.query('BEGIN');
        await deleter.query('SELECT 1 FROM apps WHERE id = $1 FOR UPDATE', [victim]);
        await deleter.query('UPDATE apps SET deleted_at = now() WHERE id = $1', [victim]);
        let settled = false;
        const request = schedule(db.pool, t.deployer, { app: api, ...at(86_400_000).fields, dependency: dbApp });
        request.then(() => { settled = true; }, () => { settled = true; });
        // The request waits on the app's row lock (neither refused from an earlier snapshot nor written).
        while (!settled) {
          const w = await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
          if (w.rows[0].n > 0) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        await deleter.query('COMMIT');
        await rejects(request, 422, 'unknown_app', which);
      } finally {
        await deleter.end();
      }
      assert.equal(await written(t.id), 0);
    });
  }

  it('a deletion that comes second finds the deployment and refuses (409)', async () => {
    const t = await team();
    const api = await t.app('api');
    const dbApp = await t.app('db');
    await schedule(db.pool, t.deployer, { app: api, ...at(86_400_000).fields, dependency: dbApp });
    const { deleteApp } = await import('../src/services/apps.ts');
    await assert.rejects(deleteApp(db.pool, t.owner, dbApp), (e: unknown) => e instanceof ShipclockError && e.code === 'app_has_deployments');
  });
});


describe('concurrent schedulings grouped into one statement (decision 0014)', () => {
  it('writes each request that holds and refuses each that does not, as it would alone, in one statement', async () => {
    const t = await team();
    const other = await team();
    const apps = await Promise.all(Array.from({ length: 12 }, (_, i) => t.app(`g${i}`)));
    const deleted = await t.app('gone', { deleted: true });
    const foreign = await other.app('theirs');
    const when = at(3_600_000);
    const past = at(-60_000);
    await drain();
    // Statements the pool runs, counted by their name: grouping means fewer than requests.
    const pool = db.pool;
    let statements = 0;
    const query = pool.query.bind(pool);
    (pool as unknown as { query: unknown }).query = (q: unknown, ...rest: unknown[]) => {
      if (typeof q === 'object' && q && (q as { name?: string }).name === 'shipclock_insert_scheduled') statements++;
      return (query as (...a: unknown[]) => unknown)(q, ...rest);
    };
    try {
      const requests = [
        ...apps.map((app, i) => schedule(pool, t.deployer, { app, ...when.fields, ...(i % 2 ? { dependency: apps[(i + 1) % apps.length] } : {}) })),
        schedule(pool, t.deployer, { app: deleted, ...when.fields }),
        schedule(pool, t.deployer, { app: foreign, ...when.fields }),
        schedule(pool, t.deployer, { app: apps[0], ...when.fields, dependency: foreign }),
        schedule(pool, t.deployer, { app: apps[0], ...past.fields }),
      ];
      const settled = await Promise.allSettled(requests);
      const ok = settled.slice(0, 12);
      for (const s of ok) assert.equal(s.status, 'fulfilled', s.status === 'rejected' ? String(s.reason) : '');
      const codes = settled.slice(12).map((s) => (s.status === 'rejected' ? `${(s.reason as ShipclockError).code} ${(s.reason as ShipclockError).field}` : 'written'));
      assert.deepEqual(codes.slice(0, 3), ['unknown_app app', 'unknown_app app', 'unknown_app dependency']);
      assert.match(codes[3], /^past_instant /);
      assert.ok(statements < requests.length, `${statements} statements for ${requests.length} requests`);
      const results = ok.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<typeof schedule>>>).value);
      // Each request got its own rows back: its app, and its own dependency when it named one.
      results.forEach((r, i) => {
        assert.equal(r.app.id, apps[i]);
        if (i % 2) assert.equal(r.dependency?.app.id, apps[(i + 1) % apps.length]);
        else assert.equal(r.dependency, null);
      });
      // 12 deployments + 6 dependencies, an event each, an audit entry per request; nothing for the refused.
      assert.equal(await written(t.id), 18 + 18 + 12);
      assert.equal(await written(other.id), 0);
      const heard = (await drain()).filter((h) => h.channel === EVENTS_CHANNEL).flatMap((h) => readEventsPayload(h.payload));
      assert.equal(new Set(heard.map((e) => e.id)).size, 18);
    } finally {
      (pool as unknown as { query: unknown }).query = query;
    }
  });

  it('a request the database refuses inside a group fails alone: the others of its statement are written', async () => {
    const t = await team();
    const apps = await Promise.all(Array.from({ length: 8 }, (_, i) => t.app(`iso${i}`)));
    const when = at(3_600_000);
    // A user that does not exist: its row breaks the created_by foreign key, an error of the whole statement.
    const ghost: User = { ...t.deployer, id: '00000000-0000-4000-8000-000000000000' };
    const settled = await Promise.allSettled(apps.map((app, i) => schedule(db.pool, i === 5 ? ghost : t.deployer, { app, ...when.fields })));
    settled.forEach((s, i) => assert.equal(s.status, i === 5 ? 'rejected' : 'fulfilled', `request ${i}`));
    assert.match(String((settled[5] as PromiseRejectedResult).reason), /foreign key/);
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM deployments WHERE team_id = $1`, [t.id])).rows[0].n, 7);
  });
});
