/**
 * AWS ECS provider: rolls a service to a new deployment and follows it to its end.
 *
 * Without `image` it forces a new deployment of the service's current task definition. With
 * `image` it registers a new revision of that task definition with only the chosen container's
 * image changed (every other setting carried over), then points the service at it.
 *
 * The endpoint is the SDK's own business: `AWS_ENDPOINT_URL_ECS` / `AWS_ENDPOINT_URL` are read by
 * @aws-sdk/client-ecs when the client is built (that is how tests reach the local fake).
 *
 * UpdateService has no idempotency token, so "never deploy twice" rests on ECS deployment
 * timestamps: a repeated start (attempt > 1, or recover() after a crash) first looks for a
 * deployment of the service created at/after the shipclock deployment started, and follows it.
 */
import type {
  ContainerDefinition,
  Deployment,
  ECSClient,
  RegisterTaskDefinitionCommandInput,
  Service,
  Tag,
  TaskDefinition,
} from '@aws-sdk/client-ecs';
import { redact, secretsOf } from './redact.ts';
import type { Provider, ProviderContext, ProviderRef, StepResult } from './types.ts';

export interface EcsTarget {
  type: 'ecs';
  region: string;
  cluster: string;
  service: string;
  image?: string;
  container?: string;
  credentials?: string;
  poll_interval_seconds?: number;
  timeout_seconds?: number;
}

export const ECS_DEFAULT_POLL_INTERVAL_SECONDS = 15;
export const ECS_DEFAULT_TIMEOUT_SECONDS = 1800;

/**
 * TaskDefinition members that DescribeTaskDefinition returns but RegisterTaskDefinition does not
 * accept: the rest is carried over to the new revision as-is, so members AWS adds later travel too.
 */
export const ECS_READ_ONLY_TASK_DEFINITION_FIELDS = [
  'taskDefinitionArn',
  'revision',
  'status',
  'requiresAttributes',
  'compatibilities',
  'registeredAt',
  'registeredBy',
  'deregisteredAt',
] as const;

/**
 * How far before `startedAt` an ECS deployment may be stamped and still count as ours when
 * recovering: ECS stamps with its own clock, and shipclock's clock may run a little ahead.
 */
const RECOVER_CLOCK_SKEW_MS = 5_000;

/** AWS error names that mean "slow down" (the SDK's own list, plus the ECS spellings). */
const THROTTLING = new Set([
  'ThrottlingException', 'Throttling', 'ThrottledException', 'RequestThrottledException',
  'TooManyRequestsException', 'RequestLimitExceeded', 'RequestThrottled', 'SlowDown',
  'BandwidthLimitExceeded', 'LimitExceededException', 'PriorRequestNotComplete', 'EC2ThrottledException',
]);
const BAD_CREDENTIALS = new Set([
  'AccessDeniedException', 'AccessDenied', 'UnrecognizedClientException', 'InvalidSignatureException',
  'SignatureDoesNotMatch', 'ExpiredTokenException', 'InvalidClientTokenId', 'MissingAuthenticationToken',
  'IncompleteSignature', 'AuthFailure',
]);

/** Thrown inside this module for an outcome that is the user's to fix; becomes `failed`. */
class Permanent extends Error {}

function settings(t: EcsTarget) {
  return {
    pollSeconds: positive(t.poll_interval_seconds, ECS_DEFAULT_POLL_INTERVAL_SECONDS),
    timeoutSeconds: positive(t.timeout_seconds, ECS_DEFAULT_TIMEOUT_SECONDS),
  };
}

function positive(v: unknown, def: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : def;
}

function checkTarget(ctx: ProviderContext<EcsTarget>): string | null {
  const t = ctx.target;
  for (const k of ['region', 'cluster', 'service'] as const) {
    if (typeof t[k] !== 'string' || !t[k]) return `the ECS target has no ${k}`;
  }
  if (t.image !== undefined && (typeof t.image !== 'string' || !t.image)) return 'the ECS target image must be a non-empty string';
  if (ctx.credentials?.provider !== 'aws') return 'the ECS target needs an AWS credential (provider "aws")';
  return null;
}

