/**
 * Rollback end to end through the scheduler on real PostgreSQL (issue 15): an app with
 * `on_failure: "rollback"` whose deployment fails after it changed something gets what ran before
 * restored and followed; the deployment stays `failed` with `rollback: {state, ref}`. ECS and
 * DigitalOcean against their local fakes, webhooks against a local receiver; a rollback by hand
 * (POST …/rollback); a failing rollback is loud; and a process killed with SIGKILL mid-rollback is
 * resumed by another without a second UpdateService.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { deploymentDetails } from '../src/cli/client/format.ts';
import { createLogger } from '../src/observability/logger.ts';
import type { DigitaloceanFake } from './fakes/digitalocean-fake.ts';
import { ECS_TARGET_PREFIX, startEcsFake, type EcsFake } from './fakes/ecs-fake.ts';
import { startKubernetesFake } from './fakes/kubernetes-fake.ts';
import { type CloudFakes, startCloudFakes, storeCloudCredentials } from './helpers/cloud-fakes.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { addMember } from './helpers/accounts.ts';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/fake-webhook.ts';
import { adminApi, type HoldingProxy, kill9, type Proc, spawnShipclock, startHoldingProxy } from './helpers/processes.ts';
import { eventually, startTestServer, testEnv, type TestServer, utcFields } from './helpers/server.ts';

const FINAL = new Set(['succeeded', 'failed', 'canceled', 'skipped', 'missed']);
const ROLLBACK_FINAL = new Set(['succeeded', 'failed', 'not_possible']);
const AWS_KEY = { access_key_id: 'AKIAROLLBACKKEY0001', secret_access_key: 'rollback-secret-access-key-0123456789' };
const TASK_DEF = { family: 'web', containerDefinitions: [{ name: 'web', image: 'registry.example/web:1', essential: true }] };

describe('rollback through the scheduler', () => {
  let ecs: EcsFake;
  let dof: DigitaloceanFake;
  let hook: WebhookReceiver;
  let s: TestServer;
  let awsCred: string;
  let doCred: string;
  let n = 0;
  let logged = '';
  let fakes: CloudFakes;

  before(async () => {
    fakes = await startCloudFakes(AWS_KEY);
    ({ ecs, dof } = fakes);
    hook = await startWebhookReceiver();
    const sink = new Writable({ write(chunk, _e, cb) { logged += chunk; cb(); } });
    s = await startTestServer({ logger: createLogger('info', sink), env: { LOG_LEVEL: 'info' } });
    ({ aws: awsCred, digitalocean: doCred } = await storeCloudCredentials(s, fakes, AWS_KEY));
  });
  after(async () => {
    await s?.stop();
    await fakes?.close();
    await hook?.close();
  });

  async function app(target: Record<string, unknown>, extra: Record<string, unknown> = { on_failure: 'rollback' }) {
    n += 1;
    const r = await s.api('POST', '/v1/apps', { name: `app-${n}`, target, ...extra }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  }
  async function ecsApp(extra: Record<string, unknown> = {}, appExtra?: Record<string, unknown>) {
    const service = `svc-${n + 1}`;
    const { taskDefinitionArn } = ecs.addService({ cluster: 'rb', service, taskDefinition: { ...TASK_DEF, family: service } });
    const id = await app({ type: 'ecs', region: 'us-east-1', cluster: 'rb', service, credentials: awsCred, poll_interval_seconds: 1, ...extra }, appExtra);
    return { id, service, original: taskDefinitionArn };
  }
  async function schedule(appId: string, ms = 1500) {
    const r = await s.api('POST', '/v1/scheduled_deployments', { app: appId, ...utcFields(ms) }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result as { id: string };
  }
  const get = async (id: string) => (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
  const final = (id: string) => eventually(async () => {
    const d = await get(id);
    return FINAL.has(d.state) ? d : null;
  }, 30_000, `deployment ${id} to end`);
  /** The deployment once it and its rollback (if any is asked for) have ended. */
  const settled = (id: string) => eventually(async () => {
    const d = await get(id);
    return FINAL.has(d.state) && (!d.rollback || ROLLBACK_FINAL.has(d.rollback.state)) ? d : null;
  }, 40_000, `deployment ${id} and its rollback to end`);
  const states = (d: { events: Array<{ state: string }> }) => d.events.map((e) => e.state);
  const updates = (service: string) => ecs.requests.filter((r) => r.op === 'UpdateService' && r.body.service === service);

  it('ECS: a failed image rollout is rolled back to the previous task definition and followed; the deployment stays failed', async () => {
    const a = await ecsApp({ image: 'registry.example/web:2' });
    ecs.failNextRollout('ECS deployment circuit breaker: tasks failed to start.');
    const d = await schedule(a.id);
    const end = await settled(d.id);
    assert.equal(end.state, 'failed', JSON.stringify(end));
    assert.equal(end.error, 'ECS rollout failed: ECS deployment circuit breaker: tasks failed to start.');
    assert.equal(end.provider_ref.changed, true);
    assert.equal(end.provider_ref.previous_task_definition_arn, a.original);
    assert.equal(end.rollback.state, 'succeeded', JSON.stringify(end.rollback));
    // Restored and followed: the service runs the original revision again, through a deployment that completed.
    const primary = ecs.deployments('rb', a.service).find((x) => x.status === 'PRIMARY')!;
    assert.equal(primary.taskDefinition, a.original);
    assert.equal(primary.rolloutState, 'COMPLETED');
    assert.equal(end.rollback.ref.ecs_deployment_id, primary.id);
    assert.equal(end.rollback.ref.task_definition_arn, a.original);
    assert.ok(end.rollback.started_at && end.rollback.finished_at);
    const u = updates(a.service);
    assert.equal(u.length, 2, 'one UpdateService for the rollout, one for the rollback');
    assert.equal(u[1].body.taskDefinition, a.original);
    const ev = states(end);
    assert.ok(ev.indexOf('failed') < ev.indexOf('rollback_started'), ev.join(','));
    assert.ok(ev.includes('rollback_running') && ev.at(-1) === 'rollback_succeeded', ev.join(','));
    assert.match(end.log, /rollback: ECS UpdateService back to svc-\d+:1: deployment/);
    // `shipclock show` prints it.
    const shown = deploymentDetails(end, new Map());
    assert.match(shown, /^state: +failed$/m);
    assert.match(shown, /^rollback: +succeeded$/m);
    assert.ok(shown.includes(`ecs_deployment_id=${primary.id}`), shown);
    assert.ok(!JSON.stringify(end).includes(AWS_KEY.secret_access_key));
  });

  it('on_failure is validated, shown, and changed with PATCH', async () => {
    const bad = await s.api('POST', '/v1/apps', { name: 'bad-on-failure', target: { type: 'webhook', url: hook.url }, on_failure: 'undo' }, s.adminToken);
    assert.ok(bad.status === 400 || bad.status === 422, JSON.stringify(bad.body));
    assert.match(JSON.stringify(bad.body.error), /on_failure/);
    const id = await app({ type: 'webhook', url: hook.url }, {});
    const p = await s.api('PATCH', `/v1/apps/${id}`, { on_failure: 'rollback' }, s.adminToken);
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal(p.body.on_failure, 'rollback');
    assert.equal((await s.api('GET', `/v1/apps/${id}`, undefined, s.adminToken)).body.on_failure, 'rollback');
  });

  it('ECS with on_failure "none" (the default): no rollback', async () => {
    const a = await ecsApp({ image: 'registry.example/web:3' }, {});
    ecs.failNextRollout();
    const end = await final((await schedule(a.id)).id);
    assert.equal(end.state, 'failed');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await get(end.id)).rollback, null);
    assert.equal(updates(a.service).length, 1);
    const appOut = await s.api('GET', `/v1/apps/${a.id}`, undefined, s.adminToken);
    assert.equal(appOut.body.on_failure, 'none');
  });

  it('ECS: a deployment that failed before changing anything is not rolled back, and says why', async () => {
    const a = await ecsApp({ image: 'registry.example/web:4', container: 'nope' });
    const end = await final((await schedule(a.id)).id);
    assert.equal(end.state, 'failed');
    assert.match(end.error, /container "nope" is not in task definition/);
    assert.equal(end.rollback, null);
    assert.ok(end.events.some((e: { message: string }) => /nothing was changed, so there is nothing to roll back/.test(e.message)), JSON.stringify(end.events));
  });

  it('ECS services whose deployment controller is not ECS are refused before anything changes', async () => {
    for (const type of ['EXTERNAL', 'CODE_DEPLOY'] as const) {
      const service = `ctl-${type.toLowerCase()}`;
      ecs.addService({ cluster: 'rb', service, deploymentController: type, taskDefinition: { ...TASK_DEF, family: service } });
      const id = await app({ type: 'ecs', region: 'us-east-1', cluster: 'rb', service, credentials: awsCred, poll_interval_seconds: 1 });
      const end = await final((await schedule(id)).id);
      assert.equal(end.state, 'failed');
      assert.equal(end.attempts, 1, 'not retried');
      if (type === 'EXTERNAL') assert.match(end.error, new RegExp(`^service ${service} uses the EXTERNAL deployment controller; shipclock cannot drive it`));
      else assert.match(end.error, /uses the CODE_DEPLOY deployment controller; shipclock cannot drive it: .*AWS CodeDeploy/);
      assert.equal(updates(service).length, 0, 'UpdateService never called');
      assert.equal(end.rollback, null);
    }
  });

  it('ECS: an UpdateService answered without a PRIMARY deployment is followed, never repeated', async () => {
    const a = await ecsApp({ image: 'registry.example/web:5' });
    ecs.answerWithoutDeploymentsNext();
    const end = await final((await schedule(a.id)).id);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    assert.equal(updates(a.service).length, 1);
    const primary = ecs.deployments('rb', a.service).find((x) => x.status === 'PRIMARY')!;
    assert.equal(end.provider_ref.ecs_deployment_id, primary.id);
  });

  it('DigitalOcean: a failed deployment is rolled back to the deployment active before it', async () => {
    const appId = dof.addApp();
    const id = await app({ type: 'digitalocean', app_id: appId, credentials: doCred, poll_interval_seconds: 1 });
    const first = await final((await schedule(id)).id);
    assert.equal(first.state, 'succeeded');
    const good = first.provider_ref.do_deployment_id;
    dof.failNextDeployment({ code: 'BuildJobFailed', message: 'npm ERR! missing script: build' });
    const end = await settled((await schedule(id)).id);
    assert.equal(end.state, 'failed');
    assert.equal(end.provider_ref.previous_deployment_id, good);
    assert.equal(end.rollback.state, 'succeeded', JSON.stringify(end.rollback));
    assert.equal(end.rollback.ref.rolled_back_to, good);
    assert.equal(dof.count('rollback'), 1);
    const restored = dof.deployment(appId, end.rollback.ref.do_deployment_id)!;
    assert.equal(restored.phase, 'ACTIVE');
    assert.equal(restored.cause, `rollback to deployment ${good}`);
    assert.equal(dof.pinned(appId), false, 'the app is not pinned: later deployments still run');
    const later = await final((await schedule(id)).id);
    assert.equal(later.state, 'succeeded');
  });

  it('Kubernetes: a ProgressDeadlineExceeded with on_failure rollback restores the previous pod template', async () => {
    const kube = await startKubernetesFake();
    try {
      const c = await s.api('POST', '/v1/credentials', { name: 'cluster', provider: 'kubernetes', kubeconfig: kube.kubeconfig() }, s.adminToken);
      assert.equal(c.status, 201, JSON.stringify(c.body));
      kube.addWorkload('Deployment', 'rb', 'api', { api: 'registry.example/api:1' });
      const id = await app({ type: 'kubernetes', credentials: c.body.id, namespace: 'rb', name: 'api', image: 'registry.example/api:2', poll_interval_seconds: 1 });
      kube.failNextRollout('pods never became ready');
      const end = await settled((await schedule(id)).id);
      assert.equal(end.state, 'failed', JSON.stringify(end));
      assert.match(end.error, /ProgressDeadlineExceeded/);
      assert.equal(end.rollback.state, 'succeeded', JSON.stringify(end.rollback));
      const w = kube.workload('Deployment', 'rb', 'api')!;
      assert.equal(w.spec.template.spec.containers[0].image, 'registry.example/api:1', 'the previous template is back');
      assert.ok(!JSON.stringify(end).includes(kube.token));
    } finally {
      await kube.close();
    }
  });

  it('webhook: a failed deployment gets a signed rollback event with its own Idempotency-Key; 2xx is done', async () => {
    const secret = 'whsec-rollback-test-0001';
    const id = await app({ type: 'webhook', url: hook.url, secret }, { on_failure: 'rollback', retry: { max_attempts: 1 } });
    hook.hits.length = 0;
    hook.respondWith(500, 200);
    const d = await schedule(id);
    const end = await settled(d.id);
    assert.equal(end.state, 'failed');
    assert.equal(end.rollback.state, 'succeeded', JSON.stringify(end));
    assert.equal(hook.hits.length, 2);
    const [deploy, rb] = hook.hits;
    assert.equal(deploy.headers['idempotency-key'], d.id);
    assert.equal(rb.headers['idempotency-key'], `${d.id}:rollback:1`);
    assert.equal(rb.body.event, 'rollback');
    assert.equal(rb.body.deployment_id, d.id);
    assert.equal(rb.headers['x-shipclock-signature'], 'sha256=' + createHmac('sha256', secret).update(rb.raw).digest('hex'));
    assert.ok(!JSON.stringify(end).includes(secret));
  });

  it('a failing rollback is loud: error state, an error log line, a rollback_failed notification', async () => {
    const sub = await s.api('POST', '/v1/notifications', { url: hook.url, events: ['rollback_failed'], format: 'json' }, s.adminToken);
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    const id = await app({ type: 'webhook', url: hook.url }, { on_failure: 'rollback', retry: { max_attempts: 1 } });
    hook.respondWith(503, 422, 200);
    const d = await schedule(id);
    const end = await settled(d.id);
    assert.equal(end.state, 'failed');
    assert.equal(end.rollback.state, 'failed');
    assert.equal(end.rollback.error, 'rollback event answered 422');
    assert.equal(states(end).at(-1), 'rollback_failed');
    assert.match(deploymentDetails(end, new Map()), /^rollback: +FAILED: what ran before was NOT restored\n {2}error: +rollback event answered 422$/m);
    const line = logged.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.deployment_id === d.id && /ROLLBACK FAILED/.test(l.msg));
    assert.ok(line, 'an error line was logged');
    assert.equal(line.level, 50);
    const q = await s.db.pool.query(`SELECT event, payload FROM notification_deliveries WHERE deployment_id = $1`, [d.id]);
    assert.deepEqual(q.rows.map((r) => r.event), ['rollback_failed']);
    assert.equal(q.rows[0].payload.rollback.state, 'failed');
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /shipclock_rollbacks_finished_total\{state="failed"\} [1-9]/);
    await s.api('DELETE', `/v1/notifications/${sub.body.id}`, undefined, s.adminToken);
    hook.respondWith(200);
  });

  it('POST …/rollback rolls a finished deployment back by hand; 409/422 say why not', async () => {
    const a = await ecsApp({ image: 'registry.example/web:6' }, {});
    const early = await schedule(a.id, 60_000);
    const notYet = await s.api('POST', `/v1/scheduled_deployments/${early.id}/rollback`, undefined, s.adminToken);
    assert.equal(notYet.status, 409);
    assert.equal(notYet.body.error.code, 'not_finished');
    await s.api('POST', `/v1/scheduled_deployments/${early.id}/cancel`, undefined, s.adminToken);
    const canceled = await s.api('POST', `/v1/scheduled_deployments/${early.id}/rollback`, undefined, s.adminToken);
    assert.equal(canceled.status, 409);
    assert.equal(canceled.body.error.code, 'nothing_changed');

    const done = await final((await schedule(a.id)).id);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.rollback, null);
    const me = await s.api('GET', '/v1/me', undefined, s.adminToken);
    const viewer = await addMember(s, me.body.team.id, 'rb-viewer@example.com', 'viewer-password-1', 'viewer');
    const forbidden = await s.api('POST', `/v1/scheduled_deployments/${done.id}/rollback`, undefined, viewer.token);
    assert.equal(forbidden.status, 403);
    const r = await s.api('POST', `/v1/scheduled_deployments/${done.id}/rollback`, undefined, s.adminToken);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.result.state, 'succeeded');
    assert.equal(r.body.result.rollback.state, 'pending');
    const again = await s.api('POST', `/v1/scheduled_deployments/${done.id}/rollback`, undefined, s.adminToken);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'rollback_running');
    const end = await settled(done.id);
    assert.equal(end.state, 'succeeded', 'the deployment keeps its own outcome');
    assert.equal(end.rollback.state, 'succeeded');
    assert.equal(ecs.deployments('rb', a.service).find((x) => x.status === 'PRIMARY')!.taskDefinition, a.original);
    const audit = await s.db.pool.query(`SELECT action FROM audit_log WHERE target_id = $1 AND action = 'deployment.rollback'`, [done.id]);
    assert.equal(audit.rowCount, 1);

    const cmd = await app({ type: 'command', command: 'true' }, {});
    const ran = await final((await schedule(cmd)).id);
    const no = await s.api('POST', `/v1/scheduled_deployments/${ran.id}/rollback`, undefined, s.adminToken);
    assert.equal(no.status, 422);
    assert.equal(no.body.error.code, 'rollback_not_supported');
  });
});

