/**
 * Kubernetes provider: changes a Deployment, StatefulSet or DaemonSet (apps/v1) and follows its
 * rollout as `kubectl rollout status` does, through @kubernetes/client-node.
 *
 * - With `image`: a strategic merge patch of that container's image (the only container when
 *   `container` is omitted). Without: a rollout restart, the `kubectl.kubernetes.io/restartedAt`
 *   template annotation, as `kubectl rollout restart` does.
 * - The same patch writes two annotations on the object (not its pod template):
 *   `shipclock.dev/deployment-id` (which shipclock deployment changed it: recover() after a crash
 *   finds its own change by it and never patches twice) and `shipclock.dev/previous` (what the
 *   template held before: the container's image, or the previous restartedAt — what a rollback
 *   restores). The ref keeps the generation the patch produced and the same previous value.
 * - Followed until observedGeneration ≥ that generation and the replicas of the kind are all
 *   updated, ready and available; a Deployment's `ProgressDeadlineExceeded` fails it with the
 *   condition's message. 401/403/404/422 fail at once; 409, 429, 5xx and network errors retry.
 * - rollback() puts the previous image (or restartedAt) back — the previous pod template, which
 *   for a Deployment brings back the previous ReplicaSet as `kubectl rollout undo` would — unless
 *   someone changed the template since, and follows that rollout the same way.
 */
import type { AppsV1Api, KubeConfig, V1DaemonSet, V1Deployment, V1StatefulSet } from '@kubernetes/client-node';
import { checkKubeconfig, KubeconfigError, type KubernetesCredentialMaterial } from './kubeconfig.ts';
import { redact, secretsOf } from './redact.ts';
import type { Provider, ProviderContext, ProviderRef, StepResult } from './types.ts';

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';

export interface KubernetesTarget {
  type: 'kubernetes';
  credentials?: string;
  namespace: string;
  kind?: WorkloadKind;
  name: string;
  container?: string;
  image?: string;
  poll_interval_seconds?: number;
  timeout_seconds?: number;
}

type Workload = V1Deployment | V1StatefulSet | V1DaemonSet;

export const K8S_DEFAULT_POLL_INTERVAL_SECONDS = 15;
export const K8S_DEFAULT_TIMEOUT_SECONDS = 1800;
export const ANNOTATION_DEPLOYMENT = 'shipclock.dev/deployment-id';
export const ANNOTATION_PREVIOUS = 'shipclock.dev/previous';
export const ANNOTATION_ROLLBACK = 'shipclock.dev/rollback-of';
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';
const REQUEST_TIMEOUT_MS = 30_000;
/** Ref keys of the rollback contract (CHANGED_REF_KEY / NOT_POSSIBLE_REF_KEY in types.ts once it has them). */
const CHANGED = 'changed';
const NOT_POSSIBLE = 'rollback_not_possible';
const PLURAL: Record<WorkloadKind, string> = { Deployment: 'deployments', StatefulSet: 'statefulsets', DaemonSet: 'daemonsets' };

/** What the change replaced: a container's image, or the template's restartedAt (null: none). */
type Previous = { container: string; image: string } | { restartedAt: string | null };

/** An API answer that ends the step: becomes a StepResult (never thrown out of the provider). */
class Outcome extends Error {
  constructor(readonly result: StepResult) {
    super(result.kind === 'failed' || result.kind === 'retry' ? result.error : result.kind);
  }
}

function positive(v: unknown, def: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : def;
}

function settings(t: KubernetesTarget) {
  return {
    pollSeconds: positive(t.poll_interval_seconds, K8S_DEFAULT_POLL_INTERVAL_SECONDS),
    timeoutSeconds: positive(t.timeout_seconds, K8S_DEFAULT_TIMEOUT_SECONDS),
  };
}

const kindOf = (t: KubernetesTarget): WorkloadKind => t.kind ?? 'Deployment';
const label = (t: KubernetesTarget) => `${kindOf(t)} ${t.namespace}/${t.name}`;

type Lib = typeof import('@kubernetes/client-node');
let lib: Promise<Lib> | undefined;
/** The client library, imported on first use (70–100 MB of RSS, measured, that a server without Kubernetes apps never pays). */
const k8s = (): Promise<Lib> => (lib ??= import('@kubernetes/client-node'));