type Sdk = typeof import('@aws-sdk/client-ecs');
/**
 * The AWS SDK, loaded by run() before the first ECS call rather than at start: it is about 20 MB
 * of memory that a shipclock without ECS apps never needs.
 */
let sdk: Sdk;

function client(ctx: ProviderContext<EcsTarget>): ECSClient {
  const c = ctx.credentials as Extract<typeof ctx.credentials, { provider: 'aws' }>;
  return new sdk.ECSClient({
    region: ctx.target.region,
    credentials: {
      accessKeyId: c.access_key_id,
      secretAccessKey: c.secret_access_key,
      ...(c.session_token ? { sessionToken: c.session_token } : {}),
    },
    // One HTTP attempt per call: the scheduler owns retries (with the app's backoff), and an SDK
    // retry of an UpdateService whose first try took effect would start a second rollout.
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 30_000 },
  });
}

/** Short name from a name or an ARN (`arn:aws:ecs:r:a:cluster/name`, `.../service/cluster/name`). */
function shortName(nameOrArn: string): string {
  return nameOrArn.startsWith('arn:') ? nameOrArn.slice(nameOrArn.lastIndexOf('/') + 1) : nameOrArn;
}

export function ecsConsoleUrl(region: string, cluster: string, service: string): string {
  const r = encodeURIComponent(region);
  return `https://${r}.console.aws.amazon.com/ecs/v2/clusters/${encodeURIComponent(shortName(cluster))}` +
    `/services/${encodeURIComponent(shortName(service))}/deployments?region=${r}`;
}

function revisionOf(taskDefinitionArn: string | undefined): number | null {
  const m = /:(\d+)$/.exec(taskDefinitionArn ?? '');
  return m ? Number(m[1]) : null;
}

function makeRef(ctx: ProviderContext<EcsTarget>, dep: Deployment, prev?: ProviderRef | null): ProviderRef {
  const t = ctx.target;
  return {
    ...(prev ?? {}),
    ecs_deployment_id: dep.id ?? null,
    task_definition_arn: dep.taskDefinition ?? null,
    task_definition_revision: revisionOf(dep.taskDefinition),
    cluster: t.cluster,
    service: t.service,
    region: t.region,
    console_url: ecsConsoleUrl(t.region, t.cluster, t.service),
  };
}

/**
 * The RegisterTaskDefinition input for a new revision of `td` with `container`'s image set to
 * `image`: every member carried over except the read-only ones, tags included.
 * Throws Permanent when the container is not in the task definition.
 */
export function registerInputFor(
  td: TaskDefinition,
  tags: Tag[] | undefined,
  image: string,
  container?: string,
): { input: RegisterTaskDefinitionCommandInput; containerName: string; previousImage: string | undefined } {
  const copy: Record<string, unknown> = structuredClone(td) as Record<string, unknown>;
  for (const k of ECS_READ_ONLY_TASK_DEFINITION_FIELDS) delete copy[k];
  const defs = (copy.containerDefinitions ?? []) as ContainerDefinition[];
  const names = defs.map((d) => d.name ?? '?').join(', ') || 'none';
  const label = `${td.family ?? '?'}:${td.revision ?? '?'}`;
  let chosen: ContainerDefinition | undefined;
  if (container) {
    chosen = defs.find((d) => d.name === container);
    if (!chosen) throw new Permanent(`container "${container}" is not in task definition ${label} (containers: ${names})`);
  } else {
    // `essential` defaults to true in ECS.
    chosen = defs.find((d) => d.essential !== false);
    if (!chosen) throw new Permanent(`task definition ${label} has no essential container to update (containers: ${names})`);
  }
  const previousImage = chosen.image;
  chosen.image = image;
  if (tags && tags.length) copy.tags = structuredClone(tags);
  return { input: copy as unknown as RegisterTaskDefinitionCommandInput, containerName: chosen.name ?? '?', previousImage };
}

