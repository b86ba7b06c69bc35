/**
 * SQL for the failed-sign-in counters (migration 008): one row per failed attempt, by email key
 * (SHA-256 of the lower-cased email) and client address, counted over a sliding window by every
 * process alike. The database clock decides the window.
 */
import type { Queryable } from '../pool.ts';

/** Records an attempt (as failed until it is known to have succeeded); its id. */
export async function insertLoginAttempt(db: Queryable, emailKey: Buffer, address: string): Promise<string> {
  const r = await db.query<{ id: string }>('INSERT INTO login_failures (email_key, address) VALUES ($1, $2) RETURNING id::text AS id', [emailKey, address]);
  return r.rows[0].id;
}

/** Attempts within the window, by this email and by this address (the caller's own included). */
export async function countLoginFailures(db: Queryable, emailKey: Buffer, address: string, windowSeconds: number): Promise<{ by_email: number; by_address: number }> {
  const r = await db.query<{ by_email: number; by_address: number }>(
    `SELECT (SELECT count(*) FROM login_failures WHERE email_key = $1 AND at > now() - make_interval(secs => $3))::int AS by_email,
            (SELECT count(*) FROM login_failures WHERE address = $2 AND at > now() - make_interval(secs => $3))::int AS by_address`,
    [emailKey, address, windowSeconds],
  );
  return r.rows[0];
}

/**
 * Seconds until fewer than `max` failures of this email (or address) remain in the window: when
 * the (n − max + 1)-th oldest leaves it. At least 1.
 */
export async function secondsUntilBelow(db: Queryable, by: 'email_key' | 'address', key: Buffer | string, max: number, windowSeconds: number): Promise<number> {
  const r = await db.query<{ wait: number | null }>(
    `WITH recent AS (
       SELECT at FROM login_failures WHERE ${by} = $1 AND at > now() - make_interval(secs => $3)
     )
     SELECT ceil(extract(epoch FROM (at + make_interval(secs => $3) - now())))::int AS wait
       FROM recent ORDER BY at OFFSET GREATEST(0, (SELECT count(*) FROM recent) - $2) LIMIT 1`,
    [key, max, windowSeconds],
  );
  return Math.max(1, r.rows[0]?.wait ?? 1);
}

export async function deleteLoginAttempt(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM login_failures WHERE id = $1::bigint', [id]);
}

/** After a successful sign-in: that email's earlier failures no longer count (the address's do). */
export async function clearEmailFailures(db: Queryable, emailKey: Buffer): Promise<void> {
  await db.query('DELETE FROM login_failures WHERE email_key = $1', [emailKey]);
}

export async function deleteOldLoginFailures(db: Queryable, windowSeconds: number): Promise<void> {
  await db.query('DELETE FROM login_failures WHERE at < now() - make_interval(secs => $1)', [windowSeconds]);
}
