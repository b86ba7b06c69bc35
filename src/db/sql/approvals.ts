/**
 * SQL for approvals: an app's policy, the decisions given on deployments (deployment_approvals),
 * and the approval events' notifications. One function per statement, taking its client.
 */
import type { Queryable } from '../pool.ts';

export type ApprovalRole = 'owner' | 'deployer';
export type Decision = 'approve' | 'reject';

/** One decision still in force (not voided by a reset). */
export interface DecisionRow {
  id: string;
  deployment_id: string;
  user_id: string;
  email: string;
  decision: Decision;
  comment: string | null;
  via: string | null;
  at: Date;
}

/** The decisions in force on these deployments, oldest first. */
export async function listDecisions(db: Queryable, deploymentIds: readonly string[]): Promise<DecisionRow[]> {
  if (deploymentIds.length === 0) return [];
  const r = await db.query<DecisionRow>(
    `SELECT x.id::text, x.deployment_id, x.user_id, u.email, x.decision, x.comment, x.via, x.at
       FROM deployment_approvals x JOIN users u ON u.id = x.user_id
      WHERE x.deployment_id = ANY($1::uuid[]) AND x.reset_at IS NULL
      ORDER BY x.at, x.id`,
    [deploymentIds],
  );
  return r.rows;
}

/** Records a decision; false when this user already has one in force on the deployment. */
export async function insertDecision(
  db: Queryable,
  d: { deploymentId: string; teamId: string; userId: string; decision: Decision; comment: string | null; via: string | null },
): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO deployment_approvals (deployment_id, team_id, user_id, decision, comment, via)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (deployment_id, user_id) WHERE reset_at IS NULL DO NOTHING`,
    [d.deploymentId, d.teamId, d.userId, d.decision, d.comment, d.via],
  );
  return r.rowCount === 1;
}

/** Voids the decisions in force on these deployments (a large reschedule); returns how many. */
export async function resetDecisions(db: Queryable, deploymentIds: readonly string[]): Promise<number> {
  if (deploymentIds.length === 0) return 0;
  const r = await db.query(
    'UPDATE deployment_approvals SET reset_at = now() WHERE deployment_id = ANY($1::uuid[]) AND reset_at IS NULL',
    [deploymentIds],
  );
  return r.rowCount ?? 0;
}

/** The SQL condition "deployment `d` is waiting for approvals" (scheduled, none rejected, too few approved). */
export function pendingApprovalSql(d: string): string {
  return `(${d}.approval_required IS NOT NULL AND ${d}.state = 'scheduled' AND NOT EXISTS (
            SELECT 1 FROM deployment_approvals x WHERE x.deployment_id = ${d}.id AND x.reset_at IS NULL AND x.decision = 'reject')
          AND (SELECT count(*) FROM deployment_approvals x
                WHERE x.deployment_id = ${d}.id AND x.reset_at IS NULL AND x.decision = 'approve') < ${d}.approval_required)`;
}

/** The SQL condition for a deployment's approval status (pending, approved or rejected), for list filters. */
export function approvalStatusSql(d: string, status: 'pending' | 'approved' | 'rejected'): string {
  const rejected = `EXISTS (SELECT 1 FROM deployment_approvals x WHERE x.deployment_id = ${d}.id AND x.reset_at IS NULL AND x.decision = 'reject')`;
  const count = `(SELECT count(*) FROM deployment_approvals x WHERE x.deployment_id = ${d}.id AND x.reset_at IS NULL AND x.decision = 'approve')`;
  if (status === 'pending') return pendingApprovalSql(d);
  if (status === 'rejected') return `(${d}.approval_required IS NOT NULL AND ${rejected})`;
  return `(${d}.approval_required IS NOT NULL AND NOT ${rejected} AND ${count} >= ${d}.approval_required)`;
}

export type ApprovalEvent = 'approval_requested' | 'approved' | 'rejected';

/**
 * Queues an approval event's deliveries for the subscriptions of the deployment's team that want
 * it, in the caller's transaction (the outbox, as for final states). `approval_requested` is
 * queued only for deployments that need approval. The payload describes the deployment, its
 * approval count and, for a decision, who gave it and their comment.
 */
export async function enqueueApprovalEvents(
  db: Queryable,
  items: ReadonlyArray<{ deploymentId: string; event: ApprovalEvent; by?: string | null; comment?: string | null; approvals?: number }>,
): Promise<number> {
  if (items.length === 0) return 0;
  const r = await db.query(
    `INSERT INTO notification_deliveries (subscription_id, team_id, deployment_id, event, payload)
     SELECT s.id, s.team_id, d.id, x.event, jsonb_build_object(
              'event', 'deployment.' || x.event,
              'deployment_id', d.id,
              'app_id', d.app_id,
              'app_name', a.name,
              'state', d.state,
              'run_at', d.run_at,
              'timezone', d.timezone,
              'approval', jsonb_build_object('required', d.approval_required, 'approvals', x.approvals),
              'by', x.by,
              'comment', x.comment)
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[]) AS x(deployment_id, event, by, comment, approvals)
       JOIN deployments d ON d.id = x.deployment_id AND d.approval_required IS NOT NULL
       JOIN apps a ON a.id = d.app_id
       JOIN notification_subscriptions s ON s.team_id = d.team_id AND x.event = ANY (s.events)`,
    [items.map((i) => i.deploymentId), items.map((i) => i.event), items.map((i) => i.by ?? null), items.map((i) => i.comment ?? null),
      items.map((i) => i.approvals ?? 0)],
  );
  return r.rowCount ?? 0;
}
