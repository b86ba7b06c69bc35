import type { Queryable } from '../db/pool.ts';
import type { DeploymentState } from '../core/state.ts';
import { enqueueDeliveries, NOTIFY_EVENTS } from '../db/sql/notifications.ts';

/**
 * Called in the same transaction as every final state change of a deployment, so a
 * notification is queued exactly when the state is committed (an outbox): one delivery row per
 * subscription of the team that asked for this state. The notifier (./notifier.ts) sends them
 * later, outside any deployment's transaction, so a slow or failing receiver never delays or
 * fails a deployment. Takes one change or many (one statement either way).
 */
export async function enqueueNotifications(
  db: Queryable,
  changes: NotificationChange | NotificationChange[],
): Promise<void> {
  // `canceled` is the user's own act and not an event one can subscribe to: nothing to queue.
  const wanted = (Array.isArray(changes) ? changes : [changes]).filter((c) => (NOTIFY_EVENTS as readonly string[]).includes(c.state));
  if (wanted.length) await enqueueDeliveries(db, wanted);
}

export interface NotificationChange {
  teamId: string;
  deploymentId: string;
  appId: string;
  /** A final state, or rollback_failed / rollback_succeeded. */
  state: DeploymentState | 'rollback_failed' | 'rollback_succeeded';
  error: string | null;
}
