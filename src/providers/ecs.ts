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
 * Once UpdateService has answered, the ref says `changed: true` and no later step calls it again
 * (an answer without a PRIMARY deployment is followed like any other, found by the service's
 * deployments).
 *
 * DescribeServices comes first: a service whose deploymentController is EXTERNAL or CODE_DEPLOY is
 * refused before anything is changed (shipclock drives only ECS rolling deployments), and the
 * service's task definition is kept in the ref (`previous_task_definition_arn`) for a rollback.
 *
 * Rollback: UpdateService back to `previous_task_definition_arn`, followed like a rollout. A
 * repeated rollback call (a retry, a crash) first looks: a service already on that task definition
 * is followed, not updated again. A deployment that forced a new deployment of the same task
 * definition changed no definition: "nothing to restore".
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

function timedOut(ctx: ProviderContext<EcsTarget>): Extract<StepResult, { kind: 'failed' }> | null {
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

/**
 * Refuses a service shipclock cannot drive: only the ECS (rolling update) deployment controller
 * creates the service deployments shipclock follows.
 */
function assertEcsController(svc: Service, ctx: ProviderContext<EcsTarget>): void {
  const type = svc.deploymentController?.type ?? 'ECS';
  const name = ctx.target.service;
  if (type === 'EXTERNAL') {
    throw new Permanent(`service ${name} uses the EXTERNAL deployment controller; shipclock cannot drive it (its task sets are managed outside ECS deployments)`);
  }
  if (type === 'CODE_DEPLOY') {
    throw new Permanent(
      `service ${name} uses the CODE_DEPLOY deployment controller; shipclock cannot drive it: a blue/green deployment is started ` +
      'and followed through AWS CodeDeploy (another API and credential), not ECS UpdateService',
    );
  }
  if (type !== 'ECS') throw new Permanent(`service ${name} uses the ${type} deployment controller; shipclock drives only the ECS controller`);
}

async function trigger(ecs: ECSClient, ctx: ProviderContext<EcsTarget>, described?: Service): Promise<StepResult> {
  const t = ctx.target;
  // A late retry or recovery past the rollout deadline must not start a rollout nobody follows.
  const late = timedOut(ctx);
  if (late && late.kind === 'failed') return { ...late, error: `${late.error}; no ECS deployment was started` };
  // Before acting: the controller must be one shipclock can drive, and what runs now is kept for a rollback.
  const svc = described ?? (await describeService(ecs, ctx));
  assertEcsController(svc, ctx);
  const previous = svc.taskDefinition ?? null;
  let update;
  let newTd: string | null = previous;
  if (!t.image) {
    update = await ecs.send(
      new sdk.UpdateServiceCommand({ cluster: t.cluster, service: t.service, forceNewDeployment: true }),
      { abortSignal: ctx.signal },
    );
  } else {
    if (!svc.taskDefinition) throw new Permanent(`ECS service "${t.service}" has no task definition to update`);
    const described = await ecs.send(
      new sdk.DescribeTaskDefinitionCommand({ taskDefinition: svc.taskDefinition, include: ['TAGS'] }),
      { abortSignal: ctx.signal },
    );
    if (!described.taskDefinition) throw new Permanent(`ECS returned no task definition for ${svc.taskDefinition}`);
    const { input, containerName, previousImage } = registerInputFor(described.taskDefinition, described.tags, t.image, t.container);
    const registered = await ecs.send(new sdk.RegisterTaskDefinitionCommand(input), { abortSignal: ctx.signal });
    const registeredTd = registered.taskDefinition;
    if (!registeredTd?.taskDefinitionArn) throw new Error('ECS RegisterTaskDefinition returned no task definition ARN');
    ctx.log(`registered task definition ${registeredTd.family}:${registeredTd.revision} (container ${containerName}: ${previousImage ?? '?'} → ${t.image})`);
    newTd = registeredTd.taskDefinitionArn;
    update = await ecs.send(
      new sdk.UpdateServiceCommand({ cluster: t.cluster, service: t.service, taskDefinition: newTd }),
      { abortSignal: ctx.signal },
    );
  }
  // UpdateService answered: the change took effect. From here on nothing calls it again.
  const changed: ProviderRef = { ...(ctx.ref ?? {}), changed: true, previous_task_definition_arn: previous };
  const primary = update.service?.deployments?.find((d) => d.status === 'PRIMARY');
  if (!primary?.id) {
    // Seen with moto, and possible with ECS: follow it by the service's deployments rather than retry.
    const ref: ProviderRef = {
      ...changed, ecs_deployment_id: null, task_definition_arn: newTd, task_definition_revision: revisionOf(newTd ?? undefined),
      cluster: t.cluster, service: t.service, region: t.region, console_url: ecsConsoleUrl(t.region, t.cluster, t.service),
    };
    ctx.log('ECS UpdateService took effect but answered without a PRIMARY deployment; looking for it on the service');
    return { kind: 'follow', ref, afterSeconds: settings(t).pollSeconds, message: 'ECS UpdateService took effect; looking for its deployment' };
  }
  const ref = makeRef(ctx, primary, changed);
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
    // It was made, so the service changed; what ran before is the deployment ours replaced (if still listed).
    const before = (svc.deployments ?? [])
      .filter((d) => d !== ours && d.createdAt && ours.createdAt && d.createdAt.getTime() < ours.createdAt.getTime())
      .sort((a, b) => b.createdAt!.getTime() - a.createdAt!.getTime())[0];
    const ref = makeRef(ctx, ours, { previous_task_definition_arn: before?.taskDefinition ?? null, ...(ctx.ref ?? {}), changed: true });
    ctx.log(`found ECS deployment ${ours.id} from the interrupted start; following it`);
    return follow(ecs, ctx, ref, svc);
  }
  if (ctx.ref?.changed === true) {
    // UpdateService took effect (it answered): never call it again; look again until the timeout.
    const late = timedOut(ctx);
    if (late) return { ...late, error: `${late.error}; ECS UpdateService took effect but no deployment of it was found on the service` };
    return { kind: 'follow', ref: ctx.ref, afterSeconds: settings(ctx.target).pollSeconds };
  }
  ctx.log('no ECS deployment from the interrupted start; starting one');
  return trigger(ecs, ctx, svc);
}

