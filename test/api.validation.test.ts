import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer, utcFields } from './helpers/server.ts';

describe('bad input gets a 4xx naming the field, and nothing is stored', () => {
  let s: TestServer;
  let app: { id: string };
  let other: { id: string };
  const future = () => utcFields(3_600_000);
  const count = async () => Number((await s.db.pool.query('SELECT count(*) FROM deployments')).rows[0].count);

  before(async () => {
    s = await startTestServer();
    app = (await s.api('POST', '/v1/apps', { name: 'api', target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, s.adminToken)).body;
    other = (await s.api('POST', '/v1/apps', { name: 'db', target: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } }, s.adminToken)).body;
  });
  after(() => s.stop());

  const cases: Array<[string, () => unknown, number, string, string | undefined]> = [
    ['missing app', () => { const { ...b } = { ...future() }; return b; }, 400, 'invalid_request', 'app'],
    ['app not a uuid', () => ({ app: 'abc', ...future() }), 400, 'invalid_request', 'app'],
    ['unknown app', () => ({ app: '00000000-0000-4000-8000-000000000000', ...future() }), 422, 'unknown_app', 'app'],
    ['missing year', () => { const { year: _y, ...b } = { app: app.id, ...future() }; return b; }, 400, 'invalid_request', 'year'],
    ['month as a string', () => ({ app: app.id, ...future(), month: '11' }), 400, 'invalid_request', 'month'],
    ['month 13', () => ({ app: app.id, ...future(), month: 13 }), 422, 'invalid_date', 'month'],
    ['February 30', () => ({ app: app.id, ...future(), year: 2031, month: 2, day: 30 }), 422, 'invalid_date', 'day'],
    ['hour 24', () => ({ app: app.id, ...future(), year: 2031, hour: 24 }), 422, 'invalid_date', 'hour'],
    ['fractional minute', () => ({ app: app.id, ...future(), year: 2031, minute: 1.5 }), 400, 'invalid_request', 'minute'],
    ['second 60', () => ({ app: app.id, ...future(), year: 2031, second: 60 }), 422, 'invalid_date', 'second'],
    ['unknown zone', () => ({ app: app.id, ...future(), timezone: 'Moon/Base' }), 422, 'unknown_timezone', 'timezone'],
    ['fixed offset as zone', () => ({ app: app.id, ...future(), timezone: '+02:00' }), 422, 'unknown_timezone', 'timezone'],
    ['past instant', () => ({ app: app.id, ...utcFields(-3_600_000) }), 422, 'past_instant', 'hour'],
    ['past day', () => ({ app: app.id, ...utcFields(-3 * 86_400_000) }), 422, 'past_instant', 'day'],
    ['DST gap New York', () => ({ app: app.id, year: 2031, month: 3, day: 9, hour: 2, minute: 30, timezone: 'America/New_York' }), 422, 'nonexistent_local_time', 'hour'],
    ['DST overlap with reject', () => ({ app: app.id, year: 2031, month: 11, day: 2, hour: 1, minute: 30, timezone: 'America/New_York', disambiguation: 'reject' }), 422, 'ambiguous_local_time', 'disambiguation'],
    ['bad disambiguation', () => ({ app: app.id, ...future(), disambiguation: 'latest' }), 400, 'invalid_request', 'disambiguation'],
    ['unknown field', () => ({ app: app.id, ...future(), color: 'blue' }), 400, 'invalid_request', 'color'],
    ['self dependency', () => ({ app: app.id, dependency: app.id, ...future() }), 422, 'self_dependency', 'dependency'],
    ['unknown dependency', () => ({ app: app.id, dependency: '00000000-0000-4000-8000-000000000000', ...future() }), 422, 'unknown_app', 'dependency'],
    ['dependency lead reaching into the past', () => ({ app: app.id, dependency: other.id, ...utcFields(60_000), dependency_lead_seconds: 900 }), 422, 'past_instant', 'dependency_lead_seconds'],
    ['negative lead', () => ({ app: app.id, dependency: other.id, ...future(), dependency_lead_seconds: -1 }), 400, 'invalid_request', 'dependency_lead_seconds'],
    ['zero expiry', () => ({ app: app.id, ...future(), expires_after_seconds: 0 }), 400, 'invalid_request', 'expires_after_seconds'],
    ['array body', () => [1, 2], 400, 'invalid_request', undefined],
    ['null body', () => 'null', 400, 'invalid_request', undefined],
    ['not JSON', () => '{"app": ', 400, 'invalid_json', undefined],
  ];

  for (const [name, body, status, code, field] of cases) {
    it(`POST /v1/scheduled_deployments: ${name} → ${status} ${code}${field ? ` (${field})` : ''}`, async () => {
      const before = await count();
      const r = await s.api('POST', '/v1/scheduled_deployments', body(), s.adminToken);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code);
      if (field) assert.equal(r.body.error.field, field);
      assert.equal(typeof r.body.error.message, 'string');
      assert.ok(!/at .*\.ts:\d+/.test(JSON.stringify(r.body)), 'no stack trace');
      assert.equal(await count(), before, 'nothing stored');
    });
  }

  it('refuses a body over 1 MiB with 413', async () => {
    const r = await s.api('POST', '/v1/apps', JSON.stringify({ name: 'big', target: { type: 'webhook', url: 'http://x/', headers: { a: 'x'.repeat(1_100_000) } } }), s.adminToken);
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, 'body_too_large');
  });

  it('refuses unknown target types and malformed targets, naming the field', async () => {
    const table: Array<[unknown, string]> = [
      [{ type: 'ftp', url: 'x' }, 'target.type'],
      [{ type: 'webhook' }, 'target.url'],
      [{ type: 'webhook', url: 'not a url' }, 'target.url'],
      [{ type: 'webhook', url: 'file:///etc/passwd' }, 'target.url'],
      [{ type: 'webhook', url: 'http://x/', timeout_seconds: 0 }, 'target.timeout_seconds'],
      [{ type: 'command' }, 'target.command'],
      [{ type: 'command', command: 'true', args: 'not-an-array' }, 'target.args'],
      [{ type: 'ecs', region: 'eu-west-1', cluster: 'c', service: 's' }, 'target.credentials'],
      [{ type: 'ecs', region: 'Europe', cluster: 'c', service: 's', credentials: '00000000-0000-4000-8000-000000000000' }, 'target.region'],
      [{ type: 'digitalocean', credentials: '00000000-0000-4000-8000-000000000000' }, 'target.app_id'],
    ];
    for (const [target, field] of table) {
      const r = await s.api('POST', '/v1/apps', { name: 'x', target }, s.adminToken);
      assert.equal(r.status, 400, `${JSON.stringify(target)} → ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.field, field, JSON.stringify(r.body));
    }
    const unknownCred = await s.api('POST', '/v1/apps', { name: 'x', target: { type: 'digitalocean', app_id: 'a', credentials: '00000000-0000-4000-8000-000000000000' } }, s.adminToken);
    assert.equal(unknownCred.status, 422);
    assert.equal(unknownCred.body.error.field, 'target.credentials');
    assert.equal((await s.db.pool.query(`SELECT count(*) FROM apps WHERE name = 'x'`)).rows[0].count, '0');
  });

  it('validates list filters and cursors', async () => {
    assert.equal((await s.api('GET', '/v1/scheduled_deployments?state=exploded', undefined, s.adminToken)).status, 400);
    assert.equal((await s.api('GET', '/v1/scheduled_deployments?limit=501', undefined, s.adminToken)).status, 400);
    const r = await s.api('GET', '/v1/scheduled_deployments?cursor=garbage', undefined, s.adminToken);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.field, 'cursor');
    assert.equal((await s.api('GET', '/v1/scheduled_deployments/not-a-uuid', undefined, s.adminToken)).status, 400);
  });

  it('answers a JSON 404 for unknown API routes', async () => {
    const r = await s.api('GET', '/v1/nothing-here', undefined, s.adminToken);
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'not_found');
  });

  it('never returns a webhook secret, and stores it encrypted', async () => {
    const r = await s.api('POST', '/v1/apps', { name: 'signed', target: { type: 'webhook', url: 'http://127.0.0.1:9/', secret: 'hunter2-super-secret' } }, s.adminToken);
    assert.equal(r.status, 201);
    assert.equal(r.body.target.has_secret, true);
    assert.ok(!JSON.stringify(r.body).includes('hunter2'));
    for (const p of [`/v1/apps/${r.body.id}`, '/v1/apps']) {
      assert.ok(!JSON.stringify((await s.api('GET', p, undefined, s.adminToken)).body).includes('hunter2'));
    }
    const row = await s.db.pool.query('SELECT target::text, target_secret FROM apps WHERE id = $1', [r.body.id]);
    assert.ok(!row.rows[0].target.includes('hunter2'));
    assert.ok(!Buffer.from(row.rows[0].target_secret).toString('latin1').includes('hunter2'));
    // PATCH without secret keeps it
    const p = await s.api('PATCH', `/v1/apps/${r.body.id}`, { target: { type: 'webhook', url: 'http://127.0.0.1:9/other' } }, s.adminToken);
    assert.equal(p.body.target.has_secret, true);
  });

  it('paginates lists with next_cursor', async () => {
    for (let i = 0; i < 5; i++) await s.api('POST', '/v1/scheduled_deployments', { app: app.id, ...utcFields(86_400_000 + i * 1000) }, s.adminToken);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/v1/scheduled_deployments?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const r = await s.api('GET', q, undefined, s.adminToken);
      assert.ok(r.body.result.length <= 2);
      seen.push(...r.body.result.map((d: { id: string }) => d.id));
      cursor = r.body.next_cursor;
    } while (cursor);
    assert.equal(new Set(seen).size, seen.length);
    assert.equal(seen.length, await count());
  });

  it('describes every route in /openapi.json and serves /docs', async () => {
    const r = await s.api('GET', '/openapi.json');
    assert.equal(r.status, 200);
    for (const p of ['/v1/auth/login', '/v1/me', '/v1/teams', '/v1/teams/{id}/members', '/v1/apps', '/v1/apps/{id}', '/v1/credentials', '/v1/credentials/{id}',
      '/v1/scheduled_deployments', '/v1/scheduled_deployments/{id}', '/v1/scheduled_deployments/{id}/cancel', '/v1/events']) {
      assert.ok(r.body.paths[p], `${p} documented`);
    }
    const create = r.body.paths['/v1/scheduled_deployments'].post;
    assert.ok(create.requestBody.content['application/json'].schema.properties.timezone);
    const docs = await fetch(`${s.url}/docs`, { redirect: 'follow' });
    assert.equal(docs.status, 200);
    assert.equal((await s.api('GET', '/healthz')).body.status, 'ok');
    assert.equal((await s.api('GET', '/readyz')).status, 200);
  });
});
