import { UserError } from '../errors.js';
import { isIndexMediaType } from '../oci/mediatypes.js';
import { checkIndex, checkManifest } from '../oci/raw-json.js';
import type { Descriptor, Index, Manifest, Platform } from '../oci/types.js';
import { readJsonBlob } from './layout.js';
import type { ImageSource } from './types.js';

/** `os/arch[/variant]`, or '' for a descriptor without a platform. */
export function platformString(platform: Platform | undefined): string {
  return platform ? [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/') : '';
}

/** The image manifests of an index: not nested indexes, not BuildKit attestation manifests (`unknown/unknown`). */
export function imageManifests(index: Index): Descriptor[] {
  return index.manifests.filter(
    (d) => !isIndexMediaType(d.mediaType) && d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest' && platformString(d.platform) !== 'unknown/unknown',
  );
}

export interface PlatformManifest {
  descriptor: Descriptor;
  manifest: Manifest;
  /** Set when the source's root is an index: its digest, parsed value and the platform chosen. */
  index?: { digest: string; value: Index; platform: string };
}

/**
 * The manifest a source stands for; for an index, the manifest of `platform` (default: the only image, else
 * linux/amd64) — the per-platform manifest is what can be verified, publishers rewrite indexes.
 */
export async function resolvePlatformManifest(source: ImageSource, platform: string | undefined, label: string): Promise<PlatformManifest> {
  const root = await source.root();
  if (!isIndexMediaType(root.descriptor.mediaType)) {
    return { descriptor: root.descriptor, manifest: checkManifest(root.raw, `${label} manifest`, root.descriptor.mediaType).value };
  }
  const index = checkIndex(root.raw, `${label} index`, root.descriptor.mediaType).value;
  const images = imageManifests(index);
  const wanted = platform ?? (images.length === 1 ? platformString(images[0]!.platform) : 'linux/amd64');
  const chosen = images.find((d) => platformString(d.platform) === wanted) ?? (images.length === 1 ? images[0] : undefined);
  if (!chosen) throw new UserError(`${label}: the index has no manifest for ${wanted} (platforms: ${images.map((d) => platformString(d.platform)).join(', ') || 'none'})`);
  const raw = await readJsonBlob(source, chosen, 'manifest');
  return {
    descriptor: chosen,
    manifest: checkManifest(raw, `${label} manifest ${chosen.digest}`, chosen.mediaType).value,
    index: { digest: root.descriptor.digest, value: index, platform: platformString(chosen.platform) || wanted },
  };
}
