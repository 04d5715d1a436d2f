import { isUnknownRepository, type Lock } from '../lock/lock.js';
import { parseDesc } from '../pacman/desc.js';
import { checkPackageName, checkPackageVersion } from '../pacman/names.js';
import { indexLayer, type LayerIndex, type OnFile } from '../compare/layer-index.js';
import { mergeLayers } from '../compare/image-diff.js';
import { UserError } from '../errors.js';
import { RECIPE_LABEL } from '../image/recipe.js';
import { readRecipe } from '../image/read-recipe.js';
import { LOCAL_DB_DIR } from '../install/local-db.js';
import { checkConfig } from '../oci/raw-json.js';
import { readJsonBlob } from '../transports/layout.js';
import { resolvePlatformManifest } from '../transports/platform-manifest.js';
import type { ImageSource } from '../transports/types.js';
import type { Descriptor, ImageConfig, Manifest } from '../oci/types.js';
import { layerDiffIds, readLayer } from '../transports/verify.js';
import { byteOrder } from '../util/order.js';
import { displayName } from '../util/raw-name.js';
import type { PackageSet, StatusPackage } from './model.js';

/**
 * A lock's packages, with the repository and file digest it pins; a lock made from an image names no real
 * repository, so its packages match rows of any (the file digest still binds their attestations).
 */
export function packagesFromLock(lock: Lock, source: 'lock' | 'recipe'): PackageSet {
  const unknown = new Set(lock.repositories.filter(isUnknownRepository).map((r) => r.name));
  return {
    source,
    packages: lock.packages.map((p) => ({ name: p.name, version: p.version, arch: p.arch, ...(unknown.has(p.repository) ? {} : { repository: p.repository }), fileName: p.filename, sha256: p.sha256 })),
  };
}

const LOCAL_DESC = new RegExp(`^${LOCAL_DB_DIR}/[^/]+/desc$`);

function single(blocks: Map<string, string[]>, key: string, what: string): string {
  const values = blocks.get(key);
  if (values?.length !== 1) throw new UserError(`${what}: %${key}% must have exactly one value`);
  return values[0]!;
}

/** One installed package from its local database `desc` (pacman records no repository there). */
export function installedPackage(bytes: Buffer, what: string): StatusPackage {
  const blocks = parseDesc(bytes, what);
  return {
    name: checkPackageName(single(blocks, 'NAME', what), what),
    version: checkPackageVersion(single(blocks, 'VERSION', what), what),
    arch: single(blocks, 'ARCH', what),
  };
}

/** An image with neither a recipe nor a pacman database: nothing to check (status), nothing to list (inspect). */
export class NoPackagesError extends UserError {}

/** The packages pacman's local database lists in a merged view of an image's layers (whiteouts applied). */
export function packagesFromPacmanDb(merged: LayerIndex): StatusPackage[] {
  const descs = [...merged.pacmanDb.keys()].filter((path) => LOCAL_DESC.test(path)).sort(byteOrder);
  if (descs.length === 0) throw new NoPackagesError(`the image has no recipe and no pacman database (${LOCAL_DB_DIR}/*/desc): no packages to check`);
  return descs.map((path) => installedPackage(merged.pacmanDb.get(path)!, `image ${displayName(path)}`));
}

/**
 * An image's packages: its recipe's lock when it carries one (built by repro-oci from a spec), else the pacman
 * local database its layers add up to, so any Arch-based image can be checked. Every layer read is verified
 * against its digest and diffID.
 */
export async function packagesFromImage(source: ImageSource, label: string, platform?: string): Promise<PackageSet> {
  const { descriptor, manifest } = await resolvePlatformManifest(source, platform, label);
  const config = checkConfig(await readJsonBlob(source, manifest.config, 'config'), `${label} config`).value;
  if (config.config?.Labels?.[RECIPE_LABEL]) return packagesFromLock((await readRecipe(source, descriptor, manifest)).lock, 'recipe');
  return { source: 'pacman-db', packages: packagesFromPacmanDb(await mergedImage(source, descriptor, manifest, config, label)) };
}

/**
 * The merged view of an image's layers (whiteouts applied), pacman's local database files kept: every layer read
 * is verified against its digest and diffID. `onFile` sees every regular file's content of every layer, in order.
 */
export async function mergedImage(source: ImageSource, descriptor: Descriptor, manifest: Manifest, config: ImageConfig, label: string, onFile?: (layer: number) => OnFile): Promise<LayerIndex> {
  const diffIds = layerDiffIds(manifest, config, `${label} manifest ${descriptor.digest}`);
  const layers: LayerIndex[] = [];
  for (const [i, layer] of manifest.layers.entries()) {
    const what = `${label}: layer ${layer.digest}`;
    layers.push(await readLayer(source, layer, diffIds[i], what, (content) => indexLayer(content, what, onFile?.(i))));
  }
  return mergeLayers(layers);
}
