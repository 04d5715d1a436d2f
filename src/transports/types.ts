import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { RawJson } from '../oci/raw-json.js';
import type { Descriptor } from '../oci/types.js';

/** The read side of a transport: a root document (index or manifest) and the blobs under it, all verified. */
export interface ImageSource {
  /** What the reference points at, with its exact bytes. */
  root(): Promise<{ descriptor: Descriptor; raw: RawJson<unknown> }>;
  /** A blob's bytes as a stream that fails unless they match the descriptor's digest and size. */
  openBlob(descriptor: Descriptor): Promise<Readable>;
  /** Releases temporary files (extracted archives). */
  close(): Promise<void>;
  /**
   * Manifests whose `subject` is the given digest (the OCI referrers relation), optionally only those of one
   * artifact type. Transports that cannot list them leave this out.
   */
  referrers?(subject: Digest, artifactType?: string): Promise<Descriptor[]>;
  /**
   * Set when the format may not keep the image's own manifest (a docker-archive: `docker save` and skopeo store
   * layers uncompressed and describe them with a manifest of their own, or with none at all). The config and the
   * layers' uncompressed contents (their diffIDs) are then all that is certainly the image's.
   */
  keepsOnlyContent?: boolean;
}

/** The write side: blobs first, then commit() names the root; abort() leaves nothing behind. */
export interface ImageDestination {
  hasBlob(digest: Digest): Promise<boolean>;
  /** Stores a blob, verifying the stream against the descriptor as it is written. */
  putBlob(descriptor: Descriptor, content: Readable | AsyncIterable<Buffer>): Promise<void>;
  commit(root: Descriptor): Promise<void>;
  abort(): Promise<void>;
}