/** The KubeConfig for a credential: its kubeconfig's current context, or the server + token. */
export async function kubeConfigFor(c: KubernetesCredentialMaterial): Promise<KubeConfig> {
  const { KubeConfig } = await k8s();
  const kc = new KubeConfig();
  if (c.kubeconfig) {
    checkKubeconfig(c.kubeconfig);
    kc.loadFromString(c.kubeconfig);
    return kc;
  }
  if (!c.server || !c.token) throw new KubeconfigError('the Kubernetes credential needs a kubeconfig, or a server and a token');
  kc.loadFromOptions({
    clusters: [{ name: 'target', server: c.server, skipTLSVerify: false, ...(c.ca_certificate ? { caData: Buffer.from(c.ca_certificate).toString('base64') } : {}) }],
    users: [{ name: 'shipclock', token: c.token }],
    contexts: [{ name: 'shipclock', cluster: 'target', user: 'shipclock' }],
    currentContext: 'shipclock',
  });
  return kc;
}

interface Client {
  api: AppsV1Api;
  lib: Lib;
  server: string;
  secrets: string[];
}

async function client(ctx: ProviderContext<KubernetesTarget>): Promise<Client> {
  const c = ctx.credentials;
  const secrets = secretsOf(c);
  if (c?.provider !== 'kubernetes') {
    throw new Outcome({ kind: 'failed', error: 'the Kubernetes target needs a Kubernetes credential (provider "kubernetes")' });
  }
  const l = await k8s();
  let kc: KubeConfig;
  try {
    kc = await kubeConfigFor(c);
  } catch (err) {
    const why = err instanceof KubeconfigError ? err.message : 'it cannot be loaded';
    throw new Outcome({ kind: 'failed', error: redact(`the Kubernetes credential is not usable: ${why}`, secrets) });
  }
  return { api: kc.makeApiClient(l.AppsV1Api), lib: l, server: kc.getCurrentCluster()?.server ?? '', secrets };
}

/** Per-call options: the content type of a patch, and a signal (shutdown, or 30 s for the call). */
function callOptions(ctx: ProviderContext<KubernetesTarget>, c: Client, contentType?: string) {
  const { Observable } = c.lib;
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
  return {
    middleware: [{
      pre: (rc: { setHeaderParam(k: string, v: string): void; setSignal(s: AbortSignal): void }) => {
        if (contentType) rc.setHeaderParam('Content-Type', contentType);
        rc.setSignal(signal);
        return new Observable(Promise.resolve(rc));
      },
      post: (r: unknown) => new Observable(Promise.resolve(r)),
    }],
    middlewareMergeStrategy: 'append' as const,
  } as any;
}

/** The Status object of an error answer, if the body is one. */
function statusOf(body: unknown): { message?: string; reason?: string; details?: { retryAfterSeconds?: number } } {
  try {
    const s = typeof body === 'string' ? JSON.parse(body) : body;
    return s && typeof s === 'object' ? s : {};
  } catch {
    return {};
  }
}

