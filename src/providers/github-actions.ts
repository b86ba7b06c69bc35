/**
 * GitHub Actions provider: dispatches a workflow (`workflow_dispatch`), finds the run it created
 * and follows it to its conclusion. Through Octokit (@octokit/core), against api.github.com or a
 * GitHub Enterprise Server (the credential's `api_url`).
 *
 * 1. The workflow file is read (GET workflow → its path; GET contents at `ref`) and its
 *    `on.workflow_dispatch.inputs` parsed: shipclock passes `deployment_id`, `run_at`, `action`
 *    (deploy|rollback) and `shipclock_id` only when declared (GitHub answers 422 to undeclared
 *    inputs), and refuses the target's own inputs the workflow does not declare.
 * 2. `POST .../workflows/{workflow}/dispatches` with `return_run_details: true` (the 2025 API
 *    change): a server that knows it answers 200 with the run id; one that does not answers 204
 *    (an older GHES that rejects the member with 422 is asked again without it).
 * 3. Without a run id, the run is looked up in the workflow's runs (event=workflow_dispatch,
 *    branch=ref, created ≥ dispatch time − skew). When the workflow declares `shipclock_id` and
 *    its `run-name` shows it, the run is matched by that marker in `display_title`; otherwise the
 *    oldest run created since the dispatch is taken (and the log says it was matched by time).
 * 4. The run is polled: `completed` + `success` → succeeded; any other conclusion → failed with
 *    the failing job (and step) named and the run's link.
 *
 * A start or rollback that may have dispatched (a crash, a network error mid-request) never
 * dispatches again blindly: recover() looks for the run by its marker first. Rate limits (403/429
 * with retry-after, or x-ratelimit-remaining 0 + x-ratelimit-reset) and 5xx/network errors are
 * `retry` (after the time GitHub names); 401/404/422 and other 403s fail at once.
 */
import type { Octokit } from '@octokit/core';
import { parse as parseYaml } from 'yaml';
import { redact, secretsOf } from './redact.ts';
import type { Provider, ProviderContext, ProviderRef, StepResult } from './types.ts';

export interface GithubActionsTarget {
  type: 'github_actions';
  credentials?: string;
  repository: string;
  workflow: string;
  ref: string;
  inputs?: Record<string, string>;
  poll_interval_seconds?: number;
  timeout_seconds?: number;
}

/** Inputs shipclock sets itself (when the workflow declares them); a target may not set them. */
export const GITHUB_RESERVED_INPUTS = ['deployment_id', 'run_at', 'action', 'shipclock_id'];
/**
 * The format checks of a github_actions target (the API's 422s, each naming its field), beyond the
 * types the request schema checks. Pure: returns the first problem, or null.
 */
