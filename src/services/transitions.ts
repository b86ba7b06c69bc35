import type { DeploymentState } from '../core/state.ts';
import type { Queryable } from '../db/pool.ts';
import { finishMany, type Finish } from '../db/sql/deployments.ts';
import { insertEvents, notifyDue } from '../db/sql/events.ts';
import { enqueueNotifications } from '../notifications/enqueue.ts';

/**
 * Ends deployments in the caller's transaction: the final state, its timeline event, the
 * wake-up of what waited on them, and their notifications — all or nothing.
 */
export async function endDeployments(db: Queryable, items: Array<{ finish: Finish; message: string }>) {
  const rows = await finishMany(db, items.map((i) => i.finish));
  const messages = new Map(items.map((i) => [i.finish.id, i.message]));
  await insertEvents(db, rows.map((r) => ({ id: r.id, state: r.state, message: messages.get(r.id) ?? null })));
  await enqueueNotifications(db, rows.map((r) => ({ teamId: r.team_id, deploymentId: r.id, appId: r.app_id, state: r.state as DeploymentState, error: r.error })));
  if (rows.length) await notifyDue(db, null);
  return rows;
}
