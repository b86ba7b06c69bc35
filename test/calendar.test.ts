/**
 * The calendar (issue 11) over HTTP on real PostgreSQL: GET /v1/calendar's range and zone
 * checks (422 naming the field, 400 for a malformed instant), times in the requested zone
 * across a DST change, one-off deployments with their dependency, schedule occurrences (rows
 * within the horizon, planned beyond it, one uid each across the two), team isolation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './helpers/server.ts';

interface Entry {
  kind: string; id: string; uid: string; title: string; state: string; start: string; start_utc: string;
  end: string | null; end_utc: string | null; app: { id: string; name: string } | null; schedule_id: string | null; link: string;
}

const DAY = 86_400_000;

describe('GET /v1/calendar', () => {
  let s: TestServer;
  let api: { id: string; name: string };
  let db: { id: string; name: string };
  const tokens: Record<string, string> = {};
  const cal = async (q: Record<string, string>, token = s.adminToken) => s.api('GET', `/v1/calendar?${new URLSearchParams(q)}`, undefined, token);

  before(async () => {
    s = await startTestServer();
    api = (await s.api('POST', '/v1/apps', { name: 'api', target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, s.adminToken)).body;
    db = (await s.api('POST', '/v1/apps', { name: 'db', target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, s.adminToken)).body;
    const me = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body;
    await s.api('POST', `/v1/teams/${me.team.id}/members`, { email: 'viewer@example.com', password: 'viewer-password', role: 'viewer' }, s.adminToken);
    tokens.viewer = await s.login('viewer@example.com', 'viewer-password');
    const other = (await s.api('POST', '/v1/teams', { name: 'others' }, s.adminToken)).body;
    await s.api('POST', `/v1/teams/${other.id}/members`, { email: 'them@example.com', password: 'their-password', role: 'owner' }, s.adminToken);
    tokens.them = await s.login('them@example.com', 'their-password');
  });
  after(() => s.stop());

  const bad: Array<[string, Record<string, string>, number, string, string]> = [
    ['from missing', { to: '2027-01-02T00:00:00Z' }, 400, 'invalid_request', 'from'],
    ['to missing', { from: '2027-01-01T00:00:00Z' }, 400, 'invalid_request', 'to'],
    ['from not RFC 3339', { from: '2027-01-01', to: '2027-01-02T00:00:00Z' }, 400, 'invalid_request', 'from'],
    ['to without an offset', { from: '2027-01-01T00:00:00Z', to: '2027-01-02T00:00:00' }, 400, 'invalid_request', 'to'],
    ['to equal to from', { from: '2027-01-01T00:00:00Z', to: '2027-01-01T01:00:00+01:00' }, 422, 'invalid_range', 'to'],
    ['to before from', { from: '2027-01-02T00:00:00Z', to: '2027-01-01T00:00:00Z' }, 422, 'invalid_range', 'to'],
    ['more than 92 days', { from: '2027-01-01T00:00:00Z', to: '2027-04-03T00:00:01Z' }, 422, 'range_too_long', 'to'],
    ['unknown zone', { from: '2027-01-01T00:00:00Z', to: '2027-01-02T00:00:00Z', timezone: 'Mars/Olympus' }, 422, 'unknown_timezone', 'timezone'],
    ['a fixed offset is no zone', { from: '2027-01-01T00:00:00Z', to: '2027-01-02T00:00:00Z', timezone: '+02:00' }, 422, 'unknown_timezone', 'timezone'],
    ['unknown parameter', { from: '2027-01-01T00:00:00Z', to: '2027-01-02T00:00:00Z', app: 'x' }, 400, 'invalid_request', 'app'],
  ];
  for (const [name, q, status, code, field] of bad) {
    it(`${name} → ${status} ${code} naming ${field}`, async () => {
      const r = await cal(q);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code);
      assert.equal(r.body.error.field, field);
    });
  }

  it('exactly 92 days is allowed; the answer says the zone and the range in it', async () => {
    const r = await cal({ from: '2027-01-01T00:00:00Z', to: '2027-04-03T00:00:00Z', timezone: 'europe/berlin' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.timezone, 'Europe/Berlin');
    assert.equal(r.body.from, '2027-01-01T01:00:00+01:00');
    assert.equal(r.body.to, '2027-04-03T02:00:00+02:00');
    assert.deepEqual(r.body.result, []);
    assert.equal(r.body.truncated, false);
  });

  it('one-off deployments across a DST change, in the zone asked for and in UTC; the dependency too', async () => {
    // Berlin moves to summer time on 2027-03-28; New York on 2027-03-14.
    const before = (await s.api('POST', '/v1/scheduled_deployments', { app: api.id, year: 2027, month: 3, day: 27, hour: 12, minute: 0, timezone: 'Europe/Berlin' }, s.adminToken)).body.result;
    const afterIt = (await s.api('POST', '/v1/scheduled_deployments', {
      app: api.id, year: 2027, month: 3, day: 29, hour: 12, minute: 0, timezone: 'Europe/Berlin', dependency: db.id, dependency_lead_seconds: 600,
    }, s.adminToken)).body.result;
    assert.ok(before.id && afterIt.id, JSON.stringify([before, afterIt]));
    const r = await cal({ from: '2027-03-27T00:00:00+01:00', to: '2027-03-30T00:00:00+02:00', timezone: 'Europe/Berlin' }, tokens.viewer);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const got = (r.body.result as Entry[]).map((e) => [e.kind, e.app?.name, e.start, e.start_utc, e.state, e.link]);
    assert.deepEqual(got, [
      ['deployment', 'api', '2027-03-27T12:00:00+01:00', '2027-03-27T11:00:00.000Z', 'scheduled', `/deployments/${before.id}`],
      ['deployment', 'db', '2027-03-29T11:50:00+02:00', '2027-03-29T09:50:00.000Z', 'scheduled', `/deployments/${afterIt.dependency.id}`],
      ['deployment', 'api', '2027-03-29T12:00:00+02:00', '2027-03-29T10:00:00.000Z', 'scheduled', `/deployments/${afterIt.id}`],
    ]);
    const [one, dep] = r.body.result as Entry[];
    assert.equal(one.title, 'Deploy api');
    assert.equal(dep.title, 'Deploy db (dependency of api)');
    assert.equal(one.end, null);
    assert.equal(one.uid, `deployment-${before.id}`);
    // The same instants in New York, already on summer time (-04:00), and in UTC.
    const ny = (await cal({ from: '2027-03-27T00:00:00+01:00', to: '2027-03-30T00:00:00+02:00', timezone: 'America/New_York' })).body;
    assert.deepEqual(ny.result.map((e: Entry) => e.start), ['2027-03-27T07:00:00-04:00', '2027-03-29T05:50:00-04:00', '2027-03-29T06:00:00-04:00']);
    const utc = (await cal({ from: '2027-03-27T00:00:00+01:00', to: '2027-03-30T00:00:00+02:00' })).body;
    assert.equal(utc.timezone, 'UTC');
    assert.deepEqual(utc.result.map((e: Entry) => e.start), ['2027-03-27T11:00:00+00:00', '2027-03-29T09:50:00+00:00', '2027-03-29T10:00:00+00:00']);
    // [from, to): an instant at `to` is out, one at `from` is in.
    const edge = (await cal({ from: '2027-03-27T11:00:00Z', to: '2027-03-29T10:00:00Z' })).body;
    assert.deepEqual(edge.result.map((e: Entry) => e.id), [before.id, afterIt.dependency.id]);
  });

  it('a schedule: its rows within the horizon, its planned occurrences beyond it, one uid per instant, across DST', async () => {
    const sc = (await s.api('POST', '/v1/schedules', { app: api.id, cron: '0 9 * * *', timezone: 'Europe/Berlin' }, s.adminToken)).body;
    assert.ok(sc.id, JSON.stringify(sc));
    const now = Date.now();
    const r = await cal({ from: new Date(now).toISOString(), to: new Date(now + 10 * DAY).toISOString(), timezone: 'Europe/Berlin' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const occ = (r.body.result as Entry[]).filter((e) => e.kind === 'occurrence');
    assert.ok(occ.length === 10 || occ.length === 11, `${occ.length} occurrences in 10 days`);
    const rows = (await s.db.pool.query('SELECT id, run_at FROM deployments WHERE schedule_id = $1', [sc.id])).rows;
    assert.ok(rows.length >= 1, 'the next 24 h are rows');
    for (const e of occ) {
      assert.match(e.start, /T09:00:00\+0[12]:00$/, 'at 09:00 in Berlin');
      assert.equal(e.schedule_id, sc.id);
      const row = rows.find((x) => x.run_at.toISOString() === e.start_utc);
      if (row) {
        assert.equal(e.state, 'scheduled');
        assert.equal(e.id, row.id);
        assert.equal(e.link, `/deployments/${row.id}`);
      } else {
        assert.equal(e.state, 'planned');
        assert.equal(e.id, sc.id);
        assert.equal(e.link, '/schedules');
        assert.ok(Date.parse(e.start_utc) > now + DAY - 60_000, 'planned only beyond the horizon');
      }
      assert.equal(e.uid, `occurrence-${sc.id}-g1-${e.start_utc}`, 'the same uid whether planned or a row');
    }
    assert.equal(occ.filter((e) => e.state === 'scheduled').length, rows.length);
    assert.equal(new Set(occ.map((e) => e.uid)).size, occ.length);

    // Planned occurrences around Berlin's change to summer time keep 09:00 local.
    const dst = (await cal({ from: '2027-03-26T00:00:00Z', to: '2027-03-31T00:00:00Z', timezone: 'Europe/Berlin' })).body.result
      .filter((e: Entry) => e.kind === 'occurrence').map((e: Entry) => [e.state, e.start, e.start_utc]);
    assert.deepEqual(dst, [
      ['planned', '2027-03-26T09:00:00+01:00', '2027-03-26T08:00:00.000Z'],
      ['planned', '2027-03-27T09:00:00+01:00', '2027-03-27T08:00:00.000Z'],
      ['planned', '2027-03-28T09:00:00+02:00', '2027-03-28T07:00:00.000Z'],
      ['planned', '2027-03-29T09:00:00+02:00', '2027-03-29T07:00:00.000Z'],
      ['planned', '2027-03-30T09:00:00+02:00', '2027-03-30T07:00:00.000Z'],
    ]);

    // Paused: what was not started is canceled, and nothing more is planned.
    assert.equal((await s.api('POST', `/v1/schedules/${sc.id}/pause`, undefined, s.adminToken)).status, 200);
    const paused = (await cal({ from: new Date(now).toISOString(), to: new Date(now + 10 * DAY).toISOString() })).body.result as Entry[];
    assert.ok(paused.filter((e) => e.schedule_id === sc.id).every((e) => e.state === 'canceled'));
  });

  it('another team sees none of it, and we see none of theirs', async () => {
    const q = { from: '2027-03-01T00:00:00Z', to: '2027-05-01T00:00:00Z' };
    assert.ok((await cal(q)).body.result.length > 0);
    const theirs = await cal(q, tokens.them);
    assert.equal(theirs.status, 200);
    assert.deepEqual(theirs.body.result, []);
    assert.equal((await s.api('GET', `/v1/calendar?${new URLSearchParams(q)}`)).status, 401, 'no token');
  });
});
