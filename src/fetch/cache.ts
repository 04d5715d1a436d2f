import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { digestHex, verifiedStream, VerifyingStream, type Digest } from '../oci/digest.js';
import { streamToFileAtomic } from '../util/fs.js';

/**
 * The content-addressed cache every command shares: `blobs/sha256/<hex>` holds only bytes that were verified
 * against that digest on the way in; `partial/` holds interrupted downloads, which are re-hashed in full before
 * they can be promoted. Location: --cache, else $REPRO_OCI_CACHE, else $XDG_CACHE_HOME/repro-oci, else
 * ~/.cache/repro-oci.
 */
export class ContentCache {
  constructor(readonly root: string) {}

  static at(dir?: string): ContentCache {
    const env = process.env;
    const root = dir ?? env.REPRO_OCI_CACHE ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'repro-oci');
    return new ContentCache(root);
  }

  path(digest: Digest): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  partialPath(digest: Digest): string {
    return join(this.root, 'partial', `${digestHex(digest)}.part`);
  }

  async has(digest: Digest): Promise<boolean> {
    return (await stat(this.path(digest)).catch(() => undefined))?.isFile() ?? false;
  }

  /** Opens a cached blob, re-verifying it as it streams (the cache directory is not trusted to stay intact). */
  async open(digest: Digest, size: number | undefined, what: string): Promise<Readable | undefined> {
    if (!(await this.has(digest))) return undefined;
    return verifiedStream(createReadStream(this.path(digest)), digest, size, `${what} (cached ${this.path(digest)})`);
  }

  /** Stores a stream under its digest; nothing is stored unless every byte matches. */
  async put(digest: Digest, size: number | undefined, source: Readable | AsyncIterable<Buffer>, what: string): Promise<string> {
    const target = this.path(digest);
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    await streamToFileAtomic(target, source, [new VerifyingStream(digest, size, what)]);
    return target;
  }

  /**
   * Promotes a completed partial download after hashing all of it and running `check` on it (a signature);
   * a mismatch or a failed check deletes it, so the cache only ever holds accepted bytes.
   */
  async promotePartial(digest: Digest, size: number | undefined, what: string, check?: (file: string) => Promise<void>): Promise<string> {
    const partial = this.partialPath(digest);
    const target = this.path(digest);
    const verify = new VerifyingStream(digest, size, what);
    try {
      const file = createReadStream(partial);
      file.on('error', (err) => verify.destroy(err));
      for await (const chunk of file.pipe(verify)) void chunk;
      await check?.(partial);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    await rename(partial, target);
    return target;
  }
}
