/**
 * Reading the audit log (owners only; the route checks the role).
 */
import type { Pool } from '../db/pool.ts';
import { listAudit } from '../db/sql/audit.ts';
import type { User } from './auth.ts';
import { decodeCursor, page } from './cursor.ts';

export async function listAuditEntries(pool: Pool, actor: User, q: { limit: number; cursor?: string; action?: string; target_id?: string }) {
  const before = decodeCursor<string>(q.cursor, (v) => typeof v === 'string' && /^\d{1,19}$/.test(v));
  const rows = await listAudit(pool, actor.team_id, { beforeId: before ?? null, limit: q.limit + 1, action: q.action, targetId: q.target_id });
  const p = page(rows, q.limit, (r) => r.id);
  return {
    result: p.result.map((r) => ({
      id: r.id,
      at: r.at.toISOString(),
      actor: r.actor_id ? { id: r.actor_id, email: r.actor_email } : null,
      action: r.action,
      target_id: r.target_id,
      details: r.details,
    })),
    next_cursor: p.next_cursor,
  };
}