/** Turns what the client threw into an Outcome: failed at once, or retry. */
function outcomeOf(ctx: ProviderContext<KubernetesTarget>, c: Client, err: unknown, verb: 'read' | 'patch'): Outcome {
  const t = ctx.target;
  const ref = ctx.ref ? { ref: ctx.ref } : {};
  const e = err as Error & { code?: unknown; body?: unknown; headers?: Record<string, string>; cause?: { code?: string } };
  const say = (m: string) => redact(m, c.secrets);
  if (typeof e?.code !== 'number') {
    const detail = ctx.signal.aborted ? 'interrupted (shutting down or step timeout)'
      : `${e?.name ?? 'Error'}${e?.cause?.code ? ` ${e.cause.code}` : ''}: ${e?.message ?? String(err)}`;
    return new Outcome({ kind: 'retry', error: say(`cannot reach the Kubernetes API: ${detail}`), ...ref });
  }
  const code = e.code;
  const st = statusOf(e.body);
  const detail = st.message ? ` — ${st.message}` : '';
  const what = label(t);
  if (code === 401) return new Outcome({ kind: 'failed', error: say(`Kubernetes rejected the credential (401 Unauthorized): the token or client certificate is invalid or expired`), ...ref });
  if (code === 403) return new Outcome({ kind: 'failed', error: say(`Kubernetes does not allow this credential to ${verb === 'read' ? 'get' : 'patch'} ${what} (403 Forbidden)${detail}`), ...ref });
  if (code === 404) return new Outcome({ kind: 'failed', error: say(`${what} was not found (404)${detail}`), ...ref });
  if (code === 422) return new Outcome({ kind: 'failed', error: say(`Kubernetes refused the change to ${what} as invalid (422)${detail}`), ...ref });
  if (code === 429) {
    const after = Number(e.headers?.['retry-after'] ?? st.details?.retryAfterSeconds);
    return new Outcome({
      kind: 'retry', error: say(`the Kubernetes API is throttling requests (429)${detail}`),
      ...(Number.isFinite(after) && after > 0 ? { afterSeconds: Math.ceil(after) } : {}), ...ref,
    });
  }
  if (code === 409) return new Outcome({ kind: 'retry', error: say(`${what} was changed at the same time (409 Conflict)${detail}`), ...ref });
  if (code >= 500) return new Outcome({ kind: 'retry', error: say(`Kubernetes API server error (${code})${detail}`), ...ref });
  return new Outcome({ kind: 'failed', error: say(`Kubernetes refused to ${verb} ${what} (${code})${detail}`), ...ref });
}

async function read(ctx: ProviderContext<KubernetesTarget>, c: Client): Promise<Workload> {
  const t = ctx.target;
  const p = { name: t.name, namespace: t.namespace };
  const o = callOptions(ctx, c);
  try {
    switch (kindOf(t)) {
      case 'StatefulSet': return await c.api.readNamespacedStatefulSet(p, o);
      case 'DaemonSet': return await c.api.readNamespacedDaemonSet(p, o);
      default: return await c.api.readNamespacedDeployment(p, o);
    }
  } catch (err) {
    throw outcomeOf(ctx, c, err, 'read');
  }
}

async function patch(ctx: ProviderContext<KubernetesTarget>, c: Client, body: object): Promise<Workload> {
  const t = ctx.target;
  const p = { name: t.name, namespace: t.namespace, body, fieldManager: 'shipclock' };
  const o = callOptions(ctx, c, c.lib.PatchStrategy.StrategicMergePatch);
  try {
    switch (kindOf(t)) {
      case 'StatefulSet': return await c.api.patchNamespacedStatefulSet(p, o);
      case 'DaemonSet': return await c.api.patchNamespacedDaemonSet(p, o);
      default: return await c.api.patchNamespacedDeployment(p, o);
    }
  } catch (err) {
    throw outcomeOf(ctx, c, err, 'patch');
  }
}

function consoleUrl(c: Client, t: KubernetesTarget): string {
  return `${c.server.replace(/\/+$/, '')}/apis/apps/v1/namespaces/${encodeURIComponent(t.namespace)}/${PLURAL[kindOf(t)]}/${encodeURIComponent(t.name)}`;
}

function previousFromRef(ref: ProviderRef | null): Previous | undefined {
  if (!ref) return undefined;
  if (typeof ref.previous_container === 'string' && typeof ref.previous_image === 'string') return { container: ref.previous_container, image: ref.previous_image };
  if ('previous_restarted_at' in ref) return { restartedAt: typeof ref.previous_restarted_at === 'string' ? ref.previous_restarted_at : null };
  return undefined;
}

function previousFromObject(w: Workload): Previous | undefined {
  try {
    const p = JSON.parse(w.metadata?.annotations?.[ANNOTATION_PREVIOUS] ?? '');
    if (typeof p?.container === 'string' && typeof p?.image === 'string') return { container: p.container, image: p.image };
    if (p && 'restartedAt' in p) return { restartedAt: typeof p.restartedAt === 'string' ? p.restartedAt : null };
  } catch { /* not ours, or not set */ }
  return undefined;
}

function previousRef(p: Previous | undefined): ProviderRef {
  if (!p) return {};
  return 'image' in p ? { previous_container: p.container, previous_image: p.image } : { previous_restarted_at: p.restartedAt };
}

