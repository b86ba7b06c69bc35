/**
 * The GitHub Actions provider against the local GitHub fake, beyond the shared conformance suite:
 * which inputs are passed, how the run is found (return_run_details, marker, time), rate limits,
 * permanent errors, the failing job in the error, rollback, and crash recovery without a second
 * dispatch. Driven directly (no database).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import { githubActionsProvider as gh, githubRateLimitWait, parseWorkflow, type GithubActionsTarget } from '../src/providers/github-actions.ts';
import type { ProviderContext, ProviderRef, StepResult } from '../src/providers/types.ts';
import { BARE_WORKFLOW, FULL_WORKFLOW, startGithubFake, type GithubFake } from './fakes/github-fake.ts';

let fake: GithubFake;
const saved = process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS;
let n = 0;
const logs: string[] = [];
const results: StepResult[] = [];

before(async () => {
  fake = await startGithubFake();
  process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS = '0';
});
after(async () => {
  if (saved === undefined) delete process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS;
  else process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS = saved;
  // Nothing any test saw carries the token.
  const text = JSON.stringify(results) + logs.join('\n');
  assert.ok(!text.includes(fake.token), 'the token leaked into a result or a log line');
  await fake.close();
});
afterEach(() => {
  fake.legacyDispatch = false;
  fake.rejectRunDetails = false;
  fake.runPolls = 2;
});

function repoWith(yaml: string, file = 'deploy.yml'): { repository: string; workflowId: number } {
  const repository = `acme/svc-${++n}`;
  return { repository, workflowId: fake.addWorkflow(repository, file, yaml) };
}

function ctx(target: Partial<GithubActionsTarget> & { repository: string }, over: { id?: string; ref?: ProviderRef | null; startedAt?: Date; attempt?: number } = {}): ProviderContext<GithubActionsTarget> {
  return {
    deployment: {
      id: over.id ?? randomUUID(), teamId: 't', appId: 'a', appName: 'svc', runAt: new Date('2026-12-02T20:00:00Z'),
      attempt: over.attempt ?? 1, startedAt: over.startedAt ?? new Date(),
    },
    target: { type: 'github_actions', workflow: 'deploy.yml', ref: 'main', poll_interval_seconds: 1, timeout_seconds: 600, ...target },
    credentials: { provider: 'github', token: fake.token, api_url: fake.url },
    ref: over.ref ?? null,
    signal: new AbortController().signal,
    log: (l) => logs.push(l),
  };
}

const keep = (r: StepResult) => (results.push(r), r);

async function toEnd(c: ProviderContext<GithubActionsTarget>, first: StepResult, poll = gh.poll!): Promise<StepResult> {
  let r = keep(first);
  for (let i = 0; i < 20 && r.kind === 'follow'; i++) r = keep(await poll({ ...c, ref: r.ref }));
  return r;
}

const dispatchBodies = (repository: string) => fake.requests.filter((r) => r.method === 'POST' && r.path.startsWith(`/repos/${repository}/`) && r.path.endsWith('/dispatches')).map((r) => r.body!);

describe('github_actions: inputs', () => {
  test('passes deployment_id, run_at, action and shipclock_id only because the workflow declares them, with the target\'s own inputs', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository, inputs: { environment: 'production' } });
    const end = await toEnd(c, await gh.start(c));
    assert.equal(end.kind, 'succeeded', JSON.stringify(end));
    const [body] = dispatchBodies(repository);
    assert.deepEqual(body, {
      ref: 'main', return_run_details: true,
      inputs: { environment: 'production', deployment_id: c.deployment.id, run_at: '2026-12-02T20:00:00.000Z', action: 'deploy', shipclock_id: c.deployment.id },
    });
    assert.equal(fake.runs(repository)[0].display_title, `Deploy deploy ${c.deployment.id}`);
  });

  test('a workflow that declares no inputs gets none (GitHub would refuse undeclared ones)', async () => {
    const { repository } = repoWith(BARE_WORKFLOW, 'ship.yml');
    const c = ctx({ repository, workflow: 'ship.yml' });
    assert.equal((await toEnd(c, await gh.start(c))).kind, 'succeeded');
    assert.deepEqual(dispatchBodies(repository)[0].inputs, {});
  });

  test('a target input the workflow does not declare fails before dispatching, naming it', async () => {
    const { repository } = repoWith(BARE_WORKFLOW, 'ship.yml');
    const r = keep(await gh.start(ctx({ repository, workflow: 'ship.yml', inputs: { version: '2' } })));
    assert.equal(r.kind, 'failed');
    assert.match((r as { error: string }).error, /\.github\/workflows\/ship\.yml does not declare the input version/);
    assert.equal(fake.dispatches(repository), 0);
  });

  test('the workflow can be named by its numeric id', async () => {
    const { repository, workflowId } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository, workflow: String(workflowId) });
    assert.equal((await toEnd(c, await gh.start(c))).kind, 'succeeded');
    assert.equal(fake.dispatches(repository), 1);
  });

  test('parseWorkflow: `on` as a string, a list or a map; the marker needs shipclock_id declared and shown in run-name', () => {
    assert.equal(parseWorkflow('on: workflow_dispatch\njobs: {}').hasDispatch, true);
    assert.equal(parseWorkflow('on: [push]\njobs: {}').hasDispatch, false);
    const full = parseWorkflow(FULL_WORKFLOW);
    assert.deepEqual([...full.inputs].sort(), ['action', 'deployment_id', 'environment', 'run_at', 'shipclock_id']);
    assert.equal(full.markerInTitle, true);
    assert.equal(parseWorkflow('run-name: x\non:\n  workflow_dispatch:\n    inputs:\n      shipclock_id: {}\n').markerInTitle, false);
    assert.equal(parseWorkflow('run-name: "d ${{ github.event.inputs.shipclock_id }}"\non:\n  workflow_dispatch:\n    inputs:\n      shipclock_id: {}\n').markerInTitle, true);
  });
});

describe('github_actions: finding the run', () => {
  test('with return_run_details the run id comes from the dispatch answer (no list needed)', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    const first = keep(await gh.start(c));
    assert.equal(first.kind, 'follow');
    const run = fake.runs(repository)[0];
    assert.equal((first as { ref: ProviderRef }).ref.run_id, String(run.id));
    assert.equal((first as { ref: ProviderRef }).ref.console_url, run.html_url);
    assert.equal(fake.requests.filter((r) => r.path.startsWith(`/repos/${repository}/`) && /\/runs\?/.test(r.path)).length, 0);
  });

  test('a server that answers 204 (before return_run_details): the run is found by its shipclock_id marker, not a run someone else started', async () => {
    fake.legacyDispatch = true;
    const { repository, workflowId } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    const first = keep(await gh.start(c));
    const other = fake.externalDispatch(repository, workflowId, 'main', { shipclock_id: 'not-ours' });
    assert.ok(first.kind === 'follow' || first.kind === 'succeeded');
    const end = await toEnd(c, first);
    assert.equal(end.kind, 'succeeded');
    assert.notEqual(end.ref?.run_id, String(other));
    assert.equal(fake.run(end.ref!.run_id as string)!.display_title, `Deploy deploy ${c.deployment.id}`);
    assert.ok(logs.some((l) => l.includes(`by its marker ${c.deployment.id}`)));
  });

  test('204 and no marker: the first run created since the dispatch, not an older one', async () => {
    fake.legacyDispatch = true;
    const { repository, workflowId } = repoWith(BARE_WORKFLOW, 'ship.yml');
    const older = fake.externalDispatch(repository, workflowId, 'main', {}, new Date(Date.now() - 3000));
    const c = ctx({ repository, workflow: 'ship.yml' });
    const end = await toEnd(c, await gh.start(c));
    assert.equal(end.kind, 'succeeded');
    assert.notEqual(end.ref?.run_id, String(older));
    assert.ok(logs.some((l) => /by time/.test(l)));
  });

  test('a server that refuses return_run_details (422) is asked again without it: one run', async () => {
    fake.rejectRunDetails = true;
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    const end = await toEnd(c, await gh.start(c));
    assert.equal(end.kind, 'succeeded', JSON.stringify(end));
    const bodies = dispatchBodies(repository);
    assert.equal(bodies.length, 2);
    assert.equal(bodies[1].return_run_details, undefined);
    assert.equal(fake.dispatches(repository), 1);
  });
});

describe('github_actions: conclusions and errors', () => {
  test('a failed run fails with the failing job and step named, and the run\'s link', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    fake.failNextRun('Push image');
    const c = ctx({ repository });
    const end = await toEnd(c, await gh.start(c));
    assert.equal(end.kind, 'failed');
    const run = fake.runs(repository)[0];
    assert.equal((end as { error: string }).error, `GitHub Actions run ${run.id} failed: job "deploy" failed at step "Push image" — ${run.html_url}`);
    assert.equal(end.ref?.conclusion, 'failure');
  });

  test('a primary rate limit (403, x-ratelimit-remaining 0) is a retry after x-ratelimit-reset; a secondary one after retry-after', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    fake.injectErrors({ kind: 'rate_limit', resetInSeconds: 42 });
    const r = keep(await gh.start(ctx({ repository })));
    assert.equal(r.kind, 'retry');
    assert.ok(r.kind === 'retry' && r.afterSeconds! >= 40 && r.afterSeconds! <= 43, JSON.stringify(r));
    assert.match((r as { error: string }).error, /GitHub rate limit exceeded \(403\)/);
    fake.injectErrors({ kind: 'secondary_rate_limit', status: 429, retryAfter: 7 });
    const s = keep(await gh.start(ctx({ repository })));
    assert.ok(s.kind === 'retry' && s.afterSeconds === 7, JSON.stringify(s));
    assert.equal(fake.dispatches(repository), 0);
    assert.equal(githubRateLimitWait({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1100' }, 1_000_000), 100);
  });

  test('a rate limit while following keeps the run (retry with its ref), and the next poll goes on without dispatching', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    const first = keep(await gh.start(c));
    assert.equal(first.kind, 'follow');
    fake.injectErrors({ kind: 'secondary_rate_limit', status: 403, retryAfter: 5 });
    const limited = keep(await gh.poll!({ ...c, ref: (first as { ref: ProviderRef }).ref }));
    assert.ok(limited.kind === 'retry' && limited.afterSeconds === 5 && limited.ref?.run_id === (first as { ref: ProviderRef }).ref.run_id, JSON.stringify(limited));
    assert.equal((await toEnd(c, await gh.poll!({ ...c, ref: limited.ref! }))).kind, 'succeeded');
    assert.equal(fake.dispatches(repository), 1);
  });

  test('a rate limit just after the dispatch is a follow, never a second dispatch', async () => {
    fake.legacyDispatch = true;
    const { repository } = repoWith(FULL_WORKFLOW);
    fake.injectErrors({ kind: 'rate_limit', resetInSeconds: 30, path: /\/runs$/ });
    const c = ctx({ repository });
    const first = keep(await gh.start(c));
    assert.equal(first.kind, 'follow', JSON.stringify(first));
    assert.ok(first.kind === 'follow' && first.afterSeconds >= 29);
    assert.equal((await toEnd(c, first)).kind, 'succeeded');
    assert.equal(fake.dispatches(repository), 1);
  });

  test('5xx and network errors are retried; 401, 404 and 422 fail at once with a clear message', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    fake.injectErrors({ kind: 'status', status: 502 });
    const r502 = keep(await gh.start(ctx({ repository })));
    assert.ok(r502.kind === 'retry' && /GitHub server error \(502\)/.test(r502.error), JSON.stringify(r502));
    const net = keep(await gh.start({ ...ctx({ repository }), credentials: { provider: 'github', token: fake.token, api_url: 'http://127.0.0.1:1' } }));
    assert.ok(net.kind === 'retry' && /cannot reach the GitHub API/.test(net.error), JSON.stringify(net));
    const r401 = keep(await gh.start({ ...ctx({ repository }), credentials: { provider: 'github', token: 'ghp_wrong', api_url: fake.url } }));
    assert.ok(r401.kind === 'failed' && /GitHub rejected the token \(401\)/.test(r401.error), JSON.stringify(r401));
    const r404 = keep(await gh.start(ctx({ repository: 'acme/missing' })));
    assert.ok(r404.kind === 'failed' && /workflow deploy\.yml of acme\/missing was not found \(404\)/.test(r404.error), JSON.stringify(r404));
    fake.injectErrors({ kind: 'status', status: 422, path: /\/dispatches$/ });
    const r422 = keep(await gh.start(ctx({ repository })));
    assert.ok(r422.kind === 'failed' && /GitHub refused the dispatch of \.github\/workflows\/deploy\.yml on main in acme\/svc-\d+ \(422\) — Required input 'version' not provided/.test(r422.error), JSON.stringify(r422));
    assert.equal(fake.dispatches(repository), 0);
  });
});

describe('github_actions: crash recovery', () => {
  test('crash after a 204 dispatch, before the ref was saved: recover() finds the run by its marker, one dispatch', async () => {
    fake.legacyDispatch = true;
    fake.runPolls = 3;
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    keep(await gh.start(c));
    const rec = keep(await gh.recover!(ctx({ repository }, { id: c.deployment.id, startedAt: c.deployment.startedAt })));
    assert.ok(rec.kind === 'follow' || rec.kind === 'succeeded', JSON.stringify(rec));
    assert.equal(rec.ref?.run_id, String(fake.runs(repository)[0].id));
    assert.equal((await toEnd(c, rec)).kind, 'succeeded');
    assert.equal(fake.dispatches(repository), 1);
    assert.ok(logs.some((l) => /found GitHub Actions run \d+ from the interrupted start by its marker/.test(l)));
  });

  test('recover() with nothing dispatched waits for GitHub to list runs, then dispatches once', async () => {
    process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS = '1';
    try {
      const { repository } = repoWith(FULL_WORKFLOW);
      const c = ctx({ repository });
      const rec = keep(await gh.recover!(c));
      assert.equal(rec.kind, 'follow');
      const lists = fake.requests.filter((r) => r.path.startsWith(`/repos/${repository}/`) && /\/runs\?/.test(r.path));
      assert.ok(lists.length >= 2, 'looked again before dispatching');
      assert.equal(fake.dispatches(repository), 1);
    } finally {
      process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS = '0';
    }
  });
});

describe('github_actions: rollback', () => {
  test('dispatches the same workflow with action: rollback and follows that run', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    fake.failNextRun('Migrate');
    const deployed = await toEnd(c, await gh.start(c));
    assert.equal(deployed.kind, 'failed');
    const rb = keep(await gh.rollback!({ ...c, ref: deployed.ref! }));
    assert.equal(rb.kind, 'follow', JSON.stringify(rb));
    const end = await toEnd(c, rb, gh.pollRollback!);
    assert.equal(end.kind, 'succeeded', JSON.stringify(end));
    const bodies = dispatchBodies(repository);
    assert.equal(bodies.length, 2);
    assert.equal(bodies[1].inputs.action, 'rollback');
    assert.equal(bodies[1].inputs.shipclock_id, `${c.deployment.id}-rollback`);
    assert.equal(end.ref?.action, 'rollback');
    assert.equal(end.ref?.deploy_run_id, deployed.ref?.run_id);
    assert.notEqual(end.ref?.run_id, deployed.ref?.run_id);
    assert.match(String((end as { message?: string }).message), /rollback run \d+ succeeded/);
  });

  test('a failed rollback run says so, with its job', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    const deployed = await toEnd(c, await gh.start(c));
    fake.failNextRun('Restore');
    const end = await toEnd(c, keep(await gh.rollback!({ ...c, ref: deployed.ref! })), gh.pollRollback!);
    assert.equal(end.kind, 'failed');
    assert.match((end as { error: string }).error, /^GitHub Actions rollback run \d+ failed: job "deploy" failed at step "Restore"/);
  });

  test('a workflow with no `action` input cannot roll back: failed, saying so, nothing dispatched', async () => {
    const { repository } = repoWith(BARE_WORKFLOW, 'ship.yml');
    const c = ctx({ repository, workflow: 'ship.yml' });
    const deployed = await toEnd(c, await gh.start(c));
    const rb = keep(await gh.rollback!({ ...c, ref: deployed.ref! }));
    assert.equal(rb.kind, 'failed');
    assert.match((rb as { error: string }).error, /declares no `action` input/);
    assert.equal(fake.dispatches(repository), 1);
  });

  test('rollback() again after a crash (with the deployment\'s ref, or its own) follows the rollback run it dispatched: one rollback dispatch', async () => {
    fake.runPolls = 4;
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    const deployed = await toEnd(c, await gh.start(c));
    const rb = keep(await gh.rollback!({ ...c, ref: deployed.ref! }));
    assert.equal(rb.kind, 'follow');
    const again = keep(await gh.rollback!({ ...c, ref: deployed.ref! }));
    assert.equal(again.ref?.run_id, rb.ref?.run_id);
    const own = keep(await gh.rollback!({ ...c, ref: rb.ref! }));
    assert.equal(own.ref?.run_id, rb.ref?.run_id);
    assert.equal((await toEnd(c, own, gh.pollRollback!)).kind, 'succeeded');
    assert.equal(fake.dispatches(repository), 2, 'one deploy, one rollback');
  });
});

describe('github_actions: a recovery that cannot look', () => {
  test('recover() meeting a 503 returns retry with the dispatch marked uncertain, and the next attempt searches instead of dispatching', async () => {
    fake.legacyDispatch = true;
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    keep(await gh.start(c)); // dispatched; the process dies before saving anything
    fake.injectErrors({ kind: 'status', status: 503 });
    const rec = keep(await gh.recover!(ctx({ repository }, { id: c.deployment.id, startedAt: c.deployment.startedAt })));
    assert.equal(rec.kind, 'retry', JSON.stringify(rec));
    assert.equal(rec.ref?.dispatch_uncertain, true);
    const next = keep(await gh.start(ctx({ repository }, { id: c.deployment.id, startedAt: c.deployment.startedAt, attempt: 2, ref: rec.ref })));
    assert.equal(next.ref?.run_id, String(fake.runs(repository)[0].id));
    assert.equal((await toEnd(c, next)).kind, 'succeeded');
    assert.equal(fake.dispatches(repository), 1);
  });
});

describe('github_actions: an ambiguous dispatch answer', () => {
  test('a 502 to the dispatch itself is a retry marked uncertain: the next attempt looks for the run first, and with none listed dispatches once', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    // (GitHub behind a proxy may have taken a dispatch answered 502; this fake did not.)
    fake.injectErrors({ kind: 'status', status: 502, path: /\/dispatches$/ });
    const c = ctx({ repository });
    const first = keep(await gh.start(c));
    assert.ok(first.kind === 'retry' && first.ref?.dispatch_uncertain === true, JSON.stringify(first));
    assert.equal(fake.runs(repository).length, 0);
    const next = keep(await gh.start({ ...ctx({ repository }, { id: c.deployment.id, startedAt: c.deployment.startedAt, attempt: 2, ref: first.ref }) }));
    assert.equal((await toEnd(c, next)).kind, 'succeeded');
    assert.equal(fake.dispatches(repository), 1);
    assert.ok(logs.some((l) => l === 'no GitHub Actions run from the interrupted start; dispatching'));
  });
});

describe('github_actions: the rollback contract of the scheduler', () => {
  test('the deployment\'s ref says changed: true once dispatched, not before', async () => {
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    const first = keep(await gh.start(c));
    assert.equal(first.ref?.changed, true);
    const refused = keep(await gh.start(ctx({ repository, inputs: { nope: 'x' } })));
    assert.equal(refused.kind, 'failed');
    assert.equal(refused.ref?.changed, undefined);
  });

  test('ctx.rollback: seq 2 is a new rollback run with its own marker; recovering follows the run of the interrupted call', async () => {
    fake.runPolls = 4;
    const { repository } = repoWith(FULL_WORKFLOW);
    const c = ctx({ repository });
    const deployed = await toEnd(c, await gh.start(c));
    const call = (seq: number, recovering: boolean, rollbackRef: ProviderRef | null) =>
      gh.rollback!({ ...c, ref: deployed.ref!, rollback: { seq, recovering, deploymentRef: deployed.ref!, rollbackRef } } as ProviderContext<GithubActionsTarget>);
    const one = keep(await call(1, false, null));
    const again = keep(await call(1, true, null)); // the process died before saving one's ref
    assert.equal(again.ref?.run_id, one.ref?.run_id);
    const two = keep(await call(2, false, null));
    assert.notEqual(two.ref?.run_id, one.ref?.run_id);
    assert.equal(dispatchBodies(repository).at(-1)!.inputs.shipclock_id, `${c.deployment.id}-rollback-2`);
    const resumed = keep(await call(2, true, two.ref!));
    assert.equal(resumed.ref?.run_id, two.ref?.run_id);
    assert.equal(fake.dispatches(repository), 3, 'the deployment and two rollbacks');
  });

  test('no `action` input: failed with rollback_not_possible', async () => {
    const { repository } = repoWith(BARE_WORKFLOW, 'ship.yml');
    const rb = keep(await gh.rollback!(ctx({ repository, workflow: 'ship.yml' }, { ref: { changed: true, run_id: '1' } })));
    assert.equal(rb.kind, 'failed');
    assert.equal(rb.ref?.rollback_not_possible, true);
  });
});
