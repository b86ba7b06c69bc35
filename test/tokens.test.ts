/**
 * API tokens for CI (issue 16): created with a role at most the creator's and shown once, stored
 * as a SHA-256 only, listed without the secret (with last_used_at), used by the real CLI through
 * SHIPCLOCK_TOKEN, revoked at once here and within a second in another process.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { USER_CACHE_MS } from '../src/services/auth.ts';
import { API_TOKENS_PER_USER } from '../src/services/api-tokens.ts';
import { addMember, call, sleep } from './helpers/accounts.ts';
import { runCli } from './helpers/cli.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { startTestServer, type TestServer, utcFields } from './helpers/server.ts';

/** The real `shipclock` executable with only SHIPCLOCK_URL and SHIPCLOCK_TOKEN (no config file, as in CI). */
const cli = (args: string[], url: string, token: string, home: string) =>
  runCli(args, { HOME: home, SHIPCLOCK_CONFIG: path.join(home, 'absent.json'), SHIPCLOCK_URL: url, SHIPCLOCK_TOKEN: token });

describe('API tokens', () => {
  let s: TestServer;
  let teamId: string;
  let hook: WebhookReceiver;
  let home: string;
  before(async () => {
    s = await startTestServer();
    hook = await startWebhookReceiver();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-tokens-'));
    teamId = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body.team.id;
  });
  after(async () => {
    await hook.close();
    await s.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('creates a token shown once, prefixed shc_, stored only as its SHA-256; defaults and limits', async () => {
    const r = await s.api('POST', '/v1/tokens', { name: 'deploy pipeline' }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'role', 'token']);
    assert.match(r.body.token, /^shc_[0-9A-Za-z]{40}$/);
    assert.equal(r.body.role, 'owner', 'defaults to the creator\'s role');
    const days = (Date.parse(r.body.expires_at) - Date.now()) / 86_400_000;
    assert.ok(days > 89.9 && days <= 90, `default expiry ${days} days`);
    const row = (await s.db.pool.query('SELECT * FROM api_tokens WHERE id = $1', [r.body.id])).rows[0];
    assert.deepEqual(row.token_hash, createHash('sha256').update(r.body.token).digest());
    assert.ok(!JSON.stringify(row).includes(r.body.token.slice(4)), 'the secret is not stored');

    const week = await s.api('POST', '/v1/tokens', { name: 'short', role: 'viewer', expires_in_days: 7 }, s.adminToken);
    assert.equal(week.status, 201);
    assert.equal(week.body.role, 'viewer');
    for (const [body, field] of [[{ name: 'x', expires_in_days: 0 }, 'expires_in_days'], [{ name: 'x', expires_in_days: 366 }, 'expires_in_days'], [{ name: '' }, 'name'], [{ name: 'x', role: 'admin' }, 'role']] as const) {
      const bad = await s.api('POST', '/v1/tokens', body, s.adminToken);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.body.error.field, field);
    }
  });

  it('gives a token at most its creator\'s role (422 naming role), and lowers it when the creator is demoted', async () => {
    const dev = await addMember(s, teamId, 'dev@example.com', 'devs-password-1', 'deployer');
    const tooHigh = await s.api('POST', '/v1/tokens', { name: 'x', role: 'owner' }, dev.token);
    assert.equal(tooHigh.status, 422);
    assert.equal(tooHigh.body.error.field, 'role');
    assert.equal((await s.db.pool.query('SELECT count(*)::int AS n FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.email = $1', ['dev@example.com'])).rows[0].n, 0, 'nothing stored');
    const tok = (await s.api('POST', '/v1/tokens', { name: 'ci' }, dev.token)).body.token as string;
    const me = await s.api('GET', '/v1/me', undefined, tok);
    assert.equal(me.body.role, 'deployer');
    assert.equal(me.body.via, 'api_token');
    assert.equal((await s.api('POST', '/v1/apps', { name: 'nope', target: { type: 'webhook', url: hook.url } }, tok)).status, 403);
    // An owner's viewer token cannot write.
    const viewerTok = (await s.api('POST', '/v1/tokens', { name: 'ro', role: 'viewer' }, s.adminToken)).body.token as string;
    assert.equal((await s.api('GET', '/v1/apps', undefined, viewerTok)).status, 200);
    assert.equal((await s.api('POST', '/v1/apps', { name: 'nope', target: { type: 'webhook', url: hook.url } }, viewerTok)).status, 403);
    // Never an instance admin, even when its creator is.
    assert.equal((await s.api('GET', '/v1/me', undefined, viewerTok)).body.admin, false);
    assert.equal((await s.api('POST', '/v1/teams', { name: 'by-token' }, (await s.api('POST', '/v1/tokens', { name: 'own' }, s.adminToken)).body.token)).status, 403);

    assert.equal((await s.api('PATCH', `/v1/teams/${teamId}/members/${dev.id}`, { role: 'viewer' }, s.adminToken)).status, 200);
    assert.equal((await s.api('GET', '/v1/me', undefined, tok)).body.role, 'viewer');
  });

  it('cannot create tokens or change the password with a token', async () => {
    const tok = (await s.api('POST', '/v1/tokens', { name: 'ci' }, s.adminToken)).body.token as string;
    assert.equal((await s.api('POST', '/v1/tokens', { name: 'child' }, tok)).status, 403);
    assert.equal((await s.api('POST', '/v1/me/password', { current_password: s.adminPassword, new_password: 'whatever-new-one-1' }, tok)).status, 403);
  });

  it('is used by the CLI through SHIPCLOCK_TOKEN: apps ls, schedule, ls, watch', async () => {
    const app = await s.api('POST', '/v1/apps', { name: 'cli-app', target: { type: 'webhook', url: hook.url }, retry: { max_attempts: 1 } }, s.adminToken);
    assert.equal(app.status, 201);
    const created = await s.api('POST', '/v1/tokens', { name: 'pipeline', role: 'deployer' }, s.adminToken);
    const tok = created.body.token as string;
    const apps = await cli(['apps', 'ls', '--json'], s.url, tok, home);
    assert.equal(apps.code, 0, apps.stderr);
    assert.ok(JSON.parse(apps.stdout).some((a: { name: string }) => a.name === 'cli-app'));
    // Far enough ahead for one CLI start (\`schedule\`), from the sources on a loaded machine
    // (about 1 to 3 s there; the bundle, as in CI, starts faster).
    const when = utcFields(8_000);
    const at = `${when.year}-${String(when.month).padStart(2, '0')}-${String(when.day).padStart(2, '0')} ${String(when.hour).padStart(2, '0')}:${String(when.minute).padStart(2, '0')}:${String(when.second).padStart(2, '0')}`;
    const sched = await cli(['schedule', 'cli-app', '--at', at, '--tz', 'UTC', '--json'], s.url, tok, home);
    assert.equal(sched.code, 0, sched.stderr);
    const id = JSON.parse(sched.stdout).id as string;
    const ls = await cli(['ls'], s.url, tok, home);
    assert.equal(ls.code, 0, ls.stderr);
    assert.ok(ls.stdout.includes(id));
    const watch = await cli(['watch', id], s.url, tok, home);
    assert.equal(watch.code, 0, watch.stdout + watch.stderr);
    assert.match(watch.stdout, /succeeded/);
    // Used: listed with last_used_at, never with the secret.
    const list = await s.api('GET', '/v1/tokens', undefined, s.adminToken);
    assert.equal(list.status, 200);
    const mine = list.body.result.find((t: { id: string }) => t.id === created.body.id);
    assert.ok(mine.last_used_at, 'last_used_at is recorded');
    assert.deepEqual(Object.keys(mine).sort(), ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'role']);
    assert.ok(!JSON.stringify(list.body).includes(tok.slice(4)));
    // Revoked: the CLI says so, and exits 1.
    assert.equal((await s.api('DELETE', `/v1/tokens/${created.body.id}`, undefined, s.adminToken)).status, 204);
    const refused = await cli(['ls'], s.url, tok, home);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /API token was refused/);
  });

  it('lists the caller\'s own tokens a page at a time', async () => {
    const olga = await addMember(s, teamId, 'olga@example.com', 'olgas-password-1', 'viewer');
    const names = ['a', 'b', 'c'];
    for (const name of names) assert.equal((await s.api('POST', '/v1/tokens', { name }, olga.token)).status, 201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { body: any } = await s.api('GET', `/v1/tokens?limit=2${cursor ? `&cursor=${cursor}` : ''}`, undefined, olga.token);
      seen.push(...r.body.result.map((t: { name: string }) => t.name));
      cursor = r.body.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, names);
    assert.equal((await s.api('GET', '/v1/tokens?cursor=bad', undefined, olga.token)).status, 400);
  });

  it('revokes a token: refused at once here and within a second in another process; another user\'s token answers 404', async () => {
    const created = (await s.api('POST', '/v1/tokens', { name: 'to-revoke' }, s.adminToken)).body;
    const second = await s.another('serve');
    assert.equal((await call(second.url, 'GET', '/v1/apps', { token: created.token })).status, 200);
    const stranger = await addMember(s, teamId, 'stranger@example.com', 'strangers-password-1', 'owner');
    assert.equal((await s.api('DELETE', `/v1/tokens/${created.id}`, undefined, stranger.token)).status, 404);
    assert.equal((await s.api('DELETE', `/v1/tokens/${created.id}`, undefined, s.adminToken)).status, 204);
    assert.equal((await s.api('GET', '/v1/apps', undefined, created.token)).status, 401);
    await sleep(USER_CACHE_MS + 200);
    const there = await call(second.url, 'GET', '/v1/apps', { token: created.token });
    assert.equal(there.status, 401);
    const list = (await s.api('GET', '/v1/tokens?limit=500', undefined, s.adminToken)).body.result;
    assert.ok(!list.some((t: { id: string }) => t.id === created.id), 'a revoked token leaves the list');
    assert.equal((await s.api('DELETE', `/v1/tokens/${created.id}`, undefined, s.adminToken)).status, 404);
    const audit = (await s.api('GET', `/v1/audit?target_id=${created.id}`, undefined, s.adminToken)).body.result.map((e: { action: string }) => e.action);
    assert.deepEqual(audit, ['token.delete', 'token.create']);
  });

  it(`allows ${API_TOKENS_PER_USER} live tokens per user (409 too_many_tokens after)`, async () => {
    const ted = await addMember(s, teamId, 'ted@example.com', 'teds-password-1', 'viewer');
    for (let i = 0; i < API_TOKENS_PER_USER; i++) assert.equal((await s.api('POST', '/v1/tokens', { name: `t${i}` }, ted.token)).status, 201);
    const over = await s.api('POST', '/v1/tokens', { name: 'one more' }, ted.token);
    assert.equal(over.status, 409);
    assert.equal(over.body.error.code, 'too_many_tokens');
    const first = (await s.api('GET', '/v1/tokens?limit=1', undefined, ted.token)).body.result[0];
    assert.equal((await s.api('DELETE', `/v1/tokens/${first.id}`, undefined, ted.token)).status, 204);
    assert.equal((await s.api('POST', '/v1/tokens', { name: 'one more' }, ted.token)).status, 201);
  });

  it('refuses an unknown or expired token', async () => {
    assert.equal((await s.api('GET', '/v1/me', undefined, 'shc_' + 'x'.repeat(40))).status, 401);
    const created = (await s.api('POST', '/v1/tokens', { name: 'old' }, s.adminToken)).body;
    await s.db.pool.query(`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [created.id]);
    await sleep(USER_CACHE_MS + 50);
    assert.equal((await s.api('GET', '/v1/me', undefined, created.token)).status, 401);
  });
});
