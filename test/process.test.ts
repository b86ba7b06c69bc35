/**
 * Real processes: `shipclock serve` / `shipclock worker` spawned from bin/, killed with SIGKILL,
 * restarted, several at once on one database, and the embedded PostgreSQL of `npm start`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { startWebhookReceiver } from './helpers/fake-webhook.ts';
import { type Proc, spawnShipclock } from './helpers/processes.ts';
import { eventually, testEnv, utcFields } from './helpers/server.ts';

async function api(url: string, method: string, p: string, body?: unknown, token?: string) {
  const res = await fetch(url + p, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() as any };
}

describe('processes', () => {
  let db: TestDatabase;
  let env: NodeJS.ProcessEnv;
  const procs: Proc[] = [];
  const start = async (role: 'serve' | 'worker') => { const p = await spawnShipclock(role, env); procs.push(p); return p; };

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    env = testEnv(db.url);
  });
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await db.drop();
  });

  async function login(url: string) {
    return (await api(url, 'POST', '/v1/auth/login', { email: env.SHIPCLOCK_ADMIN_EMAIL, password: env.SHIPCLOCK_ADMIN_PASSWORD })).body.access_token as string;
  }

  it('several processes migrate one empty database at once (advisory lock)', async () => {
    const [a, b, c] = await Promise.all([start('serve'), start('worker'), start('worker')]);
    procs.splice(0, procs.length, a, b, c);
    const r = await db.pool.query('SELECT count(*)::int AS n FROM schema_migrations');
    assert.ok(r.rows[0].n >= 1);
    for (const p of [a, b, c]) assert.equal((await fetch(`${p.url}/readyz`)).status, 200);
    assert.equal((await fetch(`${b.url}/v1/apps`)).status, 404, 'a worker serves no API');
  });

  it('fires a few hundred deployments across three processes, none twice, none lost', async () => {
    const serve = procs[0];
    const token = await login(serve.url);
    const hook = await startWebhookReceiver();
    const ids: string[] = [];
    const apps: string[] = [];
    for (let i = 0; i < 100; i++) {
      apps.push((await api(serve.url, 'POST', '/v1/apps', { name: `multi-${i}`, target: { type: 'webhook', url: hook.url } }, token)).body.id);
    }
    // Far enough ahead that creating 300 through the API finishes first, even on a loaded machine
    // (10 at a time: a machine running other work may take seconds per request).
    const base = Date.now() + 30_000;
    for (let k = 0; k < 3; k++) {
      for (let i = 0; i < apps.length; i += 10) {
        const rs = await Promise.all(apps.slice(i, i + 10).map((app) =>
          api(serve.url, 'POST', '/v1/scheduled_deployments', { app, ...utcFields(base - Date.now() + k * 1000) }, token)));
        for (const r of rs) {
          assert.equal(r.status, 201, JSON.stringify(r.body));
          ids.push(r.body.result.id);
        }
      }
    }
    await eventually(async () => {
      const r = await db.pool.query(`SELECT count(*)::int AS n FROM deployments WHERE id = ANY($1::uuid[]) AND state = 'succeeded'`, [ids]);
      return r.rows[0].n === ids.length;
    }, 120_000, 'all 300 to succeed');
    const perId = new Map<string, number>();
    for (const h of hook.hits) perId.set(h.body.deployment_id, (perId.get(h.body.deployment_id) ?? 0) + 1);
    assert.equal(perId.size, 300, 'none lost');
    assert.deepEqual([...new Set(perId.values())], [1], 'none twice');
    const runAt = new Map((await db.pool.query<{ id: string; run_at: Date }>('SELECT id, run_at FROM deployments WHERE id = ANY($1::uuid[])', [ids])).rows.map((r) => [r.id, r.run_at.getTime()]));
    assert.ok(hook.hits.every((h) => h.at >= runAt.get(h.body.deployment_id)!), 'none early');
    const firers = await db.pool.query(`SELECT count(DISTINCT split_part(message, ' on ', 2))::int AS n FROM deployment_events WHERE deployment_id = ANY($1::uuid[]) AND state = 'running'`, [ids]);
    console.log(`# ${firers.rows[0].n} process(es) fired the 300 deployments`);
    await hook.close();
  });

  it('loses nothing to kill -9: in-flight work resumes with the same Idempotency-Key; what expired while down is missed', async () => {
    for (const p of procs.splice(0)) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
    const serve = await start('serve');
    const token = await login(serve.url);
    const hook = await startWebhookReceiver();
    hook.delay(4000); // the first attempt is still in flight when the process dies
    const app = (await api(serve.url, 'POST', '/v1/apps', { name: 'crashy', target: { type: 'webhook', url: hook.url } }, token)).body;
    const later = (await api(serve.url, 'POST', '/v1/apps', { name: 'due-while-down', target: { type: 'webhook', url: hook.url } }, token)).body;
    const expiring = (await api(serve.url, 'POST', '/v1/apps', { name: 'expires-while-down', target: { type: 'webhook', url: hook.url } }, token)).body;
    const inflight = (await api(serve.url, 'POST', '/v1/scheduled_deployments', { app: app.id, ...utcFields(2000) }, token)).body.result;
    const dueWhileDown = (await api(serve.url, 'POST', '/v1/scheduled_deployments', { app: later.id, ...utcFields(6000), expires_after_seconds: 600 }, token)).body.result;
    const missed = (await api(serve.url, 'POST', '/v1/scheduled_deployments', { app: expiring.id, ...utcFields(6000), expires_after_seconds: 1 }, token)).body.result;
    await eventually(async () => hook.hits.some((h) => h.body.deployment_id === inflight.id), 10_000, 'the first attempt to arrive');
    serve.child.kill('SIGKILL');
    await serve.exited;
    hook.delay(0);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(missed.run_at) + 2500 - Date.now())));
    const again = await start('serve');
    const state = async (id: string) => (await api(again.url, 'GET', `/v1/scheduled_deployments/${id}`, undefined, token)).body.result;
    const end = async (id: string) => eventually(async () => { const d = await state(id); return !['scheduled', 'running'].includes(d.state) && d; }, 40_000, `${id} to end`);
    assert.equal((await end(inflight.id)).state, 'succeeded');
    const repeats = hook.hits.filter((h) => h.body.deployment_id === inflight.id);
    assert.ok(repeats.length >= 2, 'the in-flight webhook was sent again after the crash');
    assert.ok(repeats.every((h) => h.headers['idempotency-key'] === inflight.id), 'always with the same Idempotency-Key');
    assert.equal((await end(dueWhileDown.id)).state, 'succeeded');
    assert.equal(hook.hits.filter((h) => h.body.deployment_id === dueWhileDown.id).length, 1);
    const m = await end(missed.id);
    assert.equal(m.state, 'missed');
    assert.equal(hook.hits.filter((h) => h.body.deployment_id === missed.id).length, 0, 'never run late');
    await hook.close();
  });

  it('stops on SIGTERM within 30 s, exit code 0, also with an event stream open', async () => {
    const p = procs[procs.length - 1];
    const token = await login(p.url);
    const stream = await fetch(`${p.url}/v1/events`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(stream.status, 200);
    const t0 = Date.now();
    p.child.kill('SIGTERM');
    const code = await p.exited;
    assert.equal(code, 0, p.output().slice(-2000));
    assert.ok(Date.now() - t0 < 10_000, `stopped in ${Date.now() - t0} ms`);
    await stream.body?.cancel().catch(() => {});
    procs.pop();
  });
});

describe('npm start on a fresh machine: the embedded PostgreSQL', () => {
  it('starts with no DATABASE_URL, answers /healthz, keeps its data across a restart, stops cleanly', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-embedded-'));
    const env: NodeJS.ProcessEnv = { ...testEnv('unused'), SHIPCLOCK_DATA_DIR: dataDir };
    delete env.DATABASE_URL;
    delete env.SHIPCLOCK_SECRET_KEY; // generated into the data dir
    const first = await spawnShipclock('serve', env);
    const token = (await api(first.url, 'POST', '/v1/auth/login', { email: env.SHIPCLOCK_ADMIN_EMAIL, password: env.SHIPCLOCK_ADMIN_PASSWORD })).body.access_token;
    assert.ok(token);
    assert.equal((await api(first.url, 'POST', '/v1/apps', { name: 'kept', target: { type: 'webhook', url: 'http://127.0.0.1:9/', secret: 's3cret-value' } }, token)).status, 201);
    assert.equal((fs.statSync(path.join(dataDir, 'secret.key')).mode & 0o777), 0o600);
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0, first.output().slice(-2000));
    const second = await spawnShipclock('serve', env);
    const apps = await api(second.url, 'GET', '/v1/apps', undefined, token);
    assert.deepEqual(apps.body.result.map((a: { name: string }) => a.name), ['kept'], 'same data, same signing key');
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
});
