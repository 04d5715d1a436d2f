import { UserError } from '../../errors.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../../fetch/download.js';

export type { RetryPolicy };
export { DEFAULT_RETRY };

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
export function parseRetryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 60_000);
  const date = Date.parse(header);
  if (Number.isFinite(date)) return Math.min(Math.max(0, date - Date.now()), 60_000);
  return undefined;
}

/** The most useful words of a fetch() failure (undici hides the socket error in `cause`). */
export function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message && cause.code && !cause.message.includes(cause.code)) return `${cause.message} (${cause.code})`;
  return cause?.message || cause?.code || (err as Error).message;
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

/** One fetch() whose network failures and 429/5xx answers are TransientErrors (the body of those is discarded). */
export async function fetchOnce(url: string, init: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10 * 60 * 1000), ...init });
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new TransientError(`${init.method ?? 'GET'} ${url}: ${describeNetworkError(err)}`);
  }
  if (response.status === 429 || response.status >= 500) {
    await response.body?.cancel().catch(() => {});
    throw new TransientError(`${init.method ?? 'GET'} ${url}: HTTP ${response.status}`, parseRetryAfter(response.headers.get('retry-after')));
  }
  return response;
}

/** Reads a whole response body, at most `limit` bytes; a body shorter than its Content-Length is transient. */
export async function readBody(response: Response, url: string, limit: number, what: string): Promise<Buffer> {
  const declared = response.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) {
    await response.body?.cancel().catch(() => {});
    throw new UserError(`${what}: ${declared} bytes is more than the ${limit} allowed`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    if (response.body) {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        total += chunk.length;
        if (total > limit) throw new UserError(`${what}: more than the ${limit} bytes allowed`);
        chunks.push(Buffer.from(chunk));
      }
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new TransientError(`${url}: connection lost after ${total} bytes (${describeNetworkError(err)})`);
  }
  if (declared !== null && total !== Number(declared)) throw new TransientError(`${url}: truncated (${total} of ${declared} bytes)`);
  return Buffer.concat(chunks);
}
