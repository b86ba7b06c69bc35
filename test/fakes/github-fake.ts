/**
 * A local GitHub REST API for the Actions endpoints shipclock uses, shaped like the published
 * OpenAPI description (test/fixtures/specs/github, checked in test/fakes.spec-check.test.ts):
 * `Authorization: token|Bearer <token>` required; bodies `workflow`, `workflow-run`,
 * `{total_count, workflow_runs}`, `{total_count, jobs}`, `content-file` (base64 YAML); errors
 * `{message, documentation_url, status}`; the `x-ratelimit-*` headers on every answer.
 *
 * - POST .../dispatches checks `ref` and the inputs against the workflow file's
 *   `on.workflow_dispatch.inputs` (undeclared → 422, as GitHub does) and creates a run whose
 *   `display_title` is the file's `run-name` with `${{ inputs.x }}` filled in. It answers 200 with
 *   the run id when asked `return_run_details`, 204 otherwise; `legacyDispatch` makes it an older
 *   server (204 always), `rejectRunDetails` one that refuses the member (422).
 * - A run advances one status per GET of it (queued → in_progress → completed after `runPolls`
 *   GETs): success, or failure with job "deploy" failing at a step named by `failNextRun()`.
 * - `injectErrors` answers the next requests with a rate limit (403 with x-ratelimit-remaining 0
 *   and x-ratelimit-reset, 403/429 with retry-after), 401, 403, 404 or 5xx.
 * Every request is logged in `requests` ("dispatched once" assertions), every answer in `responses`.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseWorkflow } from '../../src/providers/github-actions.ts';

type Json = Record<string, any>;

export interface GhRecordedResponse {
  method: string;
  /** The OpenAPI path template the request matched, e.g. /repos/{owner}/{repo}/actions/runs/{run_id}. */
  route: string;
  status: number;
  headers: Record<string, string>;
  body: Json | undefined;
}

export type GhInjected =
  | { kind: 'rate_limit'; resetInSeconds?: number; path?: RegExp }
  | { kind: 'secondary_rate_limit'; status: 403 | 429; retryAfter: number; path?: RegExp }
  | { kind: 'status'; status: 401 | 403 | 404 | 422 | 500 | 502 | 503; path?: RegExp };

export interface GithubFake {
  /** The API root, for a credential's api_url. */
  url: string;
  token: string;
  requests: { method: string; path: string; body: Json | undefined; headers: http.IncomingHttpHeaders; at: number }[];
  responses: GhRecordedResponse[];
  /** How many dispatches GitHub accepted (in all, or of one repository). */
  dispatches(repository?: string): number;
  /** Adds a repository with a workflow file; returns the workflow id. */
  addWorkflow(repository: string, file: string, yaml: string, opts?: { ref?: string }): number;
  /** The next run ends in failure: job "deploy" fails at a step with this name. */
  failNextRun(step?: string): void;
  /** How many GETs of a run it takes to complete (default 2). */
  runPolls: number;
  /** Answers dispatches 204 even when asked return_run_details (a server before that change). */
  legacyDispatch: boolean;
  /** Refuses a dispatch body with return_run_details (422), as a server that validates members would. */
  rejectRunDetails: boolean;
  /** The next `n` requests (matching `path`, if given) answer with this error instead. */
  injectErrors(err: GhInjected, n?: number): void;
  /** Someone else dispatches the workflow (the UI, another tool). */
  externalDispatch(repository: string, workflowId: number, ref: string, inputs?: Record<string, string>, createdAt?: Date): number;
  run(id: number | string): Json | undefined;
  /** Runs of a repository, oldest first. */
  runs(repository: string): Json[];
  close(): Promise<void>;
}

const iso = (ms = Date.now()) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const DOCS = 'https://docs.github.com/rest';

interface FakeWorkflow {
  id: number;
  name: string;
  path: string;
  yaml: string;
  ref: string;
}

interface FakeRun {
  json: Json;
  repository: string;
  inputs: Record<string, string>;
  gets: number;
  failStep?: string;
  jobs: Json[];
}

