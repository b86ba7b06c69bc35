import type { DeploymentState } from '../core/state.ts';
import type { Queryable } from '../db/pool.ts';
import { finishMany, type Finish } from '../db/sql/deployments.ts';
import { insertEvents, notifyDue } from '../db/sql/events.ts';
import { finishRollbacks, type RollbackFinish } from '../db/sql/rollbacks.ts';
import { enqueueNotifications } from '../notifications/enqueue.ts';

/** The timeline message of an automatic rollback being asked for. */
export const AUTO_ROLLBACK_MESSAGE = 'the deployment failed after it changed something; rolling back (on_failure: rollback)';

/**
 * Ends deployments in the caller's transaction: the final state, its timeline event, the
 * wake-up of what waited on them, and their notifications — all or nothing. A failed deployment
 * whose app rolls back on failure gets its rollback asked for in the same statement (finishMany)
 * and a `rollback_started` event.
 */
export async function endDeployments(db: Queryable, items: Array<{ finish: Finish; message: string }>) {
  const rows = await finishMany(db, items.map((i) => i.finish));
  const messages = new Map(items.map((i) => [i.finish.id, i.message]));
  const message = (r: (typeof rows)[number]) => {
    const m = messages.get(r.id) ?? null;
    // on_failure: rollback, but nothing was changed: say why there is no rollback.
    return r.rollback_wanted && !r.rollback ? `${m ?? r.state}; nothing was changed, so there is nothing to roll back` : m;
  };
  await insertEvents(db, [
    ...rows.map((r) => ({ id: r.id, state: r.state, message: message(r) })),
    ...rows.filter((r) => r.rollback).map((r) => ({ id: r.id, state: 'rollback_started', message: AUTO_ROLLBACK_MESSAGE })),
  ]);
  await enqueueNotifications(db, rows.map((r) => ({ teamId: r.team_id, deploymentId: r.id, appId: r.app_id, state: r.state as DeploymentState, error: r.error })));
  if (rows.length) await notifyDue(db, null);
  return rows;
}

/** The timeline event state of each rollback end. */
const ROLLBACK_EVENT = { succeeded: 'rollback_succeeded', failed: 'rollback_failed', not_possible: 'rollback_not_possible' } as const;

/**
 * Ends rollbacks in the caller's transaction: their state, a timeline event, the wake-up of the
 * apps' next deployments, and the notifications (`rollback_failed` also for one not possible).
 */
export async function endRollbacks(db: Queryable, items: Array<{ finish: RollbackFinish; message: string }>) {
  const rows = await finishRollbacks(db, items.map((i) => i.finish));
  const messages = new Map(items.map((i) => [i.finish.id, i.message]));
  await insertEvents(db, rows.map((r) => ({ id: r.id, state: ROLLBACK_EVENT[r.state as RollbackFinish['state']], message: messages.get(r.id) ?? null })));
  await enqueueNotifications(db, rows.map((r) => ({
    teamId: r.team_id, deploymentId: r.id, appId: r.app_id,
    state: r.state === 'succeeded' ? 'rollback_succeeded' as const : 'rollback_failed' as const,
    error: r.error,
  })));
  if (rows.length) await notifyDue(db, null);
  return rows;
}
