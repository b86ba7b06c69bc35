/**
 * ECS and DigitalOcean end to end through the scheduler: real PostgreSQL, real shipclock (in
 * process, and as real processes killed with SIGKILL), the local fakes standing in for AWS and
 * DigitalOcean (reached through AWS_ENDPOINT_URL_ECS and SHIPCLOCK_DIGITALOCEAN_API_URL).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { DigitaloceanFake } from './fakes/digitalocean-fake.ts';
import { ECS_TARGET_PREFIX, startEcsFake, type EcsFake } from './fakes/ecs-fake.ts';
import { type CloudFakes, startCloudFakes, storeCloudCredentials } from './helpers/cloud-fakes.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { startWebhookReceiver } from './helpers/fake-webhook.ts';
import { adminApi, endedRow, type HoldingProxy, kill9, spawnShipclock, startHoldingProxy } from './helpers/processes.ts';
import { assertNoSecret } from './helpers/secrets.ts';
import { eventually, startTestServer, testEnv, type TestServer, utcFields } from './helpers/server.ts';

const FINAL = new Set(['succeeded', 'failed', 'canceled', 'skipped', 'missed']);
const AWS_KEY = { access_key_id: 'AKIAE2ETESTKEY0001', secret_access_key: 'e2e-secret-access-key-0123456789' };
const TASK_DEF = { family: 'web', containerDefinitions: [{ name: 'web', image: 'registry.example/web:1', essential: true, environment: [{ name: 'MODE', value: 'prod' }] }] };

describe('ecs and digitalocean through the scheduler', () => {
  let ecs: EcsFake;
  let dof: DigitaloceanFake;
  let s: TestServer;
  let awsCred: string;
  let doCred: string;
  let n = 0;
  let fakes: CloudFakes;

  before(async () => {
    fakes = await startCloudFakes(AWS_KEY);
    ({ ecs, dof } = fakes);
    s = await startTestServer();
    ({ aws: awsCred, digitalocean: doCred } = await storeCloudCredentials(s, fakes, AWS_KEY));
  });
  after(async () => {
    await s?.stop();
    await fakes?.close();
  });

  async function ecsApp(extra: Record<string, unknown> = {}) {
    n += 1;
    const service = `web-${n}`;
    ecs.addService({ cluster: 'e2e', service, taskDefinition: { ...TASK_DEF, family: `web-${n}` } });
    const r = await s.api('POST', '/v1/apps', {
      name: `ecs-${n}`, target: { type: 'ecs', region: 'us-east-1', cluster: 'e2e', service, credentials: awsCred, poll_interval_seconds: 1, ...extra },
    }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return { id: r.body.id as string, service };
  }

  async function doApp(extra: Record<string, unknown> = {}) {
    n += 1;
    const appId = dof.addApp();
    const r = await s.api('POST', '/v1/apps', {
      name: `do-${n}`, target: { type: 'digitalocean', app_id: appId, credentials: doCred, poll_interval_seconds: 1, ...extra },
    }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return { id: r.body.id as string, appId };
  }

  async function schedule(app: string, ms = 1500) {
    const r = await s.api('POST', '/v1/scheduled_deployments', { app, ...utcFields(ms) }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result as { id: string; run_at: string };
  }

  const get = async (id: string) => (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
  const final = (id: string, timeoutMs = 30_000) => eventually(async () => {
    const d = await get(id);
    return FINAL.has(d.state) ? d : null;
  }, timeoutMs, `deployment ${id} to end`);
  const row = async (id: string) => (await s.db.pool.query('SELECT state, phase, lease_owner, provider_ref FROM deployments WHERE id = $1', [id])).rows[0];
  const following = (id: string) => eventually(async () => {
    const r = await row(id);
    return r.phase === 'following' && r.provider_ref ? r : null;
  }, 20_000, `deployment ${id} to be following its rollout`);

  it('ecs with an image: registers a revision, rolls it out, and shows the ECS ids, revision and console link', async () => {
    const app = await ecsApp({ image: 'registry.example/web:2' });
    const d = await schedule(app.id);
    const end = await final(d.id);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    const primary = ecs.deployments('e2e', app.service).find((x) => x.status === 'PRIMARY')!;
    const ref = end.provider_ref;
    assert.equal(ref.ecs_deployment_id, primary.id);
    assert.equal(ref.task_definition_revision, 2);
    assert.match(ref.task_definition_arn, /task-definition\/web-\d+:2$/);
    assert.equal(ref.console_url, `https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/e2e/services/${app.service}/deployments?region=us-east-1`);
    assert.equal(ecs.taskDefinition(ref.task_definition_arn)!.taskDefinition.containerDefinitions[0].image, 'registry.example/web:2');
    assert.match(end.log, new RegExp(`registered task definition web-\\d+:2 \\(container web: registry.example/web:1 → registry.example/web:2\\)`));
    assert.ok(end.log.includes(`ECS deployment ${primary.id} started`), end.log);
    assert.match(end.log, /tasks desired 2, pending \d, running \d/);
    assert.ok(end.events.some((e: { message: string }) => e.message?.includes(primary.id)), JSON.stringify(end.events));
    // The API shows no secret anywhere in it.
    assertNoSecret('the deployment', JSON.stringify(end), [AWS_KEY.secret_access_key]);
  });

  it('digitalocean: creates one deployment, follows it to ACTIVE, and shows its id and console link', async () => {
    const app = await doApp({ force_build: true });
    const before = dof.count('create');
    const d = await schedule(app.id);
    const end = await final(d.id);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    assert.equal(dof.count('create'), before + 1);
    const ref = end.provider_ref;
    assert.equal(dof.deployment(app.appId, ref.do_deployment_id)?.phase, 'ACTIVE');
    assert.equal(ref.console_url, `https://cloud.digitalocean.com/apps/${app.appId}/deployments/${ref.do_deployment_id}`);
    assert.equal(ref.phase, 'ACTIVE');
    assert.ok(end.log.includes(`DigitalOcean deployment ${ref.do_deployment_id} created for app ${app.appId} (forced build)`), end.log);
    assertNoSecret('the deployment', JSON.stringify(end), [dof.token]);
  });

  it('a failed ECS rollout ends failed with its reason', async () => {
    const app = await ecsApp();
    ecs.failNextRollout('ECS deployment circuit breaker: tasks failed to start (CannotPullContainerError).');
    const end = await final((await schedule(app.id)).id);
    assert.equal(end.state, 'failed');
    assert.equal(end.error, 'ECS rollout failed: ECS deployment circuit breaker: tasks failed to start (CannotPullContainerError).');
    assert.ok(end.provider_ref.ecs_deployment_id);
    assert.match(end.log, /failed 2/, 'the failed task count is logged');
  });

  it('a failed DigitalOcean deployment ends failed with the failing step\'s reason', async () => {
    const app = await doApp();
    dof.failNextDeployment({ code: 'BuildJobFailed', message: 'npm ERR! missing script: build' });
    const end = await final((await schedule(app.id)).id);
    assert.equal(end.state, 'failed');
    assert.match(end.error, /^DigitalOcean deployment \S+ failed: Building service web failed: npm ERR! missing script: build \(BuildJobFailed\)$/);
  });

  it('following a rollout does not tie up a worker: the lease is released between polls and another deployment fires on time', async () => {
    // Polled every 3 s: a process claims a row SHIPCLOCK_PREFETCH_MS (1.5 s) before it is due, so
    // the lease is free for the rest of each interval.
    const app = await ecsApp({ poll_interval_seconds: 3 });
    ecs.rolloutPolls = 4;
    try {
      const d = await schedule(app.id, 1000);
      await following(d.id);
      // Between polls no process holds the row.
      let unleased = 0;
      for (let i = 0; i < 20; i++) {
        const r = await row(d.id);
        if (r.phase === 'following' && r.lease_owner === null) unleased += 1;
        await new Promise((res) => setTimeout(res, 150));
      }
      assert.ok(unleased >= 4, `lease released between polls (${unleased}/20 samples unleased)`);
      // Meanwhile another app's deployment fires at its instant.
      const hook = await startWebhookReceiver();
      try {
        const wh = await s.api('POST', '/v1/apps', { name: `hook-${++n}`, target: { type: 'webhook', url: hook.url } }, s.adminToken);
        const w = await schedule(wh.body.id, 1500);
        await eventually(async () => hook.hits.length > 0, 10_000, 'the webhook');
        const late = hook.hits[0].at - Date.parse(w.run_at);
        assert.ok(late >= 0 && late < 1000, `fired ${late} ms after its instant`);
        assert.equal((await row(d.id)).state, 'running', 'the ECS rollout was still being followed');
      } finally {
        await hook.close();
      }
      const end = await final(d.id);
      assert.equal(end.state, 'succeeded');
      assert.equal(ecs.requests.filter((r) => r.op === 'UpdateService' && r.body.service === app.service).length, 1);
    } finally {
      ecs.rolloutPolls = 2;
    }
  });

  it('canceling a running DigitalOcean deployment cancels it there and ends canceled', async () => {
    const app = await doApp();
    dof.rolloutPolls = 1000;
    try {
      const d = await schedule(app.id, 1000);
      const r = await following(d.id);
      const c = await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, undefined, s.adminToken);
      assert.equal(c.status, 200, JSON.stringify(c.body));
      assert.equal(c.body.result.state, 'canceled');
      assert.equal(dof.count('cancel'), 1);
      assert.equal(dof.deployment(app.appId, r.provider_ref.do_deployment_id)?.phase, 'CANCELED');
      // The next poll does not turn it into something else.
      await new Promise((res) => setTimeout(res, 2000));
      assert.equal((await get(d.id)).state, 'canceled');
    } finally {
      dof.rolloutPolls = 2;
    }
  });

  it('a cancel DigitalOcean refuses answers 409 cancel_refused and leaves the deployment running', async () => {
    const app = await doApp();
    dof.rolloutPolls = 1000;
    try {
      const d = await schedule(app.id, 1000);
      await following(d.id);
      // Only the cancel call: a rollout poll that happens meanwhile must not take the error.
      dof.injectErrors({ status: 500, path: /\/cancel$/ }, 1);
      const c = await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, undefined, s.adminToken);
      assert.equal(c.status, 409, JSON.stringify(c.body));
      assert.equal(c.body.error.code, 'cancel_refused');
      assertNoSecret('the error message', c.body.error.message, [dof.token]);
      const after = await get(d.id);
      assert.equal(after.state, 'running');
      const lease = await s.db.pool.query('SELECT lease_owner FROM deployments WHERE id = $1', [d.id]);
      assert.ok(!String(lease.rows[0].lease_owner ?? '').startsWith('cancel:'), 'the cancel gave its lease back');
      // It can still be canceled once the provider agrees.
      const again = await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, undefined, s.adminToken);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.result.state, 'canceled');
    } finally {
      dof.rolloutPolls = 2;
    }
  });

  /** Leases a followed rollout to `holder`, as a scheduler does from its claim until its poll is answered. */
  async function holdLease(id: string, holder: string) {
    await eventually(async () => (await s.db.pool.query(
      `UPDATE deployments SET lease_owner = $2, lease_until = now() + interval '30 seconds'
        WHERE id = $1 AND (lease_until IS NULL OR lease_until < now())`, [id, holder])).rowCount === 1, 10_000, 'the lease to be free');
  }

  it('a cancel arriving while a scheduler holds the rollout\'s lease waits for it, and no scheduler claims the row meanwhile', async () => {
    const app = await doApp();
    dof.rolloutPolls = 1000;
    try {
      const d = await schedule(app.id, 1000);
      await following(d.id);
      await holdLease(d.id, 'scheduler-under-test');
      const cancels = dof.count('cancel');
      let answered = false;
      const canceling = s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, undefined, s.adminToken).finally(() => { answered = true; });
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(answered, false, 'the cancel waits for the lease instead of answering busy');
      assert.equal(dof.count('cancel'), cancels);
      // While it waits, a claim (FOR UPDATE SKIP LOCKED) passes the row by...
      const probe = await s.db.pool.query('SELECT id FROM deployments WHERE id = $1 FOR UPDATE SKIP LOCKED', [d.id]);
      assert.equal(probe.rowCount, 0, 'no scheduler can claim the row while the cancel waits');
      // ...and the holder can still hand its lease back, due at once, as a scheduler does after a poll.
      await s.db.pool.query(`UPDATE deployments SET lease_owner = NULL, lease_until = NULL, due_at = now() WHERE id = $1 AND lease_owner = $2`, [d.id, 'scheduler-under-test']);
      const c = await canceling;
      assert.equal(c.status, 200, JSON.stringify(c.body));
      assert.equal(c.body.result.state, 'canceled');
      assert.equal(dof.count('cancel'), cancels + 1);
    } finally {
      dof.rolloutPolls = 2;
    }
  });

  it('a cancel whose lease is not given up within 5 s answers 409 busy and leaves the holder its lease', async () => {
    const app = await doApp();
    dof.rolloutPolls = 1000;
    try {
      const d = await schedule(app.id, 1000);
      await following(d.id);
      await holdLease(d.id, 'stuck-scheduler');
      const t0 = Date.now();
      const c = await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, undefined, s.adminToken);
      assert.equal(c.status, 409, JSON.stringify(c.body));
      assert.equal(c.body.error.code, 'busy');
      assert.ok(Date.now() - t0 >= 4900, `answered after ${Date.now() - t0} ms, before the 5 s wait`);
      assert.equal((await row(d.id)).lease_owner, 'stuck-scheduler');
      await s.db.pool.query('UPDATE deployments SET lease_owner = NULL, lease_until = NULL, due_at = now() WHERE id = $1', [d.id]);
      const again = await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, undefined, s.adminToken);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.result.state, 'canceled');
    } finally {
      dof.rolloutPolls = 2;
    }
  });

  it('a rollout whose credential can no longer be decrypted still ends at its timeout, failed, not followed forever', async () => {
    const cred = await s.api('POST', '/v1/credentials', { name: 'do-soon-unreadable', provider: 'digitalocean', token: dof.token }, s.adminToken);
    assert.equal(cred.status, 201);
    const app = await doApp({ credentials: cred.body.id, timeout_seconds: 4 });
    dof.rolloutPolls = 1000;
    try {
      const d = await schedule(app.id, 1000);
      await following(d.id);
      // As if this worker had another SHIPCLOCK_SECRET_KEY: the stored ciphertext no longer opens.
      await s.db.pool.query(`UPDATE credentials SET secret = decode('01' || repeat('00', 40), 'hex') WHERE id = $1`, [cred.body.id]);
      const end = await final(d.id, 30_000);
      assert.equal(end.state, 'failed');
      assert.match(end.error, /did not finish within 4 s/);
    } finally {
      dof.rolloutPolls = 2;
    }
  });

  it('canceling a running ECS deployment answers 409 not_cancellable: an ECS rollout cannot be recalled', async () => {
    const app = await ecsApp();
    ecs.rolloutPolls = 1000;
    const d = await schedule(app.id, 1000);
    try {
      await following(d.id);
      const c = await s.api('POST', `/v1/scheduled_deployments/${d.id}/cancel`, undefined, s.adminToken);
      assert.equal(c.status, 409);
      assert.equal(c.body.error.code, 'not_cancellable');
      assert.match(c.body.error.message, /ecs.*cannot be recalled/i);
      assert.equal((await row(d.id)).state, 'running');
    } finally {
      ecs.rolloutPolls = 2;
    }
    assert.equal((await final(d.id)).state, 'succeeded');
  });

  it('another process resumes following a rollout when the one following it stops', async () => {
    // A second instance on the same database; the first one stops while the rollout is followed.
    const app = await ecsApp();
    ecs.rolloutPolls = 6;
    try {
      const d = await schedule(app.id, 1000);
      await following(d.id);
      const b = await s.another('worker');
      const describesBefore = ecs.count('DescribeServices');
      // Stop every scheduler but b's: the API stays up, the first instance's scheduler is gone.
      await s.sc.scheduler.stop();
      const end = await final(d.id);
      assert.equal(end.state, 'succeeded', JSON.stringify(end));
      assert.ok(ecs.count('DescribeServices') > describesBefore);
      assert.equal(ecs.requests.filter((r) => r.op === 'UpdateService' && r.body.service === app.service).length, 1);
      assert.ok(b.workerId);
    } finally {
      ecs.rolloutPolls = 2;
    }
  });
});

