/**
 * Cloud credentials: stored encrypted, never returned, never logged, never in the database in the
 * clear, never in an error message; owners only; in-use ones cannot be deleted; a target can only
 * name its own team's credential of the right provider. And the key that encrypts them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/observability/logger.ts';
import { parseKey, SecretBox } from '../src/secrets/box.ts';
import { eventually, startTestServer, type TestServer, utcFields } from './helpers/server.ts';

const AWS_FULL = { access_key_id: 'AKIACREDTESTKEY00042', secret_access_key: 'cred-test-secret/AbC+123456789xyz', session_token: 'IQoJb3JpZ2luX2VjEIr-session-token-credtest' };
const AWS_PLAIN = { access_key_id: 'AKIACREDTESTKEY00077', secret_access_key: 'cred-test-other-secret-987654321' };
const DO_TOKEN = 'dop_v1_credtest0123456789abcdef0123456789abcdef';
const SECRETS = [AWS_FULL.access_key_id, AWS_FULL.secret_access_key, AWS_FULL.session_token, AWS_PLAIN.access_key_id, AWS_PLAIN.secret_access_key, DO_TOKEN];

/**
 * A stand-in for ECS and DigitalOcean whose error messages quote what the caller sent — the access
 * key id from the SigV4 header, the session token, the bearer token — and the secret key (as an
 * SDK error quoting a canonical request might), so redaction is tested end to end.
 */
