/**
 * Fire gates: the plug-in point for "may this deployment run now?" checks beyond its expiry and
 * its dependency (a deploy freeze, a missing approval). A gate looks at a batch of rows and
 * names those that must not run, with the reason; it then moves them out of the way itself (ends
 * them, or parks them in a state of its own), in a transaction the scheduler opens.
 *
 * When gates run, so that the instant itself stays a tight loop of calls:
 * - at claim time (about the prefetch before the instant), once per claimed batch, alongside the
 *   target's resolution;
 * - again at the instant, only for rows whose claim-time verdict is not known yet or is stale: a
 *   verdict is stale when anything announced a change on GATES_CHANNEL after it was taken (a
 *   freeze created a second before the instant, an approval given meanwhile). Whatever may change
 *   a gate's verdict must `notifyGates` in its transaction.
 * With no gate registered, none of this costs anything.
 */
import type { Queryable } from '../db/pool.ts';
import type { ClaimedRow } from '../db/sql/deployments.ts';

/** A gate's "not now" for one row. */
export interface GateVerdict {
  /** The gate that stopped it. */
  gate: string;
  /** Why, for the timeline and the row's error (names the freeze, the approvals missing, …). */
  message: string;
}

export interface FireGate {
  /** Short name for logs and verdicts ("freeze", "approval"). */
  readonly name: string;
  /**
   * The rows (all `scheduled`, not expired, dependency satisfied or none) that must not run now,
   * each with its reason. One statement for the batch; ideally free when the feature is unused.
   */
  check(db: Queryable, rows: readonly ClaimedRow[]): Promise<Map<string, string>>;
  /**
   * Moves the rows this gate stopped out of the scheduler's way, in the caller's transaction:
   * ends them (`endDeployments`, e.g. skipped) or parks them in a state of the gate's own. The
   * rows are still leased to `owner`; whatever this writes must clear the lease.
   */
  apply(db: Queryable, owner: string, stopped: ReadonlyArray<{ row: ClaimedRow; message: string }>): Promise<void>;
}

/** Announces that a gate's verdict may have changed (payload unused). */
export const GATES_CHANNEL = 'shipclock_gates';

const gates: FireGate[] = [];

/**
 * Registers a gate (at module load of the feature that owns it). Gates are asked in registration
 * order and the first "not now" wins, so a gate that parks a row (a freeze holds it) is registered
 * before one that ends it (a missing approval skips it): a held row is asked again when released.
 */
export function registerGate(gate: FireGate): void {
  if (!gates.some((g) => g.name === gate.name)) gates.push(gate);
}

export function hasGates(): boolean {
  return gates.length > 0;
}

export function gateNamed(name: string): FireGate | undefined {
  return gates.find((g) => g.name === name);
}

/** Every gate's verdicts for `rows`: the rows that must not run, each with the first gate that said so. */
export async function checkGates(db: Queryable, rows: readonly ClaimedRow[]): Promise<Map<string, GateVerdict>> {
  const out = new Map<string, GateVerdict>();
  let left = rows;
  for (const g of gates) {
    if (!left.length) break;
    const stopped = await g.check(db, left);
    for (const [id, message] of stopped) out.set(id, { gate: g.name, message });
    if (stopped.size) left = left.filter((r) => !stopped.has(r.id));
  }
  return out;
}

/** In a transaction that changes what a gate decides: wakes every scheduler to re-check its claimed rows. */
export async function notifyGates(db: Queryable): Promise<void> {
  await db.query(`SELECT pg_notify('${GATES_CHANNEL}', '')`);
}
