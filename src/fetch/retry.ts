import { UserError } from '../errors.js';

/** Retry policy for transient failures (connection errors, 5xx, 429). Tests shorten the delays. */
export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** $REPRO_OCI_RETRY_DELAY_MS shortens the first backoff delay (tests against a flaky local server use 1). */
const envDelay = Number(process.env.REPRO_OCI_RETRY_DELAY_MS);
export const DEFAULT_RETRY: RetryPolicy = Number.isFinite(envDelay) && envDelay >= 0
  ? { attempts: 5, baseDelayMs: envDelay, maxDelayMs: Math.max(envDelay, 1) * 30 }
  : { attempts: 5, baseDelayMs: 500, maxDelayMs: 15000 };

/** A failure another attempt may cure: a connection error or reset, HTTP 429 or 5xx, a body cut short. */
export class TransientError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TransientError';
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Retry-After as delta-seconds or an HTTP date, capped at a minute. */
export function parseRetryAfter(header: string | null | undefined): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 60_000);
  const date = Date.parse(header);
  if (Number.isFinite(date)) return Math.min(Math.max(0, date - Date.now()), 60_000);
  return undefined;
}

export function backoffDelay(policy: RetryPolicy, attempt: number, err: TransientError): number {
  return err.retryAfterMs ?? Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
}

/**
 * Runs `attempt` until it succeeds, fails with something other than a TransientError, or the policy's attempts
 * run out; then the last transient failure becomes a one-line UserError.
 */
export async function withRetries<T>(what: string, policy: RetryPolicy, attempt: (n: number) => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      if (n >= policy.attempts) throw new UserError(`${what}: ${err.message} (after ${n} attempts)`);
      await sleep(backoffDelay(policy, n, err));
    }
  }
}
