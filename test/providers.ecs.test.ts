/**
 * The ECS provider against the local ECS fake (awsJson1_1 over HTTP, reached through the SDK's
 * own AWS_ENDPOINT_URL_ECS). No database: contexts are built by hand.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ecsProvider, registerInputFor, type EcsTarget } from '../src/providers/ecs.ts';
import { redact, secretsOf } from '../src/providers/redact.ts';
import type { ProviderContext, ProviderRef, StepResult } from '../src/providers/types.ts';
import { startEcsFake, type EcsFake, type FakeTaskDefinition } from './fakes/ecs-fake.ts';

const CREDS = { provider: 'aws' as const, access_key_id: 'AKIAFAKEKEY0001', secret_access_key: 'fake-secret-key-0123456789', session_token: 'fake-session-token-xyz' };

const TASK_DEF: FakeTaskDefinition = {
  family: 'api',
  taskRoleArn: 'arn:aws:iam::123456789012:role/api-task',
  executionRoleArn: 'arn:aws:iam::123456789012:role/ecsTaskExecutionRole',
  networkMode: 'awsvpc',
  requiresCompatibilities: ['FARGATE'],
  cpu: '256',
  memory: '512',
  runtimePlatform: { cpuArchitecture: 'ARM64', operatingSystemFamily: 'LINUX' },
  ephemeralStorage: { sizeInGiB: 30 },
  volumes: [{ name: 'scratch' }],
  containerDefinitions: [
    { name: 'log-router', image: 'amazon/aws-for-fluent-bit:2', essential: false, memoryReservation: 50 },
    {
      name: 'api',
      image: 'registry.example/api:1.0.0',
      essential: true,
      portMappings: [{ containerPort: 8080, protocol: 'tcp' }],
      environment: [{ name: 'MODE', value: 'prod' }],
      secrets: [{ name: 'DB_URL', valueFrom: 'arn:aws:ssm:us-east-1:123456789012:parameter/db' }],
      logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/ecs/api' } },
      mountPoints: [{ sourceVolume: 'scratch', containerPath: '/tmp/scratch' }],
    },
    { name: 'sidecar', image: 'registry.example/sidecar:3', essential: true },
  ],
};

let fake: EcsFake;
let seq = 0;

before(async () => {
  fake = await startEcsFake({ region: 'eu-west-1' });
  process.env.AWS_ENDPOINT_URL_ECS = fake.url;
});
after(async () => {
  delete process.env.AWS_ENDPOINT_URL_ECS;
  await fake.close();
});

interface Ctx extends ProviderContext<EcsTarget> {
  lines: string[];
}

function ctx(target: Partial<EcsTarget>, over: { ref?: ProviderRef | null; startedAt?: Date; attempt?: number } = {}): Ctx {
  const lines: string[] = [];
  return {
    deployment: {
      id: `dep-${seq}`, teamId: 't', appId: 'a', appName: 'api', runAt: new Date(), attempt: over.attempt ?? 1,
      startedAt: over.startedAt ?? new Date(Date.now() - 1000),
    },
    target: { type: 'ecs', region: 'eu-west-1', cluster: 'prod', service: 'svc', poll_interval_seconds: 1, ...target } as EcsTarget,
    credentials: CREDS,
    ref: over.ref ?? null,
    signal: new AbortController().signal,
    log: (l) => lines.push(l),
    lines,
  };
}

/** A fresh service per test, so tests do not see each other's rollouts. */
function service(opts: { cluster?: string } = {}): { cluster: string; service: string } {
  seq += 1;
  const cluster = opts.cluster ?? 'prod';
  const name = `svc-${seq}`;
  fake.addService({ cluster, service: name, taskDefinition: { ...TASK_DEF, family: `api-${seq}` }, tags: [{ key: 'team', value: 'core' }] });
  return { cluster, service: name };
}

async function followToEnd(c: Ctx, first: StepResult, max = 20): Promise<StepResult> {
  let r = first;
  for (let i = 0; i < max && r.kind === 'follow'; i++) {
    r = await ecsProvider.poll!({ ...c, ref: r.ref });
  }
  return r;
}

