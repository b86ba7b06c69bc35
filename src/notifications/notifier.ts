/**
 * The notification sender: claims due rows of the delivery outbox (FOR UPDATE SKIP LOCKED, so
 * any number of processes can run it at once, each row sent by one of them), POSTs them, and
 * records the outcome. Failures are retried with exponential backoff and then given up; nothing
 * here ever touches a deployment, and no error escapes the loop.
 */
import type pg from 'pg';
import type { Logger } from '../observability/logger.ts';
import { notificationDeliveries } from '../observability/metrics.ts';
import type { SecretBox } from '../secrets/box.ts';
// The same `sha256=<hex HMAC-SHA256 of the raw body>` scheme as deploy webhooks.
import { signBody } from '../providers/webhook.ts';
import { claimDeliveries, markAttemptFailed, markDelivered, pruneDeliveries, type ClaimedDelivery } from '../db/sql/notifications.ts';
import { dropStaleReminderDeliveries } from '../db/sql/reminders.ts';
import { LINK_ACTIONS, type LinkAction } from './links.ts';

export interface NotifierOptions {
  pool: pg.Pool;
  logger: Logger;
  box: SecretBox;
  /** How often to look for due deliveries. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Attempts per delivery before giving up. Default 5. */
  maxAttempts?: number;
  /** First retry delay; doubles each attempt (10 s, 20 s, 40 s, 80 s). Default 10 s. */
  backoffSeconds?: number;
  /** Per-request timeout. Default 10 000 ms. */
  timeoutMs?: number;
  /** Deliveries claimed per round. Default 20. */
  batchSize?: number;
  /** Finished deliveries are deleted after this many days. Default 30. */
  keepDays?: number;
}

export interface Notifier {
  /** Looks for due deliveries now rather than at the next poll (a reminder was just queued). */
  wake(): void;
  stop(): Promise<void>;
}

/** The body a delivery sends: the stored payload, or a Slack-compatible message. */
export function renderBody(format: 'json' | 'slack', payload: Record<string, unknown>): string {
  if (format === 'json') return JSON.stringify(payload);
  if (payload.event === 'deployment.reminder') return renderSlackReminder(payload);
  const app = String(payload.app_name ?? payload.app_id);
  const runAt = payload.run_at ? ` (scheduled for ${new Date(String(payload.run_at)).toISOString().replace('.000Z', 'Z')}${payload.timezone ? `, ${payload.timezone}` : ''})` : '';
  let text: string;
  const approvalEvent = String(payload.event ?? '').replace(/^deployment\./, '');
  if (approvalEvent === 'approval_requested' || approvalEvent === 'approved' || approvalEvent === 'rejected') {
    // The approval events (src/services/approvals.ts): what is asked or decided, by whom, why.
    const a = (payload.approval ?? {}) as { required?: number; approvals?: number };
    const icon = { approval_requested: ':raising_hand:', approved: ':heavy_check_mark:', rejected: ':no_entry:' }[approvalEvent];
    const what = approvalEvent === 'approval_requested' ? `needs ${a.required ?? 1} approval(s)`
      : approvalEvent === 'approved' ? `approved${payload.by ? ` by ${String(payload.by)}` : ''} (${a.approvals ?? 0} of ${a.required ?? 1})`
      : `rejected${payload.by ? ` by ${String(payload.by)}` : ''}`;
    const comment = payload.comment ? `\n> ${String(payload.comment).slice(0, 500)}` : '';
    text = `${icon} Deployment of *${app}* ${what}${runAt}${comment}`;
  } else if (String(payload.state).startsWith('rollback_')) {
    // The end of a rollback (rollback_failed is loud: what ran before was not restored).
    const state = String(payload.state);
    const icon = state === 'rollback_succeeded' ? ':leftwards_arrow_with_hook:' : ':rotating_light:';
    const error = payload.error ? `\n> ${String(payload.error).slice(0, 500)}` : '';
    text = `${icon} Rollback of the deployment of *${app}* ${state.slice('rollback_'.length).toUpperCase()}${runAt}${error}`;
  } else {
    const icon = { succeeded: ':white_check_mark:', failed: ':x:', missed: ':hourglass:', skipped: ':fast_forward:' }[String(payload.state)] ?? ':information_source:';
    const error = payload.error ? `\n> ${String(payload.error).slice(0, 500)}` : '';
    text = `${icon} Deployment of *${app}* ${payload.state}${runAt}${error}`;
  }
  return JSON.stringify({
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `shipclock deployment \`${payload.deployment_id}\`` }] },
    ],
  });
}

