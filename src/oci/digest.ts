import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, UserError } from '../errors.js';

/** An OCI content digest, always `sha256:<64 lowercase hex>` in this project. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

/** Parses a digest from outside; other algorithms are refused rather than trusted unchecked. */
export function parseDigest(value: unknown, what = 'digest'): Digest {
  if (typeof value === 'string' && DIGEST_RE.test(value)) return value as Digest;
  if (typeof value === 'string' && value.startsWith('sha256:')) {
    const hex = value.slice('sha256:'.length);
    const found = /^[0-9a-fA-F]*$/.test(hex) ? `${hex.length} hex digits${/[A-F]/.test(hex) ? ' (not all lowercase)' : ''}` : 'other characters';
    throw new UserError(`${what} ${JSON.stringify(value)} is malformed: a sha256 digest is 64 lowercase hex digits, this has ${found}`);
  }
  if (typeof value === 'string' && /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(value)) {
    throw new UserError(`${what} ${value}: only sha256 digests are supported`);
  }
  throw new UserError(`${what} ${JSON.stringify(value)} is not a valid sha256 digest`);
}

export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Counts and hashes the bytes that pass through it, unchanged. */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  private result: Digest | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }

  /** Available once the stream has ended. */
  digest(): Digest {
    if (!this.result) this.result = `sha256:${this.hash.digest('hex')}`;
    return this.result;
  }
}

/**
 * Passes bytes through while checking them against an expected digest and size; it fails the stream instead of
 * ending it when they do not match, so a consumer that writes to a temporary file never commits unverified bytes.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private seen = 0;

  constructor(
    private readonly expected: Digest,
    private readonly expectedSize: number | undefined,
    private readonly what: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.expectedSize !== undefined && this.seen > this.expectedSize) {
      done(new DigestMismatchError(`${this.what}: more than the ${this.expectedSize} bytes its descriptor declares`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.expectedSize !== undefined && this.seen !== this.expectedSize) {
      done(new DigestMismatchError(`${this.what}: ${this.seen} bytes, but its descriptor declares ${this.expectedSize}`));
      return;
    }
    const actual = `sha256:${this.hash.digest('hex')}`;
    if (actual !== this.expected) {
      done(new DigestMismatchError(`${this.what}: content has digest ${actual}, expected ${this.expected}`));
      return;
    }
    done();
  }
}

/**
 * Chunks checked against a digest and size, as a stream that starts only when it is read: nothing flows, and no
 * verdict is emitted, before the consumer listens for the failure (a short blob with wrong bytes would
 * otherwise fail before anyone is there to hear it).
 */
export function verifiedStream(chunks: AsyncIterable<Buffer | Uint8Array>, expected: Digest, size: number | undefined, what: string): Readable {
  async function* run(): AsyncGenerator<Buffer> {
    const verify = new VerifyingStream(expected, size, what);
    const input = Readable.from(chunks, { objectMode: false });
    input.on('error', (err) => verify.destroy(err));
    input.pipe(verify);
    try {
      for await (const chunk of verify) yield chunk as Buffer;
    } finally {
      input.destroy();
    }
  }
  return Readable.from(run(), { objectMode: false });
}

/** An iterable over `iterator` that a consumer cannot close: stopping early leaves the rest for its owner to drain. */
export function unclosable<T>(iterator: AsyncIterator<T>): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => ({ next: () => iterator.next() }) };
}

/** Reads a stream to its end and drops the bytes, for the checks its source makes there. */
export async function discard(chunks: AsyncIterable<unknown>): Promise<void> {
  for await (const chunk of chunks) void chunk;
}

/** The sha256 of a whole file, streamed. */
export async function fileDigest(path: string): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** Whether the file at `path` holds exactly the bytes `digest` names (hashed in full). */
export async function fileHasDigest(path: string, digest: Digest): Promise<boolean> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch {
    return false; // missing, a directory, unreadable: not the blob
  }
  return `sha256:${hash.digest('hex')}` === digest;
}

/** Reads an iterator to its end, for the checks its source makes there (a verifier's digest verdict). */
export async function drainIterator(iterator: AsyncIterator<unknown>): Promise<void> {
  while (!(await iterator.next()).done);
}

/**
 * Hands `chunks` to `consume`, then reads whatever it left to the end, so a verifying source gives its verdict
 * before the result is used: a consumer that stops early (it found what it wanted, or its format ended before
 * the blob did) cannot skip the check. When `consume` fails, the source is closed instead (which still checks a
 * decompressing source's whole blob: see decompressAuto), and a mismatch found there wins over consume's error.
 */
export async function consumeWhole<T>(chunks: AsyncIterable<Buffer>, consume: (chunks: AsyncIterable<Buffer>) => Promise<T>): Promise<T> {
  const iterator = chunks[Symbol.asyncIterator]();
  let result: T;
  try {
    result = await consume(unclosable(iterator));
  } catch (err) {
    await iterator.return?.();
    throw err;
  }
  await drainIterator(iterator);
  return result;
}
