import { createHash } from 'node:crypto';
import { decompressAuto } from '../compress/index.js';
import { DigestMismatchError, UserError } from '../errors.js';
import { consumeWhole, discard, type Digest } from '../oci/digest.js';
import { isIndexMediaType, MediaType } from '../oci/mediatypes.js';
import { checkConfig, checkIndex, checkManifest, type RawJson } from '../oci/raw-json.js';
import type { Descriptor, ImageConfig, Manifest } from '../oci/types.js';
import { readJsonBlob } from './layout.js';
import type { ImageSource } from './types.js';

/** The diffIDs of a manifest's layers, one per layer as the image spec requires; a config that disagrees is refused. */
export function layerDiffIds(manifest: Manifest, config: ImageConfig, what: string): Digest[] {
  const ids = config.rootfs.diff_ids;
  if (ids.length !== manifest.layers.length) throw new UserError(`${what}: the config lists ${ids.length} diffIDs for ${manifest.layers.length} layers`);
  return ids;
}

/**
 * Runs `consume` over a layer's uncompressed content and returns its result only once the whole blob has matched
 * its digest and the whole uncompressed stream its diffID (when known): what `consume` leaves unread is read
 * here, so no verdict rests on part of a layer.
 */
export async function readLayer<T>(source: ImageSource, layer: Descriptor, diffId: Digest | undefined, what: string, consume: (content: AsyncIterable<Buffer>) => Promise<T>): Promise<T> {
  const blob = await source.openBlob(layer);
  const hash = createHash('sha256');
  async function* content(): AsyncGenerator<Buffer> {
    for await (const chunk of decompressAuto(blob, what)) {
      hash.update(chunk);
      yield chunk;
    }
  }
  const result = await consumeWhole(content(), consume);
  if (diffId !== undefined) {
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== diffId) throw new DigestMismatchError(`${what}: uncompressed content has digest ${actual}, but the config lists diffID ${diffId}`);
  }
  return result;
}

/** Blobs of one source already hashed in full (layers also against a diffID), so that each is read once. */
export class CheckedBlobs {
  private readonly digests = new Set<string>();
  private readonly layers = new Set<string>();

  get count(): number {
    return this.digests.size;
  }

  has(digest: string): boolean {
    return this.digests.has(digest);
  }

  add(digest: string): void {
    this.digests.add(digest);
  }

  hasLayer(digest: string, diffId: string | undefined): boolean {
    return this.layers.has(`${digest} ${diffId ?? ''}`);
  }

  addLayer(digest: string, diffId: string | undefined): void {
    this.digests.add(digest);
    this.layers.add(`${digest} ${diffId ?? ''}`);
  }
}

function isImageConfigType(mediaType: string): boolean {
  return mediaType === MediaType.OciConfig || mediaType === MediaType.DockerConfig;
}

/**
 * Hashes every blob under a root in full — indexes, manifests, configs, and layers also against the diffIDs
 * their config lists — visiting each digest once (an index DAG with shared children costs its size, not its
 * paths). A missing or mismatching blob is an error naming it.
 */
export async function verifyAllBlobs(source: ImageSource, root: { descriptor: Descriptor; raw: RawJson<unknown> }, checked: CheckedBlobs, label: string): Promise<void> {
  const visit = async (descriptor: Descriptor, raw: RawJson<unknown>): Promise<void> => {
    checked.add(descriptor.digest);
    if (isIndexMediaType(descriptor.mediaType)) {
      for (const child of checkIndex(raw, `${label} index ${descriptor.digest}`, descriptor.mediaType).value.manifests) {
        if (!checked.has(child.digest)) await visit(child, await readJsonBlob(source, child, isIndexMediaType(child.mediaType) ? 'index' : 'manifest'));
      }
      return;
    }
    const manifest = checkManifest(raw, `${label} manifest ${descriptor.digest}`, descriptor.mediaType).value;
    const configRaw = await readJsonBlob(source, manifest.config, 'config');
    checked.add(manifest.config.digest);
    const diffIds = isImageConfigType(manifest.config.mediaType)
      ? layerDiffIds(manifest, checkConfig(configRaw, `${label} config ${manifest.config.digest}`).value, `${label} manifest ${descriptor.digest}`)
      : undefined;
    for (const [i, layer] of manifest.layers.entries()) {
      const diffId = diffIds?.[i];
      if (checked.hasLayer(layer.digest, diffId)) continue;
      if (diffIds) await readLayer(source, layer, diffId, `${label}: layer ${layer.digest}`, discard);
      else await discard(await source.openBlob(layer)); // an artifact's blobs: their digest is all there is to check
      checked.addLayer(layer.digest, diffId);
    }
  };
  await visit(root.descriptor, root.raw);
}

/** Whether `err` says the source does not hold a blob (that one, when a digest is given) — an archive kept without layers. */
export function isMissingBlob(err: unknown, digest = 'sha256:'): boolean {
  return err instanceof UserError && err.message.includes(`blob ${digest}`) && err.message.endsWith(' is missing');
}

/** A blob a layout or archive does not hold, named with the way to look at an image kept without its layers. */
export function missingBlobHint(err: unknown): unknown {
  if (!isMissingBlob(err)) return err;
  return new UserError(`${(err as Error).message} (an image kept without its layers? --no-verify-blobs reads only what is there)`, { cause: err });
}
