import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { MediaType, ociLayerMediaType } from '../oci/mediatypes.js';
import type { Digest } from '../oci/digest.js';
import { Annotation, type Descriptor, type ImageConfig, type Manifest } from '../oci/types.js';
import { treeFromDirectory } from '../rootfs/from-directory.js';
import { treeFromTarball } from '../rootfs/from-tarball.js';
import type { RootfsTree } from '../rootfs/tree.js';
import { copyImage } from '../transports/copy.js';
import { openDestination, type TransportOptions } from '../transports/open.js';
import { parseReference } from '../transports/reference.js';
import { OciImportDestination, type OciImportCommit } from '../transports/oci-import.js';
import { makeScratchDir } from '../util/fs.js';
import { layerCompressor, loadImageSettings, parsePlatform, resolveSourceDateEpoch, type ImageSettings } from './image-settings.js';
import { writeLayer } from './layer.js';
import { StagedImage } from './staged-image.js';
import { rfc3339 } from '../util/time.js';
import { timed, type Timings } from '../util/timings.js';

export interface BuildResult {
  manifest: Descriptor;
  config: Descriptor;
  /** The first (for most images the only) layer. */
  layer: Descriptor & { diffId: string };
  /** Every layer, bottom first. */
  layers: (Descriptor & { diffId: string })[];
}

/** Where an image was written, and the digest of the root document written there. */
export interface WrittenOutput {
  reference: string;
  digest: string;
  /** For an oci-import: output, the commit made and the official-images stanza. */
  ociImport?: OciImportCommit;
}

/** A build's result once written: the image, each output, and how long each phase took (milliseconds). */
export interface BuiltImage extends BuildResult {
  outputs: WrittenOutput[];
  timings: Timings;
}

/** Reads a rootfs from a directory or a tarball (plain, gzip, zstd). */
export async function readRootfs(path: string, settings: ImageSettings, sourceDateEpoch: number, warn: (msg: string) => void): Promise<RootfsTree> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new UserError(`rootfs ${path}: no such file or directory`);
  return info.isDirectory()
    ? treeFromDirectory(path, { mtime: sourceDateEpoch, rules: settings.rootfs ?? {}, warn })
    : treeFromTarball(path, { mtime: sourceDateEpoch });
}

/** Turns a tree into a one-layer image held in scratch space. Its digest depends on the tree and settings only. */
export function stageImage(
  tree: Pick<RootfsTree, 'entries'>,
  settings: ImageSettings,
  sourceDateEpoch: number,
  createdBy: string,
  extraLabels: Record<string, string> = {},
): Promise<{ image: StagedImage; result: BuildResult }> {
  return stageLayers([{ entries: tree.entries, createdBy }], settings, sourceDateEpoch, extraLabels);
}

/** One layer to stage: its entries in order, and the history entry that says what made it. */
export interface LayerSource {
  entries: RootfsTree['entries'];
  createdBy: string;
}

