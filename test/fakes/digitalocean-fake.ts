/**
 * A local DigitalOcean App Platform API for the deployment endpoints, shaped like the published
 * OpenAPI (../shared/specs/digitalocean): `Authorization: Bearer <token>` required, bodies
 * `{deployment}` / `{deployments, links, meta}`, errors `{id, message, request_id}`, and the
 * `ratelimit-limit` / `ratelimit-remaining` / `ratelimit-reset` headers on every answer
 * (`retry-after` on a burst-limit 429).
 *
 * A deployment advances one phase per GET of it (PENDING_BUILD → BUILDING → DEPLOYING) and ends
 * after `rolloutPolls` GETs: ACTIVE, or ERROR with a failing build step when `failNextDeployment()`
 * was called. Every answer is recorded in `responses` for test/fakes.spec-check.test.ts.
 *
 * `POST /v2/apps/{app_id}/rollback {deployment_id, skip_pin}` (apps_create_rollback) creates a new
 * deployment of that earlier one (which must have been ACTIVE: ACTIVE or SUPERSEDED now), as
 * DigitalOcean does; without `skip_pin: true` the app is pinned and later creates answer 400
 * until the rollback is committed or reverted (not served here).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

type Json = Record<string, any>;

export interface DoRecordedResponse {
  method: string;
  /** The OpenAPI path template the request matched, e.g. /v2/apps/{app_id}/deployments. */
  route: string;
  status: number;
  headers: Record<string, string>;
  body: Json;
}

export interface DoInjected {
  status: 401 | 403 | 404 | 429 | 500 | 503;
  /** For 429: send `retry-after` with this many seconds (a burst-limit answer). */
  retryAfter?: number;
  /** Only requests whose path matches (default: any request). */
  path?: RegExp;
  /** Only requests with this method (default: any). */
  method?: 'GET' | 'POST';
}

export interface DigitaloceanFake {
  url: string;
  /** The bearer token the fake accepts. */
  token: string;
  responses: DoRecordedResponse[];
  requests: { method: string; path: string; body: Json | undefined; headers: http.IncomingHttpHeaders }[];
  /** Counts: create (POST deployments), get, list, cancel, rollback (POST rollback). */
  count(kind: 'create' | 'get' | 'list' | 'cancel' | 'rollback'): number;
  /** Whether an app is pinned to a rollback (POST rollback without skip_pin). */
  pinned(appId: string): boolean;
  /** Registers an app (id is a new UUID unless given) and returns its id. */
  addApp(id?: string): string;
  /** Removes an app: its routes answer 404. */
  removeApp(id: string): void;
  /** The next deployment created ends in ERROR with this failing build step. */
  failNextDeployment(reason?: { code: string; message: string }): void;
  /** The next `n` requests (any route) answer with this error instead. */
  injectErrors(err: DoInjected, n?: number): void;
  /** How many GETs of a deployment it takes to end (default 2). */
  rolloutPolls: number;
  /** Someone else deploys the app (the console, a git push): a new deployment, as a user would. */
  externalDeploy(appId: string, opts?: { createdAt?: Date }): string;
  /** A deployment as stored. */
  deployment(appId: string, id: string): Json | undefined;
  close(): Promise<void>;
}

const IN_FLIGHT = new Set(['UNKNOWN', 'PENDING_BUILD', 'BUILDING', 'PENDING_DEPLOY', 'DEPLOYING']);
const iso = (ms = Date.now()) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

interface FakeDeployment {
  json: Json;
  gets: number;
  failWith?: { code: string; message: string };
}

