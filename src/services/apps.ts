/**
 * Apps: a name, a deploy target and a retry policy. A webhook's `secret` is stored encrypted
 * apart from the target and never returned (the target shows `has_secret`).
 */
import { recordAudit } from '../audit/record.ts';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.ts';
import { DEFAULT_RETRY, type RetryPolicy } from '../core/retry.ts';
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { countAppSchedules } from '../db/sql/schedules.ts';
import { githubTargetProblem } from '../providers/github-actions.ts';
import type { SecretBox } from '../secrets/box.ts';
import type { TargetInput } from '../api/schemas.ts';
import type { User } from './auth.ts';
import { assertCredential } from './credentials.ts';
import { decodeCursor, page } from './cursor.ts';
import { type ApprovalPolicy, DEFAULT_FROM_ROLES, policyOf, validatePolicy } from './approvals.ts';

/** An approval policy as PATCH/POST /v1/apps take it: null for none. */
export type ApprovalInput = { required?: number; from_roles?: string[] } | null;

export interface AppRow {
  id: string;
  team_id: string;
  name: string;
  target: Record<string, unknown>;
  target_secret: Buffer | null;
  retry_max_attempts: number;
  retry_backoff_seconds: number;
  /** Approvals a deployment of it needs (1–5); null: none. */
  approval_required: number | null;
  /** Whose approvals count (owner, deployer). */
  approval_from_roles: string[];
  on_failure: 'none' | 'rollback';
  created_at: Date;
  updated_at: Date;
}