/** Turns layers (bottom first) into an image held in scratch space; its digest depends on them and the settings only. */
export async function stageLayers(
  sources: LayerSource[],
  settings: ImageSettings,
  sourceDateEpoch: number,
  extraLabels: Record<string, string> = {},
): Promise<{ image: StagedImage; result: BuildResult }> {
  const scratch = await makeScratchDir('build');
  const image = new StagedImage(scratch.cleanup);
  try {
    const compressor = layerCompressor(settings);
    const layers: (Descriptor & { diffId: Digest })[] = [];
    for (const [i, source] of sources.entries()) {
      const layerFile = join(scratch.path, `layer-${i}`);
      const layer = await writeLayer(source.entries, sourceDateEpoch, compressor, layerFile);
      image.addFile(layer.digest, layerFile);
      layers.push({ mediaType: ociLayerMediaType(compressor.compression), digest: layer.digest, size: layer.size, annotations: { [Annotation.Compressor]: compressor.identity }, diffId: layer.diffId });
    }

    const created = rfc3339(sourceDateEpoch);
    const platform = parsePlatform(settings.platform);
    const c = settings.config ?? {};
    const config: ImageConfig = {
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: {
        ...(c.User !== undefined ? { User: c.User } : {}),
        ...(c.ExposedPorts ? { ExposedPorts: Object.fromEntries(c.ExposedPorts.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}])) } : {}),
        ...(c.Env ? { Env: c.Env } : {}),
        ...(c.Entrypoint ? { Entrypoint: c.Entrypoint } : {}),
        ...(c.Cmd ? { Cmd: c.Cmd } : {}),
        ...(c.WorkingDir !== undefined ? { WorkingDir: c.WorkingDir } : {}),
        ...(c.Labels || Object.keys(extraLabels).length ? { Labels: { ...c.Labels, ...extraLabels } } : {}),
        ...(c.StopSignal !== undefined ? { StopSignal: c.StopSignal } : {}),
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: sources.map((source) => ({ created, created_by: source.createdBy })),
    };
    const configDescriptor = image.addJson(MediaType.OciConfig, canonicalJsonBytes(config));
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: configDescriptor,
      layers: layers.map(({ diffId: _diffId, ...descriptor }) => descriptor),
      ...(settings.annotations && Object.keys(settings.annotations).length > 0 ? { annotations: settings.annotations } : {}),
    };
    const manifestDescriptor = image.addJson(MediaType.OciManifest, canonicalJsonBytes(manifest));
    image.setRoot(manifestDescriptor);
    return { image, result: { manifest: manifestDescriptor, config: configDescriptor, layer: layers[0]!, layers } };
  } catch (err) {
    await image.close();
    throw err;
  }
}

/** Writes a staged image to every output (the CLI parses every reference before any work, so a typo fails fast). */
export async function writeOutputs(image: StagedImage, outputs: string[], options: TransportOptions = {}): Promise<WrittenOutput[]> {
  const written: WrittenOutput[] = [];
  for (const output of outputs) {
    const destination = await openDestination(parseReference(output), options);
    const { digest } = await copyImage(image, destination);
    written.push({ reference: output, digest, ...(destination instanceof OciImportDestination && destination.result ? { ociImport: destination.result } : {}) });
  }
  return written;
}

export interface RootfsBuildOptions {
  /** Directory or tarball (plain, gzip or zstd) holding the root filesystem. */
  rootfs: string;
  /** Image settings: a parsed object, or the path of an IMAGE.yaml (schemas/image-config.schema.json). */
  settings?: ImageSettings | string;
  /** References to write the image to (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:…, docker://…). */
  outputs: string[];
  /** SOURCE_DATE_EPOCH in seconds, over `sourceDateEpochEnv` and the settings. */
  sourceDateEpoch?: string;
  /** The environment's $SOURCE_DATE_EPOCH, when the caller wants it to count (the library never reads it itself). */
  sourceDateEpochEnv?: string;
  transport?: TransportOptions;
  log?: (message: string) => void;
}

/** `build --rootfs`: a one-layer image from a directory or tarball, written to every output. */
export async function buildRootfsImage(options: RootfsBuildOptions): Promise<BuiltImage> {
  options.outputs.forEach((o) => parseReference(o));
  const log = options.log ?? (() => {});
  const settings = typeof options.settings === 'string' ? await loadImageSettings(options.settings) : (options.settings ?? {});
  const sde = resolveSourceDateEpoch(options.sourceDateEpoch, options.sourceDateEpochEnv, settings);
  const timings: Timings = {};
  const tree = await timed(timings, 'read', () => readRootfs(options.rootfs, settings, sde, (msg) => log(`warning: ${msg}`)));
  try {
    const { image, result } = await timed(timings, 'layer', () => stageImage(tree, settings, sde, 'repro-oci build --rootfs'));
    try {
      const outputs = await timed(timings, 'write', () => writeOutputs(image, options.outputs, options.transport));
      return { ...result, outputs, timings };
    } finally {
      await image.close();
    }
  } finally {
    await tree.cleanup();
  }
}
