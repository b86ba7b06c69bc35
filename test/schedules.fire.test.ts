/**
 * Recurring schedules fire for real: an every-2-seconds schedule across 3 processes fires once
 * per occurrence; pause stops it; resume continues without back-filling; downtime over three
 * occurrences records them missed once and the schedule carries on. Timing bounds are generous
 * (the machine is shared); what is asserted is once, never early, never late in a burst. The
 * cadence is 2 s (it was 5 s): what is proved does not depend on it, and every wait below is a
 * whole number of occurrences, so the file waits 2/5 as long.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startShipclock } from '../src/server.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { eventually, startTestServer, testEnv, type TestServer } from './helpers/server.ts';

const rowsOf = async (pool: TestDatabase['pool'], id: string) => (await pool.query(
  `SELECT id, state, run_at, occurrence_at, schedule_generation, error FROM deployments WHERE schedule_id = $1 AND schedule_role = 'occurrence' ORDER BY run_at`, [id])).rows;

describe('an every-2-seconds schedule across 3 processes', () => {
  let s: TestServer;
  let hook: WebhookReceiver;
  before(async () => {
    // Few rows ahead, so that every process's materializer keeps refilling while it fires.
    s = await startTestServer({ env: { SHIPCLOCK_SCHEDULE_MAX_AHEAD: '3' } });
    await s.another('worker');
    await s.another('worker');
    hook = await startWebhookReceiver();
  });
  after(async () => {
    await s.stop();
    await hook.close();
  });

  it('fires once per occurrence, at its instant; pause stops it; resume continues without back-filling', async () => {
    const app = (await s.api('POST', '/v1/apps', { name: 'train', target: { type: 'webhook', url: hook.url } }, s.adminToken)).body;
    const sc = (await s.api('POST', '/v1/schedules', { app: app.id, cron: '*/2 * * * * *', timezone: 'Europe/Berlin' }, s.adminToken)).body;
    assert.equal(sc.next_runs.length, 5);
    const succeeded = async () => (await rowsOf(s.db.pool, sc.id)).filter((r) => r.state === 'succeeded');
    await eventually(async () => (await succeeded()).length >= 6, 90_000, 'six occurrences to succeed');

    const paused = await s.api('POST', `/v1/schedules/${sc.id}/pause`, undefined, s.adminToken);
    assert.equal(paused.status, 200);
    const pausedAt = Date.now();
    // Whatever was being fired at the pause finishes; then nothing more.
    await eventually(async () => (await rowsOf(s.db.pool, sc.id)).every((r) => ['succeeded', 'canceled', 'failed', 'missed'].includes(r.state)), 30_000, 'the pause to settle');
    const hitsAtPause = hook.hits.length;
    // Long enough that the stretch checked for back-filling below (from 5 s after the pause to
    // the resume) holds an instant or more of the 2-second grid.
    await new Promise((r) => setTimeout(r, 8_000));
    assert.equal(hook.hits.length, hitsAtPause, 'no call while paused');
    assert.ok(hook.hits.every((h) => h.at < pausedAt + 5000), 'nothing after the pause but what was already firing');

    const resumedAt = Date.now();
    assert.equal((await s.api('POST', `/v1/schedules/${sc.id}/resume`, undefined, s.adminToken)).status, 200);
    await eventually(async () => (await succeeded()).filter((r) => r.run_at.getTime() > resumedAt).length >= 2, 60_000, 'two occurrences after the resume');
    await s.api('POST', `/v1/schedules/${sc.id}/pause`, undefined, s.adminToken);
    await eventually(async () => (await rowsOf(s.db.pool, sc.id)).every((r) => r.state !== 'scheduled' && r.state !== 'running'), 30_000, 'to settle');

    const rows = await rowsOf(s.db.pool, sc.id);
    const ran = rows.filter((r) => r.state === 'succeeded');
    // Once per occurrence: one row per instant, one call per row, none early.
    const instants = ran.map((r) => r.run_at.getTime());
    assert.equal(new Set(instants).size, instants.length, 'one row per instant');
    for (const r of ran) {
      const calls = hook.hits.filter((h) => h.body.deployment_id === r.id);
      assert.equal(calls.length, 1, `occurrence ${r.run_at.toISOString()} called once`);
      assert.ok(calls[0].at >= r.run_at.getTime(), 'never early');
      assert.equal(r.run_at.getTime() % 2000, 0, 'on the 2-second grid');
    }
    assert.equal(hook.hits.length, ran.length, 'no call without its succeeded row');
    // No back-filling: nothing ran between the pause settling and the resume.
    assert.ok(!ran.some((r) => r.run_at.getTime() > pausedAt + 5000 && r.run_at.getTime() <= resumedAt), 'the paused stretch was not back-filled');
    // Before the pause, every 2-second instant from the first ran (none lost).
    const before = instants.filter((t) => t <= pausedAt);
    for (let i = 1; i < before.length; i++) assert.equal(before[i] - before[i - 1], 2000, `none lost before the pause (${new Date(before[i - 1]).toISOString()} → ${new Date(before[i]).toISOString()})`);
    // The processes shared the materialization and the firing.
    const by = await s.db.pool.query(`SELECT DISTINCT split_part(e.message, ' on ', 2) AS who FROM deployment_events e JOIN deployments d ON d.id = e.deployment_id
                                        WHERE d.schedule_id = $1 AND e.state = 'running'`, [sc.id]);
    console.log(`# ${ran.length} occurrences fired by ${by.rowCount} process(es)`);
  });
});

