/**
 * The one conformance suite every provider passes (STYLE point 2): the same scenarios — success,
 * failure with a reason, a transient error that is retried, a permanent error that is not, a
 * timeout, a crash mid-rollout — run against webhook, command, ecs, digitalocean, github_actions and kubernetes, each with its
 * local fake. Providers are driven directly (contexts built by hand, as the scheduler builds
 * them): fast, no database.
 *
 * Where providers legitimately differ (a webhook has no rollout to follow; a command cannot be
 * recovered), a per-provider capability table says what the documented behaviour is, and the
 * suite asserts exactly that.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { commandProvider } from '../src/providers/command.ts';
import { digitaloceanProvider } from '../src/providers/digitalocean.ts';
import { ecsProvider } from '../src/providers/ecs.ts';
import { githubActionsProvider } from '../src/providers/github-actions.ts';
import { kubernetesProvider } from '../src/providers/kubernetes.ts';
import { providerFor } from '../src/providers/index.ts';
import type { Credentials, Provider, ProviderContext, ProviderRef, StepResult } from '../src/providers/types.ts';
import { webhookProvider } from '../src/providers/webhook.ts';
import { digitaloceanHarness } from './fakes/digitalocean-fake.ts';
import { ecsHarness } from './fakes/ecs-fake.ts';
import { githubHarness } from './fakes/github-fake.ts';
import { kubernetesHarness } from './fakes/kubernetes-fake.ts';
import { startWebhookReceiver } from './helpers/fake-webhook.ts';

/** A provider, a target that reaches its local fake, and one-line scenario controls. */
interface Subject {
  provider: Provider<any>;
  target: Record<string, unknown>;
  credentials?: Credentials;
  /** The next deployment fails (a failed rollout, a refusing receiver, a failing command) with this reason. */
  failNext(reason: string): void;
  /** The next call meets a transient error (throttling, 503, EX_TEMPFAIL). */
  transientNext(): void;
  /** The next call meets a permanent error (access denied, 403, a non-temporary exit). */
  permanentNext(): void;
  /** Deployments never end by themselves (for timeouts). */
  neverFinish(): void;
  /** How many deployments were actually triggered at the target. */
  triggers(): number;
  /** Shrinks the provider's own timeout so it can pass within a test (for per-call timeouts). */
  shortTimeout?(target: Record<string, unknown>): Record<string, unknown>;
  /** Idempotency keys of the requests the target received (webhook). */
  idempotencyKeys?(): string[];
  /** Rollbacks made at the target (an UpdateService back, a POST rollback, a rollback event). */
  rollbacks?(): number;
  /** The next deployment fails after it changed something (its rollout fails, the receiver answers 5xx). */
  failAfterChangeNext?(): void;
  /** A target whose deployment changes what runs (ECS: with an image), for the rollback scenarios. */
  changingTarget?(t: Record<string, unknown>): Record<string, unknown>;
  close(): Promise<void>;
}

interface RollbackCaps {
  /** rollback() returns `follow` and pollRollback() follows it (ecs, digitalocean), or it is done at once (webhook). */
  follows: boolean;
  /** A repeated rollback() (a retry, a crash) `resume`s what the first did, or `repeat`s it with the same Idempotency-Key. */
  crash: 'resume' | 'repeat';
  /** Without the previous version in the deployment's ref, it answers failed with rollback_not_possible. */
  needsPrevious: boolean;
}

interface Capabilities {
  /** start() returns `follow` and poll() follows the rollout (ecs, digitalocean). */
  follows: boolean;
  /** The ref member holding the provider's own id of what it started. */
  idKey?: string;
  /** Where a failure's reason is reported: in the StepResult error, or the deployment log. */
  failureReasonIn: 'error' | 'log';
  /** What a failed deployment's error says (the reason itself is checked separately). */
  failure: RegExp;
  transient: RegExp;
  permanent: RegExp;
  /**
   * `rollout`: past timeout_seconds since the deployment started, a poll fails saying so.
   * `call`: one call exceeds the provider's own timeout → `result` with a message naming it.
   */
  timeout: { kind: 'rollout'; message: RegExp } | { kind: 'call'; result: 'failed' | 'retry'; message: RegExp };
  /**
   * `resume`: recover() finds what the interrupted start did and follows it, never deploying twice.
   * `repeat`: recover() sends it again with the same Idempotency-Key (the receiver drops repeats).
   * `none`: no recover() — running it again could deploy twice, so the scheduler fails it.
   */
  crash: 'resume' | 'repeat' | 'none';
  cancellable: boolean;
  /** How it rolls back; absent: it cannot (no rollback()), and says so to the scheduler by not having one. */
  rollback?: RollbackCaps;
}

