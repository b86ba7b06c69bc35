/**
 * The two places where reminders use other issues' features, one seam each, so that reminders
 * work before those land and are wired in one line each once they do:
 *
 * - approvals (issue 12, branch i12-approvals: `approveDeployment` in src/services/approvals.ts):
 *   `approvalPending` and `approve`. Until wired: no approval is ever pending, so no reminder
 *   carries an approve link.
 * - freezes (issue 11, branch i11-freezes: `nextAllowedAt(db, teamId, appIds, fromUtc)` in
 *   src/services/freezes.ts): `nextAllowedAt`. Until wired: no freeze exists, so no reminder
 *   carries a "next allowed time" link.
 *
 * Tests may replace them through `setReminderSeams` (and put the defaults back with `{}`).
 *
 * Wiring, once both have landed (in src/server.ts, before the ReminderRunner starts):
 *
 *   setReminderSeams({
 *     approvalPending: async (db, id) => (await approvalStatus(db, id))?.status === 'pending',
 *     approve: async (db, actor, id, comment) => {
 *       await approveDeployment(db, { deploymentId: id, teamId: actor.team_id, userId: actor.id, comment, via: 'reminder link' });
 *     },
 *     nextAllowedAt, // from src/services/freeze-check.ts
 *   });
 */
import type { Queryable } from '../db/pool.ts';
import type { User } from './auth.ts';

export interface ReminderSeams {
  /** Whether the deployment waits for approvals (its approval status is "pending"). */
  approvalPending(db: Queryable, deploymentId: string): Promise<boolean>;
  /** Approves it as `actor`, inside the caller's transaction; throws a ShipclockError when it cannot. */
  approve(db: Queryable, actor: User, deploymentId: string, comment: string): Promise<void>;
  /**
   * The first instant at or after `fromUtc` that no freeze of the team forbids for these apps, or
   * null when no freeze applies to them. A link is offered only when it is later than the instant.
   */
  nextAllowedAt(db: Queryable, teamId: string, appIds: string[], fromUtc: Date): Promise<Date | null>;
}

const DEFAULTS: ReminderSeams = {
  approvalPending: async () => false,
  approve: async () => {
    throw new Error('approvals are not part of this build');
  },
  nextAllowedAt: async () => null,
};

let current: ReminderSeams = DEFAULTS;

export function reminderSeams(): ReminderSeams {
  return current;
}

export function setReminderSeams(s: Partial<ReminderSeams>): void {
  current = { ...DEFAULTS, ...s };
}
