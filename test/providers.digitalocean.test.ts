/**
 * The DigitalOcean provider against the local App Platform fake (SHIPCLOCK_DIGITALOCEAN_API_URL).
 * No database: contexts are built by hand.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { digitaloceanProvider, rateLimitWait, type DigitaloceanTarget } from '../src/providers/digitalocean.ts';
import type { ProviderContext, ProviderRef, StepResult } from '../src/providers/types.ts';
import { startDigitaloceanFake, type DigitaloceanFake } from './fakes/digitalocean-fake.ts';

let fake: DigitaloceanFake;

before(async () => {
  fake = await startDigitaloceanFake();
  process.env.SHIPCLOCK_DIGITALOCEAN_API_URL = fake.url + '/';
});
after(async () => {
  delete process.env.SHIPCLOCK_DIGITALOCEAN_API_URL;
  await fake.close();
});

interface Ctx extends ProviderContext<DigitaloceanTarget> {
  lines: string[];
}

function ctx(appId: string, over: { target?: Partial<DigitaloceanTarget>; ref?: ProviderRef | null; startedAt?: Date; attempt?: number; token?: string } = {}): Ctx {
  const lines: string[] = [];
  return {
    deployment: {
      id: 'dep-1', teamId: 't', appId: 'a', appName: 'web', runAt: new Date(), attempt: over.attempt ?? 1,
      startedAt: over.startedAt ?? new Date(Date.now() - 1000),
    },
    target: { type: 'digitalocean', app_id: appId, poll_interval_seconds: 2, ...over.target },
    credentials: { provider: 'digitalocean', token: over.token ?? fake.token },
    ref: over.ref ?? null,
    signal: new AbortController().signal,
    log: (l) => lines.push(l),
    lines,
  };
}

async function followToEnd(c: Ctx, first: StepResult, max = 20): Promise<StepResult> {
  let r = first;
  for (let i = 0; i < max && r.kind === 'follow'; i++) r = await digitaloceanProvider.poll!({ ...c, ref: r.ref });
  return r;
}

describe('digitalocean provider', () => {
  beforeEach(() => {
    fake.rolloutPolls = 2;
  });

  test('is cancellable', () => {
    assert.equal(digitaloceanProvider.type, 'digitalocean');
    assert.equal(digitaloceanProvider.cancellable, true);
  });

  test('creates a deployment with force_build and follows it to ACTIVE', async () => {
    const app = fake.addApp();
    const c = ctx(app, { target: { force_build: true } });
    const r = await digitaloceanProvider.start(c);
    assert.equal(r.kind, 'follow', JSON.stringify(r));
    if (r.kind !== 'follow') return;
    const req = fake.requests.filter((x) => x.method === 'POST').at(-1)!;
    assert.equal(req.path, `/v2/apps/${app}/deployments`);
    assert.deepEqual(req.body, { force_build: true });
    assert.equal(req.headers.authorization, `Bearer ${fake.token}`);
    assert.equal(r.afterSeconds, 2);
    const id = String(r.ref.do_deployment_id);
    assert.equal(r.ref.app_id, app);
    assert.equal(r.ref.console_url, `https://cloud.digitalocean.com/apps/${app}/deployments/${id}`);
    const end = await followToEnd(c, r);
    assert.equal(end.kind, 'succeeded', JSON.stringify(end));
    assert.ok(c.lines.some((l) => l.includes(id) && l.includes('ACTIVE')), c.lines.join('\n'));
    assert.ok(c.lines.some((l) => l.includes('BUILDING')), c.lines.join('\n'));
  });

  test('force_build defaults to false', async () => {
    const app = fake.addApp();
    await digitaloceanProvider.start(ctx(app));
    assert.deepEqual(fake.requests.filter((x) => x.method === 'POST').at(-1)!.body, { force_build: false });
  });

  test('ERROR fails with the failing step reason', async () => {
    const app = fake.addApp();
    fake.failNextDeployment({ code: 'BuildJobFailed', message: 'npm ERR! missing script: build' });
    const c = ctx(app);
    const end = await followToEnd(c, await digitaloceanProvider.start(c));
    assert.equal(end.kind, 'failed');
    if (end.kind === 'failed') {
      assert.match(end.error, /failed: Building service web failed: npm ERR! missing script: build \(BuildJobFailed\)$/);
    }
  });

  test('SUPERSEDED and CANCELED fail saying so', async () => {
    const app = fake.addApp();
    fake.rolloutPolls = 5;
    const c = ctx(app);
    const r = await digitaloceanProvider.start(c);
    fake.externalDeploy(app);
    const p = await digitaloceanProvider.poll!({ ...c, ref: (r as any).ref });
    assert.equal(p.kind, 'failed');
    if (p.kind === 'failed') assert.match(p.error, /superseded/);

    const app2 = fake.addApp();
    const c2 = ctx(app2);
    const r2 = await digitaloceanProvider.start(c2);
    assert.equal(r2.kind, 'follow');
    await digitaloceanProvider.cancel!({ ...c2, ref: (r2 as any).ref });
    assert.equal(fake.count('cancel'), 1);
    assert.equal(fake.requests.at(-1)!.path, `/v2/apps/${app2}/deployments/${(r2 as any).ref.do_deployment_id}/cancel`);
    const p2 = await digitaloceanProvider.poll!({ ...c2, ref: (r2 as any).ref });
    assert.equal(p2.kind, 'failed');
    if (p2.kind === 'failed') assert.match(p2.error, /was canceled/);
  });

  test('429 is retried after retry-after; 5xx is retried; the rollout goes on', async () => {
    const app = fake.addApp();
    const c = ctx(app);
    fake.injectErrors({ status: 429, retryAfter: 7 });
    const r1 = await digitaloceanProvider.start(c);
    assert.equal(r1.kind, 'retry');
    if (r1.kind === 'retry') {
      assert.equal(r1.afterSeconds, 7);
      assert.match(r1.error, /rate limit exceeded \(429\)/);
    }
    const r2 = await digitaloceanProvider.start({ ...c, deployment: { ...c.deployment, attempt: 2 } });
    assert.equal(r2.kind, 'follow');
    fake.injectErrors({ status: 503 });
    const p = await digitaloceanProvider.poll!({ ...c, ref: (r2 as any).ref });
    assert.equal(p.kind, 'retry');
    if (p.kind === 'retry') assert.deepEqual(p.ref, (r2 as any).ref);
    assert.equal((await followToEnd(c, r2)).kind, 'succeeded');
    assert.equal(fake.count('create') >= 1, true);
  });

  test('rateLimitWait falls back to ratelimit-reset (a Unix time)', () => {
    const now = 1_700_000_000_000;
    assert.equal(rateLimitWait(new Headers({ 'ratelimit-reset': String(now / 1000 + 42) }), now), 42);
    assert.equal(rateLimitWait(new Headers({ 'retry-after': '3', 'ratelimit-reset': '1' }), now), 3);
    assert.equal(rateLimitWait(new Headers({}), now), undefined);
  });

  test('401, 403 and 404 fail at once with a clear message, and the token never shows', async () => {
    const app = fake.addApp();
    let r = await digitaloceanProvider.start(ctx(app, { token: 'dop_v1_wrongtoken123' }));
    assert.equal(r.kind, 'failed');
    if (r.kind === 'failed') assert.match(r.error, /rejected the token \(401\)/);
    assert.ok(!JSON.stringify(r).includes('dop_v1_wrongtoken123'));

    fake.injectErrors({ status: 403 });
    r = await digitaloceanProvider.start(ctx(app));
    assert.equal(r.kind, 'failed');
    if (r.kind === 'failed') assert.match(r.error, /not allowed .* \(403\)/);

    r = await digitaloceanProvider.start(ctx('4f6c71e2-0000-0000-0000-000000000000'));
    assert.equal(r.kind, 'failed');
    if (r.kind === 'failed') assert.match(r.error, /app 4f6c71e2-0000-0000-0000-000000000000 was not found \(404\)/);
  });

  test('a rollout that does not end within timeout_seconds fails saying so', async () => {
    const app = fake.addApp();
    fake.rolloutPolls = 1000;
    const c = ctx(app, { target: { timeout_seconds: 30 } });
    const r = await digitaloceanProvider.start(c);
    assert.equal(r.kind, 'follow');
    const late = { ...c, deployment: { ...c.deployment, startedAt: new Date(Date.now() - 31_000) } };
    const p = await digitaloceanProvider.poll!({ ...late, ref: (r as any).ref });
    assert.equal(p.kind, 'failed');
    if (p.kind === 'failed') assert.equal(p.error, 'the DigitalOcean deployment did not finish within 30 s');
    // A start that comes after the deadline creates nothing.
    const before = fake.count('create');
    const s = await digitaloceanProvider.start(late);
    assert.equal(s.kind, 'failed');
    if (s.kind === 'failed') assert.match(s.error, /within 30 s; no DigitalOcean deployment was created/);
    assert.equal(fake.count('create'), before);
  });

  test('recover after a crash mid-start follows the deployment already created (one create in total)', async () => {
    const app = fake.addApp();
    // Someone deployed the app two minutes before this shipclock deployment started: not ours.
    fake.externalDeploy(app, { createdAt: new Date(Date.now() - 120_000) });
    const c = ctx(app);
    const before = fake.count('create');
    const r = await digitaloceanProvider.start(c);
    assert.equal(r.kind, 'follow');
    // The process died before the ref was saved: recover() gets ref null.
    const rec = await digitaloceanProvider.recover!({ ...c, ref: null });
    assert.equal(rec.kind, 'follow', JSON.stringify(rec));
    if (r.kind === 'follow' && rec.kind === 'follow') assert.equal(rec.ref.do_deployment_id, r.ref.do_deployment_id);
    assert.ok(c.lines.some((l) => l.includes('from the interrupted start')));
    assert.equal((await followToEnd(c, rec)).kind, 'succeeded');
    assert.equal(fake.count('create'), before + 1);
  });

  test('recover when the crash came before the create creates exactly one', async () => {
    const app = fake.addApp();
    const before = fake.count('create');
    const c = ctx(app);
    const rec = await digitaloceanProvider.recover!(c);
    assert.equal(rec.kind, 'follow');
    assert.equal(fake.count('create'), before + 1);
    const again = await digitaloceanProvider.recover!(c);
    assert.equal(again.kind === 'follow' || again.kind === 'succeeded', true);
    assert.equal(fake.count('create'), before + 1);
  });

  test('a target without a DigitalOcean credential fails clearly', async () => {
    const r = await digitaloceanProvider.start({ ...ctx(fake.addApp()), credentials: undefined });
    assert.equal(r.kind, 'failed');
    if (r.kind === 'failed') assert.match(r.error, /needs a DigitalOcean credential/);
  });
});
