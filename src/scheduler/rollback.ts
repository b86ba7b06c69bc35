/**
 * Rollbacks: a finished deployment whose rollback is pending or running (rollback_state, asked for
 * by finishMany for an app with on_failure "rollback", or by hand) is claimed like any due row and
 * taken one step here: the first call (`Provider.rollback`), a poll (`pollRollback`), or — when the
 * process making the call died (phase `executing` with its lease lapsed) — the call again with
 * `recovering` set, which providers answer by looking before acting. Its answers are applied as a
 * rollout's are (outcome.ts): follow → due again after the interval, lease released; retry → the
 * app's backoff, up to its max_attempts (while following: bounded by timeout_seconds); succeeded,
 * failed, not possible → final, with a timeline event and notifications (endRollbacks). A failed
 * rollback is loud: its error, an error log line, a `rollback_failed` notification.
 */
import { backoffSeconds } from '../core/retry.ts';
import { inTransaction } from '../db/pool.ts';
import { deferRollback, markRollbackAttempt, type RollbackFinish } from '../db/sql/rollbacks.ts';
import { insertEvents } from '../db/sql/events.ts';
import { providerCallDuration, rollbacksFinished } from '../observability/metrics.ts';
import { providerFor } from '../providers/index.ts';
import { NOT_POSSIBLE_REF_KEY, type Provider, type ProviderContext, type ProviderRef, type StepResult } from '../providers/types.ts';
import { endRollbacks } from '../services/transitions.ts';
import type { DbClock } from './clock.ts';
import type { Leases } from './leases.ts';
import { redactAll, type Outcomes } from './outcome.ts';
import type { Held, Run } from './types.ts';

/** A rollback's timeout_seconds when its target does not say (as for a rollout). */
const DEFAULT_ROLLBACK_TIMEOUT_SECONDS = 1800;

/** True when a claimed row is due for its rollback rather than for a rollout. */
export function isRollbackDue(row: { rollback_state: string | null }): boolean {
  return row.rollback_state === 'pending' || row.rollback_state === 'running';
}

export class Rollbacks {
  constructor(
    private readonly run: Run,
    private readonly clock: DbClock,
    private readonly leases: Leases,
    private readonly outcomes: Outcomes,
  ) {}

  /** Takes one step of a held row's rollback and applies its answer. Never rejects for a provider's sake. */
  async step(h: Held): Promise<void> {
    const row = h.row;
    const { pool, workerId } = this.run.o;
    const polling = row.rollback_phase === 'following';
    // Any call after the first may follow one that acted: a retry, or a process that died in it.
    const recovering = !polling && row.rollback_attempts > 0;
    let attempt = row.rollback_attempts;
    let startedAt = row.rollback_started_at;
    if (!polling) {
      const m = await markRollbackAttempt(pool, workerId, row.id);
      if (!m) return this.leases.release(h);
      attempt = m.attempts;
      startedAt = m.started_at;
      if (recovering && row.rollback_phase === 'executing') {
        this.outcomes.logFor(row).warn({ attempt }, 'a process stopped during this rollback\'s call; looking at what it did');
      }
    }
    const lines: string[] = [];
    const log = (line: string) => lines.push(`${new Date().toISOString()} rollback: ${line}\n`);
    const provider = providerFor(String(row.target.type)) as Provider | undefined;
    let result: StepResult;
    let secrets: readonly string[] = [];
    if (!provider?.rollback || (polling && !provider.pollRollback)) {
      result = { kind: 'failed', error: `the ${String(row.target.type)} provider cannot roll back`, ref: { [NOT_POSSIBLE_REF_KEY]: true } };
    } else {
      const t0 = performance.now();
      try {
        const resolved = await this.run.o.resolveTarget(row);
        secrets = resolved.secrets;
        const deploymentRef = (row.provider_ref as ProviderRef | null) ?? null;
        const rollbackRef = (row.rollback_ref as ProviderRef | null) ?? null;
        const ctx: ProviderContext = {
          deployment: {
            id: row.id, teamId: row.team_id, appId: row.app_id, appName: row.app_name, runAt: row.run_at,
            attempt: Math.max(1, attempt), startedAt: startedAt ?? new Date(this.clock.dbNow()),
          },
          target: resolved.target,
          credentials: resolved.credentials,
          ref: polling ? rollbackRef : deploymentRef,
          signal: this.run.signal,
          log,
          rollback: { seq: Math.max(1, row.rollback_seq), recovering, deploymentRef, rollbackRef },
        };
        result = await (polling ? provider.pollRollback!(ctx) : provider.rollback(ctx));
      } catch (err) {
        result = { kind: 'retry', error: (err as Error).message || String(err) };
      }
      providerCallDuration.observe({ provider: provider.type, outcome: result.kind }, (performance.now() - t0) / 1000);
    }
    if (this.run.stopping && this.run.signal.aborted) {
      // Shutdown cut the call short: the next process makes it again as a recovery.
      return this.leases.handBack([h]);
    }
    await this.apply(h, result, redactAll(lines.join(''), secrets), secrets, startedAt);
  }