/**
 * Real processes killed with SIGKILL: A makes the rollback's UpdateService (it takes effect at
 * ECS; the answer never comes back) and dies; B resumes the rollback after A's lease lapses,
 * finds the service already back on the previous task definition, and follows it — one
 * UpdateService for the rollback in all.
 */
describe('crash mid-rollback with real processes (SIGKILL)', () => {
  let db: TestDatabase;
  let ecs: EcsFake;
  let proxy: HoldingProxy;
  let updatesSeen = 0;
  const procs: Proc[] = [];

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    ecs = await startEcsFake({ region: 'us-east-1' });
    // Forwards every call to the fake, but never answers the second UpdateService (the rollback's).
    proxy = await startHoldingProxy(ecs.url, (req) => req.headers['x-amz-target'] === `${ECS_TARGET_PREFIX}UpdateService` && ++updatesSeen === 2);
  });
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await proxy?.close();
    await ecs?.close();
    await db?.drop();
  });

  it('is resumed by another process without a second UpdateService', async () => {
    const env = testEnv(db.url, { AWS_ENDPOINT_URL_ECS: proxy.url, SHIPCLOCK_LEASE_SECONDS: '5', LOG_LEVEL: 'info' });
    const a = await spawnShipclock('serve', env);
    procs.push(a);
    const api = await adminApi(a, env);
    const cred = (await api('POST', '/v1/credentials', { name: 'aws', provider: 'aws', ...AWS_KEY })).body.id;
    const { taskDefinitionArn: original } = ecs.addService({ cluster: 'crash', service: 'api', taskDefinition: { ...TASK_DEF, family: 'api' } });
    const app = await api('POST', '/v1/apps', {
      name: 'api', on_failure: 'rollback',
      target: { type: 'ecs', region: 'us-east-1', cluster: 'crash', service: 'api', image: 'registry.example/api:2', credentials: cred, poll_interval_seconds: 1 },
    });
    assert.equal(app.status, 201, JSON.stringify(app.body));
    ecs.failNextRollout('tasks failed to start');
    const d = (await api('POST', '/v1/scheduled_deployments', { app: app.body.id, ...utcFields(1500) })).body.result;

    // 1. The rollout fails; A starts the rollback and dies with its UpdateService in flight (it took effect).
    await proxy.held;
    await kill9(a);
    proxy.stopHolding();
    assert.equal(ecs.count('UpdateService'), 2);
    const r1 = (await db.pool.query('SELECT state, rollback_state, rollback_phase, rollback_ref FROM deployments WHERE id = $1', [d.id])).rows[0];
    assert.deepEqual([r1.state, r1.rollback_state, r1.rollback_phase, r1.rollback_ref], ['failed', 'running', 'executing', null]);

    // 2. B takes it over once A's lease lapses, sees the service back on the original revision and follows it.
    const b = await spawnShipclock('worker', env);
    procs.push(b);
    const end = await eventually(async () => {
      const r = (await db.pool.query('SELECT state, rollback_state, rollback_ref, rollback_attempts, log FROM deployments WHERE id = $1', [d.id])).rows[0];
      return ROLLBACK_FINAL.has(r.rollback_state) ? r : null;
    }, 60_000, 'the rollback to end');
    assert.equal(end.state, 'failed');
    assert.equal(end.rollback_state, 'succeeded', JSON.stringify(end));
    assert.equal(end.rollback_attempts, 2, 'the interrupted call, then the recovery');
    assert.equal(ecs.count('UpdateService'), 2, 'no second UpdateService for the rollback');
    const primary = ecs.deployments('crash', 'api').find((x) => x.status === 'PRIMARY')!;
    assert.equal(primary.taskDefinition, original);
    assert.equal(end.rollback_ref.ecs_deployment_id, primary.id);
    assert.match(end.log, /rollback: service already runs api:1 \(ECS deployment \S+\); following it/);
  });
});
