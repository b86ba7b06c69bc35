/**
 * /v1/schedules over HTTP on real PostgreSQL: creation makes occurrence rows at once; bad input
 * is a 422 naming the field with nothing stored; roles, other teams, pagination, preview, PATCH
 * (future occurrences only), pause/resume (no back-filling), delete, audit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './helpers/server.ts';

describe('/v1/schedules', () => {
  let s: TestServer;
  let app: { id: string; name: string };
  let dep: { id: string; name: string };
  const tokens: Record<string, string> = {};
  const count = async (table: string) => Number((await s.db.pool.query(`SELECT count(*) FROM ${table}`)).rows[0].count);
  const rows = async (scheduleId: string) => (await s.db.pool.query(
    `SELECT id, state, run_at, schedule_role, schedule_generation, occurrence_at, dependency_id, local_hour, local_minute, error
       FROM deployments WHERE schedule_id = $1 ORDER BY run_at, schedule_role`, [scheduleId])).rows;
  const audit = async (target: string) => (await s.db.pool.query('SELECT action FROM audit_log WHERE target_id = $1 ORDER BY id', [target])).rows.map((r) => r.action);

  before(async () => {
    s = await startTestServer();
    app = (await s.api('POST', '/v1/apps', { name: 'api', target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, s.adminToken)).body;
    dep = (await s.api('POST', '/v1/apps', { name: 'migrations', target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, s.adminToken)).body;
    const me = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body;
    for (const role of ['deployer', 'viewer'] as const) {
      await s.api('POST', `/v1/teams/${me.team.id}/members`, { email: `${role}@example.com`, password: `${role}-password`, role }, s.adminToken);
      tokens[role] = await s.login(`${role}@example.com`, `${role}-password`);
    }
    const other = (await s.api('POST', '/v1/teams', { name: 'others' }, s.adminToken)).body;
    await s.api('POST', `/v1/teams/${other.id}/members`, { email: 'them@example.com', password: 'their-password', role: 'owner' }, s.adminToken);
    tokens.them = await s.login('them@example.com', 'their-password');
  });
  after(() => s.stop());

  it('creates a weekday train: 201 with the next 5 runs, and its occurrences within 24 h are rows at once', async () => {
    const r = await s.api('POST', '/v1/schedules', { app: app.id, cron: '30 9 * * 1-5', timezone: 'europe/berlin' }, tokens.deployer);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const b = r.body;
    assert.equal(b.timezone, 'Europe/Berlin', 'the zone as the database spells it');
    assert.deepEqual(b.app, { id: app.id, name: 'api' });
    assert.equal(b.paused, false);
    assert.equal(b.dst_gap, 'shift');
    assert.equal(b.dst_overlap, 'first');
    assert.equal(b.next_runs.length, 5);
    for (const t of b.next_runs) {
      assert.match(t, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(t));
      assert.match(local, /^(Mon|Tue|Wed|Thu|Fri) 09:30$/, local);
    }
    const occ = await rows(b.id);
    const within = b.next_runs.filter((t: string) => Date.parse(t) <= Date.now() + 86_400_000);
    assert.deepEqual(occ.map((o) => o.run_at.toISOString()), within);
    assert.ok(occ.every((o) => o.state === 'scheduled' && o.schedule_role === 'occurrence' && o.local_hour === 9 && o.local_minute === 30));
    if (occ.length) {
      const one = await s.api('GET', `/v1/scheduled_deployments/${occ[0].id}`, undefined, tokens.viewer);
      assert.equal(one.body.result.schedule_id, b.id);
      assert.equal(one.body.result.events[0].state, 'scheduled');
    }
    assert.deepEqual(await audit(b.id), ['schedule.create']);
  });

  it('every 5 seconds with a dependency 2 s before: each occurrence has its dependency row, lead 0 fits too', async () => {
    for (const lead of [2, 0]) {
      const r = await s.api('POST', '/v1/schedules', { app: app.id, dependency: dep.id, dependency_lead_seconds: lead, cron: '*/5 * * * * *', timezone: 'UTC', paused: false }, s.adminToken);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const all = await rows(r.body.id);
      const occ = all.filter((o) => o.schedule_role === 'occurrence');
      const deps = all.filter((o) => o.schedule_role === 'dependency');
      assert.equal(occ.length, 100, 'at most SHIPCLOCK_SCHEDULE_MAX_AHEAD (100) ahead');
      assert.equal(deps.length, 100);
      for (const o of occ) {
        const d = deps.find((x) => x.id === o.dependency_id);
        assert.ok(d, 'linked to its dependency row');
        assert.equal(o.run_at.getTime() - d.run_at.getTime(), lead * 1000);
        assert.equal(d.occurrence_at.getTime(), o.run_at.getTime());
      }
      const t = Date.now();
      assert.equal((await s.api('DELETE', `/v1/schedules/${r.body.id}`, undefined, s.adminToken)).status, 204);
      // (the first ones may be firing already: those run)
      assert.ok((await rows(r.body.id)).filter((o) => o.run_at.getTime() > t + 3000).every((o) => o.state === 'canceled'));
    }
  });

  const bad: Array<[string, Record<string, unknown>, number, string, string]> = [
    ['invalid cron', { cron: '61 * * * *' }, 422, 'invalid_cron', 'cron'],
    ['four fields', { cron: '* * * *' }, 422, 'invalid_cron', 'cron'],
    ['seven fields', { cron: '0 0 0 * * * 2030' }, 422, 'invalid_cron', 'cron'],
    ['unknown zone', { timezone: 'Moon/Base' }, 422, 'unknown_timezone', 'timezone'],
    ['fixed offset as zone', { timezone: '+02:00' }, 422, 'unknown_timezone', 'timezone'],
    ['ends_at before starts_at', { starts_at: '2031-01-02T00:00:00Z', ends_at: '2031-01-01T00:00:00Z' }, 422, 'invalid_window', 'ends_at'],
    ['ends_at equal to starts_at', { starts_at: '2031-01-02T00:00:00Z', ends_at: '2031-01-02T00:00:00Z' }, 422, 'invalid_window', 'ends_at'],
    ['never fires: February 30', { cron: '0 9 30 2 *' }, 422, 'never_fires', 'cron'],
    ['never fires: April 31', { cron: '0 9 31 4 *' }, 422, 'never_fires', 'cron'],
    ['never fires within the window', { cron: '0 9 1 1 *', starts_at: '2031-02-01T00:00:00Z', ends_at: '2031-12-01T00:00:00Z' }, 422, 'never_fires', 'ends_at'],
    ['ends_at in the past', { ends_at: '2020-01-01T00:00:00Z' }, 422, 'never_fires', 'ends_at'],
    ['unknown app', { app: '00000000-0000-4000-8000-000000000000' }, 422, 'unknown_app', 'app'],
    ['self dependency', { dependency: 'SELF' }, 422, 'self_dependency', 'dependency'],
    ['bad dst_gap', { dst_gap: 'later' }, 400, 'invalid_request', 'dst_gap'],
    ['bad dst_overlap', { dst_overlap: 'last' }, 400, 'invalid_request', 'dst_overlap'],
    ['unknown field', { color: 'blue' }, 400, 'invalid_request', 'color'],
  ];
  for (const [name, extra, status, code, field] of bad) {
    it(`POST /v1/schedules: ${name} → ${status} ${code} (${field}), nothing stored`, async () => {
      const before = [await count('schedules'), await count('deployments'), await count('audit_log')];
      const body: Record<string, unknown> = { app: app.id, cron: '0 9 * * *', timezone: 'UTC', ...extra };
      if (body.dependency === 'SELF') body.dependency = app.id;
      const r = await s.api('POST', '/v1/schedules', body, s.adminToken);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code);
      assert.equal(r.body.error.field, field);
      assert.deepEqual([await count('schedules'), await count('deployments'), await count('audit_log')], before, 'nothing stored');
    });
  }

  it('roles: a viewer reads but cannot write (403); another team gets 404 for our ids', async () => {
    const mine = (await s.api('POST', '/v1/schedules', { app: app.id, cron: '0 3 * * *', timezone: 'UTC' }, tokens.deployer)).body;
    assert.equal((await s.api('GET', '/v1/schedules', undefined, tokens.viewer)).status, 200);
    assert.equal((await s.api('GET', `/v1/schedules/${mine.id}`, undefined, tokens.viewer)).status, 200);
    assert.equal((await s.api('POST', '/v1/schedules', { app: app.id, cron: '0 3 * * *', timezone: 'UTC' }, tokens.viewer)).status, 403);
    for (const [m, p, b] of [['PATCH', '', { cron: '0 4 * * *' }], ['DELETE', '', undefined], ['POST', '/pause', undefined], ['POST', '/resume', undefined]] as const) {
      assert.equal((await s.api(m, `/v1/schedules/${mine.id}${p}`, b, tokens.viewer)).status, 403, `${m} ${p} as viewer`);
      assert.equal((await s.api(m, `/v1/schedules/${mine.id}${p}`, b, tokens.them)).status, 404, `${m} ${p} as another team`);
    }
    assert.equal((await s.api('GET', `/v1/schedules/${mine.id}`, undefined, tokens.them)).status, 404);
    assert.ok(!(await s.api('GET', '/v1/schedules', undefined, tokens.them)).body.result.some((x: { id: string }) => x.id === mine.id));
    // Another team's app cannot be scheduled either.
    const r = await s.api('POST', '/v1/schedules', { app: app.id, cron: '0 3 * * *', timezone: 'UTC' }, tokens.them);
    assert.equal(r.status, 422);
    assert.equal(r.body.error.field, 'app');
  });

  it('lists with cursor and limit; deleted schedules are gone from the list and answer 404', async () => {
    const created: string[] = [];
    for (let i = 0; i < 3; i++) created.push((await s.api('POST', '/v1/schedules', { app: app.id, cron: `${i} 5 * * *`, timezone: 'UTC' }, s.adminToken)).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await s.api('GET', `/v1/schedules?limit=2${cursor ? `&cursor=${cursor}` : ''}`, undefined, s.adminToken);
      assert.equal(r.status, 200);
      assert.ok(r.body.result.length <= 2);
      seen.push(...r.body.result.map((x: { id: string }) => x.id));
      cursor = r.body.next_cursor;
    } while (cursor);
    assert.equal(new Set(seen).size, seen.length, 'no repeats');
    for (const id of created) assert.ok(seen.includes(id));
    assert.equal((await s.api('GET', '/v1/schedules?cursor=nonsense', undefined, s.adminToken)).status, 400);
    assert.equal((await s.api('DELETE', `/v1/schedules/${created[0]}`, undefined, s.adminToken)).status, 204);
    assert.equal((await s.api('GET', `/v1/schedules/${created[0]}`, undefined, s.adminToken)).status, 404);
    assert.equal((await s.api('DELETE', `/v1/schedules/${created[0]}`, undefined, s.adminToken)).status, 404);
    assert.ok(!(await s.api('GET', '/v1/schedules?limit=500', undefined, s.adminToken)).body.result.some((x: { id: string }) => x.id === created[0]));
    assert.deepEqual(await audit(created[0]), ['schedule.create', 'schedule.delete']);
  });

  it('preview: the next runs with local time, offset and the DST notes; nothing stored', async () => {
    const before = await count('schedules');
    const q = (p: Record<string, string>) => s.api('GET', `/v1/schedules/preview?${new URLSearchParams(p)}`, undefined, tokens.viewer);
    const gap = await q({ cron: '30 2 * * *', timezone: 'America/New_York', count: '3', from: '2027-03-13T12:00:00Z' });
    assert.equal(gap.status, 200, JSON.stringify(gap.body));
    assert.deepEqual(gap.body.result, [
      { run_at: '2027-03-14T07:30:00.000Z', local: { year: 2027, month: 3, day: 14, hour: 3, minute: 30, second: 0 }, utc_offset: '-04:00', note: 'shifted (DST gap)' },
      { run_at: '2027-03-15T06:30:00.000Z', local: { year: 2027, month: 3, day: 15, hour: 2, minute: 30, second: 0 }, utc_offset: '-04:00' },
      { run_at: '2027-03-16T06:30:00.000Z', local: { year: 2027, month: 3, day: 16, hour: 2, minute: 30, second: 0 }, utc_offset: '-04:00' },
    ]);
    const skip = await q({ cron: '30 2 * * *', timezone: 'America/New_York', count: '1', from: '2027-03-13T12:00:00Z', dst_gap: 'skip' });
    assert.equal(skip.body.result[0].run_at, '2027-03-15T06:30:00.000Z');
    const both = await q({ cron: '30 1 * * *', timezone: 'America/New_York', count: '2', from: '2027-11-06T12:00:00Z', dst_overlap: 'both' });
    assert.deepEqual(both.body.result.map((x: { run_at: string; note?: string }) => [x.run_at, x.note]), [
      ['2027-11-07T05:30:00.000Z', 'repeated hour'], ['2027-11-07T06:30:00.000Z', 'repeated hour'],
    ]);
    const dflt = await q({ cron: '*/5 * * * * *', timezone: 'UTC' });
    assert.equal(dflt.body.result.length, 5);
    for (const [p, code, field, status] of [
      [{ cron: '61 * * * *', timezone: 'UTC' }, 'invalid_cron', 'cron', 422],
      [{ cron: '0 0 30 2 *', timezone: 'UTC' }, 'never_fires', 'cron', 422],
      [{ cron: '0 0 * * *', timezone: 'Nowhere/City' }, 'unknown_timezone', 'timezone', 422],
      [{ cron: '0 0 * * *', timezone: 'UTC', count: '101' }, 'invalid_request', 'count', 400],
    ] as const) {
      const r = await q(p as Record<string, string>);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code);
      assert.equal(r.body.error.field, field);
    }
    assert.equal(await count('schedules'), before);
  });

  it('PATCH replaces the occurrences that have not started and leaves the others alone', async () => {
    const sc = (await s.api('POST', '/v1/schedules', { app: dep.id, cron: '0 */2 * * *', timezone: 'UTC' }, s.adminToken)).body;
    const first = await rows(sc.id);
    assert.ok(first.length >= 11);
    // One occurrence "already ran" (as far as PATCH is concerned, it is final).
    await s.db.pool.query(`UPDATE deployments SET state = 'succeeded', due_at = NULL, finished_at = now() WHERE id = $1`, [first[0].id]);
    const r = await s.api('PATCH', `/v1/schedules/${sc.id}`, { cron: '15 */3 * * *', timezone: 'Asia/Kolkata' }, tokens.deployer);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.cron, '15 */3 * * *');
    assert.equal(r.body.timezone, 'Asia/Kolkata');
    const after = await rows(sc.id);
    assert.equal(after.find((o) => o.id === first[0].id).state, 'succeeded', 'what ran stays');
    for (const o of first.slice(1)) assert.equal(after.find((x) => x.id === o.id).state, 'canceled', 'the old future ones are canceled');
    const fresh = after.filter((o) => o.state === 'scheduled');
    assert.ok(fresh.length >= 7);
    assert.ok(fresh.every((o) => o.schedule_generation === first[0].schedule_generation + 1 && o.local_minute === 15 && o.local_hour % 3 === 0));
    assert.deepEqual(fresh.slice(0, 5).map((o) => o.run_at.toISOString()), r.body.next_runs);
    const bad = await s.api('PATCH', `/v1/schedules/${sc.id}`, { cron: '0 0 31 2 *' }, s.adminToken);
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error.field, 'cron');
    assert.deepEqual((await rows(sc.id)).map((o) => o.state), after.map((o) => o.state), 'a refused PATCH changes nothing');
    assert.deepEqual(await audit(sc.id), ['schedule.create', 'schedule.update']);
  });

  it('pause cancels what has not started; resume continues from now without back-filling', async () => {
    const sc = (await s.api('POST', '/v1/schedules', { app: app.id, cron: '*/10 * * * *', timezone: 'UTC' }, s.adminToken)).body;
    const before = await rows(sc.id);
    assert.ok(before.length > 100 - 1);
    const p = await s.api('POST', `/v1/schedules/${sc.id}/pause`, undefined, tokens.deployer);
    assert.equal(p.status, 200);
    assert.equal(p.body.paused, true);
    assert.deepEqual(p.body.next_runs, []);
    const paused = await rows(sc.id);
    assert.ok(paused.every((o) => o.state === 'canceled'));
    const ev = await s.db.pool.query(`SELECT message FROM deployment_events WHERE deployment_id = $1 ORDER BY id DESC LIMIT 1`, [paused[0].id]);
    assert.match(ev.rows[0].message, /paused by deployer@example.com/);
    assert.equal((await s.api('POST', `/v1/schedules/${sc.id}/pause`, undefined, tokens.deployer)).status, 409);
    // A materializer pass while paused writes nothing.
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await rows(sc.id)).length, paused.length);
    const t = Date.now();
    const res = await s.api('POST', `/v1/schedules/${sc.id}/resume`, undefined, tokens.deployer);
    assert.equal(res.status, 200);
    assert.equal(res.body.paused, false);
    const resumed = (await rows(sc.id)).filter((o) => o.state === 'scheduled');
    assert.ok(resumed.length > 0);
    assert.ok(resumed.every((o) => o.run_at.getTime() > t - 1000), 'nothing before the resume');
    assert.deepEqual(await audit(sc.id), ['schedule.create', 'schedule.pause', 'schedule.resume']);
  });

  it('a single occurrence is canceled with the ordinary cancel route; the schedule carries on', async () => {
    const sc = (await s.api('POST', '/v1/schedules', { app: app.id, cron: '0 * * * *', timezone: 'UTC' }, s.adminToken)).body;
    const [one, two] = await rows(sc.id);
    const r = await s.api('POST', `/v1/scheduled_deployments/${one.id}/cancel`, undefined, tokens.deployer);
    assert.equal(r.status, 200);
    assert.equal(r.body.result.state, 'canceled');
    assert.equal(r.body.result.schedule_id, sc.id);
    const list = await s.api('GET', `/v1/scheduled_deployments?schedule=${sc.id}&state=scheduled`, undefined, tokens.viewer);
    assert.equal(list.status, 200);
    assert.ok(list.body.result.every((d: { schedule_id: string }) => d.schedule_id === sc.id));
    assert.equal(list.body.result[0].id, two.id);
  });

  it('an app in a live schedule cannot be deleted', async () => {
    const other = (await s.api('POST', '/v1/apps', { name: 'web', target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, s.adminToken)).body;
    const sc = (await s.api('POST', '/v1/schedules', { app: other.id, cron: '0 0 1 1 *', timezone: 'UTC' }, s.adminToken)).body;
    const r = await s.api('DELETE', `/v1/apps/${other.id}`, undefined, s.adminToken);
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'app_has_schedules');
    await s.api('DELETE', `/v1/schedules/${sc.id}`, undefined, s.adminToken);
    assert.equal((await s.api('DELETE', `/v1/apps/${other.id}`, undefined, s.adminToken)).status, 204);
  });
});
