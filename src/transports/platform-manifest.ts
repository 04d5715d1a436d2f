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

/** BuildKit's annotations on the attestation manifests it adds to an index (docker buildx, Docker Hub's official images). */
const REFERENCE_TYPE = 'vnd.docker.reference.type';
const REFERENCE_DIGEST = 'vnd.docker.reference.digest';

/** An entry of an index that is not a platform's image: named in the output, never picked as the image. */
export interface SkippedManifest {
  digest: string;
  /** `attestation manifest` (BuildKit's, or any `unknown/unknown` entry), or `index` (a nested one). */
  kind: 'attestation manifest' | 'index';
  /** The image an attestation manifest is about (`vnd.docker.reference.digest`), when it says. */
  refersTo?: string;
}

function skippedAs(d: Descriptor): SkippedManifest | undefined {
  if (isIndexMediaType(d.mediaType)) return { digest: d.digest, kind: 'index' };
  if (d.annotations?.[REFERENCE_TYPE] !== 'attestation-manifest' && platformString(d.platform) !== 'unknown/unknown') return undefined;
  const refersTo = d.annotations?.[REFERENCE_DIGEST];
  return { digest: d.digest, kind: 'attestation manifest', ...(refersTo !== undefined ? { refersTo } : {}) };
}

/** The image manifests of an index: not nested indexes, not BuildKit attestation manifests (`unknown/unknown`). */
export function imageManifests(index: Index): Descriptor[] {
  return index.manifests.filter((d) => skippedAs(d) === undefined);
}

/** The entries of an index imageManifests leaves out, in the index's order. */
export function skippedManifests(index: Index): SkippedManifest[] {
  return index.manifests.flatMap((d) => skippedAs(d) ?? []);
}

/** One line naming what was skipped in index `digest`, or undefined when nothing was. */
export function describeSkipped(indexDigest: string, skipped: readonly SkippedManifest[]): string | undefined {
  if (skipped.length === 0) return undefined;
  const names = skipped.map((s) => `${s.kind} ${s.digest}${s.refersTo ? ` (of ${s.refersTo})` : ''}`);
  return `index ${indexDigest}: skipped ${names.join(', ')}: not a platform's image`;
}

export interface PlatformManifest {
  descriptor: Descriptor;
  manifest: Manifest;
  /** Set when the source's root is an index: its digest, parsed value and the platform chosen. */
  index?: { digest: string; value: Index; platform: string; skipped: SkippedManifest[] };
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
  // A lone image without a platform field is the image; a platform asked for must be there.
  const chosen = images.find((d) => platformString(d.platform) === wanted) ?? (images.length === 1 && platform === undefined ? images[0] : undefined);
  if (!chosen) throw new UserError(`${label}: the index has no manifest for ${wanted} (platforms: ${images.map((d) => platformString(d.platform)).join(', ') || 'none'})`);
  const raw = await readJsonBlob(source, chosen, 'manifest');
  return {
    descriptor: chosen,
    manifest: checkManifest(raw, `${label} manifest ${chosen.digest}`, chosen.mediaType).value,
    index: { digest: root.descriptor.digest, value: index, platform: platformString(chosen.platform) || wanted, skipped: skippedManifests(index) },
  };
}
