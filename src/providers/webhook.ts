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
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
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
 * Deadlines without a signal per call: calls started within DEADLINE_WINDOW_MS of each other (with
 * the same timeout) share one timer, which ends those still pending this much after their timeout,
 * so a call's timeout is between timeout_seconds and timeout_seconds + 0.25 s. A stop (the parent
 * signal) ends every pending call of that signal through one listener. An AbortSignal per call
 * (AbortSignal.timeout + AbortSignal.any), or one shared by thousands of calls, cost a burst 5–10 %
 * of its CPU in listener bookkeeping (docs/decisions/0010).
 */
const DEADLINE_WINDOW_MS = 250;

interface Pending {
  /** Ends the call now with `reason` (a no-op once it has ended). */
  end(reason: Error): void;
}

interface Window {
  createdAt: number;
  pending: Set<Pending>;
}
const windows = new Map<number, Window>();
const byParent = new WeakMap<AbortSignal, Set<Pending>>();

function timeoutError(ms: number): Error {
  const err = new Error(`no response within ${ms / 1000} s`);
  err.name = 'TimeoutError';
  return err;
}

/** Starts the deadline of `call`; the returned function forgets it (when the call has ended). */
function watch(call: Pending, parent: AbortSignal, timeoutMs: number): () => void {
  const now = performance.now();
  let w = windows.get(timeoutMs);
  if (!w || now - w.createdAt >= DEADLINE_WINDOW_MS) {
    const win: Window = (w = { createdAt: now, pending: new Set() });
    windows.set(timeoutMs, win);
    setTimeout(() => {
      if (windows.get(timeoutMs) === win) windows.delete(timeoutMs);
      const err = timeoutError(timeoutMs);
      for (const c of win.pending) c.end(err);
      win.pending.clear();
    }, timeoutMs + DEADLINE_WINDOW_MS).unref();
  }
  let onStop = byParent.get(parent);
  if (!onStop) {
    const calls: Set<Pending> = (onStop = new Set());
    byParent.set(parent, calls);
    parent.addEventListener('abort', () => {
      const reason = parent.reason instanceof Error ? parent.reason : new Error('stopped');
      for (const c of calls) c.end(reason);
      calls.clear();
    }, { once: true });
  }
  const win = w;
  const stops = onStop;
  win.pending.add(call);
  stops.add(call);
  return () => {
    win.pending.delete(call);
    stops.delete(call);
  };
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

/** The pools' figures by origin (connections, calls running and queued): for metrics and tests. */
export function webhookPoolStats(): Record<string, { connected: number; running: number; queued: number; pending: number }> {
  return agent.stats as Record<string, { connected: number; running: number; queued: number; pending: number }>;
}

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
  const url = parseUrl(target.url);
  if (!url) return;
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

/**
 * One POST through the origin's pool, as an undici dispatch handler rather than `request()`: no
 * body stream, async iterator or abort signal per call (what a 10,000-call burst paid for), and
 * one object per call rather than a closure per callback (a 50,000-call burst holds them all).
 * At most MAX_RESPONSE_BYTES of the answer are read; past that the call is ended (undici closes
 * that connection) and answers with what was read.
 */
class WebhookCall implements Dispatcher.DispatchHandler, Pending {
  private controller?: Dispatcher.DispatchController;
  private ended?: Error;
  private status = 0;
  private retryAfter: string | null = null;
  private chunks: Buffer[] = [];
  private size = 0;
  private settled = false;
  private forget: () => void = () => {};

  constructor(private readonly resolve: (sent: Sent) => void) {}

  start(url: URL, headers: Record<string, string>, body: string, parent: AbortSignal, timeoutMs: number): void {
    this.forget = watch(this, parent, timeoutMs);
    try {
      agent.dispatch({ origin: url.origin, path: url.pathname + url.search, method: 'POST', headers, body }, this);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  end(reason: Error): void {
    if (this.settled) return;
    this.ended = reason;
    this.controller?.abort(reason);
    this.fail(reason);
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c;
    // Ended while it waited in the pool's queue: nothing is sent.
    if (this.ended) c.abort(this.ended);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, h: Record<string, string | string[] | undefined>): void {
    this.status = statusCode;
    const ra = h['retry-after'];
    this.retryAfter = (Array.isArray(ra) ? ra[0] : ra) ?? null;
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.size < MAX_RESPONSE_BYTES) this.chunks.push(chunk);
    this.size += chunk.length;
    // A receiver that streams without end is not read without end.
    if (this.size > MAX_RESPONSE_BYTES) {
      this.answered();
      c.abort(new Error('answer larger than the cap'));
    }
  }

  onResponseEnd(): void {
    this.answered();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }

  private answered(): void {
    const text = this.chunks.length ? Buffer.concat(this.chunks).toString('utf8', 0, Math.min(this.size, MAX_RESPONSE_BYTES)) : '';
    this.finish({ ok: true, answer: { status: this.status, retryAfter: this.retryAfter, text } });
  }

  private fail(err: Error & { code?: string }): void {
    // The status is in: a body cut short (the connection dropped, the cap reached) still answers.
    if (this.status) return this.answered();
    this.finish({ ok: false, error: err.name === 'TimeoutError' ? err.message : (err.code ?? err.message) });
  }

  private finish(sent: Sent): void {
    if (this.settled) return;
    this.settled = true;
    this.chunks = [];
    this.forget();
    this.resolve(sent);
  }
}

/** Sends one POST; never rejects. */
function send(url: URL, headers: Record<string, string>, body: string, parent: AbortSignal, timeoutMs: number): Promise<Sent> {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return Promise.resolve({ ok: false, permanent: true, error: `webhook URL scheme ${url.protocol} is not http or https` });
  }
  if (parent.aborted) return Promise.resolve({ ok: false, error: 'stopped before the call was made' });
  headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise<Sent>((resolve) => new WebhookCall(resolve).start(url, headers, body, parent, timeoutMs));
}

/** Parsed webhook URLs by their text (a burst to one receiver parses its URL once); at most URL_CACHE_SIZE kept. */
const URL_CACHE_SIZE = 1000;
const urls = new Map<string, URL>();
/** What a log line names of a parsed URL (origin and path; never its query, which may hold a token). */
const logNames = new WeakMap<URL, string>();

function parseUrl(text: string): URL | undefined {
  let url = urls.get(text);
  if (url) return url;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (urls.size >= URL_CACHE_SIZE) urls.clear();
  urls.set(text, url);
  logNames.set(url, `${url.origin}${url.pathname}`);
  return url;
}

async function post(ctx: ProviderContext<WebhookTarget>): Promise<StepResult> {
  const t = ctx.target;
  const url = parseUrl(t.url);
  if (!url) return { kind: 'failed', error: 'webhook URL is not a valid URL' };
  const body = webhookBody(ctx);
  const headers: Record<string, string> = {
    ...(t.headers ?? {}),
    'content-type': 'application/json',
    'user-agent': 'shipclock',
    'idempotency-key': idempotencyKey(ctx),
  };
  if (t.secret) headers['x-shipclock-signature'] = signBody(t.secret, body);
  const timeoutMs = (t.timeout_seconds ?? WEBHOOK_DEFAULT_TIMEOUT_SECONDS) * 1000;
  const sent = await send(url, headers, body, ctx.signal, timeoutMs);
  const what = ctx.rollback ? 'rollback event' : 'webhook';
  // A deploy the receiver may have acted on (it failed mid-way, or did not answer in time) changed something.
  const maybeActed = !ctx.rollback ? { ref: { changed: true } } : {};
  if (!sent.ok) {
    const timedOut = sent.error.startsWith('no response within');
    return { kind: sent.permanent ? 'failed' : 'retry', error: `${what} request failed: ${sent.error}`, ...(timedOut ? maybeActed : {}) };
  }
  const { status, retryAfter, text } = sent.answer;
  const excerpt = text.slice(0, LOG_EXCERPT_CHARS);
  ctx.log(`POST ${logNames.get(url)}${ctx.rollback ? ' (rollback)' : ''} → ${status}${excerpt ? `: ${excerpt}` : ''}`);
  if (status >= 200 && status < 300) {
    return { kind: 'succeeded', message: `${what} answered ${status}`, ref: ctx.rollback ? { status } : { changed: true } };
  }
  if (status === 429 || status >= 500) {
    return { kind: 'retry', error: `${what} answered ${status}`, afterSeconds: retryAfterSeconds(retryAfter), ...(status >= 500 ? maybeActed : {}) };
  }
  return { kind: 'failed', error: `${what} answered ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}` };
}

/**
 * A burst's calls to one origin go at most twice its connection cap at a time: enough that a
 * connection freed always has the next call waiting, and 50,000 calls are never all queued (and
 * held in memory) at once.
 */
function lane(target: WebhookTarget): { key: string; width: number } | undefined {
  const url = parseUrl(target.url);
  if (!url) return undefined;
  return { key: originKey(url.protocol, url.hostname, url.port), width: 2 * maxConnections };
}

export const webhookProvider: Provider<WebhookTarget> = {
  type: 'webhook',
  cancellable: false,
  start: post,
  // A crash mid-request: send it again. The receiver sees the same Idempotency-Key.
  recover: post,
  prepare,
  lane,
  // The same event again after a crash or a transient failure: the receiver sees the same key.
  rollback: post,
};
