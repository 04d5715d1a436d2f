import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { appendFile, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheError, ContentCache } from '../fetch/cache.js';
import { DEFAULT_RETRY, usableLastModified, type Fetched, type RetryPolicy } from '../fetch/download.js';
import { getConditional } from './http-get.js';

/**
 * An on-disk cache of HTTP answers by URL, shared by every process that uses the same cache root:
 * - `entries/<sha256 of the URL>` holds one line of JSON (the URL, its `Last-Modified`, the body's length and
 *   sha256) followed by the body. Each read checks all of it: an entry that is truncated, altered, not a regular
 *   file or filed for another URL is evicted (one line to `log`) and fetched again.
 * - An entry is written to this process's own partial file (ContentCache's owner-marked names, so that a dead
 *   process's leftovers are cleared) and renamed into place: readers see the old entry or the new one, never a mix.
 * Revalidation: a stored answer with a `Last-Modified` is asked for with `If-Modified-Since`; a 304 returns the
 * stored body. A 304 to a request without that condition is an error (getConditional), never a cache hit.
 * Nothing is bigger than the caller's limit plus a bounded header, and there is one entry per URL.
 */

/** Room for the header line: the URL (bounded here too) and a few fixed fields. */
const MAX_HEADER = 16 * 1024;
const FORMAT = 'repro-oci-http-cache-1';

export interface CachedGetOptions {
  /** Largest body. */
  limit: number;
  retry?: RetryPolicy;
  /** Time limit of each request (headers and body). */
  timeoutMs?: number;
  /**
   * false: a stored body is returned without asking the server, and any answer is stored (for immutable objects,
   * such as attestations by URL). Default true: only answers with a `Last-Modified` are stored, and revalidated.
   */
  revalidate?: boolean;
}

interface Entry {
  body: Buffer;
  lastModified: string | undefined;
}

interface Header {
  format: string;
  url: string;
  lastModified: string | null;
  size: number;
  sha256: string;
}

const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

function headerProblem(header: unknown, size: number): string | undefined {
  if (typeof header !== 'object' || header === null) return 'no header';
  const h = header as Partial<Header>;
  if (h.format !== FORMAT) return 'not an entry of this format';
  if (typeof h.url !== 'string') return 'no URL';
  if (h.lastModified !== null && usableLastModified(h.lastModified) === undefined) return 'an unusable Last-Modified';
  if (typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256)) return 'no sha256';
  if (h.size !== size) return `${size} body bytes, expected ${String(h.size)}`;
  return undefined;
}

export class HttpCache {
  private readonly store: ContentCache;

  /** `root` is this cache's own directory; `log` hears of each entry evicted (one line). */
  constructor(readonly root: string, readonly log: (message: string) => void = () => {}) {
    this.store = new ContentCache(root);
  }

  /** The rebuilder answers under the repro-oci cache (--cache, $REPRO_OCI_CACHE, $XDG_CACHE_HOME/repro-oci): `rebuilders/`. */
  static at(dir?: string, log?: (message: string) => void): HttpCache {
    return new HttpCache(join(ContentCache.at(dir).root, 'rebuilders'), log);
  }

  private key(url: string): string {
    return sha256Hex(url);
  }

  entryPath(url: string): string {
    return join(this.root, 'entries', this.key(url));
  }

  /** The body `url` answers with: from the cache when it is current (or `revalidate: false`), else fetched and stored. */
  async get(url: string, what: string, options: CachedGetOptions): Promise<Buffer> {
    return (await this.fetch(url, what, options)).body;
  }

  /** `get`, with the answer's Last-Modified (the stored one after a 304). */
  async fetch(url: string, what: string, options: CachedGetOptions): Promise<Fetched> {
    const stored = await this.read(url, options.limit);
    if (stored && options.revalidate === false) return stored;
    // Only a stored answer with its Last-Modified is asked for conditionally, so a 304 always has a body to reuse.
    const condition = stored?.lastModified;
    const answer = await getConditional(url, what, options.limit, options.retry ?? DEFAULT_RETRY, options.timeoutMs, condition);
    if (answer === 'not modified') return stored!;
    if (answer.lastModified !== undefined || options.revalidate === false) await this.write(url, answer);
    return answer;
  }

