import { RECIPE_LABEL, parseRecipe } from '../image/recipe.js';
import { readRecipeBytes } from '../image/read-recipe.js';
import { isIndexMediaType } from '../oci/mediatypes.js';
import { checkConfig, checkIndex, checkManifest, type RawJson } from '../oci/raw-json.js';
import { Annotation, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/types.js';
import type { PackageSet } from '../status/model.js';
import { NoPackagesError, packagesFromImage, packagesFromLock } from '../status/packages.js';
import { readJsonBlob } from './layout.js';
import { openSource, type TransportOptions } from './open.js';
import { resolvePlatformManifest } from './platform-manifest.js';
import type { ImageSource } from './types.js';
import { byteOrder } from '../util/order.js';
import { CheckedBlobs, isMissingBlob, missingBlobHint, verifyAllBlobs } from './verify.js';

/** What the recipe an image carries says about how it was made (`inspect --recipe` prints all of it). */
export interface RecipeSummary {
  /** The digest the config's io.github.repro-oci.recipe label holds, which the recipe's bytes matched. */
  digest: string;
  reproOci: string;
  sourceDateEpoch: number;
  compressor: string;
  architecture: string;
  archive?: { url: string; date: string };
  targets: string[];
}

export interface ImageReport {
  digest: string;
  mediaType: string;
  size: number;
  platform: string;
  created?: string;
  config: { digest: string; size: number; value: ImageConfig };
  layers: { digest: string; diffId?: string; size: number; mediaType: string; compressor?: string; annotations?: Record<string, string> }[];
  annotations?: Record<string, string>;
  /** Set when the image carries a recipe (built by repro-oci from a spec). */
  recipe?: RecipeSummary;
  /** The recipe's packages, else those of the image's pacman local database; absent when it has neither. */
  packages?: PackageSet;
}

export interface InspectReport {
  reference: string;
  digest: string;
  mediaType: string;
  size: number;
  index?: { manifests: Descriptor[]; annotations?: Record<string, string> };
  images: ImageReport[];
  /** Whether every blob under the reference was hashed in full (layers also against their diffIDs), and how many. */
  blobs: { verified: boolean; checked?: number };
  /** What could not be shown, and why (packages of an image kept without its layers). */
  notes?: string[];
}


/** Packages by name, as `pacman -Q` lists them (a lock keeps install order). */
function byName(set: PackageSet): PackageSet {
  return { ...set, packages: [...set.packages].sort((a, b) => byteOrder(a.name, b.name)) };
}

/** A view of `source` whose root is one of its manifests, so that per-image readers see that image alone. */
function rootedAt(source: ImageSource, descriptor: Descriptor, raw: RawJson<unknown>): ImageSource {
  return {
    root: () => Promise.resolve({ descriptor, raw }),
    openBlob: (d) => source.openBlob(d),
    close: () => Promise.resolve(),
    ...(source.referrers ? { referrers: source.referrers.bind(source) } : {}),
  };
}

/** The recipe's summary and packages, else the pacman database's packages; `notes` hears what could not be read. */
async function describeContent(source: ImageSource, descriptor: Descriptor, raw: RawJson<unknown>, manifest: Manifest, config: ImageConfig, notes: string[]): Promise<Pick<ImageReport, 'recipe' | 'packages'>> {
  if (config.config?.Labels?.[RECIPE_LABEL]) {
    const { bytes, digest } = await readRecipeBytes(source, descriptor, manifest);
    const recipe = parseRecipe(bytes, digest, `manifest ${descriptor.digest}`);
    const { lock } = recipe;
    return {
      recipe: {
        digest,
        reproOci: recipe.reproOci,
        sourceDateEpoch: recipe.sourceDateEpoch,
        compressor: recipe.compressor,
        architecture: lock.architecture,
        ...(lock.archive ? { archive: lock.archive } : {}),
        targets: lock.targets,
      },
      packages: byName(packagesFromLock(lock, 'recipe')),
    };
  }
  try {
    return { packages: await packagesFromImage(rootedAt(source, descriptor, raw), `manifest ${descriptor.digest}`) };
  } catch (err) {
    if (err instanceof NoPackagesError) return {};
    if (isMissingBlob(err)) {
      notes.push(`packages of manifest ${descriptor.digest} not listed: the source does not hold its layers`);
      return {};
    }
    throw err;
  }
}

async function describeImage(source: ImageSource, descriptor: Descriptor, raw: RawJson<unknown>, notes: string[]): Promise<ImageReport> {
  const manifest: Manifest = checkManifest(raw, `manifest ${descriptor.digest}`, descriptor.mediaType).value;
  const config = checkConfig(await readJsonBlob(source, manifest.config, 'config'), `config ${manifest.config.digest}`).value;
  const platform = [config.os, config.architecture, config.variant].filter(Boolean).join('/');
  return {
    digest: descriptor.digest,
    mediaType: descriptor.mediaType,
    size: descriptor.size,
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
    ...(await describeContent(source, descriptor, raw, manifest, config, notes)),
  };
}

export interface InspectOptions {
  transport?: TransportOptions;
  /** Hash every blob (layers also against their diffIDs) before describing anything (default true). */
  verifyBlobs?: boolean;
}

/** Hashes every blob under the root in full (unless verifyBlobs is false); returns how many, or undefined. */
async function verifyFirst(source: ImageSource, root: { descriptor: Descriptor; raw: RawJson<unknown> }, reference: string, verifyBlobs: boolean): Promise<number | undefined> {
  if (!verifyBlobs) return undefined;
  // Nothing is shown about an image whose bytes do not match what names them.
  const checked = new CheckedBlobs();
  await verifyAllBlobs(source, root, checked, reference).catch((err: unknown) => {
    throw missingBlobHint(err);
  });
  return checked.count;
}

/**
 * `inspect REF`: index, manifests, configs, layers, and each image's recipe and packages, after verifying all of
 * its blobs. Every blob read afterwards (the recipe's layer, a pacman database's layers) is verified again as it
 * is read.
 */
export async function inspectReference(reference: string, options: InspectOptions = {}): Promise<InspectReport> {
  const source = await openSource(reference, options.transport);
  try {
    const root = await source.root();
    const { descriptor, raw } = root;
    const checked = await verifyFirst(source, root, reference, options.verifyBlobs ?? true);
    const notes: string[] = [];
    const report: InspectReport = {
      reference,
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      size: descriptor.size,
      images: [],
      blobs: checked === undefined ? { verified: false } : { verified: true, checked },
    };
    if (isIndexMediaType(descriptor.mediaType)) {
      const index: Index = checkIndex(raw, `index ${descriptor.digest}`, descriptor.mediaType).value;
      report.index = { manifests: index.manifests, ...(index.annotations ? { annotations: index.annotations } : {}) };
      for (const child of index.manifests) {
        if (isIndexMediaType(child.mediaType)) continue;
        report.images.push(await describeImage(source, child, await readJsonBlob(source, child, 'manifest'), notes));
      }
    } else {
      report.images.push(await describeImage(source, descriptor, raw, notes));
    }
    if (notes.length) report.notes = notes;
    return report;
  } finally {
    await source.close();
  }
}

/** The documents `inspect --raw`, `--config` and `--recipe` print. */
export type InspectDocument = 'manifest' | 'config' | 'recipe';

export interface InspectDocumentOptions extends InspectOptions {
  /** For `config` and `recipe` when the reference names an index: the platform's manifest (default: the only image, else linux/amd64). */
  platform?: string;
}

/**
 * The exact bytes of one document of an image, as stored: `manifest` is what the reference names (an index or
 * a manifest, as `skopeo inspect --raw`), `config` the image's config (`skopeo inspect --config --raw`), `recipe`
 * the recipe it carries. Every blob is verified first unless verifyBlobs is false; the bytes returned matched
 * their digest in any case (the recipe: the digest its config label holds).
 */
export async function inspectDocument(reference: string, document: InspectDocument, options: InspectDocumentOptions = {}): Promise<Buffer> {
  const source = await openSource(reference, options.transport);
  try {
    const root = await source.root();
    await verifyFirst(source, root, reference, options.verifyBlobs ?? true);
    if (document === 'manifest') return root.raw.bytes;
    const { descriptor, manifest } = await resolvePlatformManifest(source, options.platform, reference);
    if (document === 'config') return (await readJsonBlob(source, manifest.config, 'config')).bytes;
    const { bytes, digest } = await readRecipeBytes(source, descriptor, manifest);
    parseRecipe(bytes, digest, `manifest ${descriptor.digest}`); // matched against the label's digest, and well-formed
    return bytes;
  } finally {
    await source.close();
  }
}

/** The text `inspect` prints. */
export function formatInspect(report: InspectReport): string {
  const lines = [`Reference:  ${report.reference}`, `Digest:     ${report.digest}`, `Media type: ${report.mediaType}`, `Size:       ${report.size} bytes`];
  lines.push(`Blobs:      ${report.blobs.verified ? `${report.blobs.checked} checked in full (digests, and diffIDs of layers)` : 'not checked (--no-verify-blobs)'}`);
  if (report.index) {
    lines.push(`Index:      ${report.index.manifests.length} manifest(s)`);
    for (const [k, v] of Object.entries(report.index.annotations ?? {})) lines.push(`  ${k}: ${v}`);
  }
  for (const image of report.images) {
    const c = image.config.value.config ?? {};
    lines.push('', `Manifest ${image.digest} (${image.platform}, ${image.size} bytes)`);
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
    const r = image.recipe;
    if (r) {
      lines.push(`  Recipe:      ${r.digest} (repro-oci ${r.reproOci}, SOURCE_DATE_EPOCH ${r.sourceDateEpoch}${r.archive ? `, archive ${r.archive.date}` : ''})`);
      lines.push(`    targets:    ${r.targets.join(' ')}`);
    }
    if (image.packages) {
      const from = image.packages.source === 'recipe' ? "the recipe's lock" : "the image's pacman database";
      lines.push(`  Packages:    ${image.packages.packages.length} (from ${from})`);
      for (const p of image.packages.packages) lines.push(`    ${p.name} ${p.version}`);
    } else if (!report.notes?.some((n) => n.includes(image.digest))) {
      lines.push('  Packages:    none (no recipe, no pacman database)');
    }
  }
  for (const note of report.notes ?? []) lines.push('', `note: ${note}`);
  return `${lines.join('\n')}\n`;
}
