/**
 * Reminders: a subscription with `remind_before_seconds` gets a `reminder` event that long
 * before each scheduled deployment of its team (a chain: before its dependency's instant), with
 * signed one-click links (./links.ts, acted on by src/services/reminder-links.ts).
 *
 * Timing (decision 0012): every process polls once a second for reminders due within the next
 * few seconds (a query on the database clock) and sets a precise local timer for each, corrected
 * for this machine's offset from the database clock. When a timer fires, the process inserts the
 * reminder row; its primary key (subscription, deployment, instant) lets exactly one process
 * win, and the winner queues the delivery in the notification outbox in the same transaction and
 * wakes the local notifier. The insert re-checks that the deployment is still scheduled at that
 * instant, so a rescheduled or canceled one is never reminded for the old instant; its new
 * instant is a new key, reminded at its own lead. A reminder whose moment already passed (the
 * deployment was scheduled with less than the lead left, the subscription was set up since, or
 * no process was running) is sent at once, as long as the chain has not started.
 */
import { DbClock } from '../scheduler/clock.ts';
import type { Pool } from '../db/pool.ts';
import { inTransaction } from '../db/pool.ts';
import { dueReminders, type DueReminder, insertReminder, insertReminderDelivery, reminderSubject, type ReminderSubject } from '../db/sql/reminders.ts';
import type { Logger } from '../observability/logger.ts';
import type { SecretBox } from '../secrets/box.ts';
import { reminderSeams } from '../services/reminder-seams.ts';
import { ACTION_LABELS, type LinkAction, LinkSigner } from './links.ts';

export const POSTPONE_SECONDS: Partial<Record<LinkAction, number>> = { postpone_15m: 900, postpone_1h: 3600 };
export const NO_LINKS_REASON = 'SHIPCLOCK_PUBLIC_URL is not set on the shipclock server, so this reminder carries no postpone or approve links';

export interface ReminderRunnerOptions {
  pool: Pool;
  logger: Logger;
  box: SecretBox;
  /** The links' base; undefined: reminders carry no links and say why. */
  publicUrl: string | undefined;
  /** How often to look for reminders about to be due. Default 1000 ms. */
  pollIntervalMs?: number;
  /** How far ahead a poll sets timers. Default 3 s: a timer is set at least two polls before its moment. */
  lookaheadMs?: number;
  /** Called after a reminder's delivery is queued (wakes the notifier, so it goes out now rather than at its next poll). */
  onQueued?: () => void;
}

export class ReminderRunner {
  private readonly log: Logger;
  private readonly clock: DbClock;
  private readonly signer: LinkSigner;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private poller: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight = new Set<Promise<unknown>>();

  constructor(private readonly opts: ReminderRunnerOptions) {
    this.log = opts.logger.child({ component: 'reminders' });
    this.clock = new DbClock(this.log);
    this.signer = new LinkSigner(opts.box);
  }

