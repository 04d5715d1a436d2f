import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { MediaType, ociLayerMediaType } from '../oci/mediatypes.js';
import { Annotation, type Descriptor, type ImageConfig, type Manifest } from '../oci/types.js';
import { treeFromDirectory } from '../rootfs/from-directory.js';
import { treeFromTarball } from '../rootfs/from-tarball.js';
import type { RootfsTree } from '../rootfs/tree.js';
import { copyImage } from '../transports/copy.js';
import { openDestination, type TransportOptions } from '../transports/open.js';
import { parseReference } from '../transports/reference.js';
import { makeScratchDir } from '../util/fs.js';
import { layerCompressor, parsePlatform, type ImageSettings } from './image-settings.js';
import { writeLayer } from './layer.js';
import { StagedImage } from './staged-image.js';
import { rfc3339 } from '../util/time.js';

export interface BuildResult {
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor & { diffId: string };
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
export async function stageImage(
  tree: Pick<RootfsTree, 'entries'>,
  settings: ImageSettings,
  sourceDateEpoch: number,
  createdBy: string,
  extraLabels: Record<string, string> = {},
): Promise<{ image: StagedImage; result: BuildResult }> {
  const scratch = await makeScratchDir('build');
  const image = new StagedImage(scratch.cleanup);
  try {
    const compressor = layerCompressor(settings);
    const layerFile = join(scratch.path, 'layer');
    const layer = await writeLayer(tree.entries, sourceDateEpoch, compressor, layerFile);
    image.addFile(layer.digest, layerFile);

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
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: createdBy }],
    };
    const configDescriptor = image.addJson(MediaType.OciConfig, canonicalJsonBytes(config));
    const layerDescriptor: Descriptor = {
      mediaType: ociLayerMediaType(compressor.compression),
      digest: layer.digest,
      size: layer.size,
      annotations: { [Annotation.Compressor]: compressor.identity },
    };
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: configDescriptor,
      layers: [layerDescriptor],
      ...(settings.annotations && Object.keys(settings.annotations).length > 0 ? { annotations: settings.annotations } : {}),
    };
    const manifestDescriptor = image.addJson(MediaType.OciManifest, canonicalJsonBytes(manifest));
    image.setRoot(manifestDescriptor);
    return { image, result: { manifest: manifestDescriptor, config: configDescriptor, layer: { ...layerDescriptor, diffId: layer.diffId } } };
  } catch (err) {
    await image.close();
    throw err;
  }
}

/** Writes a staged image to every output (the CLI parses every reference before any work, so a typo fails fast). */
export async function writeOutputs(image: StagedImage, outputs: string[], options: TransportOptions = {}): Promise<void> {
  for (const output of outputs) await copyImage(image, await openDestination(parseReference(output), options));
}