/**
 * The deployment's ref once its change is in: `now` is the object with the change (its image is
 * the one this deployment set), `before` the object it replaced when known (for its revision).
 */
function baseRef(ctx: ProviderContext<KubernetesTarget>, c: Client, generation: number, prev: Previous | undefined, now: Workload, before?: Workload): ProviderRef {
  const t = ctx.target;
  const revision = before?.metadata?.annotations?.['deployment.kubernetes.io/revision'];
  const image = prev && 'image' in prev ? now.spec?.template?.spec?.containers?.find((x) => x.name === prev.container)?.image : undefined;
  return {
    rollout_id: `${kindOf(t)}/${t.namespace}/${t.name}@${generation}`,
    kind: kindOf(t),
    namespace: t.namespace,
    name: t.name,
    generation,
    console_url: consoleUrl(c, t),
    ...(image ? { image } : {}),
    ...previousRef(prev),
    ...(revision ? { previous_revision: revision } : {}),
    // The change took effect: a failure from here on leaves something to roll back.
    [CHANGED]: true,
  };
}

/** Where the rollout stands, as `kubectl rollout status` says it: done, failed, or waiting (why). */
export function rolloutState(kind: WorkloadKind, w: Workload, generation: number): { done: true } | { failed: string } | { waiting: string } {
  const observed = w.status?.observedGeneration ?? 0;
  const gen = Math.max(generation, w.metadata?.generation ?? 0);
  if (observed < gen) return { waiting: 'waiting for the controller to see the change' };
  if (kind === 'Deployment') {
    const d = w as V1Deployment;
    const cond = d.status?.conditions?.find((x) => x.type === 'Progressing');
    if (cond?.reason === 'ProgressDeadlineExceeded') return { failed: `ProgressDeadlineExceeded: ${cond.message ?? 'the rollout did not progress within its deadline'}` };
    const want = d.spec?.replicas ?? 1;
    const s = d.status ?? {};
    const updated = s.updatedReplicas ?? 0;
    if (updated < want) return { waiting: `${updated} of ${want} updated replicas` };
    if ((s.replicas ?? 0) > updated) return { waiting: `${(s.replicas ?? 0) - updated} old replicas pending termination` };
    if ((s.availableReplicas ?? 0) < updated) return { waiting: `${s.availableReplicas ?? 0} of ${updated} updated replicas available` };
    if ((s.readyReplicas ?? 0) < want) return { waiting: `${s.readyReplicas ?? 0} of ${want} replicas ready` };
    return { done: true };
  }
  if (kind === 'StatefulSet') {
    const ss = w as V1StatefulSet;
    const want = ss.spec?.replicas ?? 1;
    const s = ss.status ?? { replicas: 0 };
    const partition = ss.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
    if ((s.readyReplicas ?? 0) < want) return { waiting: `${s.readyReplicas ?? 0} of ${want} replicas ready` };
    if ((s.updatedReplicas ?? 0) < want - partition) return { waiting: `${s.updatedReplicas ?? 0} of ${want - partition} replicas updated` };
    if (partition === 0 && s.updateRevision !== s.currentRevision) return { waiting: `waiting for the update to revision ${s.updateRevision ?? '?'} to finish` };
    if (s.availableReplicas !== undefined && s.availableReplicas < want) return { waiting: `${s.availableReplicas} of ${want} replicas available` };
    return { done: true };
  }
  const ds = w as V1DaemonSet;
  const s = ds.status ?? { currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0 };
  const want = s.desiredNumberScheduled ?? 0;
  if ((s.updatedNumberScheduled ?? 0) < want) return { waiting: `${s.updatedNumberScheduled ?? 0} of ${want} updated pods scheduled` };
  if ((s.numberAvailable ?? 0) < want) return { waiting: `${s.numberAvailable ?? 0} of ${want} updated pods available` };
  if ((s.numberReady ?? 0) < want) return { waiting: `${s.numberReady ?? 0} of ${want} pods ready` };
  return { done: true };
}

interface Phase {
  /** Ref member holding the generation to reach (generation, or rollback_generation). */
  genKey: 'generation' | 'rollback_generation';
  progressKey: 'progress' | 'rollback_progress';
  /** When this phase started (ms), for its timeout. */
  startedAt: number;
  what: string;
}

