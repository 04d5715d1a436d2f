import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Compressor } from '../compress/index.js';
import { HashingStream, type Digest } from '../oci/digest.js';
import type { TarSourceEntry } from '../tar/entry.js';
import { writeTar } from '../tar/writer.js';

export interface WrittenLayer {
  /** Digest of the uncompressed tar: the config's diff_id. */
  diffId: Digest;
  uncompressedSize: number;
  /** Digest and size of the blob as stored. */
  digest: Digest;
  size: number;
}

/** Streams entries → tar → (hash) → compressor → (hash) → file; nothing of the layer is held in memory. */
export async function writeLayer(entries: Iterable<TarSourceEntry> | AsyncIterable<TarSourceEntry>, clampMtime: number, compressor: Compressor, file: string): Promise<WrittenLayer> {
  const uncompressed = new HashingStream();
  const compressed = new HashingStream();
  await pipeline([Readable.from(writeTar(entries, { clampMtime })), uncompressed, ...compressor.createStages(), compressed, createWriteStream(file, { mode: 0o600 })] as unknown as NodeJS.ReadWriteStream[]);
  return { diffId: uncompressed.digest(), uncompressedSize: uncompressed.size, digest: compressed.digest(), size: compressed.size };
}
