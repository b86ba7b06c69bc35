/**
 * Approvals before a deployment fires (issue 12, decision 0006).
 *
 * - An app's policy (`approval: {required, from_roles}`) is set with PATCH /v1/apps/{id}. A
 *   deployment keeps the `required` of its app's policy as it was when it was scheduled
 *   (`deployments.approval_required`, null: none needed); who may decide (`from_roles`) is read
 *   from the app when they decide.
 * - Each user gives one decision per deployment: approve (not on a deployment they created) or
 *   reject (with a comment). A rejection stands until a large reschedule voids the decisions.
 * - At its instant the approval fire gate (`approvalGate`, registered in src/server.ts) ends a
 *   deployment that is not approved `skipped`, saying why; its dependents are then skipped by the
 *   scheduler like those of any dependency that did not succeed.
 * - Every decision is an audit entry and a timeline event, and announces a gate change
 *   (notifyGates) so that a scheduler holding the row asks again at the instant.
 */
import pg from 'pg';
import { recordAudit } from '../audit/record.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../core/errors.ts';
import { isFinal } from '../core/state.ts';
import { inTransaction, type Queryable } from '../db/pool.ts';
import {
  type ApprovalRole, type DecisionRow, enqueueApprovalEvents, insertDecision, listDecisions, resetDecisions,
} from '../db/sql/approvals.ts';
import { type ClaimedRow, getDeployment } from '../db/sql/deployments.ts';
import { insertEvents } from '../db/sql/events.ts';
import { selectMember } from '../db/sql/users.ts';
import { type FireGate, notifyGates } from '../scheduler/gates.ts';
import type { Role } from './auth.ts';
import { endDeployments } from './transitions.ts';

export type ApprovalStatus = 'pending' | 'approved' | 'rejected';

/** A decision as the API shows it. */
export interface DecisionOut {
  user: { id: string; email: string };
  at: string;
  comment: string | null;
  /** How it was given when not directly (e.g. "reminder link"); null otherwise. */
  via: string | null;
}

/** A deployment's approval state: the `approval` of its representation. */
export interface ApprovalSummary {
  required: number;
  /** The approvals in force, oldest first. */
  approvals: DecisionOut[];
  /** The rejection in force, if any (it decides the status). */
  rejection: DecisionOut | null;
  status: ApprovalStatus;
}

/** An app's policy as the API shows it and takes it. */
export interface ApprovalPolicy {
  required: number;
  from_roles: ApprovalRole[];
}

export const DEFAULT_FROM_ROLES: ApprovalRole[] = ['owner', 'deployer'];

/** The policy of an app row (null: no approval needed). */
export function policyOf(app: { approval_required: number | null; approval_from_roles: string[] | null }): ApprovalPolicy | null {
  if (app.approval_required === null) return null;
  return { required: app.approval_required, from_roles: (app.approval_from_roles ?? DEFAULT_FROM_ROLES) as ApprovalRole[] };
}

/** Checks a policy given to PATCH /v1/apps (beyond its schema); throws 422 naming the field. */
export function validatePolicy(p: { required?: number; from_roles?: string[] } | null): ApprovalPolicy | null {
  if (p === null) return null;
  if (p.required === undefined || !Number.isInteger(p.required) || p.required < 1 || p.required > 5) {
    throw new ValidationError('invalid_approval', 'approval.required must be an integer from 1 to 5', 'approval.required');
  }
  const roles = [...new Set(p.from_roles ?? DEFAULT_FROM_ROLES)];
  if (!roles.length || roles.some((r) => r !== 'owner' && r !== 'deployer')) {
    throw new ValidationError('invalid_approval', 'approval.from_roles must list one or both of "owner" and "deployer"', 'approval.from_roles');
  }
  return { required: p.required, from_roles: roles as ApprovalRole[] };
}

function decisionOut(d: DecisionRow): DecisionOut {
  return { user: { id: d.user_id, email: d.email }, at: d.at.toISOString(), comment: d.comment, via: d.via };
}

/** The approval state from a deployment's required count and its decisions in force (pure). */
export function summarize(required: number, decisions: readonly DecisionRow[]): ApprovalSummary {
  const approvals = decisions.filter((d) => d.decision === 'approve').map(decisionOut);
  const rejected = decisions.find((d) => d.decision === 'reject');
  const rejection = rejected ? decisionOut(rejected) : null;
  const status: ApprovalStatus = rejection ? 'rejected' : approvals.length >= required ? 'approved' : 'pending';
  return { required, approvals, rejection, status };
}

