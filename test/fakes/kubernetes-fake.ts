/**
 * A local Kubernetes API server for the apps/v1 workloads shipclock drives, shaped like the
 * published OpenAPI v3 document (../fixtures/specs/kubernetes): HTTPS (a test-only self-signed
 * certificate in ../fixtures/kube-fake-tls), `Authorization: Bearer <token>` required, JSON
 * bodies, `GET` and `PATCH` of `/apis/apps/v1/namespaces/{namespace}/{deployments|statefulsets|
 * daemonsets}/{name}` with `application/merge-patch+json` (RFC 7386) or
 * `application/strategic-merge-patch+json` (lists of containers merge by name, `null` deletes),
 * and errors as `Status` objects (`{kind: "Status", status: "Failure", message, reason, code}`).
 *
 * The controllers are simulated: a spec change bumps `metadata.generation` (a Deployment's
 * template change its `deployment.kubernetes.io/revision` too); each GET after it advances the
 * rollout one step (observedGeneration catches up, then replicas move) and it ends after
 * `rolloutPolls` GETs, done — or, after `failNextRollout()`, with the Deployment's Progressing
 * condition `False / ProgressDeadlineExceeded`. `injectErrors` answers the next requests with
 * 403/404/422/429/500/503. Every request and answer is recorded (the spec check and the "patched
 * once" assertions read them).
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

type Json = Record<string, any>;
export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';

const PLURAL: Record<WorkloadKind, string> = { Deployment: 'deployments', StatefulSet: 'statefulsets', DaemonSet: 'daemonsets' };
const KIND_OF: Record<string, WorkloadKind> = { deployments: 'Deployment', statefulsets: 'StatefulSet', daemonsets: 'DaemonSet' };
const TLS_DIR = path.resolve(import.meta.dirname, '../fixtures/kube-fake-tls');
export const KUBE_FAKE_CA = fs.readFileSync(path.join(TLS_DIR, 'cert.pem'), 'utf8');
const TLS_KEY = fs.readFileSync(path.join(TLS_DIR, 'key.pem'), 'utf8');
const REVISION = 'deployment.kubernetes.io/revision';
/** Nodes a DaemonSet runs on. */
const NODES = 3;

export interface KubeRecordedResponse {
  method: string;
  /** The OpenAPI path template, e.g. /apis/apps/v1/namespaces/{namespace}/deployments/{name}. */
  route: string;
  status: number;
  headers: Record<string, string>;
  body: Json;
}

export interface KubeRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  body: Json | undefined;
  authorized: boolean;
}

export interface KubeInjected {
  status: 403 | 404 | 409 | 422 | 429 | 500 | 503;
  /** For 429: a `retry-after` header with this many seconds. */
  retryAfter?: number;
  /** Only requests of this method (default any). */
  method?: 'GET' | 'PATCH';
  /** The message quotes the request's Authorization header (as a careless proxy might), to test redaction. */
  echoAuth?: boolean;
}

interface Workload {
  json: Json;
  /** GETs since the last spec change (the rollout advances one step per GET). */
  gets: number;
  /** The current rollout ends in ProgressDeadlineExceeded with this message. */
  failWith?: string;
  /** Templates by Deployment revision (for the revision annotation). */
  revisions: string[];
  /** The pod template the rollout moves away from (StatefulSet currentRevision). */
  currentRevision: string;
}

