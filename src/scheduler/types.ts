/**
 * What the scheduler's parts share: its options, a claimed row as the process holds it, and the
 * few process-wide facts (stopping, the shutdown signal, in-flight work) every part may need.
 */
import type { Listener } from '../db/listener.ts';
import type { Pool } from '../db/pool.ts';
import type { ClaimedRow } from '../db/sql/deployments.ts';
import type { Logger } from '../observability/logger.ts';
import type { Credentials, StepResult } from '../providers/types.ts';
import type { GateVerdict } from './gates.ts';

export interface SchedulerOptions {
  pool: Pool;
  listener: Listener;
  logger: Logger;
  workerId: string;
  prefetchMs: number;
  pollIntervalMs: number;
  leaseSeconds: number;
  /** Rows claimed per statement. */
  batchSize?: number;
  /** Webhook calls made to a throwaway local server at start, DISPATCH_CHUNK at a time (default 2,000; 0: none). */
  warmUpCalls?: number;
  /**
   * Test only: pretend this machine's clock is off by this many ms (a process clock ahead of or
   * behind the database's). Default: SHIPCLOCK_TEST_CLOCK_OFFSET_MS, else 0. Never set it in production.
   */
  testClockOffsetMs?: number;
  /** Turns an app's stored target into the one a provider gets (secrets decrypted) and loads its credentials. */
  resolveTarget(row: ClaimedRow): Promise<Resolved>;
}

export interface Resolved {
  target: Record<string, unknown>;
  credentials?: Credentials;
  secrets: readonly string[];
}

/** A row this process has claimed (leased), from the claim until it is handed back or ended. */
export interface Held {
  row: ClaimedRow;
  /** Local-clock time until which our lease is certainly valid. */
  leaseValidUntil: number;
  inFlight: boolean;
  /** The instant (local timer slot) it waits for, while it waits. */
  slot?: number;
  /** Its target, resolved at claim time so that nothing is left to do at the instant but the call. */
  resolved?: Resolved;
  /** The fire gates' verdicts for its claimed batch, checked at claim time (gates.ts); re-checked at the instant if stale. */
  gate?: GateCheck;
}

/** The fire gates' claim-time check of one claimed batch, shared by its rows (one object per batch, not per row). */
export interface GateCheck {
  /** The gate epoch (changes announced on GATES_CHANNEL) the check saw. */
  epoch: number;
  /** By row id, the rows a gate stopped (a row not in it may run); undefined: not known (pending or failed). */
  verdicts?: ReadonlyMap<string, GateVerdict>;
}

export interface CallOutcome {
  result: StepResult;
  lines: string[];
  secrets: readonly string[];
  /** The provider called and how long the call took (s), for providerCallDuration once the outcome is applied. */
  took?: { provider: string; seconds: number };
}

/** Process-wide facts of one scheduler, given to each of its parts. */
export interface Run {
  readonly o: SchedulerOptions;
  readonly stopping: boolean;
  /** Aborted when a graceful stop runs out of time: in-flight calls give up and are handed back. */
  readonly signal: AbortSignal;
  /** Keeps a step in the in-flight set until it settles (a graceful stop waits for them). */
  track(p: Promise<void>): void;
}
