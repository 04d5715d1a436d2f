import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { parseRawJson, type RawJson } from '../oci/raw-json.js';
import type { Descriptor } from '../oci/types.js';
import { bytesStream } from '../transports/layout.js';
import type { ImageSource } from '../transports/types.js';

/** An image we just produced, held as JSON bytes plus layer files in scratch space, readable like any source. */
export class StagedImage implements ImageSource {
  private readonly blobs = new Map<Digest, { bytes?: Buffer; file?: string }>();
  private rootEntry: { descriptor: Descriptor; raw: RawJson<unknown> } | undefined;

  constructor(private readonly cleanup: () => Promise<void>) {}

  addFile(digest: Digest, file: string): void {
    this.blobs.set(digest, { file });
  }

  /** Adds a JSON document we serialized ourselves and returns its descriptor. */
  addJson(mediaType: string, bytes: Buffer): Descriptor {
    const raw = parseRawJson<unknown>(bytes, mediaType);
    this.blobs.set(raw.digest, { bytes });
    return { mediaType, digest: raw.digest, size: bytes.length };
  }

  setRoot(descriptor: Descriptor): void {
    const bytes = this.blobs.get(descriptor.digest)?.bytes;
    if (!bytes) throw new Error('staged image: root must be a JSON document added with addJson');
    this.rootEntry = { descriptor, raw: parseRawJson(bytes, 'root') };
  }

  async root(): Promise<{ descriptor: Descriptor; raw: RawJson<unknown> }> {
    if (!this.rootEntry) throw new Error('staged image: no root');
    return this.rootEntry;
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    const blob = this.blobs.get(descriptor.digest);
    if (!blob) throw new UserError(`staged image: no blob ${descriptor.digest}`);
    return blob.bytes ? bytesStream(blob.bytes) : createReadStream(blob.file!);
  }

  close(): Promise<void> {
    return this.cleanup();
  }
}