async function describeService(ecs: ECSClient, ctx: ProviderContext<EcsTarget>): Promise<Service> {
  const t = ctx.target;
  const out = await ecs.send(new sdk.DescribeServicesCommand({ cluster: t.cluster, services: [t.service] }), { abortSignal: ctx.signal });
  const failure = out.failures?.[0];
  if (failure) {
    if (failure.reason === 'MISSING') {
      throw new Permanent(`ECS service "${t.service}" was not found in cluster "${t.cluster}" (region ${t.region})`);
    }
    throw new Permanent(`ECS cannot describe service "${t.service}": ${failure.reason ?? 'unknown reason'}${failure.detail ? ` (${failure.detail})` : ''}`);
  }
  const svc = out.services?.[0];
  if (!svc) throw new Permanent(`ECS service "${t.service}" was not found in cluster "${t.cluster}" (region ${t.region})`);
  if (svc.status && svc.status !== 'ACTIVE') {
    throw new Permanent(`ECS service "${t.service}" is ${svc.status}, not ACTIVE`);
  }
  return svc;
}

/**
 * The ECS deployment a previous, interrupted start of this shipclock deployment created, if any:
 * the PRIMARY one running the task definition the ref recorded, else one created around startedAt.
 */
function findOurs(svc: Service, ctx: ProviderContext<EcsTarget>): Deployment | undefined {
  const deps = svc.deployments ?? [];
  const wantTd = typeof ctx.ref?.task_definition_arn === 'string' ? ctx.ref.task_definition_arn : undefined;
  if (wantTd) {
    const primary = deps.find((d) => d.status === 'PRIMARY' && d.taskDefinition === wantTd);
    if (primary) return primary;
  }
  // The first deployment created at/after startedAt; failing that, the last one created within
  // the clock-skew allowance before it.
  const startedAt = ctx.deployment.startedAt.getTime();
  const dated = deps.filter((d) => d.createdAt);
  const at = (d: Deployment) => d.createdAt!.getTime();
  const after = dated.filter((d) => at(d) >= startedAt).sort((a, b) => at(a) - at(b));
  if (after.length) return after[0];
  return dated.filter((d) => at(d) >= startedAt - RECOVER_CLOCK_SKEW_MS).sort((a, b) => at(b) - at(a))[0];
}

/** Maps an SDK error to a StepResult; secrets are redacted from every message. */
function classify(err: unknown, ctx: ProviderContext<EcsTarget>, ref?: ProviderRef): StepResult {
  const secrets = secretsOf(ctx.credentials);
  const t = ctx.target;
  const withRef = ref ? { ref } : {};
  if (err instanceof Permanent) return { kind: 'failed', error: redact(err.message, secrets), ...withRef };
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; $fault?: string; code?: string };
  const name = e?.name ?? 'Error';
  const message = redact(String(e?.message ?? err), secrets);
  const status = e?.$metadata?.httpStatusCode;
  if (name === 'AbortError' || ctx.signal.aborted) return { kind: 'retry', error: 'ECS call interrupted (shutting down or step timeout)', ...withRef };
  if (THROTTLING.has(name) || status === 429) return { kind: 'retry', error: `ECS throttled the request (${name}): ${message}`, ...withRef };
  if ((status !== undefined && status >= 500) || e?.$fault === 'server') {
    return { kind: 'retry', error: `ECS server error (${name}${status ? `, HTTP ${status}` : ''}): ${message}`, ...withRef };
  }
  if (status === undefined) {
    // No HTTP answer at all: connection refused/reset, DNS, timeout. Worth another try.
    return { kind: 'retry', error: `cannot reach ECS (${name}${e?.code ? ` ${e.code}` : ''}): ${message}`, ...withRef };
  }
  if (name === 'ClusterNotFoundException') {
    return { kind: 'failed', error: `ECS cluster "${t.cluster}" was not found in region ${t.region}: ${message}`, ...withRef };
  }
  if (name === 'ServiceNotFoundException') {
    return { kind: 'failed', error: `ECS service "${t.service}" was not found in cluster "${t.cluster}" (region ${t.region}): ${message}`, ...withRef };
  }
  if (name === 'ServiceNotActiveException') {
    return { kind: 'failed', error: `ECS service "${t.service}" is not active: ${message}`, ...withRef };
  }
  if (BAD_CREDENTIALS.has(name) || status === 401 || status === 403) {
    return { kind: 'failed', error: `AWS refused the credential (${name}): ${message}`, ...withRef };
  }
  return { kind: 'failed', error: `ECS rejected the request (${name}, HTTP ${status}): ${message}`, ...withRef };
}

