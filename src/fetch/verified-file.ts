import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { DigestMismatchError } from '../errors.js';
import type { Digest } from '../oci/digest.js';

const CHUNK = 256 * 1024;

/**
 * A file read once, every byte hashed, that is judged only when all of it has been read: a consumer may stop
 * early (a tar reader at its end-of-archive blocks), and `mismatch()` then reads the rest itself. So bytes past
 * the point a consumer cared about, or a file swapped or rewritten after an earlier check, cannot slip through.
 * Symlinks are not followed and anything but a regular file (a directory, a FIFO) is a mismatch.
 */
export class VerifiedFile {
  private readonly hash = createHash('sha256');
  private seen = 0;
  private problem: string | undefined;
  /** Reads are chained: the consumer's read-ahead may still be in flight when `mismatch()` starts reading. */
  private reading: Promise<unknown> = Promise.resolve();
  private verdict: Promise<string | undefined> | undefined;

  private constructor(
    private handle: FileHandle | undefined,
    private readonly expected: Digest,
    private readonly size: number | undefined,
    /** Device and inode of what was opened, to tell it from whatever takes its name later. */
    readonly identity: string | undefined,
    why?: string,
  ) {
    this.problem = why;
  }

  /** Opens `path`; a missing file is an ENOENT error, anything else wrong is reported by `mismatch()`. */
  static async open(path: string, expected: Digest, size?: number): Promise<VerifiedFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK); // a FIFO must not wait for a writer
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') return new VerifiedFile(undefined, expected, size, undefined, 'a symbolic link');
      throw err;
    }
    const info = await handle.stat();
    const identity = `${info.dev}:${info.ino}`;
    if (info.isFile()) return new VerifiedFile(handle, expected, size, identity);
    await handle.close();
    return new VerifiedFile(undefined, expected, size, identity, info.isDirectory() ? 'a directory' : 'not a regular file');
  }

  /** The bytes, in order; stops (without a verdict) at the first problem. */
  async *chunks(): AsyncGenerator<Buffer> {
    for (let chunk = await this.next(); chunk; chunk = await this.next()) yield chunk;
  }

  /** Reads whatever is left, closes the file, and says why it does not match, or undefined when every byte did. */
  mismatch(): Promise<string | undefined> {
    this.verdict ??= this.judge();
    return this.verdict;
  }

  private async judge(): Promise<string | undefined> {
    try {
      while (await this.next());
    } finally {
      await this.handle?.close();
      this.handle = undefined;
    }
    if (this.problem) return this.problem;
    if (this.size !== undefined && this.seen !== this.size) return `${this.seen} bytes, expected ${this.size}`;
    const actual = `sha256:${this.hash.digest('hex')}`;
    return actual === this.expected ? undefined : `content has digest ${actual}, expected ${this.expected}`;
  }

  /** Like `mismatch()`, as a DigestMismatchError naming `what`. */
  async verify(what: string): Promise<void> {
    const why = await this.mismatch();
    if (why) throw new DigestMismatchError(`${what}: ${why}`);
  }

  private next(): Promise<Buffer | undefined> {
    const read = this.reading.then(() => this.read());
    this.reading = read.catch(() => undefined);
    return read;
  }

  private async read(): Promise<Buffer | undefined> {
    if (!this.handle || this.problem) return undefined;
    const buffer = Buffer.allocUnsafe(CHUNK);
    const { bytesRead } = await this.handle.read(buffer, 0, CHUNK, null);
    if (bytesRead === 0) return undefined;
    this.seen += bytesRead;
    // Bounded by the size that names it: a file that keeps growing is not read for ever.
    if (this.size !== undefined && this.seen > this.size) {
      this.problem = `more than the ${this.size} bytes expected`;
      return undefined;
    }
    const chunk = buffer.subarray(0, bytesRead);
    this.hash.update(chunk);
    return chunk;
  }
}