  /** The stored body for `key`, checked in full, without asking the server; undefined when none is kept. */
  async stored(key: string, limit: number): Promise<Buffer | undefined> {
    return (await this.read(key, limit))?.body;
  }

  /** The stored entry for `key` (its body and Last-Modified), checked in full; undefined when none is kept. */
  async entry(key: string, limit: number): Promise<Fetched | undefined> {
    return this.read(key, limit);
  }

  /**
   * Stores `body` under `key` (a URL, or a name of the caller's that is none, such as a summary of a URL's answer
   * with the Last-Modified of the answer it was made from), to be read with `stored` or `entry`.
   */
  async keep(key: string, body: Buffer, lastModified?: string): Promise<void> {
    await this.write(key, { body, lastModified });
  }

  /** Drops the entry under `key`, if any, which its caller found wrong (`why`, one line to the log). */
  async evict(key: string, why: string): Promise<void> {
    await this.discard(this.entryPath(key), undefined, why);
  }

  /** The stored entry for `url` after checking all of it, or undefined (missing, or evicted as corrupt). */
  private async read(url: string, limit: number): Promise<Entry | undefined> {
    const path = this.entryPath(url);
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK); // a FIFO must not wait
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP') return this.discard(path, undefined, 'a symbolic link');
      throw cacheError(path, err);
    }
    let identity: string;
    let judged: Entry | string;
    try {
      const info = await handle.stat();
      identity = `${info.dev}:${info.ino}`;
      judged = info.isFile() ? await judge(handle, url, limit) : info.isDirectory() ? 'a directory' : 'not a regular file';
    } finally {
      await handle.close();
    }
    if (typeof judged !== 'string') return judged;
    return this.discard(path, identity, judged);
  }

  private async discard(path: string, identity: string | undefined, why: string): Promise<undefined> {
    await this.store.evict(path, identity);
    this.log(`cache: ${path} was corrupt (${why}): removed, fetching again`);
    return undefined;
  }

  private async write(url: string, answer: Fetched): Promise<void> {
    const header: Header = { format: FORMAT, url, lastModified: answer.lastModified ?? null, size: answer.body.length, sha256: sha256Hex(answer.body) };
    const line = Buffer.from(`${JSON.stringify(header)}\n`);
    if (line.length > MAX_HEADER) return; // a URL this long is fetched each time rather than stored
    const partial = await this.store.partial(`sha256:${this.key(url)}`, { resume: false });
    try {
      await writeFile(partial, line, { mode: 0o644 });
      await appendFile(partial, answer.body);
    } catch (err) {
      await rm(partial, { force: true });
      throw cacheError(partial, err);
    }
    await this.store.place(partial, this.entryPath(url));
  }
}

/** Reads a whole entry (at most one byte past the largest it may be) and checks it; a string says what is wrong. */
async function judge(handle: FileHandle, url: string, limit: number): Promise<Entry | string> {
  const most = MAX_HEADER + limit;
  const bytes = Buffer.allocUnsafe(Math.min((await handle.stat()).size, most) + 1);
  let length = 0;
  for (;;) {
    const { bytesRead } = await handle.read(bytes, length, bytes.length - length, null);
    if (bytesRead === 0) break;
    length += bytesRead;
    if (length === bytes.length) return length > most ? `more than ${most} bytes` : 'grew while being read';
  }
  const newline = bytes.subarray(0, Math.min(length, MAX_HEADER)).indexOf(0x0a);
  if (newline < 0) return 'no header line';
  let header: unknown;
  try {
    header = JSON.parse(bytes.subarray(0, newline).toString('utf8'));
  } catch {
    return 'a header that is not JSON';
  }
  const body = bytes.subarray(newline + 1, length);
  const problem = headerProblem(header, body.length);
  if (problem) return problem;
  const h = header as Header;
  if (h.url !== url) return 'the entry of another URL';
  const actual = sha256Hex(body);
  if (actual !== h.sha256) return `body has sha256 ${actual}, expected ${h.sha256}`;
  return { body, lastModified: h.lastModified ?? undefined };
}