async function webhookSubject(): Promise<Subject> {
  const rx = await startWebhookReceiver();
  return {
    provider: webhookProvider,
    target: { type: 'webhook', url: rx.url, secret: 'conformance-webhook-secret', timeout_seconds: 5 },
    failNext: () => rx.respondWith(422, 200),
    transientNext: () => rx.respondWith(503, 200),
    permanentNext: () => rx.respondWith(403, 200),
    neverFinish: () => rx.delay(10_000),
    triggers: () => rx.hits.length,
    shortTimeout: (t) => ({ ...t, timeout_seconds: 0.5 }),
    idempotencyKeys: () => rx.hits.map((h) => String(h.headers['idempotency-key'])),
    rollbacks: () => rx.hits.filter((h) => h.body?.event === 'rollback').length,
    failAfterChangeNext: () => rx.respondWith(500, 200),
    close: () => rx.close(),
  };
}

/**
 * A shell script whose behaviour the test controls with files: `next` (the mode of the next run,
 * then back to ok), `reason` (what a failing run prints). Every run appends a line to `runs`.
 */
const SCRIPT = `#!/bin/sh
dir=$(dirname "$0")
echo "$SHIPCLOCK_DEPLOYMENT_ID $SHIPCLOCK_ATTEMPT" >> "$dir/runs"
mode=ok
if [ -f "$dir/next" ]; then mode=$(cat "$dir/next"); rm -f "$dir/next"; fi
if [ -f "$dir/always" ]; then mode=$(cat "$dir/always"); fi
case "$mode" in
  ok) echo "deployed $SHIPCLOCK_APP"; exit 0 ;;
  fail) echo "starting"; cat "$dir/reason" >&2; exit 1 ;;
  transient) echo "registry busy, try later" >&2; exit 75 ;;
  permanent) echo "permission denied" >&2; exit 77 ;;
  hang) echo "waiting forever"; sleep 30; exit 0 ;;
esac
`;

