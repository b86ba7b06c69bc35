/**
 * Fire gates (src/scheduler/gates.ts): a gate's claim-time verdict is applied at the instant
 * without asking again; a change announced on GATES_CHANNEL after the claim makes the scheduler
 * ask again at the instant; a stopped row is handed to its gate and never called.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Queryable } from '../src/db/pool.ts';
import type { ClaimedRow } from '../src/db/sql/deployments.ts';
import { registerGate, notifyGates } from '../src/scheduler/gates.ts';
import { endDeployments } from '../src/services/transitions.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { eventually, startTestServer, type TestServer, utcFields } from './helpers/server.ts';

/** Stops the deployments of the apps in `blocked`; counts how often it is asked about each row. */
const blocked = new Set<string>();
const asked = new Map<string, number>();
registerGate({
  name: 'test-gate',
  async check(_db: Queryable, rows: readonly ClaimedRow[]) {
    const out = new Map<string, string>();
    for (const r of rows) {
      asked.set(r.id, (asked.get(r.id) ?? 0) + 1);
      if (blocked.has(r.app_id)) out.set(r.id, `test gate: app ${r.app_name} is blocked`);
    }
    return out;
  },
  async apply(db: Queryable, _owner: string, stopped) {
    await endDeployments(db, stopped.map((s) => ({ finish: { id: s.row.id, state: 'skipped' as const, error: s.message, log: '', ref: null }, message: s.message })));
  },
});

describe('fire gates', () => {
  let s: TestServer;
  let hook: WebhookReceiver;
  let n = 0;

  before(async () => {
    s = await startTestServer();
    hook = await startWebhookReceiver();
  });
  after(async () => {
    await hook.close();
    await s.stop();
  });

  async function app() {
    const r = await s.api('POST', '/v1/apps', { name: `gated-${++n}`, target: { type: 'webhook', url: hook.url } }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  }
  async function schedule(appId: string, ms: number) {
    const r = await s.api('POST', '/v1/scheduled_deployments', { app: appId, ...utcFields(ms) }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result.id as string;
  }
  const final = (id: string) => eventually(async () => {
    const d = (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
    return !['scheduled', 'running'].includes(d.state) && d;
  }, 20_000, `deployment ${id} to end`);
  const claimed = (id: string) => eventually(async () => {
    const r = await s.db.pool.query('SELECT lease_owner FROM deployments WHERE id = $1', [id]);
    return r.rows[0].lease_owner !== null;
  }, 20_000, `deployment ${id} to be claimed`);

  it('lets a row run on its claim-time verdict, asking once', async () => {
    const id = await schedule(await app(), 3000);
    const d = await final(id);
    assert.equal(d.state, 'succeeded');
    assert.equal(hook.hits.filter((h) => h.body.deployment_id === id).length, 1);
    assert.equal(asked.get(id), 1, 'asked at claim time only: nothing changed before the instant');
  });

  it('stops a row the gate stops, handing it to the gate; the call is never made', async () => {
    const appId = await app();
    blocked.add(appId);
    const id = await schedule(appId, 3000);
    const d = await final(id);
    assert.equal(d.state, 'skipped');
    assert.match(d.error, /test gate: app gated-\d+ is blocked/);
    assert.equal(hook.hits.filter((h) => h.body.deployment_id === id).length, 0);
    assert.ok(d.events.some((e: { state: string; message: string }) => e.state === 'skipped' && /blocked/.test(e.message)));
  });

  it('asks again at the instant when a change was announced after the claim', async () => {
    const appId = await app();
    const id = await schedule(appId, 4000);
    await claimed(id);
    assert.equal(asked.get(id), 1);
    // The gate changes its mind after the claim (a freeze created a second before the instant).
    blocked.add(appId);
    await notifyGates(s.db.pool);
    const d = await final(id);
    assert.equal(d.state, 'skipped', `state ${d.state}: the stale verdict was used`);
    assert.equal(hook.hits.filter((h) => h.body.deployment_id === id).length, 0);
    assert.equal(asked.get(id), 2);
  });
});