function deploymentPhase(ctx: ProviderContext<KubernetesTarget>): Phase {
  return { genKey: 'generation', progressKey: 'progress', startedAt: ctx.deployment.startedAt.getTime(), what: 'the Kubernetes rollout' };
}

/**
 * A rollback's timeout counts from when it started: the scheduler passes that as
 * `deployment.startedAt` of a rollback call (ctx.rollback set); else the instant kept in its ref.
 */
function rollbackPhase(ctx: ProviderContext<KubernetesTarget>, ref: ProviderRef | null): Phase {
  const scheduled = (ctx as { rollback?: unknown }).rollback !== undefined;
  const startedAt = scheduled ? ctx.deployment.startedAt.getTime() : Number(ref?.rollback_started_at) || Date.now();
  return { genKey: 'rollback_generation', progressKey: 'rollback_progress', startedAt, what: 'the Kubernetes rollback' };
}

function timedOut(ctx: ProviderContext<KubernetesTarget>, phase: Phase, ref: ProviderRef | null): StepResult | null {
  const { timeoutSeconds } = settings(ctx.target);
  if (Date.now() - phase.startedAt <= timeoutSeconds * 1000) return null;
  return { kind: 'failed', error: `${phase.what} did not finish within ${timeoutSeconds} s`, ...(ref ? { ref } : {}) };
}

function evaluate(ctx: ProviderContext<KubernetesTarget>, w: Workload, ref: ProviderRef, phase: Phase, opts: { justPatched?: boolean } = {}): StepResult {
  const t = ctx.target;
  const state = rolloutState(kindOf(t), w, Number(ref[phase.genKey]) || 0);
  const progress = 'done' in state ? 'done' : 'failed' in state ? 'failed' : state.waiting;
  const changed = ref[phase.progressKey] !== progress;
  const next: ProviderRef = { ...ref, [phase.progressKey]: progress };
  const doing = phase.genKey === 'generation' ? 'rollout' : 'rollback';
  if ('done' in state) {
    ctx.log(`${label(t)}: ${doing} complete`);
    return { kind: 'succeeded', ref: next, message: `${label(t)}: ${doing} complete` };
  }
  if ('failed' in state) {
    const error = redact(`Kubernetes ${doing} of ${label(t)} failed: ${state.failed}`, secretsOf(ctx.credentials));
    ctx.log(error);
    return { kind: 'failed', ref: next, error };
  }
  if (changed) ctx.log(`${label(t)}: ${state.waiting}`);
  // A rollout this very call started gets at least one poll before the deadline applies.
  const late = opts.justPatched ? null : timedOut(ctx, phase, next);
  if (late) return late;
  const message = opts.justPatched ? `${doing} of ${label(t)} started (generation ${ref[phase.genKey]})` : changed ? `${label(t)}: ${state.waiting}` : undefined;
  return { kind: 'follow', ref: next, afterSeconds: settings(t).pollSeconds, ...(message ? { message } : {}) };
}

/** The change to make: the patch, what it replaces, and a line for the log. */
function plan(ctx: ProviderContext<KubernetesTarget>, w: Workload): { body: object; previous: Previous; line: string } {
  const t = ctx.target;
  const kind = kindOf(t);
  if (kind !== 'Deployment') {
    const strategy = (w as V1StatefulSet | V1DaemonSet).spec?.updateStrategy?.type;
    if (strategy === 'OnDelete') {
      throw new Outcome({ kind: 'failed', error: `${label(t)} uses updateStrategy OnDelete: its pods change only when deleted, so there is no rollout to follow; nothing was changed` });
    }
  } else if ((w as V1Deployment).spec?.paused) {
    throw new Outcome({ kind: 'failed', error: `${label(t)} is paused (kubectl rollout resume): its rollout would not progress; nothing was changed` });
  }
  const mark = { [ANNOTATION_DEPLOYMENT]: ctx.deployment.id };
  if (t.image) {
    const containers = w.spec?.template?.spec?.containers ?? [];
    const names = containers.map((x) => x.name);
    let container = containers.find((x) => x.name === t.container);
    if (!t.container) {
      if (containers.length !== 1) {
        throw new Outcome({ kind: 'failed', error: `${label(t)} has ${containers.length} containers (${names.join(', ')}): set the target's container to one of them; nothing was changed` });
      }
      container = containers[0];
    }
    if (!container) {
      throw new Outcome({ kind: 'failed', error: `${label(t)} has no container "${t.container}" (it has ${names.join(', ') || 'none'}); nothing was changed` });
    }
    const previous = { container: container.name, image: container.image ?? '' };
    return {
      previous,
      line: `patching ${label(t)}: container ${container.name} image ${previous.image || '(none)'} → ${t.image}`,
      body: {
        metadata: { annotations: { ...mark, [ANNOTATION_PREVIOUS]: JSON.stringify(previous) } },
        spec: { template: { spec: { containers: [{ name: container.name, image: t.image }] } } },
      },
    };
  }
  const previous = { restartedAt: w.spec?.template?.metadata?.annotations?.[RESTARTED_AT] ?? null };
  const at = new Date().toISOString();
  return {
    previous,
    line: `restarting ${label(t)} (${RESTARTED_AT} = ${at})`,
    body: {
      metadata: { annotations: { ...mark, [ANNOTATION_PREVIOUS]: JSON.stringify(previous) } },
      spec: { template: { metadata: { annotations: { [RESTARTED_AT]: at } } } },
    },
  };
}