export function appToApi(r: AppRow) {
  const target = { ...r.target };
  if (target.type === 'webhook') target.has_secret = r.target_secret !== null;
  return {
    id: r.id,
    name: r.name,
    target,
    retry: { max_attempts: r.retry_max_attempts, backoff_seconds: r.retry_backoff_seconds },
    approval: policyOf(r),
    on_failure: r.on_failure,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

async function checkTarget(db: Queryable, teamId: string, target: TargetInput): Promise<void> {
  if (target.type === 'ecs') await assertCredential(db, teamId, target.credentials, 'aws');
  if (target.type === 'digitalocean') await assertCredential(db, teamId, target.credentials, 'digitalocean');
  if (target.type === 'github_actions') {
    const problem = githubTargetProblem(target);
    if (problem) throw new ValidationError('invalid_target', problem.message, problem.field);
    await assertCredential(db, teamId, target.credentials, 'github');
  }
  if (target.type === 'kubernetes') await assertCredential(db, teamId, target.credentials, 'kubernetes');
}

/** Splits the secret out of a target: what is stored in the clear, and the ciphertext. */
function splitSecret(box: SecretBox, target: TargetInput): { clear: Record<string, unknown>; sealed: Buffer | null } {
  if (target.type === 'webhook' && target.secret) {
    const { secret, ...clear } = target;
    return { clear, sealed: box.seal(secret) };
  }
  return { clear: { ...target }, sealed: null };
}

async function assertNameFree(db: Queryable, teamId: string, name: string, exceptId?: string): Promise<void> {
  const r = await db.query('SELECT 1 FROM apps WHERE team_id = $1 AND lower(name) = lower($2) AND deleted_at IS NULL AND id IS DISTINCT FROM $3', [teamId, name, exceptId ?? null]);
  if (r.rowCount) throw new ConflictError('name_taken', `an app named "${name}" exists`, 'name');
}

export async function createApp(pool: Pool, box: SecretBox, actor: User, input: { name: string; target: TargetInput; retry?: Partial<RetryPolicy>; approval?: ApprovalInput; on_failure?: 'none' | 'rollback' }) {
  const approval = validatePolicy(input.approval ?? null);
  return inTransaction(pool, async (c) => {
    await assertNameFree(c, actor.team_id, input.name);
    await checkTarget(c, actor.team_id, input.target);
    const { clear, sealed } = splitSecret(box, input.target);
    const retry = { ...DEFAULT_RETRY, ...input.retry };
    const r = await c.query<AppRow>(
      `INSERT INTO apps (team_id, name, target, target_secret, retry_max_attempts, retry_backoff_seconds, approval_required, approval_from_roles, on_failure)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
      [actor.team_id, input.name, clear, sealed, retry.max_attempts, retry.backoff_seconds, approval?.required ?? null, approval?.from_roles ?? DEFAULT_FROM_ROLES, input.on_failure ?? 'none'],
    );
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'app.create', targetId: r.rows[0].id, details: { name: input.name, target_type: input.target.type, on_failure: input.on_failure ?? 'none', ...(approval ? { approval } : {}) } });
    return appToApi(r.rows[0]);
  });
}

export async function getAppRow(db: Queryable, teamId: string, id: string, forUpdate = false): Promise<AppRow | null> {
  const r = await db.query<AppRow>(`SELECT * FROM apps WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL${forUpdate ? ' FOR UPDATE' : ''}`, [id, teamId]);
  return r.rows[0] ?? null;
}

export async function getApp(pool: Pool, actor: User, id: string) {
  const row = await getAppRow(pool, actor.team_id, id);
  if (!row) throw new NotFoundError('app');
  return appToApi(row);
}

export async function listApps(pool: Pool, actor: User, limit: number, cursor?: string) {
  const after = decodeCursor<[string, string]>(cursor, (v) => Array.isArray(v) && v.length === 2);
  const r = await pool.query<AppRow>(
    `SELECT * FROM apps WHERE team_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR (lower(name), id::text) > ($2, $3))
      ORDER BY lower(name), id LIMIT $4`,
    [actor.team_id, after?.[0] ?? null, after?.[1] ?? null, limit + 1],
  );
  const p = page(r.rows, limit, (x) => [x.name.toLowerCase(), x.id]);
  return { result: p.result.map(appToApi), next_cursor: p.next_cursor };
}

export async function updateApp(pool: Pool, box: SecretBox, actor: User, id: string, input: { name?: string; target?: TargetInput; retry?: Partial<RetryPolicy>; approval?: ApprovalInput; on_failure?: 'none' | 'rollback' }) {
  const approval: ApprovalPolicy | null | undefined = input.approval === undefined ? undefined : validatePolicy(input.approval);
  return inTransaction(pool, async (c) => {
    const row = await getAppRow(c, actor.team_id, id, true);
    if (!row) throw new NotFoundError('app');
    if (input.name !== undefined) await assertNameFree(c, actor.team_id, input.name, id);
    let target = row.target;
    let sealed = row.target_secret;
    if (input.target) {
      await checkTarget(c, actor.team_id, input.target);
      const split = splitSecret(box, input.target);
      target = split.clear;
      // A webhook target sent again without `secret` keeps the stored one (it is write-only).
      sealed = split.sealed ?? (input.target.type === 'webhook' && row.target.type === 'webhook' ? row.target_secret : null);
    }
    const retry = { max_attempts: row.retry_max_attempts, backoff_seconds: row.retry_backoff_seconds, ...input.retry };
    // A policy change applies to deployments scheduled from now on; those already scheduled keep
    // the count they were scheduled with (decision 0006).
    const required = approval === undefined ? row.approval_required : approval?.required ?? null;
    const fromRoles = approval === undefined ? row.approval_from_roles : approval?.from_roles ?? DEFAULT_FROM_ROLES;
    const r = await c.query<AppRow>(
      `UPDATE apps SET name = $2, target = $3, target_secret = $4, retry_max_attempts = $5, retry_backoff_seconds = $6,
              approval_required = $7, approval_from_roles = $8, on_failure = $9, updated_at = now()
        WHERE id = $1 RETURNING *`,
      [id, input.name ?? row.name, target, sealed, retry.max_attempts, retry.backoff_seconds, required, fromRoles, input.on_failure ?? row.on_failure],
    );
    await recordAudit(c, {
      teamId: actor.team_id, actorId: actor.id, action: 'app.update', targetId: id,
      details: { fields: Object.keys(input), ...(approval !== undefined ? { approval } : {}) },
    });
    return appToApi(r.rows[0]);
  });
}

/** Deletes an app that has nothing scheduled or running (409 otherwise); its history stays. */
export async function deleteApp(pool: Pool, actor: User, id: string): Promise<void> {
  await inTransaction(pool, async (c) => {
    const row = await getAppRow(c, actor.team_id, id, true);
    if (!row) throw new NotFoundError('app');
    const schedules = await countAppSchedules(c, id);
    if (schedules > 0) throw new ConflictError('app_has_schedules', `the app is in ${schedules} recurring schedule(s): delete them first`);
    const active = await c.query(`SELECT count(*)::int AS n FROM deployments WHERE app_id = $1 AND (state IN ('scheduled', 'held', 'running') OR rollback_state IN ('pending', 'running'))`, [id]);
    if (active.rows[0].n > 0) {
      throw new ConflictError('app_has_deployments', `the app has ${active.rows[0].n} scheduled or running deployment(s): cancel them first`);
    }
    await c.query('UPDATE apps SET deleted_at = now() WHERE id = $1', [id]);
    await recordAudit(c, { teamId: actor.team_id, actorId: actor.id, action: 'app.delete', targetId: id, details: { name: row.name } });
  });
}
