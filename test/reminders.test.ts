/**
 * Reminders (issue 12) on real PostgreSQL: the subscription's lead, one reminder per
 * (subscription, deployment, instant) across three real processes at its lead (judged by the
 * instants the database recorded), none for a canceled or a rescheduled instant; and the signed
 * links: GET changes nothing, POST postpones the chain once, replayed/expired/tampered tokens are
 * refused, and no token or secret reaches the logs.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { LinkSigner } from '../src/notifications/links.ts';
import { renderBody } from '../src/notifications/notifier.ts';
import { createLogger } from '../src/observability/logger.ts';
import { SecretBox, parseKey } from '../src/secrets/box.ts';
import { setReminderSeams } from '../src/services/reminder-seams.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { type Proc, spawnShipclock } from './helpers/processes.ts';
import { eventually, startTestServer, TEST_SECRET_KEY, testEnv, type TestServer, utcFields } from './helpers/server.ts';

async function api(url: string, method: string, p: string, body?: unknown, token?: string) {
  const res = await fetch(url + p, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as any };
}

const LEAD = 60;

describe('reminders across three processes', () => {
  let db: TestDatabase;
  let hook: WebhookReceiver;
  const procs: Proc[] = [];

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    hook = await startWebhookReceiver();
    // No SHIPCLOCK_PUBLIC_URL: reminders carry no links and say why.
    const env = testEnv(db.url, { LOG_LEVEL: 'info' });
    procs.push(await spawnShipclock('serve', env));
    procs.push(...await Promise.all([spawnShipclock('worker', env), spawnShipclock('worker', env)]));
  });
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await hook.close();
    await db.drop();
  });

  it('takes remind_before_seconds within 60 s to 7 days (422 naming it otherwise), and changes it with PATCH', async () => {
    const url = procs[0].url;
    const token = (await api(url, 'POST', '/v1/auth/login', { email: 'admin@example.com', password: 'admin-password-1' })).body.access_token;
    for (const bad of [59, 604_801, 0]) {
      const r = await api(url, 'POST', '/v1/notifications', { url: hook.url, events: ['failed'], remind_before_seconds: bad }, token);
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.error.field, 'remind_before_seconds');
      assert.match(r.body.error.message, /60.*604800/);
    }
    assert.equal((await api(url, 'POST', '/v1/notifications', { url: hook.url, events: ['failed'], remind_before_seconds: 1.5 }, token)).status, 400);
    assert.equal((await db.pool.query('SELECT count(*)::int AS n FROM notification_subscriptions')).rows[0].n, 0, 'nothing stored on bad input');
    const made = await api(url, 'POST', '/v1/notifications', { url: hook.url, events: ['failed'], remind_before_seconds: 900 }, token);
    assert.equal(made.status, 201);
    assert.equal(made.body.remind_before_seconds, 900);
    const off = await api(url, 'PATCH', `/v1/notifications/${made.body.id}`, { remind_before_seconds: null }, token);
    assert.equal(off.body.remind_before_seconds, null);
    assert.equal((await api(url, 'PATCH', `/v1/notifications/${made.body.id}`, { remind_before_seconds: 10 }, token)).status, 422);
    const plain = await api(url, 'POST', '/v1/notifications', { url: hook.url, events: ['failed'] }, token);
    assert.equal(plain.body.remind_before_seconds, null, 'no reminders unless asked');
    await api(url, 'DELETE', `/v1/notifications/${made.body.id}`, undefined, token);
    await api(url, 'DELETE', `/v1/notifications/${plain.body.id}`, undefined, token);
  });

  it('delivers each reminder once at its lead (±1 s), none for a canceled one, and one at the new lead for a rescheduled one', async (t) => {
    const url = procs[0].url;
    const token = (await api(url, 'POST', '/v1/auth/login', { email: 'admin@example.com', password: 'admin-password-1' })).body.access_token;
    const sub = (await api(url, 'POST', '/v1/notifications', { url: `${hook.url}/remind`, events: ['failed'], remind_before_seconds: LEAD }, token)).body;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const app = (await api(url, 'POST', '/v1/apps', { name: `remind-${i}`, target: { type: 'webhook', url: `${hook.url}/deploy` } }, token)).body;
      // Reminders due 10–12 s from now, a few at the same instant.
      const d = await api(url, 'POST', '/v1/scheduled_deployments', { app: app.id, ...utcFields((LEAD + 10 + (i % 3)) * 1000) }, token);
      assert.equal(d.status, 201, JSON.stringify(d.body));
      ids.push(d.body.result.id);
    }
    const [canceled, moved] = ids.slice(4);
    assert.equal((await api(url, 'POST', `/v1/scheduled_deployments/${canceled}/cancel`, undefined, token)).status, 200);
    const movedTo = utcFields((LEAD + 18) * 1000);
    assert.equal((await api(url, 'PATCH', `/v1/scheduled_deployments/${moved}`, movedTo, token)).status, 200);

    const live = ids.filter((x) => x !== canceled);
    await eventually(async () => {
      const r = await db.pool.query('SELECT count(*)::int AS n FROM notification_deliveries WHERE event = $1 AND state = $2', ['reminder', 'delivered']);
      return r.rows[0].n >= live.length;
    }, 60_000, 'every reminder delivered');
    // Let any duplicate that a race could produce show up, then count.
    await new Promise((r) => setTimeout(r, 3000));
    const rows = (await db.pool.query<{ deployment_id: string; run_at: Date; remind_at: Date; queued_at: Date; d_run_at: Date }>(
      `SELECT r.deployment_id, r.run_at, r.remind_at, r.queued_at, d.run_at AS d_run_at
         FROM deployment_reminders r JOIN deployments d ON d.id = r.deployment_id`,
    )).rows;
    assert.deepEqual(rows.map((r) => r.deployment_id).sort(), [...live].sort(), 'one reminder per deployment, none for the canceled one');
    for (const r of rows) {
      assert.equal(r.run_at.getTime(), r.d_run_at.getTime(), 'for the instant it has now (the rescheduled one at its new instant)');
      assert.equal(r.remind_at.getTime(), r.run_at.getTime() - LEAD * 1000);
      const late = r.queued_at.getTime() - r.remind_at.getTime();
      assert.ok(Math.abs(late) <= 1000, `queued ${late} ms from its moment`);
    }
    const lates = rows.map((r) => r.queued_at.getTime() - r.remind_at.getTime());
    t.diagnostic(`reminders queued ${Math.min(...lates)}..${Math.max(...lates)} ms after their moment (database clock), ${rows.length} across 3 processes`);
    const hits = hook.hits.filter((h) => h.path === '/hook/remind');
    assert.equal(hits.length, live.length, 'each delivered once');
    assert.deepEqual(hits.map((h) => h.body.deployment_id).sort(), [...live].sort());
    for (const h of hits) {
      assert.equal(h.headers['x-shipclock-event'], 'deployment.reminder');
      assert.equal(h.body.event, 'deployment.reminder');
      assert.equal(h.body.remind_before_seconds, LEAD);
      assert.equal(h.body.links, null);
      assert.match(h.body.links_unavailable, /SHIPCLOCK_PUBLIC_URL is not set/);
    }
    await api(url, 'DELETE', `/v1/notifications/${sub.id}`, undefined, token);
  });

  it('reminds at once a deployment scheduled with less than the lead left', async () => {
    const url = procs[0].url;
    const token = (await api(url, 'POST', '/v1/auth/login', { email: 'admin@example.com', password: 'admin-password-1' })).body.access_token;
    const sub = (await api(url, 'POST', '/v1/notifications', { url: `${hook.url}/late`, events: ['failed'], remind_before_seconds: 3600 }, token)).body;
    const app = (await api(url, 'POST', '/v1/apps', { name: 'short-notice', target: { type: 'webhook', url: `${hook.url}/deploy` } }, token)).body;
    const d = (await api(url, 'POST', '/v1/scheduled_deployments', { app: app.id, ...utcFields(600_000) }, token)).body.result;
    const hit = await eventually(async () => hook.hits.find((h) => h.path === '/hook/late' && h.body.deployment_id === d.id), 30_000, 'the late reminder');
    assert.equal(hit.body.remind_at, new Date(Date.parse(d.run_at) - 3600_000).toISOString());
    const r = (await db.pool.query('SELECT r.queued_at, d.created_at FROM deployment_reminders r JOIN deployments d ON d.id = r.deployment_id WHERE r.deployment_id = $1', [d.id])).rows;
    assert.equal(r.length, 1);
    assert.ok(r[0].queued_at.getTime() - r[0].created_at.getTime() < 10_000, 'queued within seconds of scheduling, not never');
    await api(url, 'DELETE', `/v1/notifications/${sub.id}`, undefined, token);
    for (const p of procs) assert.ok(!p.output().includes('/r/'), 'no link in any log');
  });
});

describe('reminder links', () => {
  let s: TestServer;
  let hook: WebhookReceiver;
  let out = '';
  const PUBLIC = 'https://shipclock.example.com';
  let sub: any;
  let web: any;
  let dbApp: any;
  let reminder: any;
  const local = (u: string) => u.replace(PUBLIC, s.url);
  const get = async (u: string) => { const r = await fetch(local(u)); return { status: r.status, text: await r.text(), headers: r.headers }; };
  const post = async (u: string) => {
    const r = await fetch(local(u), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    return { status: r.status, text: await r.text() };
  };

  before(async () => {
    const sink = new Writable({ write(chunk, _e, cb) { out += chunk; cb(); } });
    s = await startTestServer({ logger: createLogger('debug', sink), env: { LOG_LEVEL: 'debug', SHIPCLOCK_PUBLIC_URL: PUBLIC } });
    hook = await startWebhookReceiver();
    web = (await s.api('POST', '/v1/apps', { name: 'web', target: { type: 'webhook', url: `${hook.url}/deploy` } }, s.adminToken)).body;
    dbApp = (await s.api('POST', '/v1/apps', { name: 'db', target: { type: 'webhook', url: `${hook.url}/deploy` } }, s.adminToken)).body;
    sub = (await s.api('POST', '/v1/notifications', { url: `${hook.url}/remind`, events: ['failed'], remind_before_seconds: 4 * 3600 }, s.adminToken)).body;
  });
  after(async () => {
    await hook.close();
    await s.stop();
  });

  it('a reminder of a chain carries postpone links (no approve or freeze link without those features)', async () => {
    const d = await s.api('POST', '/v1/scheduled_deployments', { app: web.id, dependency: dbApp.id, dependency_lead_seconds: 600, ...utcFields(2 * 3600_000) }, s.adminToken);
    assert.equal(d.status, 201);
    reminder = (await eventually(async () => hook.hits.find((h) => h.path === '/hook/remind'), 20_000, 'the reminder')).body;
    assert.equal(reminder.deployment_id, d.body.result.id);
    assert.equal(reminder.dependency.app_name, 'db');
    assert.deepEqual(Object.keys(reminder.links).sort(), ['postpone_15m', 'postpone_1h']);
    assert.ok(reminder.links.postpone_15m.url.startsWith(`${PUBLIC}/r/v1.`));
    assert.equal(reminder.links_expire_at, reminder.dependency.run_at, 'links expire when the chain starts');
  });

  it('GET shows a confirmation page and changes nothing, however often', async () => {
    const before = (await s.db.pool.query('SELECT id, run_at, updated_at FROM deployments ORDER BY id')).rows;
    const audits = (await s.db.pool.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n;
    for (let i = 0; i < 3; i++) {
      const r = await get(reminder.links.postpone_15m.url);
      assert.equal(r.status, 200);
      assert.match(r.text, /Postpone 15 minutes\?/);
      assert.match(r.text, /<form method="post">/);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    }
    assert.deepEqual((await s.db.pool.query('SELECT id, run_at, updated_at FROM deployments ORDER BY id')).rows, before);
    assert.equal((await s.db.pool.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n, audits);
    assert.equal((await s.db.pool.query('SELECT count(*)::int AS n FROM reminder_link_uses')).rows[0].n, 0);
  });

  it('POST postpones the chain by 15 minutes, as the subscription owner, audited and on the timeline', async () => {
    const id = reminder.deployment_id;
    const before = (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
    const r = await post(reminder.links.postpone_15m.url);
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /Postponed/);
    const after = (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
    assert.equal(Date.parse(after.run_at) - Date.parse(before.run_at), 900_000);
    assert.equal(Date.parse(after.dependency.run_at) - Date.parse(before.dependency.run_at), 900_000, 'the dependency moves with it');
    assert.equal(Date.parse(after.run_at) - Date.parse(after.dependency.run_at), 600_000, 'keeping its lead');
    const audit = (await s.db.pool.query(`SELECT a.details, u.email FROM audit_log a JOIN users u ON u.id = a.actor_id WHERE a.action = 'deployment.reschedule' AND a.target_id = $1`, [id])).rows;
    assert.equal(audit.length, 1);
    assert.equal(audit[0].email, s.adminEmail);
    assert.equal(audit[0].details.via, 'reminder_link');
    assert.equal(audit[0].details.action, 'postpone_15m');
    assert.equal(audit[0].details.subscription_id, sub.id);
    const shown = (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
    assert.ok(shown.events.some((e: any) => /postpone 15 minutes through a reminder link, as admin@example.com/.test(e.message)), JSON.stringify(shown.events));
    // Its new instant is a new reminder (the lead is 4 h, so at once), with fresh links.
    const second = (await eventually(async () => hook.hits.find((h) => h.path === '/hook/remind' && h.body.run_at === after.run_at), 20_000, 'the reminder for the new instant')).body;
    assert.notEqual(second.links.postpone_15m.url, reminder.links.postpone_15m.url);
  });

  it('refuses a replayed link, another link of the same reminder, and a link whose deployment moved', async () => {
    const again = await post(reminder.links.postpone_15m.url);
    assert.equal(again.status, 410);
    assert.match(again.text, /already used/);
    const sibling = await get(reminder.links.postpone_1h.url);
    assert.equal(sibling.status, 410, 'one decision per reminder');
    assert.equal((await post(reminder.links.postpone_1h.url)).status, 410);
    const runAt = (await s.api('GET', `/v1/scheduled_deployments/${reminder.deployment_id}`, undefined, s.adminToken)).body.result.run_at;
    assert.equal(Date.parse(runAt) - Date.parse(reminder.run_at), 900_000, 'postponed once only');
  });

  it('refuses tampered and expired tokens and changes nothing', async () => {
    const url: string = reminder.links.postpone_1h.url;
    const token = url.split('/r/')[1];
    const [v, payload, mac] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, a: 'postpone_15m', n: 'fresh-nonce' })).toString('base64url');
    const macFlip = mac.slice(0, -2) + (mac.at(-2) === 'A' ? 'B' : 'A') + mac.at(-1);
    for (const bad of [`${v}.${forged}.${mac}`, `${v}.${payload}.${macFlip}`, 'v1.garbage', 'x']) {
      for (const r of [await get(`${PUBLIC}/r/${bad}`), await post(`${PUBLIC}/r/${bad}`)]) {
        assert.equal(r.status, 400, bad);
        assert.match(r.text, /This link is not valid/);
      }
    }
    // Signed with another key: refused too.
    const other = new LinkSigner(SecretBox.fromKey(Buffer.alloc(32, 9)));
    const now = Date.now();
    const foreign = other.sign({ ...fields(claims), nonce: 'n1', expiresAtMs: now + 3600_000 });
    assert.equal((await post(`${PUBLIC}/r/${foreign}`)).status, 400);
    // Our key, but expired.
    const ours = new LinkSigner(SecretBox.fromKey(parseKey(TEST_SECRET_KEY)));
    const current = (await s.api('GET', `/v1/scheduled_deployments/${reminder.deployment_id}`, undefined, s.adminToken)).body.result;
    const expired = ours.sign({ ...fields(claims), runAtMs: Date.parse(current.run_at), nonce: 'n2', expiresAtMs: now - 1000 });
    const g = await get(`${PUBLIC}/r/${expired}`);
    assert.equal(g.status, 410);
    assert.match(g.text, /expired/);
    assert.equal((await post(`${PUBLIC}/r/${expired}`)).status, 410);
    const still = (await s.api('GET', `/v1/scheduled_deployments/${reminder.deployment_id}`, undefined, s.adminToken)).body.result;
    assert.equal(still.run_at, current.run_at);
    assert.deepEqual((await s.db.pool.query('SELECT nonce FROM reminder_link_uses')).rows.map((r) => r.nonce), [claims.n], 'only the one link that acted spent its nonce');
    // The same token, unexpired, acts: the refusals above were about the token, not the deployment.
    const fine = ours.sign({ ...fields(claims), runAtMs: Date.parse(current.run_at), nonce: 'n3', expiresAtMs: now + 600_000 });
    assert.equal((await post(`${PUBLIC}/r/${fine}`)).status, 200);
  });

  it('through the seams (approvals, freezes), a reminder carries approve and next-allowed links that act', async () => {
    const approved: Array<{ id: string; actor: string; comment: string }> = [];
    const pending = new Set<string>();
    setReminderSeams({
      approvalPending: async (_db, id) => pending.has(id),
      approve: async (_db, actor, id, comment) => { approved.push({ id, actor: actor.email, comment }); pending.delete(id); },
      nextAllowedAt: async (_db, _team, appIds, from) => (appIds.includes(web.id) ? new Date(from.getTime() + 2 * 3600_000) : from),
    });
    try {
      const a = (await s.api('POST', '/v1/scheduled_deployments', { app: web.id, ...utcFields(3 * 3600_000) }, s.adminToken)).body.result;
      pending.add(a.id);
      await s.db.pool.query(`SELECT pg_notify('shipclock_due', '')`);
      const ra = (await eventually(async () => hook.hits.find((h) => h.path === '/hook/remind' && h.body.deployment_id === a.id), 20_000, 'the reminder with links')).body;
      assert.deepEqual(Object.keys(ra.links).sort(), ['approve', 'postpone_15m', 'postpone_1h', 'postpone_next_allowed']);
      assert.equal(ra.next_allowed_at, new Date(Date.parse(a.run_at) + 2 * 3600_000).toISOString());
      const page = await get(ra.links.approve.url);
      assert.match(page.text, /Approve\?/);
      assert.equal(approved.length, 0, 'GET approves nothing');
      const done = await post(ra.links.approve.url);
      assert.equal(done.status, 200, done.text);
      assert.deepEqual(approved, [{ id: a.id, actor: s.adminEmail, comment: 'approved through a reminder link' }]);
      assert.equal((await post(ra.links.postpone_next_allowed.url)).status, 410, 'the reminder acted once');

      const b = (await s.api('POST', '/v1/scheduled_deployments', { app: web.id, ...utcFields(3 * 3600_000 + 60_000) }, s.adminToken)).body.result;
      const rb = (await eventually(async () => hook.hits.find((h) => h.path === '/hook/remind' && h.body.deployment_id === b.id), 20_000, 'the second reminder')).body;
      assert.equal(rb.links.approve, undefined, 'no approve link when none is pending');
      const moved = await post(rb.links.postpone_next_allowed.url);
      assert.equal(moved.status, 200, moved.text);
      const now = (await s.api('GET', `/v1/scheduled_deployments/${b.id}`, undefined, s.adminToken)).body.result;
      assert.equal(Date.parse(now.run_at) - Date.parse(b.run_at), 2 * 3600_000);
    } finally {
      setReminderSeams({});
    }
  });

  it('writes no token, nonce or secret to the logs', async () => {
    assert.ok(out.includes('reminder queued'), 'the reminders were logged');
    assert.ok(out.includes('reminder link used'));
    const tokens = hook.hits.filter((h) => h.path === '/hook/remind').flatMap((h) => Object.values(h.body.links ?? {}).map((l: any) => l.url.split('/r/')[1]));
    assert.ok(tokens.length >= 4);
    for (const t of tokens) {
      for (const part of t.split('.').slice(1)) assert.ok(!out.includes(part), 'a token part is in the log');
    }
    assert.ok(!out.includes('/r/v1.'));
    assert.ok(!out.includes(TEST_SECRET_KEY));
  });

  it('the Slack format shows the links as Block Kit URL buttons', () => {
    const body = JSON.parse(renderBody('slack', reminder));
    assert.match(body.text, /Reminder: \*web\* deploys at/);
    const actions = body.blocks.find((b: any) => b.type === 'actions');
    assert.deepEqual(actions.elements.map((e: any) => [e.type, e.text.text, e.url]), [
      ['button', 'Postpone 15 minutes', reminder.links.postpone_15m.url],
      ['button', 'Postpone 1 hour', reminder.links.postpone_1h.url],
    ]);
    const none = JSON.parse(renderBody('slack', { ...reminder, links: null, links_unavailable: 'SHIPCLOCK_PUBLIC_URL is not set' }));
    assert.equal(none.blocks.find((b: any) => b.type === 'actions'), undefined);
    assert.match(JSON.stringify(none.blocks), /SHIPCLOCK_PUBLIC_URL is not set/);
  });
});

function fields(c: Record<string, any>) {
  return { deploymentId: c.d as string, subscriptionId: c.s as string, action: c.a, runAtMs: c.r as number };
}
