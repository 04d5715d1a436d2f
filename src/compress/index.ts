import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { Duplex, PassThrough, Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { CompressStream, DecompressStream } from 'zstd-napi';
import { UserError } from '../errors.js';
import { drainIterator, unclosable } from '../oci/digest.js';
import type { Compression } from '../oci/mediatypes.js';

/**
 * Layer compressors. Compressed bytes depend on the implementation, its version and its parameters, so each
 * compressor has an identity string that is recorded on the layer descriptor; a rebuild compares identities
 * before it blames content. Golden tests pin the output of each (test/compress.test.ts).
 */
export interface Compressor {
  readonly compression: Compression;
  /** e.g. `gzip;impl=node-zlib/1.3.1-e00f703;level=6`. */
  readonly identity: string;
  /** The stages to splice into a pipeline, in order. */
  createStages(): Transform[];
}

const require = createRequire(import.meta.url);
const zstdVersion: string = (require('zstd-napi/binding') as { versionString(): string }).versionString();
const zstdNapiVersion: string = (require('zstd-napi/package.json') as { version: string }).version;

export const DEFAULT_LEVEL: Record<Compression, number> = { none: 0, gzip: 6, zstd: 3 };

const LEVEL_RANGE: Record<Compression, [number, number]> = { none: [0, 0], gzip: [1, 9], zstd: [1, 19] };

/** gzip member header with every variable field fixed: no name, mtime 0, XFL 0, OS 255 ("unknown"). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);

/** Tracks CRC-32 and length of the uncompressed bytes for the gzip trailer. */
class GzipChecksum extends Transform {
  crc = 0;
  length = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.crc = zlib.crc32(chunk, this.crc);
    this.length += chunk.length;
    done(null, chunk);
  }
}

/** Wraps raw deflate output in the fixed header and the trailer from the checksum stage. */
class GzipFrame extends Transform {
  private started = false;

  constructor(private readonly checksum: GzipChecksum) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.started) {
      this.started = true;
      this.push(GZIP_HEADER);
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (!this.started) this.push(GZIP_HEADER);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.checksum.crc >>> 0, 0);
    trailer.writeUInt32LE(this.checksum.length % 2 ** 32, 4);
    done(null, trailer);
  }
}

/**
 * gzip as raw deflate from Node's zlib between a header and trailer we write ourselves, so that no byte depends
 * on the platform zlib was built for (zlib's own gzip header records the OS).
 */
function gzipStages(level: number, parallel: boolean): Transform[] {
  const checksum = new GzipChecksum();
  const deflate = parallel ? new ParallelDeflate(level) : zlib.createDeflateRaw({ level, memLevel: 8, windowBits: 15, strategy: zlib.constants.Z_DEFAULT_STRATEGY });
  return [checksum, deflate, new GzipFrame(checksum)];
}

/** Block size of parallel deflate: a fixed part of the compressor identity, since the bytes depend on it. */
export const DEFLATE_BLOCK = 1 << 20;
const WINDOW = 32 * 1024;
const IN_FLIGHT = 4;

function deflateBlock(block: Buffer, level: number, dictionary: Buffer | undefined, last: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zlib.deflateRaw(
      block,
      {
        level,
        memLevel: 8,
        windowBits: 15,
        strategy: zlib.constants.Z_DEFAULT_STRATEGY,
        // Room for the whole block's output, so that zlib does the block in one thread-pool job instead of
        // returning to the main thread every 16 KiB of output (the output bytes do not depend on it).
        chunkSize: block.length + (block.length >> 3) + 64 * 1024,
        ...(dictionary ? { dictionary } : {}),
        finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      },
      (err, out) => (err ? reject(err) : resolve(out)),
    );
  });
}

/**
 * Raw deflate in fixed 1 MiB blocks compressed concurrently on libuv's thread pool, pigz-style: each block is
 * primed with the 32 KiB of input before it and ends with a sync flush (the last one with a finish), so the
 * blocks concatenate into one deflate stream. The output depends on the block size and level only — not on
 * how many blocks ran at once — which is what makes it a pinnable compressor.
 */
class ParallelDeflate extends Transform {
  private pending: Buffer[] = [];
  private pendingSize = 0;
  /** The newest full block, held back until we know whether it is the last one. */
  private held: Buffer | undefined;
  private previousTail: Buffer | undefined;
  private readonly queue: Promise<Buffer>[] = [];

