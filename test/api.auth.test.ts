import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { createLogger } from '../src/observability/logger.ts';
import { startShipclock } from '../src/server.ts';
import { createTestDatabase } from './helpers/db.ts';
import { startTestServer, testEnv, type TestServer, utcFields } from './helpers/server.ts';

describe('sign-in, teams and roles', () => {
  let s: TestServer;
  const tokens: Record<string, string> = {};
  let otherTeam: { id: string };
  let myApp: { id: string };
  let theirApp: { id: string };

  before(async () => {
    s = await startTestServer();
    const me = await s.api('GET', '/v1/me', undefined, s.adminToken);
    const team = me.body.team.id;
    for (const role of ['deployer', 'viewer'] as const) {
      const r = await s.api('POST', `/v1/teams/${team}/members`, { email: `${role}@example.com`, password: `${role}-password`, role }, s.adminToken);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.deepEqual(Object.keys(r.body).sort(), ['email', 'id', 'role']);
      tokens[role] = await s.login(`${role}@example.com`, `${role}-password`);
    }
    otherTeam = (await s.api('POST', '/v1/teams', { name: 'other' }, s.adminToken)).body;
    await s.api('POST', `/v1/teams/${otherTeam.id}/members`, { email: 'them@example.com', password: 'their-password', role: 'owner' }, s.adminToken);
    tokens.them = await s.login('them@example.com', 'their-password');
    myApp = (await s.api('POST', '/v1/apps', { name: 'mine', target: { type: 'webhook', url: 'http://127.0.0.1:9/x' } }, s.adminToken)).body;
    theirApp = (await s.api('POST', '/v1/apps', { name: 'theirs', target: { type: 'webhook', url: 'http://127.0.0.1:9/x' } }, tokens.them)).body;
  });
  after(() => s.stop());

  it('logs in with a Bearer JWT and answers /v1/me', async () => {
    const r = await s.api('POST', '/v1/auth/login', { email: s.adminEmail, password: s.adminPassword });
    assert.equal(r.status, 200);
    assert.equal(r.body.token_type, 'Bearer');
    assert.ok(r.body.expires_in > 0);
    const me = await s.api('GET', '/v1/me', undefined, r.body.access_token);
    assert.equal(me.body.email, s.adminEmail);
    assert.equal(me.body.role, 'owner');
    assert.equal(me.body.admin, true);
    assert.equal(me.body.team.name, 'default');
  });

  it('stores passwords hashed with scrypt, never in the clear', async () => {
    const r = await s.db.pool.query<{ password_hash: string }>('SELECT password_hash FROM users');
    for (const row of r.rows) {
      assert.match(row.password_hash, /^scrypt\$/);
      assert.ok(!row.password_hash.includes('password'));
    }
  });

  it('answers 401 for a wrong password, an unknown email, no token and a bad token', async () => {
    assert.equal((await s.api('POST', '/v1/auth/login', { email: s.adminEmail, password: 'nope' })).status, 401);
    const unknown = await s.api('POST', '/v1/auth/login', { email: 'ghost@example.com', password: 'nope' });
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.error.code, 'invalid_credentials');
    assert.equal((await s.api('GET', '/v1/me')).status, 401);
    assert.equal((await s.api('GET', '/v1/apps', undefined, 'not-a-jwt')).status, 401);
    const forged = s.adminToken.slice(0, -4) + (s.adminToken.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const r = await s.api('GET', '/v1/me', undefined, forged);
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'unauthorized');
  });

  it('shows another team\'s objects as 404, never their data', async () => {
    for (const [m, p] of [['GET', `/v1/apps/${theirApp.id}`], ['PATCH', `/v1/apps/${theirApp.id}`], ['DELETE', `/v1/apps/${theirApp.id}`]] as const) {
      const r = await s.api(m, p, m === 'PATCH' ? { name: 'x' } : undefined, s.adminToken);
      assert.equal(r.status, 404, `${m} ${p}`);
    }
    const list = await s.api('GET', '/v1/apps', undefined, tokens.them);
    assert.deepEqual(list.body.result.map((a: { name: string }) => a.name), ['theirs']);
    const sched = await s.api('POST', '/v1/scheduled_deployments', { app: theirApp.id, ...utcFields(3_600_000) }, s.adminToken);
    assert.equal(sched.status, 422);
    assert.equal(sched.body.error.field, 'app');
    const mine = await s.api('POST', '/v1/scheduled_deployments', { app: myApp.id, ...utcFields(3_600_000) }, s.adminToken);
    assert.equal(mine.status, 201);
    for (const p of [`/v1/scheduled_deployments/${mine.body.result.id}`]) {
      assert.equal((await s.api('GET', p, undefined, tokens.them)).status, 404);
      assert.equal((await s.api('POST', `${p}/cancel`, undefined, tokens.them)).status, 404);
    }
    const theirList = await s.api('GET', '/v1/scheduled_deployments', undefined, tokens.them);
    assert.equal(theirList.body.result.length, 0);
    // an owner of another team cannot add members to ours
    const me = await s.api('GET', '/v1/me', undefined, s.adminToken);
    const add = await s.api('POST', `/v1/teams/${me.body.team.id}/members`, { email: 'x@example.com', password: 'long-enough', role: 'owner' }, tokens.them);
    assert.equal(add.status, 404);
  });

  it('lets a viewer read and refuses its writes with 403', async () => {
    assert.equal((await s.api('GET', '/v1/apps', undefined, tokens.viewer)).status, 200);
    assert.equal((await s.api('GET', '/v1/scheduled_deployments', undefined, tokens.viewer)).status, 200);
    const writes: Array<[string, string, unknown]> = [
      ['POST', '/v1/apps', { name: 'v', target: { type: 'webhook', url: 'http://127.0.0.1:9/' } }],
      ['PATCH', `/v1/apps/${myApp.id}`, { name: 'renamed' }],
      ['DELETE', `/v1/apps/${myApp.id}`, undefined],
      ['POST', '/v1/scheduled_deployments', { app: myApp.id, ...utcFields(3_600_000) }],
      ['POST', '/v1/credentials', { name: 'c', provider: 'digitalocean', token: 't' }],
      ['POST', '/v1/teams', { name: 'nope' }],
    ];
    for (const [m, p, b] of writes) {
      const r = await s.api(m, p, b, tokens.viewer);
      assert.equal(r.status, 403, `${m} ${p}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'forbidden');
    }
  });

  it('lets a deployer schedule and cancel but not manage apps or credentials', async () => {
    const r = await s.api('POST', '/v1/scheduled_deployments', { app: myApp.id, ...utcFields(7_200_000) }, tokens.deployer);
    assert.equal(r.status, 201);
    assert.equal((await s.api('POST', `/v1/scheduled_deployments/${r.body.result.id}/cancel`, undefined, tokens.deployer)).status, 200);
    assert.equal((await s.api('POST', '/v1/apps', { name: 'd', target: { type: 'webhook', url: 'http://127.0.0.1:9/' } }, tokens.deployer)).status, 403);
    assert.equal((await s.api('GET', '/v1/credentials', undefined, tokens.deployer)).status, 403);
  });

  it('refuses a second user with the same email (409) and short passwords (400)', async () => {
    const me = await s.api('GET', '/v1/me', undefined, s.adminToken);
    const dup = await s.api('POST', `/v1/teams/${me.body.team.id}/members`, { email: 'VIEWER@example.com', password: 'whatever-1', role: 'viewer' }, s.adminToken);
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.field, 'email');
    const short = await s.api('POST', `/v1/teams/${me.body.team.id}/members`, { email: 'new@example.com', password: 'short', role: 'viewer' }, s.adminToken);
    assert.equal(short.status, 400);
    assert.equal(short.body.error.field, 'password');
  });
});

describe('the first start without SHIPCLOCK_ADMIN_PASSWORD', () => {
  it('prints a one-time password for admin@localhost, once, and it signs in', async () => {
    const db = await createTestDatabase();
    let out = '';
    const sink = new Writable({ write(chunk, _enc, cb) { out += chunk; cb(); } });
    const env = testEnv(db.url, { LOG_LEVEL: 'info' });
    delete env.SHIPCLOCK_ADMIN_EMAIL;
    delete env.SHIPCLOCK_ADMIN_PASSWORD;
    const sc = await startShipclock('serve', env, createLogger('info', sink));
    try {
      const m = /sign in as admin@localhost with the one-time password (\S+)/.exec(out);
      assert.ok(m, out);
      const r = await fetch(`${sc.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@localhost', password: m[1] }) });
      assert.equal(r.status, 200);
      const again = await startShipclock('serve', env, createLogger('info', sink));
      await again.stop();
      assert.equal(out.match(/one-time password/g)?.length, 1, 'printed only on the first start');
    } finally {
      await sc.stop();
      await db.drop();
    }
  });
});
