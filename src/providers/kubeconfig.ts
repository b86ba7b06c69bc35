/**
 * Kubernetes credentials: checks a kubeconfig document before it is stored and lists the secret
 * strings a credential holds (for redaction). Only js-yaml here: @kubernetes/client-node costs
 * 70–100 MB of RSS and seconds to import, so only the provider loads it, on first use.
 *
 * A kubeconfig runs on the shipclock server, so only self-contained ones are accepted: inline
 * `token`, `client-certificate-data` + `client-key-data` or `username`/`password`, and inline
 * `certificate-authority-data`. Anything that would read a file of the server (`token-file`,
 * `client-key`, `certificate-authority`, ...) or run a program (`exec`, `auth-provider`) is refused,
 * since the library would do it while parsing or on every call. Error messages name the part of
 * the document that is wrong (context, cluster and user names, keys), never a value from it.
 */
import yaml from 'js-yaml';

export class KubeconfigError extends Error {}

type Named = { name?: unknown; [k: string]: unknown };

const FILE_KEYS_USER = ['token-file', 'tokenFile', 'client-certificate', 'client-key'];
const FILE_KEYS_CLUSTER = ['certificate-authority'];
const PLUGIN_KEYS_USER = ['exec', 'auth-provider'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function entry(list: unknown, kind: string, name: string, inner: string): Record<string, unknown> {
  if (!Array.isArray(list)) throw new KubeconfigError(`the kubeconfig has no ${kind}s list`);
  const found = (list as Named[]).find((e) => isObject(e) && e.name === name);
  if (!found) throw new KubeconfigError(`the kubeconfig has no ${kind} named "${name}"`);
  const body = found[inner];
  if (!isObject(body)) throw new KubeconfigError(`the ${kind} "${name}" has no ${inner} section`);
  return body;
}

export interface KubeconfigSummary {
  context: string;
  server: string;
  namespace?: string;
}

/**
 * Parses and checks a kubeconfig; returns what may be shown (context, server URL). Throws
 * KubeconfigError saying what is wrong, never quoting the document.
 */
export function checkKubeconfig(text: string): KubeconfigSummary {
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    const mark = (err as { mark?: { line?: number; column?: number } }).mark;
    const where = mark && typeof mark.line === 'number' ? ` (line ${mark.line + 1}, column ${(mark.column ?? 0) + 1})` : '';
    throw new KubeconfigError(`the kubeconfig is not valid YAML${where}`);
  }
  if (!isObject(doc)) throw new KubeconfigError('the kubeconfig is not a YAML mapping');
  const current = doc['current-context'];
  if (typeof current !== 'string' || !current) throw new KubeconfigError('the kubeconfig has no current-context (shipclock uses that context)');
  const context = entry(doc.contexts, 'context', current, 'context');
  if (typeof context.cluster !== 'string' || typeof context.user !== 'string') {
    throw new KubeconfigError(`the context "${current}" must name a cluster and a user`);
  }
  const cluster = entry(doc.clusters, 'cluster', context.cluster, 'cluster');
  const user = entry(doc.users, 'user', context.user, 'user');
  const server = cluster.server;
  let url: URL;
  try {
    url = new URL(String(server));
  } catch {
    throw new KubeconfigError(`the cluster "${context.cluster}" has no valid server URL`);
  }
  if (url.protocol !== 'https:') throw new KubeconfigError(`the cluster "${context.cluster}" server must be an https:// URL`);
  if (url.username || url.password) throw new KubeconfigError(`the cluster "${context.cluster}" server URL must not carry a user or password`);
  for (const k of FILE_KEYS_CLUSTER) {
    if (k in cluster) throw new KubeconfigError(`the cluster "${context.cluster}" uses ${k} (a file on the server); put the certificate inline as ${k}-data`);
  }
  for (const k of PLUGIN_KEYS_USER) {
    if (k in user) throw new KubeconfigError(`the user "${context.user}" uses ${k}, a credential plugin shipclock does not run; use a token or client-certificate-data/client-key-data`);
  }
  for (const k of FILE_KEYS_USER) {
    if (k in user) throw new KubeconfigError(`the user "${context.user}" uses ${k} (a file on the server); put it inline (token, client-certificate-data, client-key-data)`);
  }
  const hasToken = typeof user.token === 'string' && user.token.length > 0;
  const hasCert = typeof user['client-certificate-data'] === 'string' && typeof user['client-key-data'] === 'string';
  const hasBasic = typeof user.username === 'string' && typeof user.password === 'string';
  if (!hasToken && !hasCert && !hasBasic) {
    throw new KubeconfigError(`the user "${context.user}" has no credential: give token, or client-certificate-data and client-key-data`);
  }
  // Other users of the document are never used, but the library reads every entry while parsing.
  for (const u of Array.isArray(doc.users) ? (doc.users as Named[]) : []) {
    const body = isObject(u) && isObject(u.user) ? u.user : {};
    for (const k of [...PLUGIN_KEYS_USER, ...FILE_KEYS_USER]) {
      if (k in body) throw new KubeconfigError(`the user "${String(u.name)}" uses ${k}; remove users shipclock cannot use from the kubeconfig`);
    }
  }
  // The client library refuses a document with any malformed entry, used or not.
  for (const [list, inner] of [['clusters', 'cluster'], ['users', 'user'], ['contexts', 'context']] as const) {
    const entries = doc[list];
    if (entries === undefined || entries === null) continue;
    if (!Array.isArray(entries)) throw new KubeconfigError(`the kubeconfig's ${list} is not a list`);
    for (const [i, e] of (entries as unknown[]).entries()) {
      if (!isObject(e) || typeof e.name !== 'string' || !isObject(e[inner])) throw new KubeconfigError(`${list}[${i}] of the kubeconfig needs a name and a ${inner} section`);
      if (inner === 'cluster' && typeof (e[inner] as Record<string, unknown>).server !== 'string') throw new KubeconfigError(`the cluster "${e.name}" has no server`);
      if (inner === 'context' && (typeof (e[inner] as Record<string, unknown>).cluster !== 'string' || typeof (e[inner] as Record<string, unknown>).user !== 'string')) {
        throw new KubeconfigError(`the context "${e.name}" must name a cluster and a user`);
      }
    }
  }
  return { context: current, server: url.toString().replace(/\/$/, ''), ...(typeof context.namespace === 'string' ? { namespace: context.namespace } : {}) };
}