/**
 * Real processes killed with SIGKILL: one dies while its UpdateService is in flight (the call took
 * effect at ECS, the answer never came back), the next one recovers the rollout and dies while
 * following it, and a third follows it to the end — one UpdateService in all.
 */
describe('crash mid-rollout with real processes (SIGKILL)', () => {
  let db: TestDatabase;
  let ecs: EcsFake;
  let proxy: HoldingProxy;
  const children: ChildProcess[] = [];

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    ecs = await startEcsFake({ region: 'us-east-1' });
    ecs.addService({ cluster: 'crash', service: 'api', taskDefinition: { ...TASK_DEF, family: 'api' } });
    // In front of the fake: keeps UpdateService's answer from the caller (the call reaches ECS
    // and takes effect; the caller dies waiting).
    proxy = await startHoldingProxy(ecs.url, (req) => req.headers['x-amz-target'] === `${ECS_TARGET_PREFIX}UpdateService`);
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await proxy?.close();
    await ecs?.close();
    await db?.drop();
  });

  it('is followed to the end after two SIGKILLs, with exactly one UpdateService', async () => {
    const env = testEnv(db.url, { AWS_ENDPOINT_URL_ECS: proxy.url, SHIPCLOCK_LEASE_SECONDS: '5' });
    const a = await spawnShipclock('serve', env, children);
    const api = await adminApi(a, env);
    const cred = (await api('POST', '/v1/credentials', { name: 'aws', provider: 'aws', ...AWS_KEY })).body.id;
    const app = await api('POST', '/v1/apps', { name: 'api', target: { type: 'ecs', region: 'us-east-1', cluster: 'crash', service: 'api', image: 'registry.example/api:2', credentials: cred, poll_interval_seconds: 1 } });
    assert.equal(app.status, 201, JSON.stringify(app.body));
    ecs.rolloutPolls = 8;
    const d = (await api('POST', '/v1/scheduled_deployments', { app: app.body.id, ...utcFields(1500) })).body.result;

    // 1. A dies with its UpdateService in flight (it took effect at ECS).
    await proxy.held;
    await kill9(a);
    proxy.stopHolding();
    assert.equal(ecs.count('UpdateService'), 1);
    const r1 = (await db.pool.query('SELECT state, phase, provider_ref FROM deployments WHERE id = $1', [d.id])).rows[0];
    assert.deepEqual([r1.state, r1.phase, r1.provider_ref], ['running', 'executing', null], 'nothing was recorded of what A started');

    // 2. B recovers it (after A's lease lapses): finds the ECS deployment A made, follows it; dies following.
    const b = await spawnShipclock('worker', env, children);
    const r2 = await eventually(async () => {
      const r = (await db.pool.query('SELECT phase, provider_ref FROM deployments WHERE id = $1', [d.id])).rows[0];
      return r.phase === 'following' && r.provider_ref?.ecs_deployment_id ? r : null;
    }, 20_000, 'B to follow the rollout');
    await kill9(b);
    const primary = ecs.deployments('crash', 'api').find((x) => x.status === 'PRIMARY')!;
    assert.equal(r2.provider_ref.ecs_deployment_id, primary.id, 'B follows the deployment A started');
    assert.equal(r2.provider_ref.task_definition_revision, 2);

    // 3. C follows it to the end.
    await spawnShipclock('worker', env, children);
    const end = await endedRow(db.pool, d.id, 40_000);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    assert.equal(end.provider_ref.ecs_deployment_id, primary.id);
    assert.equal(ecs.count('UpdateService'), 1, 'exactly one UpdateService in total');
    assert.equal(ecs.count('RegisterTaskDefinition'), 1);
    assert.match(end.log, /found ECS deployment \S+ from the interrupted start; following it/);
  });
});
