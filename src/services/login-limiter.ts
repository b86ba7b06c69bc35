/**
 * Failed sign-ins are limited per email and per client address, over a sliding window, in
 * PostgreSQL (table login_failures), so the limit holds however many processes answer logins.
 *
 * An attempt is recorded *before* the password is checked and counted with every other attempt
 * in the window; it is deleted again when it succeeds or is refused for the limit. Recording
 * first means that a burst of parallel guesses sees itself: the count can only overshoot (refuse
 * an attempt early), never let more than the limit through. An unknown email is counted exactly
 * like a known one, so the limit does not tell which emails exist.
 */
import { createHash } from 'node:crypto';
import type { LoginLimits } from '../config.ts';
import { RateLimitedError } from '../core/errors.ts';
import type { Pool } from '../db/pool.ts';
import {
  clearEmailFailures, countLoginFailures, deleteLoginAttempt, deleteOldLoginFailures, insertLoginAttempt, secondsUntilBelow,
} from '../db/sql/login-failures.ts';

/** How often a process deletes rows that left the window (while logins happen). */
const CLEANUP_EVERY_MS = 60_000;

export interface LoginAttempt {
  id: string;
  emailKey: Buffer;
}

export function emailKey(email: string): Buffer {
  return createHash('sha256').update(email.trim().toLowerCase()).digest();
}

export class LoginLimiter {
  private lastCleanup = 0;

  constructor(private readonly pool: Pool, private readonly limits: LoginLimits) {}

  /** Records an attempt for `email` from `address`; 429 (nothing recorded) when either is over its limit. */
  async begin(email: string, address: string): Promise<LoginAttempt> {
    const key = emailKey(email);
    const { windowSeconds, perEmail, perAddress } = this.limits;
    this.cleanup();
    const id = await insertLoginAttempt(this.pool, key, address);
    const n = await countLoginFailures(this.pool, key, address, windowSeconds);
    if (n.by_email <= perEmail && n.by_address <= perAddress) return { id, emailKey: key };
    await deleteLoginAttempt(this.pool, id);
    let wait = 1;
    if (n.by_email > perEmail) wait = Math.max(wait, await secondsUntilBelow(this.pool, 'email_key', key, perEmail, windowSeconds));
    if (n.by_address > perAddress) wait = Math.max(wait, await secondsUntilBelow(this.pool, 'address', address, perAddress, windowSeconds));
    throw new RateLimitedError(`too many failed sign-ins; try again in ${wait} s`, wait);
  }

  /** The attempt succeeded: it, and the email's earlier failures, no longer count. */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    await deleteLoginAttempt(this.pool, attempt.id);
    await clearEmailFailures(this.pool, attempt.emailKey);
  }

  private cleanup(): void {
    const now = Date.now();
    if (now - this.lastCleanup < CLEANUP_EVERY_MS) return;
    this.lastCleanup = now;
    deleteOldLoginFailures(this.pool, this.limits.windowSeconds).catch(() => { this.lastCleanup = 0; });
  }
}
