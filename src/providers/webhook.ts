/**
 * `webhook` target: POST {deployment_id, app_id, app_name, run_at, attempt} to the URL.
 * Every attempt of one deployment carries the same `Idempotency-Key` (the deployment id), so a
 * receiver can drop a repeat; with a secret, `X-Shipclock-Signature: sha256=<hex HMAC-SHA256>`
 * signs the raw body. 2xx succeeds; network errors, timeouts, 5xx and 429 are transient;
 * any other status fails at once. Redirects are not followed.
 *
 * Rollback: a `rollback` event, `{event: "rollback", deployment_id, ..., rollback: n}`, POSTed to the
 * same URL, signed the same way, with its own `Idempotency-Key` (`<deployment id>:rollback:<n>`);
 * a 2xx means it is done. A deployment counts as having changed something (so an automatic
 * rollback is made) once the receiver answered 5xx or did not answer in time: it may have acted.
 * A 4xx says it refused, so nothing was changed.
 */
import { createHmac } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { Provider, ProviderContext, StepResult } from './types.ts';

export interface WebhookTarget {
  type: 'webhook';
  url: string;
  secret?: string;
  headers?: Record<string, string>;
  /** Per-request timeout; default 30. */
  timeout_seconds?: number;
}

export const WEBHOOK_DEFAULT_TIMEOUT_SECONDS = 30;

export function webhookBody(ctx: ProviderContext<WebhookTarget>): string {
  const d = ctx.deployment;
  if (ctx.rollback) {
    return JSON.stringify({
      event: 'rollback', deployment_id: d.id, app_id: d.appId, app_name: d.appName, run_at: d.runAt.toISOString(),
      rollback: ctx.rollback.seq, attempt: d.attempt,
    });
  }
  return JSON.stringify({ deployment_id: d.id, app_id: d.appId, app_name: d.appName, run_at: d.runAt.toISOString(), attempt: d.attempt });
}

/** The Idempotency-Key of a deploy (the deployment id) or of its n-th rollback. */
export function idempotencyKey(ctx: ProviderContext<WebhookTarget>): string {
  return ctx.rollback ? `${ctx.deployment.id}:rollback:${ctx.rollback.seq}` : ctx.deployment.id;
}