describe('ecs provider', () => {
  beforeEach(() => {
    fake.acceptedAccessKeyId = undefined;
    fake.rolloutPolls = 2;
  });

  test('is not cancellable', () => {
    assert.equal(ecsProvider.type, 'ecs');
    assert.equal(ecsProvider.cancellable, false);
  });

  test('force new deployment without image, followed to COMPLETED (through AWS_ENDPOINT_URL_ECS)', async () => {
    const s = service();
    const before = fake.count('UpdateService');
    const c = ctx(s);
    const r = await ecsProvider.start(c);
    assert.equal(r.kind, 'follow', JSON.stringify(r));
    assert.equal(fake.count('UpdateService'), before + 1);
    const upd = fake.requests.filter((x) => x.op === 'UpdateService').at(-1)!;
    assert.deepEqual(upd.body, { cluster: 'prod', service: s.service, forceNewDeployment: true });
    // Signed with the credential, session token included.
    assert.match(String(upd.headers.authorization), /Credential=AKIAFAKEKEY0001\/\d{8}\/eu-west-1\/ecs\/aws4_request/);
    assert.equal(upd.headers['x-amz-security-token'], CREDS.session_token);
    if (r.kind !== 'follow') return;
    assert.equal(r.afterSeconds, 1);
    assert.match(String(r.ref.ecs_deployment_id), /^ecs-svc\/\d{19}$/);
    assert.equal(r.ref.task_definition_revision, 1);
    assert.equal(r.ref.region, 'eu-west-1');
    assert.equal(r.ref.console_url, `https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/${s.service}/deployments?region=eu-west-1`);
    const end = await followToEnd(c, r);
    assert.equal(end.kind, 'succeeded', JSON.stringify(end));
    assert.ok(c.lines.some((l) => l.includes(String(r.ref.ecs_deployment_id))), c.lines.join('\n'));
    assert.ok(c.lines.some((l) => /tasks desired 2, pending \d, running \d/.test(l)), c.lines.join('\n'));
  });

  test('with image: registers a new revision keeping every other setting, then deploys it', async () => {
    const s = service();
    const family = `api-${seq}`;
    const c = ctx({ ...s, image: 'registry.example/api:2.0.0' });
    const r = await ecsProvider.start(c);
    assert.equal(r.kind, 'follow', JSON.stringify(r));
    if (r.kind !== 'follow') return;
    assert.equal(r.ref.task_definition_revision, 2);
    assert.equal(r.ref.task_definition_arn, `arn:aws:ecs:eu-west-1:123456789012:task-definition/${family}:2`);
    const oldTd = fake.taskDefinition(`${family}:1`)!;
    const newTd = fake.taskDefinition(`${family}:2`)!;
    const strip = (td: Record<string, any>) => {
      const { taskDefinitionArn: _a, revision: _r, registeredAt: _t, ...rest } = td;
      return rest;
    };
    // Only the essential "api" container's image changed (log-router is not essential).
    const expected = structuredClone(strip(oldTd.taskDefinition));
    expected.containerDefinitions[1].image = 'registry.example/api:2.0.0';
    assert.deepEqual(strip(newTd.taskDefinition), expected);
    assert.deepEqual(newTd.tags, [{ key: 'team', value: 'core' }]);
    const upd = fake.requests.filter((x) => x.op === 'UpdateService').at(-1)!;
    assert.equal(upd.body.taskDefinition, r.ref.task_definition_arn);
    assert.equal(upd.body.forceNewDeployment, undefined);
    const described = fake.requests.filter((x) => x.op === 'DescribeTaskDefinition').at(-1)!;
    assert.deepEqual(described.body.include, ['TAGS']);
    assert.ok(c.lines.some((l) => l.includes(`${family}:2`) && l.includes('api:1.0.0') && l.includes('api:2.0.0')), c.lines.join('\n'));
    assert.equal((await followToEnd(c, r)).kind, 'succeeded');
  });

  test('with image and a named container', async () => {
    const s = service();
    const r = await ecsProvider.start(ctx({ ...s, image: 'registry.example/sidecar:4', container: 'sidecar' }));
    assert.equal(r.kind, 'follow');
    const td = fake.taskDefinition(`api-${seq}:2`)!.taskDefinition;
    assert.equal(td.containerDefinitions[2].image, 'registry.example/sidecar:4');
    assert.equal(td.containerDefinitions[1].image, 'registry.example/api:1.0.0');
  });

  test('unknown container fails with a clear message and deploys nothing', async () => {
    const s = service();
    const before = fake.count('UpdateService') + fake.count('RegisterTaskDefinition');
    const r = await ecsProvider.start(ctx({ ...s, image: 'x:1', container: 'nope' }));
    assert.equal(r.kind, 'failed');
    if (r.kind === 'failed') assert.match(r.error, /container "nope" is not in task definition api-\d+:1 \(containers: log-router, api, sidecar\)/);
    assert.equal(fake.count('UpdateService') + fake.count('RegisterTaskDefinition'), before);
  });

  test('registerInputFor drops the read-only members and nothing else', () => {
    const td = {
      ...structuredClone(TASK_DEF), taskDefinitionArn: 'arn:x:1', revision: 1, status: 'ACTIVE', requiresAttributes: [],
      compatibilities: ['EC2'], registeredAt: new Date(), registeredBy: 'me', deregisteredAt: new Date(), pidMode: 'task',
    } as any;
    const { input, containerName } = registerInputFor(td, [{ key: 'k', value: 'v' }], 'img:2');
    assert.equal(containerName, 'api');
    for (const k of ['taskDefinitionArn', 'revision', 'status', 'requiresAttributes', 'compatibilities', 'registeredAt', 'registeredBy', 'deregisteredAt']) {
      assert.ok(!(k in input), k);
    }
    assert.equal((input as any).pidMode, 'task');
    assert.deepEqual(input.tags, [{ key: 'k', value: 'v' }]);
    assert.equal(td.containerDefinitions[1].image, 'registry.example/api:1.0.0', 'the input is a copy');
  });

  test('a failed rollout fails with rolloutStateReason', async () => {
    const s = service();
    fake.failNextRollout('ECS deployment circuit breaker: tasks failed to start.');
    const c = ctx(s);
    const end = await followToEnd(c, await ecsProvider.start(c));
    assert.equal(end.kind, 'failed');
    if (end.kind === 'failed') {
      assert.equal(end.error, 'ECS rollout failed: ECS deployment circuit breaker: tasks failed to start.');
      assert.ok(end.ref?.ecs_deployment_id);
    }
  });

  test('throttling and 5xx are transient (retry), the rollout is then followed on', async () => {
    const s = service();
    fake.injectErrors('throttle', 1, 'UpdateService');
    const c = ctx(s);
    const r1 = await ecsProvider.start(c);
    assert.equal(r1.kind, 'retry');
    if (r1.kind === 'retry') assert.match(r1.error, /ThrottlingException/);
    const r2 = await ecsProvider.start({ ...c, deployment: { ...c.deployment, attempt: 2 } });
    assert.equal(r2.kind, 'follow', JSON.stringify(r2));
    if (r2.kind !== 'follow') return;
    fake.injectErrors('server', 1, 'DescribeServices');
    const p = await ecsProvider.poll!({ ...c, ref: r2.ref });
    assert.equal(p.kind, 'retry');
    if (p.kind === 'retry') {
      assert.match(p.error, /ServerException.*HTTP 500/);
      assert.deepEqual(p.ref, r2.ref, 'a retry keeps the ref');
    }
    assert.equal((await followToEnd(c, r2)).kind, 'succeeded');
  });

  test('a 5xx whose UpdateService may have taken effect: the retried start follows, never redeploys', async () => {
    const s = service();
    const c = ctx(s);
    const r1 = await ecsProvider.start(c);
    assert.equal(r1.kind, 'follow');
    const count = fake.count('UpdateService');
    // attempt 2 without the ref (the scheduler lost it): finds the deployment by time.
    const r2 = await ecsProvider.start({ ...c, deployment: { ...c.deployment, attempt: 2 } });
    assert.equal(r2.kind, 'follow');
    if (r1.kind === 'follow' && r2.kind === 'follow') assert.equal(r2.ref.ecs_deployment_id, r1.ref.ecs_deployment_id);
    assert.equal(fake.count('UpdateService'), count);
  });

  test('missing service, missing cluster and access denied fail at once', async () => {
    const s = service();
    fake.removeService(s.cluster, s.service);
    let r = await ecsProvider.start(ctx({ ...s, image: 'x:2' }));
    assert.equal(r.kind, 'failed');
    if (r.kind === 'failed') assert.match(r.error, new RegExp(`ECS service "${s.service}" was not found in cluster "prod"`));
    r = await ecsProvider.start(ctx(s));
    assert.equal(r.kind, 'failed', 'UpdateService → ServiceNotFoundException');
    if (r.kind === 'failed') assert.match(r.error, /was not found/);
    r = await ecsProvider.start(ctx({ ...s, cluster: 'nowhere' }));
    assert.equal(r.kind, 'failed');
    if (r.kind === 'failed') assert.match(r.error, /ECS cluster "nowhere" was not found in region eu-west-1/);

    const s2 = service();
    fake.injectErrors('accessDenied', 1);
    r = await ecsProvider.start(ctx(s2));
    assert.equal(r.kind, 'failed');
    if (r.kind === 'failed') assert.match(r.error, /AWS refused the credential \(AccessDeniedException\)/);
  });

  test('a service deleted mid-rollout fails the poll at once (failures[].reason MISSING)', async () => {
    const s = service();
    const c = ctx(s);
    const r = await ecsProvider.start(c);
    assert.equal(r.kind, 'follow');
    fake.removeService(s.cluster, s.service);
    const p = await ecsProvider.poll!({ ...c, ref: (r as any).ref });
    assert.equal(p.kind, 'failed');
    if (p.kind === 'failed') assert.match(p.error, /not found/);
  });

  test('secrets never appear in errors', async () => {
    const s = service();
    fake.acceptedAccessKeyId = 'AKIAOTHER';
    const r = await ecsProvider.start(ctx(s));
    assert.equal(r.kind, 'failed');
    const text = JSON.stringify(r);
    for (const secret of [CREDS.secret_access_key, CREDS.session_token, CREDS.access_key_id]) assert.ok(!text.includes(secret), text);
    if (r.kind === 'failed') assert.match(r.error, /UnrecognizedClientException/);
  });

  test('a rollout that does not end within timeout_seconds fails saying so', async () => {
    const s = service();
    fake.rolloutPolls = 1000;
    const c = ctx({ ...s, timeout_seconds: 60 });
    const r = await ecsProvider.start(c);
    assert.equal(r.kind, 'follow');
    // Polls that see nothing new carry no message (a message becomes a timeline event).
    let q: StepResult = r;
    const messages: (string | undefined)[] = [];
    for (let i = 0; i < 4 && q.kind === 'follow'; i++) {
      q = await ecsProvider.poll!({ ...c, ref: q.ref });
      if (q.kind === 'follow') messages.push(q.message);
    }
    assert.equal(messages.length, 4);
    assert.ok(messages[0]);
    assert.equal(messages.at(-1), undefined, JSON.stringify(messages));
    const p = await ecsProvider.poll!({ ...c, deployment: { ...c.deployment, startedAt: new Date(Date.now() - 61_000) }, ref: (r as any).ref });
    assert.equal(p.kind, 'failed');
    if (p.kind === 'failed') assert.equal(p.error, 'the ECS rollout did not finish within 60 s');
    // A start that comes after the deadline starts nothing.
    const s2 = service();
    const before = fake.count('UpdateService');
    const late = await ecsProvider.start(ctx({ ...s2, timeout_seconds: 60 }, { startedAt: new Date(Date.now() - 61_000) }));
    assert.equal(late.kind, 'failed');
    if (late.kind === 'failed') assert.match(late.error, /within 60 s; no ECS deployment was started/);
    assert.equal(fake.count('UpdateService'), before);
  });

  test('recover after a crash mid-start follows the deployment already made (one UpdateService in total)', async () => {
    const s = service();
    const c = ctx({ ...s, image: 'registry.example/api:3.0.0' });
    const before = fake.count('UpdateService');
    const r = await ecsProvider.start(c);
    assert.equal(r.kind, 'follow');
    // The process died before the ref was saved: recover() gets ref null.
    const rec = await ecsProvider.recover!({ ...c, ref: null });
    assert.equal(rec.kind, 'follow', JSON.stringify(rec));
    if (r.kind === 'follow' && rec.kind === 'follow') {
      assert.equal(rec.ref.ecs_deployment_id, r.ref.ecs_deployment_id);
      assert.equal(rec.ref.task_definition_revision, 2);
    }
    assert.equal((await followToEnd(c, rec)).kind, 'succeeded');
    assert.equal(fake.count('UpdateService'), before + 1);
  });

  test('recover when the crash came before UpdateService starts the deployment once', async () => {
    const s = service();
    const before = fake.count('UpdateService');
    const c = ctx(s);
    const rec = await ecsProvider.recover!(c);
    assert.equal(rec.kind, 'follow');
    assert.equal(fake.count('UpdateService'), before + 1);
    assert.ok(c.lines.some((l) => l.includes('no ECS deployment from the interrupted start')));
  });

  test('a target without AWS credentials fails clearly', async () => {
    const r = await ecsProvider.start({ ...ctx(service()), credentials: { provider: 'digitalocean', token: 't' } });
    assert.equal(r.kind, 'failed');
    if (r.kind === 'failed') assert.match(r.error, /needs an AWS credential/);
  });
});

describe('redact', () => {
  test('masks every secret, longest first, also URL-encoded, and ignores empty ones', () => {
    const creds = { provider: 'aws', access_key_id: 'AKIA1', secret_access_key: 'a/b+c', session_token: 'tok' };
    assert.deepEqual(secretsOf(creds).sort(), ['AKIA1', 'a/b+c', 'tok']);
    assert.equal(redact('key AKIA1 secret a/b+c enc a%2Fb%2Bc tok', secretsOf(creds)), 'key [REDACTED] secret [REDACTED] enc [REDACTED] [REDACTED]');
    assert.equal(redact('abcdef', ['abc', 'abcdef']), '[REDACTED]');
    assert.equal(redact('nothing here', ['', undefined, null]), 'nothing here');
    assert.deepEqual(secretsOf({ provider: 'digitalocean', token: 'dop_v1_x' }), ['dop_v1_x']);
  });
});