/**
 * The approval state of each deployment that needs approval (one query for all); deployments
 * that need none are absent from the map. This is the status helper for callers outside the API
 * (the reminders decide from it whether to offer an "approve" link).
 */
export async function approvalSummaries(
  db: Queryable,
  rows: ReadonlyArray<{ id: string; approval_required: number | null }>,
): Promise<Map<string, ApprovalSummary>> {
  const need = rows.filter((r) => r.approval_required !== null);
  const out = new Map<string, ApprovalSummary>();
  if (!need.length) return out;
  const byId = new Map<string, DecisionRow[]>();
  for (const d of await listDecisions(db, [...new Set(need.map((r) => r.id))])) {
    const list = byId.get(d.deployment_id) ?? [];
    list.push(d);
    byId.set(d.deployment_id, list);
  }
  for (const r of need) out.set(r.id, summarize(r.approval_required!, byId.get(r.id) ?? []));
  return out;
}

/** One deployment's approval state; null when it needs none (or does not exist). */
export async function approvalStatus(db: Queryable, deploymentId: string): Promise<ApprovalSummary | null> {
  const r = await db.query<{ id: string; approval_required: number | null }>('SELECT id, approval_required FROM deployments WHERE id = $1', [deploymentId]);
  if (!r.rows[0]) return null;
  return (await approvalSummaries(db, r.rows))?.get(deploymentId) ?? null;
}

/** Why a deployment may not fire (for its error and timeline); null when it is approved. */
export function notApprovedReason(s: ApprovalSummary): string | null {
  if (s.status === 'approved') return null;
  if (s.rejection) return `rejected by ${s.rejection.user.email}: ${s.rejection.comment ?? ''}`.trimEnd();
  return `not approved (${s.approvals.length} of ${s.required})`;
}

export interface DecisionInput {
  deploymentId: string;
  teamId: string;
  userId: string;
  /** Optional for an approval, required (non-blank) for a rejection. */
  comment?: string | null;
  /** How the decision was given, when not directly through the API or UI (e.g. 'reminder link'): shown in the timeline and the audit entry. */
  via?: string;
  /**
   * The role the caller acts with, when lower than the user's own (an API token capped at a
   * role). Defaults to the user's role in the team.
   */
  role?: Role;
}

export interface DecisionResult {
  /** The deployment's approval state after the decision. */
  approval: ApprovalSummary;
  /** True when this decision changed the status (approved: the required count was reached; rejected). */
  changed: boolean;
}

export const MAX_COMMENT_CHARS = 2000;

/**
 * Approves a scheduled deployment as `userId`. Runs in its own transaction when given the pool,
 * or in the caller's when given a client inside a transaction (a reminder link consuming its
 * token in the same transaction). Throws 404 (no such deployment in the team), 403 (a viewer,
 * a role not in the app's `from_roles`, `self_approval`: the user created it), 409 (`already_decided`,
 * `rejected`, `already_final`/`not_scheduled`, `approval_not_required`).
 */
export function approveDeployment(db: pg.Pool | Queryable, input: DecisionInput): Promise<DecisionResult> {
  return decide(db, 'approve', input);
}

/** Rejects a scheduled deployment as `userId`; `comment` is required (422 naming `comment`). Same rules otherwise. */
export function rejectDeployment(db: pg.Pool | Queryable, input: DecisionInput): Promise<DecisionResult> {
  return decide(db, 'reject', input);
}

function decide(db: pg.Pool | Queryable, decision: 'approve' | 'reject', input: DecisionInput): Promise<DecisionResult> {
  const comment = input.comment?.trim() || null;
  if (comment && comment.length > MAX_COMMENT_CHARS) throw new ValidationError('comment_too_long', `comment is longer than ${MAX_COMMENT_CHARS} characters`, 'comment');
  if (decision === 'reject' && !comment) throw new ValidationError('comment_required', 'a rejection needs a comment saying why', 'comment');
  const run = (c: Queryable) => decideIn(c, decision, { ...input, comment });
  return isPool(db) ? inTransaction(db, run) : run(db);
}

/** A pool (its own transaction is opened) rather than a client already in one. */
function isPool(db: pg.Pool | Queryable): db is pg.Pool {
  return db instanceof pg.Pool || ('totalCount' in db && typeof (db as pg.Pool).connect === 'function');
}

