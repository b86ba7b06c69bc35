/**
 * The approve link of a reminder with the real approvals (issue 12): offered while an approval is
 * pending, GET approves nothing, POST approves as the subscription's owner, marked as given
 * through a reminder link.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { eventually, startTestServer, type TestServer, utcFields } from './helpers/server.ts';

describe('reminder approve link with real approvals', () => {
  let s: TestServer;
  let hook: WebhookReceiver;
  const PUBLIC = 'https://shipclock.example.com';
  before(async () => {
    s = await startTestServer({ env: { SHIPCLOCK_PUBLIC_URL: PUBLIC } });
    hook = await startWebhookReceiver();
  });
  after(async () => { await hook.close(); await s.stop(); });

  it('approves through the link as the subscription owner', async () => {
    const me = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body;
    const m = await s.api('POST', `/v1/teams/${me.team.id}/members`, { email: 'dev@example.com', password: 'dev-password-123456', role: 'deployer' }, s.adminToken);
    assert.equal(m.status, 201, JSON.stringify(m.body));
    const dev = await s.login('dev@example.com', 'dev-password-123456');
    const app = (await s.api('POST', '/v1/apps', { name: 'gated', target: { type: 'webhook', url: `${hook.url}/deploy` } }, s.adminToken)).body;
    const p = await s.api('PATCH', `/v1/apps/${app.id}`, { approval: { required: 1 } }, s.adminToken);
    assert.equal(p.status, 200, JSON.stringify(p.body));
    await s.api('POST', '/v1/notifications', { url: `${hook.url}/remind`, events: ['failed'], remind_before_seconds: 7200 }, s.adminToken);
    const d = (await s.api('POST', '/v1/scheduled_deployments', { app: app.id, ...utcFields(3600_000) }, dev)).body.result;
    assert.equal(d.approval.status, 'pending');
    const r = (await eventually(async () => hook.hits.find((h) => h.path === '/hook/remind' && h.body.deployment_id === d.id), 20_000, 'reminder')).body;
    assert.ok(r.links.approve, JSON.stringify(Object.keys(r.links)));
    const url = r.links.approve.url.replace(PUBLIC, s.url);
    assert.equal((await fetch(url)).status, 200);
    assert.equal((await s.api('GET', `/v1/scheduled_deployments/${d.id}`, undefined, s.adminToken)).body.result.approval.status, 'pending', 'GET approves nothing');
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const after = (await s.api('GET', `/v1/scheduled_deployments/${d.id}`, undefined, s.adminToken)).body.result;
    assert.equal(after.approval.status, 'approved');
    assert.equal(after.approval.approvals[0].user.email, s.adminEmail);
    assert.equal(after.approval.approvals[0].via, 'reminder link');
  });
});
