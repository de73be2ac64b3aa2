/** When and how long the real adapter waits before trying Mollie again. */

export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** First backoff delay; doubles on every retry. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After longer than this is not waited out: the caller gets `rate_limited` with the delay instead. */
  retryAfterCeilingMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxRetries: 3,
  baseDelayMs: 200,
  maxDelayMs: 2_000,
  retryAfterCeilingMs: 5_000,
});

/**
 * Exponential backoff with jitter ("equal jitter"): half the delay is fixed, half random, so retries of many
 * callers spread out but never come back immediately.
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