  start(): void {
    const every = this.opts.pollIntervalMs ?? 1000;
    const tick = () => {
      if (this.stopped) return;
      this.track(this.poll().catch((err) => this.log.warn({ err: (err as Error).message }, 'reminder poll failed; retrying')))
        .finally(() => {
          if (!this.stopped) this.poller = setTimeout(tick, every);
        });
    };
    this.poller = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poller) clearTimeout(this.poller);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    p.finally(() => this.inFlight.delete(p)).catch(() => {});
    return p;
  }

  private async poll(): Promise<void> {
    const sentAt = this.clock.localNow();
    const due = await dueReminders(this.opts.pool, (this.opts.lookaheadMs ?? 3000) / 1000, 500);
    const receivedAt = this.clock.localNow();
    if (due.length) this.clock.measure(due[0].db_now, sentAt, receivedAt);
    for (const r of due) {
      const key = `${r.subscription_id}|${r.deployment_id}|${r.run_at.getTime()}`;
      if (this.timers.has(key)) continue;
      const delay = Math.max(0, r.remind_at.getTime() - this.clock.dbNow());
      const timer = setTimeout(() => {
        this.track(this.fire(r).catch((err) => this.log.warn({ err: (err as Error).message, deployment_id: r.deployment_id }, 'reminder not queued; the next poll tries again'))
          .finally(() => this.timers.delete(key)));
      }, delay);
      this.timers.set(key, timer);
    }
  }

  /** At the reminder's moment: queue it unless another process did, or it no longer applies. */
  private async fire(r: DueReminder): Promise<void> {
    if (this.stopped) return;
    const queued = await inTransaction(this.opts.pool, async (c) => {
      const row = await insertReminder(c, { subscriptionId: r.subscription_id, deploymentId: r.deployment_id, runAt: r.run_at });
      if (!row) return null;
      const subject = await reminderSubject(c, r.deployment_id, r.subscription_id);
      if (!subject) return null;
      const payload = await this.payload(c, subject, r.subscription_id, row.remind_at, row.queued_at);
      await insertReminderDelivery(c, { subscriptionId: r.subscription_id, teamId: subject.team_id, deploymentId: r.deployment_id, payload });
      return { row, links: payload.links ? Object.keys(payload.links as object) : [] };
    });
    if (!queued) return;
    this.opts.onQueued?.();
    // Never the links themselves: they are bearer credentials for their action.
    this.log.info({
      deployment_id: r.deployment_id, subscription_id: r.subscription_id, remind_at: queued.row.remind_at.toISOString(),
      late_ms: queued.row.queued_at.getTime() - queued.row.remind_at.getTime(), links: queued.links,
    }, 'reminder queued');
  }

  private async payload(
    c: Parameters<typeof reminderSubject>[0], s: ReminderSubject, subscriptionId: string, remindAt: Date, queuedAt: Date,
  ): Promise<Record<string, unknown>> {
    const chainStart = s.dependency_run_at && s.dependency_run_at < s.run_at ? s.dependency_run_at : s.run_at;
    const actions: LinkAction[] = ['postpone_15m', 'postpone_1h'];
    const seams = reminderSeams();
    const appIds = s.dependency_app_id ? [s.app_id, s.dependency_app_id] : [s.app_id];
    const nextAllowed = await seams.nextAllowedAt(c, s.team_id, appIds, s.run_at);
    if (nextAllowed && nextAllowed.getTime() > s.run_at.getTime()) actions.push('postpone_next_allowed');
    if (await seams.approvalPending(c, s.deployment_id)) actions.push('approve');
    let links: Record<string, { label: string; url: string }> | null = null;
    if (this.opts.publicUrl) {
      // One nonce for the reminder: the first link used spends them all (one decision per reminder).
      const nonce = LinkSigner.newNonce();
      links = {};
      for (const action of actions) {
        const token = this.signer.sign({
          deploymentId: s.deployment_id, subscriptionId, action, runAtMs: s.run_at.getTime(), expiresAtMs: chainStart.getTime(), nonce,
        });
        links[action] = { label: ACTION_LABELS[action], url: `${this.opts.publicUrl}/r/${token}` };
      }
    }
    return {
      event: 'deployment.reminder',
      deployment_id: s.deployment_id,
      app_id: s.app_id,
      app_name: s.app_name,
      state: 'scheduled',
      run_at: s.run_at.toISOString(),
      timezone: s.timezone,
      local: { year: s.local_year, month: s.local_month, day: s.local_day, hour: s.local_hour, minute: s.local_minute, second: s.local_second },
      utc_offset: s.utc_offset,
      dependency: s.dependency_id
        ? { deployment_id: s.dependency_id, app_id: s.dependency_app_id, app_name: s.dependency_app_name, run_at: s.dependency_run_at?.toISOString() }
        : null,
      remind_before_seconds: s.remind_before_seconds,
      remind_at: remindAt.toISOString(),
      reminded_at: queuedAt.toISOString(),
      ...(nextAllowed && actions.includes('postpone_next_allowed') ? { next_allowed_at: nextAllowed.toISOString() } : {}),
      links_expire_at: links ? chainStart.toISOString() : null,
      links,
      ...(links ? {} : { links_unavailable: NO_LINKS_REASON }),
    };
  }
}
