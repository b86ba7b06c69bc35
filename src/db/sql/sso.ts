/**
 * SQL for single sign-on hand-offs (migration 008): the one-time code the browser brings back
 * from the identity provider's redirect, exchanged once for a login token.
 */
import type { Queryable } from '../pool.ts';

export async function insertSsoHandoff(db: Queryable, codeHash: Buffer, userId: string): Promise<void> {
  await db.query('INSERT INTO sso_handoffs (code_hash, user_id) VALUES ($1, $2)', [codeHash, userId]);
}

/** Takes the hand-off (it can be used once) if it is younger than `maxAgeSeconds`; its user. */
export async function takeSsoHandoff(db: Queryable, codeHash: Buffer, maxAgeSeconds: number): Promise<string | null> {
  const r = await db.query<{ user_id: string; fresh: boolean }>(
    `DELETE FROM sso_handoffs WHERE code_hash = $1 RETURNING user_id, created_at > now() - make_interval(secs => $2) AS fresh`,
    [codeHash, maxAgeSeconds],
  );
  const row = r.rows[0];
  return row && row.fresh ? row.user_id : null;
}

export async function deleteOldSsoHandoffs(db: Queryable, maxAgeSeconds: number): Promise<void> {
  await db.query('DELETE FROM sso_handoffs WHERE created_at < now() - make_interval(secs => $1)', [maxAgeSeconds]);
}

export async function deleteUserSsoHandoffs(db: Queryable, userId: string): Promise<void> {
  await db.query('DELETE FROM sso_handoffs WHERE user_id = $1', [userId]);
}
