/**
 * The calendar (issue 11) over HTTP on real PostgreSQL: GET /v1/calendar's range and zone
 * checks (422 naming the field, 400 for a malformed instant), times in the requested zone
 * across a DST change, one-off deployments with their dependency, schedule occurrences (rows
 * within the horizon, planned beyond it, one uid each across the two), team isolation; the
 * feed token's life (shown once, stored as its SHA-256, replaced, revoked, ended by a password
 * change), the iCalendar feed parsed with a second library (ical.js) against what GET
 * /v1/calendar shows, freezes in it, and no feed token in any log line.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import ICAL from 'ical.js';
import { createLogger, redactUrl } from '../src/observability/logger.ts';
import { calendarFeed, FEED_EVENT_MINUTES } from '../src/services/calendar-feed.ts';
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
  /** Every line the server logged (at debug), and every feed token handed out. */
  const logged: string[] = [];
  const feedTokens: string[] = [];
  const cal = async (q: Record<string, string>, token = s.adminToken) => s.api('GET', `/v1/calendar?${new URLSearchParams(q)}`, undefined, token);

  before(async () => {
    const sink = new Writable({ write(chunk, _e, cb) { logged.push(String(chunk)); cb(); } });
    s = await startTestServer({ logger: createLogger('debug', sink) });
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

  it('planned occurrences are computed up to a budget, in time order: truncated, with nothing missing before the cut', async (t) => {
    const busy = (await s.api('POST', '/v1/schedules', { app: db.id, cron: '*/5 * * * *', timezone: 'UTC' }, s.adminToken)).body;
    const daily = (await s.api('POST', '/v1/schedules', { app: api.id, cron: '0 12 * * *', timezone: 'UTC' }, s.adminToken)).body;
    const now = Date.now();
    const started = performance.now();
    const r = await cal({ from: new Date(now).toISOString(), to: new Date(now + 30 * DAY).toISOString() });
    t.diagnostic(`GET /v1/calendar over 30 days with a 5-minute schedule: ${r.body.result.length} entries in ${Math.round(performance.now() - started)} ms`);
    assert.equal(r.status, 200);
    assert.equal(r.body.truncated, true, '8,640 occurrences in 30 days');
    assert.match(r.body.planned_until, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?\+00:00$/);
    const until = Date.parse(r.body.planned_until);
    const mine = (r.body.result as Entry[]).filter((e) => e.schedule_id === busy.id && e.state !== 'canceled');
    assert.ok(mine.length >= 900 && mine.length <= 1300, `${mine.length}`);
    assert.ok((r.body.result as Entry[]).every((e) => e.state !== 'planned' || Date.parse(e.start_utc) <= until), 'no planned one after planned_until');
    // Every 5 minutes from the first to planned_until: no gap.
    const times = mine.map((e) => Date.parse(e.start_utc));
    for (let i = 1; i < times.length; i++) assert.equal(times[i] - times[i - 1], 300_000);
    assert.ok(until - times.at(-1)! < 300_000);
    // The daily one is there for each day up to planned_until (a row or planned), not after it.
    const noons = (r.body.result as Entry[]).filter((e) => e.schedule_id === daily.id).map((e) => Date.parse(e.start_utc));
    const expected = [];
    for (let d = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate(), 12); d <= until; d += DAY) if (d > now) expected.push(d);
    assert.deepEqual(noons, expected);
    // Without a schedule that busy, everything is listed.
    assert.equal((await s.api('DELETE', `/v1/schedules/${busy.id}`, undefined, s.adminToken)).status, 204);
    const all = (await cal({ from: new Date(now).toISOString(), to: new Date(now + 30 * DAY).toISOString() })).body;
    assert.equal(all.truncated, false);
    assert.equal(all.planned_until, null);
    assert.equal((all.result as Entry[]).filter((e) => e.schedule_id === daily.id).length, 30);
    assert.equal((await s.api('DELETE', `/v1/schedules/${daily.id}`, undefined, s.adminToken)).status, 204);
  });

  it('another team sees none of it, and we see none of theirs', async () => {
    const q = { from: '2027-03-01T00:00:00Z', to: '2027-05-01T00:00:00Z' };
    assert.ok((await cal(q)).body.result.length > 0);
    const theirs = await cal(q, tokens.them);
    assert.equal(theirs.status, 200);
    assert.deepEqual(theirs.body.result, []);
    assert.equal((await s.api('GET', `/v1/calendar?${new URLSearchParams(q)}`)).status, 401, 'no token');
  });

  // ─── the feed ─────────────────────────────────────────────────────────────────────────

  const feed = async (token?: string) => {
    const res = await fetch(`${s.url}/v1/calendar.ics${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`);
    return { status: res.status, type: res.headers.get('content-type') ?? '', cache: res.headers.get('cache-control'), text: await res.text() };
  };
  const newFeedToken = async (token = s.adminToken) => {
    const r = await s.api('POST', '/v1/me/calendar-token', undefined, token);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    feedTokens.push(r.body.token);
    return r.body as { token: string; url: string; created_at: string };
  };
  const events = (text: string) => {
    const vcal = new ICAL.Component(ICAL.parse(text));
    return vcal.getAllSubcomponents('vevent').map((v) => {
      const e = new ICAL.Event(v);
      return {
        uid: e.uid, summary: e.summary, start: e.startDate.toJSDate().toISOString(), end: e.endDate.toJSDate().toISOString(),
        startUtc: e.startDate.zone?.tzid === 'UTC', endUtc: e.endDate.zone?.tzid === 'UTC',
        url: String(v.getFirstPropertyValue('url')), status: String(v.getFirstPropertyValue('status')), transp: v.getFirstPropertyValue('transp'),
        description: String(v.getFirstPropertyValue('description') ?? ''),
      };
    });
  };

  it('feed token: shown once, stored as its SHA-256 only; a new one revokes the old; DELETE revokes; 401 in plain text', async () => {
    assert.deepEqual((await s.api('GET', '/v1/me/calendar-token', undefined, s.adminToken)).body, { active: false, created_at: null });
    assert.equal((await feed()).status, 401, 'no token');
    const first = await newFeedToken();
    assert.match(first.token, /^shcal_[0-9A-Za-z]{40}$/);
    assert.equal(first.url, `${s.url}/v1/calendar.ics?token=${first.token}`);
    const stored = (await s.db.pool.query('SELECT * FROM calendar_tokens')).rows;
    assert.equal(stored.length, 1);
    assert.deepEqual(stored[0].token_hash, createHash('sha256').update(first.token).digest());
    assert.ok(!JSON.stringify(stored).includes(first.token.slice(6)), 'the token itself is stored nowhere');
    assert.ok(!JSON.stringify((await s.db.pool.query('SELECT * FROM audit_log')).rows).includes(first.token.slice(6)), 'nor audited');
    const state = (await s.api('GET', '/v1/me/calendar-token', undefined, s.adminToken)).body;
    assert.equal(state.active, true);
    assert.equal(state.token, undefined, 'never shown again');

    const ok = await feed(first.token);
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.type, /^text\/calendar/);
    assert.equal(ok.cache, 'private, no-store');
    assert.match(ok.text, /^BEGIN:VCALENDAR\r\n/);

    const second = await newFeedToken();
    assert.notEqual(second.token, first.token);
    const old = await feed(first.token);
    assert.equal(old.status, 401, 'the previous token is revoked');
    assert.match(old.type, /^text\/plain/);
    assert.equal(old.text, 'invalid or revoked calendar feed token\n');
    assert.equal((await feed(second.token)).status, 200);
    assert.equal((await s.db.pool.query('SELECT count(*)::int AS n FROM calendar_tokens WHERE revoked_at IS NULL')).rows[0].n, 1);

    assert.equal((await s.api('DELETE', '/v1/me/calendar-token', undefined, s.adminToken)).status, 204);
    assert.equal((await feed(second.token)).status, 401, 'revoked');
    assert.equal((await s.api('DELETE', '/v1/me/calendar-token', undefined, s.adminToken)).status, 404, 'nothing left to revoke');
    assert.equal((await feed('shcal_' + 'x'.repeat(40))).status, 401, 'unknown');
    assert.equal((await feed('not-even-a-feed-token')).status, 401);
    assert.equal((await s.api('POST', '/v1/me/calendar-token')).status, 401, 'making one needs a session');
    const audit = (await s.db.pool.query(`SELECT action FROM audit_log WHERE action LIKE 'calendar_token.%' ORDER BY id`)).rows.map((r) => r.action);
    assert.deepEqual(audit, ['calendar_token.create', 'calendar_token.create', 'calendar_token.revoke']);
  });

  it('an API token cannot make a feed token; a password change revokes it', async () => {
    const api = (await s.api('POST', '/v1/tokens', { name: 'ci' }, tokens.viewer)).body.token;
    assert.equal((await s.api('POST', '/v1/me/calendar-token', undefined, api)).status, 403);
    const mine = await newFeedToken(tokens.viewer);
    assert.equal((await feed(mine.token)).status, 200, 'a viewer may subscribe');
    const r = await s.api('POST', '/v1/me/password', { current_password: 'viewer-password', new_password: 'a-much-newer-passphrase-9' }, tokens.viewer);
    assert.equal(r.status, 204, JSON.stringify(r.body));
    assert.equal((await feed(mine.token)).status, 401);
  });

  it('the feed parses with a second library (ical.js) and has what GET /v1/calendar shows, in UTC, with stable UIDs', async () => {
    const sc = (await s.api('POST', '/v1/schedules', { app: db.id, cron: '30 6 * * 1', timezone: 'America/New_York' }, s.adminToken)).body;
    const canceled = (await s.api('POST', '/v1/scheduled_deployments', { app: db.id, year: 2027, month: 2, day: 1, hour: 8, minute: 0, timezone: 'Asia/Tokyo' }, s.adminToken)).body.result;
    assert.equal((await s.api('POST', `/v1/scheduled_deployments/${canceled.id}/cancel`, undefined, s.adminToken)).status, 200);
    const { token } = await newFeedToken();
    const text = (await feed(token)).text;
    assert.match(text, /X-WR-CALNAME:shipclock: /);
    assert.ok(!/DTSTART;TZID|DTEND;TZID/.test(text), 'no local times: every DTSTART/DTEND in UTC');
    const got = events(text);
    assert.equal(new Set(got.map((e) => e.uid)).size, got.length, 'unique UIDs');

    // GET /v1/calendar over 92 days from now, which the feed's window (30 days back, 180 ahead) covers.
    const now = Date.now();
    const shown = (await cal({ from: new Date(now).toISOString(), to: new Date(now + 92 * DAY).toISOString(), timezone: 'Asia/Tokyo' })).body.result as Entry[];
    assert.ok(shown.some((e) => e.state === 'planned') && shown.some((e) => e.state === 'canceled') && shown.some((e) => e.kind === 'deployment'), JSON.stringify(shown.map((e) => e.state)));
    for (const e of shown) {
      const ev = got.find((x) => x.uid === `${e.uid}@shipclock`);
      assert.ok(ev, `the feed has ${e.uid}`);
      assert.equal(ev.start, e.start_utc);
      assert.ok(ev.startUtc && ev.endUtc);
      assert.equal(Date.parse(ev.end) - Date.parse(ev.start), FEED_EVENT_MINUTES * 60_000);
      assert.ok(ev.summary.startsWith(e.title) && ev.summary.includes(e.state), ev.summary);
      assert.equal(ev.url, `${s.url}${e.link}`);
      assert.equal(ev.status, e.state === 'planned' ? 'TENTATIVE' : ['canceled', 'skipped', 'missed'].includes(e.state) ? 'CANCELLED' : 'CONFIRMED');
      assert.equal(ev.transp, null);
    }
    // Their feed has none of ours.
    const theirs = await newFeedToken(tokens.them);
    assert.deepEqual(events((await feed(theirs.token)).text), []);
    void sc;
  });

  it('freezes are events spanning their window, TRANSP:TRANSPARENT (through the injected freezeWindows)', async () => {
    const token = (await newFeedToken()).token;
    const now = Math.floor(Date.now() / 1000) * 1000; // iCalendar times have whole seconds
    const freeze = { id: '11111111-1111-4111-8111-111111111111', name: 'Holidays', reason: 'Christmas; everyone away', start: new Date(now + 5 * DAY), end: new Date(now + 8 * DAY), apps: [api.id] };
    let asked: [string, Date, Date] | null = null;
    const text = await calendarFeed(s.db.pool, { freezeWindows: async (_db, teamId, from, to) => { asked = [teamId, from, to]; return [freeze]; } }, token, 'https://ship.example.com');
    const me = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body;
    assert.ok(asked);
    const [teamId, from, to] = asked as [string, Date, Date];
    assert.equal(teamId, me.team.id);
    assert.ok(Math.abs(to.getTime() - from.getTime() - 210 * DAY) < 1000, '30 days back to 180 ahead');
    const ev = events(text).find((e) => e.uid === `freeze-${freeze.id}-${freeze.start.toISOString()}@shipclock`);
    assert.ok(ev, text);
    assert.equal(ev.start, freeze.start.toISOString());
    assert.equal(ev.end, freeze.end.toISOString());
    assert.equal(ev.transp, 'TRANSPARENT');
    assert.equal(ev.status, 'CONFIRMED');
    assert.equal(ev.summary, 'Freeze: Holidays');
    assert.equal(ev.url, 'https://ship.example.com/freezes');
    assert.match(ev.description, /for api\./);
    assert.match(ev.description, /Christmas; everyone away/);
  });

  it('freezes made through POST /v1/freezes: a one-off across a DST change and a weekly weekend, in the zone asked for and in the feed', async (t) => {
    const once = await s.api('POST', '/v1/freezes', {
      name: 'Release weekend', reason: 'quarter close', timezone: 'Europe/Berlin', apps: [api.id],
      start: { year: 2027, month: 3, day: 27, hour: 18, minute: 0 }, end: { year: 2027, month: 3, day: 29, hour: 6, minute: 0 },
    }, s.adminToken);
    if (once.status === 404) {
      t.skip('POST /v1/freezes answers 404: the freezes API is not on this branch yet');
      return;
    }
    assert.equal(once.status, 201, JSON.stringify(once.body));
    const weekly = await s.api('POST', '/v1/freezes', { name: 'Weekend', cron: '0 16 * * 5', duration_seconds: 64 * 3600, timezone: 'Europe/Berlin' }, s.adminToken);
    assert.equal(weekly.status, 201, JSON.stringify(weekly.body));
    const q = { from: '2027-03-20T00:00:00Z', to: '2027-04-06T00:00:00Z' };
    const berlin = ((await cal({ ...q, timezone: 'Europe/Berlin' })).body.result as Array<Entry & { apps: unknown; reason: unknown }>).filter((e) => e.kind === 'freeze');
    const one = berlin.find((e) => e.id === once.body.id);
    assert.ok(one, JSON.stringify(berlin));
    assert.deepEqual([one.start, one.end, one.state, one.title, one.link, one.reason, one.apps],
      ['2027-03-27T18:00:00+01:00', '2027-03-29T06:00:00+02:00', 'upcoming', 'Freeze: Release weekend', '/freezes', 'quarter close', [{ id: api.id, name: 'api' }]]);
    assert.equal(one.end_utc, '2027-03-29T04:00:00.000Z');
    // Friday 16:00 for 64 wall-clock hours: Monday 08:00, on the weekend of the change too.
    assert.deepEqual(berlin.filter((e) => e.id === weekly.body.id).map((e) => [e.start, e.end, e.apps]), [
      ['2027-03-19T16:00:00+01:00', '2027-03-22T08:00:00+01:00', null],
      ['2027-03-26T16:00:00+01:00', '2027-03-29T08:00:00+02:00', null],
      ['2027-04-02T16:00:00+02:00', '2027-04-05T08:00:00+02:00', null],
    ]);
    const ny = ((await cal({ ...q, timezone: 'America/New_York' })).body.result as Entry[]).find((e) => e.id === once.body.id);
    assert.equal(ny?.start, '2027-03-27T13:00:00-04:00');
    assert.deepEqual((await cal(q, tokens.them)).body.result, [], 'not another team\'s');

    const ev = events((await feed((await newFeedToken()).token)).text).find((e) => e.uid === `freeze-${once.body.id}-2027-03-27T17:00:00.000Z@shipclock`);
    assert.ok(ev, 'the freeze is in the feed');
    assert.deepEqual([ev.start, ev.end, ev.transp, ev.status, ev.summary], ['2027-03-27T17:00:00.000Z', '2027-03-29T04:00:00.000Z', 'TRANSPARENT', 'CONFIRMED', 'Freeze: Release weekend']);
    for (const id of [once.body.id, weekly.body.id]) assert.ok((await s.api('DELETE', `/v1/freezes/${id}`, undefined, s.adminToken)).status < 300);
    assert.ok(!((await cal(q)).body.result as Entry[]).some((e) => e.kind === 'freeze'), 'deleted freezes leave the calendar');
  });

  it('no feed token is in any log line; a logged URL has its secret query parameters redacted', () => {
    assert.ok(feedTokens.length >= 5);
    assert.ok(logged.length > 0, 'the server logged at debug');
    for (const t of feedTokens) {
      assert.ok(!logged.some((l) => l.includes(t.slice(6))), 'a feed token in the log');
    }
    assert.equal(redactUrl('/v1/calendar.ics?token=shcal_abc&x=1'), '/v1/calendar.ics?token=[redacted]&x=1');
    assert.equal(redactUrl('/v1/events?access_token=eyJ.a.b'), '/v1/events?access_token=[redacted]');
    const lines: string[] = [];
    const log = createLogger('info', new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
    log.info({ req: { method: 'GET', url: '/v1/calendar.ics?token=shcal_secret' }, url: 'https://x/v1/calendar.ics?Token=shcal_secret2' }, 'a request');
    assert.equal(lines.length, 1);
    assert.ok(!lines[0].includes('shcal_secret'), lines[0]);
    assert.match(lines[0], /token=\[redacted\]/);
  });
});
