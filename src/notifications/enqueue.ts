import type { Queryable } from '../db/pool.ts';
import type { DeploymentState } from '../core/state.ts';
import { enqueueDeliveries, NOTIFY_EVENTS } from '../db/sql/notifications.ts';

/**
 * Called in the same transaction as every final state change of a deployment, so a
 * notification is queued exactly when the state is committed (an outbox): one delivery row per
 * subscription of the team that asked for this state. The notifier (./notifier.ts) sends them
 * later, outside any deployment's transaction, so a slow or failing receiver never delays or
 * fails a deployment.
 */
export async function enqueueNotifications(
  db: Queryable,
  change: { teamId: string; deploymentId: string; appId: string; state: DeploymentState; error: string | null },
): Promise<void> {
  // `canceled` is the user's own act and not an event one can subscribe to: nothing to queue.
  if (!(NOTIFY_EVENTS as readonly string[]).includes(change.state)) return;
  await enqueueDeliveries(db, change);
}
