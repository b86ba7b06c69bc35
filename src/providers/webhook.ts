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
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { Agent, buildConnector } from 'undici';
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

/** Connections per origin (scheme, host, port) per process unless configureWebhooks says otherwise. */
export const WEBHOOK_DEFAULT_CONNECTIONS = 128;
/** A connection opened ahead and not taken within this long is closed. */
const READY_IDLE_MS = 10_000;

type Scheme = 'http:' | 'https:';

function originKey(scheme: string, host: string, port: number | string): string {
  const p = String(port || (scheme === 'https:' ? 443 : 80));
  return `${scheme}//${host.replace(/^\[|\]$/g, '')}:${p}`;
}

/**
 * One bounded keep-alive pool per origin, shared by every webhook call of the process: at most
 * `connections` sockets to one receiver, reused across deployments; calls beyond that wait for a
 * free one (in undici's queue) instead of opening a socket each. 10,000 webhooks to one receiver
 * are then 128 connections, not 10,000 (issue 14: the receiver and the kernel paid for every
 * extra socket, docs/decisions/0010).
 *
 * Every socket a pool uses comes through `connect` below, which hands out a connection opened
 * ahead by prepare() when there is a live one for that origin (a plain one never for https, a TLS
 * one never for http: the key holds the scheme), and otherwise opens one as undici would.
 */
interface OriginState {
  /** Connected sockets opened ahead, not yet taken by the pool. */
  ready: Socket[];
  /** Sockets the pool holds (taken from ready or opened by it), until they close. */
  live: number;
  /** Sockets being opened ahead (not connected yet). */
  opening: number;
}
const origins = new Map<string, OriginState>();
/** The 'close' listener that removes a socket opened ahead from its ready list, by socket. */
const forgetters = new WeakMap<Socket, () => void>();
let maxConnections = WEBHOOK_DEFAULT_CONNECTIONS;
const freshConnect = buildConnector({ timeout: 10_000 });

function originState(key: string): OriginState {
  let o = origins.get(key);
  if (!o) origins.set(key, (o = { ready: [], live: 0, opening: 0 }));
  return o;
}

function track(o: OriginState, socket: Socket): void {
  o.live++;
  socket.once('close', () => { o.live--; });
}

function takeReady(o: OriginState): Socket | undefined {
  while (o.ready.length) {
    const socket = o.ready.pop()!;
    // One the server has closed (or begun to) is not used: the call would meet a reset.
    if (!socket.destroyed && !socket.readableEnded && !socket.writableEnded) {
      socket.setTimeout(0);
      socket.removeAllListeners('timeout');
      const forget = forgetters.get(socket);
      if (forget) socket.off('close', forget);
      socket.ref();
      return socket;
    }
  }
  return undefined;
}

const connect: buildConnector.connector = (options, callback) => {
  const o = originState(originKey(options.protocol, options.hostname, options.port));
  const socket = takeReady(o);
  if (socket) {
    track(o, socket);
    // Never synchronously: undici's client is still inside its connect call, and a callback
    // made there leaves the request unsent for ever.
    return process.nextTick(callback, null, socket);
  }
  freshConnect(options, (...args) => {
    if (args[1]) track(o, args[1]);
    callback(...args);
  });
};

function makeAgent(connections: number): Agent {
  return new Agent({
    connections,
    connect,
    // Idle connections live a while between bursts; undici closes one a little before the
    // server's own Keep-Alive timeout hint, so a call rarely meets a connection being closed
    // (if it does, that is a network error: retried).
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}
let agent = makeAgent(maxConnections);

/**
 * Sets the per-origin connection cap (SHIPCLOCK_WEBHOOK_CONNECTIONS, default 128). Called once at
 * start, before any call; the previous pool's connections are closed.
 */
export function configureWebhooks(opts: { connections: number }): void {
  if (opts.connections === maxConnections) return;
  maxConnections = opts.connections;
  const old = agent;
  agent = makeAgent(maxConnections);
  void old.close().catch(() => {});
}

/**
 * Opens one connection (TCP, and TLS for https) to the webhook's origin ahead of the instant, as
 * long as the origin's pool plus what is already opened ahead stays under the cap: a burst of N
 * calls to one receiver opens min(N, cap) connections before its instant and none at it. Nothing
 * is sent on them until then; unused, one closes after READY_IDLE_MS. A call across a network
 * then skips its handshakes (one to three round trips).
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
  const o = originState(originKey(url.protocol, host, port));
  if (o.live + o.ready.length + o.opening >= maxConnections) return;
  o.opening++;
  const tlsCall = url.protocol === 'https:';
  const socket = tlsCall
    ? tls.connect({ host, port: Number(port), servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] })
    : net.connect({ host, port: Number(port) });
  let counted = true;
  const settle = () => { if (counted) { counted = false; o.opening--; } };
  // Handed to the pool only once connected (and for TLS, verified): undici gets what its own
  // connector would give it.
  socket.once(tlsCall ? 'secureConnect' : 'connect', () => {
    settle();
    if (!socket.destroyed) o.ready.push(socket);
  });
  // A connection that fails or is closed before a call takes it is simply not used.
  socket.on('error', () => {});
  const forget = () => {
    settle();
    const i = o.ready.indexOf(socket);
    if (i >= 0) o.ready.splice(i, 1);
  };
  forgetters.set(socket, forget);
  socket.once('close', forget);
  socket.setTimeout(READY_IDLE_MS, () => socket.destroy());
  // Waiting for a call does not keep the process alive; a call refs it again.
  socket.unref();
}

interface Answer {
  status: number;
  retryAfter: string | null;
  text: string;
}

type Sent = { ok: true; answer: Answer } | { ok: false; error: string; permanent?: boolean };

async function send(url: URL, headers: Record<string, string>, body: string, signal: AbortSignal, timeoutMs: number): Promise<Sent> {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, permanent: true, error: `webhook URL scheme ${url.protocol} is not http or https` };
  try {
    const res = await agent.request({
      origin: url.origin, path: url.pathname + url.search, method: 'POST', signal,
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, body,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (size < MAX_RESPONSE_BYTES) chunks.push(chunk);
        size += chunk.length;
        // A receiver that streams without end is not read without end: leaving the loop
        // destroys the body, and undici closes that connection instead of reusing it.
        if (size > MAX_RESPONSE_BYTES) break;
      }
    } catch {
      // The status is in: a body cut short (the connection dropped) still answers.
    }
    const ra = res.headers['retry-after'];
    return {
      ok: true,
      answer: { status: res.statusCode, retryAfter: (Array.isArray(ra) ? ra[0] : ra) ?? null, text: Buffer.concat(chunks).toString('utf8', 0, Math.min(size, MAX_RESPONSE_BYTES)) },
    };
  } catch (e) {
    const err = e as Error & { code?: string };
    const timedOut = signal.aborted && (signal.reason as Error | undefined)?.name === 'TimeoutError';
    return { ok: false, error: timedOut ? `no response within ${timeoutMs / 1000} s` : (err.code ?? err.message) };
  }
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