export interface KubernetesFake {
  /** https://127.0.0.1:<port> */
  url: string;
  token: string;
  /** PEM of the fake's self-signed certificate (a CA to trust). */
  ca: string;
  responses: KubeRecordedResponse[];
  requests: KubeRequest[];
  /** Successful PATCHes (of any workload, or of one named `kind/namespace/name`). */
  patches(key?: string): KubeRequest[];
  /** Adds a workload with containers (name → image) and desired replicas (default 3). */
  addWorkload(kind: WorkloadKind, namespace: string, name: string, containers: Record<string, string>, opts?: { replicas?: number; onDelete?: boolean; paused?: boolean }): void;
  workload(kind: WorkloadKind, namespace: string, name: string): Json | undefined;
  /** The next spec change's rollout ends with ProgressDeadlineExceeded (its message ends with `reason`). */
  failNextRollout(reason?: string): void;
  /** The next `n` requests answer with this error instead. */
  injectErrors(err: KubeInjected, n?: number): void;
  /** How many GETs a rollout takes to end (default 2). */
  rolloutPolls: number;
  /**
   * While set, a PATCH takes effect but its answer is never sent (the caller dies waiting);
   * `held` resolves at the first such PATCH.
   */
  holdPatchAnswers: boolean;
  held: Promise<void>;
  /** A kubeconfig for this server (token user, inline CA). */
  kubeconfig(opts?: { token?: string; context?: string }): string;
  close(): Promise<void>;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Json = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Lists that a strategic merge patch merges by a key (the ones of a pod template we use). */
const MERGE_KEYS: Record<string, string> = { containers: 'name', initContainers: 'name', env: 'name', volumes: 'name', ports: 'containerPort', conditions: 'type' };

/** A strategic merge patch, enough for pod templates: keyed lists merge by their key, `null` deletes. */
export function strategicMergePatch(target: unknown, patch: unknown, key?: string): unknown {
  if (Array.isArray(patch) && key && MERGE_KEYS[key] && Array.isArray(target)) {
    const mk = MERGE_KEYS[key];
    const out = target.map((x) => structuredClone(x));
    for (const item of patch) {
      if (!isObject(item)) continue;
      const at = out.findIndex((x) => isObject(x) && x[mk] === item[mk]);
      if (at >= 0) out[at] = strategicMergePatch(out[at], item);
      else out.push(structuredClone(item));
    }
    return out;
  }
  if (!isObject(patch)) return structuredClone(patch);
  const out: Json = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue; // directives ($patch, $retainKeys, ...): not needed here
    if (v === null) delete out[k];
    else out[k] = strategicMergePatch(out[k], v, k);
  }
  return out;
}

const hash = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 10);
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

