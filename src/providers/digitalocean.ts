/**
 * DigitalOcean App Platform provider: creates an app deployment and follows its phase to the end.
 *
 * `POST /v2/apps/{app_id}/deployments {force_build}` starts it; `GET .../deployments/{id}` is
 * polled until ACTIVE (succeeded) or ERROR / CANCELED / SUPERSEDED (failed). The base URL is read
 * from SHIPCLOCK_DIGITALOCEAN_API_URL at call time (default the public API), so tests and
 * self-hosted proxies can point it elsewhere.
 *
 * Creating a deployment is not idempotent, so a repeated start (attempt > 1) and recover() first
 * list the app's deployments and follow one created at/after the shipclock deployment started.
 *
 * Rollback: before creating, the app's deployments are listed and the ACTIVE one is kept in the
 * ref (`previous_deployment_id`); the ref says `changed: true` once a deployment was created. A
 * rollback is `POST /v2/apps/{app_id}/rollback {deployment_id: previous, skip_pin: true}` (DigitalOcean
 * creates a deployment of that earlier one), followed like a rollout. `skip_pin` because a pinned
 * app refuses every later deployment until the rollback is committed or reverted by hand, and the
 * app's next scheduled deployments must still run. A repeated call (a retry, a crash) first looks
 * for a deployment created since the rollback started, and follows it.
 */
import { redact, secretsOf } from './redact.ts';
import type { Provider, ProviderContext, ProviderRef, StepResult } from './types.ts';

export interface DigitaloceanTarget {
  type: 'digitalocean';
  app_id: string;
  credentials?: string;
  force_build?: boolean;
  poll_interval_seconds?: number;
  timeout_seconds?: number;
}

export const DO_DEFAULT_API_URL = 'https://api.digitalocean.com';
export const DO_DEFAULT_POLL_INTERVAL_SECONDS = 15;
export const DO_DEFAULT_TIMEOUT_SECONDS = 1800;
const REQUEST_TIMEOUT_MS = 30_000;
/** DigitalOcean stamps deployments with its clock; allow ours to run this much ahead. */
const RECOVER_CLOCK_SKEW_MS = 5_000;

const SUCCEEDED = new Set(['ACTIVE']);
const FAILED = new Set(['ERROR', 'CANCELED', 'SUPERSEDED']);

interface DoStep {
  name?: string;
  component_name?: string;
  message_base?: string;
  status?: string;
  reason?: { code?: string; message?: string };
  steps?: DoStep[];
}

interface DoDeployment {
  id: string;
  phase?: string;
  created_at?: string;
  cause?: string;
  progress?: {
    success_steps?: number;
    total_steps?: number;
    error_steps?: number;
    steps?: DoStep[];
    summary_steps?: DoStep[];
  };
}

/** An API answer that ends the step: becomes a StepResult (never thrown out of the provider). */
class Outcome extends Error {
  constructor(readonly result: StepResult) {
    super(result.kind === 'failed' || result.kind === 'retry' ? result.error : result.kind);
  }
}

export function digitaloceanApiUrl(env: NodeJS.ProcessEnv = process.env): string {
  return (env.SHIPCLOCK_DIGITALOCEAN_API_URL || DO_DEFAULT_API_URL).replace(/\/+$/, '');
}

export function doConsoleUrl(appId: string, deploymentId: string): string {
  return `https://cloud.digitalocean.com/apps/${encodeURIComponent(appId)}/deployments/${encodeURIComponent(deploymentId)}`;
}

function positive(v: unknown, def: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : def;
}

function settings(t: DigitaloceanTarget) {
  return {
    pollSeconds: positive(t.poll_interval_seconds, DO_DEFAULT_POLL_INTERVAL_SECONDS),
    timeoutSeconds: positive(t.timeout_seconds, DO_DEFAULT_TIMEOUT_SECONDS),
  };
}

function token(ctx: ProviderContext<DigitaloceanTarget>): string {
  const c = ctx.credentials;
  if (c?.provider !== 'digitalocean' || !c.token) {
    throw new Outcome({ kind: 'failed', error: 'the DigitalOcean target needs a DigitalOcean credential (provider "digitalocean")' });
  }
  return c.token;
}