async function startEchoingCloud() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const auth = String(req.headers.authorization ?? '');
      if (req.url?.startsWith('/v2/')) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'server_error', message: `internal error handling request with ${auth} (token ${auth.replace(/^Bearer /, '')})`, request_id: 'r-1' }));
        return;
      }
      const keyId = /Credential=([^/]+)\//.exec(auth)?.[1] ?? '?';
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({
        __type: 'com.amazonaws.ecs#ClientException',
        message: `The request signed with ${keyId} / ${AWS_FULL.secret_access_key} and token ${String(req.headers['x-amz-security-token'])} was rejected (encoded: ${encodeURIComponent(AWS_FULL.secret_access_key)})`,
      }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('credentials', () => {
  let s: TestServer;
  const logs: string[] = [];
  let cloud: Awaited<ReturnType<typeof startEchoingCloud>>;
  const saved = { ecs: process.env.AWS_ENDPOINT_URL_ECS, do: process.env.SHIPCLOCK_DIGITALOCEAN_API_URL };
  let teamId: string;
  const ids: Record<string, string> = {};

  before(async () => {
    cloud = await startEchoingCloud();
    process.env.AWS_ENDPOINT_URL_ECS = cloud.url;
    process.env.SHIPCLOCK_DIGITALOCEAN_API_URL = cloud.url;
    const stream = new Writable({ write(chunk, _e, cb) { logs.push(String(chunk)); cb(); } });
    s = await startTestServer({ env: { LOG_LEVEL: 'debug' }, logger: createLogger('debug', stream) });
    teamId = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body.team.id;
  });
  after(async () => {
    await s?.stop();
    await cloud?.close();
    for (const [k, v] of [['AWS_ENDPOINT_URL_ECS', saved.ecs], ['SHIPCLOCK_DIGITALOCEAN_API_URL', saved.do]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  const assertNoSecret = (what: string, text: string) => {
    for (const secret of SECRETS) assert.ok(!text.includes(secret), `${what} holds a secret (${secret}):\n${text.slice(0, 2000)}`);
  };

  it('stores AWS (with and without session_token) and DigitalOcean credentials; no response holds a secret', async () => {
    const bodies = [
      { name: 'aws-sts', provider: 'aws', ...AWS_FULL },
      { name: 'aws-plain', provider: 'aws', ...AWS_PLAIN },
      { name: 'do', provider: 'digitalocean', token: DO_TOKEN },
    ];
    for (const body of bodies) {
      const r = await s.api('POST', '/v1/credentials', body, s.adminToken);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.deepEqual(Object.keys(r.body).sort(), body.provider === 'aws' ? ['access_key_id', 'created_at', 'id', 'name', 'provider'] : ['created_at', 'id', 'name', 'provider']);
      assert.equal(r.body.name, body.name);
      assert.equal(r.body.provider, body.provider);
      if (body.provider === 'aws') assert.equal(r.body.access_key_id, `****${(body as { access_key_id: string }).access_key_id.slice(-4)}`);
      assertNoSecret('the create response', JSON.stringify(r.body));
      ids[body.name] = r.body.id;
      const one = await s.api('GET', `/v1/credentials/${r.body.id}`, undefined, s.adminToken);
      assert.equal(one.status, 200);
      assert.deepEqual(one.body, r.body);
    }
    const list = await s.api('GET', '/v1/credentials', undefined, s.adminToken);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.result.map((c: { name: string }) => c.name), ['aws-plain', 'aws-sts', 'do']);
    assert.equal(list.body.next_cursor, null);
    assertNoSecret('the list response', JSON.stringify(list.body));
    // Paged too.
    const p1 = await s.api('GET', '/v1/credentials?limit=2', undefined, s.adminToken);
    const p2 = await s.api('GET', `/v1/credentials?limit=2&cursor=${encodeURIComponent(p1.body.next_cursor)}`, undefined, s.adminToken);
    assert.deepEqual([...p1.body.result, ...p2.body.result].map((c: { name: string }) => c.name), ['aws-plain', 'aws-sts', 'do']);
    // The OpenAPI document describes no secret member in the response.
    const doc = (await s.api('GET', '/openapi.json')).body;
    assert.ok(!JSON.stringify(doc.components?.schemas?.Credential ?? {}).includes('secret_access_key'));
  });

  it('a malformed credential is refused naming the field, and nothing is stored', async () => {
    const bad = await s.api('POST', '/v1/credentials', { name: 'x', provider: 'aws', access_key_id: 'AKIA' }, s.adminToken);
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    const dup = await s.api('POST', '/v1/credentials', { name: 'do', provider: 'digitalocean', token: 'dop_v1_other' }, s.adminToken);
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.field, 'name');
    assertNoSecret('an error', JSON.stringify([bad.body, dup.body]));
    const count = (await s.db.pool.query('SELECT count(*)::int AS n FROM credentials')).rows[0].n;
    assert.equal(count, 3);
  });

  it('creates of one name at once: one 201, the others 409 name_taken (never a 500)', async () => {
    const rs = await Promise.all(Array.from({ length: 6 }, () => s.api('POST', '/v1/credentials', { name: 'raced', provider: 'digitalocean', token: DO_TOKEN }, s.adminToken)));
    assert.deepEqual(rs.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409], JSON.stringify(rs.map((r) => r.body)));
    for (const r of rs.filter((x) => x.status === 409)) assert.equal(r.body.error.code, 'name_taken');
    const id = rs.find((r) => r.status === 201)!.body.id;
    assert.equal((await s.api('DELETE', `/v1/credentials/${id}`, undefined, s.adminToken)).status, 204);
  });

  it('deleting a credential while an app is created with it: one of the two is refused, never an app naming a deleted credential', async () => {
    for (let i = 0; i < 5; i++) {
      const cred = (await s.api('POST', '/v1/credentials', { name: `race-${i}`, provider: 'digitalocean', token: DO_TOKEN }, s.adminToken)).body.id;
      const [app, del] = await Promise.all([
        s.api('POST', '/v1/apps', { name: `race-app-${i}`, target: { type: 'digitalocean', app_id: 'a', credentials: cred } }, s.adminToken),
        s.api('DELETE', `/v1/credentials/${cred}`, undefined, s.adminToken),
      ]);
      const outcome = `${app.status}/${del.status}`;
      assert.ok(outcome === '201/409' || outcome === '422/204', `app ${app.status} ${JSON.stringify(app.body)}, delete ${del.status} ${JSON.stringify(del.body)}`);
      if (app.status === 201) {
        await s.api('DELETE', `/v1/apps/${app.body.id}`, undefined, s.adminToken);
        await s.api('DELETE', `/v1/credentials/${cred}`, undefined, s.adminToken);
      }
    }
  });

  it('the secret is encrypted at rest: the credentials.secret bytes hold none of it', async () => {
    const rows = (await s.db.pool.query<{ name: string; secret: Buffer; public: unknown }>('SELECT name, secret, public FROM credentials')).rows;
    assert.equal(rows.length, 3);
    for (const r of rows) {
      for (const secret of SECRETS) {
        assert.ok(!r.secret.includes(Buffer.from(secret)), `${r.name}: the secret column holds ${secret} in the clear`);
        assert.ok(!r.secret.includes(Buffer.from(secret, 'utf16le')));
      }
      assert.equal(r.secret[0], 1, 'SecretBox format version 1');
      assertNoSecret(`${r.name}.public`, JSON.stringify(r.public));
    }
    // Two seals of one value differ (a fresh nonce each time).
    const box = SecretBox.fromKey(parseKey(Buffer.alloc(32, 7).toString('base64')));
    assert.deepEqual(JSON.parse(box.open(rows.find((r) => r.name === 'aws-sts')!.secret)), { provider: 'aws', ...AWS_FULL });
  });

  it('owners only: a deployer and a viewer get 403 on every credential route', async () => {
    for (const role of ['deployer', 'viewer']) {
      const email = `${role}-cred@example.com`;
      const m = await s.api('POST', `/v1/teams/${teamId}/members`, { email, password: 'password-123456', role }, s.adminToken);
      assert.equal(m.status, 201, JSON.stringify(m.body));
      const token = await s.login(email, 'password-123456');
      const calls: Array<[string, string, unknown?]> = [
        ['POST', '/v1/credentials', { name: `by-${role}`, provider: 'digitalocean', token: 'dop_v1_x' }],
        ['GET', '/v1/credentials'],
        ['GET', `/v1/credentials/${ids.do}`],
        ['DELETE', `/v1/credentials/${ids.do}`],
      ];
      for (const [method, p, body] of calls) {
        const r = await s.api(method, p, body, token);
        assert.equal(r.status, 403, `${role} ${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'forbidden');
      }
    }
    assert.equal((await s.api('GET', `/v1/credentials/${ids.do}`, undefined, s.adminToken)).status, 200, 'still there');
  });

  it('deleting a credential an app uses answers 409 naming the app; an unused one is deleted', async () => {
    const app = await s.api('POST', '/v1/apps', { name: 'uses-do', target: { type: 'digitalocean', app_id: 'a-1', credentials: ids.do } }, s.adminToken);
    assert.equal(app.status, 201, JSON.stringify(app.body));
    const r = await s.api('DELETE', `/v1/credentials/${ids.do}`, undefined, s.adminToken);
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'credential_in_use');
    assert.match(r.body.error.message, /uses-do/);
    // Once the app is gone, it can go.
    assert.equal((await s.api('DELETE', `/v1/apps/${app.body.id}`, undefined, s.adminToken)).status, 204);
    assert.equal((await s.api('DELETE', `/v1/credentials/${ids.do}`, undefined, s.adminToken)).status, 204);
    assert.equal((await s.api('GET', `/v1/credentials/${ids.do}`, undefined, s.adminToken)).status, 404);
    const again = await s.api('POST', '/v1/credentials', { name: 'do', provider: 'digitalocean', token: DO_TOKEN }, s.adminToken);
    assert.equal(again.status, 201);
    ids.do = again.body.id;
  });

  it('a target naming another team\'s credential is refused on target.credentials; that team\'s ids answer 404', async () => {
    const team = await s.api('POST', '/v1/teams', { name: 'other-team' }, s.adminToken);
    assert.equal(team.status, 201);
    await s.api('POST', `/v1/teams/${team.body.id}/members`, { email: 'owner@other.example', password: 'password-123456', role: 'owner' }, s.adminToken);
    const other = await s.login('owner@other.example', 'password-123456');
    const theirs = await s.api('POST', '/v1/credentials', { name: 'theirs', provider: 'aws', access_key_id: 'AKIAOTHERTEAMKEY0001', secret_access_key: 'other-team-secret' }, other);
    assert.equal(theirs.status, 201);
    const r = await s.api('POST', '/v1/apps', {
      name: 'steals', target: { type: 'ecs', region: 'us-east-1', cluster: 'c', service: 's', credentials: theirs.body.id },
    }, s.adminToken);
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.equal(r.body.error.field, 'target.credentials');
    assert.equal((await s.api('GET', `/v1/credentials/${theirs.body.id}`, undefined, s.adminToken)).status, 404);
    assert.equal((await s.api('DELETE', `/v1/credentials/${theirs.body.id}`, undefined, s.adminToken)).status, 404);
    assert.ok(!(await s.api('GET', '/v1/credentials', undefined, other)).body.result.some((c: { id: string }) => c.id === ids['aws-sts']));
  });

  it('a target with a credential of the wrong provider is refused (wrong_credential_provider), also on update', async () => {
    const r = await s.api('POST', '/v1/apps', { name: 'do-with-aws', target: { type: 'digitalocean', app_id: 'a-2', credentials: ids['aws-sts'] } }, s.adminToken);
    assert.ok(r.status === 409 || r.status === 422, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'wrong_credential_provider');
    assert.equal(r.body.error.field, 'target.credentials');
    const e = await s.api('POST', '/v1/apps', { name: 'ecs-with-do', target: { type: 'ecs', region: 'us-east-1', cluster: 'c', service: 's', credentials: ids.do } }, s.adminToken);
    assert.equal(e.body.error.code, 'wrong_credential_provider');
    const ok = await s.api('POST', '/v1/apps', { name: 'ecs-ok', target: { type: 'ecs', region: 'us-east-1', cluster: 'c', service: 's', credentials: ids['aws-plain'] } }, s.adminToken);
    assert.equal(ok.status, 201);
    const u = await s.api('PATCH', `/v1/apps/${ok.body.id}`, { target: { type: 'ecs', region: 'us-east-1', cluster: 'c', service: 's', credentials: ids.do } }, s.adminToken);
    assert.equal(u.body.error.code, 'wrong_credential_provider');
    await s.api('DELETE', `/v1/apps/${ok.body.id}`, undefined, s.adminToken);
  });

  it('a provider error that quotes the keys or the token is redacted in the deployment\'s error and log', async () => {
    const ecsApp = await s.api('POST', '/v1/apps', {
      name: 'echo-ecs', target: { type: 'ecs', region: 'us-east-1', cluster: 'c', service: 's', credentials: ids['aws-sts'], poll_interval_seconds: 1 }, retry: { max_attempts: 1 },
    }, s.adminToken);
    const doApp = await s.api('POST', '/v1/apps', {
      name: 'echo-do', target: { type: 'digitalocean', app_id: 'a-3', credentials: ids.do, poll_interval_seconds: 1 }, retry: { max_attempts: 1 },
    }, s.adminToken);
    const ds = [];
    for (const app of [ecsApp, doApp]) {
      assert.equal(app.status, 201, JSON.stringify(app.body));
      const d = await s.api('POST', '/v1/scheduled_deployments', { app: app.body.id, ...utcFields(1000) }, s.adminToken);
      assert.equal(d.status, 201, JSON.stringify(d.body));
      ds.push(d.body.result.id as string);
    }
    for (const id of ds) {
      const end = await eventually(async () => {
        const r = (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
        return r.state === 'failed' ? r : null;
      }, 20_000, `deployment ${id} to fail`);
      assertNoSecret('the deployment', JSON.stringify(end));
      assert.match(end.error, /REDACTED|redacted/, end.error);
      const events = (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result.events;
      assertNoSecret('the timeline', JSON.stringify(events));
    }
  });

  it('no secret is anywhere in the database in the clear (deployments, events, audit, notifications, ...)', async () => {
    const tables = (await s.db.pool.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)).rows.map((r) => r.tablename);
    assert.ok(tables.includes('deployments') && tables.includes('credentials'));
    for (const t of tables) {
      const rows = (await s.db.pool.query<{ row: string }>(`SELECT t::text AS row FROM "${t}" t`)).rows;
      for (const r of rows) {
        for (const secret of SECRETS) {
          // bytea is rendered as hex in text form: check that too.
          assert.ok(!r.row.includes(secret) && !r.row.includes(Buffer.from(secret).toString('hex')), `table ${t} holds ${secret}: ${r.row.slice(0, 300)}`);
        }
      }
    }
  });

  it('no secret is ever logged, at debug level', async () => {
    const all = logs.join('');
    assert.ok(all.includes('shipclock is running'), 'the server\'s log lines were captured');
    assertNoSecret('the log', all);
  });
});

describe('the key that encrypts secrets (SecretBox)', () => {
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-key-'));

  it('without SHIPCLOCK_SECRET_KEY, generates a key once into the data dir (mode 0600) and reuses it on restart', () => {
    const dir = path.join(tmp(), 'nested', 'data');
    const first = SecretBox.load(undefined, dir);
    const file = path.join(dir, 'secret.key');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const content = fs.readFileSync(file, 'utf8');
    assert.equal(Buffer.from(content.trim(), 'base64').length, 32);
    const sealed = first.seal('token-1');
    const second = SecretBox.load(undefined, dir);
    assert.equal(second.open(sealed), 'token-1', 'a restart reads the same key');
    assert.equal(fs.readFileSync(file, 'utf8'), content, 'and does not rewrite it');
  });

  it('SHIPCLOCK_SECRET_KEY wins over the file, as base64 or hex', () => {
    const key = randomBytes(32);
    const a = SecretBox.load(key.toString('base64'), tmp());
    const b = SecretBox.load(key.toString('hex'), tmp());
    assert.equal(b.open(a.seal('x')), 'x');
  });

  it('a wrong key gives a clear error, never garbage', () => {
    const sealed = SecretBox.fromKey(randomBytes(32)).seal('{"token":"t"}');
    assert.throws(() => SecretBox.fromKey(randomBytes(32)).open(sealed), /cannot decrypt a stored secret: SHIPCLOCK_SECRET_KEY differs from the key it was encrypted with/);
    // A tampered ciphertext is refused too (GCM authenticates it).
    const box = SecretBox.fromKey(randomBytes(32));
    const s2 = box.seal('hello');
    s2[s2.length - 1] ^= 1;
    assert.throws(() => box.open(s2), /cannot decrypt/);
  });

  it('a malformed key says which setting is wrong', () => {
    assert.throws(() => SecretBox.load('too-short', tmp()), /SHIPCLOCK_SECRET_KEY must be 32 bytes/);
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'secret.key'), 'not a key\n', { mode: 0o600 });
    assert.throws(() => SecretBox.load(undefined, dir), (err: Error) => err.message.includes(path.join(dir, 'secret.key')));
  });
});
