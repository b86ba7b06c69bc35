/**
 * Kubernetes end to end through the scheduler: real PostgreSQL, real shipclock (in process, and
 * as real processes killed with SIGKILL), the local apps/v1 fake (HTTPS, its CA in the
 * kubeconfig) standing in for a cluster. Also the credentials API for kubeconfigs, and that no
 * secret of a kubeconfig or token reaches a response, a log line or an error.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/observability/logger.ts';
import { startKubernetesFake, type KubernetesFake } from './fakes/kubernetes-fake.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { adminApi, endedRow, kill9, spawnShipclock } from './helpers/processes.ts';
import { assertNoSecret as assertNoSecretIn } from './helpers/secrets.ts';
import { eventually, startTestServer, testEnv, type TestServer, utcFields } from './helpers/server.ts';

const FINAL = new Set(['succeeded', 'failed', 'canceled', 'skipped', 'missed']);

describe('kubernetes through the scheduler', () => {
  let fake: KubernetesFake;
  let s: TestServer;
  let cred: string;
  let n = 0;
  const logs: string[] = [];

  before(async () => {
    fake = await startKubernetesFake();
    const stream = new Writable({ write(chunk, _e, cb) { logs.push(String(chunk)); cb(); } });
    s = await startTestServer({ env: { LOG_LEVEL: 'debug' }, logger: createLogger('debug', stream) });
    const r = await s.api('POST', '/v1/credentials', { name: 'cluster', provider: 'kubernetes', kubeconfig: fake.kubeconfig() }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    cred = r.body.id;
  });
  after(async () => {
    await s?.stop();
    await fake?.close();
  });

  /** Every secret the credentials of this file hold. */
  const secrets = () => [fake.token, fake.kubeconfig()];
  const assertNoSecret = (what: string, text: string) => assertNoSecretIn(what, text, secrets());

  async function app(target: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    n += 1;
    const name = `svc-${n}`;
    fake.addWorkload('Deployment', 'e2e', name, { app: 'registry.example/app:1' });
    const r = await s.api('POST', '/v1/apps', {
      name: `k8s-${n}`, target: { type: 'kubernetes', credentials: cred, namespace: 'e2e', name, poll_interval_seconds: 1, ...target }, ...extra,
    }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return { id: r.body.id as string, name };
  }

  async function schedule(appId: string, ms = 1500) {
    const r = await s.api('POST', '/v1/scheduled_deployments', { app: appId, ...utcFields(ms) }, s.adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result as { id: string };
  }

  const get = async (id: string) => (await s.api('GET', `/v1/scheduled_deployments/${id}`, undefined, s.adminToken)).body.result;
  const final = (id: string, timeoutMs = 40_000) => eventually(async () => {
    const d = await get(id);
    return FINAL.has(d.state) ? d : null;
  }, timeoutMs, `deployment ${id} to end`);

  it('credentials: a kubeconfig is shown by server and context only; bad ones are 422 naming the field without quoting it; nothing stored', async () => {
    const one = await s.api('GET', `/v1/credentials/${cred}`, undefined, s.adminToken);
    assert.deepEqual(Object.keys(one.body).sort(), ['context', 'created_at', 'id', 'name', 'provider', 'server']);
    assert.equal(one.body.server, fake.url);
    assert.equal(one.body.context, 'fake-admin@fake');
    const tok = await s.api('POST', '/v1/credentials', { name: 'by-token', provider: 'kubernetes', server: fake.url, token: fake.token, ca_certificate: fake.ca }, s.adminToken);
    assert.equal(tok.status, 201, JSON.stringify(tok.body));
    assert.deepEqual(Object.keys(tok.body).sort(), ['created_at', 'id', 'name', 'provider', 'server']);
    const before = (await s.db.pool.query('SELECT count(*)::int AS n FROM credentials')).rows[0].n;
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ kubeconfig: fake.kubeconfig().replace(`    token: ${fake.token}`, '    exec: {command: /bin/sh}') }, 'kubeconfig', /exec, a credential plugin/],
      [{ kubeconfig: `${fake.kubeconfig()}\n  - broken: [${fake.token}` }, 'kubeconfig', /not valid YAML/],
      [{ kubeconfig: fake.kubeconfig(), token: fake.token }, 'token', /either kubeconfig, or server and token/],
      [{ server: 'http://10.0.0.1', token: fake.token }, 'server', /https:\/\//],
      [{ server: fake.url }, 'token', /needs token/],
      [{ server: fake.url, token: fake.token, ca_certificate: 'not a pem' }, 'ca_certificate', /PEM/],
      [{}, 'kubeconfig', /needs kubeconfig, or server and token/],
    ];
    for (const [body, field, re] of cases) {
      const r = await s.api('POST', '/v1/credentials', { name: 'bad', provider: 'kubernetes', ...body }, s.adminToken);
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.error.field, field, JSON.stringify(r.body));
      assert.match(r.body.error.message, re);
      assertNoSecret('an error', JSON.stringify(r.body));
    }
    assert.equal((await s.db.pool.query('SELECT count(*)::int AS n FROM credentials')).rows[0].n, before);
    const sealed = (await s.db.pool.query('SELECT public::text || secret::text AS t FROM credentials')).rows.map((r) => r.t).join('\n');
    assertNoSecret('the credentials table', sealed);
    // A kubernetes target must name a kubernetes credential.
    const aws = await s.api('POST', '/v1/credentials', { name: 'aws', provider: 'aws', access_key_id: 'AKIAK8SE2ETEST00001', secret_access_key: 'x' }, s.adminToken);
    const wrong = await s.api('POST', '/v1/apps', { name: 'wrong-cred', target: { type: 'kubernetes', credentials: aws.body.id, namespace: 'e2e', name: 'x' } }, s.adminToken);
    assert.equal(wrong.status, 409, JSON.stringify(wrong.body));
    assert.equal(wrong.body.error.field, 'target.credentials');
  });

  it('an image change is patched once and followed to success; the ref shows the rollout, generation and what it replaced', async () => {
    const a = await app({ image: 'registry.example/app:2' });
    const end = await final((await schedule(a.id)).id);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    const w = fake.workload('Deployment', 'e2e', a.name)!;
    assert.equal(w.spec.template.spec.containers[0].image, 'registry.example/app:2');
    assert.equal(fake.patches(`Deployment/e2e/${a.name}`).length, 1);
    const ref = end.provider_ref;
    assert.equal(ref.generation, w.metadata.generation);
    assert.equal(ref.rollout_id, `Deployment/e2e/${a.name}@${w.metadata.generation}`);
    assert.equal(ref.previous_image, 'registry.example/app:1');
    assert.equal(ref.console_url, `${fake.url}/apis/apps/v1/namespaces/e2e/deployments/${a.name}`);
    assert.match(end.log, /container app image registry\.example\/app:1 → registry\.example\/app:2/);
    assert.match(end.log, /rollout complete/);
    assert.ok(end.events.some((e: { message?: string }) => /rollout of Deployment e2e\/svc-\d+ started/.test(e.message ?? '')), JSON.stringify(end.events));
    assertNoSecret('the deployment', JSON.stringify(end));
  });

  it('ProgressDeadlineExceeded ends the deployment failed with the condition message', async () => {
    const a = await app({ image: 'registry.example/app:broken' });
    fake.failNextRollout();
    const end = await final((await schedule(a.id)).id);
    assert.equal(end.state, 'failed', JSON.stringify(end));
    assert.match(end.error, new RegExp(`^Kubernetes rollout of Deployment e2e/${a.name} failed: ProgressDeadlineExceeded: ReplicaSet "${a.name}-[0-9a-f]+" has timed out progressing\\.$`));
    assert.equal(fake.patches(`Deployment/e2e/${a.name}`).length, 1);
  });

  it('an API error quoting the bearer token is retried and redacted: no secret in the deployment, its events or the server log', async () => {
    const a = await app({}, { retry: { max_attempts: 3, backoff_seconds: 1 } });
    fake.injectErrors({ status: 500, method: 'GET', echoAuth: true });
    const end = await final((await schedule(a.id)).id);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    const text = JSON.stringify(end);
    assert.ok(text.includes('Kubernetes API server error (500)'), text);
    assert.ok(text.includes('[REDACTED]'), 'the echoed token was masked');
    assert.equal(fake.patches(`Deployment/e2e/${a.name}`).length, 1);
    assertNoSecret('the deployment', text);
    assertNoSecret('the server log', logs.join(''));
    const all = await s.api('GET', '/v1/scheduled_deployments?limit=100', undefined, s.adminToken);
    assertNoSecret('the list', JSON.stringify(all.body));
  });
});

