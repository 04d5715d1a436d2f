import { createWriteStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Compressor } from '../compress/index.js';
import { HashingStream, type Digest } from '../oci/digest.js';
import type { TarSourceEntry } from '../tar/entry.js';
import { writeTar } from '../tar/writer.js';
import { Progress } from '../util/progress.js';

export interface WrittenLayer {
  /** Digest of the uncompressed tar: the config's diff_id. */
  diffId: Digest;
  uncompressedSize: number;
  /** Digest and size of the blob as stored. */
  digest: Digest;
  size: number;
}

/**
 * The tar's size as far as it is known before it is written: a header and the padded content per entry, and the
 * two end blocks. Long or non-ASCII names and xattrs add pax headers, so the tar is this or larger: a total for
 * progress, never for anything written. Unknown for entries that are not all at hand (a tarball being read).
 */
function estimatedTarSize(entries: Iterable<TarSourceEntry> | AsyncIterable<TarSourceEntry>): number | undefined {
  if (!Array.isArray(entries)) return undefined;
  let size = 1024;
  for (const entry of entries as TarSourceEntry[]) size += 512 + (entry.type === 'file' ? Math.ceil(entry.size / 512) * 512 : 0);
  return size;
}

/** Passes the bytes through unchanged, counting them. */
function counted(progress: Progress): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      progress.advance(chunk.length);
      done(null, chunk);
    },
  });
}

/** Streams entries → tar → (hash) → compressor → (hash) → file; nothing of the layer is held in memory. */
export async function writeLayer(entries: Iterable<TarSourceEntry> | AsyncIterable<TarSourceEntry>, clampMtime: number, compressor: Compressor, file: string): Promise<WrittenLayer> {
  const uncompressed = new HashingStream();
  const compressed = new HashingStream();
  const progress = new Progress(compressor.compression === 'none' ? 'layer' : `compress (${compressor.compression})`).start(estimatedTarSize(entries));
  try {
    await pipeline([Readable.from(writeTar(entries, { clampMtime })), uncompressed, ...(progress.active ? [counted(progress)] : []), ...compressor.createStages(), compressed, createWriteStream(file, { mode: 0o600 })] as unknown as NodeJS.ReadWriteStream[]);
  } finally {
    progress.stop();
  }
  return { diffId: uncompressed.digest(), uncompressedSize: uncompressed.size, digest: compressed.digest(), size: compressed.size };
}