function user(login: string, id: number): Json {
  const u = `https://api.github.com/users/${login}`;
  return {
    login, id, node_id: `MDQ6VXNlcj${id}`, avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`, gravatar_id: '',
    url: u, html_url: `https://github.com/${login}`, followers_url: `${u}/followers`, following_url: `${u}/following{/other_user}`,
    gists_url: `${u}/gists{/gist_id}`, starred_url: `${u}/starred{/owner}{/repo}`, subscriptions_url: `${u}/subscriptions`,
    organizations_url: `${u}/orgs`, repos_url: `${u}/repos`, events_url: `${u}/events{/privacy}`,
    received_events_url: `${u}/received_events`, type: 'User', site_admin: false,
  };
}

function minimalRepository(fullName: string, id: number): Json {
  const [owner, name] = fullName.split('/');
  const u = `https://api.github.com/repos/${fullName}`;
  const urls: Json = {};
  for (const [k, suffix] of Object.entries({
    archive_url: '/{archive_format}{/ref}', assignees_url: '/assignees{/user}', blobs_url: '/git/blobs{/sha}', branches_url: '/branches{/branch}',
    collaborators_url: '/collaborators{/collaborator}', comments_url: '/comments{/number}', commits_url: '/commits{/sha}',
    compare_url: '/compare/{base}...{head}', contents_url: '/contents/{+path}', contributors_url: '/contributors', deployments_url: '/deployments',
    downloads_url: '/downloads', events_url: '/events', forks_url: '/forks', git_commits_url: '/git/commits{/sha}', git_refs_url: '/git/refs{/sha}',
    git_tags_url: '/git/tags{/sha}', hooks_url: '/hooks', issue_comment_url: '/issues/comments{/number}', issue_events_url: '/issues/events{/number}',
    issues_url: '/issues{/number}', keys_url: '/keys{/key_id}', labels_url: '/labels{/name}', languages_url: '/languages', merges_url: '/merges',
    milestones_url: '/milestones{/number}', notifications_url: '/notifications{?since,all,participating}', pulls_url: '/pulls{/number}',
    releases_url: '/releases{/id}', stargazers_url: '/stargazers', statuses_url: '/statuses/{sha}', subscribers_url: '/subscribers',
    subscription_url: '/subscription', tags_url: '/tags', teams_url: '/teams', trees_url: '/git/trees{/sha}',
  })) urls[k] = u + suffix;
  return {
    id, node_id: `MDEwOlJlcG9zaXRvcnk${id}`, name, full_name: fullName, owner: user(owner, 1000 + id), private: true,
    html_url: `https://github.com/${fullName}`, description: null, fork: false, url: u, ...urls,
  };
}

