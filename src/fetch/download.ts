import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { DigestMismatchError, NotFoundError, UserError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { readSmall } from '../util/fs.js';
import type { ContentCache } from './cache.js';
import { Progress } from '../util/progress.js';
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, sleep, TransientError, withRetries, type RetryPolicy } from './retry.js';

export { DEFAULT_RETRY, type RetryPolicy } from './retry.js';

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

/** A download that sends more than the size that names it: wrong for that URL, whatever the rest would be. */
class OverlongError extends UserError {}

/** Largest download when the lock declares no size (a database without %CSIZE%): larger than any Arch package. */
export const MAX_UNSIZED_DOWNLOAD = 16 * 1024 ** 3;

/**
 * Fetches `url` into `partial`, resuming from what is already there with a Range request. Never writes more than
 * `size` bytes into it. Returns when the server has sent everything; the caller verifies.
 */
async function fetchIntoPartial(url: string, partial: string, size: number | undefined, progress: Progress): Promise<void> {
  const limit = size ?? MAX_UNSIZED_DOWNLOAD;
  const have = (await stat(partial).catch(() => undefined))?.size ?? 0;
  const resumeFrom = have > limit ? 0 : have;
  const headers: Record<string, string> = resumeFrom > 0 ? { Range: `bytes=${resumeFrom}-` } : {};
  let response: Response;
  try {
    response = await fetch(url, { headers, redirect: 'follow', signal: AbortSignal.timeout(10 * 60 * 1000) });
  } catch (err) {
    throw new TransientError(`${url}: ${describeNetworkError(err)}`);
  }
  if (response.status === 429 || response.status >= 500) {
    await response.body?.cancel();
    throw new TransientError(`${url}: HTTP ${response.status}`, parseRetryAfter(response.headers.get('retry-after')));
  }
  if (response.status === 416 && resumeFrom === limit) return; // already complete
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel();
    if (response.status === 404) throw new NotFoundError(`${url}: HTTP 404 (not found)`);
    throw new UserError(`${url}: HTTP ${response.status}`);
  }
  const append = response.status === 206 && resumeFrom > 0;
  const start = append ? resumeFrom : 0;
  const tooLong = (): OverlongError => new OverlongError(`${url}: more than the ${limit} bytes expected`);
  if (Number(response.headers.get('content-length') ?? 0) > limit - start) {
    await response.body?.cancel();
    throw tooLong();
  }
  if (!response.body) throw new TransientError(`${url}: empty response`);
  progress.start(size, start);
  // Each chunk is on disk before the next is read, so a broken connection leaves a partial file to resume from.
  const file = await open(partial, append ? 'a' : 'w', 0o644);
  let written = start;
  try {
    // Iterating the web stream itself: Readable.fromWeb can drop the last chunk when the connection breaks.
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (written + chunk.length > limit) throw tooLong(); // leaving the loop cancels the body
      await file.write(chunk);
      written += chunk.length;
      progress.advance(chunk.length);
    }
  } catch (err) {
    if (err instanceof OverlongError) throw err;
    throw new TransientError(`${url}: connection lost after ${written} bytes (${describeNetworkError(err)})`);
  } finally {
    await file.close();
    progress.stop();
  }
}

/** The local path of a `file:` URL; one that names another host or cannot be decoded is a one-line error. */
function localPath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    throw new UserError(`${url}: not a usable file: URL (another host, or not decodable)`);
  }
}

/** Copies a local file into `partial`, reading at most one byte more than `size` (to tell that it is longer). */
async function copyIntoPartial(url: string, partial: string, size: number | undefined): Promise<void> {
  const limit = size ?? MAX_UNSIZED_DOWNLOAD;
  const path = localPath(url);
  if (!(await stat(path).catch(() => undefined))?.isFile()) throw new NotFoundError(`${url}: no such file`);
  let copied = 0;
  const counted = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      copied += chunk.length;
      if (copied > limit) throw new OverlongError(`${url}: more than the ${limit} bytes expected`);
      yield chunk;
    }
  };
  await pipeline(createReadStream(path, { end: limit }), counted, createWriteStream(partial, { mode: 0o644 }));
}

/**
 * Puts the file that `urls` name into the cache, checked against `digest` (and `size` when known), and returns
 * its cache path and whether it had to be fetched. A cached copy is hashed in full first (and evicted if it does
 * not match). Mirrors are tried in order; transient failures are retried with exponential backoff and a
 * partial download resumes where it stopped. No download grows past `size`, and nothing unverified ever
 * reaches the cache. `check` (a signature) runs on the verified bytes, cached or fetched.
 */