async function decideIn(c: Queryable, decision: 'approve' | 'reject', input: DecisionInput & { comment: string | null }): Promise<DecisionResult> {
  const row = await getDeployment(c, input.teamId, input.deploymentId, true);
  if (!row) throw new NotFoundError('scheduled deployment');
  const member = await selectMember(c, input.teamId, input.userId);
  if (!member) throw new ForbiddenError('you are not a member of this team');
  const role = input.role ?? member.role;
  const verb = decision === 'approve' ? 'approve' : 'reject';
  if (role === 'viewer') throw new ForbiddenError(`a viewer cannot ${verb} deployments`);
  if (row.approval_required === null) {
    throw new ConflictError('approval_not_required', 'this deployment needs no approval (its app had no approval policy when it was scheduled)');
  }
  if (isFinal(row.state)) throw new ConflictError('already_final', `the deployment already ended: ${row.state}`);
  if (row.state === 'running') throw new ConflictError('not_scheduled', 'the deployment is already running');
  const app = await c.query<{ approval_from_roles: string[] }>('SELECT approval_from_roles FROM apps WHERE id = $1', [row.app_id]);
  const fromRoles = app.rows[0]?.approval_from_roles ?? DEFAULT_FROM_ROLES;
  if (!fromRoles.includes(role)) {
    throw new ForbiddenError(`only ${fromRoles.join(' or ')} users may ${verb} deployments of ${row.app_name}; you are ${role}`, 'role_not_allowed');
  }
  if (decision === 'approve' && row.created_by === input.userId) {
    throw new ForbiddenError('you scheduled this deployment: someone else must approve it', 'self_approval');
  }
  const before = (await approvalSummaries(c, [row])).get(row.id)!;
  if (before.rejection) {
    throw new ConflictError('rejected', `the deployment was rejected by ${before.rejection.user.email}; reschedule it by more than its expiry to ask again`);
  }
  const inserted = await insertDecision(c, {
    deploymentId: row.id, teamId: input.teamId, userId: input.userId, decision, comment: input.comment, via: input.via ?? null,
  });
  if (!inserted) throw new ConflictError('already_decided', 'you already approved or rejected this deployment');
  const after = (await approvalSummaries(c, [row])).get(row.id)!;
  const via = input.via ? ` (through a ${input.via})` : '';
  const note = input.comment ? `: ${input.comment}` : '';
  const message = decision === 'approve'
    ? `approved by ${member.email}${via} (${after.approvals.length} of ${after.required})${note}`
    : `rejected by ${member.email}${via}${note}`;
  await insertEvents(c, [{ id: row.id, state: row.state, message }]);
  await recordAudit(c, {
    teamId: input.teamId, actorId: input.userId, action: decision === 'approve' ? 'deployment.approve' : 'deployment.reject', targetId: row.id,
    details: { app: row.app_name, comment: input.comment, approvals: after.approvals.length, required: after.required, status: after.status, ...(input.via ? { via: input.via } : {}) },
  });
  const changed = after.status !== before.status;
  if (changed) {
    await enqueueApprovalEvents(c, [{
      deploymentId: row.id, event: after.status === 'approved' ? 'approved' : 'rejected', by: member.email, comment: input.comment,
      approvals: after.approvals.length,
    }]);
  }
  await notifyGates(c);
  return { approval: after, changed };
}

/**
 * Voids the decisions in force on deployments being rescheduled by more than their expiry, in the
 * caller's transaction, with a timeline event on each that had any. Returns the ids reset.
 */
export async function resetApprovals(c: Queryable, ids: readonly string[], why: string): Promise<string[]> {
  const had = [...new Set((await listDecisions(c, ids)).map((d) => d.deployment_id))];
  if (!had.length) return [];
  await resetDecisions(c, had);
  await insertEvents(c, had.map((id) => ({ id, state: 'scheduled', message: `approvals reset: ${why}` })));
  await notifyGates(c);
  return had;
}

/**
 * The approval fire gate: a deployment that needs approval and is not approved (pending or
 * rejected) does not run at its instant; it ends `skipped` with the reason ("not approved (1 of
 * 2)", "rejected by …: …"). Free when no claimed row needs approval (no query).
 */
export const approvalGate: FireGate = {
  name: 'approval',
  async check(db: Queryable, rows: readonly ClaimedRow[]) {
    const out = new Map<string, string>();
    const need = rows.filter((r) => r.approval_required !== null && r.approval_required !== undefined);
    if (!need.length) return out;
    const sums = await approvalSummaries(db, need);
    for (const r of need) {
      const reason = notApprovedReason(sums.get(r.id)!);
      if (reason) out.set(r.id, reason);
    }
    return out;
  },
  async apply(db: Queryable, _owner: string, stopped) {
    await endDeployments(db, stopped.map((s) => ({ finish: { id: s.row.id, state: 'skipped' as const, error: s.message, log: '', ref: null }, message: s.message })));
  },
};
