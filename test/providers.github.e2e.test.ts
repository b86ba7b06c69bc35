/**
 * GitHub Actions end to end through the scheduler: real PostgreSQL, real shipclock (in process,
 * and as real processes killed with SIGKILL), the local GitHub fake standing in for the API
 * (reached through the credential's api_url, http being allowed for localhost only).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/observability/logger.ts';
import { FULL_WORKFLOW, startGithubFake, type GithubFake } from './fakes/github-fake.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { adminApi, endedRow, type HoldingProxy, kill9, spawnShipclock, startHoldingProxy } from './helpers/processes.ts';
import { assertNoSecret } from './helpers/secrets.ts';
import { eventually, startTestServer, testEnv, type TestServer, utcFields } from './helpers/server.ts';

const FINAL = new Set(['succeeded', 'failed', 'canceled', 'skipped', 'missed']);

describe('github_actions through the scheduler', () => {
  let gh: GithubFake;
  let s: TestServer;
  let cred: string;
  let n = 0;
  let logs = '';
  const answers: string[] = [];

  before(async () => {
    gh = await startGithubFake();
    const sink = new Writable({ write(chunk, _e, cb) { logs += chunk; cb(); } });
    s = await startTestServer({ logger: createLogger('debug', sink), env: { LOG_LEVEL: 'debug', SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS: '0' } });
    const r = await api('POST', '/v1/credentials', { name: 'github', provider: 'github', token: gh.token, api_url: `${gh.url}/` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    cred = r.body.id;
  });
  after(async () => {
    await s?.stop();
    await gh?.close();
    // No response and no log line carries the token.
    assertNoSecret('a response', answers.join('\n'), [gh.token]);
    assertNoSecret('a log line', logs, [gh.token]);
  });

  async function api(method: string, p: string, body?: unknown) {
    const r = await s.api(method, p, body, s.adminToken);
    answers.push(JSON.stringify(r.body));
    return r;
  }

  async function ghApp(extra: Record<string, unknown> = {}, retry?: Record<string, number>) {
    n += 1;
    const repository = `acme/e2e-${n}`;
    gh.addWorkflow(repository, 'deploy.yml', FULL_WORKFLOW);
    const r = await api('POST', '/v1/apps', {
      name: `gh-${n}`,
      target: { type: 'github_actions', credentials: cred, repository, workflow: 'deploy.yml', ref: 'main', inputs: { environment: 'production' }, poll_interval_seconds: 1, ...extra },
      ...(retry ? { retry } : {}),
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return { id: r.body.id as string, repository };
  }

  async function schedule(app: string, ms = 1500) {
    const r = await api('POST', '/v1/scheduled_deployments', { app, ...utcFields(ms) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.result as { id: string; run_at: string };
  }

  const final = (id: string, timeoutMs = 40_000) => eventually(async () => {
    const d = (await api('GET', `/v1/scheduled_deployments/${id}`)).body.result;
    return FINAL.has(d.state) ? d : null;
  }, timeoutMs, `deployment ${id} to end`);

  it('the credential: token sealed and never shown, api_url shown; api_url must be https (http for localhost only)', async () => {
    const one = await api('GET', `/v1/credentials/${cred}`);
    assert.deepEqual(Object.keys(one.body).sort(), ['api_url', 'created_at', 'id', 'name', 'provider']);
    assert.equal(one.body.api_url, gh.url);
    const stored = (await s.db.pool.query('SELECT secret, public FROM credentials WHERE id = $1', [cred])).rows[0];
    assert.ok(!stored.secret.toString('latin1').includes(gh.token), 'the token is sealed at rest');
    for (const [bad, why] of [['http://ghe.example.com/api/v3', /https/], ['not a url', /absolute URL/], ['https://user:pw@ghe.example.com/api/v3', /credentials/]] as const) {
      const r = await api('POST', '/v1/credentials', { name: `bad-${bad.length}`, provider: 'github', token: 'ghp_x', api_url: bad });
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.error.field, 'api_url');
      assert.match(r.body.error.message, why);
    }
    const ghes = await api('POST', '/v1/credentials', { name: 'ghes', provider: 'github', token: 'ghp_y', api_url: 'https://ghe.example.com/api/v3' });
    assert.equal(ghes.status, 201, JSON.stringify(ghes.body));
    const noToken = await api('POST', '/v1/credentials', { name: 'no-token', provider: 'github' });
    assert.equal(noToken.status, 400, 'a missing member is a malformed request, as everywhere in the API');
    assert.equal(noToken.body.error.field, 'token');
  });

  it('the target: each field validated (422 naming it), reserved inputs refused, a github credential required', async () => {
    const base = { type: 'github_actions', credentials: cred, repository: 'acme/x', workflow: 'deploy.yml', ref: 'main' };
    const cases: [Record<string, unknown>, string][] = [
      [{ repository: 'acme' }, 'repository'],
      [{ repository: 'acme/x/y' }, 'repository'],
      [{ workflow: 'deploy' }, 'workflow'],
      [{ workflow: '../x.yml' }, 'workflow'],
      [{ ref: 'has space' }, 'ref'],
      [{ ref: 'feature..x' }, 'ref'],
      [{ inputs: { 'has space': 'x' } }, 'inputs.has space'],
      [{ inputs: { deployment_id: 'x' } }, 'inputs.deployment_id'],
    ];
    for (const [over, field] of cases) {
      const r = await api('POST', '/v1/apps', { name: `bad-${++n}`, target: { ...base, ...over } });
      assert.equal(r.status, 422, `${JSON.stringify(over)} → ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.field, `target.${field}`, JSON.stringify(r.body));
    }
    // Wrong types are malformed requests (400), as everywhere in the API, also naming the field.
    for (const [over, field] of [[{ ref: '' }, 'target.ref'], [{ inputs: { version: 2 } }, 'target.inputs.version'], [{ repository: 7 }, 'target.repository']] as const) {
      const r = await api('POST', '/v1/apps', { name: `bad-${++n}`, target: { ...base, ...over } });
      assert.equal(r.status, 400, `${JSON.stringify(over)} → ${JSON.stringify(r.body)}`);
      assert.ok(String(r.body.error.field).startsWith(field.split('.').slice(0, 2).join('.')), JSON.stringify(r.body));
    }
    const doCred = await api('POST', '/v1/credentials', { name: 'do', provider: 'digitalocean', token: 'dop_v1_x' });
    const wrong = await api('POST', '/v1/apps', { name: `bad-${++n}`, target: { ...base, credentials: doCred.body.id } });
    assert.equal(wrong.status, 409);
    assert.equal(wrong.body.error.code, 'wrong_credential_provider');
    assert.equal((await s.db.pool.query("SELECT count(*)::int AS n FROM apps WHERE name LIKE 'bad-%'")).rows[0].n, 0, 'nothing stored on bad input');
  });

  it('a run followed to success: one dispatch, the run id and link in provider_ref, the run in the log and timeline', async () => {
    const app = await ghApp();
    const d = await schedule(app.id);
    const end = await final(d.id);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    const [run] = gh.runs(app.repository);
    assert.equal(gh.dispatches(app.repository), 1);
    assert.equal(end.provider_ref.run_id, String(run.id));
    assert.equal(end.provider_ref.console_url, run.html_url);
    assert.equal(run.display_title, `Deploy deploy ${d.id}`);
    assert.match(end.log, new RegExp(`dispatched \\.github/workflows/deploy\\.yml on main in ${app.repository} with deployment_id, run_at, action, shipclock_id`));
    assert.ok(end.events.some((e: { message: string }) => e.message?.includes(`GitHub Actions run ${run.id} started`)), JSON.stringify(end.events));
    const body = gh.requests.find((r) => r.path.startsWith(`/repos/${app.repository}/`) && r.path.endsWith('/dispatches'))!.body!;
    assert.equal(body.inputs.run_at, new Date(d.run_at).toISOString());
  });

  it('a run followed to failure: failed with the failing job named and the run\'s link', async () => {
    const app = await ghApp();
    gh.failNextRun('Push image');
    const end = await final((await schedule(app.id)).id);
    assert.equal(end.state, 'failed');
    const [run] = gh.runs(app.repository);
    assert.equal(end.error, `GitHub Actions run ${run.id} failed: job "deploy" failed at step "Push image" — ${run.html_url}`);
  });

  it('a rate limit is honoured: the attempt waits until x-ratelimit-reset before calling again, and dispatches once', async () => {
    const app = await ghApp({}, { max_attempts: 3, backoff_seconds: 1 });
    gh.injectErrors({ kind: 'rate_limit', resetInSeconds: 4, path: new RegExp(`^/repos/${app.repository}/`) });
    const d = await schedule(app.id);
    const end = await final(d.id);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    const retry = end.events.find((e: { message: string }) => /GitHub rate limit exceeded \(403\)/.test(e.message ?? ''));
    assert.ok(retry, JSON.stringify(end.events));
    const wait = Number(/retrying in (\d+) s/.exec(retry.message)?.[1]);
    assert.ok(wait >= 3 && wait <= 5, retry.message);
    // The database's own instants: the next attempt was not due before the wait GitHub named.
    const mine = gh.requests.filter((r) => r.path.startsWith(`/repos/${app.repository}/`));
    const limitedAt = mine[0].at;
    const nextAt = mine[1].at;
    assert.ok(nextAt - limitedAt >= (wait - 1) * 1000, `called again ${nextAt - limitedAt} ms after the rate limit (wait ${wait} s)`);
    assert.equal(gh.dispatches(app.repository), 1);
    assert.equal(end.attempts, 2, 'the rate-limited attempt and the one after it');
  });
});

describe('github_actions: crash mid-dispatch with real processes (SIGKILL)', () => {
  let db: TestDatabase;
  let gh: GithubFake;
  let proxy: HoldingProxy;
  const children: ChildProcess[] = [];

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    gh = await startGithubFake();
    gh.addWorkflow('acme/crash', 'deploy.yml', FULL_WORKFLOW);
    gh.runPolls = 6;
    // In front of the fake: keeps the dispatch's answer from the caller (GitHub accepted it and
    // the run exists; the caller dies waiting).
    proxy = await startHoldingProxy(gh.url, (req) => req.method === 'POST' && (req.url ?? '').endsWith('/dispatches'));
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await proxy?.close();
    await gh?.close();
    await db?.drop();
  });

  it('a process killed while its dispatch was in flight: the next one finds the run by its marker and follows it, one dispatch in all', async () => {
    const env = testEnv(db.url, { SHIPCLOCK_LEASE_SECONDS: '5', SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS: '2', LOG_LEVEL: 'debug' });
    const a = await spawnShipclock('serve', env, children);
    const api = await adminApi(a, env);
    const cred = (await api('POST', '/v1/credentials', { name: 'gh', provider: 'github', token: gh.token, api_url: proxy.url })).body.id;
    const app = await api('POST', '/v1/apps', { name: 'crash', target: { type: 'github_actions', credentials: cred, repository: 'acme/crash', workflow: 'deploy.yml', ref: 'main', poll_interval_seconds: 1 } });
    assert.equal(app.status, 201, JSON.stringify(app.body));
    const d = (await api('POST', '/v1/scheduled_deployments', { app: app.body.id, ...utcFields(1500) })).body.result;

    // 1. A dies with its dispatch in flight (GitHub accepted it: the run exists).
    await proxy.held;
    await kill9(a);
    proxy.stopHolding();
    assert.equal(gh.dispatches(), 1);
    const r1 = (await db.pool.query('SELECT state, phase, provider_ref FROM deployments WHERE id = $1', [d.id])).rows[0];
    assert.deepEqual([r1.state, r1.phase, r1.provider_ref], ['running', 'executing', null], 'nothing was recorded of what A started');

    // 2. B recovers it after A's lease lapses: finds the run by its marker and follows it to the end.
    const b = await spawnShipclock('worker', env, children);
    const end = await endedRow(db.pool, d.id, 60_000);
    assert.equal(end.state, 'succeeded', JSON.stringify(end));
    const [run] = gh.runs('acme/crash');
    assert.equal(end.provider_ref.run_id, String(run.id));
    assert.equal(gh.dispatches(), 1, 'exactly one dispatch in total');
    assert.match(end.log, new RegExp(`found GitHub Actions run ${run.id} from the interrupted start by its marker ${d.id}; following it`));
    assertNoSecret('a log line', a.output() + b.output(), [gh.token]);
  });
});
