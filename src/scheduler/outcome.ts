/**
 * What a provider's answer does to its deployment: `succeeded` / `failed` end it (through the
 * Finisher, batched); `follow` parks a rollout in progress until its next poll (`due_at`, phase
 * `following`, lease released: following a 30-minute rollout occupies no worker between polls);
 * `retry` waits `backoff × 2ⁿ` for the next attempt, up to the app's `retry.max_attempts` — or,
 * while following, polls again after a backoff, bounded by the rollout's timeout.
 */
import { backoffSeconds } from '../core/retry.ts';
import type { DeploymentState } from '../core/state.ts';
import { inTransaction } from '../db/pool.ts';
import { appendLog, deferDeployment } from '../db/sql/deployments.ts';
import { insertEvents } from '../db/sql/events.ts';
import { deploymentLogger, type Logger } from '../observability/logger.ts';
import { providerCallDuration } from '../observability/metrics.ts';
import type { StepResult } from '../providers/types.ts';
import type { DbClock } from './clock.ts';
import type { Finisher } from './finisher.ts';
import type { Leases } from './leases.ts';
import type { CallOutcome, Held, Run } from './types.ts';

/** A rollout's timeout_seconds when its target does not say (the API's default). */
const DEFAULT_ROLLOUT_TIMEOUT_SECONDS = 1800;

export class Outcomes {
  constructor(
    private readonly run: Run,
    private readonly clock: DbClock,
    private readonly leases: Leases,
    private readonly finisher: Finisher,
  ) {}

  /** Applies the outcome of a call once it is answered. */
  async complete(h: Held, call: Promise<CallOutcome>): Promise<void> {
    return this.settle(h, await call);
  }

  /**
   * Applies an answered call's outcome. `marked`: the ids the scheduled → running write changed,
   * when the call was made before that write (a burst's webhooks); a row not among them was
   * canceled or taken over meanwhile and is let go.
   */
  async settle(h: Held, { result, lines, secrets, took }: CallOutcome, marked?: Set<string>): Promise<void> {
    const row = h.row;
    if (took) providerCallDuration.observe({ provider: took.provider, outcome: result.kind }, took.seconds);
    if (marked) {
      if (!marked.has(row.id)) {
        this.run.o.logger.warn({ deployment_id: row.id }, 'deployment was canceled or taken over while its webhook was sent');
        return this.leases.release(h);
      }
    }
    if (this.run.stopping && this.run.signal.aborted) {
      // Shutdown cut the call short: hand it back; the next process resumes it (recover).
      await appendLog(this.run.o.pool, row.id, lines.join('')).catch(() => {});
      return this.leases.handBack([h]);
    }
    await this.apply(h, result, redactAll(lines.join(''), secrets), secrets);
  }

  private async apply(h: Held, result: StepResult, log: string, secrets: readonly string[]): Promise<void> {
    const row = h.row;
    const { pool, workerId } = this.run.o;
    if (result.kind === 'succeeded') return this.end(h, 'succeeded', null, log, result.ref ?? null, result.message);
    if (result.kind === 'failed') return this.end(h, 'failed', redactAll(result.error, secrets), log, result.ref ?? null);
    if (result.kind === 'follow') {
      const firstFollow = row.phase !== 'following';
      if (firstFollow) this.logFor(row).info({ provider_ref: result.ref }, 'rollout started; following it');
      await inTransaction(pool, async (c) => {
        await deferDeployment(c, workerId, row.id, { afterMs: result.afterSeconds * 1000, phase: 'following', ref: result.ref, log });
        if (firstFollow || result.message) {
          await insertEvents(c, [{ id: row.id, state: 'running', message: result.message ?? 'rollout started; following it' }]);
        }
      });
      return this.leases.release(h);
    }
    // retry
    const error = redactAll(result.error, secrets);
    if (row.phase === 'following') {
      // A transient error while following a rollout: the deployment started already, so this is
      // not a failed attempt; poll again after a backoff. The rollout's timeout bounds it here
      // too, since the provider that would enforce it may not even be reached (a credential that
      // can no longer be loaded, a key that does not decrypt).
      const timeoutS = Number(row.target.timeout_seconds ?? DEFAULT_ROLLOUT_TIMEOUT_SECONDS);
      if (row.started_at && this.clock.dbNow() - row.started_at.getTime() > timeoutS * 1000) {
        return this.end(h, 'failed', `the rollout did not finish within ${timeoutS} s (timeout_seconds); last error: ${error}`, log, result.ref ?? null);
      }
      this.logFor(row).warn({ error }, 'following the rollout failed; trying again');
      const wait = result.afterSeconds ?? Math.max(1, row.retry_backoff_seconds);
      await inTransaction(pool, async (c) => {
        await deferDeployment(c, workerId, row.id, { afterMs: wait * 1000, phase: 'following', ref: result.ref ?? null, log });
        await insertEvents(c, [{ id: row.id, state: 'running', message: `following the rollout failed: ${error}; trying again in ${wait} s` }]);
      });
      return this.leases.release(h);
    }
    const max = row.retry_max_attempts;
    if (row.attempts >= max) {
      return this.end(h, 'failed', `${error} (gave up after ${row.attempts} attempt${row.attempts === 1 ? '' : 's'})`, log, result.ref ?? null);
    }
    const wait = result.afterSeconds ?? backoffSeconds({ max_attempts: max, backoff_seconds: row.retry_backoff_seconds }, row.attempts);
    this.logFor(row).warn({ attempt: row.attempts, error, retry_in_s: wait }, 'attempt failed; retrying');
    await inTransaction(pool, async (c) => {
      await deferDeployment(c, workerId, row.id, { afterMs: wait * 1000, phase: 'retry_wait', ref: result.ref ?? null, log, error });
      await insertEvents(c, [{ id: row.id, state: 'running', message: `attempt ${row.attempts} failed: ${error}; retrying in ${wait} s` }]);
    });
    this.leases.release(h);
  }

  /** Ends a held row (batched by the Finisher); it is released once the state is written. */
  end(h: Held, state: DeploymentState, error: string | null, log = '', ref: Record<string, unknown> | null = null, message?: string): void {
    this.finisher.add({ id: h.row.id, state, error, log, ref }, message ?? error ?? state, () => {
      this.leases.release(h);
      // Logged once the state is written (after a burst's quiet window), not during the sends.
      const line = { state, attempts: h.row.attempts, ...(error ? { error } : {}) };
      if (state === 'succeeded') this.logFor(h.row).info(line, 'deployment succeeded');
      else this.logFor(h.row).warn(line, `deployment ${state}`);
    });
  }

  /** A logger whose lines carry the deployment, its app and its team. */
  logFor(row: { id: string; app_name: string; team_id: string }): Logger {
    return deploymentLogger(this.run.o.logger, { deploymentId: row.id, app: row.app_name, team: row.team_id });
  }
}

export function redactAll(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out;
}