function timedOut(ctx: ProviderContext<EcsTarget>): StepResult | null {
  const { timeoutSeconds } = settings(ctx.target);
  if (Date.now() - ctx.deployment.startedAt.getTime() > timeoutSeconds * 1000) {
    return {
      kind: 'failed',
      error: `the ECS rollout did not finish within ${timeoutSeconds} s`,
      ...(ctx.ref ? { ref: ctx.ref } : {}),
    };
  }
  return null;
}

async function trigger(ecs: ECSClient, ctx: ProviderContext<EcsTarget>): Promise<StepResult> {
  const t = ctx.target;
  // A late retry or recovery past the rollout deadline must not start a rollout nobody follows.
  const late = timedOut(ctx);
  if (late && late.kind === 'failed') return { ...late, error: `${late.error}; no ECS deployment was started` };
  let update;
  if (!t.image) {
    update = await ecs.send(
      new sdk.UpdateServiceCommand({ cluster: t.cluster, service: t.service, forceNewDeployment: true }),
      { abortSignal: ctx.signal },
    );
  } else {
    const svc = await describeService(ecs, ctx);
    if (!svc.taskDefinition) throw new Permanent(`ECS service "${t.service}" has no task definition to update`);
    const described = await ecs.send(
      new sdk.DescribeTaskDefinitionCommand({ taskDefinition: svc.taskDefinition, include: ['TAGS'] }),
      { abortSignal: ctx.signal },
    );
    if (!described.taskDefinition) throw new Permanent(`ECS returned no task definition for ${svc.taskDefinition}`);
    const { input, containerName, previousImage } = registerInputFor(described.taskDefinition, described.tags, t.image, t.container);
    const registered = await ecs.send(new sdk.RegisterTaskDefinitionCommand(input), { abortSignal: ctx.signal });
    const newTd = registered.taskDefinition;
    if (!newTd?.taskDefinitionArn) throw new Error('ECS RegisterTaskDefinition returned no task definition ARN');
    ctx.log(`registered task definition ${newTd.family}:${newTd.revision} (container ${containerName}: ${previousImage ?? '?'} → ${t.image})`);
    update = await ecs.send(
      new sdk.UpdateServiceCommand({ cluster: t.cluster, service: t.service, taskDefinition: newTd.taskDefinitionArn }),
      { abortSignal: ctx.signal },
    );
  }
  const primary = update.service?.deployments?.find((d) => d.status === 'PRIMARY');
  if (!primary?.id) throw new Error('ECS UpdateService answered without a PRIMARY deployment');
  const ref = makeRef(ctx, primary);
  ctx.log(`ECS deployment ${primary.id} started on ${shortName(t.cluster)}/${shortName(t.service)} with ${shortName(primary.taskDefinition ?? '?')}`);
  return { kind: 'follow', ref, afterSeconds: settings(t).pollSeconds, message: `ECS deployment ${primary.id} started with ${shortName(primary.taskDefinition ?? '?')}` };
}

