/**
 * Where reminders use other issues' features, one seam each:
 *
 * - approvals (issue 12, landed): `approvalPending` and `approve` call src/services/approvals.ts
 *   (`approvalStatus`, `approveDeployment` inside the link's transaction, `via: 'reminder link'`).
 * - freezes (issue 11, branch i11-freezes: `nextAllowedAt(db, teamId, appIds, fromUtc)` in
 *   src/services/freeze-check.ts): `nextAllowedAt`. Until it lands: no freeze exists, so no
 *   reminder carries a "next allowed time" link. Wiring: import it and put it in DEFAULTS below.
 *
 * Tests may replace them through `setReminderSeams` (and put the defaults back with `{}`).
 */
import type { Queryable } from '../db/pool.ts';
import { approvalStatus, approveDeployment } from './approvals.ts';
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
  approvalPending: async (db, id) => (await approvalStatus(db, id))?.status === 'pending',
  approve: async (db, actor, id, comment) => {
    await approveDeployment(db, { deploymentId: id, teamId: actor.team_id, userId: actor.id, comment, via: 'reminder link' });
  },
  // The freezes seam (not landed yet): no freeze, no "next allowed time" link.
  nextAllowedAt: async () => null,
};

let current: ReminderSeams = DEFAULTS;

export function reminderSeams(): ReminderSeams {
  return current;
}

export function setReminderSeams(s: Partial<ReminderSeams>): void {
  current = { ...DEFAULTS, ...s };
}