/** Checks the server URL of a `{server, token}` credential. */
export function checkServerUrl(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeconfigError('server is not a URL');
  }
  if (url.protocol !== 'https:') throw new KubeconfigError('server must be an https:// URL');
  if (url.username || url.password) throw new KubeconfigError('server must not carry a user or password');
  return url.toString().replace(/\/$/, '');
}

/** Checks a PEM CA bundle (content is never quoted). */
export function checkCaCertificate(pem: string): void {
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(pem)) {
    throw new KubeconfigError('ca_certificate must be a PEM certificate (-----BEGIN CERTIFICATE----- ...)');
  }
}

export interface KubernetesCredentialMaterial {
  kubeconfig?: string;
  server?: string;
  token?: string;
  ca_certificate?: string;
}

/**
 * Every secret string a Kubernetes credential holds: the token, and from a kubeconfig every user's
 * token, password and client key (base64 and decoded), plus the document itself.
 */
export function kubernetesSecrets(c: KubernetesCredentialMaterial): string[] {
  const out: string[] = [];
  if (c.token) out.push(c.token);
  if (!c.kubeconfig) return out;
  out.push(c.kubeconfig);
  let doc: unknown;
  try {
    doc = yaml.load(c.kubeconfig);
  } catch {
    return out;
  }
  const users = isObject(doc) && Array.isArray(doc.users) ? (doc.users as Named[]) : [];
  for (const u of users) {
    const body = isObject(u) && isObject(u.user) ? u.user : {};
    for (const k of ['token', 'password', 'client-key-data']) {
      const v = body[k];
      if (typeof v !== 'string' || !v) continue;
      out.push(v);
      if (k === 'client-key-data') {
        const pem = Buffer.from(v, 'base64').toString('utf8');
        out.push(pem);
        // The key's base64 body lines, in case an error quotes part of the PEM.
        for (const line of pem.split('\n')) if (line.length >= 40 && !line.startsWith('-----')) out.push(line.trim());
      }
    }
  }
  return out;
}
