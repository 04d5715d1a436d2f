import { UserError } from '../../errors.js';
import { parseRetryAfter, TransientError } from '../../fetch/retry.js';

export { backoffDelay, DEFAULT_RETRY, parseRetryAfter, sleep, TransientError, withRetries, type RetryPolicy } from '../../fetch/retry.js';

/** The most useful words of a fetch() failure (undici hides the socket error in `cause`). */
export function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message && cause.code && !cause.message.includes(cause.code)) return `${cause.message} (${cause.code})`;
  return cause?.message || cause?.code || (err as Error).message;
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
