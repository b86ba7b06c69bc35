/**
 * The audit log: who did what, when, to which object. Services call recordAudit() inside the
 * transaction of the change itself, so an entry exists exactly when the change was committed.
 */
import type { Queryable } from '../db/pool.ts';
import { insertAudit } from '../db/sql/audit.ts';

export interface AuditEntry {
  teamId: string;
  /** The user who acted; null for the system (bootstrap). */
  actorId: string | null;
  /** e.g. "deployment.create", "deployment.reschedule", "deployment.cancel", "app.create", "credential.delete", "member.create" */
  action: string;
  /** Id of the object acted on. */
  targetId: string | null;
  /** What changed; must never contain secrets (secret-looking keys are masked as a safety net). */
  details?: Record<string, unknown>;
}

/** Keys whose values are never written to the audit log, whatever a caller passes. */
const SECRET_KEY = /(password|secret|token|authorization|access_key|credentials_value)/i;

/** Deep copy of `value` with the values of secret-looking keys replaced by "[redacted]". */
export function scrubSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => scrubSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined && typeof v !== 'boolean' ? '[redacted]' : scrubSecrets(v, depth + 1);
  }
  return out;
}

/** Records who did what, in the caller's transaction. */
export async function recordAudit(db: Queryable, entry: AuditEntry): Promise<void> {
  await insertAudit(db, {
    teamId: entry.teamId,
    actorId: entry.actorId,
    action: entry.action,
    targetId: entry.targetId,
    details: (scrubSecrets(entry.details ?? {}) as Record<string, unknown>),
  });
}
