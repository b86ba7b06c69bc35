/**
 * Notifications: the outbox rows written with a final state change, and the notifier that sends
 * them (signature, Slack body, retries with backoff, giving up, several processes at once),
 * against a real PostgreSQL and a real HTTP receiver.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { inTransaction } from '../src/db/pool.ts';
import { enqueueNotifications } from '../src/notifications/enqueue.ts';
import { startNotifier } from '../src/notifications/notifier.ts';
import { insertSubscription, pruneDeliveries } from '../src/db/sql/notifications.ts';
import { SecretBox } from '../src/secrets/box.ts';

let db: TestDatabase;
const box = SecretBox.fromKey(randomBytes(32));
const logger = pino({ level: 'silent' });

interface Received { body: string; headers: http.IncomingHttpHeaders }
let receiver: http.Server;
let receiverUrl: string;
const received = new Map<string, Received[]>();
/** Per path: status codes to answer in turn (then 200). */
const script = new Map<string, number[]>();

before(async () => {
  db = await createTestDatabase();
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.set(path, [...(received.get(path) ?? []), { body, headers: req.headers }]);
      const status = script.get(path)?.shift() ?? 200;
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

after(async () => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
  await db.drop();
});

async function fixture() {
  const team = (await db.pool.query(`INSERT INTO teams (name) VALUES ('t-' || gen_random_uuid()) RETURNING id`)).rows[0].id as string;
  const app = (await db.pool.query(`INSERT INTO apps (team_id, name, target) VALUES ($1, 'api', '{"type":"webhook","url":"http://x"}') RETURNING id`, [team])).rows[0].id as string;
  const dep = (await db.pool.query(
    `INSERT INTO deployments (team_id, app_id, run_at, timezone, local_year, local_month, local_day, local_hour, local_minute, local_second,
                              utc_offset, expires_after_seconds, expires_at)
     VALUES ($1, $2, '2030-01-01T01:00:00Z', 'Europe/Berlin', 2030, 1, 1, 2, 0, 0, '+01:00', 3600, '2030-01-01T02:00:00Z') RETURNING id`,
    [team, app],
  )).rows[0].id as string;
  return { team, app, dep };
}

async function finish(f: { team: string; app: string; dep: string }, state: 'succeeded' | 'failed' | 'canceled' | 'missed', error: string | null = null) {
  await inTransaction(db.pool, async (c) => {
    await c.query(`UPDATE deployments SET state = $2, error = $3, finished_at = now() WHERE id = $1`, [f.dep, state, error]);
    await enqueueNotifications(c, { teamId: f.team, deploymentId: f.dep, appId: f.app, state, error });
  });
}

async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const deliveries = async (dep: string) =>
  (await db.pool.query(`SELECT state, attempts, last_status, last_error, event FROM notification_deliveries WHERE deployment_id = $1 ORDER BY id`, [dep])).rows;

test('a final state queues one delivery per matching subscription, in its transaction', async () => {
  const f = await fixture();
  await insertSubscription(db.pool, { teamId: f.team, url: `${receiverUrl}/a`, events: ['failed'], format: 'json', secret: null, createdBy: null });
  await insertSubscription(db.pool, { teamId: f.team, url: `${receiverUrl}/b`, events: ['failed', 'succeeded'], format: 'slack', secret: null, createdBy: null });
  await insertSubscription(db.pool, { teamId: f.team, url: `${receiverUrl}/c`, events: ['succeeded'], format: 'json', secret: null, createdBy: null });
  const other = await fixture(); // another team's subscription must not fire
  await insertSubscription(db.pool, { teamId: other.team, url: `${receiverUrl}/z`, events: ['failed'], format: 'json', secret: null, createdBy: null });

  // Rolled back with its state change: nothing queued.
  await assert.rejects(inTransaction(db.pool, async (c) => {
    await enqueueNotifications(c, { teamId: f.team, deploymentId: f.dep, appId: f.app, state: 'failed', error: 'boom' });
    throw new Error('rollback');
  }));
  assert.equal((await deliveries(f.dep)).length, 0);

  await finish(f, 'failed', 'boom');
  const rows = await deliveries(f.dep);
  assert.equal(rows.length, 2);
  assert.ok(rows.every((r) => r.state === 'pending' && r.event === 'failed'));

  // canceled is the user's own act: nobody subscribes to it.
  const g = await fixture();
  await insertSubscription(db.pool, { teamId: g.team, url: `${receiverUrl}/g`, events: ['failed', 'succeeded', 'missed', 'skipped'], format: 'json', secret: null, createdBy: null });
  await finish(g, 'canceled');
  assert.equal((await deliveries(g.dep)).length, 0);
});

test('the notifier POSTs a signed JSON body and a Slack body', async () => {
  const f = await fixture();
  const secret = 'whsec-' + randomBytes(8).toString('hex');
  await insertSubscription(db.pool, { teamId: f.team, url: `${receiverUrl}/signed`, events: ['succeeded'], format: 'json', secret: box.seal(secret), createdBy: null });
  await insertSubscription(db.pool, { teamId: f.team, url: `${receiverUrl}/slack`, events: ['succeeded'], format: 'slack', secret: null, createdBy: null });
  await finish(f, 'succeeded');
  const notifier = startNotifier({ pool: db.pool, logger, box, pollIntervalMs: 50 });
  try {
    const [signed] = await waitFor(() => received.get('/signed'));
    const body = JSON.parse(signed.body);
    assert.equal(body.deployment_id, f.dep);
    assert.equal(body.app_name, 'api');
    assert.equal(body.state, 'succeeded');
    assert.equal(body.event, 'deployment.succeeded');
    assert.equal(signed.headers['x-shipclock-signature'], 'sha256=' + createHmac('sha256', secret).update(signed.body).digest('hex'));
    assert.equal(signed.headers['content-type'], 'application/json');

    const [slack] = await waitFor(() => received.get('/slack'));
    const s = JSON.parse(slack.body);
    assert.match(s.text, /Deployment of \*api\* succeeded/);
    assert.ok(Array.isArray(s.blocks));
    assert.equal(slack.headers['x-shipclock-signature'], undefined);
    await waitFor(async () => ((await deliveries(f.dep)).every((r) => r.state === 'delivered') ? true : undefined));
  } finally {
    await notifier.stop();
  }
});

test('failures are retried with backoff, then given up; a 4xx is not retried', async () => {
  const f = await fixture();
  script.set('/flaky', [500, 503]);
  script.set('/down', [500, 500, 500, 500, 500, 500]);
  script.set('/gone', [410]);
  for (const p of ['/flaky', '/down', '/gone']) {
    await insertSubscription(db.pool, { teamId: f.team, url: `${receiverUrl}${p}`, events: ['missed'], format: 'json', secret: null, createdBy: null });
  }
  await finish(f, 'missed', 'not started within 3600 s of its instant');
  const notifier = startNotifier({ pool: db.pool, logger, box, pollIntervalMs: 30, maxAttempts: 3, backoffSeconds: 0.1 });
  try {
    await waitFor(async () => {
      const rows = await deliveries(f.dep);
      return rows.every((r) => r.state !== 'pending') ? rows : undefined;
    });
    assert.equal(received.get('/flaky')?.length, 3);
    assert.equal(received.get('/down')?.length, 3);
    assert.equal(received.get('/gone')?.length, 1);
    const rows = (await db.pool.query(
      `SELECT s.url, d.state, d.attempts, d.last_status FROM notification_deliveries d JOIN notification_subscriptions s ON s.id = d.subscription_id WHERE d.deployment_id = $1`,
      [f.dep],
    )).rows;
    const by = (p: string) => rows.find((r) => r.url.endsWith(p));
    assert.deepEqual({ ...by('/flaky'), url: undefined }, { url: undefined, state: 'delivered', attempts: 3, last_status: 200 });
    assert.deepEqual({ ...by('/down'), url: undefined }, { url: undefined, state: 'failed', attempts: 3, last_status: 500 });
    assert.deepEqual({ ...by('/gone'), url: undefined }, { url: undefined, state: 'failed', attempts: 1, last_status: 410 });
  } finally {
    await notifier.stop();
  }
});

test('an unreachable receiver never throws out of the notifier', async () => {
  const f = await fixture();
  await insertSubscription(db.pool, { teamId: f.team, url: 'http://127.0.0.1:1/nothing-listens', events: ['failed'], format: 'json', secret: null, createdBy: null });
  await finish(f, 'failed', 'x');
  const notifier = startNotifier({ pool: db.pool, logger, box, pollIntervalMs: 30, maxAttempts: 2, backoffSeconds: 0.05 });
  try {
    const rows = await waitFor(async () => {
      const r = await deliveries(f.dep);
      return r[0]?.state === 'failed' ? r : undefined;
    });
    assert.equal(rows[0].attempts, 2);
    assert.match(rows[0].last_error, /ECONNREFUSED|fetch failed/);
  } finally {
    await notifier.stop();
  }
});

test('several notifiers deliver each notification exactly once', async () => {
  const f = await fixture();
  const path = '/many';
  for (let i = 0; i < 30; i++) {
    await insertSubscription(db.pool, { teamId: f.team, url: `${receiverUrl}${path}?n=${i}`, events: ['succeeded'], format: 'json', secret: null, createdBy: null });
  }
  await finish(f, 'succeeded');
  const notifiers = [1, 2, 3].map(() => startNotifier({ pool: db.pool, logger, box, pollIntervalMs: 20, batchSize: 4 }));
  try {
    await waitFor(async () => ((await deliveries(f.dep)).every((r) => r.state === 'delivered') ? true : undefined));
    const got = [...received.entries()].filter(([p]) => p.startsWith(`${path}?`));
    assert.equal(got.length, 30);
    assert.ok(got.every(([, list]) => list.length === 1), 'each delivered once');
  } finally {
    await Promise.all(notifiers.map((n) => n.stop()));
  }
});

test('finished deliveries are pruned after their retention; pending ones never', async () => {
  const f = await fixture();
  await insertSubscription(db.pool, { teamId: f.team, url: `${receiverUrl}/p`, events: ['failed'], format: 'json', secret: null, createdBy: null });
  await finish(f, 'failed', 'x');
  await finish(f, 'failed', 'y'); // a second row for the same deployment
  const ids = (await db.pool.query(`SELECT id FROM notification_deliveries WHERE deployment_id = $1 ORDER BY id`, [f.dep])).rows.map((r) => r.id);
  await db.pool.query(`UPDATE notification_deliveries SET created_at = now() - interval '40 days', state = 'delivered' WHERE id = $1`, [ids[0]]);
  await db.pool.query(`UPDATE notification_deliveries SET created_at = now() - interval '40 days' WHERE id = $1`, [ids[1]]);
  assert.ok((await pruneDeliveries(db.pool, 30)) >= 1);
  assert.deepEqual((await deliveries(f.dep)).map((r) => r.state), ['pending']);
});

test('API: owners manage subscriptions; a failed deployment is delivered, signed, in Slack format', async () => {
  const { startTestServer, utcFields } = await import('./helpers/server.ts');
  const { startWebhookReceiver } = await import('./helpers/fake-webhook.ts');
  const server = await startTestServer({ db: undefined });
  const target = await startWebhookReceiver();
  const slack = await startWebhookReceiver();
  try {
    const t = server.adminToken;
    const me = (await server.api('GET', '/v1/me', undefined, t)).body;
    const viewer = await server.api('POST', `/v1/teams/${me.team.id}/members`, { email: 'viewer@example.com', password: 'viewer-password', role: 'viewer' }, t);
    assert.equal(viewer.status, 201);
    const viewerToken = await server.login('viewer@example.com', 'viewer-password');

    const body = { url: slack.url, events: ['failed', 'missed'], format: 'slack', secret: 'notify-secret' };
    assert.equal((await server.api('POST', '/v1/notifications', body, viewerToken)).status, 403);
    assert.equal((await server.api('GET', '/v1/notifications', undefined, viewerToken)).status, 403);
    const bad = await server.api('POST', '/v1/notifications', { ...body, events: ['exploded'] }, t);
    assert.equal(bad.status, 400);
    assert.ok(bad.body.error.message);
    assert.equal((await server.api('POST', '/v1/notifications', { ...body, url: 'ftp://x' }, t)).status, 400);

    const created = await server.api('POST', '/v1/notifications', body, t);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(Object.keys(created.body).sort(), ['created_at', 'events', 'format', 'has_secret', 'id', 'remind_before_seconds', 'url']);
    assert.equal(created.body.has_secret, true);
    assert.ok(!JSON.stringify(created.body).includes('notify-secret'));
    const extra = await server.api('POST', '/v1/notifications', { url: `${slack.url}/2`, events: ['succeeded'] }, t);
    assert.equal(extra.body.format, 'json');

    const page1 = await server.api('GET', '/v1/notifications?limit=1', undefined, t);
    assert.equal(page1.body.result.length, 1);
    assert.ok(page1.body.next_cursor);
    const page2 = await server.api('GET', `/v1/notifications?limit=1&cursor=${page1.body.next_cursor}`, undefined, t);
    assert.equal(page2.body.result.length, 1);
    assert.equal(page2.body.next_cursor, null);
    assert.notEqual(page1.body.result[0].id, page2.body.result[0].id);
    assert.ok(!JSON.stringify([page1.body, page2.body]).includes('notify-secret'));

    // PATCH changes what it is given and nothing else; the secret stays write-only.
    const id = extra.body.id;
    assert.equal((await server.api('PATCH', `/v1/notifications/${id}`, { events: ['failed'] }, viewerToken)).status, 403);
    const empty = await server.api('PATCH', `/v1/notifications/${id}`, {}, t);
    assert.equal(empty.status, 400, JSON.stringify(empty.body));
    assert.equal((await server.api('PATCH', `/v1/notifications/${id}`, { colour: 'red' }, t)).status, 400);
    assert.equal((await server.api('PATCH', `/v1/notifications/${id}`, { url: 'ftp://x' }, t)).status, 400);
    const changed = await server.api('PATCH', `/v1/notifications/${id}`, { events: ['failed', 'skipped'], format: 'slack' }, t);
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual([changed.body.url, changed.body.events, changed.body.format, changed.body.has_secret], [`${slack.url}/2`, ['failed', 'skipped'], 'slack', false]);
    const signed = await server.api('PATCH', `/v1/notifications/${id}`, { secret: 'patched-secret' }, t);
    assert.equal(signed.body.has_secret, true);
    assert.ok(!JSON.stringify(signed.body).includes('patched-secret'));
    const unsigned = await server.api('PATCH', `/v1/notifications/${id}`, { secret: null }, t);
    assert.equal(unsigned.body.has_secret, false);
    assert.deepEqual(unsigned.body.events, ['failed', 'skipped'], 'what was not given is kept');
    assert.equal((await server.api('PATCH', '/v1/notifications/00000000-0000-4000-8000-000000000000', { format: 'json' }, t)).status, 404);
    const audit = await server.api('GET', `/v1/audit?action=notification.update&target_id=${id}`, undefined, t);
    assert.equal(audit.body.result.length, 3);
    assert.ok(!JSON.stringify(audit.body).includes('patched-secret'));

    assert.equal((await server.api('DELETE', `/v1/notifications/${extra.body.id}`, undefined, t)).status, 204);
    assert.equal((await server.api('DELETE', `/v1/notifications/${extra.body.id}`, undefined, t)).status, 404);

    // A deployment that fails: its notification arrives, signed, as a Slack message.
    target.respondWith(500);
    const app = await server.api('POST', '/v1/apps', { name: 'payments', target: { type: 'webhook', url: target.url }, retry: { max_attempts: 1 } }, t);
    assert.equal(app.status, 201);
    const dep = await server.api('POST', '/v1/scheduled_deployments', { app: app.body.id, ...utcFields(1000) }, t);
    assert.equal(dep.status, 201, JSON.stringify(dep.body));
    const hit = await waitFor(() => slack.hits.find((h) => h.path === '/hook'), 15_000);
    assert.match(hit.body.text, /payments\* failed/);
    assert.equal(hit.headers['x-shipclock-signature'], 'sha256=' + createHmac('sha256', 'notify-secret').update(hit.raw).digest('hex'));
    const final = await server.api('GET', `/v1/scheduled_deployments/${dep.body.result.id}`, undefined, t);
    assert.equal(final.body.result.state, 'failed');
  } finally {
    await target.close();
    await slack.close();
    await server.stop();
  }
});

test('a receiver that never answers does not hold up deployments', async () => {
  const { startTestServer, utcFields } = await import('./helpers/server.ts');
  const { startWebhookReceiver } = await import('./helpers/fake-webhook.ts');
  const server = await startTestServer();
  const target = await startWebhookReceiver();
  const slow = await startWebhookReceiver();
  slow.delay(60_000);
  try {
    const t = server.adminToken;
    await server.api('POST', '/v1/notifications', { url: slow.url, events: ['succeeded'] }, t);
    const app = await server.api('POST', '/v1/apps', { name: 'web', target: { type: 'webhook', url: target.url } }, t);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await server.api('POST', '/v1/scheduled_deployments', { app: app.body.id, ...utcFields(1000 + i * 700) }, t)).body.result.id);
    }
    await waitFor(async () => {
      const states = await Promise.all(ids.map(async (id) => (await server.api('GET', `/v1/scheduled_deployments/${id}`, undefined, t)).body.result.state));
      return states.every((s) => s === 'succeeded') ? true : undefined;
    }, 15_000);
  } finally {
    slow.delay(0);
    await target.close();
    await slow.close();
    await server.stop();
  }
});

test('many final states in one call queue each team\'s matching deliveries in one statement', async () => {
  const a = await fixture();
  const b = await fixture();
  await insertSubscription(db.pool, { teamId: a.team, url: `${receiverUrl}/batch-a`, events: ['failed', 'succeeded'], format: 'json', secret: null, createdBy: null });
  await insertSubscription(db.pool, { teamId: b.team, url: `${receiverUrl}/batch-b`, events: ['missed'], format: 'json', secret: null, createdBy: null });
  await inTransaction(db.pool, (c) => enqueueNotifications(c, [
    { teamId: a.team, deploymentId: a.dep, appId: a.app, state: 'failed', error: 'boom' },
    { teamId: b.team, deploymentId: b.dep, appId: b.app, state: 'succeeded', error: null }, // b does not subscribe to succeeded
    { teamId: b.team, deploymentId: b.dep, appId: b.app, state: 'canceled', error: null }, // never an event
  ]));
  assert.deepEqual((await deliveries(a.dep)).map((r) => r.event), ['failed']);
  assert.equal((await deliveries(b.dep)).length, 0);
  await inTransaction(db.pool, (c) => enqueueNotifications(c, []));
});
