/**
 * Freezes at fire time, on real PostgreSQL with the scheduler running: a freeze created after a
 * deployment was claimed (a second before its instant) holds it at the instant, never calling
 * the target; a held deployment released by an owner fires; one never released ends missed at
 * its expiry, saying why; schedule occurrences inside a freeze are created held. Judged by the
 * states and instants the database recorded, never by arrival times.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { notifyGates } from '../src/scheduler/gates.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { eventually, startTestServer, type TestServer, utcFields } from './helpers/server.ts';

describe('freezes at fire time', () => {
  let s: TestServer;
  let hook: WebhookReceiver;
  let n = 0;
  const PREFETCH_MS = 4000;

  before(async () => {
    // A long prefetch leaves time between a row's claim and its instant, however loaded the machine.
    s = await startTestServer({ env: { SHIPCLOCK_PREFETCH_MS: String(PREFETCH_MS) } });
    hook = await startWebhookReceiver();
  });
  after(async () => {
    await hook.close();
    await s.stop();
  });

  async function app() {
    const r = await s.api('POST', '/v1/apps', { name: `fire-${++n}`, target: { type: 'webhook', url: hook.url } }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  }
  async function schedule(appId: string, ms: number, extra: Record<string, unknown> = {}) {
    const r = await s.api('POST', '/v1/scheduled_deployments', { app: appId, ...utcFields(ms), ...extra }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result as { id: string; run_at: string };
  }
  /** A one-off freeze of `appId` from a minute ago for an hour, as wall times in UTC. */
  const freezeBody = (appId: string, name: string) => {
    const w = (ms: number) => {
      const d = new Date(Date.now() + ms);
      return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes() };
    };
    return { name, start: w(-60_000), end: w(3_600_000), timezone: 'UTC', apps: [appId] };
  };
  const get = async (id: string) => (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
  const hits = (id: string) => hook.hits.filter((h) => h.body.deployment_id === id).length;
  const settled = (id: string, states: string[], timeoutMs = 30_000) => eventually(async () => {
    const d = await get(id);
    return states.includes(d.state) && d;
  }, timeoutMs, `deployment ${id} to be ${states.join('/')}`);

  it('holds at its instant a deployment claimed before a freeze was created; the target is never called', async () => {
    const appId = await app();
    const d = await schedule(appId, PREFETCH_MS + 3000);
    await eventually(async () => (await s.db.pool.query('SELECT lease_owner FROM deployments WHERE id = $1', [d.id])).rows[0].lease_owner !== null, 20_000, 'the claim');
    const f = await s.api('POST', '/v1/freezes', freezeBody(appId, 'just now'), s.adminToken);
    assert.equal(f.status, 201, JSON.stringify(f.body));
    assert.deepEqual(f.body.conflicts, [], 'a row being fired is left to the fire gate');
    const held = await settled(d.id, ['held', 'succeeded', 'failed'], 30_000);
    assert.equal(held.state, 'held');
    assert.equal(held.held_by, f.body.id);
    assert.match(held.error, /inside the deploy freeze "just now"/);
    assert.ok(held.events.some((e: { state: string; message: string }) => e.state === 'held' && /checked at its instant/.test(e.message)));
    // Well past its instant: still held, never called.
    await eventually(async () => Date.now() > Date.parse(d.run_at) + 1500, 10_000);
    assert.equal((await get(d.id)).state, 'held');
    assert.equal(hits(d.id), 0);
  });

  it('holds a deployment whose freeze appeared without holding it (the gate alone decides)', async () => {
    const appId = await app();
    const d = await schedule(appId, PREFETCH_MS + 3000);
    // Written straight to the table (as a racing transaction might), then announced.
    const team = (await s.db.pool.query('SELECT team_id FROM apps WHERE id = $1', [appId])).rows[0].team_id;
    await s.db.pool.query(
      `INSERT INTO freezes (team_id, name, kind, timezone, start_local, end_local, start_at, end_at, apps)
       VALUES ($1, 'raced', 'once', 'UTC', now() AT TIME ZONE 'UTC', (now() + interval '1 hour') AT TIME ZONE 'UTC', now(), now() + interval '1 hour', ARRAY[$2::uuid])`,
      [team, appId],
    );
    await notifyGates(s.db.pool);
    const held = await settled(d.id, ['held', 'succeeded', 'failed']);
    assert.equal(held.state, 'held');
    assert.equal(hits(d.id), 0);
  });

  it('fires a held deployment an owner released, once', async () => {
    const appId = await app();
    const d = await schedule(appId, PREFETCH_MS + 6000);
    const f = await s.api('POST', '/v1/freezes', freezeBody(appId, 'release me'), s.adminToken);
    assert.deepEqual(f.body.conflicts.map((c: { id: string }) => c.id), [d.id]);
    assert.equal((await get(d.id)).state, 'held');
    const r = await s.api('POST', `/v1/scheduled_deployments/${d.id}/release`, { reason: 'approved by the CTO' }, s.adminToken);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const done = await settled(d.id, ['succeeded', 'failed', 'held', 'missed']);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.events));
    assert.equal(hits(d.id), 1);
    assert.ok(Date.parse(done.started_at) >= Date.parse(d.run_at), 'not before its instant');
  });

  it('ends missed, saying why, a held deployment never released by its expiry', async () => {
    const appId = await app();
    const d = await schedule(appId, PREFETCH_MS + 2000, { expires_after_seconds: 2 });
    const f = await s.api('POST', '/v1/freezes', freezeBody(appId, 'nobody came'), s.adminToken);
    assert.equal(f.body.conflicts.length, 1);
    const m = await settled(d.id, ['missed', 'succeeded', 'failed'], 30_000);
    assert.equal(m.state, 'missed');
    assert.match(m.error, /still held at its expiry .*"nobody came"/);
    assert.equal(hits(d.id), 0);
    const rec = (await s.db.pool.query('SELECT finished_at, expires_at FROM deployments WHERE id = $1', [d.id])).rows[0];
    assert.ok(rec.finished_at.getTime() >= rec.expires_at.getTime() - 1000, 'ended at its expiry, not before');
  });

  it('creates the occurrences of a schedule that fall inside a freeze held', async () => {
    const appId = await app();
    const fb = freezeBody(appId, 'no crons');
    fb.end = { ...fb.start, hour: fb.start.hour, minute: fb.start.minute };
    // A freeze of the next 10 minutes (from a minute ago).
    const end = new Date(Date.now() + 600_000);
    fb.end = { year: end.getUTCFullYear(), month: end.getUTCMonth() + 1, day: end.getUTCDate(), hour: end.getUTCHours(), minute: end.getUTCMinutes() };
    const f = await s.api('POST', '/v1/freezes', fb, s.adminToken);
    assert.equal(f.status, 201, JSON.stringify(f.body));
    const sc = await s.api('POST', '/v1/schedules', { app: appId, cron: '*/5 * * * *', timezone: 'UTC' }, s.adminToken);
    assert.equal(sc.status, 201, JSON.stringify(sc.body));
    const rows = (await s.db.pool.query('SELECT state, run_at, held_by, due_at, expires_at FROM deployments WHERE schedule_id = $1 ORDER BY run_at', [sc.body.id])).rows;
    const endAt = Date.parse(f.body.end_at);
    const inside = rows.filter((r) => r.run_at.getTime() < endAt);
    const outside = rows.filter((r) => r.run_at.getTime() >= endAt);
    assert.ok(inside.length >= 1 && outside.length >= 1, JSON.stringify(rows));
    assert.ok(inside.every((r) => r.state === 'held' && r.held_by === f.body.id && r.due_at.getTime() === r.expires_at.getTime()));
    assert.ok(outside.every((r) => r.state === 'scheduled'));
    // Deleting the freeze schedules them again.
    assert.equal((await s.api('DELETE', `/v1/freezes/${f.body.id}`, undefined, s.adminToken)).status, 204);
    const after = (await s.db.pool.query(`SELECT count(*)::int AS n FROM deployments WHERE schedule_id = $1 AND state = 'held'`, [sc.body.id])).rows[0].n;
    assert.equal(after, 0);
  });
});
