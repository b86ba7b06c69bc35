/**
 * The Kubernetes provider against the local apps/v1 fake, beyond the shared conformance suite:
 * restarts, the three kinds, picking the container, ProgressDeadlineExceeded, each class of API
 * error, server + token credentials, kubeconfig checks, and rollback (restoring the previous pod
 * template once, even across a crash). Driven directly, no database.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { checkKubeconfig, KubeconfigError } from '../src/providers/kubeconfig.ts';
import { redact, secretsOf } from '../src/providers/redact.ts';
import { ANNOTATION_DEPLOYMENT, kubernetesProvider as k8s, RESTARTED_AT, type KubernetesTarget } from '../src/providers/kubernetes.ts';
import type { Credentials, ProviderContext, ProviderRef, StepResult } from '../src/providers/types.ts';
import { startKubernetesFake, type KubernetesFake } from './fakes/kubernetes-fake.ts';

interface Ctx extends ProviderContext<KubernetesTarget> {
  lines: string[];
}

describe('kubernetes provider', () => {
  let fake: KubernetesFake;
  let creds: Credentials;
  before(async () => {
    fake = await startKubernetesFake();
    creds = { provider: 'kubernetes', kubeconfig: fake.kubeconfig() };
  });
  after(() => fake.close());

  function ctx(target: Partial<KubernetesTarget> & { name: string }, over: { ref?: ProviderRef | null; attempt?: number; id?: string; credentials?: Credentials; startedAt?: Date } = {}): Ctx {
    const lines: string[] = [];
    return {
      deployment: { id: over.id ?? randomUUID(), teamId: 't', appId: 'a', appName: 'x', runAt: new Date(), attempt: over.attempt ?? 1, startedAt: over.startedAt ?? new Date() },
      target: { type: 'kubernetes', namespace: 'prod', poll_interval_seconds: 1, timeout_seconds: 60, ...target },
      credentials: over.credentials ?? creds,
      ref: over.ref ?? null,
      signal: new AbortController().signal,
      log: (l) => lines.push(l),
      lines,
    };
  }

  async function drive(c: Ctx, first: StepResult, poll: 'poll' | 'pollRollback' = 'poll'): Promise<StepResult> {
    let r = first;
    for (let i = 0; i < 20 && r.kind === 'follow'; i++) r = await k8s[poll]!({ ...c, ref: r.ref });
    return r;
  }

  const secretFree = (text: string) => {
    for (const s of [fake.token, creds.provider === 'kubernetes' ? creds.kubeconfig! : '']) assert.ok(!text.includes(s), `a secret leaked: ${text}`);
  };

  test('without image: a rollout restart (restartedAt on the pod template), strategic merge patch, followed to the end', async () => {
    fake.addWorkload('Deployment', 'prod', 'restart-me', { web: 'nginx:1.27' });
    const c = ctx({ name: 'restart-me' });
    const first = await k8s.start(c);
    assert.equal(first.kind, 'follow', JSON.stringify(first));
    const end = await drive(c, first);
    assert.equal(end.kind, 'succeeded', JSON.stringify(end));
    const [p] = fake.patches('Deployment/prod/restart-me');
    assert.equal(p.contentType, 'application/strategic-merge-patch+json');
    assert.ok(p.body?.spec.template.metadata.annotations[RESTARTED_AT], JSON.stringify(p.body));
    assert.equal(p.body?.metadata.annotations[ANNOTATION_DEPLOYMENT], c.deployment.id);
    const w = fake.workload('Deployment', 'prod', 'restart-me')!;
    assert.equal(w.spec.template.spec.containers[0].image, 'nginx:1.27', 'the image is untouched');
    assert.equal(end.ref?.previous_restarted_at, null);
    secretFree(JSON.stringify([first, end]) + c.lines.join('\n'));
  });

  for (const kind of ['StatefulSet', 'DaemonSet'] as const) {
    test(`${kind}: an image change is followed with the kind's own status fields`, async () => {
      const name = `${kind.toLowerCase()}-img`;
      fake.addWorkload(kind, 'prod', name, { app: 'registry.example/app:1' });
      const c = ctx({ name, kind, image: 'registry.example/app:2' });
      const first = await k8s.start(c);
      assert.equal(first.kind, 'follow', JSON.stringify(first));
      const end = await drive(c, first);
      assert.equal(end.kind, 'succeeded', JSON.stringify(end));
      assert.equal(fake.workload(kind, 'prod', name)!.spec.template.spec.containers[0].image, 'registry.example/app:2');
      assert.equal(fake.patches(`${kind}/prod/${name}`).length, 1);
      assert.ok(c.lines.some((l) => /updated|ready|revision|available/.test(l)), c.lines.join('\n'));
    });
  }

  test('several containers: the named one changes; without a name the error names the containers; an unknown one fails', async () => {
    fake.addWorkload('Deployment', 'prod', 'two', { web: 'web:1', sidecar: 'envoy:1.30' });
    const none = await k8s.start(ctx({ name: 'two', image: 'web:2' }));
    assert.equal(none.kind, 'failed');
    assert.notEqual(none.ref?.changed, true, 'nothing changed, nothing to roll back');
    assert.match((none as { error: string }).error, /has 2 containers \(web, sidecar\): set the target's container/);
    const unknown = await k8s.start(ctx({ name: 'two', image: 'web:2', container: 'api' }));
    assert.match((unknown as { error: string }).error, /has no container "api" \(it has web, sidecar\)/);
    assert.equal(fake.patches('Deployment/prod/two').length, 0, 'nothing was patched');
    const c = ctx({ name: 'two', image: 'web:2', container: 'web' });
    assert.equal((await drive(c, await k8s.start(c))).kind, 'succeeded');
    const w = fake.workload('Deployment', 'prod', 'two')!;
    assert.deepEqual(w.spec.template.spec.containers.map((x: { image: string }) => x.image), ['web:2', 'envoy:1.30']);
  });

  test('ProgressDeadlineExceeded fails the deployment with the condition message', async () => {
    fake.addWorkload('Deployment', 'prod', 'stuck', { api: 'api:1' });
    fake.failNextRollout();
    const c = ctx({ name: 'stuck', image: 'api:broken' });
    const end = await drive(c, await k8s.start(c));
    assert.equal(end.kind, 'failed', JSON.stringify(end));
    assert.match((end as { error: string }).error, /^Kubernetes rollout of Deployment prod\/stuck failed: ProgressDeadlineExceeded: ReplicaSet "stuck-[0-9a-f]+" has timed out progressing\.$/);
  });

  test('API errors: 404, 422 and 401 fail at once; 429 retries after retry-after; 500 and a closed server retry', async () => {
    const missing = await k8s.start(ctx({ name: 'no-such-thing', image: 'x:1' }));
    assert.equal(missing.kind, 'failed');
    assert.match((missing as { error: string }).error, /^Deployment prod\/no-such-thing was not found \(404\) — deployments\.apps "no-such-thing" not found$/);

    fake.addWorkload('Deployment', 'prod', 'errs', { api: 'api:1' });
    fake.injectErrors({ status: 422, method: 'PATCH' });
    const invalid = await k8s.start(ctx({ name: 'errs', image: 'api:2' }));
    assert.equal(invalid.kind, 'failed');
    assert.match((invalid as { error: string }).error, /refused the change to Deployment prod\/errs as invalid \(422\)/);

    fake.injectErrors({ status: 429, retryAfter: 7 });
    const throttled = await k8s.start(ctx({ name: 'errs', image: 'api:2' }));
    assert.equal(throttled.kind, 'retry');
    assert.equal((throttled as { afterSeconds?: number }).afterSeconds, 7);
    assert.match((throttled as { error: string }).error, /throttling requests \(429\)/);

    fake.injectErrors({ status: 500 });
    const oops = await k8s.start(ctx({ name: 'errs', image: 'api:2' }));
    assert.equal(oops.kind, 'retry');
    assert.match((oops as { error: string }).error, /Kubernetes API server error \(500\) — Internal error occurred/);

    const wrong = { provider: 'kubernetes' as const, kubeconfig: fake.kubeconfig({ token: 'not-the-token-0123456789' }) };
    const unauth = await k8s.start(ctx({ name: 'errs', image: 'api:2' }, { credentials: wrong }));
    assert.equal(unauth.kind, 'failed');
    assert.match((unauth as { error: string }).error, /rejected the credential \(401 Unauthorized\)/);
    assert.ok(!JSON.stringify(unauth).includes('not-the-token-0123456789'));
    assert.equal(fake.patches('Deployment/prod/errs').length, 0);

    const down = await startKubernetesFake();
    const url = down.url;
    await down.close();
    const closed = await k8s.start(ctx({ name: 'errs', image: 'api:2' }, { credentials: { provider: 'kubernetes', server: url, token: fake.token, ca_certificate: fake.ca } }));
    assert.equal(closed.kind, 'retry', JSON.stringify(closed));
    assert.match((closed as { error: string }).error, /^cannot reach the Kubernetes API: .*ECONNREFUSED/);
    secretFree(JSON.stringify([missing, invalid, throttled, oops, unauth, closed]));
  });

  test('server + token + ca_certificate credentials reach the API; without the CA the TLS check fails (retry, no secret)', async () => {
    fake.addWorkload('Deployment', 'prod', 'tok', { api: 'api:1' });
    const c = ctx({ name: 'tok', image: 'api:2' }, { credentials: { provider: 'kubernetes', server: fake.url, token: fake.token, ca_certificate: fake.ca } });
    assert.equal((await drive(c, await k8s.start(c))).kind, 'succeeded');
    const noCa = await k8s.start(ctx({ name: 'tok', image: 'api:3' }, { credentials: { provider: 'kubernetes', server: fake.url, token: fake.token } }));
    assert.equal(noCa.kind, 'retry', JSON.stringify(noCa));
    secretFree(JSON.stringify(noCa));
  });

  test('OnDelete and paused workloads are refused before anything changes', async () => {
    fake.addWorkload('StatefulSet', 'prod', 'ondelete', { db: 'postgres:16' }, { onDelete: true });
    const r = await k8s.start(ctx({ name: 'ondelete', kind: 'StatefulSet', image: 'postgres:17' }));
    assert.match((r as { error: string }).error, /uses updateStrategy OnDelete/);
    fake.addWorkload('Deployment', 'prod', 'paused', { api: 'api:1' }, { paused: true });
    const p = await k8s.start(ctx({ name: 'paused', image: 'api:2' }));
    assert.match((p as { error: string }).error, /is paused/);
    assert.equal(fake.patches('StatefulSet/prod/ondelete').length + fake.patches('Deployment/prod/paused').length, 0);
  });

  test('a retry after a lost PATCH answer finds its own change (the annotation) and does not patch again', async () => {
    fake.addWorkload('Deployment', 'prod', 'lost', { api: 'api:1' });
    const c = ctx({ name: 'lost', image: 'api:2' });
    assert.equal((await k8s.start(c)).kind, 'follow');
    // The scheduler saw a network error and retries: attempt 2, no ref.
    const again = await k8s.start({ ...c, deployment: { ...c.deployment, attempt: 2 }, ref: null });
    assert.equal(again.kind, 'follow', JSON.stringify(again));
    assert.equal(fake.patches('Deployment/prod/lost').length, 1);
    assert.equal((again as { ref: ProviderRef }).ref.previous_image, 'api:1', 'what to roll back to is read from the object');
  });

  describe('rollback', () => {
    test('after ProgressDeadlineExceeded: restores the previous image (the previous template) and follows it; a second call does not patch again', async () => {
      fake.addWorkload('Deployment', 'prod', 'rb', { api: 'api:1' });
      const before = fake.workload('Deployment', 'prod', 'rb')!.spec.template;
      fake.failNextRollout();
      const c = ctx({ name: 'rb', image: 'api:bad' });
      const failed = await drive(c, await k8s.start(c));
      assert.equal(failed.kind, 'failed');
      assert.equal(failed.ref?.changed, true, 'a failure after the patch says something changed');
      assert.equal(failed.ref?.image, 'api:bad');
      assert.equal(failed.ref?.previous_image, 'api:1');
      const rb = await k8s.rollback!({ ...c, ref: failed.ref ?? null });
      assert.equal(rb.kind, 'follow', JSON.stringify(rb));
      assert.equal((rb as { ref: ProviderRef }).ref.restored_image, 'api:1');
      assert.equal(fake.patches('Deployment/prod/rb').length, 2);
      // A crash: the rollback's ref comes back; nothing is patched again.
      const rec = await k8s.rollback!({ ...c, ref: (rb as { ref: ProviderRef }).ref });
      assert.ok(rec.kind === 'follow' || rec.kind === 'succeeded', JSON.stringify(rec));
      const end = await drive(c, rec, 'pollRollback');
      assert.equal(end.kind, 'succeeded', JSON.stringify(end));
      assert.match((end as { message?: string }).message ?? '', /rollback complete/);
      assert.equal(fake.patches('Deployment/prod/rb').length, 2);
      // Even a rollback() from the deployment's own ref again finds the image restored.
      const twice = await k8s.rollback!({ ...c, ref: failed.ref ?? null });
      assert.ok(twice.kind === 'follow' || twice.kind === 'succeeded');
      assert.equal(fake.patches('Deployment/prod/rb').length, 2);
      assert.deepEqual(fake.workload('Deployment', 'prod', 'rb')!.spec.template, before, 'the previous pod template is back');
    });

    test('a restart is rolled back by removing the restartedAt it added', async () => {
      fake.addWorkload('Deployment', 'prod', 'rb-restart', { api: 'api:1' });
      const before = fake.workload('Deployment', 'prod', 'rb-restart')!.spec.template;
      const c = ctx({ name: 'rb-restart' });
      const done = await drive(c, await k8s.start(c));
      const end = await drive(c, await k8s.rollback!({ ...c, ref: done.ref ?? null }), 'pollRollback');
      assert.equal(end.kind, 'succeeded', JSON.stringify(end));
      assert.deepEqual(fake.workload('Deployment', 'prod', 'rb-restart')!.spec.template, before);
    });

    test('refuses to roll back over a newer change, and when this deployment changed nothing', async () => {
      fake.addWorkload('Deployment', 'prod', 'rb-newer', { api: 'api:1' });
      const c = ctx({ name: 'rb-newer', image: 'api:2' });
      const done = await drive(c, await k8s.start(c));
      const other = ctx({ name: 'rb-newer', image: 'api:3' });
      await drive(other, await k8s.start(other));
      const r = await k8s.rollback!({ ...c, ref: done.ref ?? null });
      assert.equal(r.kind, 'failed');
      assert.match((r as { error: string }).error, /now runs api:3, not api:2: it was changed since this deployment/);
      assert.equal(r.ref?.rollback_not_possible, true);
      const nothing = await k8s.rollback!(ctx({ name: 'rb-newer', image: 'api:9' }, { ref: { changed: true } }));
      assert.equal(nothing.kind, 'failed');
      assert.match((nothing as { error: string }).error, /cannot roll back Deployment prod\/rb-newer: what this deployment replaced is not known/);
      assert.equal(nothing.ref?.rollback_not_possible, true);
      assert.equal(fake.patches('Deployment/prod/rb-newer').length, 2, 'only the two deployments patched');
    });
  });
});

describe('kubeconfig checks', () => {
  const base = (user: string, extra = '') => `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://k8s.example:6443${extra}
users:
- name: u
  user:
${user}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`;
  const bad = (text: string, re: RegExp, secret?: string) => {
    assert.throws(() => checkKubeconfig(text), (e: Error) => {
      assert.ok(e instanceof KubeconfigError, String(e));
      assert.match(e.message, re);
      if (secret) assert.ok(!e.message.includes(secret), e.message);
      return true;
    });
  };

  test('a token kubeconfig is summarized by its context and server', () => {
    assert.deepEqual(checkKubeconfig(base('    token: sekret-token-value')), { context: 'ctx', server: 'https://k8s.example:6443' });
  });

  test('refuses exec plugins, auth providers, files on the server, no credential, no context, http, bad YAML — never quoting it', () => {
    bad(base('    exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}'), /uses exec, a credential plugin shipclock does not run/);
    bad(base('    auth-provider: {name: gcp}'), /uses auth-provider/);
    bad(base('    token-file: /etc/shadow'), /uses token-file \(a file on the server\)/);
    bad(base('    client-key: /root/key.pem\n    client-certificate: /root/cert.pem'), /a file on the server/);
    bad(base('    token: t0ps3cret', '\n    certificate-authority: /etc/ca.pem'), /uses certificate-authority \(a file on the server\)/, 't0ps3cret');
    bad(base('    username: admin'), /has no credential/);
    bad(base('    token: t0ps3cret').replace('current-context: ctx', ''), /no current-context/, 't0ps3cret');
    bad(base('    token: t0ps3cret').replace('https://k8s.example:6443', 'http://k8s.example'), /must be an https:\/\/ URL/, 't0ps3cret');
    bad('users: [ {name: u, user: {token: "t0ps3cret}', /not valid YAML \(line \d+, column \d+\)/, 't0ps3cret');
  });
});

describe('kubeconfig secrets are redacted', () => {
  test('every user\'s token, password and client key (base64, decoded PEM and its lines) and the document itself', () => {
    const pem = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkU3wX0lQ9kC7yT1vN2aR5pL8mE4sJ6hG0fD3cB9xZ1oAoGCCqGSM49\nAwEHoUQDQgAEexampleexampleexampleexampleexampleexampleexampleexam\n-----END EC PRIVATE KEY-----\n';
    const keyData = Buffer.from(pem).toString('base64');
    const kubeconfig = `apiVersion: v1
clusters:
- name: c
  cluster: {server: 'https://k8s.example:6443'}
users:
- name: cert
  user: {client-certificate-data: Y2VydA==, client-key-data: ${keyData}}
- name: basic
  user: {username: admin, password: hunter2-password-xyz}
- name: tok
  user: {token: other-user-token-abc123}
contexts:
- name: ctx
  context: {cluster: c, user: cert}
current-context: ctx
`;
    assert.deepEqual(checkKubeconfig(kubeconfig), { context: 'ctx', server: 'https://k8s.example:6443' });
    const secrets = secretsOf({ provider: 'kubernetes', kubeconfig });
    const leaked = `failed with key ${keyData} / ${pem} / line MHcCAQEEIBkU3wX0lQ9kC7yT1vN2aR5pL8mE4sJ6hG0fD3cB9xZ1oAoGCCqGSM49 / hunter2-password-xyz / other-user-token-abc123`;
    const out = redact(leaked, secrets);
    for (const s of [keyData, 'MHcCAQEEIBkU3wX0lQ9kC7yT1vN2aR5pL8mE4sJ6hG0fD3cB9xZ1oAoGCCqGSM49', 'hunter2-password-xyz', 'other-user-token-abc123']) {
      assert.ok(!out.includes(s), out);
    }
    assert.ok(out.includes('[REDACTED]'));
    assert.deepEqual(secretsOf({ provider: 'kubernetes', server: 'https://x', token: 'tok-1' }), ['tok-1']);
  });
});
