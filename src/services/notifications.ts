/**
 * Notification subscriptions of a team (owners manage them). The signing secret is sealed with
 * the SecretBox and never returned.
 */
import { recordAudit } from '../audit/record.ts';
import { NotFoundError, ValidationError } from '../core/errors.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import {
  deleteSubscription,
  insertSubscription,
  listSubscriptions,
  type NotifyEvent,
  type NotifyFormat,
  type SubscriptionRow,
  updateSubscription,
} from '../db/sql/notifications.ts';
import type { SecretBox } from '../secrets/box.ts';
import type { User } from './auth.ts';
import { decodeCursor, page } from './cursor.ts';

export interface NotificationInput {
  url: string;
  events: NotifyEvent[];
  format?: NotifyFormat;
  secret?: string;
  /** Remind this long before each scheduled deployment of the team (REMIND_MIN_SECONDS–REMIND_MAX_SECONDS). */
  remind_before_seconds?: number | null;
}

/** The reminder lead's limits: one minute to seven days (also a CHECK in 012_reminders.sql). */
export const REMIND_MIN_SECONDS = 60;
export const REMIND_MAX_SECONDS = 7 * 86_400;

/** 422 naming the field; the schema already bounds it, this keeps the service safe for other callers. */
function checkLead(v: number | null | undefined): void {
  if (v === undefined || v === null) return;
  if (!Number.isInteger(v) || v < REMIND_MIN_SECONDS || v > REMIND_MAX_SECONDS) {
    throw new ValidationError('invalid_remind_before', `remind_before_seconds must be a whole number of seconds from ${REMIND_MIN_SECONDS} (1 minute) to ${REMIND_MAX_SECONDS} (7 days), or null for no reminders`, 'remind_before_seconds');
  }
}

function toApi(r: SubscriptionRow) {
  return { id: r.id, url: r.url, events: r.events, format: r.format, has_secret: r.has_secret, remind_before_seconds: r.remind_before_seconds, created_at: r.created_at.toISOString() };
}

/** Host only: a Slack incoming-webhook URL is itself a credential and must not reach the audit log. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

export async function createNotification(pool: Pool, box: SecretBox, actor: User, input: NotificationInput) {
  const events = [...new Set(input.events)];
  const format = input.format ?? 'json';
  checkLead(input.remind_before_seconds);
  return inTransaction(pool, async (c) => {
    const row = await insertSubscription(c, {
      teamId: actor.team_id,
      url: input.url,
      events,
      format,
      secret: input.secret ? box.seal(input.secret) : null,
      createdBy: actor.id,
      remindBeforeSeconds: input.remind_before_seconds ?? null,
    });
    await recordAudit(c, {
      teamId: actor.team_id, actorId: actor.id, action: 'notification.create', targetId: row.id,
      details: { host: hostOf(input.url), events, format, signed: Boolean(input.secret), remind_before_seconds: input.remind_before_seconds ?? null },
    });
    return toApi(row);
  });
}

export async function listNotifications(pool: Pool, actor: User, limit: number, cursor?: string) {
  const after = decodeCursor<[string, string]>(cursor, (v) => Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'string'));
  const rows = await listSubscriptions(pool, actor.team_id, { after: after ? { createdAt: after[0], id: after[1] } : null, limit: limit + 1 });
  const p = page(rows, limit, (r) => [r.cursor_at, r.id]);
  return { result: p.result.map(toApi), next_cursor: p.next_cursor };
}

export interface NotificationChange {
  url?: string;
  events?: NotifyEvent[];
  format?: NotifyFormat;
  /** A new signing secret, or null to stop signing. */
  secret?: string | null;
  /** A new reminder lead, or null to stop reminders. */
  remind_before_seconds?: number | null;
}

/** Changes a subscription in place; deliveries still queued follow the change. */
export async function updateNotification(pool: Pool, box: SecretBox, actor: User, id: string, input: NotificationChange) {
  const events = input.events ? [...new Set(input.events)] : undefined;
  checkLead(input.remind_before_seconds);
  return inTransaction(pool, async (c) => {
    const row = await updateSubscription(c, actor.team_id, id, {
      remindBeforeSeconds: input.remind_before_seconds,
      url: input.url,
      events,
      format: input.format,
      secret: input.secret === undefined ? undefined : input.secret === null ? null : box.seal(input.secret),
    });
    if (!row) throw new NotFoundError('notification');
    await recordAudit(c, {
      teamId: actor.team_id, actorId: actor.id, action: 'notification.update', targetId: id,
      details: {
        ...(input.url !== undefined ? { host: hostOf(input.url) } : {}),
        ...(events ? { events } : {}),
        ...(input.format ? { format: input.format } : {}),
        ...(input.secret !== undefined ? { signed: input.secret !== null } : {}),
        ...(input.remind_before_seconds !== undefined ? { remind_before_seconds: input.remind_before_seconds } : {}),
      },
    });
    return toApi(row);
  });
}

export async function deleteNotification(pool: Pool, actor: User, id: string): Promise<void> {
  await inTransaction(pool, async (c) => {
    if (!(await deleteSubscription(c, actor.team_id, id))) throw new NotFoundError('notification');
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'notification.delete', targetId: id, details: {} });
  });
}