/**
 * Real processes killed with SIGKILL: one dies while its PATCH is in flight (the patch took effect
 * in the cluster, the answer never came back, nothing was recorded); the next one recovers: finds
 * its own change on the Deployment and follows it to the end — one PATCH in all.
 */
describe('kubernetes: crash mid-rollout with real processes (SIGKILL)', () => {
  let db: TestDatabase;
  let fake: KubernetesFake;
  const children: ChildProcess[] = [];

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    fake = await startKubernetesFake();
    fake.addWorkload('Deployment', 'crash', 'api', { api: 'registry.example/api:1' });
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await fake?.close();
    await db?.drop();
  });

  it('is recovered by the next process without a second patch', async () => {
    const env = testEnv(db.url, { SHIPCLOCK_LEASE_SECONDS: '5' });
    const a = await spawnShipclock('serve', env, children);
    const api = await adminApi(a, env);
    const cred = await api('POST', '/v1/credentials', { name: 'cluster', provider: 'kubernetes', kubeconfig: fake.kubeconfig() });
    assert.equal(cred.status, 201, JSON.stringify(cred.body));
    const app = await api('POST', '/v1/apps', { name: 'api', target: { type: 'kubernetes', credentials: cred.body.id, namespace: 'crash', name: 'api', image: 'registry.example/api:2', poll_interval_seconds: 1 } });
    assert.equal(app.status, 201, JSON.stringify(app.body));
    fake.rolloutPolls = 4;
    fake.holdPatchAnswers = true;
    const d = (await api('POST', '/v1/scheduled_deployments', { app: app.body.id, ...utcFields(1500) })).body.result;

    // 1. A dies with its PATCH in flight (it took effect in the cluster).
    await fake.held;
    await kill9(a);
    fake.holdPatchAnswers = false;
    assert.equal(fake.patches().length, 1);
    const r1 = (await db.pool.query('SELECT state, phase, provider_ref FROM deployments WHERE id = $1', [d.id])).rows[0];
    assert.deepEqual([r1.state, r1.phase, r1.provider_ref], ['running', 'executing', null], 'nothing was recorded of what A did');

    // 2. B recovers it after A's lease lapses: finds its own change on the Deployment, follows it to the end.
    const b = await spawnShipclock('worker', env, children);
    const end = await endedRow(db.pool, d.id, 60_000);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    assert.equal(fake.patches().length, 1, 'exactly one PATCH in total');
    assert.match(end.log, /already carries this deployment's change \(generation 2\); following it/);
    assert.equal(end.provider_ref.previous_image, 'registry.example/api:1', 'what a rollback needs was read back from the object');
    assertNoSecretIn('the worker output', b.output(), [fake.token]);
  });
});