async function commandSubject(): Promise<Subject> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shipclock-conf-cmd-'));
  const script = path.join(dir, 'deploy.sh');
  fs.writeFileSync(script, SCRIPT, { mode: 0o755 });
  const runs = () => (fs.existsSync(path.join(dir, 'runs')) ? fs.readFileSync(path.join(dir, 'runs'), 'utf8').split('\n').filter(Boolean).length : 0);
  return {
    provider: commandProvider,
    target: { type: 'command', command: script, args: [], timeout_seconds: 20 },
    failNext: (reason) => {
      fs.writeFileSync(path.join(dir, 'reason'), reason + '\n');
      fs.writeFileSync(path.join(dir, 'next'), 'fail');
    },
    transientNext: () => fs.writeFileSync(path.join(dir, 'next'), 'transient'),
    permanentNext: () => fs.writeFileSync(path.join(dir, 'next'), 'permanent'),
    neverFinish: () => fs.writeFileSync(path.join(dir, 'always'), 'hang'),
    triggers: runs,
    shortTimeout: (t) => ({ ...t, timeout_seconds: 1 }),
    close: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

async function ecsSubject(): Promise<Subject> {
  const h = await ecsHarness();
  return {
    provider: ecsProvider, ...h, failNext: (reason) => h.failNext(reason),
    rollbacks: () => h.fake.requests.filter((r) => r.op === 'UpdateService' && r.body.taskDefinition && !String(r.body.taskDefinition).endsWith(':2')).length,
    failAfterChangeNext: () => h.failNext('tasks failed to start'),
    changingTarget: (t) => ({ ...t, image: 'app:2' }),
  };
}

async function digitaloceanSubject(): Promise<Subject> {
  const h = await digitaloceanHarness();
  return {
    provider: digitaloceanProvider, ...h, failNext: (reason) => h.failNext(reason),
    rollbacks: () => h.fake.count('rollback'),
    failAfterChangeNext: () => h.failNext('build failed'),
  };
}

async function githubSubject(): Promise<Subject> {
  const h = await githubHarness();
  return { provider: githubActionsProvider, ...h, failNext: (reason) => h.failNext(reason) };
}

async function kubernetesSubject(): Promise<Subject> {
  const h = await kubernetesHarness();
  return {
    provider: kubernetesProvider, ...h, failNext: (reason) => h.failNext(reason),
    // A rollback patch names the deployment it rolls back (the shipclock.dev/rollback-of annotation).
    rollbacks: () => h.fake.patches().filter((r) => JSON.stringify(r).includes('rollback-of')).length,
    failAfterChangeNext: () => h.failNext('rollout failed'),
    changingTarget: (t) => ({ ...t, image: 'registry.example/api:3' }),
  };
}

const PROVIDERS: Array<{ name: string; make: () => Promise<Subject>; caps: Capabilities }> = [
  {
    name: 'webhook',
    make: webhookSubject,
    caps: {
      follows: false, failureReasonIn: 'log', failure: /^webhook answered 422$/, transient: /^webhook answered 503$/,
      permanent: /^webhook answered 403$/,
      timeout: { kind: 'call', result: 'retry', message: /no response within 0\.5 s/ },
      crash: 'repeat', cancellable: false,
      rollback: { follows: false, crash: 'repeat', needsPrevious: false },
    },
  },
  {
    name: 'command',
    make: commandSubject,
    caps: {
      follows: false, failureReasonIn: 'error', failure: /command exited 1/, transient: /command exited 75 \(temporary failure\)/,
      permanent: /command exited 77/,
      timeout: { kind: 'call', result: 'failed', message: /^command did not finish within 1 s and was killed$/ },
      crash: 'none', cancellable: false,
    },
  },
  {
    name: 'ecs',
    make: ecsSubject,
    caps: {
      follows: true, idKey: 'ecs_deployment_id', failureReasonIn: 'error', failure: /^ECS rollout failed: /,
      transient: /ECS throttled the request \(ThrottlingException\)/, permanent: /AWS refused the credential \(AccessDeniedException\)/,
      timeout: { kind: 'rollout', message: /^the ECS rollout did not finish within 60 s$/ },
      crash: 'resume', cancellable: false,
      rollback: { follows: true, crash: 'resume', needsPrevious: true },
    },
  },
  {
    name: 'digitalocean',
    make: digitaloceanSubject,
    caps: {
      follows: true, idKey: 'do_deployment_id', failureReasonIn: 'error', failure: /^DigitalOcean deployment \S+ failed: /,
      transient: /DigitalOcean server error \(503\)/, permanent: /not allowed to do this \(403\)/,
      timeout: { kind: 'rollout', message: /^the DigitalOcean deployment did not finish within 60 s$/ },
      crash: 'resume', cancellable: true,
      rollback: { follows: true, crash: 'resume', needsPrevious: true },
    },
  },
  {
    name: 'github_actions',
    make: githubSubject,
    caps: {
      follows: true, idKey: 'run_id', failureReasonIn: 'error', failure: /^GitHub Actions run \d+ failed: job "deploy" failed at step "/,
      transient: /GitHub server error \(503\)/, permanent: /not allowed to do this \(403\)/,
      timeout: { kind: 'rollout', message: /^the GitHub Actions run did not finish within 60 s$/ },
      crash: 'resume', cancellable: true,
      rollback: { follows: true, crash: 'resume', needsPrevious: false },
    },
  },
  {
    name: 'kubernetes',
    make: kubernetesSubject,
    caps: {
      follows: true, idKey: 'rollout_id', failureReasonIn: 'error', failure: /^Kubernetes rollout of Deployment web\/api failed: ProgressDeadlineExceeded: /,
      transient: /Kubernetes API server error \(503\)/, permanent: /does not allow this credential to get Deployment web\/api \(403 Forbidden\)/,
      timeout: { kind: 'rollout', message: /^the Kubernetes rollout did not finish within 60 s$/ },
      crash: 'resume', cancellable: false,
      rollback: { follows: true, crash: 'resume', needsPrevious: true },
    },
  },
];

interface Ctx extends ProviderContext<any> {
  lines: string[];
}

function makeCtx(s: Subject, over: { attempt?: number; startedAt?: Date; ref?: ProviderRef | null; id?: string; target?: Record<string, unknown> } = {}): Ctx {
  const lines: string[] = [];
  return {
    deployment: {
      id: over.id ?? randomUUID(), teamId: 'team-conf', appId: 'app-conf', appName: 'conformance', runAt: new Date(),
      attempt: over.attempt ?? 1, startedAt: over.startedAt ?? new Date(),
    },
    target: over.target ?? s.target,
    credentials: s.credentials,
    ref: over.ref ?? null,
    signal: new AbortController().signal,
    log: (l) => lines.push(l),
    lines,
  };
}

/** The same ctx, as a later call of the same deployment (another poll, another process). */
function again(c: Ctx, over: Partial<Pick<ProviderContext, 'ref'>> & { attempt?: number; startedAt?: Date } = {}): Ctx {
  return {
    ...c,
    deployment: { ...c.deployment, attempt: over.attempt ?? c.deployment.attempt, startedAt: over.startedAt ?? c.deployment.startedAt },
    ref: over.ref === undefined ? c.ref : over.ref,
  };
}

/** Polls a followed rollout until it ends, as the scheduler would (without the waits). */
async function followToEnd(s: Subject, c: Ctx, first: StepResult, max = 30): Promise<StepResult> {
  let r = first;
  for (let i = 0; i < max && r.kind === 'follow'; i++) {
    assert.ok(r.afterSeconds > 0, 'follow asks to be polled again after some seconds');
    r = await s.provider.poll!(again(c, { ref: r.ref }));
  }
  return r;
}

/** Secrets never leave a provider: not in a result (error, ref, message), not in a log line. */
function assertNoSecrets(s: Subject, c: Ctx, ...results: StepResult[]): void {
  const secrets = [
    ...Object.entries(s.credentials ?? {}).filter(([k]) => k !== 'provider').map(([, v]) => String(v)),
    ...(typeof s.target.secret === 'string' ? [s.target.secret] : []),
  ];
  const text = JSON.stringify(results) + '\n' + c.lines.join('\n');
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked: ${text}`);
}

function errorOf(r: StepResult): string {
  assert.ok(r.kind === 'failed' || r.kind === 'retry', `expected failed or retry, got ${JSON.stringify(r)}`);
  return r.error;
}

for (const { name, make, caps } of PROVIDERS) {
  describe(`provider conformance: ${name}`, () => {
    let s: Subject;
    beforeEach(async () => {
      s = await make();
    });
    afterEach(async () => {
      await s.close();
    });

    test('is the registered provider of its type, and says whether it can be recalled', () => {
      assert.equal(providerFor(name), s.provider);
      assert.equal(s.provider.type, name);
      assert.equal(s.provider.cancellable, caps.cancellable);
      assert.equal(typeof s.provider.cancel === 'function', caps.cancellable, 'cancel() exists exactly when cancellable');
      assert.equal(typeof s.provider.poll === 'function', caps.follows, 'poll() exists exactly when the provider follows rollouts');
    });

    test('success: deploys once and ends succeeded', async () => {
      const c = makeCtx(s);
      const first = await s.provider.start(c);
      if (caps.follows) {
        assert.equal(first.kind, 'follow', JSON.stringify(first));
        if (first.kind === 'follow') {
          assert.equal(typeof first.ref[caps.idKey!], 'string', 'the ref holds the provider\'s own id');
          assert.match(String(first.ref.console_url), /^https:\/\//, 'the ref holds a link-ready console URL');
          assert.ok(first.message, 'starting a rollout is worth a timeline event');
        }
      }
      const end = caps.follows ? await followToEnd(s, c, first) : first;
      assert.equal(end.kind, 'succeeded', JSON.stringify(end));
      if (caps.follows && end.kind === 'succeeded' && first.kind === 'follow') {
        assert.equal(end.ref?.[caps.idKey!], first.ref[caps.idKey!], 'the ref still names the same deployment');
        assert.ok(c.lines.some((l) => l.includes(String(first.ref[caps.idKey!]))), `the log names the deployment:\n${c.lines.join('\n')}`);
      }
      assert.ok(c.lines.length > 0, 'something was logged');
      assert.equal(s.triggers(), 1);
      assertNoSecrets(s, c, first, end);
    });

    test('failure: ends failed with the reason', async () => {
      const reason = 'image registry.example/api:9 not found';
      s.failNext(reason);
      const c = makeCtx(s);
      const first = await s.provider.start(c);
      const end = caps.follows ? await followToEnd(s, c, first) : first;
      assert.equal(end.kind, 'failed', JSON.stringify(end));
      assert.match(errorOf(end), caps.failure);
      if (caps.failureReasonIn === 'error') assert.ok(errorOf(end).includes(reason), `the error gives the reason: ${errorOf(end)}`);
      else assert.ok(c.lines.join('\n').length > 0, 'the answer is in the log');
      assert.equal(s.triggers(), 1);
      assertNoSecrets(s, c, first, end);
    });

    test('a transient error is retried (retry), and a later attempt succeeds, deploying once', async () => {
      s.transientNext();
      const c = makeCtx(s);
      const first = await s.provider.start(c);
      assert.equal(first.kind, 'retry', JSON.stringify(first));
      assert.match(errorOf(first), caps.transient);
      // The scheduler's next attempt of the same deployment.
      const c2 = again(c, { attempt: 2, ref: first.ref ?? null });
      const second = await s.provider.start(c2);
      const end = caps.follows ? await followToEnd(s, c2, second) : second;
      assert.equal(end.kind, 'succeeded', JSON.stringify(end));
      // Only the command and webhook providers count the refused first try as a trigger: it reached the target.
      assert.equal(s.triggers(), caps.follows ? 1 : 2);
      assertNoSecrets(s, c, first, second, end);
    });

    test('a permanent error fails at once (failed, not retry) and deploys nothing', async () => {
      s.permanentNext();
      const c = makeCtx(s);
      const r = await s.provider.start(c);
      assert.equal(r.kind, 'failed', JSON.stringify(r));
      assert.match(errorOf(r), caps.permanent);
      if (caps.follows) assert.equal(s.triggers(), 0);
      assertNoSecrets(s, c, r);
    });

    test(`timeout: ${caps.timeout.kind === 'rollout' ? 'a rollout past timeout_seconds fails saying so' : `a call past the provider's own timeout → ${caps.timeout.result}, naming it`}`, async () => {
      s.neverFinish();
      if (caps.timeout.kind === 'rollout') {
        const c = makeCtx(s);
        const first = await s.provider.start(c);
        assert.equal(first.kind, 'follow', JSON.stringify(first));
        const still = await s.provider.poll!(again(c, { ref: first.kind === 'follow' ? first.ref : null }));
        assert.equal(still.kind, 'follow', 'within the timeout it keeps following');
        // The same deployment, seen 61 s after it started (timeout_seconds is 60).
        const late = again(c, { ref: still.kind === 'follow' ? still.ref : null, startedAt: new Date(Date.now() - 61_000) });
        const end = await s.provider.poll!(late);
        assert.equal(end.kind, 'failed', JSON.stringify(end));
        assert.match(errorOf(end), caps.timeout.message);
        assert.equal(end.ref?.[caps.idKey!], first.kind === 'follow' ? first.ref[caps.idKey!] : undefined, 'the ref is kept');
        // A late retry past the deadline starts nothing new.
        const before = s.triggers();
        const lateStart = await s.provider.start(makeCtx(s, { attempt: 1, startedAt: new Date(Date.now() - 61_000) }));
        assert.equal(lateStart.kind, 'failed');
        assert.equal(s.triggers(), before);
        assertNoSecrets(s, c, first, still, end, lateStart);
      } else {
        const c = makeCtx(s, { target: s.shortTimeout!(s.target) });
        const t0 = Date.now();
        const r = await s.provider.start(c);
        assert.ok(Date.now() - t0 < 8_000, `the timeout cut the call short (${Date.now() - t0} ms)`);
        assert.equal(r.kind, caps.timeout.result, JSON.stringify(r));
        assert.match(errorOf(r), caps.timeout.message);
        assertNoSecrets(s, c, r);
      }
    });

    if (caps.crash === 'resume') {
      test('crash mid-rollout: a new process recovers from the persisted ref and startedAt and follows the same deployment', async () => {
        const c = makeCtx(s);
        const first = await s.provider.start(c);
        assert.equal(first.kind, 'follow');
        if (first.kind !== 'follow') return;
        // The process died; another one has only what was persisted: the ref and startedAt.
        const fresh = makeCtx(s, { id: c.deployment.id, startedAt: c.deployment.startedAt, ref: first.ref });
        const rec = await s.provider.recover!(fresh);
        assert.ok(rec.kind === 'follow' || rec.kind === 'succeeded', JSON.stringify(rec));
        assert.equal(rec.ref?.[caps.idKey!], first.ref[caps.idKey!]);
        const end = await followToEnd(s, fresh, rec);
        assert.equal(end.kind, 'succeeded', JSON.stringify(end));
        assert.equal(s.triggers(), 1, 'never a second deployment');
        assertNoSecrets(s, fresh, rec, end);
      });

      test('crash mid-start, before the ref was saved: recover() finds the deployment by startedAt and deploys nothing more', async () => {
        const c = makeCtx(s);
        const first = await s.provider.start(c);
        assert.equal(first.kind, 'follow');
        const fresh = makeCtx(s, { id: c.deployment.id, startedAt: c.deployment.startedAt, ref: null });
        const rec = await s.provider.recover!(fresh);
        assert.ok(rec.kind === 'follow' || rec.kind === 'succeeded', JSON.stringify(rec));
        if (first.kind === 'follow') assert.equal(rec.ref?.[caps.idKey!], first.ref[caps.idKey!]);
        assert.equal((await followToEnd(s, fresh, rec)).kind, 'succeeded');
        assert.equal(s.triggers(), 1, 'never a second deployment');
      });

      test('crash before anything was started: recover() starts exactly one deployment', async () => {
        const fresh = makeCtx(s, { ref: null });
        const rec = await s.provider.recover!(fresh);
        assert.equal(rec.kind, 'follow', JSON.stringify(rec));
        assert.equal((await followToEnd(s, fresh, rec)).kind, 'succeeded');
        assert.equal(s.triggers(), 1);
      });
    } else if (caps.crash === 'repeat') {
      test('crash mid-request: recover() sends it again with the same Idempotency-Key', async () => {
        const c = makeCtx(s);
        const first = await s.provider.start(c);
        assert.equal(first.kind, 'succeeded');
        const rec = await s.provider.recover!(makeCtx(s, { id: c.deployment.id, startedAt: c.deployment.startedAt, ref: null }));
        assert.equal(rec.kind, 'succeeded', JSON.stringify(rec));
        assert.deepEqual(s.idempotencyKeys!(), [c.deployment.id, c.deployment.id]);
      });
    } else {
      test('crash mid-run: there is no recover(), so the scheduler fails it rather than run it twice', async () => {
        assert.equal(s.provider.recover, undefined);
        const c = makeCtx(s);
        assert.equal((await s.provider.start(c)).kind, 'succeeded');
        assert.equal(s.triggers(), 1);
      });
    }

    rollbackSection(caps, () => s);
  });
}

/** A deployment run to its end as the scheduler would (retries of transient answers ended as failed). */
async function runToEnd(s: Subject, c: Ctx): Promise<StepResult> {
  const first = await s.provider.start(c);
  return first.kind === 'follow' ? followToEnd(s, c, first) : first;
}

/** A rollback ctx for the deployment whose last result was `failed`, as the scheduler builds it. */
function rollbackCtx(s: Subject, c: Ctx, deploymentRef: ProviderRef | null, over: { recovering?: boolean; startedAt?: Date; attempt?: number } = {}): Ctx {
  return {
    ...c,
    lines: c.lines,
    deployment: { ...c.deployment, attempt: over.attempt ?? 1, startedAt: over.startedAt ?? new Date() },
    ref: deploymentRef,
    rollback: { seq: 1, recovering: over.recovering ?? false, deploymentRef, rollbackRef: null },
  };
}

async function followRollback(s: Subject, c: Ctx, first: StepResult, max = 30): Promise<StepResult> {
  let r = first;
  for (let i = 0; i < max && r.kind === 'follow'; i++) {
    assert.ok(r.afterSeconds > 0);
    r = await s.provider.pollRollback!({ ...c, ref: r.ref, rollback: { ...c.rollback!, rollbackRef: r.ref } });
  }
  return r;
}

/**
 * The rollback contract (Provider.rollback in src/providers/types.ts), for every provider that
 * implements it: a failed deployment that changed something says so (`ref.changed`), its
 * rollback restores what ran before (once at the target), a repeated rollback() — after a
 * transient error or a crash — acts no more, and without the previous version it says it is not
 * possible. A provider without rollback() has no pollRollback() and never marks a change.
 */
function rollbackSection(caps: Capabilities, subject: () => Subject): void {
  const rb = caps.rollback;
  if (!rb) {
    test('rollback: not implemented, and nothing it does is marked as a change to roll back', async () => {
      const s = subject();
      assert.equal(s.provider.rollback, undefined);
      assert.equal(s.provider.pollRollback, undefined);
      const end = await runToEnd(s, makeCtx(s));
      assert.notEqual(end.ref?.changed, true);
    });
    return;
  }
  /** A deployment that fails after its change, after one that succeeded (so there is a previous version). */
  async function failedAfterChange(s: Subject): Promise<{ c: Ctx; ref: ProviderRef }> {
    const target = s.changingTarget?.(s.target) ?? s.target;
    assert.equal((await runToEnd(s, makeCtx(s))).kind, 'succeeded');
    s.failAfterChangeNext!();
    const c = makeCtx(s, { target });
    const end = await runToEnd(s, c);
    assert.ok(end.kind === 'failed' || end.kind === 'retry', JSON.stringify(end));
    assert.equal(end.ref?.changed, true, `a failure after the change says so in the ref: ${JSON.stringify(end.ref)}`);
    return { c, ref: end.ref! };
  }

  test('rollback: a failed deployment that changed something is restored, once at the target', async () => {
    const s = subject();
    assert.equal(typeof s.provider.pollRollback === 'function', rb.follows, 'pollRollback() exists exactly when rollbacks are followed');
    const { c, ref } = await failedAfterChange(s);
    const rc = rollbackCtx(s, c, ref);
    const first = await s.provider.rollback!(rc);
    assert.equal(first.kind, rb.follows ? 'follow' : 'succeeded', JSON.stringify(first));
    const end = await followRollback(s, rc, first);
    assert.equal(end.kind, 'succeeded', JSON.stringify(end));
    assert.equal(s.rollbacks!(), 1);
    assertNoSecrets(s, rc, first, end);
  });

  test(`rollback: called again after a crash (recovering) it ${rb.crash === 'resume' ? 'follows what the first call did' : 'repeats it with the same Idempotency-Key'}`, async () => {
    const s = subject();
    const { c, ref } = await failedAfterChange(s);
    const startedAt = new Date();
    const rc = rollbackCtx(s, c, ref, { startedAt });
    const first = await s.provider.rollback!(rc);
    assert.ok(first.kind === 'follow' || first.kind === 'succeeded', JSON.stringify(first));
    // The process died before the answer was saved: another one calls rollback() again.
    const again2 = rollbackCtx(s, c, ref, { startedAt, recovering: true, attempt: 2 });
    const rec = await s.provider.rollback!(again2);
    const end = await followRollback(s, again2, rec);
    assert.equal(end.kind, 'succeeded', JSON.stringify(end));
    if (rb.crash === 'resume') assert.equal(s.rollbacks!(), 1, 'never a second rollback');
    else {
      const keys = s.idempotencyKeys!().filter((k) => k.includes(':rollback:'));
      assert.deepEqual(keys, [`${c.deployment.id}:rollback:1`, `${c.deployment.id}:rollback:1`]);
    }
  });

  test('rollback: a transient error is retry, and the retried call rolls back once', async () => {
    const s = subject();
    const { c, ref } = await failedAfterChange(s);
    s.transientNext();
    const startedAt = new Date();
    const first = await s.provider.rollback!(rollbackCtx(s, c, ref, { startedAt }));
    assert.equal(first.kind, 'retry', JSON.stringify(first));
    const rc = rollbackCtx(s, c, ref, { startedAt, recovering: true, attempt: 2 });
    const end = await followRollback(s, rc, await s.provider.rollback!(rc));
    assert.equal(end.kind, 'succeeded', JSON.stringify(end));
    assert.equal(s.rollbacks!(), rb.crash === 'resume' ? 1 : 2);
  });

  if (rb.needsPrevious) {
    test('rollback: without the previous version in the ref it is not possible, and says so', async () => {
      const s = subject();
      const c = makeCtx(s);
      const r = await s.provider.rollback!(rollbackCtx(s, c, { changed: true }));
      assert.equal(r.kind, 'failed', JSON.stringify(r));
      assert.equal(r.ref?.rollback_not_possible, true);
      assert.equal(s.rollbacks!(), 0);
    });
  }
}
