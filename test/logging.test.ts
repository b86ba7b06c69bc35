import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger, redactSecrets } from '../src/observability/logger.ts';
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

describe('redaction of logged objects (redactSecrets, every line and every child logger)', () => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _e, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  const log = createLogger('info', sink);

  it('censors secret keys in any case, six levels down, in arrays, in errors and in child bindings, and changes nothing it was given', () => {
    lines.length = 0;
    const given = {
      Authorization: 'Bearer a-secret-1',
      app: { target: { url: 'https://x', secret: 'a-secret-2' } },
      deep: { a: { b: { c: { d: { token: 'a-secret-3' } } } } },
      list: [{ password: 'a-secret-4' }, 'plain'],
      err: Object.assign(new Error('boom'), { api_key: 'a-secret-5' }),
      state: 'succeeded',
    };
    const before = JSON.stringify(given);
    log.child({ component: 'x', credentials: { secret_access_key: 'a-secret-6' } }).info(given, 'line');
    assert.equal(JSON.stringify(given), before, 'the logged object is not changed');
    assert.equal(given.err.api_key, 'a-secret-5');
    const text = JSON.stringify(lines);
    for (let i = 1; i <= 6; i++) assert.ok(!text.includes(`a-secret-${i}`), `a-secret-${i} in ${text}`);
    const [line] = lines;
    assert.equal(line.Authorization, '[redacted]');
    assert.deepEqual(line.app, { target: { url: 'https://x', secret: '[redacted]' } });
    assert.deepEqual(line.list, [{ password: '[redacted]' }, 'plain']);
    assert.equal((line.err as Record<string, unknown>).message, 'boom');
    assert.equal(line.state, 'succeeded');
    assert.deepEqual(line.credentials, { secret_access_key: '[redacted]' });
  });

  it('returns an object without secrets as it is (no copy)', () => {
    const o = { deployment_id: 'd', app: 'a', nested: { state: 'running', list: [1, 2] } };
    assert.equal(redactSecrets(o), o);
  });
});