export async function startGithubFake(opts: { token?: string } = {}): Promise<GithubFake> {
  const repos = new Map<string, { id: number; workflows: FakeWorkflow[] }>();
  const runs: FakeRun[] = [];
  const requests: GithubFake['requests'] = [];
  const responses: GhRecordedResponse[] = [];
  let injected: { err: GhInjected; n: number }[] = [];
  let failNext: string | undefined;
  let nextId = 1;
  let nextRunId = 9_000_000_001;
  let remaining = 5000;

  function createRun(repository: string, wf: FakeWorkflow, ref: string, inputs: Record<string, string>): FakeRun {
    const r = repos.get(repository)!;
    const id = nextRunId++;
    const now = iso();
    const api = `https://api.github.com/repos/${repository}/actions/runs/${id}`;
    const runName = /^run-name:\s*(.+)$/m.exec(wf.yaml)?.[1]?.trim().replace(/^["']|["']$/g, '');
    const title = runName
      ? runName.replace(/\$\{\{\s*(?:github\.event\.)?inputs\.([A-Za-z0-9_-]+)\s*\}\}/g, (_m, k: string) => inputs[k] ?? '')
      : wf.name;
    const sha = randomUUID().replace(/-/g, '') + '00000000';
    const repo = minimalRepository(repository, r.id);
    const run: FakeRun = {
      repository, inputs, gets: 0, failStep: failNext, jobs: [],
      json: {
        id, name: wf.name, node_id: `WFR_${id}`, check_suite_id: id + 1, check_suite_node_id: `CS_${id}`, head_branch: ref, head_sha: sha,
        path: wf.path, display_title: title, run_number: runs.filter((x) => x.repository === repository).length + 1, run_attempt: 1,
        event: 'workflow_dispatch', status: 'queued', conclusion: null, workflow_id: wf.id, url: api,
        html_url: `https://github.com/${repository}/actions/runs/${id}`, pull_requests: [], created_at: now, updated_at: now,
        actor: user('shipclock-bot', 77), triggering_actor: user('shipclock-bot', 77), run_started_at: now,
        jobs_url: `${api}/jobs`, logs_url: `${api}/logs`, check_suite_url: `https://api.github.com/repos/${repository}/check-suites/${id + 1}`,
        artifacts_url: `${api}/artifacts`, cancel_url: `${api}/cancel`, rerun_url: `${api}/rerun`, previous_attempt_url: null,
        workflow_url: `https://api.github.com/repos/${repository}/actions/workflows/${wf.id}`,
        head_commit: {
          id: sha, tree_id: sha.split('').reverse().join(''), message: 'Deploy', timestamp: now,
          author: { name: 'Mona', email: 'mona@example.com' }, committer: { name: 'Mona', email: 'mona@example.com' },
        },
        repository: repo, head_repository: repo,
      },
    };
    failNext = undefined;
    runs.push(run);
    return run;
  }

  function job(run: FakeRun, name: string, status: string, conclusion: string | null, steps: Json[]): Json {
    const id = nextRunId++;
    const r = run.json;
    const now = iso();
    return {
      id, run_id: r.id, run_url: r.url, run_attempt: 1, node_id: `CR_${id}`, head_sha: r.head_sha,
      url: `https://api.github.com/repos/${run.repository}/actions/jobs/${id}`, html_url: `https://github.com/${run.repository}/actions/runs/${r.id}/job/${id}`,
      status, conclusion, created_at: now, started_at: now, completed_at: status === 'completed' ? now : null, name, steps,
      check_run_url: `https://api.github.com/repos/${run.repository}/check-runs/${id}`, labels: ['ubuntu-latest'], runner_id: 1,
      runner_name: 'GitHub Actions 1', runner_group_id: 2, runner_group_name: 'GitHub Actions', workflow_name: r.name, head_branch: r.head_branch,
    };
  }

  function advance(run: FakeRun): void {
    const r = run.json;
    if (r.status === 'completed') return;
    run.gets += 1;
    r.updated_at = iso();
    if (run.gets < fake.runPolls) {
      r.status = 'in_progress';
      run.jobs = [job(run, 'deploy', 'in_progress', null, [{ name: 'Set up job', status: 'completed', conclusion: 'success', number: 1 }])];
      return;
    }
    r.status = 'completed';
    const step = (name: string, n: number, conclusion: string) => ({ name, status: 'completed', conclusion, number: n, started_at: r.updated_at, completed_at: r.updated_at });
    if (run.failStep) {
      r.conclusion = 'failure';
      run.jobs = [
        job(run, 'build', 'completed', 'success', [step('Set up job', 1, 'success'), step('Build', 2, 'success')]),
        job(run, 'deploy', 'completed', 'failure', [step('Set up job', 1, 'success'), step(run.failStep, 2, 'failure'), step('Notify', 3, 'skipped')]),
      ];
    } else {
      r.conclusion = 'success';
      run.jobs = [job(run, 'deploy', 'completed', 'success', [step('Set up job', 1, 'success'), step('Deploy', 2, 'success')])];
    }
  }

  function findWorkflow(repository: string, idOrFile: string): FakeWorkflow | undefined {
    return repos.get(repository)?.workflows.find((w) => String(w.id) === idOrFile || w.path === `.github/workflows/${idOrFile}`);
  }

  function workflowJson(repository: string, w: FakeWorkflow): Json {
    return {
      id: w.id, node_id: `W_${w.id}`, name: w.name, path: w.path, state: 'active', created_at: '2026-01-05T10:00:00Z', updated_at: '2026-01-05T10:00:00Z',
      url: `https://api.github.com/repos/${repository}/actions/workflows/${w.id}`, html_url: `https://github.com/${repository}/blob/${w.ref}/${w.path}`,
      badge_url: `https://github.com/${repository}/workflows/${encodeURIComponent(w.name)}/badge.svg`,
    };
  }

  const ROUTES: [RegExp, string][] = [
    [/^\/repos\/([^/]+)\/([^/]+)\/actions\/workflows\/([^/]+)\/dispatches$/, '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches'],
    [/^\/repos\/([^/]+)\/([^/]+)\/actions\/workflows\/([^/]+)\/runs$/, '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs'],
    [/^\/repos\/([^/]+)\/([^/]+)\/actions\/workflows\/([^/]+)$/, '/repos/{owner}/{repo}/actions/workflows/{workflow_id}'],
    [/^\/repos\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)\/jobs$/, '/repos/{owner}/{repo}/actions/runs/{run_id}/jobs'],
    [/^\/repos\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)\/cancel$/, '/repos/{owner}/{repo}/actions/runs/{run_id}/cancel'],
    [/^\/repos\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)$/, '/repos/{owner}/{repo}/actions/runs/{run_id}'],
    [/^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/, '/repos/{owner}/{repo}/contents/{path}'],
  ];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      let route = url.pathname;
      const reset = Math.floor(Date.now() / 1000) + 3600;
      remaining = Math.max(0, remaining - 1);
      const headers: Record<string, string> = {
        'content-type': 'application/json; charset=utf-8',
        'x-github-media-type': 'github.v3; format=json',
        'x-github-api-version-selected': '2022-11-28',
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': String(remaining),
        'x-ratelimit-reset': String(reset),
        'x-ratelimit-used': String(5000 - remaining),
        'x-ratelimit-resource': 'core',
        'x-github-request-id': randomUUID().toUpperCase().slice(0, 23),
      };
      const send = (status: number, body?: Json) => {
        responses.push({ method, route, status, headers: { ...headers }, body });
        if (body === undefined) delete headers['content-type'];
        res.writeHead(status, headers);
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      const error = (status: number, message: string, doc = DOCS) => send(status, { message, documentation_url: doc, status: String(status) });

      let body: Json | undefined;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        return error(400, 'Problems parsing JSON');
      }
      requests.push({ method, path: url.pathname + url.search, body, headers: req.headers, at: Date.now() });
      let m: RegExpExecArray | null = null;
      for (const [re, template] of ROUTES) {
        m = re.exec(url.pathname);
        if (m) {
          route = template;
          break;
        }
      }

      const auth = String(req.headers.authorization ?? '');
      if (auth !== `token ${fake.token}` && auth !== `Bearer ${fake.token}`) return error(401, 'Bad credentials');
      const inj = injected.find((x) => x.n > 0 && (!x.err.path || x.err.path.test(url.pathname)));
      if (inj) {
        inj.n -= 1;
        injected = injected.filter((x) => x.n > 0);
        const e = inj.err;
        if (e.kind === 'rate_limit') {
          headers['x-ratelimit-remaining'] = '0';
          headers['x-ratelimit-used'] = '5000';
          headers['x-ratelimit-reset'] = String(Math.floor(Date.now() / 1000) + (e.resetInSeconds ?? 60));
          return error(403, 'API rate limit exceeded for user ID 77. If you reach out to GitHub Support for help, please include the request ID.', 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api');
        }
        if (e.kind === 'secondary_rate_limit') {
          headers['retry-after'] = String(e.retryAfter);
          return error(e.status, 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits');
        }
        if (e.status === 401) return error(401, 'Bad credentials');
        if (e.status === 403) return error(403, 'Resource not accessible by personal access token');
        if (e.status === 404) return error(404, 'Not Found');
        if (e.status === 422) return error(422, "Required input 'version' not provided");
        return error(e.status, e.status === 500 ? 'Server Error' : 'Service Unavailable');
      }
      if (!m) return error(404, 'Not Found');
      const repository = `${decodeURIComponent(m[1])}/${decodeURIComponent(m[2])}`;
      const r = repos.get(repository);
      if (!r) return error(404, 'Not Found');
      const third = decodeURIComponent(m[3]);

      if (route.endsWith('/dispatches') && method === 'POST') {
        const wf = findWorkflow(repository, third);
        if (!wf) return error(404, 'Not Found');
        if (!body || typeof body.ref !== 'string') return error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.');
        if (fake.rejectRunDetails && 'return_run_details' in body) return error(422, 'Invalid request.\n\n"return_run_details" is not a permitted key.');
        if (body.ref !== wf.ref) return error(422, `No ref found for: ${body.ref}`);
        const declared = parseWorkflow(wf.yaml);
        if (!declared.hasDispatch) return error(422, "Workflow does not have 'workflow_dispatch' trigger");
        const inputs: Record<string, string> = body.inputs ?? {};
        const unexpected = Object.keys(inputs).filter((k) => !declared.inputs.has(k));
        if (unexpected.length) return error(422, `Unexpected inputs provided: ${JSON.stringify(unexpected)}`);
        const run = createRun(repository, wf, body.ref, inputs);
        if (body.return_run_details === true && !fake.legacyDispatch) {
          return send(200, { workflow_run_id: run.json.id, run_url: run.json.url, html_url: run.json.html_url });
        }
        return send(204);
      }
      if (route.endsWith('/runs') && route.includes('/workflows/') && method === 'GET') {
        const wf = findWorkflow(repository, third);
        if (!wf) return error(404, 'Not Found');
        const event = url.searchParams.get('event');
        const branch = url.searchParams.get('branch');
        const created = url.searchParams.get('created');
        const since = created?.startsWith('>=') ? Date.parse(created.slice(2)) : undefined;
        const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page') ?? 30)));
        const list = runs.filter((x) => x.repository === repository && x.json.workflow_id === wf.id
          && (!event || x.json.event === event) && (!branch || x.json.head_branch === branch)
          && (since === undefined || Date.parse(x.json.created_at) >= since)).reverse();
        return send(200, { total_count: list.length, workflow_runs: list.slice(0, perPage).map((x) => structuredClone(x.json)) });
      }
      if (route === '/repos/{owner}/{repo}/actions/workflows/{workflow_id}' && method === 'GET') {
        const wf = findWorkflow(repository, third);
        return wf ? send(200, workflowJson(repository, wf)) : error(404, 'Not Found');
      }
      if (route.startsWith('/repos/{owner}/{repo}/actions/runs/')) {
        const run = runs.find((x) => x.repository === repository && String(x.json.id) === third);
        if (!run) return error(404, 'Not Found');
        if (route.endsWith('/jobs') && method === 'GET') return send(200, { total_count: run.jobs.length, jobs: structuredClone(run.jobs) });
        if (route.endsWith('/cancel') && method === 'POST') {
          if (run.json.status === 'completed') return error(409, 'Cannot cancel a workflow run that is completed.');
          run.json.status = 'completed';
          run.json.conclusion = 'cancelled';
          run.jobs = [job(run, 'deploy', 'completed', 'cancelled', [])];
          return send(202, {});
        }
        if (method === 'GET') {
          advance(run);
          return send(200, structuredClone(run.json));
        }
      }
      if (route === '/repos/{owner}/{repo}/contents/{path}' && method === 'GET') {
        const wf = r.workflows.find((w) => w.path === third);
        const ref = url.searchParams.get('ref');
        if (!wf || (ref && ref !== wf.ref)) return error(404, 'Not Found');
        const content = Buffer.from(wf.yaml, 'utf8').toString('base64').replace(/(.{60})/g, '$1\n');
        const sha = Buffer.from(wf.path).toString('hex').padEnd(40, '0').slice(0, 40);
        const api = `https://api.github.com/repos/${repository}/contents/${wf.path}?ref=${wf.ref}`;
        const html = `https://github.com/${repository}/blob/${wf.ref}/${wf.path}`;
        const git = `https://api.github.com/repos/${repository}/git/blobs/${sha}`;
        return send(200, {
          type: 'file', encoding: 'base64', size: Buffer.byteLength(wf.yaml), name: wf.path.split('/').pop(), path: wf.path, content, sha,
          url: api, git_url: git, html_url: html, download_url: `https://raw.githubusercontent.com/${repository}/${wf.ref}/${wf.path}`,
          _links: { self: api, git, html },
        });
      }
      return error(404, 'Not Found');
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const fake: GithubFake = {
    url: `http://127.0.0.1:${port}`,
    token: opts.token ?? `ghp_${randomUUID().replace(/-/g, '')}`,
    requests,
    responses,
    runPolls: 2,
    legacyDispatch: false,
    rejectRunDetails: false,
    dispatches: (repository) => runs.filter((x) => x.json.actor.login === 'shipclock-bot' && (!repository || x.repository === repository)).length,
    addWorkflow(repository, file, yaml, o = {}) {
      const r = repos.get(repository) ?? { id: nextId++, workflows: [] };
      repos.set(repository, r);
      const id = 161_335_000 + nextId++;
      const name = /^name:\s*(.+)$/m.exec(yaml)?.[1]?.trim().replace(/^["']|["']$/g, '') ?? `.github/workflows/${file}`;
      r.workflows.push({ id, name, path: `.github/workflows/${file}`, yaml, ref: o.ref ?? 'main' });
      return id;
    },
    failNextRun(step = 'Push image') {
      failNext = step;
    },
    injectErrors(err, n = 1) {
      injected.push({ err, n });
    },
    externalDispatch(repository, workflowId, ref, inputs = {}, createdAt) {
      const wf = repos.get(repository)!.workflows.find((w) => w.id === workflowId)!;
      const run = createRun(repository, wf, ref, inputs);
      if (createdAt) run.json.created_at = iso(createdAt.getTime());
      run.json.actor = user('someone-else', 78);
      run.json.triggering_actor = user('someone-else', 78);
      return run.json.id;
    },
    run: (id) => structuredClone(runs.find((x) => String(x.json.id) === String(id))?.json),
    runs: (repository) => runs.filter((x) => x.repository === repository).map((x) => structuredClone(x.json)),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  return fake;
}

/** A workflow declaring every input shipclock sets and showing the marker in its run-name. */
export const FULL_WORKFLOW = `name: Deploy
run-name: "Deploy \${{ inputs.action }} \${{ inputs.shipclock_id }}"
on:
  workflow_dispatch:
    inputs:
      deployment_id: { type: string, required: false }
      run_at: { type: string, required: false }
      action:
        type: choice
        options: [deploy, rollback]
        default: deploy
      shipclock_id: { type: string, required: false }
      environment: { type: string, required: false, default: staging }
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - run: ./deploy.sh "\${{ inputs.action }}"
`;

/** A workflow with no inputs at all (no marker, no action): the run is found by return_run_details or by time. */
export const BARE_WORKFLOW = `name: Ship
on: [workflow_dispatch, push]
jobs:
  ship:
    runs-on: ubuntu-latest
    steps:
      - run: ./ship.sh
`;

/**
 * Everything the shared conformance suite needs for the GitHub Actions provider: a fake with one
 * repository and workflow, the target and credential that reach it, and one-line controls.
 */
export async function githubHarness() {
  const fake = await startGithubFake();
  const previousLag = process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS;
  // The fake lists a run the moment it is dispatched.
  process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS = '0';
  const repository = `acme/web-${randomUUID().slice(0, 8)}`;
  fake.addWorkflow(repository, 'deploy.yml', FULL_WORKFLOW);
  return {
    fake,
    target: { type: 'github_actions' as const, repository, workflow: 'deploy.yml', ref: 'main', inputs: { environment: 'production' }, poll_interval_seconds: 1, timeout_seconds: 60 },
    credentials: { provider: 'github' as const, token: fake.token, api_url: fake.url },
    failNext: (step = 'Push image') => fake.failNextRun(step),
    transientNext: () => fake.injectErrors({ kind: 'status', status: 503 }),
    permanentNext: () => fake.injectErrors({ kind: 'status', status: 403 }),
    neverFinish: () => { fake.runPolls = Number.MAX_SAFE_INTEGER; },
    triggers: () => fake.dispatches(),
    /** Rollback dispatches accepted (action: rollback), for the conformance suite's rollback section. */
    rollbacks: () => fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/dispatches') && r.body?.inputs?.action === 'rollback').length,
    /** The next run fails after the dispatch (which is the change a rollback undoes). */
    failAfterChangeNext: () => fake.failNextRun('Migrate database'),
    async close() {
      if (previousLag === undefined) delete process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS;
      else process.env.SHIPCLOCK_GITHUB_RUN_LIST_LAG_SECONDS = previousLag;
      await fake.close();
    },
  };
}