  constructor(private readonly level: number) {
    super();
  }

  private start(block: Buffer, last: boolean): void {
    const dictionary = this.previousTail;
    this.previousTail = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([dictionary ?? Buffer.alloc(0), block]).subarray(-WINDOW);
    const job = deflateBlock(block, this.level, dictionary, last);
    job.catch(() => {}); // observed when drained, in order
    this.queue.push(job);
  }

  private async drain(limit: number): Promise<void> {
    while (this.queue.length > limit) this.push(await this.queue.shift()!);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingSize += chunk.length;
    const work = async (): Promise<void> => {
      while (this.pendingSize >= DEFLATE_BLOCK) {
        let block: Buffer;
        if (this.pending.length === 1 && this.pending[0]!.length === DEFLATE_BLOCK) {
          block = this.pending[0]!; // the tar writer's chunks are exactly one block: no copy
          this.pending = [];
        } else {
          const all = Buffer.concat(this.pending);
          block = Buffer.from(all.subarray(0, DEFLATE_BLOCK));
          const rest = all.subarray(DEFLATE_BLOCK);
          this.pending = rest.length ? [rest] : [];
        }
        this.pendingSize -= DEFLATE_BLOCK;
        if (this.held) this.start(this.held, false);
        this.held = block;
        await this.drain(IN_FLIGHT);
      }
    };
    work().then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    const rest = Buffer.concat(this.pending);
    const finish = async (): Promise<void> => {
      if (this.held && rest.length === 0) this.start(this.held, true);
      else {
        if (this.held) this.start(this.held, false);
        this.start(rest, true);
      }
      await this.drain(0);
    };
    finish().then(() => done(), done);
  }
}

class PassThroughStream extends Transform {
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    done(null, chunk);
  }
}

export function getCompressor(compression: Compression, level?: number, parallel = false): Compressor {
  const chosen = level ?? DEFAULT_LEVEL[compression];
  const [min, max] = LEVEL_RANGE[compression];
  if (!Number.isInteger(chosen) || chosen < min || chosen > max) {
    throw new UserError(`compression level ${level} is out of range for ${compression} (${min}..${max})`);
  }
  switch (compression) {
    case 'none':
      return { compression, identity: 'none', createStages: () => [] };
    case 'gzip':
      return {
        compression,
        identity: `gzip;impl=node-zlib/${process.versions.zlib};level=${chosen}${parallel ? `;blocks=${DEFLATE_BLOCK}` : ''}`,
        createStages: () => gzipStages(chosen, parallel),
      };
    case 'zstd':
      return {
        compression,
        identity: `zstd;impl=zstd-napi/${zstdNapiVersion};libzstd=${zstdVersion};level=${chosen};checksum=1;workers=0`,
        // Single-threaded with fixed frame parameters: zstd output then depends only on input and level.
        createStages: () => [new CompressStream({ compressionLevel: chosen, checksumFlag: true, contentSizeFlag: false, nbWorkers: 0 })],
      };
  }
}

/** Compresses something small (a package, a repository database) into memory. Layers are streamed instead. */
export async function compressToBuffer(source: AsyncIterable<Buffer> | Iterable<Buffer>, compressor: Compressor): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  await pipeline([Readable.from(source), ...compressor.createStages(), sink] as unknown as NodeJS.ReadWriteStream[]);
  return Buffer.concat(chunks);
}

export type DetectedCompression = Compression | 'xz';

/**
 * xz (old `.pkg.tar.xz` packages, `.db.tar.xz` databases) through the system's `xz -dc`, streamed: reading only
 * needs correct output, which the caller checks (package digests, .MTREE), not pinned bytes.
 */