/** A reminder for Slack: what runs when, and its links as Block Kit URL buttons (or why there are none). */
export function renderSlackReminder(p: Record<string, unknown>): string {
  const app = String(p.app_name ?? p.app_id);
  const runAt = new Date(String(p.run_at)).toISOString().replace('.000Z', 'Z');
  const l = p.local as Record<string, number> | undefined;
  const pad = (n: number) => String(n).padStart(2, '0');
  const local = l ? ` (${l.year}-${pad(l.month)}-${pad(l.day)} ${pad(l.hour)}:${pad(l.minute)} ${String(p.timezone)})` : '';
  const dep = p.dependency as Record<string, unknown> | null;
  const depText = dep ? `\nIts dependency *${String(dep.app_name)}* deploys first, at ${String(dep.run_at)}.` : '';
  const text = `:alarm_clock: Reminder: *${app}* deploys at ${runAt}${local}.${depText}`;
  const links = p.links as Record<string, { label: string; url: string }> | null;
  const blocks: unknown[] = [{ type: 'section', text: { type: 'mrkdwn', text } }];
  if (links && Object.keys(links).length) {
    blocks.push({
      type: 'actions',
      // In the order of LINK_ACTIONS: a jsonb payload does not keep its keys' order.
      elements: Object.entries(links).sort(([a], [b]) => LINK_ACTIONS.indexOf(a as LinkAction) - LINK_ACTIONS.indexOf(b as LinkAction)).map(([action, link]) => ({
        type: 'button', action_id: action, text: { type: 'plain_text', text: link.label }, url: link.url,
        ...(action === 'approve' ? { style: 'primary' } : {}),
      })),
    });
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `Each link asks you to confirm; one use per reminder, valid until ${String(p.links_expire_at)}. Deployment \`${String(p.deployment_id)}\`` }] });
  } else {
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `${String(p.links_unavailable ?? 'No links.')} Deployment \`${String(p.deployment_id)}\`` }] });
  }
  return JSON.stringify({ text, blocks });
}

/** 4xx answers other than these mean the receiver will never take it: do not retry. */
const RETRYABLE_4XX = new Set([408, 409, 425, 429]);

export function startNotifier(opts: NotifierOptions): Notifier {
  const pollIntervalMs = opts.pollIntervalMs ?? 1000;
  const maxAttempts = opts.maxAttempts ?? 5;
  const backoffSeconds = opts.backoffSeconds ?? 10;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const batchSize = opts.batchSize ?? 20;
  const log = opts.logger.child({ component: 'notifier' });
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function deliver(d: ClaimedDelivery): Promise<void> {
    const body = renderBody(d.format, d.payload);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'shipclock-notifier',
      'x-shipclock-event': String(d.payload.event ?? d.event),
      'x-shipclock-delivery': d.id,
      'idempotency-key': `notification-${d.id}`,
    };
    const fields = { delivery_id: d.id, deployment_id: d.payload.deployment_id, attempt: d.attempts, host: hostOf(d.url) };
    let status: number | null = null;
    let error: string;
    try {
      if (d.secret) headers['x-shipclock-signature'] = signBody(opts.box.open(d.secret), body);
      const res = await fetch(d.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(timeoutMs)]),
      });
      status = res.status;
      await res.body?.cancel().catch(() => {});
      if (res.status >= 200 && res.status < 300) {
        await markDelivered(opts.pool, d.id, res.status);
        notificationDeliveries.inc({ outcome: 'delivered' });
        log.debug(fields, 'notification delivered');
        return;
      }
      error = `receiver answered HTTP ${res.status}`;
    } catch (err) {
      error = stopping.signal.aborted ? 'interrupted by shutdown' : describe(err).split(d.url).join('<url>');
    }
    const permanent = status !== null && status >= 400 && status < 500 && !RETRYABLE_4XX.has(status);
    // A delivery cut short by shutdown does not spend an attempt's backoff: retry it right away.
    const retryIn = stopping.signal.aborted ? 0 : permanent || d.attempts >= maxAttempts ? null : backoffSeconds * 2 ** (d.attempts - 1);
    await markAttemptFailed(opts.pool, d.id, { error, status, retryInSeconds: retryIn });
    notificationDeliveries.inc({ outcome: retryIn === null ? 'failed' : 'retry' });
    log.warn({ ...fields, status, error, retry_in_seconds: retryIn }, retryIn === null ? 'notification given up' : 'notification failed, will retry');
  }

  let lastPrune = 0;
  async function round(): Promise<void> {
    if (Date.now() - lastPrune > 3600_000) {
      lastPrune = Date.now();
      const pruned = await pruneDeliveries(opts.pool, opts.keepDays ?? 30);
      if (pruned) log.debug({ pruned }, 'old notification deliveries deleted');
    }
    const stale = await dropStaleReminderDeliveries(opts.pool);
    if (stale) log.info({ count: stale }, 'reminders not sent: their deployment was rescheduled or ended');
    for (;;) {
      if (stopping.signal.aborted) return;
      const batch = await claimDeliveries(opts.pool, batchSize, Math.ceil(timeoutMs / 1000) + 30);
      if (batch.length === 0) return;
      await Promise.all(batch.map((d) => deliver(d).catch((err) => log.error({ err, delivery_id: d.id }, 'notification bookkeeping failed'))));
      if (batch.length < batchSize) return;
    }
  }

  function schedule(): void {
    if (stopping.signal.aborted) return;
    timer = setTimeout(() => {
      running = round()
        .catch((err) => log.warn({ err: describe(err) }, 'notifier round failed; retrying'))
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, pollIntervalMs);
    timer.unref();
  }

  schedule();
  return {
    wake() {
      // A round under way will find it (it loops until a short batch); otherwise start one now.
      if (stopping.signal.aborted || running) return;
      if (timer) clearTimeout(timer);
      running = round()
        .catch((err) => log.warn({ err: describe(err) }, 'notifier round failed; retrying'))
        .finally(() => {
          running = undefined;
          schedule();
        });
    },
    async stop() {
      stopping.abort();
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

function hostOf(url: string): string {
  // Only the host: a Slack incoming-webhook URL is itself a credential.
  try {
    return new URL(url).host;
  } catch {
    return '?';
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return (err.name === 'TimeoutError' ? 'receiver did not answer in time' : err.message) + cause;
  }
  return String(err);
}
