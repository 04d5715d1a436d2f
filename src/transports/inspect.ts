import { isIndexMediaType } from '../oci/mediatypes.js';
import { checkConfig, checkIndex, checkManifest, type RawJson } from '../oci/raw-json.js';
import { Annotation, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/types.js';
import { readJsonBlob } from './layout.js';
import { openSource, type TransportOptions } from './open.js';
import type { ImageSource } from './types.js';
import { CheckedBlobs, missingBlobHint, verifyAllBlobs } from './verify.js';

export interface ImageReport {
  digest: string;
  mediaType: string;
  platform: string;
  created?: string;
  config: { digest: string; size: number; value: ImageConfig };
  layers: { digest: string; diffId?: string; size: number; mediaType: string; compressor?: string; annotations?: Record<string, string> }[];
  annotations?: Record<string, string>;
}

export interface InspectReport {
  reference: string;
  digest: string;
  mediaType: string;
  index?: { manifests: Descriptor[]; annotations?: Record<string, string> };
  images: ImageReport[];
  /** Whether every blob under the reference was hashed in full (layers also against their diffIDs), and how many. */
  blobs: { verified: boolean; checked?: number };
}

async function describeImage(source: ImageSource, descriptor: Descriptor, raw: RawJson<unknown>): Promise<ImageReport> {
  const manifest: Manifest = checkManifest(raw, `manifest ${descriptor.digest}`, descriptor.mediaType).value;
  const config = checkConfig(await readJsonBlob(source, manifest.config, 'config'), `config ${manifest.config.digest}`).value;
  const platform = [config.os, config.architecture, config.variant].filter(Boolean).join('/');
  return {
    digest: descriptor.digest,
    mediaType: descriptor.mediaType,
    platform,
    ...(config.created ? { created: config.created } : {}),
    config: { digest: manifest.config.digest, size: manifest.config.size, value: config },
    layers: manifest.layers.map((layer, i) => {
      const { [Annotation.Compressor]: compressor, ...others } = layer.annotations ?? {};
      return {
        digest: layer.digest,
        ...(config.rootfs.diff_ids[i] ? { diffId: config.rootfs.diff_ids[i] } : {}),
        size: layer.size,
        mediaType: layer.mediaType,
        ...(compressor ? { compressor } : {}),
        ...(Object.keys(others).length ? { annotations: others } : {}),
      };
    }),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
}

export interface InspectOptions {
  transport?: TransportOptions;
  /** Hash every blob (layers also against their diffIDs) before describing anything (default true). */
  verifyBlobs?: boolean;
}

/** `inspect REF`: index, manifests, configs and layers of an image, after verifying all of its blobs. */
export async function inspectReference(reference: string, options: InspectOptions = {}): Promise<InspectReport> {
  const verifyBlobs = options.verifyBlobs ?? true;
  const source = await openSource(reference, options.transport);
  try {
    const { descriptor, raw } = await source.root();
    const report: InspectReport = { reference, digest: descriptor.digest, mediaType: descriptor.mediaType, images: [], blobs: { verified: false } };
    if (verifyBlobs) {
      // Nothing is shown about an image whose bytes do not match what names them.
      const checked = new CheckedBlobs();
      await verifyAllBlobs(source, { descriptor, raw }, checked, reference).catch((err: unknown) => {
        throw missingBlobHint(err);
      });
      report.blobs = { verified: true, checked: checked.count };
    }
    if (isIndexMediaType(descriptor.mediaType)) {
      const index: Index = checkIndex(raw, `index ${descriptor.digest}`, descriptor.mediaType).value;
      report.index = { manifests: index.manifests, ...(index.annotations ? { annotations: index.annotations } : {}) };
      for (const child of index.manifests) {
        if (isIndexMediaType(child.mediaType)) continue;
        report.images.push(await describeImage(source, child, await readJsonBlob(source, child, 'manifest')));
      }
    } else {
      report.images.push(await describeImage(source, descriptor, raw));
    }
    return report;
  } finally {
    await source.close();
  }
}

/** The text `inspect` prints. */
export function formatInspect(report: InspectReport): string {
  const lines = [`Reference:  ${report.reference}`, `Digest:     ${report.digest}`, `Media type: ${report.mediaType}`];
  lines.push(`Blobs:      ${report.blobs.verified ? `${report.blobs.checked} checked in full (digests, and diffIDs of layers)` : 'not checked (--no-verify-blobs)'}`);
  if (report.index) {
    lines.push(`Index:      ${report.index.manifests.length} manifest(s)`);
    for (const [k, v] of Object.entries(report.index.annotations ?? {})) lines.push(`  ${k}: ${v}`);
  }
  for (const image of report.images) {
    const c = image.config.value.config ?? {};
    lines.push('', `Manifest ${image.digest} (${image.platform})`);
    if (image.created) lines.push(`  Created:     ${image.created}`);
    lines.push(`  Config:      ${image.config.digest} (${image.config.size} bytes)`);
    if (c.Entrypoint) lines.push(`  Entrypoint:  ${JSON.stringify(c.Entrypoint)}`);
    if (c.Cmd) lines.push(`  Cmd:         ${JSON.stringify(c.Cmd)}`);
    if (c.Env) lines.push(`  Env:         ${c.Env.join(' ')}`);
    if (c.WorkingDir) lines.push(`  WorkingDir:  ${c.WorkingDir}`);
    if (c.User) lines.push(`  User:        ${c.User}`);
    if (c.ExposedPorts) lines.push(`  Ports:       ${Object.keys(c.ExposedPorts).join(' ')}`);
    if (c.StopSignal) lines.push(`  StopSignal:  ${c.StopSignal}`);
    for (const [k, v] of Object.entries(c.Labels ?? {})) lines.push(`  Label:       ${k}=${v}`);
    for (const [k, v] of Object.entries(image.annotations ?? {})) lines.push(`  Annotation:  ${k}=${v}`);
    image.layers.forEach((layer, i) => {
      lines.push(`  Layer ${i}:     ${layer.digest} (${layer.size} bytes, ${layer.mediaType})`);
      if (layer.diffId) lines.push(`    diffID:     ${layer.diffId}`);
      if (layer.compressor) lines.push(`    compressor: ${layer.compressor}`);
    });
  }
  return `${lines.join('\n')}\n`;
}

