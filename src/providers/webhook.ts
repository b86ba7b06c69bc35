/**
 * `webhook` target: POST {deployment_id, app_id, app_name, run_at, attempt} to the URL.
 * Every attempt of one deployment carries the same `Idempotency-Key` (the deployment id), so a
 * receiver can drop a repeat; with a secret, `X-Shipclock-Signature: sha256=<hex HMAC-SHA256>`
 * signs the raw body. 2xx succeeds; network errors, timeouts, 5xx and 429 are transient;
 * any other status fails at once. Redirects are not followed.
 */
import { createHmac } from 'node:crypto';
import { setMaxListeners } from 'node:events';
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
  return JSON.stringify({ deployment_id: d.id, app_id: d.appId, app_name: d.appName, run_at: d.runAt.toISOString(), attempt: d.attempt });
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

async function post(ctx: ProviderContext<WebhookTarget>): Promise<StepResult> {
  const t = ctx.target;
  const body = webhookBody(ctx);
  const headers: Record<string, string> = {
    ...(t.headers ?? {}),
    'content-type': 'application/json',
    'user-agent': 'shipclock',
    'idempotency-key': ctx.deployment.id,
  };
  if (t.secret) headers['x-shipclock-signature'] = signBody(t.secret, body);
  const timeoutMs = (t.timeout_seconds ?? WEBHOOK_DEFAULT_TIMEOUT_SECONDS) * 1000;
  let res: Response;
  try {
    res = await fetch(t.url, { method: 'POST', headers, body, redirect: 'manual', signal: deadline(ctx.signal, timeoutMs) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no response within ${timeoutMs / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { kind: 'retry', error: `webhook request failed: ${why}` };
  }
  // Drain the body so the connection is reused; keep a short excerpt for the log.
  const text = (await res.text().catch(() => '')).slice(0, 500);
  const url = new URL(t.url);
  ctx.log(`POST ${url.origin}${url.pathname} → ${res.status}${text ? `: ${text}` : ''}`);
  if (res.status >= 200 && res.status < 300) return { kind: 'succeeded', message: `webhook answered ${res.status}` };
  if (res.status === 429 || res.status >= 500) {
    return { kind: 'retry', error: `webhook answered ${res.status}`, afterSeconds: retryAfterSeconds(res.headers.get('retry-after')) };
  }
  return { kind: 'failed', error: `webhook answered ${res.status}${res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : ''}` };
}

export const webhookProvider: Provider<WebhookTarget> = {
  type: 'webhook',
  cancellable: false,
  start: post,
  // A crash mid-request: send it again. The receiver sees the same Idempotency-Key.
  recover: post,
};