function status(code: number, reason: string, message: string, details?: Json): Json {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

export async function startKubernetesFake(opts: { token?: string } = {}): Promise<KubernetesFake> {
  const workloads = new Map<string, Workload>();
  const responses: KubeRecordedResponse[] = [];
  const requests: KubeRequest[] = [];
  const patched: Array<{ key: string; req: KubeRequest }> = [];
  let injected: { err: KubeInjected; n: number }[] = [];
  let failNext: string | undefined;
  let resourceVersion = 1000;
  let markHeld: () => void = () => {};
  const held = new Promise<void>((r) => { markHeld = r; });

  const keyOf = (kind: WorkloadKind, ns: string, name: string) => `${kind}/${ns}/${name}`;

  function desired(w: Workload): number {
    const kind = w.json.kind as WorkloadKind;
    return kind === 'DaemonSet' ? NODES : (w.json.spec.replicas ?? 1);
  }

  /** Sets the status of a rollout at `step` (0 = just changed, not yet observed). */
  function setStatus(w: Workload, phase: 'observed' | 'progress' | 'done' | 'deadline'): void {
    const j = w.json;
    const d = desired(w);
    const kind = j.kind as WorkloadKind;
    const gen = j.metadata.generation;
    const s: Json = { ...j.status, observedGeneration: gen };
    const updated = phase === 'done' ? d : phase === 'observed' ? 0 : Math.min(1, d);
    const oldLeft = phase === 'done' ? 0 : d - (phase === 'progress' ? Math.max(0, updated - 1) : 0);
    const templateRevision = `${j.metadata.name}-${hash(j.spec.template)}`;
    if (kind === 'Deployment') {
      const available = phase === 'done' ? d : oldLeft;
      Object.assign(s, { replicas: updated + oldLeft, updatedReplicas: updated, readyReplicas: available, availableReplicas: available });
      if (available < d) s.unavailableReplicas = d - available;
      else delete s.unavailableReplicas;
      const rs = `${j.metadata.name}-${hash(j.spec.template).slice(0, 9)}`;
      const progressing = phase === 'deadline'
        ? { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "${rs}" has timed out progressing.${w.failWith ? ` ${w.failWith}` : ''}` }
        : phase === 'done'
          ? { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${rs}" has successfully progressed.` }
          : { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', message: `ReplicaSet "${rs}" is progressing.` };
      const availableCond = available >= d
        ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
        : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' };
      const t = now();
      s.conditions = [availableCond, progressing].map((c) => ({ ...c, lastUpdateTime: t, lastTransitionTime: t }));
    } else if (kind === 'StatefulSet') {
      const ready = phase === 'done' ? d : d - (phase === 'progress' ? 1 : 0);
      if (phase === 'done') w.currentRevision = templateRevision;
      Object.assign(s, {
        replicas: d, readyReplicas: ready, availableReplicas: ready, currentReplicas: d - updated, updatedReplicas: updated,
        currentRevision: w.currentRevision, updateRevision: templateRevision,
      });
    } else {
      const ready = phase === 'done' ? d : d - (phase === 'progress' ? 1 : 0);
      Object.assign(s, {
        currentNumberScheduled: d, desiredNumberScheduled: d, numberMisscheduled: 0, numberReady: ready,
        numberAvailable: ready, updatedNumberScheduled: updated,
      });
      if (ready < d) s.numberUnavailable = d - ready;
      else delete s.numberUnavailable;
    }
    j.status = s;
  }

  /** The controller's next step, run on every GET of the workload. */
  function advance(w: Workload): void {
    const j = w.json;
    const observed = j.status?.observedGeneration ?? 0;
    if (observed < j.metadata.generation) {
      w.gets = 1;
      setStatus(w, fake.rolloutPolls <= 1 ? (w.failWith ? 'deadline' : 'done') : 'observed');
      return;
    }
    const last = j.status?.conditions?.find((c: Json) => c.type === 'Progressing')?.reason;
    if (last === 'ProgressDeadlineExceeded' || last === 'NewReplicaSetAvailable') return;
    if (j.kind !== 'Deployment' && (j.status.updatedReplicas ?? j.status.updatedNumberScheduled) === desired(w) && j.status.updateRevision === j.status.currentRevision) return;
    w.gets += 1;
    if (w.gets < fake.rolloutPolls) setStatus(w, 'progress');
    else if (w.failWith !== undefined && j.kind === 'Deployment') setStatus(w, 'deadline');
    else if (w.failWith === undefined) setStatus(w, 'done');
    else setStatus(w, 'progress'); // StatefulSets and DaemonSets have no deadline: they stay stuck
  }

  function validate(j: Json): Json | undefined {
    const causes: Json[] = [];
    const containers = j.spec?.template?.spec?.containers;
    if (!Array.isArray(containers) || containers.length === 0) causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.template.spec.containers' });
    (containers ?? []).forEach((c: Json, i: number) => {
      if (typeof c.image !== 'string' || !c.image.trim()) causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: `spec.template.spec.containers[${i}].image` });
    });
    if (!causes.length) return undefined;
    return status(422, 'Invalid', `${j.kind}.apps "${j.metadata.name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`, {
      name: j.metadata.name, group: 'apps', kind: PLURAL[j.kind as WorkloadKind], causes,
    });
  }

  const tls = { key: TLS_KEY, cert: KUBE_FAKE_CA };
  const server = https.createServer(tls, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'https://fake');
      const method = req.method ?? 'GET';
      const m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/(deployments|statefulsets|daemonsets)\/([^/]+)$/.exec(url.pathname);
      const route = m ? `/apis/apps/v1/namespaces/{namespace}/${m[2]}/{name}` : url.pathname;
      const headers: Record<string, string> = { 'content-type': 'application/json', 'audit-id': randomUUID(), 'cache-control': 'no-cache, private' };
      const send = (code: number, body: Json) => {
        responses.push({ method, route, status: code, headers, body });
        res.writeHead(code, headers);
        res.end(JSON.stringify(body));
      };
      const contentType = req.headers['content-type']?.split(';')[0].trim();
      const authorized = req.headers.authorization === `Bearer ${fake.token}`;
      let body: Json | undefined;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        requests.push({ method, path: url.pathname, contentType, body: undefined, authorized });
        return send(400, status(400, 'BadRequest', 'the request body is not valid JSON'));
      }
      const logged: KubeRequest = { method, path: url.pathname + url.search, contentType, body, authorized };
      requests.push(logged);
      if (!authorized) return send(401, status(401, 'Unauthorized', 'Unauthorized'));
      const inj = injected.find((x) => x.n > 0 && (!x.err.method || x.err.method === method));
      if (inj) {
        inj.n -= 1;
        injected = injected.filter((x) => x.n > 0);
        const what = m ? `${m[2]}.apps "${decodeURIComponent(m[3])}"` : 'the resource';
        switch (inj.err.status) {
          case 403: return send(403, status(403, 'Forbidden', `${what} is forbidden: User "system:serviceaccount:ci:shipclock" cannot ${method === 'PATCH' ? 'patch' : 'get'} resource "${m?.[2] ?? 'deployments'}" in API group "apps" in the namespace "${m ? decodeURIComponent(m[1]) : 'default'}"`, { name: m?.[3], group: 'apps', kind: m?.[2] }));
          case 404: return send(404, status(404, 'NotFound', `${what} not found`, { name: m?.[3], group: 'apps', kind: m?.[2] }));
          case 409: return send(409, status(409, 'Conflict', `Operation cannot be fulfilled on ${what}: the object has been modified; please apply your changes to the latest version and try again`));
          case 422: return send(422, status(422, 'Invalid', `${what} is invalid: spec.template.spec.containers[0].image: Required value`));
          case 429:
            if (inj.err.retryAfter !== undefined) headers['retry-after'] = String(inj.err.retryAfter);
            return send(429, status(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: inj.err.retryAfter ?? 1 }));
          case 500: return send(500, status(500, 'InternalError', `Internal error occurred: etcdserver: request timed out${inj.err.echoAuth ? ` (request with ${req.headers.authorization})` : ''}`));
          default: return send(503, status(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'));
        }
      }
      if (!m) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
      const [ns, plural, name] = [decodeURIComponent(m[1]), m[2], decodeURIComponent(m[3])];
      const kind = KIND_OF[plural];
      const key = keyOf(kind, ns, name);
      const w = workloads.get(key);
      if (!w) return send(404, status(404, 'NotFound', `${plural}.apps "${name}" not found`, { name, group: 'apps', kind: plural }));
      if (method === 'GET') {
        advance(w);
        return send(200, structuredClone(w.json));
      }
      if (method !== 'PATCH') return send(405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
      if (!isObject(body)) return send(400, status(400, 'BadRequest', 'the patch must be a JSON object'));
      let next: Json;
      if (contentType === 'application/merge-patch+json') next = mergePatch(w.json, body) as Json;
      else if (contentType === 'application/strategic-merge-patch+json') next = strategicMergePatch(w.json, body) as Json;
      else return send(415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`));
      // Server-owned fields are not the client's to change.
      next.metadata = { ...next.metadata, name, namespace: ns, uid: w.json.metadata.uid, generation: w.json.metadata.generation, creationTimestamp: w.json.metadata.creationTimestamp };
      next.status = w.json.status;
      // Go's omitempty: a map left empty by a patch is not serialized.
      for (const meta of [next.metadata, next.spec?.template?.metadata]) {
        if (isObject(meta?.annotations) && Object.keys(meta.annotations).length === 0) delete meta.annotations;
      }
      const invalid = validate(next);
      if (invalid) return send(422, invalid);
      const specChanged = JSON.stringify(next.spec) !== JSON.stringify(w.json.spec);
      next.metadata.resourceVersion = String(++resourceVersion);
      if (specChanged) {
        next.metadata.generation = w.json.metadata.generation + 1;
        w.gets = 0;
        w.failWith = failNext;
        failNext = undefined;
        if (kind === 'Deployment' && JSON.stringify(next.spec.template) !== JSON.stringify(w.json.spec.template)) {
          w.revisions.push(JSON.stringify(next.spec.template));
          next.metadata.annotations = { ...next.metadata.annotations, [REVISION]: String(w.revisions.length) };
        }
      }
      w.json = next;
      patched.push({ key, req: logged });
      if (fake.holdPatchAnswers) {
        responses.push({ method, route, status: 200, headers, body: structuredClone(w.json) });
        markHeld();
        return; // took effect; the answer never comes
      }
      return send(200, structuredClone(w.json));
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const fake: KubernetesFake = {
    url: `https://127.0.0.1:${port}`,
    token: opts.token ?? `kube-fake-token-${randomUUID()}`,
    ca: KUBE_FAKE_CA,
    responses,
    requests,
    rolloutPolls: 2,
    holdPatchAnswers: false,
    held,
    patches: (key) => patched.filter((p) => !key || p.key === key).map((p) => p.req),
    addWorkload(kind, namespace, name, containers, o = {}) {
      const labels = { app: name };
      const template = {
        metadata: { labels },
        spec: { containers: Object.entries(containers).map(([n, image]) => ({ name: n, image, ports: [{ containerPort: 8080, protocol: 'TCP' }], resources: {} })), restartPolicy: 'Always' },
      };
      const spec: Json = { selector: { matchLabels: labels }, template, revisionHistoryLimit: 10 };
      if (kind !== 'DaemonSet') spec.replicas = o.replicas ?? 3;
      if (kind === 'Deployment') {
        Object.assign(spec, { strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } }, progressDeadlineSeconds: 600 });
        if (o.paused) spec.paused = true;
      }
      if (kind === 'StatefulSet') Object.assign(spec, { serviceName: name, podManagementPolicy: 'OrderedReady', updateStrategy: o.onDelete ? { type: 'OnDelete' } : { type: 'RollingUpdate', rollingUpdate: { partition: 0 } } });
      if (kind === 'DaemonSet') spec.updateStrategy = o.onDelete ? { type: 'OnDelete' } : { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } };
      const json: Json = {
        kind, apiVersion: 'apps/v1',
        metadata: {
          name, namespace, uid: randomUUID(), resourceVersion: String(++resourceVersion), generation: 1, creationTimestamp: now(), labels,
          annotations: kind === 'Deployment' ? { [REVISION]: '1' } : {},
        },
        spec,
        status: {},
      };
      const w: Workload = { json, gets: 0, revisions: [JSON.stringify(template)], currentRevision: `${name}-${hash(template)}` };
      setStatus(w, 'done');
      workloads.set(keyOf(kind, namespace, name), w);
    },
    workload: (kind, namespace, name) => structuredClone(workloads.get(keyOf(kind, namespace, name))?.json),
    failNextRollout(reason = '') {
      failNext = reason;
    },
    injectErrors(err, n = 1) {
      injected.push({ err, n });
    },
    kubeconfig(o = {}) {
      const ctxName = o.context ?? 'fake-admin@fake';
      return [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${fake.url}`,
        `    certificate-authority-data: ${Buffer.from(KUBE_FAKE_CA).toString('base64')}`,
        'users:',
        '- name: fake-admin',
        '  user:',
        `    token: ${o.token ?? fake.token}`,
        'contexts:',
        `- name: ${ctxName}`,
        '  context:',
        '    cluster: fake',
        '    user: fake-admin',
        '    namespace: default',
        `current-context: ${ctxName}`,
        '',
      ].join('\n');
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  return fake;
}

/**
 * Everything the shared conformance suite needs for the Kubernetes provider: a fake with one
 * Deployment (`web/api`, one container), the target (an image change) and a kubeconfig
 * credential that reach it, and one-line scenario controls.
 */
export async function kubernetesHarness() {
  const fake = await startKubernetesFake();
  fake.addWorkload('Deployment', 'web', 'api', { api: 'registry.example/api:1' });
  return {
    fake,
    target: { type: 'kubernetes' as const, namespace: 'web', kind: 'Deployment', name: 'api', image: 'registry.example/api:2', poll_interval_seconds: 1, timeout_seconds: 60 },
    credentials: { provider: 'kubernetes' as const, kubeconfig: fake.kubeconfig() },
    /** The next rollout ends with ProgressDeadlineExceeded, its message ending with the reason. */
    failNext: (reason = '') => fake.failNextRollout(reason),
    transientNext: () => fake.injectErrors({ status: 503 }),
    permanentNext: () => fake.injectErrors({ status: 403 }),
    neverFinish: () => { fake.rolloutPolls = Number.MAX_SAFE_INTEGER; },
    /** How many patches reached the Deployment. */
    triggers: () => fake.patches().length,
    close: () => fake.close(),
  };
}
