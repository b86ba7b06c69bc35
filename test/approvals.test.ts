/**
 * Approvals (issue 12) on real PostgreSQL: an app's policy, approve/reject and their rules, the
 * approval fire gate at the instant (skipped with the reason; a dependency not approved skips its
 * dependent), the reset on a large reschedule, the list filter, audit entries and notifications.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { inTransaction } from '../src/db/pool.ts';
import { renderBody } from '../src/notifications/notifier.ts';
import { approvalStatus, approveDeployment } from '../src/services/approvals.ts';
import { addMember } from './helpers/accounts.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { eventually, startTestServer, type TestServer, utcFields } from './helpers/server.ts';

describe('approvals', () => {
  let s: TestServer;
  let hook: WebhookReceiver;
  let notified: WebhookReceiver;
  let owner: string; // the admin: owner, schedules the deployments
  let d1: { id: string; token: string };
  let d2: { id: string; token: string };
  let viewer: { id: string; token: string };
  let n = 0;

  before(async () => {
    s = await startTestServer({ env: { SHIPCLOCK_PREFETCH_MS: '1500' } });
    hook = await startWebhookReceiver();
    notified = await startWebhookReceiver();
    owner = s.adminToken;
    const team = (await s.api('GET', '/v1/me', undefined, owner)).body.team.id as string;
    d1 = await addMember(s, team, 'd1@example.com', 'deployer-password-1', 'deployer');
    d2 = await addMember(s, team, 'd2@example.com', 'deployer-password-2', 'deployer');
    viewer = await addMember(s, team, 'v@example.com', 'viewer-password-1', 'viewer');
    const sub = await s.api('POST', '/v1/notifications', { url: notified.url, events: ['approval_requested', 'approved', 'rejected', 'skipped'] }, owner);
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
  });
  after(async () => {
    await hook.close();
    await notified.close();
    await s.stop();
  });

  async function app(approval?: unknown) {
    const r = await s.api('POST', '/v1/apps', { name: `appr-${++n}`, target: { type: 'webhook', url: hook.url } }, owner);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    if (approval !== undefined) {
      const p = await s.api('PATCH', `/v1/apps/${r.body.id}`, { approval }, owner);
      assert.equal(p.status, 200, JSON.stringify(p.body));
    }
    return r.body.id as string;
  }
  async function schedule(appId: string, ms: number, extra: Record<string, unknown> = {}, token = owner) {
    const r = await s.api('POST', '/v1/scheduled_deployments', { app: appId, ...utcFields(ms), ...extra }, token);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result;
  }
  const get = async (id: string) => (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, owner)).body.result;
  const final = (id: string) => eventually(async () => {
    const d = await get(id);
    return !['scheduled', 'running'].includes(d.state) && d;
  }, 30_000, `deployment ${id} to end`);
  const approve = (id: string, token: string, comment?: string) => s.api('POST', `/v1/scheduled_deployments/${id}/approve`, comment === undefined ? {} : { comment }, token);
  const reject = (id: string, token: string, comment?: string) => s.api('POST', `/v1/scheduled_deployments/${id}/reject`, comment === undefined ? {} : { comment }, token);
  const calls = (id: string) => hook.hits.filter((h) => h.body?.deployment_id === id).length;
  const deliveries = async (id: string) =>
    (await s.db.pool.query(`SELECT event, payload FROM notification_deliveries WHERE deployment_id = $1 ORDER BY id`, [id])).rows;

  it('takes an approval policy on PATCH /v1/apps/{id} and shows it; 422 names the wrong field', async () => {
    const id = await app();
    assert.equal((await s.api('GET', `/v1/apps/${id}`, undefined, owner)).body.approval, null);
    let r = await s.api('PATCH', `/v1/apps/${id}`, { approval: { required: 0 } }, owner);
    assert.equal(r.status, 422);
    assert.equal(r.body.error.field, 'approval.required');
    r = await s.api('PATCH', `/v1/apps/${id}`, { approval: { required: 6 } }, owner);
    assert.equal(r.body.error.field, 'approval.required');
    r = await s.api('PATCH', `/v1/apps/${id}`, { approval: { from_roles: ['owner'] } }, owner);
    assert.equal(r.body.error.field, 'approval.required');
    r = await s.api('PATCH', `/v1/apps/${id}`, { approval: { required: 2, from_roles: ['viewer'] } }, owner);
    assert.equal(r.status, 422);
    assert.equal(r.body.error.field, 'approval.from_roles');
    r = await s.api('PATCH', `/v1/apps/${id}`, { approval: { required: 2 } }, owner);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.approval, { required: 2, from_roles: ['owner', 'deployer'] });
    r = await s.api('PATCH', `/v1/apps/${id}`, { approval: { required: 1, from_roles: ['owner'] } }, owner);
    assert.deepEqual(r.body.approval, { required: 1, from_roles: ['owner'] });
    r = await s.api('PATCH', `/v1/apps/${id}`, { approval: null }, owner);
    assert.equal(r.body.approval, null);
    // Nothing stored on bad input; only owners change apps.
    r = await s.api('PATCH', `/v1/apps/${id}`, { approval: { required: 1 } }, d1.token);
    assert.equal(r.status, 403);
    assert.equal((await s.api('GET', `/v1/apps/${id}`, undefined, owner)).body.approval, null);
  });

  it('a deployment not approved is skipped at its instant, saying so; the call is never made', async () => {
    const appId = await app({ required: 1 });
    const d = await schedule(appId, 3000);
    assert.deepEqual(d.approval, { required: 1, approvals: [], rejection: null, status: 'pending' });
    const end = await final(d.id);
    assert.equal(end.state, 'skipped');
    assert.equal(end.error, 'not approved (0 of 1)');
    assert.ok(end.events.some((e: { state: string; message: string }) => e.state === 'skipped' && e.message === 'not approved (0 of 1)'));
    assert.equal(calls(d.id), 0);
    const events = (await deliveries(d.id)).map((x) => x.event);
    assert.deepEqual(events, ['approval_requested', 'skipped']);
    // A finished deployment takes no decision.
    const late = await approve(d.id, d1.token);
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'already_final');
  });

  it('approved by another deployer it fires; self-approval, a viewer and a second approval are refused', async () => {
    const appId = await app({ required: 1 });
    const d = await schedule(appId, 5000);
    let r = await approve(d.id, owner);
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'self_approval');
    r = await approve(d.id, viewer.token);
    assert.equal(r.status, 403);
    r = await reject(d.id, viewer.token, 'no');
    assert.equal(r.status, 403);
    r = await approve(d.id, d1.token, 'looks good');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.result.approval.status, 'approved');
    assert.equal(r.body.result.approval.approvals[0].user.email, 'd1@example.com');
    assert.equal(r.body.result.approval.approvals[0].comment, 'looks good');
    r = await approve(d.id, d1.token);
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'already_decided');
    const end = await final(d.id);
    assert.equal(end.state, 'succeeded', end.error);
    assert.equal(calls(d.id), 1);
    assert.ok(end.events.some((e: { message: string }) => e.message === 'approved by d1@example.com (1 of 1): looks good'));
    const audit = await s.api('GET', `/v1/audit?action=deployment.approve&target_id=${d.id}`, undefined, owner);
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    assert.equal(audit.body.result.length, 1);
    assert.equal(audit.body.result[0].actor.email, 'd1@example.com');
    assert.equal(audit.body.result[0].details.comment, 'looks good');
    const ds = await deliveries(d.id);
    assert.deepEqual(ds.map((x) => x.event), ['approval_requested', 'approved']);
    assert.equal(ds[1].payload.by, 'd1@example.com');
    assert.deepEqual(ds[1].payload.approval, { required: 1, approvals: 1 });
  });

  it('N = 2 needs two different users; one of two is not enough', async () => {
    const appId = await app({ required: 2 });
    const a = await schedule(appId, 60 * 60_000);
    let r = await approve(a.id, d1.token);
    assert.equal(r.body.result.approval.status, 'pending');
    assert.equal((await approve(a.id, d1.token)).status, 409);
    r = await approve(a.id, d2.token);
    assert.equal(r.body.result.approval.status, 'approved');
    assert.deepEqual(r.body.result.approval.approvals.map((x: { user: { email: string } }) => x.user.email), ['d1@example.com', 'd2@example.com']);

    const b = await schedule(appId, 4000);
    await approve(b.id, d1.token);
    const end = await final(b.id);
    assert.equal(end.state, 'skipped');
    assert.equal(end.error, 'not approved (1 of 2)');
    assert.equal(calls(b.id), 0);
    await s.api('POST', `/v1/scheduled_deployments/${a.id}/cancel`, {}, owner);
  });

  it('a rejection needs a comment, and skips the deployment at its instant naming who and why', async () => {
    const appId = await app({ required: 1 });
    const d = await schedule(appId, 5000);
    let r = await reject(d.id, d1.token);
    assert.equal(r.status, 422);
    assert.equal(r.body.error.field, 'comment');
    r = await reject(d.id, d1.token, '   ');
    assert.equal(r.status, 422);
    r = await reject(d.id, d1.token, 'the release notes are missing');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.result.approval.status, 'rejected');
    r = await approve(d.id, d2.token);
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'rejected');
    const end = await final(d.id);
    assert.equal(end.state, 'skipped');
    assert.equal(end.error, 'rejected by d1@example.com: the release notes are missing');
    assert.equal(calls(d.id), 0);
    const ds = await deliveries(d.id);
    assert.deepEqual(ds.map((x) => x.event), ['approval_requested', 'rejected', 'skipped']);
    assert.equal(ds[1].payload.comment, 'the release notes are missing');
    const audit = await s.api('GET', `/v1/audit?action=deployment.reject&target_id=${d.id}`, undefined, owner);
    assert.equal(audit.body.result.length, 1);
  });

  it('an approval given after the claim is seen at the instant', async () => {
    const appId = await app({ required: 1 });
    const d = await schedule(appId, 5000);
    await eventually(async () => (await s.db.pool.query('SELECT lease_owner FROM deployments WHERE id = $1', [d.id])).rows[0].lease_owner !== null, 20_000, 'the claim');
    const r = await approve(d.id, d2.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const end = await final(d.id);
    assert.equal(end.state, 'succeeded', end.error);
  });

  it('a dependency that is not approved skips its dependent too', async () => {
    const depApp = await app({ required: 1 });
    const mainApp = await app();
    const d = await schedule(mainApp, 6000, { dependency: depApp, dependency_lead_seconds: 2 });
    assert.equal(d.approval, null);
    assert.deepEqual(d.dependency.approval, { required: 1, approvals: [], rejection: null, status: 'pending' });
    const end = await final(d.id);
    assert.equal(end.state, 'skipped');
    assert.match(end.error, /dependency .* ended skipped/);
    const dep = await get(d.dependency.id);
    assert.equal(dep.state, 'skipped');
    assert.equal(dep.error, 'not approved (0 of 1)');
    assert.equal(calls(d.id) + calls(dep.id), 0);
  });

  it('moving a deployment by more than its expiry resets its approvals, and says so; a small move keeps them', async () => {
    const appId = await app({ required: 2 });
    const d = await schedule(appId, 60 * 60_000, { expires_after_seconds: 600 });
    await approve(d.id, d1.token);
    await approve(d.id, d2.token);
    let r = await s.api('PATCH', `/v1/scheduled_deployments/${d.id}`, { ...utcFields(60 * 60_000 + 300_000), expires_after_seconds: 600 }, owner);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.result.approval_reset, false);
    assert.equal(r.body.result.approval.status, 'approved');
    r = await s.api('PATCH', `/v1/scheduled_deployments/${d.id}`, { ...utcFields(3 * 60 * 60_000), expires_after_seconds: 600 }, owner);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.result.approval_reset, true);
    assert.deepEqual(r.body.result.approval, { required: 2, approvals: [], rejection: null, status: 'pending' });
    const one = await get(d.id);
    assert.ok(one.events.some((e: { message: string }) => /^approvals reset: moved by \d+ s, more than its expiry \(600 s\)$/.test(e.message)));
    // They may decide again.
    r = await approve(d.id, d1.token);
    assert.equal(r.status, 200);
    assert.equal(r.body.result.approval.approvals.length, 1);
    await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, {}, owner);
  });

  it('from_roles leaves roles out; no policy, nothing to approve; the snapshot holds after a policy change', async () => {
    const appId = await app({ required: 1, from_roles: ['owner'] });
    const d = await schedule(appId, 60 * 60_000, {}, d1.token);
    let r = await approve(d.id, d2.token);
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'role_not_allowed');
    r = await approve(d.id, owner);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // A later policy change does not touch what is scheduled.
    await s.api('PATCH', `/v1/apps/${appId}`, { approval: null }, owner);
    assert.equal((await get(d.id)).approval.required, 1);
    const free = await schedule(appId, 60 * 60_000 + 60_000);
    assert.equal(free.approval, null);
    r = await approve(free.id, d1.token);
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'approval_not_required');
    for (const x of [d.id, free.id]) await s.api('POST', `/v1/scheduled_deployments/${x}/cancel`, {}, owner);
    r = await approve(d.id, d2.token);
    assert.equal(r.status, 409);
  });

  it('lists deployments by approval status (GET /v1/scheduled_deployments?approval=pending)', async () => {
    const appId = await app({ required: 1 });
    const pending = await schedule(appId, 2 * 60 * 60_000);
    const approved = await schedule(appId, 2 * 60 * 60_000 + 60_000);
    await approve(approved.id, d1.token);
    const ids = async (q: string) => (await s.api('GET', `/v1/scheduled_deployments?app=${appId}&${q}`, undefined, viewer.token)).body.result.map((x: { id: string }) => x.id);
    assert.deepEqual(await ids('approval=pending'), [pending.id]);
    assert.deepEqual(await ids('approval=approved'), [approved.id]);
    assert.deepEqual(await ids('approval=rejected'), []);
    assert.equal((await s.api('GET', '/v1/scheduled_deployments?approval=maybe', undefined, owner)).status, 400);
    for (const x of [pending.id, approved.id]) await s.api('POST', `/v1/scheduled_deployments/${x}/cancel`, {}, owner);
  });

  it('approveDeployment runs in the caller\'s transaction, says how it was given (a reminder link), and approvalStatus reads the state', async () => {
    const appId = await app({ required: 1 });
    const d = await schedule(appId, 60 * 60_000);
    const team = (await s.api('GET', '/v1/me', undefined, owner)).body.team.id as string;
    // Rolled back with the caller's transaction: nothing stays.
    await assert.rejects(inTransaction(s.db.pool, async (c) => {
      await approveDeployment(c, { deploymentId: d.id, teamId: team, userId: d2.id, comment: null, via: 'reminder link' });
      throw new Error('the caller fails after');
    }), /the caller fails after/);
    assert.equal((await approvalStatus(s.db.pool, d.id))!.status, 'pending');
    const r = await inTransaction(s.db.pool, (c) => approveDeployment(c, { deploymentId: d.id, teamId: team, userId: d2.id, comment: null, via: 'reminder link' }));
    assert.equal(r.changed, true);
    assert.equal(r.approval.status, 'approved');
    assert.equal(r.approval.approvals[0].via, 'reminder link');
    const one = await get(d.id);
    assert.ok(one.events.some((e: { message: string }) => e.message === 'approved by d2@example.com (through a reminder link) (1 of 1)'));
    const audit = await s.api('GET', `/v1/audit?action=deployment.approve&target_id=${d.id}`, undefined, owner);
    assert.equal(audit.body.result[0].details.via, 'reminder link');
    // The same rules as the API: a second decision by the same user answers 409.
    await assert.rejects(approveDeployment(s.db.pool, { deploymentId: d.id, teamId: team, userId: d2.id }), { status: 409, code: 'already_decided' });
    await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, {}, owner);
  });

  it('renders the approval events for Slack', () => {
    const base = { deployment_id: 'x', app_name: 'api', run_at: '2030-01-01T00:00:00.000Z', timezone: 'UTC', approval: { required: 2, approvals: 2 } };
    assert.match(JSON.parse(renderBody('slack', { ...base, event: 'deployment.approval_requested', approval: { required: 2, approvals: 0 } })).text, /Deployment of \*api\* needs 2 approval/);
    assert.match(JSON.parse(renderBody('slack', { ...base, event: 'deployment.approved', by: 'b@x' })).text, /approved by b@x \(2 of 2\)/);
    assert.match(JSON.parse(renderBody('slack', { ...base, event: 'deployment.rejected', by: 'b@x', comment: 'no' })).text, /rejected by b@x.*\n> no/s);
  });

  it('a recurring schedule\'s occurrences need approval like one-off deployments, each asked for', async () => {
    const appId = await app({ required: 1 });
    const sch = await s.api('POST', '/v1/schedules', { app: appId, cron: '0 3 * * *', timezone: 'UTC' }, owner);
    assert.equal(sch.status, 201, JSON.stringify(sch.body));
    const occ = (await s.api('GET', `/v1/scheduled_deployments?schedule=${sch.body.id}`, undefined, owner)).body.result;
    assert.ok(occ.length >= 1);
    assert.deepEqual(occ[0].approval, { required: 1, approvals: [], rejection: null, status: 'pending' });
    assert.deepEqual((await deliveries(occ[0].id)).map((x) => x.event), ['approval_requested']);
    await s.api('DELETE', `/v1/schedules/${sch.body.id}`, undefined, owner);
  });
});