/** Makes the change (once): the object is read first to know what it replaces. */
async function act(ctx: ProviderContext<KubernetesTarget>, c: Client, current?: Workload): Promise<StepResult> {
  const late = timedOut(ctx, deploymentPhase(ctx), ctx.ref);
  if (late?.kind === 'failed') return { ...late, error: `${late.error}; nothing was changed` };
  const w = current ?? (await read(ctx, c));
  const { body, previous, line } = plan(ctx, w);
  ctx.log(line);
  const after = await patch(ctx, c, body);
  const generation = after.metadata?.generation ?? 0;
  const ref = baseRef(ctx, c, generation, previous, after, w);
  ctx.log(`${label(ctx.target)} patched: rollout ${ref.rollout_id} (generation ${generation})`);
  return evaluate(ctx, after, ref, deploymentPhase(ctx), { justPatched: true });
}

/** Continues this deployment: follows a known rollout, finds its own change, or makes it. */
async function resume(ctx: ProviderContext<KubernetesTarget>, c: Client): Promise<StepResult> {
  const ref = ctx.ref;
  if (ref && typeof ref.generation === 'number') return evaluate(ctx, await read(ctx, c), ref, deploymentPhase(ctx));
  const w = await read(ctx, c);
  if (w.metadata?.annotations?.[ANNOTATION_DEPLOYMENT] === ctx.deployment.id) {
    const generation = w.metadata?.generation ?? 0;
    ctx.log(`${label(ctx.target)} already carries this deployment's change (generation ${generation}); following it`);
    return evaluate(ctx, w, { ...(ref ?? {}), ...baseRef(ctx, c, generation, previousFromObject(w), w) }, deploymentPhase(ctx));
  }
  ctx.log(`${label(ctx.target)} does not carry this deployment's change yet; making it`);
  return act(ctx, c, w);
}

async function run(ctx: ProviderContext<KubernetesTarget>, body: (c: Client) => Promise<StepResult>, phase?: Phase): Promise<StepResult> {
  const t = ctx.target;
  if (typeof t.namespace !== 'string' || !t.namespace || typeof t.name !== 'string' || !t.name) {
    return { kind: 'failed', error: 'the Kubernetes target needs a namespace and a name' };
  }
  if (t.kind !== undefined && !(t.kind in PLURAL)) return { kind: 'failed', error: `the Kubernetes target's kind must be Deployment, StatefulSet or DaemonSet` };
  try {
    return await body(await client(ctx));
  } catch (err) {
    if (!(err instanceof Outcome)) throw err;
    const r = err.result;
    // A rollout past its deadline fails even while the API cannot be reached.
    const p = phase ?? deploymentPhase(ctx);
    if (r.kind === 'retry' && ctx.ref && typeof ctx.ref[p.genKey] === 'number') return timedOut(ctx, p, ctx.ref) ?? r;
    return r;
  }
}