export function signBody(secret: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * Calls started within this long of each other (with the same timeout and parent signal) share
 * one deadline signal, which fires this much after their timeout: a call's timeout is between
 * timeout_seconds and timeout_seconds + 0.25 s. A burst of 1,000 calls then creates a few
 * signals instead of 2,000 (AbortSignal.timeout + AbortSignal.any per call cost about 5 % of a
 * burst's CPU in Node 20).
 */
const DEADLINE_WINDOW_MS = 250;
const deadlines = new WeakMap<AbortSignal, Map<number, { createdAt: number; signal: AbortSignal }>>();

function deadline(parent: AbortSignal, timeoutMs: number): AbortSignal {
  let byTimeout = deadlines.get(parent);
  if (!byTimeout) deadlines.set(parent, (byTimeout = new Map()));
  const now = performance.now();
  const hit = byTimeout.get(timeoutMs);
  if (hit && now - hit.createdAt < DEADLINE_WINDOW_MS) return hit.signal;
  const signal = AbortSignal.any([parent, AbortSignal.timeout(timeoutMs + DEADLINE_WINDOW_MS)]);
  // Every call of the window listens on it: that is by design, not a leak.
  setMaxListeners(0, signal);
  byTimeout.set(timeoutMs, { createdAt: now, signal });
  return signal;
}

function retryAfterSeconds(value: string | null): number | undefined {
  if (!value) return undefined;
  const n = Number(value);
  if (Number.isFinite(n) && n >= 0) return Math.min(n, 3600);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.min(3600, (at - Date.now()) / 1000));
}

/** How much of a response body is read (the rest is discarded and the connection closed). */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** How much of it is kept for the deployment's log. */
const LOG_EXCERPT_CHARS = 500;

/**
 * Connections opened ahead of the instant (prepare()), by "scheme//host:port", until a call takes
 * them: a plain one is never handed to an https call, nor a TLS one to an http call.
 */
const ready = new Map<string, Socket[]>();
/** At most this many connections are opened ahead per host:port (a burst opens the rest at the instant). */
const MAX_READY_PER_ORIGIN = 1000;
/** A connection opened ahead and not taken within this long is closed. */
const READY_IDLE_MS = 10_000;

type Scheme = 'http:' | 'https:';

function readyKey(scheme: Scheme, host: string, port: number | string): string {
  return `${scheme}//${host}:${port}`;
}

function takeReady(scheme: Scheme, options: { host?: string | null; hostname?: string | null; port?: number | string | null }): Socket | undefined {
  const key = readyKey(scheme, String(options.host ?? options.hostname ?? ''), String(options.port ?? ''));
  const list = ready.get(key);
  while (list?.length) {
    const socket = list.pop()!;
    // One the server has closed (or begun to) is not used: the call would meet a reset.
    if (!socket.destroyed && !socket.readableEnded && !socket.writableEnded) {
      socket.setTimeout(0);
      socket.removeAllListeners('timeout');
      socket.ref();
      return socket;
    }
  }
  return undefined;
}

/** Node's agents with one change: a new connection is one opened ahead when there is one. */
class PreparedHttpAgent extends http.Agent {
  override createConnection(options: Parameters<http.Agent['createConnection']>[0], cb?: Parameters<http.Agent['createConnection']>[1]) {
    return takeReady('http:', options as Parameters<typeof takeReady>[1]) ?? super.createConnection(options, cb);
  }
}
class PreparedHttpsAgent extends https.Agent {
  override createConnection(options: Parameters<http.Agent['createConnection']>[0], cb?: Parameters<http.Agent['createConnection']>[1]) {
    return takeReady('https:', options as Parameters<typeof takeReady>[1]) ?? super.createConnection(options, cb);
  }
}

/**
 * Keep-alive connection pools, one per scheme, shared by every webhook call of the process. An
 * idle connection is closed a second before the server's Keep-Alive timeout hint, so a call
 * rarely meets a connection the server is closing (if it does, that is a network error: retried).
 * node:http rather than fetch: in a burst of 1,000 calls it takes about 40 % of fetch's CPU and
 * half its memory (docs/decisions/0002).
 */
const agents = {
  'http:': new PreparedHttpAgent({ keepAlive: true }),
  'https:': new PreparedHttpsAgent({ keepAlive: true }),
};

/**
 * Opens one connection (TCP, and TLS for https) to the webhook's host, for the call that will be
 * made at the instant. Nothing is sent on it until then; unused, it closes after READY_IDLE_MS.
 * A call to a receiver across a network then skips its handshakes (one to three round trips).
 */
function prepare(target: WebhookTarget): void {
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const key = readyKey(url.protocol, host, port);
  const list = ready.get(key) ?? [];
  if (list.length >= MAX_READY_PER_ORIGIN) return;
  ready.set(key, list);
  const socket = url.protocol === 'https:'
    ? tls.connect({ host, port: Number(port), servername: net.isIP(host) ? undefined : host })
    : net.connect({ host, port: Number(port) });
  const forget = () => {
    const i = list.indexOf(socket);
    if (i >= 0) list.splice(i, 1);
    if (!list.length && ready.get(key) === list) ready.delete(key);
  };
  // A connection that fails or is closed before a call takes it is simply not used.
  socket.on('error', () => {});
  socket.once('close', forget);
  socket.setTimeout(READY_IDLE_MS, () => socket.destroy());
  // Waiting for a call does not keep the process alive; a call refs it again.
  socket.unref();
  list.push(socket);
}

interface Answer {
  status: number;
  retryAfter: string | null;
  text: string;
}

type Sent = { ok: true; answer: Answer } | { ok: false; error: string; permanent?: boolean };

function send(url: URL, headers: Record<string, string>, body: string, signal: AbortSignal, timeoutMs: number): Promise<Sent> {
  const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : null;
  if (!client) return Promise.resolve({ ok: false, permanent: true, error: `webhook URL scheme ${url.protocol} is not http or https` });
  return new Promise<Sent>((resolve) => {
    const fail = (err: Error & { code?: string }) => {
      const timedOut = signal.aborted && (signal.reason as Error | undefined)?.name === 'TimeoutError';
      resolve({ ok: false, error: timedOut ? `no response within ${timeoutMs / 1000} s` : (err.code ?? err.message) });
    };
    const req = client.request(url, {
      method: 'POST', agent: agents[url.protocol as 'http:' | 'https:'], signal,
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < MAX_RESPONSE_BYTES) chunks.push(chunk);
        size += chunk.length;
        // A receiver that streams without end is not read without end.
        if (size > MAX_RESPONSE_BYTES) res.destroy();
      });
      const done = () => resolve({
        ok: true,
        answer: { status: res.statusCode ?? 0, retryAfter: (res.headers['retry-after'] as string | undefined) ?? null, text: Buffer.concat(chunks).toString('utf8', 0, Math.min(size, MAX_RESPONSE_BYTES)) },
      });
      res.on('end', done);
      // The status is in: a body cut short (destroyed above, or the connection dropped) still answers.
      res.on('close', done);
      res.on('error', () => {});
    });
    req.on('error', fail);
    req.end(body);
  });
}