async function follow(ecs: ECSClient, ctx: ProviderContext<EcsTarget>, ref: ProviderRef, described?: Service): Promise<StepResult> {
  const svc = described ?? (await describeService(ecs, ctx));
  const deps = svc.deployments ?? [];
  const id = ref.ecs_deployment_id;
  const dep = deps.find((d) => d.id === id);
  const primary = deps.find((d) => d.status === 'PRIMARY');
  if (!dep) {
    return { kind: 'failed', ref, error: `ECS deployment ${id} is no longer listed on the service (replaced by ${primary?.id ?? 'another deployment'})` };
  }
  const counts = `desired ${dep.desiredCount ?? 0}, pending ${dep.pendingCount ?? 0}, running ${dep.runningCount ?? 0}` +
    (dep.failedTasks ? `, failed ${dep.failedTasks}` : '');
  const next: ProviderRef = { ...ref, task_counts: counts };
  const changed = ref.task_counts !== counts;
  if (changed) ctx.log(`ECS deployment ${id}: tasks ${counts}`);

  if (dep.rolloutState === 'COMPLETED') {
    ctx.log(`ECS deployment ${id} completed${dep.rolloutStateReason ? `: ${dep.rolloutStateReason}` : ''}`);
    return { kind: 'succeeded', ref: next, message: `ECS deployment ${id} completed` };
  }
  if (dep.rolloutState === 'FAILED') {
    const reason = dep.rolloutStateReason || 'no reason given';
    ctx.log(`ECS deployment ${id} failed: ${reason}`);
    return { kind: 'failed', ref: next, error: `ECS rollout failed: ${reason}` };
  }
  if (dep.status !== 'PRIMARY') {
    return { kind: 'failed', ref: next, error: `ECS deployment ${id} was superseded by ${primary?.id ?? 'another deployment'} before it finished` };
  }
  // Services without rollout state (e.g. behind a Classic Load Balancer): steady when the primary
  // deployment is the only one and runs every desired task (the SDK's services-stable rule).
  if (!dep.rolloutState && deps.length === 1 && (dep.runningCount ?? 0) === (dep.desiredCount ?? 0) && !dep.pendingCount) {
    return { kind: 'succeeded', ref: next, message: `ECS deployment ${id} is steady` };
  }
  const late = timedOut({ ...ctx, ref: next });
  if (late) return late;
  // A message becomes a timeline event: only when something changed, not on every poll.
  return { kind: 'follow', ref: next, afterSeconds: settings(ctx.target).pollSeconds, ...(changed ? { message: `ECS deployment ${id}: tasks ${counts}` } : {}) };
}

async function run(ctx: ProviderContext<EcsTarget>, body: (ecs: ECSClient) => Promise<StepResult>): Promise<StepResult> {
  const bad = checkTarget(ctx);
  if (bad) return { kind: 'failed', error: bad, ...(ctx.ref ? { ref: ctx.ref } : {}) };
  sdk ??= await import('@aws-sdk/client-ecs');
  const ecs = client(ctx);
  try {
    return await body(ecs);
  } catch (err) {
    const result = classify(err, ctx, ctx.ref ?? undefined);
    // A rollout past its deadline fails even when ECS cannot be reached right now.
    if (result.kind === 'retry' && ctx.ref?.ecs_deployment_id) return timedOut(ctx) ?? result;
    return result;
  } finally {
    ecs.destroy();
  }
}

/** Follows the deployment a previous start created, or starts one if there is none. */
async function resume(ecs: ECSClient, ctx: ProviderContext<EcsTarget>): Promise<StepResult> {
  if (typeof ctx.ref?.ecs_deployment_id === 'string') return follow(ecs, ctx, ctx.ref);
  const svc = await describeService(ecs, ctx);
  const ours = findOurs(svc, ctx);
  if (ours?.id) {
    const ref = makeRef(ctx, ours, ctx.ref);
    ctx.log(`found ECS deployment ${ours.id} from the interrupted start; following it`);
    return follow(ecs, ctx, ref, svc);
  }
  ctx.log('no ECS deployment from the interrupted start; starting one');
  return trigger(ecs, ctx);
}

export const ecsProvider: Provider<EcsTarget> = {
  type: 'ecs',
  // An ECS rollout cannot be recalled (only replaced by another deployment).
  cancellable: false,

  start(ctx) {
    return run(ctx, (ecs) => {
      // A retried start may follow one whose UpdateService took effect (an ambiguous 5xx or a lost
      // answer): look before deploying again.
      if (ctx.ref?.ecs_deployment_id || ctx.deployment.attempt > 1) return resume(ecs, ctx);
      return trigger(ecs, ctx);
    });
  },

  poll(ctx) {
    return run(ctx, (ecs) => {
      if (typeof ctx.ref?.ecs_deployment_id !== 'string') return resume(ecs, ctx);
      return follow(ecs, ctx, ctx.ref);
    });
  },

  recover(ctx) {
    return run(ctx, (ecs) => resume(ecs, ctx));
  },
};