/** Undoes this deployment's change (once) and follows that rollout. */
async function rollback(ctx: ProviderContext<KubernetesTarget>, c: Client): Promise<StepResult> {
  const ref: ProviderRef = { ...(ctx.ref ?? {}) };
  if (typeof ref.rollback_generation === 'number') return evaluate(ctx, await read(ctx, c), ref, rollbackPhase(ctx, ref));
  const t = ctx.target;
  const w = await read(ctx, c);
  const ours = w.metadata?.annotations?.[ANNOTATION_DEPLOYMENT] === ctx.deployment.id;
  const previous = previousFromRef(ref) ?? (ours ? previousFromObject(w) : undefined);
  if (!previous) {
    return {
      kind: 'failed', error: `cannot roll back ${label(t)}: what this deployment replaced is not known (it did not change the ${kindOf(t)})`,
      ref: { ...ref, [NOT_POSSIBLE]: true },
    };
  }
  // The image this deployment set: a container running anything else was changed since.
  const ourImage = typeof ref.image === 'string' ? ref.image : t.image;
  const rolledBack = w.metadata?.annotations?.[ANNOTATION_ROLLBACK] === ctx.deployment.id;
  const template = w.spec?.template;
  let body: object | undefined;
  let line: string;
  if ('image' in previous) {
    const now = template?.spec?.containers?.find((x) => x.name === previous.container)?.image;
    if (now === previous.image) {
      line = `${label(t)}: container ${previous.container} already runs ${previous.image}`;
    } else if (!rolledBack && ourImage && now !== ourImage) {
      return {
        kind: 'failed', error: `not rolling back ${label(t)}: container ${previous.container} now runs ${now ?? '(none)'}, not ${ourImage}: it was changed since this deployment`,
        ref: { ...ref, [NOT_POSSIBLE]: true },
      };
    } else {
      line = `rolling back ${label(t)}: container ${previous.container} image ${now ?? '(none)'} → ${previous.image}`;
      body = {
        metadata: { annotations: { [ANNOTATION_ROLLBACK]: ctx.deployment.id } },
        spec: { template: { spec: { containers: [{ name: previous.container, image: previous.image }] } } },
      };
    }
  } else {
    const now = template?.metadata?.annotations?.[RESTARTED_AT] ?? null;
    if (now === previous.restartedAt) {
      line = `${label(t)}: the pod template is already the previous one`;
    } else {
      line = `rolling back ${label(t)}: ${RESTARTED_AT} ${now ?? '(none)'} → ${previous.restartedAt ?? '(none)'}`;
      body = {
        metadata: { annotations: { [ANNOTATION_ROLLBACK]: ctx.deployment.id } },
        spec: { template: { metadata: { annotations: { [RESTARTED_AT]: previous.restartedAt } } } },
      };
    }
  }
  ctx.log(line);
  const after = body ? await patch(ctx, c, body) : w;
  const generation = after.metadata?.generation ?? 0;
  // The rollback's own ref: small, what it restored and the generation to reach.
  const next: ProviderRef = {
    rollout_id: `${kindOf(t)}/${t.namespace}/${t.name}@${generation}`,
    kind: kindOf(t), namespace: t.namespace, name: t.name,
    ...('image' in previous ? { restored_container: previous.container, restored_image: previous.image } : { restored_restarted_at: previous.restartedAt }),
    rollback_generation: generation, rollback_started_at: Date.now(), console_url: consoleUrl(c, t),
  };
  return evaluate(ctx, after, next, rollbackPhase(ctx, next), { justPatched: true });
}

export const kubernetesProvider: Provider<KubernetesTarget> = {
  type: 'kubernetes',
  cancellable: false,

  start(ctx) {
    return run(ctx, (c) => (typeof ctx.ref?.generation === 'number' || ctx.deployment.attempt > 1 ? resume(ctx, c) : act(ctx, c)));
  },

  poll(ctx) {
    return run(ctx, (c) => resume(ctx, c));
  },

  recover(ctx) {
    return run(ctx, (c) => resume(ctx, c));
  },

  rollback(ctx) {
    return run(ctx, (c) => rollback(ctx, c), rollbackPhase(ctx, ctx.ref));
  },

  pollRollback(ctx) {
    return run(ctx, (c) => rollback(ctx, c), rollbackPhase(ctx, ctx.ref));
  },
};
