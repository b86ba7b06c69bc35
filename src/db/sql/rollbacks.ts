/**
 * Every SQL statement on a deployment's rollback record (migration 009: the rollback_* columns of
 * `deployments`). A rollback is driven like a rollout: `due_at` says when the scheduler must look
 * at it, the lease says which process does; the deployment's own state stays final meanwhile.
 */
import type { Queryable } from '../pool.ts';
import type { RollbackState } from './deployments.ts';

/**
 * Asks for a rollback of a finished deployment (by hand): pending, due now. Returns false when
 * the deployment is not finished or a rollback of it is pending or running.
 */
export async function requestRollback(db: Queryable, id: string, by: string | null): Promise<boolean> {
  const r = await db.query(
    `UPDATE deployments
        SET rollback_state = 'pending', rollback_phase = NULL, rollback_ref = NULL, rollback_error = NULL,
            rollback_attempts = 0, rollback_seq = rollback_seq + 1, rollback_requested_by = $2,
            rollback_started_at = NULL, rollback_finished_at = NULL, due_at = now(), lease_owner = NULL, lease_until = NULL,
            updated_at = now()
      WHERE id = $1 AND state IN ('succeeded', 'failed', 'canceled')
        AND (rollback_state IS NULL OR rollback_state NOT IN ('pending', 'running'))`,
    [id, by],
  );
  return r.rowCount === 1;
}

/**
 * A rollback call begins (rollback() or its recovery): running, phase executing, the attempt
 * counted. Returns the attempt number and when the rollback started, or null when this process
 * no longer holds it.
 */
export async function markRollbackAttempt(db: Queryable, owner: string, id: string): Promise<{ attempts: number; started_at: Date } | null> {
  const r = await db.query<{ attempts: number; started_at: Date }>(
    `UPDATE deployments
        SET rollback_state = 'running', rollback_phase = 'executing', rollback_attempts = rollback_attempts + 1,
            rollback_started_at = COALESCE(rollback_started_at, now()), updated_at = now()
      WHERE id = $2 AND lease_owner = $1 AND rollback_state IN ('pending', 'running')
      RETURNING rollback_attempts AS attempts, rollback_started_at AS started_at`,
    [owner, id],
  );
  return r.rows[0] ?? null;
}

/** Leaves a rollback for later (its next poll, or a retry after a transient failure), lease released. */
export async function deferRollback(
  db: Queryable,
  owner: string,
  id: string,
  p: { afterMs: number; phase: 'retry_wait' | 'following'; ref?: Record<string, unknown> | null; log: string; error?: string | null },
): Promise<boolean> {
  const r = await db.query(
    `UPDATE deployments
        SET due_at = now() + make_interval(secs => $3::float8 / 1000), rollback_phase = $4,
            rollback_ref = COALESCE($5::jsonb, rollback_ref), log = right(log || $6, 65536),
            rollback_error = COALESCE($7, rollback_error), lease_owner = NULL, lease_until = NULL, updated_at = now()
      WHERE id = $2 AND lease_owner = $1 AND rollback_state IN ('pending', 'running')`,
    [owner, id, p.afterMs, p.phase, p.ref ? JSON.stringify(p.ref) : null, p.log, p.error ?? null],
  );
  return r.rowCount === 1;
}

export interface RollbackFinish {
  id: string;
  state: Extract<RollbackState, 'succeeded' | 'failed' | 'not_possible'>;
  error: string | null;
  ref: Record<string, unknown> | null;
  log: string;
}

/**
 * Ends rollbacks: their final state, and the wake-up of the apps' next deployments (which a
 * rollback in progress held back). Returns the rows that changed.
 */
export async function finishRollbacks(db: Queryable, rows: RollbackFinish[]): Promise<Array<{ id: string; team_id: string; app_id: string; state: string; error: string | null }>> {
  if (rows.length === 0) return [];
  const r = await db.query(
    `WITH x AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[]) AS x(id, state, error, log, ref)
     ), done AS (
       UPDATE deployments d
          SET rollback_state = x.state, rollback_error = x.error, rollback_ref = COALESCE(x.ref, d.rollback_ref),
              rollback_finished_at = now(), rollback_phase = NULL, due_at = NULL, lease_owner = NULL, lease_until = NULL,
              log = right(d.log || x.log, 65536), updated_at = now()
         FROM x
        WHERE d.id = x.id AND d.rollback_state IN ('pending', 'running')
        RETURNING d.id, d.team_id, d.app_id, x.state, x.error
     ), wake AS (
       UPDATE deployments w SET due_at = GREATEST(w.run_at, now())
        WHERE w.app_id IN (SELECT app_id FROM done) AND w.state = 'scheduled'
          AND w.run_at <= now() + interval '60 seconds' AND w.due_at > GREATEST(w.run_at, now())
        RETURNING w.id
     )
     SELECT done.*, (SELECT count(*) FROM wake)::int AS woken FROM done`,
    [rows.map((x) => x.id), rows.map((x) => x.state), rows.map((x) => x.error), rows.map((x) => x.log), rows.map((x) => (x.ref ? JSON.stringify(x.ref) : null))],
  );
  return r.rows;
}
