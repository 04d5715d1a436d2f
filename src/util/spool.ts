import { closeSync, openSync, readSync as readSync_, writeSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { ContentOpener } from '../tar/entry.js';

/** Bytes read back per chunk: large enough that per-chunk stream overhead vanishes, small enough to stay flat. */
const READ_CHUNK = 256 * 1024;

/**
 * One append-only scratch file that holds many file contents back to back; each is read back by its byte range.
 * Reads and writes are synchronous on purpose: the file was just written and sits in the page cache, so they
 * are memory copies, and keeping them off libuv's thread pool leaves that pool to the layer compressor instead
 * of queueing three requests (open, read, close) per file behind its blocks.
 */
export class Spool {
  private fd: number | undefined;
  private size = 0;

  /** `path` must not exist yet (it is created 0600 and owned by this spool). */
  constructor(private readonly path: string) {}

  private handle(): number {
    this.fd ??= openSync(this.path, 'wx+', 0o600);
    return this.fd;
  }

  /** Appends a chunk and returns its offset. */
  append(chunk: Uint8Array): number {
    const offset = this.size;
    const fd = this.handle();
    for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done, offset + done);
    this.size += chunk.length;
    return offset;
  }

  /** Appends a whole stream and returns its opener and size (one store at a time: appends must not interleave). */
  async store(source: AsyncIterable<Uint8Array>): Promise<{ open: ContentOpener; size: number }> {
    const offset = this.size;
    for await (const chunk of source) this.append(chunk);
    return { open: this.opener(offset, this.size - offset), size: this.size - offset };
  }

  /** The content stored at [offset, offset + size): a stream each time it is called, and positional reads. */
  opener(offset: number, size: number): ContentOpener {
    const readSync = (position: number, into: Uint8Array, at: number, length: number): number => {
      const n = Math.min(length, size - position);
      return n <= 0 ? 0 : readSync_(this.handle(), into, at, n, offset + position);
    };
    const open = (): Readable => Readable.from(this.chunks(readSync, size), { objectMode: false });
    return Object.assign(open, { readSync, spooled: { file: this.path, offset } });
  }

  private *chunks(read: NonNullable<ContentOpener['readSync']>, size: number): Generator<Buffer> {
    for (let done = 0; done < size; ) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - done));
      const n = read(done, buf, 0, buf.length);
      if (n === 0) throw new Error(`spool ${this.path}: ends before the ${size} bytes it holds`);
      done += n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
