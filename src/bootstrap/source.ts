import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { UserError } from '../errors.js';
import { decompressAuto, detectCompression } from '../compress/index.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { MediaType, ociLayerMediaType } from '../oci/mediatypes.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig, Manifest } from '../oci/types.js';
import { StagedImage } from '../image/staged-image.js';
import { displayName } from '../util/raw-name.js';

/**
 * A tarball seen as a one-layer image (the file is the layer, a config made up to list its diffID), so that `diff`
 * and a failed `rebuild` can compare two bootstrap tarballs entry by entry with the image comparison. Nothing of
 * it is written anywhere: the made-up documents are not an image anyone published.
 */
export async function openTarballSource(path: string): Promise<StagedImage> {
  const what = `tarball ${displayName(path)}`;
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new UserError(`${what}: cannot be read (${err.code === 'ENOENT' ? 'no such file' : err.code ?? err.message})`);
  });
  if (!info.isFile()) throw new UserError(`${what}: not a regular file`);
  const head = Buffer.alloc(6);
  const handle = await open(path, 'r');
  const { bytesRead } = await handle.read(head, 0, 6, 0).finally(() => handle.close());
  const compression = detectCompression(head.subarray(0, bytesRead));
  if (compression === 'xz') throw new UserError(`${what}: xz tarballs are not compared`);
  // One read: the file's digest from the bytes on their way to the decompressor, the diffID from what comes out.
  const fileHash = createHash('sha256');
  const hash = createHash('sha256');
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      fileHash.update(chunk);
      yield chunk;
    }
  }
  for await (const chunk of decompressAuto(hashed(), what)) hash.update(chunk);
  const diffId: Digest = `sha256:${hash.digest('hex')}`;
  const digest: Digest = `sha256:${fileHash.digest('hex')}`;

  const image = new StagedImage(async () => {});
  image.addFile(digest, path);
  const config: ImageConfig = { architecture: 'unknown', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] } };
  const configDescriptor = image.addJson(MediaType.OciConfig, canonicalJsonBytes(config));
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDescriptor, layers: [{ mediaType: ociLayerMediaType(compression), digest, size: info.size }] };
  image.setRoot(image.addJson(MediaType.OciManifest, canonicalJsonBytes(manifest)));
  return image;
}