describe('downtime', () => {
  let db: TestDatabase;
  let hook: WebhookReceiver;
  before(async () => {
    db = await createTestDatabase({ migrate: false });
    hook = await startWebhookReceiver();
  });
  after(async () => {
    await hook.close();
    await db.drop();
  });

  it('occurrences whose expiry passed while shipclock was down are recorded missed once each; the schedule carries on; no burst of late runs', async () => {
    const env = testEnv(db.url, { SHIPCLOCK_SCHEDULE_MAX_AHEAD: '1' });
    const logger = createLogger(env.LOG_LEVEL!);
    let sc = await startShipclock('serve', env, logger);
    const api = async (method: string, path: string, body?: unknown, token?: string) => {
      const res = await fetch(sc.url + path, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body ? JSON.stringify(body) : undefined });
      return { status: res.status, body: await res.json() as any };
    };
    const login = async () => (await api('POST', '/v1/auth/login', { email: env.SHIPCLOCK_ADMIN_EMAIL, password: env.SHIPCLOCK_ADMIN_PASSWORD })).body.access_token as string;
    let token = await login();
    const app = (await api('POST', '/v1/apps', { name: 'train', target: { type: 'webhook', url: hook.url } }, token)).body;
    const sched = (await api('POST', '/v1/schedules', { app: app.id, cron: '*/2 * * * * *', timezone: 'UTC', expires_after_seconds: 2 }, token)).body;
    await eventually(async () => (await rowsOf(db.pool, sched.id)).some((r) => r.state === 'succeeded'), 60_000, 'a first occurrence');
    await sc.stop();
    const downAt = Date.now();
    // Three occurrences or more, each expired by the restart: the instants counted below lie in
    // (down + 1 s, up - 2 s), 7 s of a 2-second grid.
    await new Promise((r) => setTimeout(r, 10_000));
    const upAt = Date.now();
    sc = await startShipclock('serve', env, logger);
    token = await login();
    try {
      await eventually(async () => (await rowsOf(db.pool, sched.id)).some((r) => r.state === 'succeeded' && r.run_at.getTime() > upAt), 60_000, 'an occurrence after the restart');
      const rows = await rowsOf(db.pool, sched.id);
      const down = rows.filter((r) => r.run_at.getTime() > downAt + 1000 && r.run_at.getTime() + 2000 < upAt);
      assert.ok(down.length >= 3, `at least three occurrences fell in the downtime (${down.length})`);
      assert.ok(down.every((r) => r.state === 'missed'), JSON.stringify(down.map((r) => [r.run_at, r.state])));
      assert.ok(down.every((r) => /expires_after_seconds|not running/.test(r.error)), 'they say why');
      const instants = rows.map((r) => r.run_at.getTime());
      assert.equal(new Set(instants).size, instants.length, 'each recorded once');
      const events = await db.pool.query(`SELECT deployment_id, count(*)::int AS n FROM deployment_events WHERE deployment_id = ANY($1::uuid[]) AND state = 'missed' GROUP BY 1`, [down.map((r) => r.id)]);
      assert.ok(events.rows.every((r) => r.n === 1) && events.rowCount === down.length, 'one missed event each');
      for (const r of down) assert.equal(hook.hits.filter((h) => h.body.deployment_id === r.id).length, 0, 'a missed one is never called');
      // No burst of late runs: every call made is of an occurrence before the downtime, or of one
      // whose instant was within its expiry when shipclock came back (nothing from the gap ran).
      // Judged by instants, not by arrival times, which a loaded machine delays.
      for (const h of hook.hits) {
        const row = rows.find((r) => r.id === h.body.deployment_id);
        assert.ok(row, 'a call for a row of this schedule');
        const t = row.run_at.getTime();
        assert.ok(t <= downAt + 1000 || t + 2000 >= upAt, `called ${new Date(t).toISOString()}, an instant of the downtime (${new Date(downAt).toISOString()} to ${new Date(upAt).toISOString()})`);
      }
      const sc2 = await api('GET', `/v1/schedules/${sched.id}`, undefined, token);
      assert.ok(Date.parse(sc2.body.next_runs[0]) > upAt, 'carries on with the next one');
    } finally {
      await sc.stop();
    }
  });
});