async function post(ctx: ProviderContext<WebhookTarget>): Promise<StepResult> {
  const t = ctx.target;
  let url: URL;
  try {
    url = new URL(t.url);
  } catch {
    return { kind: 'failed', error: 'webhook URL is not a valid URL' };
  }
  const body = webhookBody(ctx);
  const headers: Record<string, string> = {
    ...(t.headers ?? {}),
    'content-type': 'application/json',
    'user-agent': 'shipclock',
    'idempotency-key': idempotencyKey(ctx),
  };
  if (t.secret) headers['x-shipclock-signature'] = signBody(t.secret, body);
  const timeoutMs = (t.timeout_seconds ?? WEBHOOK_DEFAULT_TIMEOUT_SECONDS) * 1000;
  const sent = await send(url, headers, body, deadline(ctx.signal, timeoutMs), timeoutMs);
  const what = ctx.rollback ? 'rollback event' : 'webhook';
  // A deploy the receiver may have acted on (it failed mid-way, or did not answer in time) changed something.
  const maybeActed = !ctx.rollback ? { ref: { changed: true } } : {};
  if (!sent.ok) {
    const timedOut = sent.error.startsWith('no response within');
    return { kind: sent.permanent ? 'failed' : 'retry', error: `${what} request failed: ${sent.error}`, ...(timedOut ? maybeActed : {}) };
  }
  const { status, retryAfter, text } = sent.answer;
  const excerpt = text.slice(0, LOG_EXCERPT_CHARS);
  ctx.log(`POST ${url.origin}${url.pathname}${ctx.rollback ? ' (rollback)' : ''} → ${status}${excerpt ? `: ${excerpt}` : ''}`);
  if (status >= 200 && status < 300) {
    return { kind: 'succeeded', message: `${what} answered ${status}`, ref: ctx.rollback ? { status } : { changed: true } };
  }
  if (status === 429 || status >= 500) {
    return { kind: 'retry', error: `${what} answered ${status}`, afterSeconds: retryAfterSeconds(retryAfter), ...(status >= 500 ? maybeActed : {}) };
  }
  return { kind: 'failed', error: `${what} answered ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}` };
}

export const webhookProvider: Provider<WebhookTarget> = {
  type: 'webhook',
  cancellable: false,
  start: post,
  // A crash mid-request: send it again. The receiver sees the same Idempotency-Key.
  recover: post,
  prepare,
  // The same event again after a crash or a transient failure: the receiver sees the same key.
  rollback: post,
};
