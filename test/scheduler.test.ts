import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signBody } from '../src/providers/webhook.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { eventually, startTestServer, type TestServer, utcFields } from './helpers/server.ts';

describe('the scheduler fires deployments at their instant, once, in order', () => {
  let s: TestServer;
  let n = 0;

  before(async () => {
    s = await startTestServer();
  });
  after(() => s.stop());

  async function webhookApp(hook: WebhookReceiver, extra: Record<string, unknown> = {}, retry?: Record<string, number>) {
    const r = await s.api('POST', '/v1/apps', { name: `app-${++n}`, target: { type: 'webhook', url: hook.url, ...extra }, ...(retry ? { retry } : {}) }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body as { id: string; name: string };
  }
  async function schedule(body: Record<string, unknown>) {
    const r = await s.api('POST', '/v1/scheduled_deployments', body, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result;
  }
  const get = async (id: string) => (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
  const final = (id: string, timeoutMs = 20_000) =>
    eventually(async () => { const d = await get(id); return ['succeeded', 'failed', 'canceled', 'skipped', 'missed'].includes(d.state) && d; }, timeoutMs, `deployment ${id} to end`);

  it('fires each at its instant, never early, exactly once, with a signed body and Idempotency-Key', async () => {
    const hook = await startWebhookReceiver();
    const app = await webhookApp(hook, { secret: 'sig-secret-123' });
    const ds = [];
    for (let i = 0; i < 5; i++) ds.push(await schedule({ app: app.id, ...utcFields(2500 + i * 1000) }));
    for (const d of ds) assert.equal((await final(d.id)).state, 'succeeded');
    assert.equal(hook.hits.length, 5);
    for (const d of ds) {
      const hits = hook.hits.filter((h) => h.body.deployment_id === d.id);
      assert.equal(hits.length, 1, 'exactly once');
      const hit = hits[0];
      assert.ok(hit.at >= Date.parse(d.run_at), `not early: arrived ${hit.at - Date.parse(d.run_at)} ms after the instant`);
      assert.equal(hit.headers['idempotency-key'], d.id);
      assert.equal(hit.headers['x-shipclock-signature'], signBody('sig-secret-123', hit.raw));
      assert.deepEqual(Object.keys(hit.body).sort(), ['app_id', 'app_name', 'attempt', 'deployment_id', 'run_at']);
      assert.equal(hit.body.run_at, d.run_at);
      assert.equal(hit.body.attempt, 1);
    }
    const d = await get(ds[0].id);
    assert.deepEqual(d.events.map((e: { state: string }) => e.state), ['scheduled', 'running', 'succeeded']);
    assert.ok(Date.parse(d.started_at) >= Date.parse(d.run_at));
    await hook.close();
  });

  it('runs the dependency its lead before, and the dependent only after it succeeded', async () => {
    const hook = await startWebhookReceiver();
    const api = await webhookApp(hook);
    const db = await webhookApp(hook);
    const d = await schedule({ app: api.id, dependency: db.id, dependency_lead_seconds: 2, ...utcFields(3500) });
    assert.equal(Date.parse(d.run_at) - Date.parse(d.dependency.run_at), 2000);
    assert.equal(d.dependency.app.id, db.id);
    assert.equal((await final(d.id)).state, 'succeeded');
    const [first, second] = hook.hits;
    assert.equal(first.body.app_id, db.id);
    assert.equal(second.body.app_id, api.id);
    assert.ok(first.at >= Date.parse(d.dependency.run_at));
    assert.ok(second.at >= Date.parse(d.run_at));
    await hook.close();
  });

  it('skips the dependent, never running it, when the dependency fails', async () => {
    const ok = await startWebhookReceiver();
    const broken = await startWebhookReceiver();
    broken.respondWith(400);
    const api = await webhookApp(ok);
    const db = await webhookApp(broken);
    const d = await schedule({ app: api.id, dependency: db.id, dependency_lead_seconds: 1, ...utcFields(2500) });
    const end = await final(d.id);
    assert.equal(end.state, 'skipped');
    assert.match(end.error, /dependency .* failed/);
    assert.equal(end.dependency.state, 'failed');
    assert.match(end.dependency.error, /400/);
    assert.equal(ok.hits.length, 0, 'the dependent never ran');
    assert.equal(end.attempts, 0);
    await ok.close();
    await broken.close();
  });

  it('makes the dependent wait while its dependency is still running at its instant', async () => {
    const hook = await startWebhookReceiver();
    const slow = await startWebhookReceiver();
    slow.delay(2500);
    const api = await webhookApp(hook);
    const db = await webhookApp(slow);
    const d = await schedule({ app: api.id, dependency: db.id, dependency_lead_seconds: 1, ...utcFields(2500) });
    const end = await final(d.id);
    assert.equal(end.state, 'succeeded');
    assert.ok(Date.parse(end.started_at) >= Date.parse(end.dependency.finished_at), 'started after the dependency finished');
    const detail = await get(d.id);
    assert.ok(detail.events.some((e: { message: string }) => /waiting for dependency/.test(e.message ?? '')));
    await hook.close();
    await slow.close();
  });

  it('cancels a deployment and its pending dependency; neither fires', async () => {
    const hook = await startWebhookReceiver();
    const api = await webhookApp(hook);
    const db = await webhookApp(hook);
    const d = await schedule({ app: api.id, dependency: db.id, dependency_lead_seconds: 1, ...utcFields(3000) });
    const r = await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, undefined, s.adminToken);
    assert.equal(r.status, 200);
    assert.equal(r.body.result.state, 'canceled');
    assert.equal(r.body.result.dependency.state, 'canceled');
    const again = await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, undefined, s.adminToken);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'already_final');
    await new Promise((res) => setTimeout(res, 3500));
    assert.equal(hook.hits.length, 0);
    await hook.close();
  });

  it('reschedules a deployment; its dependency moves with it keeping its lead', async () => {
    const hook = await startWebhookReceiver();
    const api = await webhookApp(hook);
    const db = await webhookApp(hook);
    const d = await schedule({ app: api.id, dependency: db.id, dependency_lead_seconds: 1, ...utcFields(60_000) });
    // 8 s ahead: its dependency (1 s earlier) is claimed 1.5 s (the prefetch) before its instant,
    // and the PATCH of the dependency below must come before that even on a loaded machine (at
    // 3 s ahead the claim came first once: 409 firing, not is_dependency).
    const moved = await s.api('PATCH', `/v1/scheduled_deployments/${d.id}`, utcFields(8000), s.adminToken);
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    const m = moved.body.result;
    assert.equal(Date.parse(m.run_at) - Date.parse(m.dependency.run_at), 1000);
    assert.ok(Date.parse(m.run_at) < Date.parse(d.run_at));
    // rescheduling the dependency alone would break the lead
    const dep = await s.api('PATCH', `/v1/scheduled_deployments/${d.dependency.id}`, utcFields(9000), s.adminToken);
    assert.equal(dep.status, 409);
    assert.equal(dep.body.error.code, 'is_dependency');
    const end = await final(d.id);
    assert.equal(end.state, 'succeeded');
    assert.equal(hook.hits.length, 2);
    assert.ok(hook.hits[0].at >= Date.parse(m.dependency.run_at) && hook.hits[1].at >= Date.parse(m.run_at));
    const nope = await s.api('PATCH', `/v1/scheduled_deployments/${d.id}`, utcFields(60_000), s.adminToken);
    assert.equal(nope.status, 409);
    assert.equal(nope.body.error.code, 'not_scheduled');
    await hook.close();
  });

  it('retries 5xx and 429 with backoff and the same Idempotency-Key, then succeeds', async () => {
    const hook = await startWebhookReceiver();
    hook.respondWith(503, 429, 200);
    const app = await webhookApp(hook, {}, { max_attempts: 3, backoff_seconds: 1 });
    const d = await schedule({ app: app.id, ...utcFields(2000) });
    const end = await final(d.id);
    assert.equal(end.state, 'succeeded');
    assert.equal(end.attempts, 3);
    assert.equal(hook.hits.length, 3);
    assert.deepEqual(hook.hits.map((h) => h.body.attempt), [1, 2, 3]);
    assert.ok(hook.hits.every((h) => h.headers['idempotency-key'] === d.id));
    assert.ok(hook.hits[1].at - hook.hits[0].at >= 1000, 'waited the backoff');
    await hook.close();
  });

  it('fails at once on a 4xx other than 429, and gives up after max_attempts', async () => {
    const hook = await startWebhookReceiver();
    hook.respondWith(404);
    const app = await webhookApp(hook, {}, { max_attempts: 3, backoff_seconds: 0 });
    const d = await schedule({ app: app.id, ...utcFields(1500) });
    const end = await final(d.id);
    assert.equal(end.state, 'failed');
    assert.equal(end.attempts, 1);
    assert.match(end.error, /404/);

    const down = await startWebhookReceiver();
    const url = down.url;
    await down.close(); // connection refused: a network error, transient
    const app2 = (await s.api('POST', '/v1/apps', { name: `app-${++n}`, target: { type: 'webhook', url }, retry: { max_attempts: 2, backoff_seconds: 0 } }, s.adminToken)).body;
    const d2 = await schedule({ app: app2.id, ...utcFields(1500) });
    const end2 = await final(d2.id);
    assert.equal(end2.state, 'failed');
    assert.equal(end2.attempts, 2);
    assert.match(end2.error, /ECONNREFUSED.*gave up after 2 attempts/);
    await hook.close();
  });

  it('marks a deployment missed, never run late, when it was not started before its expiry', async () => {
    const hook = await startWebhookReceiver();
    const app = await webhookApp(hook);
    // As if shipclock had been down: the instant and its expiry both passed before any process saw it.
    const me = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body;
    const r = await s.db.pool.query<{ id: string }>(
      `INSERT INTO deployments (team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute, local_second,
          utc_offset, expires_after_seconds, expires_at, due_at)
       VALUES ($1, $2, now() - interval '2 hours', 'UTC', 2026, 1, 1, 0, 0, 0, '+00:00', 3600, now() - interval '1 hour', now() - interval '2 hours')
       RETURNING id`,
      [me.team.id, app.id],
    );
    await s.db.pool.query(`SELECT pg_notify('shipclock_due', '')`);
    const end = await final(r.rows[0].id);
    assert.equal(end.state, 'missed');
    assert.match(end.error, /expires_after_seconds/);
    assert.equal(hook.hits.length, 0);
    await hook.close();
  });

  it('never runs two deployments of one app at once: the later one waits', async () => {
    const hook = await startWebhookReceiver();
    hook.delay(1500);
    const app = await webhookApp(hook);
    const t = utcFields(2000);
    const a = await schedule({ app: app.id, ...t });
    const b = await schedule({ app: app.id, ...t });
    const [ea, eb] = [await final(a.id), await final(b.id)];
    assert.equal(ea.state, 'succeeded');
    assert.equal(eb.state, 'succeeded');
    const [first, second] = [ea, eb].sort((x, y) => Date.parse(x.started_at) - Date.parse(y.started_at));
    assert.ok(Date.parse(second.started_at) >= Date.parse(first.finished_at), 'the second started after the first finished');
    await hook.close();
  });

  it('runs a command with the deployment in its environment, keeps its output, fails on non-zero exit', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-cmd-'));
    const script = path.join(dir, 'deploy.sh');
    fs.writeFileSync(script, '#!/bin/sh\necho "deploying $SHIPCLOCK_APP $SHIPCLOCK_DEPLOYMENT_ID at $SHIPCLOCK_RUN_AT"\necho "secret key: [$SHIPCLOCK_SECRET_KEY] db: [$DATABASE_URL]"\nexit "${1:-0}"\n', { mode: 0o755 });
    const ok = (await s.api('POST', '/v1/apps', { name: `cmd-${++n}`, target: { type: 'command', command: script } }, s.adminToken)).body;
    const bad = (await s.api('POST', '/v1/apps', { name: `cmd-${++n}`, target: { type: 'command', command: script, args: ['3'] } }, s.adminToken)).body;
    const slow = (await s.api('POST', '/v1/apps', { name: `cmd-${++n}`, target: { type: 'command', command: 'sleep', args: ['30'], timeout_seconds: 1 } }, s.adminToken)).body;
    const missing = (await s.api('POST', '/v1/apps', { name: `cmd-${++n}`, target: { type: 'command', command: '/nonexistent/deploy' } }, s.adminToken)).body;
    const d1 = await schedule({ app: ok.id, ...utcFields(1500) });
    const d2 = await schedule({ app: bad.id, ...utcFields(1500) });
    const d3 = await schedule({ app: slow.id, ...utcFields(1500) });
    const d4 = await schedule({ app: missing.id, ...utcFields(1500) });
    const e1 = await final(d1.id);
    assert.equal(e1.state, 'succeeded');
    const log = (await get(d1.id)).log;
    assert.match(log, new RegExp(`deploying ${ok.name} ${d1.id} at ${d1.run_at}`));
    assert.match(log, /secret key: \[\] db: \[\]/, 'shipclock\'s own secrets are not passed to commands');
    const e2 = await final(d2.id);
    assert.equal(e2.state, 'failed');
    assert.match(e2.error, /exited 3/);
    const e3 = await final(d3.id);
    assert.equal(e3.state, 'failed');
    assert.match(e3.error, /did not finish within 1 s/);
    const e4 = await final(d4.id);
    assert.equal(e4.state, 'failed');
    assert.match(e4.error, /command not found/);
  });

  it('streams the team\'s state changes as server-sent events', async () => {
    const hook = await startWebhookReceiver();
    const app = await webhookApp(hook);
    const ctrl = new AbortController();
    const res = await fetch(`${s.url}/v1/events?access_token=${s.adminToken}`, { signal: ctrl.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const seen: Array<{ id: string; state: string }> = [];
    const reader = (async () => {
      const dec = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body! as unknown as AsyncIterable<Uint8Array>) {
        buf += dec.decode(chunk as Uint8Array);
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.includes('event: deployment') && data) seen.push(JSON.parse(data.slice(6)));
        }
      }
    })().catch(() => {});
    const d = await schedule({ app: app.id, ...utcFields(1500) });
    await final(d.id);
    await eventually(async () => seen.filter((e) => e.id === d.id).length >= 3, 5000, 'three events');
    assert.deepEqual(seen.filter((e) => e.id === d.id).map((e) => e.state), ['scheduled', 'running', 'succeeded']);
    assert.equal((await fetch(`${s.url}/v1/events`)).status, 401);
    ctrl.abort();
    await reader;
    await hook.close();
  });
});