  private async apply(h: Held, result: StepResult, log: string, secrets: readonly string[], startedAt: Date | null): Promise<void> {
    const row = h.row;
    const { pool, workerId } = this.run.o;
    if (result.kind === 'succeeded') {
      return this.end(h, { id: row.id, state: 'succeeded', error: null, ref: result.ref ?? null, log }, result.message ?? 'rolled back');
    }
    if (result.kind === 'failed') {
      const error = redactAll(result.error, secrets);
      const notPossible = result.ref?.[NOT_POSSIBLE_REF_KEY] === true;
      return this.end(h, { id: row.id, state: notPossible ? 'not_possible' : 'failed', error, ref: result.ref ?? null, log },
        notPossible ? `no rollback possible: ${error}` : `the rollback failed: ${error}`);
    }
    if (result.kind === 'follow') {
      const first = row.rollback_phase !== 'following';
      await inTransaction(pool, async (c) => {
        await deferRollback(c, workerId, row.id, { afterMs: result.afterSeconds * 1000, phase: 'following', ref: result.ref, log });
        if (first || result.message) {
          await insertEvents(c, [{ id: row.id, state: 'rollback_running', message: result.message ?? 'rollback started; following it' }]);
        }
      });
      if (first) this.outcomes.logFor(row).info({ rollback_ref: result.ref }, 'rollback started; following it');
      return this.leases.release(h);
    }
    // retry
    const error = redactAll(result.error, secrets);
    const timeoutS = Number(row.target.timeout_seconds ?? DEFAULT_ROLLBACK_TIMEOUT_SECONDS);
    if (row.rollback_phase === 'following') {
      if (startedAt && this.clock.dbNow() - startedAt.getTime() > timeoutS * 1000) {
        return this.end(h, { id: row.id, state: 'failed', error: `the rollback did not finish within ${timeoutS} s (timeout_seconds); last error: ${error}`, ref: result.ref ?? null, log }, 'the rollback timed out');
      }
      const wait = result.afterSeconds ?? Math.max(1, row.retry_backoff_seconds);
      this.outcomes.logFor(row).warn({ error }, 'following the rollback failed; trying again');
      await inTransaction(pool, async (c) => {
        await deferRollback(c, workerId, row.id, { afterMs: wait * 1000, phase: 'following', ref: result.ref ?? null, log });
        await insertEvents(c, [{ id: row.id, state: 'rollback_running', message: `following the rollback failed: ${error}; trying again in ${wait} s` }]);
      });
      return this.leases.release(h);
    }
    const attempts = row.rollback_attempts + 1;
    const max = row.retry_max_attempts;
    if (attempts >= max) {
      return this.end(h, { id: row.id, state: 'failed', error: `${error} (gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`, ref: result.ref ?? null, log }, `the rollback failed: ${error}`);
    }
    const wait = result.afterSeconds ?? backoffSeconds({ max_attempts: max, backoff_seconds: row.retry_backoff_seconds }, attempts);
    this.outcomes.logFor(row).warn({ attempt: attempts, error, retry_in_s: wait }, 'rollback attempt failed; retrying');
    await inTransaction(pool, async (c) => {
      await deferRollback(c, workerId, row.id, { afterMs: wait * 1000, phase: 'retry_wait', ref: result.ref ?? null, log, error });
      await insertEvents(c, [{ id: row.id, state: 'rollback_running', message: `rollback attempt ${attempts} failed: ${error}; retrying in ${wait} s` }]);
    });
    this.leases.release(h);
  }

  /** Ends a rollback (written at once: rollbacks are few, unlike a burst's deployments). */
  private async end(h: Held, finish: RollbackFinish, message: string): Promise<void> {
    const { pool } = this.run.o;
    for (let attempt = 0; ; attempt++) {
      try {
        const ended = await inTransaction(pool, (c) => endRollbacks(c, [{ finish, message }]));
        for (const r of ended) rollbacksFinished.inc({ state: r.state });
        break;
      } catch (err) {
        // The database is away: keep trying while the lease holds; past it, another process redoes the step.
        if (attempt > 20 || this.run.stopping || this.leases.lapsing(h)) {
          this.run.o.logger.warn({ deployment_id: h.row.id, err: (err as Error).message }, 'cannot record the rollback\'s end; another process will look again');
          return this.leases.release(h);
        }
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
      }
    }
    this.leases.release(h);
    const logger = this.outcomes.logFor(h.row);
    const line = { rollback_state: finish.state, ...(finish.ref ? { rollback_ref: finish.ref } : {}), ...(finish.error ? { error: finish.error } : {}) };
    if (finish.state === 'succeeded') logger.info(line, `deployment rolled back: ${message}`);
    // Loud: whoever watches the logs must see a rollback that did not restore what ran before.
    else logger.error(line, finish.state === 'not_possible' ? 'ROLLBACK NOT POSSIBLE: what ran before was not restored' : 'ROLLBACK FAILED: what ran before was not restored');
  }
}
