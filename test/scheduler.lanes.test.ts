/**
 * A burst's webhooks to one receiver go lane by lane: at most twice the connection cap in flight
 * (running or queued in the pool) at once, the next one made as one is answered — so 50,000 due at
 * once are never all queued in memory — and still each exactly once, never early.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { webhookPoolStats } from '../src/providers/webhook.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { eventually, startTestServer, type TestServer, utcFields } from './helpers/server.ts';

let s: TestServer;
let hook: WebhookReceiver;

before(async () => {
  // Two connections per origin: a lane is four calls wide.
  s = await startTestServer({ env: { SHIPCLOCK_WEBHOOK_CONNECTIONS: '2' } });
  hook = await startWebhookReceiver();
  hook.delay(20);
});
after(async () => {
  await hook.close();
  await s.stop();
});

test('a burst to one receiver keeps at most twice the connection cap in flight, and fires every call once', async () => {
  const n = 40;
  const fields = utcFields(3000);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const app = await s.api('POST', '/v1/apps', { name: `lane-${i}`, target: { type: 'webhook', url: hook.url } }, s.adminToken);
    assert.equal(app.status, 201, JSON.stringify(app.body));
    const d = await s.api('POST', '/v1/scheduled_deployments', { app: app.body.id, ...fields }, s.adminToken);
    assert.equal(d.status, 201, JSON.stringify(d.body));
    ids.push(d.body.result.id);
  }
  const origin = new URL(hook.url).origin;
  let maxPending = 0;
  const sampler = setInterval(() => {
    maxPending = Math.max(maxPending, webhookPoolStats()[origin]?.pending ?? 0);
  }, 1);
  try {
    await eventually(async () => hook.hits.length >= n, 30_000, 'every webhook to arrive');
  } finally {
    clearInterval(sampler);
  }
  assert.ok(maxPending > 0, 'the sampler saw the burst');
  assert.ok(maxPending <= 4, `at most 4 calls in the pool at once (2 connections × 2), saw ${maxPending}`);
  const runAt = Date.parse(`${fields.year}-${String(fields.month).padStart(2, '0')}-${String(fields.day).padStart(2, '0')}T${String(fields.hour).padStart(2, '0')}:${String(fields.minute).padStart(2, '0')}:${String(fields.second).padStart(2, '0')}Z`);
  const per = new Map<string, number>();
  for (const h of hook.hits) per.set(h.body.deployment_id, (per.get(h.body.deployment_id) ?? 0) + 1);
  assert.deepEqual([...per.values()].filter((c) => c !== 1), [], 'each exactly once');
  assert.deepEqual(new Set(per.keys()), new Set(ids));
  for (const h of hook.hits) assert.ok(h.at >= runAt, 'never early');
  for (const id of ids) {
    await eventually(async () => (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result.state === 'succeeded', 15_000, `${id} to succeed`);
  }
});