/** Seconds to wait after a 429: `retry-after`, else until `ratelimit-reset` (a Unix time). */
export function rateLimitWait(headers: Headers, now = Date.now()): number | undefined {
  const after = Number(headers.get('retry-after'));
  if (headers.get('retry-after') !== null && Number.isFinite(after) && after >= 0) return Math.max(1, Math.ceil(after));
  const reset = Number(headers.get('ratelimit-reset'));
  if (headers.get('ratelimit-reset') !== null && Number.isFinite(reset) && reset > 0) {
    return Math.max(1, Math.ceil(reset - now / 1000));
  }
  return undefined;
}

/**
 * One API call. 2xx → the parsed body; anything else → an Outcome: 429 and 5xx (and network
 * errors) are `retry`, other answers `failed`, with `what` saying which object was meant.
 */
async function call<T>(
  ctx: ProviderContext<DigitaloceanTarget>,
  method: 'GET' | 'POST',
  path: string,
  what: string,
  body?: unknown,
): Promise<T> {
  const secrets = secretsOf(ctx.credentials);
  const ref = ctx.ref ? { ref: ctx.ref } : {};
  const auth = token(ctx);
  let res: Response;
  try {
    res = await fetch(digitaloceanApiUrl() + path, {
      method,
      headers: {
        authorization: `Bearer ${auth}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const detail = ctx.signal.aborted ? 'interrupted (shutting down or step timeout)' : `${e.name}${e.cause?.code ? ` ${e.cause.code}` : ''}: ${e.message}`;
    throw new Outcome({ kind: 'retry', error: redact(`cannot reach the DigitalOcean API: ${detail}`, secrets), ...ref });
  }
  const text = await res.text().catch(() => '');
  if (res.ok) {
    try {
      return (text ? JSON.parse(text) : {}) as T;
    } catch {
      throw new Outcome({ kind: 'retry', error: `DigitalOcean answered ${res.status} with a body that is not JSON`, ...ref });
    }
  }
  // Error body per the API: {id, message, request_id?}.
  let detail = '';
  try {
    const e = JSON.parse(text) as { id?: string; message?: string; request_id?: string };
    detail = [e.id, e.message].filter(Boolean).join(': ') + (e.request_id ? ` (request ${e.request_id})` : '');
  } catch {
    detail = text.slice(0, 200);
  }
  const say = (m: string) => redact(detail ? `${m} — ${detail}` : m, secrets);
  const s = res.status;
  if (s === 429) {
    const afterSeconds = rateLimitWait(res.headers);
    throw new Outcome({ kind: 'retry', error: say('DigitalOcean rate limit exceeded (429)'), ...(afterSeconds ? { afterSeconds } : {}), ...ref });
  }
  if (s >= 500) throw new Outcome({ kind: 'retry', error: say(`DigitalOcean server error (${s})`), ...ref });
  if (s === 401) throw new Outcome({ kind: 'failed', error: say('DigitalOcean rejected the token (401): it is invalid, expired or revoked'), ...ref });
  if (s === 403) throw new Outcome({ kind: 'failed', error: say('the DigitalOcean token is not allowed to do this (403): it needs the app:read and app:update scopes'), ...ref });
  if (s === 404) throw new Outcome({ kind: 'failed', error: say(`${what} was not found (404), or the token cannot see it`), ...ref });
  throw new Outcome({ kind: 'failed', error: say(`DigitalOcean refused ${method} ${what} (${s})`), ...ref });
}

function appPath(t: DigitaloceanTarget): string {
  return `/v2/apps/${encodeURIComponent(t.app_id)}/deployments`;
}

function makeRef(t: DigitaloceanTarget, d: DoDeployment, prev?: ProviderRef | null): ProviderRef {
  return {
    ...(prev ?? {}),
    do_deployment_id: d.id,
    app_id: t.app_id,
    console_url: doConsoleUrl(t.app_id, d.id),
    phase: d.phase ?? null,
  };
}

/** The deepest step in ERROR that says why, searching nested steps, then the summary steps. */
export function failingStepReason(d: DoDeployment): string | undefined {
  const walk = (steps: DoStep[] | undefined): DoStep | undefined => {
    for (const s of steps ?? []) {
      if (s.status !== 'ERROR') continue;
      const inner = walk(s.steps);
      if (inner) return inner;
      if (s.reason?.message || s.reason?.code) return s;
    }
    return undefined;
  };
  const step = walk(d.progress?.steps) ?? walk(d.progress?.summary_steps);
  if (!step) return undefined;
  const label = [step.message_base ?? step.name, step.component_name].filter(Boolean).join(' ');
  const reason = [step.reason?.message, step.reason?.code && `(${step.reason.code})`].filter(Boolean).join(' ');
  return `${label || 'a step'} failed: ${reason}`;
}

function evaluate(ctx: ProviderContext<DigitaloceanTarget>, d: DoDeployment, prevRef: ProviderRef | null, opts: { justCreated?: boolean } = {}): StepResult {
  const t = ctx.target;
  const ref = makeRef(t, d, prevRef);
  const phase = d.phase ?? 'UNKNOWN';
  const p = d.progress;
  const steps = p?.total_steps ? `${p.success_steps ?? 0}/${p.total_steps}` : null;
  const changed = prevRef?.phase !== phase || (prevRef?.steps_done ?? null) !== steps;
  const status = `DigitalOcean deployment ${d.id}: ${phase}${steps ? `, ${steps} steps done` : ''}`;
  if (changed) ctx.log(status);
  const next: ProviderRef = { ...ref, steps_done: steps };
  if (SUCCEEDED.has(phase)) return { kind: 'succeeded', ref: next, message: `DigitalOcean deployment ${d.id} is ACTIVE` };
  if (FAILED.has(phase)) {
    let error: string;
    if (phase === 'ERROR') error = `DigitalOcean deployment ${d.id} failed: ${failingStepReason(d) ?? 'no reason given'}`;
    else if (phase === 'CANCELED') error = `DigitalOcean deployment ${d.id} was canceled`;
    else error = `DigitalOcean deployment ${d.id} was superseded by a newer deployment before it finished`;
    return { kind: 'failed', ref: next, error };
  }
  // A deployment this very call created gets at least one poll before the deadline applies.
  const late = opts.justCreated ? null : timedOut(ctx, next);
  if (late) return late;
  // A message becomes a timeline event: only when something changed, not on every poll.
  return { kind: 'follow', ref: next, afterSeconds: settings(t).pollSeconds, ...(changed ? { message: status } : {}) };
}

function timedOut(ctx: ProviderContext<DigitaloceanTarget>, ref: ProviderRef | null): StepResult | null {
  const { timeoutSeconds } = settings(ctx.target);
  if (Date.now() - ctx.deployment.startedAt.getTime() <= timeoutSeconds * 1000) return null;
  return { kind: 'failed', error: `the DigitalOcean deployment did not finish within ${timeoutSeconds} s`, ...(ref ? { ref } : {}) };
}

/** The app's active deployment (what a rollback restores), newest first as the API lists them. */
function activeOf(deployments: DoDeployment[], before?: number): DoDeployment | undefined {
  const at = (d: DoDeployment) => Date.parse(d.created_at ?? '');
  return deployments.find((d) => d.phase === 'ACTIVE' && (before === undefined || !(at(d) >= before)))
    // Recovering after ours became active: the one ours superseded.
    ?? (before !== undefined ? deployments.find((d) => d.phase === 'SUPERSEDED' && at(d) < before) : undefined);
}

async function listDeployments(ctx: ProviderContext<DigitaloceanTarget>): Promise<DoDeployment[]> {
  const t = ctx.target;
  const out = await call<{ deployments?: DoDeployment[] }>(ctx, 'GET', `${appPath(t)}?page=1&per_page=20`, `app ${t.app_id}`);
  return out.deployments ?? [];
}

async function create(ctx: ProviderContext<DigitaloceanTarget>): Promise<StepResult> {
  const t = ctx.target;
  // What runs now, kept for a rollback.
  const previous = activeOf(await listDeployments(ctx))?.id ?? null;
  const out = await call<{ deployment?: DoDeployment }>(ctx, 'POST', appPath(t), `app ${t.app_id}`, { force_build: t.force_build === true });
  const d = out.deployment;
  if (!d?.id) return { kind: 'retry', error: 'DigitalOcean created a deployment but answered without its id', ref: { changed: true, previous_deployment_id: previous } };
  ctx.log(`DigitalOcean deployment ${d.id} created for app ${t.app_id}${t.force_build ? ' (forced build)' : ''}`);
  return evaluate(ctx, d, { changed: true, previous_deployment_id: previous }, { justCreated: true });
}

/** Creates a deployment unless the rollout deadline has already passed (a late retry or recovery). */
async function createBeforeDeadline(ctx: ProviderContext<DigitaloceanTarget>): Promise<StepResult> {
  const late = timedOut(ctx, ctx.ref);
  if (late?.kind === 'failed') return { ...late, error: `${late.error}; no DigitalOcean deployment was created` };
  return create(ctx);
}

async function follow(ctx: ProviderContext<DigitaloceanTarget>, ref: ProviderRef): Promise<StepResult> {
  const t = ctx.target;
  const id = String(ref.do_deployment_id);
  const out = await call<{ deployment?: DoDeployment }>(
    { ...ctx, ref }, 'GET', `${appPath(t)}/${encodeURIComponent(id)}`, `deployment ${id} of app ${t.app_id}`,
  );
  if (!out.deployment) return { kind: 'retry', error: 'DigitalOcean answered without the deployment', ref };
  return evaluate(ctx, out.deployment, ref);
}

/** The deployment a previous, interrupted start of this shipclock deployment created, if any. */
async function findOurs(ctx: ProviderContext<DigitaloceanTarget>): Promise<DoDeployment | undefined> {
  return (await findOursIn(ctx)).ours;
}

/** Ours (see pickOurs) and the deployment that was active before it, from one listing. */
async function findOursIn(ctx: ProviderContext<DigitaloceanTarget>): Promise<{ ours?: DoDeployment; previous?: DoDeployment }> {
  const list = await listDeployments(ctx);
  const ours = pickOurs(list, ctx.deployment.startedAt.getTime());
  const previous = activeOf(list.filter((d) => d !== ours), ours ? Date.parse(ours.created_at ?? '') : undefined);
  return { ours, previous };
}

/**
 * Ours is the first deployment created at/after startedAt; failing that, the last one created
 * within the clock-skew allowance before it. (The list comes newest first; on equal timestamps the
 * older entry wins.)
 */
function pickOurs(deployments: DoDeployment[], startedAt: number): DoDeployment | undefined {
  const at = (d: DoDeployment) => Date.parse(d.created_at ?? '');
  const dated = deployments.filter((d) => d.id && Number.isFinite(at(d)));
  const after = dated.filter((d) => at(d) >= startedAt).reverse().sort((a, b) => at(a) - at(b));
  if (after.length) return after[0];
  return dated.filter((d) => at(d) >= startedAt - RECOVER_CLOCK_SKEW_MS).sort((a, b) => at(b) - at(a))[0];
}

async function resume(ctx: ProviderContext<DigitaloceanTarget>): Promise<StepResult> {
  if (typeof ctx.ref?.do_deployment_id === 'string') return follow(ctx, ctx.ref);
  const { ours, previous } = await findOursIn(ctx);
  if (ours) {
    ctx.log(`found DigitalOcean deployment ${ours.id} from the interrupted start; following it`);
    return evaluate(ctx, ours, {
      previous_deployment_id: previous?.id ?? null, ...(ctx.ref ?? {}), ...makeRef(ctx.target, ours), phase: null, changed: true,
    });
  }
  ctx.log('no DigitalOcean deployment from the interrupted start; creating one');
  return createBeforeDeadline(ctx);
}

async function run(ctx: ProviderContext<DigitaloceanTarget>, body: () => Promise<StepResult>): Promise<StepResult> {
  if (typeof ctx.target.app_id !== 'string' || !ctx.target.app_id) {
    return { kind: 'failed', error: 'the DigitalOcean target has no app_id' };
  }
  try {
    return await body();
  } catch (err) {
    if (!(err instanceof Outcome)) throw err;
    const r = err.result;
    // A rollout past its deadline fails even while the API cannot be reached.
    if (r.kind === 'retry' && ctx.ref?.do_deployment_id) return timedOut(ctx, ctx.ref) ?? r;
    return r;
  }
}

/** Rollback: a deployment of the one that was active before, found again rather than made twice. */
async function rollBack(ctx: ProviderContext<DigitaloceanTarget>): Promise<StepResult> {
  const t = ctx.target;
  const depRef = ctx.rollback?.deploymentRef ?? ctx.ref;
  const previous = typeof depRef?.previous_deployment_id === 'string' ? depRef.previous_deployment_id : null;
  if (!previous) {
    return {
      kind: 'failed', ref: { rollback_not_possible: true },
      error: `app ${t.app_id} had no active deployment before this one (or it was not recorded): nothing to roll back to`,
    };
  }
  const base = { rolled_back_to: previous };
  if (ctx.rollback?.recovering) {
    // Only deployments newer than the one being rolled back (the list is newest first): never it,
    // nor the one before it, which may have been created within the clock-skew allowance.
    const all = await listDeployments({ ...ctx, ref: null });
    const failedAt = all.findIndex((d) => d.id === depRef?.do_deployment_id);
    const ours = pickOurs(failedAt >= 0 ? all.slice(0, failedAt) : all, ctx.deployment.startedAt.getTime());
    if (ours) {
      ctx.log(`found DigitalOcean deployment ${ours.id} from the interrupted rollback; following it`);
      return evaluate(ctx, ours, { ...base, ...makeRef(t, ours), phase: null });
    }
  }
  const out = await call<{ deployment?: DoDeployment }>(
    { ...ctx, ref: null }, 'POST', `/v2/apps/${encodeURIComponent(t.app_id)}/rollback`, `deployment ${previous} of app ${t.app_id}`,
    { deployment_id: previous, skip_pin: true },
  );
  const d = out.deployment;
  if (!d?.id) return { kind: 'retry', error: 'DigitalOcean started a rollback but answered without its deployment' };
  ctx.log(`DigitalOcean rollback of app ${t.app_id} to deployment ${previous}: deployment ${d.id}`);
  return evaluate(ctx, d, base, { justCreated: true });
}

export const digitaloceanProvider: Provider<DigitaloceanTarget> = {
  type: 'digitalocean',
  cancellable: true,

  start(ctx) {
    return run(ctx, () => (ctx.ref?.do_deployment_id || ctx.deployment.attempt > 1 ? resume(ctx) : createBeforeDeadline(ctx)));
  },

  poll(ctx) {
    return run(ctx, () => resume(ctx));
  },

  recover(ctx) {
    return run(ctx, () => resume(ctx));
  },

  rollback(ctx) {
    return run(ctx, () => rollBack(ctx));
  },

  pollRollback(ctx) {
    return run(ctx, () => follow(ctx, ctx.ref ?? {}));
  },

  /**
   * Cancels the in-flight DigitalOcean deployment. A deployment that is already gone (404) needs
   * nothing; other refusals throw (message redacted) so the caller can report them.
   */
  async cancel(ctx) {
    const t = ctx.target;
    let id = typeof ctx.ref?.do_deployment_id === 'string' ? ctx.ref.do_deployment_id : undefined;
    try {
      if (!id) id = (await findOurs(ctx))?.id;
      if (!id) {
        ctx.log('no DigitalOcean deployment to cancel');
        return;
      }
      await call(ctx, 'POST', `${appPath(t)}/${encodeURIComponent(id)}/cancel`, `deployment ${id} of app ${t.app_id}`, {});
      ctx.log(`DigitalOcean deployment ${id} canceled`);
    } catch (err) {
      if (!(err instanceof Outcome)) throw err;
      const r = err.result;
      if (r.kind === 'failed' && /\(404\)/.test(r.error)) {
        ctx.log(`DigitalOcean deployment ${id ?? '?'} is gone; nothing to cancel`);
        return;
      }
      throw new Error(r.kind === 'failed' || r.kind === 'retry' ? r.error : 'cannot cancel the DigitalOcean deployment');
    }
  },
};
