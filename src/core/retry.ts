/** Retry policy for transient failures (network errors, 5xx, 429, provider throttling). */
export interface RetryPolicy {
  /** Total attempts including the first. Default 3. */
  max_attempts: number;
  /** Delay before the second attempt; doubles each attempt after. Default 10. */
  backoff_seconds: number;
}

export const DEFAULT_RETRY: RetryPolicy = { max_attempts: 3, backoff_seconds: 10 };

/** Seconds to wait after failed attempt `attempt` (1-based), capped at one hour. */
export function backoffSeconds(policy: RetryPolicy, attempt: number): number {
  return Math.min(3600, policy.backoff_seconds * 2 ** Math.max(0, attempt - 1));
}