export async function startDigitaloceanFake(opts: { token?: string } = {}): Promise<DigitaloceanFake> {
  const apps = new Map<string, FakeDeployment[]>(); // newest first
  const counts = { create: 0, get: 0, list: 0, cancel: 0, rollback: 0 };
  const pinnedApps = new Set<string>();
  const responses: DoRecordedResponse[] = [];
  const requests: DigitaloceanFake['requests'] = [];
  let injected: { err: DoInjected; n: number }[] = [];
  let failNext: { code: string; message: string } | undefined;
  let remaining = 5000;

  function progress(phase: string, failWith?: { code: string; message: string }): Json {
    const now = iso();
    const status = (done: boolean, running: boolean) => (done ? 'SUCCESS' : running ? 'RUNNING' : 'PENDING');
    const built = !['PENDING_BUILD', 'BUILDING'].includes(phase);
    const deployed = phase === 'ACTIVE' || phase === 'SUPERSEDED';
    if (phase === 'ERROR' && failWith) {
      const failing = {
        name: 'build', status: 'ERROR', started_at: now, ended_at: now,
        steps: [{
          name: 'build-web', component_name: 'web', message_base: 'Building service', status: 'ERROR',
          started_at: now, ended_at: now, reason: { code: failWith.code, message: failWith.message },
        }],
      };
      return {
        pending_steps: 1, running_steps: 0, success_steps: 0, error_steps: 1, total_steps: 2,
        steps: [failing, { name: 'deploy', status: 'PENDING' }],
        summary_steps: [{ name: 'build', message_base: 'Building', status: 'ERROR', reason: { code: failWith.code, message: failWith.message } }],
      };
    }
    return {
      pending_steps: (built ? 0 : 1) + (deployed ? 0 : 1) - (phase === 'BUILDING' || phase === 'DEPLOYING' ? 1 : 0),
      running_steps: phase === 'BUILDING' || phase === 'DEPLOYING' ? 1 : 0,
      success_steps: (built ? 1 : 0) + (deployed ? 1 : 0),
      error_steps: 0,
      total_steps: 2,
      steps: [
        { name: 'build', status: status(built, phase === 'BUILDING'), started_at: now },
        { name: 'deploy', status: status(deployed, phase === 'DEPLOYING'), started_at: now },
      ],
    };
  }

  function setPhase(d: FakeDeployment, phase: string): void {
    const now = iso();
    d.json.phase = phase;
    d.json.phase_last_updated_at = now;
    d.json.updated_at = now;
    d.json.progress = progress(phase, d.failWith);
  }

  function createDeployment(appId: string, cause: string): FakeDeployment {
    const now = iso();
    const d: FakeDeployment = {
      gets: 0,
      failWith: failNext,
      json: {
        id: randomUUID(),
        cause,
        phase: 'PENDING_BUILD',
        created_at: now,
        updated_at: now,
        phase_last_updated_at: now,
        tier_slug: 'basic',
        services: [{ name: 'web', source_commit_hash: '54d4a727f457231062439895000d45437c7bb405' }],
        progress: {},
      },
    };
    failNext = undefined;
    setPhase(d, 'PENDING_BUILD');
    const list = apps.get(appId)!;
    // A newer deployment replaces one still in flight.
    for (const other of list) if (IN_FLIGHT.has(other.json.phase)) setPhase(other, 'SUPERSEDED');
    list.unshift(d);
    return d;
  }

  function advance(appId: string, d: FakeDeployment): void {
    if (!IN_FLIGHT.has(d.json.phase)) return;
    d.gets += 1;
    if (d.gets < fake.rolloutPolls) {
      setPhase(d, d.gets === 1 ? 'BUILDING' : 'DEPLOYING');
      return;
    }
    if (d.failWith) {
      setPhase(d, 'ERROR');
      return;
    }
    for (const other of apps.get(appId)!) if (other !== d && other.json.phase === 'ACTIVE') setPhase(other, 'SUPERSEDED');
    setPhase(d, 'ACTIVE');
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      let route = url.pathname;
      const headers: Record<string, string> = {
        'content-type': 'application/json; charset=utf-8',
        'ratelimit-limit': '5000',
        'ratelimit-remaining': String(Math.max(0, --remaining)),
        'ratelimit-reset': String(Math.floor(Date.now() / 1000) + 60),
      };
      const send = (status: number, body: Json) => {
        responses.push({ method, route, status, headers, body });
        res.writeHead(status, headers);
        res.end(JSON.stringify(body));
      };
      const error = (status: number, id: string, message: string) => send(status, { id, message, request_id: randomUUID() });

      let body: Json | undefined;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        return error(400, 'bad_request', 'The request body is not valid JSON.');
      }
      requests.push({ method, path: url.pathname + url.search, body, headers: req.headers });

      const m = /^\/v2\/apps\/([^/]+)\/deployments(?:\/([^/]+))?(\/cancel)?$/.exec(url.pathname);
      if (m) route = `/v2/apps/{app_id}/deployments${m[2] ? '/{deployment_id}' : ''}${m[3] ? '/cancel' : ''}`;
      const rb = /^\/v2\/apps\/([^/]+)\/rollback$/.exec(url.pathname);
      if (rb) route = '/v2/apps/{app_id}/rollback';

      if (req.headers.authorization !== `Bearer ${fake.token}`) return error(401, 'unauthorized', 'Unable to authenticate you.');
      const inj = injected.find((x) => x.n > 0 && (!x.err.path || x.err.path.test(url.pathname)) && (!x.err.method || x.err.method === method));
      if (inj) {
        inj.n -= 1;
        injected = injected.filter((x) => x.n > 0);
        const s = inj.err.status;
        if (s === 429) {
          headers['ratelimit-remaining'] = '0';
          if (inj.err.retryAfter !== undefined) headers['retry-after'] = String(inj.err.retryAfter);
          return error(429, 'too_many_requests', 'API rate limit exceeded.');
        }
        if (s === 401) return error(401, 'unauthorized', 'Unable to authenticate you.');
        if (s === 403) return error(403, 'forbidden', 'You are not authorized to perform this operation.');
        if (s === 404) return error(404, 'not_found', 'The resource you requested could not be found.');
        return error(s, 'server_error', 'Unexpected server-side error');
      }
      if (rb) {
        if (method !== 'POST') return error(405, 'method_not_allowed', `${method} is not allowed here`);
        const list = apps.get(decodeURIComponent(rb[1]));
        if (!list) return error(404, 'not_found', 'app not found');
        counts.rollback += 1;
        if (!body || typeof body.deployment_id !== 'string' || ('skip_pin' in body && typeof body.skip_pin !== 'boolean')) {
          return error(400, 'bad_request', 'deployment_id must be a string and skip_pin a boolean');
        }
        const to = list.find((x) => x.json.id === body!.deployment_id);
        if (!to) return error(404, 'not_found', 'deployment not found');
        if (to.json.phase !== 'ACTIVE' && to.json.phase !== 'SUPERSEDED') {
          return error(400, 'bad_request', `deployment ${to.json.id} never became active and cannot be rolled back to`);
        }
        if (body.skip_pin !== true) pinnedApps.add(decodeURIComponent(rb[1]));
        const d = createDeployment(decodeURIComponent(rb[1]), `rollback to deployment ${to.json.id}`);
        return send(200, { deployment: structuredClone(d.json) });
      }
      if (!m) return error(404, 'not_found', 'The resource you requested could not be found.');
      const appId = decodeURIComponent(m[1]);
      const list = apps.get(appId);
      if (!list) return error(404, 'not_found', 'app not found');
      const depId = m[2] && decodeURIComponent(m[2]);

      if (!depId && method === 'POST') {
        counts.create += 1;
        if (pinnedApps.has(appId)) return error(400, 'bad_request', 'the app is pinned to a rollback: commit or revert it first');
        if (body !== undefined && (typeof body !== 'object' || ('force_build' in body && typeof body.force_build !== 'boolean'))) {
          return error(400, 'bad_request', 'force_build must be a boolean');
        }
        const d = createDeployment(appId, body?.force_build ? 'manual (force build)' : 'manual');
        return send(200, { deployment: structuredClone(d.json) });
      }
      if (!depId && method === 'GET') {
        counts.list += 1;
        const page = Math.max(1, Number(url.searchParams.get('page') ?? 1));
        const perPage = Math.min(200, Math.max(1, Number(url.searchParams.get('per_page') ?? 20)));
        const items = list.slice((page - 1) * perPage, page * perPage).map((d) => structuredClone(d.json));
        return send(200, { deployments: items, links: {}, meta: { total: list.length } });
      }
      const d = depId ? list.find((x) => x.json.id === depId) : undefined;
      if (!d) return error(404, 'not_found', 'deployment not found');
      if (!m[3] && method === 'GET') {
        counts.get += 1;
        advance(appId, d);
        return send(200, { deployment: structuredClone(d.json) });
      }
      if (m[3] && method === 'POST') {
        counts.cancel += 1;
        if (!IN_FLIGHT.has(d.json.phase)) return error(400, 'bad_request', `deployment is ${d.json.phase} and cannot be canceled`);
        setPhase(d, 'CANCELED');
        return send(200, { deployment: structuredClone(d.json) });
      }
      return error(405, 'method_not_allowed', `${method} is not allowed here`);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const fake: DigitaloceanFake = {
    url: `http://127.0.0.1:${port}`,
    token: opts.token ?? `dop_v1_${randomUUID().replace(/-/g, '')}`,
    responses,
    requests,
    rolloutPolls: 2,
    count: (kind) => counts[kind],
    pinned: (appId) => pinnedApps.has(appId),
    addApp(id = randomUUID()) {
      apps.set(id, []);
      return id;
    },
    removeApp(id) {
      apps.delete(id);
    },
    failNextDeployment(reason = { code: 'BuildJobFailed', message: 'Build failed: npm ERR! missing script: build' }) {
      failNext = reason;
    },
    injectErrors(err, n = 1) {
      injected.push({ err, n });
    },
    externalDeploy(appId, o = {}) {
      const d = createDeployment(appId, 'commit 9a4df0b pushed to github/acme/web');
      if (o.createdAt) d.json.created_at = iso(o.createdAt.getTime());
      return d.json.id;
    },
    deployment(appId, id) {
      const d = apps.get(appId)?.find((x) => x.json.id === id);
      return d && structuredClone(d.json);
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  return fake;
}

/**
 * Everything the shared conformance suite needs for the DigitalOcean provider: a fake with one
 * app, the target and credential that reach it (SHIPCLOCK_DIGITALOCEAN_API_URL is set until
 * close()), and one-line scenario controls.
 */
export async function digitaloceanHarness() {
  const fake = await startDigitaloceanFake();
  const previous = process.env.SHIPCLOCK_DIGITALOCEAN_API_URL;
  process.env.SHIPCLOCK_DIGITALOCEAN_API_URL = fake.url;
  const appId = fake.addApp();
  return {
    fake,
    target: { type: 'digitalocean' as const, app_id: appId, poll_interval_seconds: 1, timeout_seconds: 60 },
    credentials: { provider: 'digitalocean' as const, token: fake.token },
    /** The next deployment ends in ERROR with a failing build step. */
    failNext: (message = 'Build failed: npm ERR! missing script: build') => fake.failNextDeployment({ code: 'BuildJobFailed', message }),
    /** The next request answers 503 (transient). */
    transientNext: () => fake.injectErrors({ status: 503 }),
    /** The next request answers 403 (permanent). */
    permanentNext: () => fake.injectErrors({ status: 403 }),
    /** Deployments never leave their in-flight phases (for timeouts). */
    neverFinish: () => { fake.rolloutPolls = Number.MAX_SAFE_INTEGER; },
    /** How many deployments were created. */
    triggers: () => fake.count('create'),
    async close() {
      if (previous === undefined) delete process.env.SHIPCLOCK_DIGITALOCEAN_API_URL;
      else process.env.SHIPCLOCK_DIGITALOCEAN_API_URL = previous;
      await fake.close();
    },
  };
}
