import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/observability/logger.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { eventually, startTestServer, type TestServer, utcFields } from './helpers/server.ts';

describe('structured logs of a deployment', () => {
  let s: TestServer;
  let hook: WebhookReceiver;
  let out = '';
  before(async () => {
    const sink = new Writable({ write(chunk, _e, cb) { out += chunk; cb(); } });
    s = await startTestServer({ logger: createLogger('info', sink), env: { LOG_LEVEL: 'info' } });
    hook = await startWebhookReceiver();
  });
  after(async () => {
    await hook.close();
    await s.stop();
  });

  it('logs each outcome as JSON with deployment_id, app and team, and never the webhook secret', async () => {
    hook.respondWith(503, 200);
    const app = (await s.api('POST', '/v1/apps', { name: 'logged', target: { type: 'webhook', url: hook.url, secret: 'never-log-this-secret' }, retry: { max_attempts: 2, backoff_seconds: 0 } }, s.adminToken)).body;
    const d = (await s.api('POST', '/v1/scheduled_deployments', { app: app.id, ...utcFields(1500) }, s.adminToken)).body.result;
    const me = (await s.api('GET', '/v1/me', undefined, s.adminToken)).body;
    const lines = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = await eventually(async () => lines().find((l) => l.deployment_id === d.id && l.msg === 'deployment succeeded'), 20_000, 'the success line');
    assert.equal(done.app, 'logged');
    assert.equal(done.team, me.team.id);
    assert.equal(done.state, 'succeeded');
    const retry = lines().find((l) => l.deployment_id === d.id && l.msg === 'attempt failed; retrying');
    assert.ok(retry, 'the retry is logged too');
    assert.match(String(retry.error), /503/);
    assert.ok(!out.includes('never-log-this-secret'));
  });
});