export function githubTargetProblem(t: { repository: string; workflow: string; ref: string; inputs?: Record<string, string> }): { field: string; message: string } | null {
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/.test(t.repository) || /\/\.\.?$/.test(t.repository)) {
    return { field: 'target.repository', message: 'repository must be "owner/name", e.g. acme/web' };
  }
  if (!/^(?:[1-9][0-9]{0,19}|[A-Za-z0-9._-]+\.ya?ml)$/.test(t.workflow) || t.workflow.startsWith('.')) {
    return { field: 'target.workflow', message: 'workflow must be a file name in .github/workflows (e.g. deploy.yml) or a numeric workflow id' };
  }
  // git check-ref-format, roughly: no spaces, control characters, ~ ^ : ? * [ \, "..", "@{", or a leading/trailing "/" or ".".
  if (/[\s~^:?*[\\\x00-\x1f\x7f]|\.\.|@\{|^[/.]|[/.]$|\.lock$/.test(t.ref)) {
    return { field: 'target.ref', message: 'ref must be a branch or tag name, e.g. main or v1.2.3' };
  }
  for (const key of Object.keys(t.inputs ?? {})) {
    if (GITHUB_RESERVED_INPUTS.includes(key)) return { field: `target.inputs.${key}`, message: `the input ${key} is set by shipclock (when the workflow declares it)` };
    if (!/^[A-Za-z_][A-Za-z0-9_-]{0,99}$/.test(key)) return { field: `target.inputs.${key}`, message: 'an input name starts with a letter or _ and holds letters, digits, _ and -' };
  }
  return null;
}

export const GITHUB_DEFAULT_API_URL = 'https://api.github.com';
export const GH_DEFAULT_POLL_INTERVAL_SECONDS = 15;
export const GH_DEFAULT_TIMEOUT_SECONDS = 1800;
const REQUEST_TIMEOUT_MS = 30_000;
/** GitHub stamps runs with its clock; allow ours to be this far off when matching by time. */
const CLOCK_SKEW_MS = 60_000;
/** Polls at most this often while the dispatched run is not listed yet. */
const SEARCH_INTERVAL_SECONDS = 3;
/** A rate limit with no wait named: try again after this long. */
const DEFAULT_RATE_LIMIT_WAIT_SECONDS = 60;

/**
 * How long after a dispatch GitHub may take to list the run it created. recover() that finds no
 * run of ours searches again until this has passed since the attempt began before it dispatches
 * (with return_run_details the run exists when the dispatch is answered; without it, GitHub lists
 * it within seconds). SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS overrides it (tests set it low).
 */
function runListLagMs(): number {
  const v = Number(process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS);
  return (Number.isFinite(v) && v >= 0 ? v : 15) * 1000;
}

type Action = 'deploy' | 'rollback';

interface GhRun {
  id: number | string;
  name?: string | null;
  display_title?: string;
  status?: string | null;
  conclusion?: string | null;
  html_url?: string;
  created_at?: string;
  event?: string;
  head_branch?: string | null;
  run_attempt?: number;
}

interface GhJob {
  id: number;
  name: string;
  status?: string;
  conclusion?: string | null;
  html_url?: string | null;
  steps?: { name: string; status?: string; conclusion?: string | null; number?: number }[];
}

/** An API answer that ends the step: becomes a StepResult (never thrown out of the provider). */
class Outcome extends Error {
  constructor(readonly result: StepResult) {
    super(result.kind === 'failed' || result.kind === 'retry' ? result.error : result.kind);
  }
}

function positive(v: unknown, def: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : def;
}

function settings(t: GithubActionsTarget) {
  return {
    pollSeconds: positive(t.poll_interval_seconds, GH_DEFAULT_POLL_INTERVAL_SECONDS),
    timeoutSeconds: positive(t.timeout_seconds, GH_DEFAULT_TIMEOUT_SECONDS),
  };
}

function repo(t: GithubActionsTarget): { owner: string; repo: string } {
  const [owner, name] = String(t.repository ?? '').split('/');
  if (!owner || !name) throw new Outcome({ kind: 'failed', error: 'the GitHub Actions target needs repository "owner/name"' });
  return { owner, repo: name };
}

/** The workflow as the API names it: a numeric id, or the file name. */
function workflowId(t: GithubActionsTarget): string | number {
  return /^\d+$/.test(String(t.workflow)) ? Number(t.workflow) : String(t.workflow);
}

/** Seconds to wait for a rate limit: `retry-after`, else until `x-ratelimit-reset` when none remain. */
export function githubRateLimitWait(headers: Record<string, string | number | undefined>, now = Date.now()): number | undefined {
  const h = (k: string) => (headers[k] === undefined ? undefined : String(headers[k]));
  const after = Number(h('retry-after'));
  if (h('retry-after') !== undefined && Number.isFinite(after) && after >= 0) return Math.max(1, Math.ceil(after));
  const reset = Number(h('x-ratelimit-reset'));
  if (h('x-ratelimit-remaining') === '0' && Number.isFinite(reset) && reset > 0) return Math.max(1, Math.ceil(reset - now / 1000));
  return undefined;
}

interface Api {
  ctx: ProviderContext<GithubActionsTarget>;
  /** Loaded on first use: a process with no GitHub target never loads Octokit. */
  octokit: Promise<Octokit>;
  secrets: string[];
  /** What goes into a retry/failed result (the ref so far). */
  ref: ProviderRef | null;
}

let lib: Promise<typeof import('@octokit/core')> | undefined;

function api(ctx: ProviderContext<GithubActionsTarget>, ref: ProviderRef | null = ctx.ref): Api {
  const c = ctx.credentials;
  if (c?.provider !== 'github' || !c.token) {
    throw new Outcome({ kind: 'failed', error: 'the GitHub Actions target needs a GitHub credential (provider "github")' });
  }
  const silent = () => {};
  const octokit = (lib ??= import('@octokit/core')).then(({ Octokit }) => new Octokit({
    auth: c.token,
    baseUrl: (c.api_url || GITHUB_DEFAULT_API_URL).replace(/\/+$/, ''),
    userAgent: 'shipclock',
    // Octokit's own logging stays off: everything worth saying goes through ctx.log, redacted.
    log: { debug: silent, info: silent, warn: silent, error: silent },
  }));
  return { ctx, octokit, secrets: secretsOf(c), ref };
}

/**
 * One API call. 2xx → the response; anything else → an Outcome: rate limits, 5xx and network
 * errors are `retry`; 401, 404, 422 and other 4xx `failed`, with `what` saying what was meant.
 */
async function call<T = any>(a: Api, route: string, params: Record<string, unknown>, what: string): Promise<{ status: number; data: T }> {
  const ref = a.ref ? { ref: a.ref } : {};
  const say = (m: string) => redact(m, a.secrets);
  try {
    const res = await (await a.octokit).request(route, {
      ...params,
      headers: { 'x-github-api-version': '2022-11-28' },
      request: { signal: AbortSignal.any([a.ctx.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) },
    });
    return { status: res.status, data: res.data as T };
  } catch (err) {
    const e = err as Error & { status?: number; response?: { headers: Record<string, string>; data?: any }; cause?: any };
    if (!e.response) {
      const detail = a.ctx.signal.aborted ? 'interrupted (shutting down or step timeout)'
        : e.name === 'AbortError' || e.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`
          : `${e.cause?.code ? `${e.cause.code}: ` : ''}${e.message}`;
      throw new Outcome({ kind: 'retry', error: say(`cannot reach the GitHub API: ${detail}`), ...ref });
    }
    const s = e.status ?? 0;
    const headers = e.response.headers ?? {};
    const body = e.response.data;
    const message = typeof body === 'object' && body && typeof body.message === 'string' ? body.message : typeof body === 'string' ? body.slice(0, 200) : '';
    const details = typeof body === 'object' && Array.isArray(body?.errors) ? body.errors.map((x: any) => (typeof x === 'string' ? x : x?.message ?? JSON.stringify(x))).join('; ') : '';
    const detail = [message, details].filter(Boolean).join(': ');
    const with_ = (m: string) => say(detail ? `${m} — ${detail}` : m);
    const limited = s === 429 || (s === 403 && (headers['retry-after'] !== undefined || headers['x-ratelimit-remaining'] === '0' || /rate limit/i.test(message)));
    if (limited) {
      const afterSeconds = githubRateLimitWait(headers) ?? DEFAULT_RATE_LIMIT_WAIT_SECONDS;
      throw new Outcome({ kind: 'retry', error: with_(`GitHub rate limit exceeded (${s}); trying again in ${afterSeconds} s`), afterSeconds, ...ref });
    }
    if (s >= 500) throw new Outcome({ kind: 'retry', error: with_(`GitHub server error (${s})`), ...ref });
    if (s === 401) throw new Outcome({ kind: 'failed', error: with_('GitHub rejected the token (401): it is invalid, expired or revoked'), ...ref });
    if (s === 403) throw new Outcome({ kind: 'failed', error: with_(`the GitHub token is not allowed to do this (403) for ${what}: it needs actions: write and contents: read`), ...ref });
    if (s === 404) throw new Outcome({ kind: 'failed', error: with_(`${what} was not found (404), or the token cannot see it`), ...ref });
    if (s === 422) throw new Outcome({ kind: 'failed', error: with_(`GitHub refused ${what} (422)`), ...ref });
    throw new Outcome({ kind: 'failed', error: with_(`GitHub refused ${what} (${s})`), ...ref });
  }
}

// ---------------------------------------------------------------------------------------------
// The workflow file
// ---------------------------------------------------------------------------------------------

export interface WorkflowInfo {
  id: number | string;
  path: string;
  /** Declared workflow_dispatch inputs. */
  inputs: Set<string>;
  /** Whether a run shows our marker in its display_title (declares shipclock_id, run-name shows it). */
  markerInTitle: boolean;
  hasDispatch: boolean;
}

/** Parses a workflow file: its workflow_dispatch inputs and whether run-name shows shipclock_id. */
export function parseWorkflow(text: string): Omit<WorkflowInfo, 'id' | 'path'> {
  const doc = parseYaml(text) as Record<string, any> | null;
  if (!doc || typeof doc !== 'object') return { inputs: new Set(), markerInTitle: false, hasDispatch: false };
  // YAML 1.1 readers turn `on` into true; `yaml` reads 1.2 (a string key), but accept both.
  const on = doc.on ?? doc[true as unknown as string];
  let dispatch: unknown;
  let hasDispatch = false;
  if (typeof on === 'string') hasDispatch = on === 'workflow_dispatch';
  else if (Array.isArray(on)) hasDispatch = on.includes('workflow_dispatch');
  else if (on && typeof on === 'object' && 'workflow_dispatch' in on) {
    hasDispatch = true;
    dispatch = (on as Record<string, unknown>).workflow_dispatch;
  }
  const declared = dispatch && typeof dispatch === 'object' ? (dispatch as { inputs?: unknown }).inputs : undefined;
  const inputs = new Set(declared && typeof declared === 'object' ? Object.keys(declared) : []);
  const runName = typeof doc['run-name'] === 'string' ? doc['run-name'] : '';
  const markerInTitle = inputs.has('shipclock_id') && /\$\{\{[^}]*\b(?:github\.event\.)?inputs\.shipclock_id\b[^}]*\}\}/.test(runName);
  return { inputs, markerInTitle, hasDispatch };
}

async function readWorkflow(a: Api): Promise<WorkflowInfo> {
  const t = a.ctx.target;
  const { owner, repo: name } = repo(t);
  const wf = await call<{ id: number; path: string }>(a, 'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}',
    { owner, repo: name, workflow_id: workflowId(t) }, `workflow ${t.workflow} of ${t.repository}`);
  const file = await call<{ type?: string; content?: string; encoding?: string }>(a, 'GET /repos/{owner}/{repo}/contents/{path}',
    { owner, repo: name, path: wf.data.path, ref: t.ref }, `${wf.data.path} at ${t.ref} in ${t.repository}`);
  if (file.data.type !== 'file' || typeof file.data.content !== 'string') {
    throw new Outcome({ kind: 'failed', error: `${wf.data.path} at ${t.ref} in ${t.repository} is not a file` });
  }
  let parsed: ReturnType<typeof parseWorkflow>;
  try {
    parsed = parseWorkflow(Buffer.from(file.data.content, file.data.encoding === 'base64' ? 'base64' : 'utf8').toString('utf8'));
  } catch (err) {
    throw new Outcome({ kind: 'failed', error: `${wf.data.path} at ${t.ref} is not valid YAML: ${(err as Error).message.split('\n')[0]}` });
  }
  if (!parsed.hasDispatch) {
    throw new Outcome({ kind: 'failed', error: `${wf.data.path} at ${t.ref} has no workflow_dispatch trigger, so it cannot be dispatched` });
  }
  return { id: wf.data.id, path: wf.data.path, ...parsed };
}

/** The marker a run of this deployment shows (shipclock_id): the deployment id, suffixed for a rollback. */
function markerFor(ctx: ProviderContext<GithubActionsTarget>, action: Action): string {
  if (action !== 'rollback') return ctx.deployment.id;
  // A rollback asked for again by hand (seq 2, 3, ...) is a new run with its own marker.
  const seq = rollbackInfo(ctx)?.seq ?? 1;
  return `${ctx.deployment.id}-rollback${seq > 1 ? `-${seq}` : ''}`;
}

/**
 * What the scheduler's rollback machinery tells a rollback call (`ctx.rollback`, issue 15's
 * rollback contract): which rollback this is, whether an earlier call of it may have acted, and the
 * refs. Read structurally so this provider works with and without that field.
 */
interface RollbackCall { seq?: number; recovering?: boolean; deploymentRef?: ProviderRef | null; rollbackRef?: ProviderRef | null }
function rollbackInfo(ctx: ProviderContext<GithubActionsTarget>): RollbackCall | undefined {
  return (ctx as { rollback?: RollbackCall }).rollback;
}

/** Ref keys of the rollback contract: the deployment changed the target; no rollback can be made. */
const CHANGED = 'changed';
const NOT_POSSIBLE = 'rollback_not_possible';

function noActionInput(path: string): StepResult {
  return { kind: 'failed', error: `${path} declares no \`action\` input (on.workflow_dispatch.inputs), so shipclock cannot ask it to roll back`, ref: { [NOT_POSSIBLE]: true } };
}

function inputsFor(ctx: ProviderContext<GithubActionsTarget>, wf: WorkflowInfo, action: Action): Record<string, string> {
  const t = ctx.target;
  const own = t.inputs ?? {};
  const undeclared = Object.keys(own).filter((k) => !wf.inputs.has(k));
  if (undeclared.length) {
    throw new Outcome({ kind: 'failed', error: `${wf.path} does not declare the input${undeclared.length > 1 ? 's' : ''} ${undeclared.join(', ')} (on.workflow_dispatch.inputs), so GitHub would refuse the dispatch` });
  }
  const ours: Record<string, string> = {
    deployment_id: ctx.deployment.id,
    run_at: ctx.deployment.runAt.toISOString(),
    action,
    shipclock_id: markerFor(ctx, action),
  };
  const out: Record<string, string> = { ...own };
  for (const [k, v] of Object.entries(ours)) if (wf.inputs.has(k)) out[k] = v;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Dispatch, find, follow
// ---------------------------------------------------------------------------------------------

function runUrl(t: GithubActionsTarget, c: ProviderContext<GithubActionsTarget>['credentials'], runId: string): string {
  const apiUrl = c?.provider === 'github' && c.api_url ? c.api_url : GITHUB_DEFAULT_API_URL;
  // api.github.com → github.com; GHES https://host/api/v3 → https://host.
  let web = 'https://github.com';
  if (apiUrl !== GITHUB_DEFAULT_API_URL) {
    try {
      const u = new URL(apiUrl);
      web = `https://${u.host}`;
    } catch { /* keep github.com */ }
  }
  return `${web}/${t.repository}/actions/runs/${runId}`;
}

function deadlineOf(ctx: ProviderContext<GithubActionsTarget>, ref: ProviderRef | null): number {
  const { timeoutSeconds } = settings(ctx.target);
  // A rollback has its own clock, from its dispatch.
  const from = ref?.action === 'rollback' && typeof ref.dispatched_at === 'string' ? Date.parse(ref.dispatched_at) : ctx.deployment.startedAt.getTime();
  return from + timeoutSeconds * 1000;
}

function timedOut(ctx: ProviderContext<GithubActionsTarget>, ref: ProviderRef | null): StepResult | null {
  if (Date.now() <= deadlineOf(ctx, ref)) return null;
  const { timeoutSeconds } = settings(ctx.target);
  const what = ref?.action === 'rollback' ? 'rollback run' : 'run';
  return { kind: 'failed', error: `the GitHub Actions ${what} did not finish within ${timeoutSeconds} s`, ...(ref ? { ref } : {}) };
}

/**
 * Dispatches the workflow once. After GitHub accepted it nothing here returns `retry` (that would
 * dispatch again): a run not found yet, or an error finding it, is `follow` with the dispatch in
 * the ref, and the next poll looks for the run.
 */
async function dispatch(ctx: ProviderContext<GithubActionsTarget>, action: Action, base: ProviderRef = {}, known?: WorkflowInfo): Promise<StepResult> {
  const t = ctx.target;
  const { owner, repo: name } = repo(t);
  const a = api(ctx, null);
  const wf = known ?? await readWorkflow(a);
  if (action === 'rollback' && !wf.inputs.has('action')) {
    return noActionInput(wf.path);
  }
  const inputs = inputsFor(ctx, wf, action);
  const dispatchedAt = new Date();
  const what = `the dispatch of ${wf.path} on ${t.ref} in ${t.repository}`;
  const route = 'POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches';
  const params = { owner, repo: name, workflow_id: wf.id, ref: t.ref, inputs };
  let res: { status: number; data: any };
  try {
    res = await call(a, route, { ...params, return_run_details: true }, what);
  } catch (err) {
    // A server older than return_run_details (GHES) may refuse the member: ask again without it.
    if (err instanceof Outcome && err.result.kind === 'failed' && /\(422\)/.test(err.result.error) && /return_run_details/.test(err.result.error)) {
      res = await call(a, route, params, what);
    } else if (err instanceof Outcome && err.result.kind === 'retry' && /cannot reach|server error/.test(err.result.error)) {
      // The request may have reached GitHub (a lost answer, a 502 from a proxy after GitHub took it):
      // the next attempt looks for the run before dispatching. A rate limit dispatched nothing.
      throw new Outcome({ ...err.result, ref: { ...base, action, marker: markerFor(ctx, action), dispatched_at: dispatchedAt.toISOString(), dispatch_uncertain: true, ...(action === 'deploy' ? { [CHANGED]: true } : {}) } } as StepResult);
    } else throw err;
  }
  const ref: ProviderRef = {
    ...base,
    // The workflow was dispatched: whatever it did may need rolling back.
    ...(action === 'deploy' ? { [CHANGED]: true } : {}),
    action,
    workflow_id: String(wf.id),
    workflow_path: wf.path,
    marker: markerFor(ctx, action),
    marker_in_title: wf.markerInTitle,
    dispatched_at: dispatchedAt.toISOString(),
    run_id: null,
    console_url: `${runUrl(t, ctx.credentials, '').replace(/\/runs\/$/, '')}`,
    status: null,
  };
  const shown = Object.entries(inputs).filter(([k]) => GITHUB_RESERVED_INPUTS.includes(k)).map(([k]) => k);
  ctx.log(`dispatched ${wf.path} on ${t.ref} in ${t.repository}${action === 'rollback' ? ' (action: rollback)' : ''}${shown.length ? ` with ${shown.join(', ')}` : ''}`);
  const runId = res.status === 200 && res.data && (res.data.workflow_run_id ?? res.data.id);
  if (runId !== undefined && runId !== null && runId !== false) {
    const found: ProviderRef = { ...ref, run_id: String(runId), console_url: typeof res.data.html_url === 'string' ? res.data.html_url : runUrl(t, ctx.credentials, String(runId)) };
    ctx.log(`GitHub Actions run ${found.run_id} created: ${found.console_url}`);
    return afterDispatch(() => followRun(ctx, found, { justCreated: true }), found, `GitHub Actions run ${found.run_id} started: ${found.console_url}`);
  }
  // 204: find the run it created.
  return afterDispatch(() => searchAndFollow(ctx, ref, { justCreated: true }), ref, `dispatched ${wf.path}; looking for its run`);
}

/** Once GitHub accepted a dispatch, a transient error is a `follow` (the next poll goes on), never a retry of the dispatch. */
async function afterDispatch(body: () => Promise<StepResult>, ref: ProviderRef, message: string): Promise<StepResult> {
  try {
    return await body();
  } catch (err) {
    if (!(err instanceof Outcome) || err.result.kind !== 'retry') throw err;
    return { kind: 'follow', ref, afterSeconds: err.result.afterSeconds ?? SEARCH_INTERVAL_SECONDS, message: `${message} (${err.result.error})` };
  }
}

/** Runs of the workflow that may be the one we dispatched, oldest first. */
async function candidates(ctx: ProviderContext<GithubActionsTarget>, ref: ProviderRef, since: number): Promise<GhRun[]> {
  const t = ctx.target;
  const { owner, repo: name } = repo(t);
  const a = api(ctx, ref);
  const created = new Date(since - CLOCK_SKEW_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const out = await call<{ workflow_runs?: GhRun[] }>(a, 'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', {
    owner, repo: name, workflow_id: ref.workflow_id ? Number(ref.workflow_id) || String(ref.workflow_id) : workflowId(t),
    // head_branch is the short name, also when the dispatch named refs/heads/… or refs/tags/….
    event: 'workflow_dispatch', branch: t.ref.replace(/^refs\/(?:heads|tags)\//, ''), created: `>=${created}`, per_page: 100,
  }, `the runs of workflow ${t.workflow} in ${t.repository}`);
  const at = (r: GhRun) => Date.parse(r.created_at ?? '');
  return (out.data.workflow_runs ?? []).filter((r) => r.id !== undefined && Number.isFinite(at(r))).sort((x, y) => at(x) - at(y) || Number(x.id) - Number(y.id));
}

/**
 * The run our dispatch created: by marker when the run shows it; otherwise the oldest run created
 * since the dispatch (less the skew allowance), which another dispatch at the same moment could
 * also be (the log says so).
 */
function pick(runs: GhRun[], ref: ProviderRef, since: number, exclude: Set<string>): { run: GhRun; byMarker: boolean } | undefined {
  const marker = String(ref.marker ?? '');
  if (ref.marker_in_title) {
    // The rollback marker contains the deploy marker: compare whole words.
    const re = new RegExp(`(^|[^A-Za-z0-9-])${marker.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9-])`);
    const run = runs.find((r) => re.test(r.display_title ?? ''));
    return run && { run, byMarker: true };
  }
  // GitHub stamps whole seconds. The first run at/after the dispatch; failing that, the last one
  // within the skew allowance before it (our clock ahead of GitHub's).
  const from = Math.floor(since / 1000) * 1000;
  const open = runs.filter((r) => !exclude.has(String(r.id)));
  const run = open.find((r) => Date.parse(r.created_at!) >= from)
    ?? open.filter((r) => Date.parse(r.created_at!) >= from - CLOCK_SKEW_MS).at(-1);
  return run && { run, byMarker: false };
}

async function searchAndFollow(ctx: ProviderContext<GithubActionsTarget>, ref: ProviderRef, opts: { justCreated?: boolean } = {}): Promise<StepResult> {
  const since = Date.parse(String(ref.dispatched_at));
  const runs = await candidates(ctx, ref, since);
  const exclude = new Set<string>(typeof ref.deploy_run_id === 'string' ? [ref.deploy_run_id] : []);
  const found = pick(runs, ref, since, exclude);
  if (!found) {
    const late = opts.justCreated ? null : timedOut(ctx, ref);
    if (late) return { ...late, error: `${(late as { error: string }).error}; no run of the dispatch was found` } as StepResult;
    return { kind: 'follow', ref, afterSeconds: Math.min(SEARCH_INTERVAL_SECONDS, settings(ctx.target).pollSeconds) };
  }
  const runId = String(found.run.id);
  const next: ProviderRef = { ...ref, run_id: runId, console_url: found.run.html_url ?? runUrl(ctx.target, ctx.credentials, runId) };
  ctx.log(`found GitHub Actions run ${runId}${found.byMarker ? ` by its marker ${ref.marker}` : ' by time (the workflow\'s run-name does not show inputs.shipclock_id)'}: ${next.console_url}`);
  return evaluate(ctx, found.run, next, opts);
}

async function followRun(ctx: ProviderContext<GithubActionsTarget>, ref: ProviderRef, opts: { justCreated?: boolean } = {}): Promise<StepResult> {
  const t = ctx.target;
  const { owner, repo: name } = repo(t);
  const a = api(ctx, ref);
  const run = await call<GhRun>(a, 'GET /repos/{owner}/{repo}/actions/runs/{run_id}', { owner, repo: name, run_id: Number(ref.run_id) },
    `run ${ref.run_id} of ${t.repository}`);
  return evaluate(ctx, run.data, ref, opts);
}

/** The failing job (and its failing step), for a failed run's error. */
async function failingJob(ctx: ProviderContext<GithubActionsTarget>, ref: ProviderRef): Promise<string | undefined> {
  const t = ctx.target;
  const { owner, repo: name } = repo(t);
  const a = api(ctx, ref);
  try {
    const out = await call<{ jobs?: GhJob[] }>(a, 'GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs',
      { owner, repo: name, run_id: Number(ref.run_id), filter: 'latest', per_page: 100 }, `the jobs of run ${ref.run_id}`);
    const bad = new Set(['failure', 'timed_out', 'cancelled', 'startup_failure']);
    const job = (out.data.jobs ?? []).find((j) => bad.has(String(j.conclusion)));
    if (!job) return undefined;
    const step = job.steps?.find((s) => bad.has(String(s.conclusion)));
    return `job "${job.name}"${step ? ` failed at step "${step.name}"` : ''}${job.conclusion !== 'failure' ? ` (${job.conclusion})` : ''}`;
  } catch (err) {
    if (err instanceof Outcome) return undefined; // the run's conclusion is enough to end it
    throw err;
  }
}

async function evaluate(ctx: ProviderContext<GithubActionsTarget>, run: GhRun, ref: ProviderRef, opts: { justCreated?: boolean } = {}): Promise<StepResult> {
  const status = String(run.status ?? 'queued');
  const what = ref.action === 'rollback' ? 'rollback run' : 'run';
  const next: ProviderRef = { ...ref, status, ...(run.html_url ? { console_url: run.html_url } : {}) };
  const changed = ref.status !== status;
  const line = `GitHub Actions ${what} ${ref.run_id}: ${status}${run.conclusion ? ` (${run.conclusion})` : ''}`;
  if (changed) ctx.log(line);
  if (status === 'completed') {
    const conclusion = String(run.conclusion ?? 'unknown');
    next.conclusion = conclusion;
    if (conclusion === 'success') return { kind: 'succeeded', ref: next, message: `GitHub Actions ${what} ${ref.run_id} succeeded: ${next.console_url}` };
    const job = conclusion === 'failure' || conclusion === 'timed_out' || conclusion === 'cancelled' || conclusion === 'startup_failure'
      ? await failingJob(ctx, next) : undefined;
    const verb = conclusion === 'failure' ? 'failed' : conclusion === 'cancelled' ? 'was cancelled' : conclusion === 'timed_out' ? 'timed out' : `ended ${conclusion}`;
    return { kind: 'failed', ref: next, error: `GitHub Actions ${what} ${ref.run_id} ${verb}${job ? `: ${job}` : ''} — ${next.console_url}` };
  }
  const late = opts.justCreated ? null : timedOut(ctx, next);
  if (late) return late;
  const first = opts.justCreated;
  return {
    kind: 'follow', ref: next, afterSeconds: settings(ctx.target).pollSeconds,
    ...(first ? { message: `GitHub Actions ${what} ${ref.run_id} started: ${next.console_url}` } : changed ? { message: line } : {}),
  };
}

/** Follows what `ref` names: a run, or a dispatch whose run is still to be found. */
async function resume(ctx: ProviderContext<GithubActionsTarget>, ref: ProviderRef): Promise<StepResult> {
  if (typeof ref.run_id === 'string' && ref.run_id) return followRun(ctx, ref);
  return searchAndFollow(ctx, ref);
}

/**
 * After a crash (or an uncertain dispatch): the run this deployment's `action` dispatch created, if
 * any, is followed; otherwise, once GitHub has had time to list it, the workflow is dispatched.
 */
async function recoverAction(ctx: ProviderContext<GithubActionsTarget>, action: Action, since: number, base: ProviderRef = {}): Promise<StepResult> {
  try {
    return await searchThenDispatch(ctx, action, since, base);
  } catch (err) {
    // Could not look (rate limit, 5xx): whatever retries this must search again, not dispatch blindly.
    if (!(err instanceof Outcome) || err.result.kind !== 'retry' || err.result.ref) throw err;
    throw new Outcome({ ...err.result, ref: { ...base, action, marker: markerFor(ctx, action), dispatched_at: new Date(since).toISOString(), dispatch_uncertain: true } });
  }
}

async function searchThenDispatch(ctx: ProviderContext<GithubActionsTarget>, action: Action, since: number, base: ProviderRef): Promise<StepResult> {
  const a = api(ctx, null);
  const wf = await readWorkflow(a);
  const probe: ProviderRef = { ...base, action, workflow_id: String(wf.id), workflow_path: wf.path, marker: markerFor(ctx, action), marker_in_title: wf.markerInTitle, dispatched_at: new Date(since).toISOString(), run_id: null, status: null };
  const exclude = new Set<string>(typeof base.deploy_run_id === 'string' ? [base.deploy_run_id] : []);
  const lag = runListLagMs();
  for (;;) {
    const found = pick(await candidates(ctx, probe, since), probe, since, exclude);
    if (found) {
      const runId = String(found.run.id);
      ctx.log(`found GitHub Actions run ${runId} from the interrupted ${action === 'rollback' ? 'rollback' : 'start'}${found.byMarker ? ` by its marker ${probe.marker}` : ' by time'}; following it`);
      return evaluate(ctx, found.run, { ...probe, ...(action === 'deploy' ? { [CHANGED]: true } : {}), run_id: runId, console_url: found.run.html_url ?? runUrl(ctx.target, ctx.credentials, runId) }, { justCreated: true });
    }
    const wait = since + lag - Date.now();
    if (wait <= 0) break;
    await new Promise((r) => setTimeout(r, Math.min(wait, SEARCH_INTERVAL_SECONDS * 1000)));
    if (ctx.signal.aborted) throw new Outcome({ kind: 'retry', error: 'interrupted (shutting down or step timeout)' });
  }
  ctx.log(`no GitHub Actions run from the interrupted ${action === 'rollback' ? 'rollback' : 'start'}; dispatching`);
  return dispatchBeforeDeadline(ctx, action, base);
}

async function dispatchBeforeDeadline(ctx: ProviderContext<GithubActionsTarget>, action: Action, base: ProviderRef = {}): Promise<StepResult> {
  if (action === 'deploy') {
    const late = timedOut(ctx, null);
    if (late?.kind === 'failed') return { ...late, error: `${late.error}; the workflow was not dispatched` };
  }
  return dispatch(ctx, action, base);
}

async function run(ctx: ProviderContext<GithubActionsTarget>, body: () => Promise<StepResult>): Promise<StepResult> {
  try {
    repo(ctx.target);
    if (!ctx.target.workflow || !ctx.target.ref) return { kind: 'failed', error: 'the GitHub Actions target needs workflow and ref' };
    return await body();
  } catch (err) {
    if (!(err instanceof Outcome)) throw err;
    const r = err.result;
    // A run past its deadline fails even while the API cannot be reached.
    if (r.kind === 'retry' && ctx.ref && (ctx.ref.run_id || ctx.ref.dispatched_at) && !ctx.ref.dispatch_uncertain) return timedOut(ctx, ctx.ref) ?? r;
    return r;
  }
}

/** The deployment's own ref from a rollback ref (kept in it), or the ref itself. */
function deployRefOf(ref: ProviderRef | null): ProviderRef {
  if (!ref) return {};
  if (ref.action !== 'rollback') return ref;
  const { deploy_run_id, deploy_console_url } = ref;
  return { run_id: deploy_run_id ?? null, console_url: deploy_console_url ?? null };
}

export const githubActionsProvider: Provider<GithubActionsTarget> = {
  type: 'github_actions',
  cancellable: true,

  start(ctx) {
    return run(ctx, () => {
      const ref = ctx.ref;
      if (ref?.run_id || (ref?.dispatched_at && !ref.dispatch_uncertain)) return resume(ctx, ref);
      // A dispatch that may have reached GitHub: look for its run before dispatching again.
      if (ref?.dispatch_uncertain) return recoverAction(ctx, 'deploy', Date.parse(String(ref.dispatched_at)));
      return dispatchBeforeDeadline(ctx, 'deploy');
    });
  },

  poll(ctx) {
    return run(ctx, () => resume(ctx, ctx.ref ?? {}));
  },

  recover(ctx) {
    return run(ctx, () => {
      const ref = ctx.ref;
      if (ref?.run_id || (ref?.dispatched_at && !ref.dispatch_uncertain)) return resume(ctx, ref);
      return recoverAction(ctx, 'deploy', ref?.dispatched_at ? Date.parse(String(ref.dispatched_at)) : ctx.deployment.startedAt.getTime());
    });
  },

  /** Cancels the run (POST .../runs/{id}/cancel). A run already finished (409) or gone (404) needs nothing. */
  async cancel(ctx) {
    const t = ctx.target;
    const { owner, repo: name } = repo(t);
    try {
      let runId = typeof ctx.ref?.run_id === 'string' ? ctx.ref.run_id : undefined;
      if (!runId && ctx.ref?.dispatched_at) {
        const found = pick(await candidates(ctx, ctx.ref, Date.parse(String(ctx.ref.dispatched_at))), ctx.ref, Date.parse(String(ctx.ref.dispatched_at)), new Set());
        runId = found && String(found.run.id);
      }
      if (!runId) {
        ctx.log('no GitHub Actions run to cancel');
        return;
      }
      await call(api(ctx), 'POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', { owner, repo: name, run_id: Number(runId) }, `run ${runId} of ${t.repository}`);
      ctx.log(`GitHub Actions run ${runId} cancelled`);
    } catch (err) {
      if (!(err instanceof Outcome)) throw err;
      const r = err.result;
      if (r.kind === 'failed' && /\((404|409)\)/.test(r.error)) {
        ctx.log('the GitHub Actions run has already ended; nothing to cancel');
        return;
      }
      throw new Error(r.kind === 'failed' || r.kind === 'retry' ? r.error : 'cannot cancel the GitHub Actions run');
    }
  },

  /**
   * Dispatches the same workflow with `action: rollback` (when it declares an `action` input) and
   * follows that run. Handed back a rollback ref (after a crash), it follows that rollback; handed
   * the deployment's ref, it first looks for a rollback run of this deployment (its marker), so a
   * rollback interrupted before its ref was saved is not dispatched twice.
   */
  rollback(ctx) {
    return run(ctx, () => {
      const info = rollbackInfo(ctx);
      // This rollback's own ref, if an earlier call returned one (handed back in ctx.rollback, or as ctx.ref).
      const own = info?.rollbackRef ?? (ctx.ref?.action === 'rollback' ? ctx.ref : null);
      if (own?.run_id || (own?.dispatched_at && !own.dispatch_uncertain)) return resume(ctx, own);
      const deploy = info?.deploymentRef ?? deployRefOf(ctx.ref);
      const base: ProviderRef = { deploy_run_id: deploy.run_id ?? null, deploy_console_url: deploy.console_url ?? null };
      if (own?.dispatch_uncertain) return recoverAction(ctx, 'rollback', Date.parse(String(own.dispatched_at)), base);
      return rollbackOnce(ctx, base);
    });
  },

  pollRollback(ctx) {
    return run(ctx, () => resume(ctx, ctx.ref ?? {}));
  },
};

/**
 * A rollback from the deployment's ref: a rollback run already dispatched for this deployment
 * (found by marker) is followed; otherwise one is dispatched.
 */
async function rollbackOnce(ctx: ProviderContext<GithubActionsTarget>, base: ProviderRef): Promise<StepResult> {
  const a = api(ctx, null);
  const wf = await readWorkflow(a);
  if (!wf.inputs.has('action')) return noActionInput(wf.path);
  // Look before acting: by marker always (it names this rollback only); by time only when the
  // scheduler says an earlier call of this rollback may have dispatched (startedAt is then the
  // rollback's own start, so the deployment's run is older; it is excluded anyway).
  if (wf.markerInTitle || rollbackInfo(ctx)?.recovering) {
    const since = ctx.deployment.startedAt.getTime();
    const probe: ProviderRef = { ...base, action: 'rollback', workflow_id: String(wf.id), workflow_path: wf.path, marker: markerFor(ctx, 'rollback'), marker_in_title: wf.markerInTitle, dispatched_at: ctx.deployment.startedAt.toISOString(), run_id: null, status: null };
    const exclude = new Set<string>(typeof base.deploy_run_id === 'string' ? [base.deploy_run_id] : []);
    const found = pick(await candidates(ctx, probe, since), probe, since, exclude);
    if (found) {
      const runId = String(found.run.id);
      ctx.log(`found rollback run ${runId} ${found.byMarker ? `by its marker ${probe.marker}` : 'by time'}; following it`);
      return evaluate(ctx, found.run, { ...probe, dispatched_at: found.run.created_at ?? probe.dispatched_at, run_id: runId, console_url: found.run.html_url ?? runUrl(ctx.target, ctx.credentials, runId) }, { justCreated: true });
    }
  }
  return dispatch(ctx, 'rollback', base, wf);
}
