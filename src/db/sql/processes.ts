/**
 * The scheduler processes' registry (migration 003): a heartbeat row per live process, and the
 * figures a process needs to take its share of a burst.
 */
import type { Queryable } from '../pool.ts';

/** Records that `id` is alive now. */
export async function heartbeatProcess(db: Queryable, id: string): Promise<void> {
  await db.query(
    `INSERT INTO scheduler_processes (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET seen_at = now()`,
    [id],
  );
}

/** Removes `id` (graceful stop), so that the others stop counting it at once. */
export async function removeProcess(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM scheduler_processes WHERE id = $1', [id]);
}

/**
 * How many rows no live process owns are due before `now() + horizonMs` (what the claim would
 * take), and how many scheduler processes were seen within `aliveSeconds` (at least 1: the caller).
 * Served by deployments_due_idx; the registry holds one row per process.
 */
export async function claimable(db: Queryable, horizonMs: number, aliveSeconds: number): Promise<{ due: number; live: number }> {
  const r = await db.query<{ due: number; live: number }>(
    `SELECT (SELECT count(*) FROM deployments
              WHERE due_at IS NOT NULL AND due_at <= now() + make_interval(secs => $1::float8 / 1000)
                AND (lease_until IS NULL OR lease_until < now()))::int AS due,
            GREATEST(1, (SELECT count(*) FROM scheduler_processes WHERE seen_at > now() - make_interval(secs => $2)))::int AS live`,
    [horizonMs, aliveSeconds],
  );
  return r.rows[0];
}