export async function downloadToCache(
  cache: ContentCache,
  urls: string[],
  digest: Digest,
  size: number | undefined,
  what: string,
  options: { retry?: RetryPolicy; check?: (file: string) => Promise<void>; log?: (message: string) => void } = {},
): Promise<{ path: string; fetched: boolean }> {
  const log = options.log ?? (() => {}); // a library prints nothing of its own
  const cached = await cache.lookup(digest, size, log);
  if (cached) {
    await options.check?.(cached);
    return { path: cached, fetched: false };
  }
  const retry = options.retry ?? DEFAULT_RETRY;
  const partial = await cache.partial(digest);
  const failures: string[] = [];
  const failed = (message: string, index: number): void => {
    failures.push(message);
    if (index < urls.length - 1) log(`${what}: ${message}; trying the next location`);
  };
  for (const [index, url] of urls.entries()) {
    const scheme = url.startsWith('file:') ? 'file' : /^https?:/.test(url) ? 'http' : undefined;
    if (!scheme) {
      failed(`${url}: unsupported URL scheme`, index);
      continue;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        if (scheme === 'file') await copyIntoPartial(url, partial, size);
        else await fetchIntoPartial(url, partial, size, new Progress(what, { brief: true }));
      } catch (err) {
        if (err instanceof OverlongError) await rm(partial, { force: true });
        if (!(err instanceof TransientError) || attempt >= retry.attempts) {
          failed(err instanceof Error ? err.message : String(err), index);
          break;
        }
        await sleep(backoffDelay(retry, attempt, err));
        continue;
      }
      // Complete: hash it (and check it); wrong bytes are deleted and the next mirror is tried.
      try {
        return { path: await cache.promote(partial, digest, size, `${what} from ${url}`, options.check), fetched: true };
      } catch (err) {
        if (!(err instanceof DigestMismatchError)) throw err;
        failed(err.message, index);
        break;
      }
    }
  }
  throw new UserError(`${what}: could not be downloaded: ${failures.join('; ') || 'no URL'}`);
}

/**
 * Fetches a file whose digest is not known in advance (a package named only by its name and version) into `file`,
 * at most `limit` bytes, with the same retries and resumption. One that does not exist is a NotFoundError. The
 * caller must hash all of it, and check it, before any use.
 */
export async function downloadUnverified(url: string, file: string, limit: number, what: string, retry: RetryPolicy = DEFAULT_RETRY): Promise<void> {
  await withRetries(what, retry, async () => {
    try {
      if (url.startsWith('file:')) await copyIntoPartial(url, file, limit);
      else await fetchIntoPartial(url, file, limit, new Progress(what, { brief: true }));
    } catch (err) {
      if (err instanceof OverlongError) await rm(file, { force: true });
      throw err;
    }
  });
}

/**
 * Fetches a small document whose digest is not known in advance (a repository database) fully into memory,
 * with the same retries. Callers record the digest of what they got. A document that does not exist is a
 * NotFoundError; a failure that persists after the retries is a plain UserError. `timeoutMs` bounds each attempt,
 * headers and body together (an attempt that runs out of time is retried like a lost connection).
 */
export async function fetchBytes(url: string, what: string, limit: number, retry: RetryPolicy = DEFAULT_RETRY, timeoutMs = 5 * 60 * 1000): Promise<Buffer> {
  return ((await fetchConditional(url, what, limit, retry, timeoutMs)) as Fetched).body;
}

/** A complete 200 answer, with the `Last-Modified` it carried (printable ASCII, as sent; undefined when none). */
export interface Fetched {
  body: Buffer;
  lastModified: string | undefined;
}

/** The longest `Last-Modified` kept: an HTTP date is 29 characters. */
const MAX_LAST_MODIFIED = 100;

/** A header value safe to send back as it came (no control characters), or undefined. */
export function usableLastModified(value: string | null | undefined): string | undefined {
  return value && value.length <= MAX_LAST_MODIFIED && /^[\x20-\x7e]+$/.test(value) ? value : undefined;
}

/**
 * fetchBytes with `If-Modified-Since: ifModifiedSince` when given: 'not modified' for a 304 to that condition.
 * A 304 to a request that carried no condition answers nothing that was asked: a one-line error, never retried.
 */
export async function fetchConditional(url: string, what: string, limit: number, retry: RetryPolicy = DEFAULT_RETRY, timeoutMs = 5 * 60 * 1000, ifModifiedSince?: string): Promise<Fetched | 'not modified'> {
  if (url.startsWith('file:')) {
    const path = localPath(url);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw new NotFoundError(`${what}: ${url}: no such file`);
    if (info.size > limit) throw new UserError(`${what}: ${url}: ${info.size} bytes exceeds the ${limit}-byte limit`);
    // The file may have grown since: read at most one byte past the limit, and refuse that byte.
    return { body: await readSmall(createReadStream(path, { end: limit }), limit, `${what}: ${url}`), lastModified: undefined };
  }
  const headers: Record<string, string> = ifModifiedSince !== undefined ? { 'If-Modified-Since': ifModifiedSince } : {};
  return withRetries(what, retry, async () => {
    let response: Response;
    try {
      response = await fetch(url, { headers, redirect: 'follow', signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new TransientError(`${url}: ${describeNetworkError(err)}`);
    }
    if (response.status === 429 || response.status >= 500) {
      await response.body?.cancel();
      throw new TransientError(`${url}: HTTP ${response.status}`, parseRetryAfter(response.headers.get('retry-after')));
    }
    if (response.status === 304) {
      await response.body?.cancel();
      if (ifModifiedSince === undefined) throw new UserError(`${what}: ${url}: HTTP 304 (not modified) to a request that was not conditional`);
      return 'not modified';
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      if (response.status === 404) throw new NotFoundError(`${what}: ${url}: HTTP 404 (not found)`);
      throw new UserError(`${what}: ${url}: HTTP ${response.status}`);
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > limit) throw new UserError(`${what}: ${url}: ${declared} bytes exceeds the ${limit}-byte limit`);
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>)) {
        total += (chunk as Buffer).length;
        if (total > limit) throw new UserError(`${what}: ${url}: more than the ${limit}-byte limit`);
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new TransientError(`${url}: connection lost (${describeNetworkError(err)})`);
    }
    if (Number.isFinite(declared) && total !== declared) throw new TransientError(`${url}: truncated (${total} of ${declared} bytes)`);
    return { body: Buffer.concat(chunks), lastModified: usableLastModified(response.headers.get('last-modified')) };
  });
}
