/**
 * Deploy freezes over HTTP on real PostgreSQL: 409 frozen with the right next_allowed_at
 * (back-to-back, overlapping, across a DST change, the dependency's instant), nothing stored;
 * the owner's override (audited, on the timeline); roles; a freeze over scheduled deployments
 * holds them (conflicts) and deleting or narrowing it returns them; release, reschedule and
 * cancel of held ones; a recurring weekend freeze in Europe/Berlin on both DST weekends;
 * GET /v1/freezes/check; pagination.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './helpers/server.ts';

describe('/v1/freezes', () => {
  let s: TestServer;
  const tokens: Record<string, string> = {};
  let n = 0;
  const count = async () => Number((await s.db.pool.query('SELECT count(*) FROM deployments')).rows[0].count);
  const audit = async (target: string) => (await s.db.pool.query('SELECT action, details FROM audit_log WHERE target_id = $1 ORDER BY id', [target])).rows;
  const state = async (id: string) => (await s.db.pool.query('SELECT state, held_by, error, freeze_override FROM deployments WHERE id = $1', [id])).rows[0];

  async function app(name = `app-${++n}`): Promise<string> {
    const r = await s.api('POST', '/v1/apps', { name, target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id;
  }
  async function freeze(body: Record<string, unknown>, token = s.adminToken) {
    const r = await s.api('POST', '/v1/freezes', body, token);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  }
  const wall = (iso: string) => {
    const [d, t] = iso.split('T');
    const [year, month, day] = d.split('-').map(Number);
    const [hour, minute] = t.split(':').map(Number);
    return { year, month, day, hour, minute };
  };
  const at = (iso: string, timezone: string, extra: Record<string, unknown> = {}) => ({ ...wall(iso), timezone, ...extra });

  before(async () => {
    s = await startTestServer();
    const me = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body;
    for (const role of ['deployer', 'viewer'] as const) {
      await s.api('POST', `/v1/teams/${me.team.id}/members`, { email: `${role}@example.com`, password: `${role}-password`, role }, s.adminToken);
      tokens[role] = await s.login(`${role}@example.com`, `${role}-password`);
    }
  });
  after(() => s.stop());

  it('answers 409 frozen with next_allowed_at after back-to-back and overlapping freezes, storing nothing', async () => {
    const a = await app();
    await freeze({ name: 'release train', start: wall('2027-02-10T10:00'), end: wall('2027-02-10T12:00'), timezone: 'Europe/Berlin', apps: [a] });
    await freeze({ name: 'back to back', start: wall('2027-02-10T12:00'), end: wall('2027-02-10T14:00'), timezone: 'Europe/Berlin', apps: [a] });
    await freeze({ name: 'overlapping', start: wall('2027-02-10T13:00'), end: wall('2027-02-10T15:30'), timezone: 'Europe/Berlin', apps: [a], reason: 'launch' });
    const before = await count();
    const r = await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-02-10T11:00', 'Europe/Berlin') }, tokens.deployer);
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'frozen');
    assert.equal(r.body.error.field, 'time');
    assert.equal(r.body.error.freeze.name, 'release train');
    assert.equal(r.body.error.next_allowed_at, '2027-02-10T14:30:00.000Z', '15:30 Berlin (CET)');
    assert.match(r.body.error.message, /"release train", which ends 2027-02-10 12:00 Europe\/Berlin; the next allowed time is 2027-02-10 15:30 Europe\/Berlin/);
    assert.equal(await count(), before, 'nothing stored');
    // The same request in New York: the message speaks its zone.
    const ny = await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-02-10T08:00', 'America/New_York') }, tokens.deployer);
    assert.equal(ny.status, 409);
    assert.equal(ny.body.error.freeze.name, 'overlapping');
    assert.match(ny.body.error.message, /which ends 2027-02-10 09:30 America\/New_York; the next allowed time is 2027-02-10 09:30 America\/New_York/);
    assert.equal(ny.body.error.next_allowed_at, '2027-02-10T14:30:00.000Z');
    // The end itself is allowed; another app is not frozen.
    const ok = await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-02-10T15:30', 'Europe/Berlin') }, tokens.deployer);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const other = await s.api('POST', '/v1/scheduled_deployments', { app: await app(), ...at('2027-02-10T11:00', 'Europe/Berlin') }, tokens.deployer);
    assert.equal(other.status, 201);
  });

  it('answers next_allowed_at across a DST change (the freeze ends after the clocks go forward)', async () => {
    const a = await app();
    // Berlin skips 02:00–03:00 on 2027-03-28: 22:00 CET to 03:30 CEST is 4.5 wall hours, 3.5 real ones.
    await freeze({ name: 'night', start: wall('2027-03-27T22:00'), end: wall('2027-03-28T03:30'), timezone: 'Europe/Berlin', apps: [a] });
    const r = await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-03-28T01:30', 'Europe/Berlin') }, tokens.deployer);
    assert.equal(r.status, 409);
    assert.equal(r.body.error.next_allowed_at, '2027-03-28T01:30:00.000Z');
    assert.match(r.body.error.message, /ends 2027-03-28 03:30 Europe\/Berlin/);
    const utc = await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-03-28T01:29', 'UTC') }, tokens.deployer);
    assert.equal(utc.status, 409, 'one minute before the end, in UTC');
    assert.equal((await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-03-28T01:30', 'UTC') }, tokens.deployer)).status, 201);
  });

  it('answers 409 when the dependency\'s instant is frozen, with next_allowed_at for both', async () => {
    const a = await app();
    const d = await app();
    await freeze({ name: 'db freeze', start: wall('2027-04-01T10:00'), end: wall('2027-04-01T12:00'), timezone: 'UTC', apps: [d] });
    const before = await count();
    // The app at 12:05 is not frozen, but its dependency deploys 15 min earlier: 11:50, inside.
    const r = await s.api('POST', '/v1/scheduled_deployments', { app: a, dependency: d, ...at('2027-04-01T12:05', 'UTC') }, tokens.deployer);
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error.freeze.name, 'db freeze');
    assert.match(r.body.error.message, /its dependency "app-\d+", which would deploy at 2027-04-01 11:50 UTC,/);
    assert.equal(r.body.error.next_allowed_at, '2027-04-01T12:15:00.000Z');
    assert.equal(await count(), before);
    // Rescheduling a pair into it is refused the same way.
    const ok = await s.api('POST', '/v1/scheduled_deployments', { app: a, dependency: d, ...at('2027-04-01T13:00', 'UTC') }, tokens.deployer);
    assert.equal(ok.status, 201);
    const moved = await s.api('PATCH', `/v1/scheduled_deployments/${ok.body.result.id}`, at('2027-04-01T12:10', 'UTC'), tokens.deployer);
    assert.equal(moved.status, 409);
    assert.equal(moved.body.error.next_allowed_at, '2027-04-01T12:15:00.000Z');
    assert.equal((await s.api('GET', `/v1/scheduled_deployments/${ok.body.result.id}`, undefined, tokens.viewer)).body.result.run_at, '2027-04-01T13:00:00.000Z');
  });

  it('lets an owner override a freeze with a reason: audited and on the timeline; others cannot', async () => {
    const a = await app();
    const f = await freeze({ name: 'holidays', start: wall('2027-12-24T00:00'), end: wall('2027-12-27T00:00'), timezone: 'Europe/Berlin', apps: [a] });
    const body = { app: a, ...at('2027-12-25T10:00', 'Europe/Berlin') };
    const deployer = await s.api('POST', '/v1/scheduled_deployments', { ...body, override_freeze: { reason: 'hotfix' } }, tokens.deployer);
    assert.equal(deployer.status, 403);
    const empty = await s.api('POST', '/v1/scheduled_deployments', { ...body, override_freeze: { reason: '  ' } }, s.adminToken);
    assert.equal(empty.status, 422);
    assert.equal(empty.body.error.field, 'override_freeze.reason');
    const r = await s.api('POST', '/v1/scheduled_deployments', { ...body, override_freeze: { reason: 'security hotfix CVE-1' } }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.result.state, 'scheduled');
    assert.equal(r.body.result.freeze_override.reason, 'security hotfix CVE-1');
    const entries = await audit(r.body.result.id);
    const o = entries.find((e) => e.action === 'deployment.freeze_override');
    assert.ok(o, JSON.stringify(entries));
    assert.deepEqual(o.details.freeze, { id: f.id, name: 'holidays' });
    assert.equal(o.details.reason, 'security hotfix CVE-1');
    const detail = (await s.api('GET', `/v1/scheduled_deployments/${r.body.result.id}`, undefined, tokens.viewer)).body.result;
    assert.match(detail.events[0].message, /into the deploy freeze "holidays" by admin@\S+ \(override: security hotfix CVE-1\)/);
    // Its pair path too (a dependency in the freeze).
    const pair = await s.api('POST', '/v1/scheduled_deployments', { ...body, dependency: await app(), override_freeze: { reason: 'pair' } }, s.adminToken);
    assert.equal(pair.status, 201);
    assert.equal(pair.body.result.dependency.freeze_override.reason, 'pair');
  });

  it('only owners create, change and delete freezes; 422 names the field; everyone reads', async () => {
    const a = await app();
    const body = { name: 'x', start: wall('2027-05-01T10:00'), end: wall('2027-05-01T12:00'), timezone: 'UTC', apps: [a] };
    assert.equal((await s.api('POST', '/v1/freezes', body, tokens.deployer)).status, 403);
    const bad = async (b: Record<string, unknown>, field: string) => {
      const r = await s.api('POST', '/v1/freezes', b, s.adminToken);
      assert.equal(r.status >= 400 && r.status < 500, true, JSON.stringify(r.body));
      assert.equal(r.body.error.field, field, JSON.stringify(r.body));
    };
    await bad({ ...body, end: wall('2027-05-01T09:00') }, 'end');
    await bad({ ...body, start: wall('2020-05-01T09:00'), end: wall('2020-05-01T10:00') }, 'end');
    await bad({ ...body, timezone: 'Mars/Olympus' }, 'timezone');
    await bad({ ...body, apps: ['00000000-0000-4000-8000-000000000000'] }, 'apps');
    await bad({ ...body, start: wall('2027-03-28T02:30'), end: wall('2027-03-28T04:00'), timezone: 'Europe/Berlin' }, 'start.hour');
    await bad({ name: 'r', cron: 'nope', duration_seconds: 3600, timezone: 'UTC' }, 'cron');
    await bad({ name: 'r', cron: '0 0 30 2 *', duration_seconds: 3600, timezone: 'UTC' }, 'cron');
    await bad({ name: 'r', cron: '0 16 * * 5', timezone: 'UTC' }, 'duration_seconds');
    await bad({ name: 'r', timezone: 'UTC' }, 'start');
    const f = await freeze(body);
    assert.equal(f.kind, 'once');
    assert.deepEqual(f.start, wall('2027-05-01T10:00'));
    assert.equal(f.start_at, '2027-05-01T10:00:00.000Z');
    assert.deepEqual(f.apps, [a]);
    assert.equal((await s.api('GET', `/v1/freezes/${f.id}`, undefined, tokens.viewer)).body.name, 'x');
    assert.equal((await s.api('PATCH', `/v1/freezes/${f.id}`, { name: 'y' }, tokens.deployer)).status, 403);
    assert.equal((await s.api('DELETE', `/v1/freezes/${f.id}`, undefined, tokens.deployer)).status, 403);
    const p = await s.api('PATCH', `/v1/freezes/${f.id}`, { name: 'y', cron: '0 1 * * *' }, s.adminToken);
    assert.equal(p.status, 422);
    assert.equal(p.body.error.field, 'cron');
    assert.equal((await s.api('DELETE', `/v1/freezes/${f.id}`, undefined, s.adminToken)).status, 204);
    assert.equal((await s.api('GET', `/v1/freezes/${f.id}`, undefined, tokens.viewer)).status, 404);
    assert.deepEqual((await audit(f.id)).map((e) => e.action), ['freeze.create', 'freeze.delete']);
  });

  it('holds the deployments a new freeze covers (conflicts), returns them when it is deleted or narrowed', async () => {
    const a = await app();
    const d = await app();
    const one = (await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-06-05T10:00', 'UTC') }, tokens.deployer)).body.result;
    const pair = (await s.api('POST', '/v1/scheduled_deployments', { app: a, dependency: d, ...at('2027-06-06T10:00', 'UTC') }, tokens.deployer)).body.result;
    const outside = (await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-06-09T10:00', 'UTC') }, tokens.deployer)).body.result;
    const f = await freeze({ name: 'june', start: wall('2027-06-05T00:00'), end: wall('2027-06-08T00:00'), timezone: 'UTC', apps: [a] });
    assert.deepEqual(f.conflicts.map((c: { id: string }) => c.id), [one.id, pair.id]);
    assert.ok(f.conflicts.every((c: { state: string; held_by: string }) => c.state === 'held' && c.held_by === f.id));
    assert.equal((await state(outside.id)).state, 'scheduled');
    assert.equal((await state(pair.dependency.id)).state, 'scheduled', 'the dependency (another app, not frozen) is not held');
    const detail = (await s.api('GET', `/v1/scheduled_deployments/${one.id}`, undefined, tokens.viewer)).body.result;
    assert.equal(detail.state, 'held');
    assert.match(detail.error, /inside the deploy freeze "june" until 2027-06-08 00:00 UTC/);
    assert.equal(detail.events.at(-1).state, "held");
    const listed = await s.api('GET', '/v1/scheduled_deployments?state=held', undefined, tokens.viewer);
    assert.ok(listed.body.result.some((x: { id: string }) => x.id === one.id));

    // Narrowing to June 5 only returns the June 6 pair; deleting returns the rest.
    const narrowed = await s.api('PATCH', `/v1/freezes/${f.id}`, { end: wall('2027-06-06T00:00') }, s.adminToken);
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
    assert.deepEqual(narrowed.body.released, [pair.id]);
    assert.equal((await state(pair.id)).state, 'scheduled');
    assert.equal((await state(one.id)).state, 'held');
    // Another freeze covering it keeps it held when the first goes.
    const g = await freeze({ name: 'second', start: wall('2027-06-05T09:00'), end: wall('2027-06-05T11:00'), timezone: 'UTC' });
    assert.deepEqual(g.conflicts, [], 'already held: not held twice');
    assert.equal((await s.api('DELETE', `/v1/freezes/${f.id}`, undefined, s.adminToken)).status, 204);
    const still = await state(one.id);
    assert.equal(still.state, 'held');
    assert.equal(still.held_by, g.id);
    assert.equal((await s.api('DELETE', `/v1/freezes/${g.id}`, undefined, s.adminToken)).status, 204);
    const back = await state(one.id);
    assert.equal(back.state, 'scheduled');
    assert.equal(back.held_by, null);
    assert.equal(back.error, null);
    const ev = (await s.api('GET', `/v1/scheduled_deployments/${one.id}`, undefined, tokens.viewer)).body.result.events.at(-1);
    assert.match(ev.message, /released: the deploy freeze "second" was deleted/);
  });

  it('holds a deployment whose dependency a new freeze holds, and returns both when the freeze goes; release takes the pair', async () => {
    const a = await app();
    const d = await app();
    const pair = (await s.api('POST', '/v1/scheduled_deployments', { app: a, dependency: d, ...at('2027-09-01T10:10', 'UTC') }, tokens.deployer)).body.result;
    const f = await freeze({ name: 'db only', start: wall('2027-09-01T09:00'), end: wall('2027-09-01T10:00'), timezone: 'UTC', apps: [d] });
    assert.deepEqual(f.conflicts.map((c: { id: string }) => c.id).sort(), [pair.id, pair.dependency.id].sort());
    assert.match((await state(pair.id)).error, /its dependency .* is held by the deploy freeze "db only"/);
    assert.equal((await s.api('DELETE', `/v1/freezes/${f.id}`, undefined, s.adminToken)).status, 204);
    assert.equal((await state(pair.id)).state, 'scheduled');
    assert.equal((await state(pair.dependency.id)).state, 'scheduled');
    // Again, then release the dependent: its held dependency is released with it.
    await freeze({ name: 'db again', start: wall('2027-09-01T09:00'), end: wall('2027-09-01T10:00'), timezone: 'UTC', apps: [d] });
    const r = await s.api('POST', `/v1/scheduled_deployments/${pair.id}/release`, { reason: 'both go' }, s.adminToken);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.result.dependency.state, 'scheduled');
    assert.equal(r.body.result.dependency.freeze_override.reason, 'both go');
  });

  it('release (owners, with a reason), reschedule and cancel work on held deployments', async () => {
    const a = await app();
    const r1 = (await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-07-01T10:00', 'UTC') }, tokens.deployer)).body.result;
    const r2 = (await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-07-01T11:00', 'UTC') }, tokens.deployer)).body.result;
    const r3 = (await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-07-01T12:00', 'UTC') }, tokens.deployer)).body.result;
    const f = await freeze({ name: 'july', start: wall('2027-07-01T00:00'), end: wall('2027-07-02T00:00'), timezone: 'UTC', apps: [a] });
    assert.equal(f.conflicts.length, 3);
    assert.equal((await s.api('POST', `/v1/scheduled_deployments/${r1.id}/release`, { reason: 'ok' }, tokens.deployer)).status, 403);
    assert.equal((await s.api('POST', `/v1/scheduled_deployments/${r1.id}/release`, { reason: ' ' }, s.adminToken)).body.error.field, 'reason');
    const rel = await s.api('POST', `/v1/scheduled_deployments/${r1.id}/release`, { reason: 'customer waiting' }, s.adminToken);
    assert.equal(rel.status, 200, JSON.stringify(rel.body));
    assert.equal(rel.body.result.state, 'scheduled');
    assert.equal(rel.body.result.freeze_override.reason, 'customer waiting');
    assert.equal((await audit(r1.id)).at(-1).action, 'deployment.release');
    assert.equal((await s.api('POST', `/v1/scheduled_deployments/${r1.id}/release`, { reason: 'again' }, s.adminToken)).body.error.code, 'not_held');
    // Rescheduling a held one out of the freeze schedules it again; into it, 409.
    assert.equal((await s.api('PATCH', `/v1/scheduled_deployments/${r2.id}`, at('2027-07-01T15:00', 'UTC'), tokens.deployer)).status, 409);
    const moved = await s.api('PATCH', `/v1/scheduled_deployments/${r2.id}`, at('2027-07-02T09:00', 'UTC'), tokens.deployer);
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.result.state, 'scheduled');
    const canceled = await s.api('POST', `/v1/scheduled_deployments/${r3.id}/cancel`, undefined, tokens.deployer);
    assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
    assert.equal(canceled.body.result.state, 'canceled');
  });

  it('a recurring weekend freeze in Europe/Berlin holds Friday 16:00 to Monday 08:00 local on both DST weekends', async () => {
    const a = await app();
    const f = await freeze({ name: 'weekend', cron: '0 16 * * 5', duration_seconds: 64 * 3600, timezone: 'Europe/Berlin', apps: [a], reason: 'no weekend deploys' });
    assert.equal(f.kind, 'recurring');
    assert.equal(f.next_windows.length, 3);
    const check = async (runAt: string) => (await s.api('GET', `/v1/freezes/check?app=${a}&run_at=${runAt}&timezone=Europe/Berlin`, undefined, tokens.viewer)).body;
    // Spring: Friday 26 March 16:00 CET = 15:00Z; clocks go forward on Sunday; Monday 08:00 CEST = 06:00Z.
    assert.equal((await check('2027-03-26T14:59:00Z')).frozen, false);
    assert.equal((await check('2027-03-26T15:00:00Z')).frozen, true);
    const spring = await check('2027-03-29T05:30:00Z');
    assert.equal(spring.frozen, true);
    assert.equal(spring.next_allowed_at, '2027-03-29T06:00:00.000Z');
    assert.equal((await check('2027-03-29T06:00:00Z')).frozen, false);
    // Autumn: Friday 29 October 16:00 CEST = 14:00Z; clocks go back on Sunday; Monday 08:00 CET = 07:00Z.
    const autumn = await s.api('POST', '/v1/scheduled_deployments', { app: a, ...at('2027-11-01T07:30', 'Europe/Berlin') }, tokens.deployer);
    assert.equal(autumn.status, 409);
    assert.equal(autumn.body.error.next_allowed_at, '2027-11-01T07:00:00.000Z');
    assert.match(autumn.body.error.message, /"weekend" \(no weekend deploys\), which ends 2027-11-01 08:00 Europe\/Berlin/);
    assert.equal((await check('2027-10-29T13:59:00Z')).frozen, false);
    assert.equal((await check('2027-10-29T14:00:00Z')).frozen, true);
    // Across the repeated hour on Sunday morning, still frozen.
    assert.equal((await check('2027-10-31T01:30:00Z')).frozen, true);
  });

  it('GET /v1/freezes/check reports the dependency and the next allowed time; nothing frozen → run_at itself', async () => {
    const a = await app();
    const d = await app();
    await freeze({ name: 'dep only', start: wall('2027-08-01T10:00'), end: wall('2027-08-01T11:00'), timezone: 'UTC', apps: [d] });
    const q = (runAt: string, extra = '') => s.api('GET', `/v1/freezes/check?app=${a}&run_at=${runAt}${extra}`, undefined, tokens.viewer);
    const free = (await q('2027-08-01T10:30:00Z')).body;
    assert.deepEqual(free, { frozen: false, next_allowed_at: '2027-08-01T10:30:00.000Z' });
    const dep = (await q('2027-08-01T10:30:00Z', `&dependency=${d}&dependency_lead_seconds=600`)).body;
    assert.equal(dep.frozen, true);
    assert.equal(dep.app, 'dependency');
    assert.equal(dep.freeze.name, 'dep only');
    assert.equal(dep.next_allowed_at, '2027-08-01T11:10:00.000Z');
    assert.equal((await q('not-a-date')).status, 400);
  });

  it('shows freeze windows on the calendar (recurring ones expanded) and the reminders\' next allowed time', async () => {
    const a = await app();
    await freeze({ name: 'cal weekend', cron: '0 16 * * 5', duration_seconds: 64 * 3600, timezone: 'Europe/Berlin', apps: [a] });
    const r = await s.api('GET', '/v1/calendar?from=2027-03-22T00:00:00Z&to=2027-04-05T00:00:00Z&timezone=Europe/Berlin', undefined, tokens.viewer);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const windows = r.body.result.filter((e: { kind: string; title: string }) => e.kind === 'freeze' && /cal weekend/.test(e.title));
    // The window that began before the range and reaches into it is listed too.
    assert.deepEqual(windows.map((e: { start_utc: string; end_utc: string }) => [e.start_utc, e.end_utc]), [
      ['2027-03-19T15:00:00.000Z', '2027-03-22T07:00:00.000Z'],
      ['2027-03-26T15:00:00.000Z', '2027-03-29T06:00:00.000Z'],
      ['2027-04-02T14:00:00.000Z', '2027-04-05T06:00:00.000Z'],
    ]);
    const { nextAllowedAt } = await import('../src/services/freezes.ts');
    const team = (await s.db.pool.query('SELECT team_id FROM apps WHERE id = $1', [a])).rows[0].team_id;
    assert.equal((await nextAllowedAt(s.db.pool, team, [a], new Date('2027-03-27T12:00:00Z')))?.toISOString(), '2027-03-29T06:00:00.000Z');
    assert.equal((await nextAllowedAt(s.db.pool, team, [a], new Date('2027-03-30T12:00:00Z')))?.toISOString(), '2027-03-30T12:00:00.000Z');
  });

  it('lists freezes a page at a time', async () => {
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await s.api('GET', `/v1/freezes?limit=3${cursor ? `&cursor=${cursor}` : ''}`, undefined, tokens.viewer);
      assert.equal(r.status, 200);
      all.push(...r.body.result.map((f: { id: string }) => f.id));
      cursor = r.body.next_cursor;
    } while (cursor);
    assert.equal(new Set(all).size, all.length);
    const live = Number((await s.db.pool.query('SELECT count(*) FROM freezes WHERE deleted_at IS NULL')).rows[0].count);
    assert.equal(all.length, live);
  });
});