function xzDecompressor(): Duplex {
  const child = spawn('xz', ['-dc', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // The output ends only once xz has exited 0, so a truncated or corrupt stream is an error, not short data.
  const output = new PassThrough();
  child.stdout.pipe(output, { end: false });
  const duplex = Duplex.from({ writable: child.stdin, readable: output });
  child.on('error', (err: NodeJS.ErrnoException) => duplex.destroy(err.code === 'ENOENT' ? new UserError('xz-compressed input needs the xz program (xz-utils)') : err));
  child.on('close', (code) => (code === 0 ? output.end() : output.destroy(new Error(`xz exited ${code}: ${stderr.trim()}`))));
  child.stdin.on('error', () => {}); // xz stopping early is reported by its exit code
  return duplex;
}

/** Compression from a stream's first bytes. */
export function detectCompression(head: Buffer): DetectedCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

/** gunzip's output chunks: zlib's 16 KiB default costs every reader downstream (tar, hashes) a step per 16 KiB. */
const GUNZIP_CHUNK = 256 * 1024;

export function createDecompressor(compression: DetectedCompression): Transform | Duplex {
  switch (compression) {
    case 'none':
      return new PassThroughStream();
    case 'gzip':
      return zlib.createGunzip({ chunkSize: GUNZIP_CHUNK });
    case 'zstd':
      return new DecompressStream();
    case 'xz':
      return xzDecompressor();
  }
}

interface ZstdDCtx {
  /** ZSTD_decompressStream: fills at most `dst`, returns [hint, bytes written, bytes consumed]. */
  decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number];
}
const zstdBinding = require('zstd-napi/binding') as { DCtx: new () => ZstdDCtx; dStreamOutSize(): number };
const ZSTD_OUT = zstdBinding.dStreamOutSize();

/**
 * zstd frames decoded one output buffer at a time, each handed on before the next is made, so memory stays
 * bounded whatever the frames expand to (zstd-napi's DecompressStream pushes all that one input chunk expands
 * to at once: gigabytes for a few kilobytes of RLE blocks). The window is capped by libzstd's default limit.
 */
async function* zstdDecode(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const dctx = new zstdBinding.DCtx();
  let inFrame = false;
  for await (const chunk of input) {
    let src = chunk;
    for (;;) {
      const dst = Buffer.allocUnsafe(ZSTD_OUT);
      const [hint, produced, consumed] = dctx.decompressStream(dst, src);
      src = src.subarray(consumed);
      // A small result is copied out so it does not pin a whole output buffer while a reader keeps it.
      if (produced > 0) yield produced < ZSTD_OUT / 4 ? Buffer.from(dst.subarray(0, produced)) : dst.subarray(0, produced);
      if (src.length === 0 && (produced < ZSTD_OUT || hint === 0)) {
        inFrame = hint !== 0;
        break;
      }
    }
  }
  if (inFrame) throw new Error('the stream ends in the middle of a frame');
}

/**
 * gzip and xz through their stream implementations, which produce output only as it is read (zlib waits while
 * its readable side is full; xz's pipe pauses), so memory stays bounded there too.
 */
async function* streamDecode(input: AsyncIterable<Buffer>, decompressor: Transform | Duplex): AsyncGenerator<Buffer> {
  const feed = Readable.from(input);
  feed.on('error', (err) => decompressor.destroy(err));
  feed.pipe(decompressor);
  try {
    for await (const chunk of decompressor) yield chunk as Buffer;
  } finally {
    feed.unpipe(decompressor);
    feed.destroy();
    decompressor.destroy();
  }
}

async function* concat(first: Buffer[], rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* first;
  yield* rest;
}

/**
 * Decompresses whatever the source is (gzip, zstd, xz or plain), decided from its first bytes, in bounded memory.
 *
 * The source is always read to its end — also when the reader stops early (a tar reader at its end blocks, a
 * search that found its entry) or fails — so a verifying source (verifiedStream, VerifyingStream) always gives
 * its verdict on the whole blob, and a digest mismatch is thrown rather than an early result returned. A
 * mismatch wins over a decompression error: a forged blob is named as such, not as a corrupt stream.
 */
export async function* decompressAuto(source: AsyncIterable<Buffer>, what: string): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  const input = unclosable(iterator);
  let kind: DetectedCompression = 'none';
  try {
    const head: Buffer[] = [];
    let headLength = 0;
    for await (const chunk of input) {
      head.push(chunk);
      headLength += chunk.length;
      if (headLength >= 6) break;
    }
    kind = detectCompression(Buffer.concat(head));
    const all = concat(head, input);
    if (kind === 'none') yield* all;
    else if (kind === 'zstd') yield* zstdDecode(all);
    else yield* streamDecode(all, createDecompressor(kind));
  } catch (err) {
    if (err instanceof UserError) throw err; // the source's own verdict (e.g. a digest mismatch) stands
    await drainSource();
    throw new UserError(`${what}: corrupt or truncated ${kind} stream (${(err as Error).message})`);
  } finally {
    await drainSource();
  }

  async function drainSource(): Promise<void> {
    try {
      await drainIterator(iterator);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`${what}: reading failed (${(err as Error).message})`);
    }
  }
}