/** The ref of a rollback: the deployment that restores `previous`, or, before it is known, the target task definition. */
function rollbackRef(ctx: ProviderContext<EcsTarget>, previous: string, dep?: Deployment): ProviderRef {
  const t = ctx.target;
  return {
    ecs_deployment_id: dep?.id ?? null,
    task_definition_arn: previous,
    task_definition_revision: revisionOf(previous),
    cluster: t.cluster,
    service: t.service,
    region: t.region,
    console_url: ecsConsoleUrl(t.region, t.cluster, t.service),
  };
}

/** Rollback: the service back on the task definition it ran before this deployment. */
async function rollBack(ecs: ECSClient, ctx: ProviderContext<EcsTarget>): Promise<StepResult> {
  const depRef = ctx.rollback?.deploymentRef ?? ctx.ref;
  const previous = typeof depRef?.previous_task_definition_arn === 'string' ? depRef.previous_task_definition_arn : null;
  if (!previous) {
    return {
      kind: 'failed', ref: { rollback_not_possible: true },
      error: 'the deployment did not record the task definition the service ran before it (shipclock keeps it since rollbacks were added); nothing to restore it to',
    };
  }
  if (depRef?.task_definition_arn === previous) {
    return { kind: 'succeeded', ref: { task_definition_arn: previous, nothing_to_restore: true }, message: `nothing to restore: the deployment forced a new deployment of ${shortName(previous)} without changing the task definition` };
  }
  const svc = await describeService(ecs, ctx);
  try {
    assertEcsController(svc, ctx);
  } catch (err) {
    return { kind: 'failed', ref: { rollback_not_possible: true }, error: (err as Error).message };
  }
  const onPrevious = (svc.deployments ?? []).find((d) => d.status === 'PRIMARY' && d.taskDefinition === previous);
  if (svc.taskDefinition === previous && onPrevious?.id) {
    // An earlier call of this rollback (or ECS's own circuit-breaker rollback) already points the service back.
    ctx.log(`service already runs ${shortName(previous)} (ECS deployment ${onPrevious.id}); following it`);
    return follow(ecs, ctx, rollbackRef(ctx, previous, onPrevious), svc);
  }
  if (svc.taskDefinition === previous && ctx.rollback?.recovering) {
    ctx.log(`service already runs ${shortName(previous)}; looking for its deployment`);
    return { kind: 'follow', ref: rollbackRef(ctx, previous), afterSeconds: settings(ctx.target).pollSeconds };
  }
  const update = await ecs.send(
    new sdk.UpdateServiceCommand({ cluster: ctx.target.cluster, service: ctx.target.service, taskDefinition: previous }),
    { abortSignal: ctx.signal },
  );
  const primary = update.service?.deployments?.find((d) => d.status === 'PRIMARY');
  ctx.log(`ECS UpdateService back to ${shortName(previous)}${primary?.id ? `: deployment ${primary.id}` : ''}`);
  return {
    kind: 'follow', ref: rollbackRef(ctx, previous, primary), afterSeconds: settings(ctx.target).pollSeconds,
    message: `rolling back to ${shortName(previous)}${primary?.id ? ` (ECS deployment ${primary.id})` : ''}`,
  };
}

/** Follows a rollback: its deployment, found by the task definition when the answer did not name it. */
async function followRollback(ecs: ECSClient, ctx: ProviderContext<EcsTarget>): Promise<StepResult> {
  const ref = ctx.ref ?? {};
  if (typeof ref.ecs_deployment_id === 'string') return follow(ecs, ctx, ref);
  const previous = String(ref.task_definition_arn ?? '');
  const svc = await describeService(ecs, ctx);
  const dep = (svc.deployments ?? []).find((d) => d.status === 'PRIMARY' && d.taskDefinition === previous);
  if (dep?.id) return follow(ecs, ctx, { ...ref, ...rollbackRef(ctx, previous, dep) }, svc);
  const late = timedOut(ctx);
  if (late) return { ...late, error: `${late.error}; no ECS deployment of ${shortName(previous)} was found` };
  return { kind: 'follow', ref, afterSeconds: settings(ctx.target).pollSeconds };
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

  rollback(ctx) {
    return run(ctx, (ecs) => rollBack(ecs, ctx));
  },

  pollRollback(ctx) {
    return run(ctx, (ecs) => followRollback(ecs, ctx));
  },
};
