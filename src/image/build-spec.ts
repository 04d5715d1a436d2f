import { createLock, defaultLockPath, existingLock, lockState, serializeLock, staleLockMessage, type Lock } from '../lock/lock.js';
import { sha256, type Digest } from '../oci/digest.js';
import { sbomPackage, serializeSbom, type SbomInput } from '../sbom/sbom.js';
import { spdxDocument } from '../sbom/spdx.js';
import { cycloneDxDocument } from '../sbom/cyclonedx.js';
import { loadSpec, resolutionDigest, type LoadedSpec, type Spec } from '../lock/spec.js';
import { stageLayers, writeOutputs, type BuildResult, type BuiltImage } from './build-rootfs.js';
import { checkImageSettings, layerCompressor, resolveSourceDateEpoch, type ImageSettings } from './image-settings.js';
import type { StagedImage } from './staged-image.js';
import { UserError } from '../errors.js';
import { ContentCache } from '../fetch/cache.js';
import { fetchLockedPackages, lockSignatures } from '../install/fetch-packages.js';
import type { KeyExpiry } from '../pacman/signature.js';
import { installPackages, type TreeNode } from '../install/installer.js';
import type { InstalledPackage } from '../install/local-db.js';
import { sortWithHardlinks } from '../rootfs/tree.js';
import { ensureDir, writeFileAtomic } from '../util/fs.js';
import { parseReference } from '../transports/reference.js';
import type { TransportOptions } from '../transports/open.js';
import { VERSION } from '../version.js';
import { checkSourceDateEpoch } from '../util/time.js';
import { timed, type Timings } from '../util/timings.js';
import { RECIPE_LABEL, RECIPE_PATH, serializeRecipe, type Recipe } from './recipe.js';
import type { SandboxLimits } from '../setup/limits.js';
import { runSetupCommands } from '../setup/sandbox.js';
import { runTransaction } from '../setup/scriptlets.js';
import { archlinuxDockerCommands, archlinuxDockerDirectories, dockerfileLayerEntries, runDockerfileStep, withArchlinuxDockerConfig } from '../setup/archlinux-docker.js';
import { applyExcludes, applySetupFiles, contentNode, expandSetup, lockRootPassword, refuseCommands } from '../setup/setup.js';
import { basename, join, resolve as resolvePath } from 'node:path';

export interface SpecBuildOptions {
  cache: ContentCache;
  mirrors?: string[];
  /** Keyring directory; default: the spec's `keyring.dir`, relative to the spec. */
  keyringDir?: string;
  /** --source-date-epoch and $SOURCE_DATE_EPOCH, in that order of precedence. */
  sourceDateEpochFlag?: string;
  sourceDateEpochEnv?: string;
  /** Limits for the setup commands (default DEFAULT_LIMITS). */
  limits?: SandboxLimits;
  /** Whether the spec's own `keyring.dir` may be read (not for a recipe from an image: a path is the author's). */
  trustSpecPaths?: boolean;
  /** The lock to fetch from when it differs from the one recorded (a recipe's URLs cut down by the URL policy). */
  fetchLock?: Lock;
  /** When signing keys' expiry is judged (default at-signature; docs/trust-model.md). */
  keyExpiry?: KeyExpiry;
  log: (message: string) => void;
}

export interface SpecBuild {
  image: StagedImage;
  result: BuildResult;
  recipe: Recipe;
  /** SBOM files by their path in the image. */
  sboms: Record<string, Buffer>;
  /** Milliseconds per phase: fetch, install, setup, layer. */
  timings: Timings;
  /** How many package signatures were verified. */
  signaturesVerified: number;
}

/** Where the SBOMs live in the image (beside the recipe). */
export const SBOM_PATHS = { spdx: 'usr/share/repro-oci/sbom.spdx.json', cyclonedx: 'usr/share/repro-oci/sbom.cdx.json' } as const;

/**
 * SOURCE_DATE_EPOCH for a spec build when none is given: midnight UTC of the archive snapshot, else the newest
 * BUILDDATE among the locked packages. Derived from the lock, never from the clock.
 */
export function defaultSourceDateEpoch(lock: Lock): number {
  if (lock.archive) return checkSourceDateEpoch(Date.parse(`${lock.archive.date}T00:00:00Z`) / 1000, `the lock's archive date ${lock.archive.date} (the default SOURCE_DATE_EPOCH) gives`);
  return checkSourceDateEpoch(lock.packages.reduce((max, p) => Math.max(max, p.builddate ?? 0), 0), 'the newest package BUILDDATE in the lock (the default SOURCE_DATE_EPOCH)');
}

/**
 * The lock a build uses: the one at `lockPath` (SPEC.lock.json beside the spec by default), which must match the
 * spec. When it is missing, a new one is resolved and written there, unless `mustExist` names what forbids that
 * (`--frozen`, or a lock named explicitly with `--lock`): then the missing lock is the error.
 */
export async function lockForBuild(loaded: LoadedSpec, lockPath: string, log: (m: string) => void, mustExist?: string, keyExpiry?: KeyExpiry): Promise<Lock> {
  if (mustExist) return existingLock(loaded, lockPath, mustExist);
  const found = await lockState(loaded, lockPath);
  if (found.state === 'stale') throw new UserError(staleLockMessage(lockPath));
  if (found.state === 'current') return found.lock;
  const lock = await createLock(loaded, { log, ...(keyExpiry ? { keyExpiry } : {}) });
  await writeFileAtomic(lockPath, serializeLock(lock));
  log(`locked ${lock.packages.length} packages to ${lockPath}`);
  return lock;
}

/** The directories repro-oci's own files live in, parents first. */
const OWN_DIRS = ['usr', 'usr/share', 'usr/share/repro-oci'];

function ownerName(node: TreeNode): string {
  return node.owner === 'setup' ? 'the setup' : `package ${node.owner}`;
}

/**
 * Puts the recipe and SBOMs into the tree. Their directories may already exist as directories (from packages or
 * the setup; kept as they are, other files in them too); anything else on those paths, or on the files
 * themselves, is refused: repro-oci never writes through a symlink, beneath a file, or over another's file.
 */
function placeOwnFiles(nodes: Map<string, TreeNode>, files: Record<string, Buffer>, sde: number): void {
  for (const dir of OWN_DIRS) {
    const node = nodes.get(dir);
    if (node && node.type !== 'dir') {
      const verb = node.owner === 'setup' ? `the setup puts a ${node.type} at ${dir}` : `${ownerName(node)} ships ${dir} as a ${node.type}`;
      throw new UserError(`${verb}; repro-oci keeps its recipe and SBOMs there and writes through nothing but directories`);
    }
    if (!node) nodes.set(dir, { path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: sde, size: 0, owner: 'repro-oci' });
  }
  for (const path of Object.keys(files)) {
    const node = nodes.get(path);
    if (node) throw new UserError(`${ownerName(node)} ${node.owner === 'setup' ? 'writes' : 'ships'} ${path}, a path repro-oci writes itself`);
  }
  for (const [path, content] of Object.entries(files)) nodes.set(path, contentNode(path, content, { mode: 0o644, uid: 0, gid: 0, mtime: sde }, 'repro-oci'));
}

/** A spec's finished file tree, before it is packed: recipe and SBOMs in place, contents still in scratch space. */
export interface SpecTree {
  /** The whole tree, as a running container sees it. */
  nodes: Map<string, TreeNode>;
  /** The image's layers, bottom first: the whole tree, or the rootfs and the Dockerfile's RUN layer (archlinux-docker, `layers: 2`). */
  layers: { entries: Map<string, TreeNode>; createdBy: string }[];
  packages: InstalledPackage[];
  /** The image settings, with the archlinux-docker preset's config applied. */
  settings: ImageSettings;
  sourceDateEpoch: number;
  recipe: Recipe;
  recipeDigest: Digest;
  /** SBOM files by their path in the tree. */
  sboms: Record<string, Buffer>;
  timings: Timings;
  signaturesVerified: number;
  /** Removes the scratch space that backs the contents: only after the tree was written. */
  cleanup(): Promise<void>;
}

/** How a tree that is not an image's layer is finished (the bootstrap tarball: src/bootstrap/). */
export interface TreeFinish {
  /** The compressor identity the recipe records. */
  compressor: string;
  /** More recipe fields, recorded beside the spec and lock. */
  recipeFields: Record<string, unknown>;
  /** Runs after the setup, before the recipe and SBOMs are placed. */
  finish(nodes: Map<string, TreeNode>, packages: InstalledPackage[], sourceDateEpoch: number): Promise<void> | void;
}

/**
 * lock → fetch → install → setup → recipe: the tree every output of a spec is made from. The same function serves
 * `build` and `rebuild`, so a rebuild runs exactly the recorded pipeline.
 */
export async function buildSpecTree(
  spec: Spec,
  baseDir: string,
  lock: Lock,
  options: SpecBuildOptions & { sourceDateEpoch?: number },
  finish?: TreeFinish,
): Promise<SpecTree> {
  if (lock.specDigest !== resolutionDigest(spec)) throw new UserError('the lock was made for a different package selection than the spec');
  const settings: ImageSettings = checkImageSettings(spec.image ?? {}, 'spec image');
  const sde = options.sourceDateEpoch ?? (options.sourceDateEpochFlag !== undefined || options.sourceDateEpochEnv || settings.sourceDateEpoch !== undefined
    ? resolveSourceDateEpoch(options.sourceDateEpochFlag, options.sourceDateEpochEnv, settings)
    : defaultSourceDateEpoch(lock));
  const compressor = finish?.compressor ?? layerCompressor(settings).identity;

  const timings: Timings = {};
  const packages = await timed(timings, 'fetch', async () => {
    const signatures = await lockSignatures(lock, options.keyringDir ?? (spec.keyring && options.trustSpecPaths !== false ? resolvePath(baseDir, spec.keyring.dir) : undefined), options.keyExpiry);
    return fetchLockedPackages(options.fetchLock ?? lock, { baseDir, cache: options.cache, mirrors: options.mirrors ?? [], signatures, log: options.log });
  });
  const setup = expandSetup(settings.setup);
  const noExtract = [...setup.noExtract, ...(spec.noExtract ?? [])];
  const tree = await timed(timings, 'install', () => installPackages(packages, { sourceDateEpoch: sde, noExtract, warn: (m) => options.log(`warning: ${m}`) }));
  try {
    const nodes = new Map<string, TreeNode>(tree.entries.map((e) => [e.path, e]));
    const preset = setup.archlinuxDocker;
    let rootfsLayer: Map<string, TreeNode> | undefined;
    let runLayer: Map<string, TreeNode> | undefined;
    await timed(timings, 'setup', async () => {
      if (setup.scriptlets || setup.hooks) {
        const done = await runTransaction(nodes, tree.packages, tree.spool, { ...setup, sourceDateEpoch: sde, noExtract, limits: options.limits, log: options.log });
        done.warnings.concat(done.failures).forEach((w) => options.log(`warning: ${w}`));
        options.log(`scriptlets and hooks: ${done.ran.length} ran, ${done.changed.length} path(s) changed, ${done.removed.length} removed`);
      }
      applySetupFiles(nodes, setup, sde);
      const commands = [...(preset ? archlinuxDockerCommands(nodes, options.log) : []), ...setup.commands];
      if (commands.length) {
        const changes = await runSetupCommands(nodes, commands, sde, setup.exclude, tree.spool, options.limits);
        options.log(`setup commands changed ${changes.changed.length} and removed ${changes.removed.length} path(s)`);
      }
      if (preset) archlinuxDockerDirectories(nodes, sde);
      if (setup.lockRootPassword) await lockRootPassword(nodes, preset && settings.setup?.lockRootPassword === undefined ? options.log : undefined);
      applyExcludes(nodes, setup.exclude);
      if (preset) {
        // The Dockerfile's RUN step: in its own layer for the official two-layer shape.
        const lower = preset.layers === 2 ? new Map(nodes) : undefined;
        const step = await runDockerfileStep(nodes, preset, sde, { exclude: setup.exclude, spool: tree.spool, ...(options.limits ? { limits: options.limits } : {}), log: options.log });
        applyExcludes(nodes, setup.exclude);
        if (lower) {
          rootfsLayer = lower;
          runLayer = dockerfileLayerEntries(lower, nodes, step, sde);
        }
      }
      await finish?.finish(nodes, tree.packages, sde);
    });

    // SBOMs of what was installed, inside the image and for --sbom.
    const signers = new Map(packages.map((p) => [p.name, p.signer]));
    const lockedByName = new Map(lock.packages.map((p) => [p.name, p]));
    const sbomInput: SbomInput = {
      sourceDateEpoch: sde,
      toolVersion: VERSION,
      lockDigest: sha256(serializeLock(lock)),
      packages: tree.packages.map((p) => sbomPackage(lockedByName.get(p.pkginfo.pkgname)!, p.pkginfo, signers.get(p.pkginfo.pkgname))),
    };
    const sboms = { [SBOM_PATHS.spdx]: serializeSbom(spdxDocument(sbomInput)), [SBOM_PATHS.cyclonedx]: serializeSbom(cycloneDxDocument(sbomInput)) };

    const recipe: Recipe = { recipeVersion: 1, reproOci: VERSION, spec, lock, sourceDateEpoch: sde, compressor, ...finish?.recipeFields };
    const { bytes, digest } = serializeRecipe(recipe);
    // repro-oci's own files go with the rootfs (the first layer), not into the RUN layer.
    placeOwnFiles(rootfsLayer ?? nodes, { [RECIPE_PATH]: bytes, ...sboms }, sde);
    const signaturesVerified = packages.filter((p) => p.validation.includes('pgp')).length;
    const imageSettings = preset ? withArchlinuxDockerConfig(settings, preset, sde) : settings;
    const layers = [{ entries: rootfsLayer ?? nodes, createdBy: `repro-oci ${VERSION} build` }];
    if (runLayer) layers.push({ entries: runLayer, createdBy: `repro-oci ${VERSION} build: RUN ldconfig && sed -i '/BUILD_ID/a VERSION_ID=…' /etc/os-release (archlinux-docker)` });
    return { nodes, layers, packages: tree.packages, settings: imageSettings, sourceDateEpoch: sde, recipe, recipeDigest: digest, sboms, timings, signaturesVerified, cleanup: () => tree.cleanup() };
  } catch (err) {
    await tree.cleanup();
    throw err;
  }
}

/** The spec's tree as an image (config, manifest, its layers), held in scratch space. */
export async function buildFromRecipeInputs(
  spec: Spec,
  baseDir: string,
  lock: Lock,
  options: SpecBuildOptions & { sourceDateEpoch?: number },
): Promise<SpecBuild> {
  const built = await buildSpecTree(spec, baseDir, lock, options);
  try {
    const { layers, settings, sourceDateEpoch, recipe, recipeDigest, sboms, timings, signaturesVerified } = built;
    const sorted = layers.map((l) => ({ entries: sortWithHardlinks(l.entries), createdBy: l.createdBy }));
    const { image, result } = await timed(timings, 'layer', () => stageLayers(sorted, settings, sourceDateEpoch, { [RECIPE_LABEL]: recipeDigest }));
    return { image, result, recipe, sboms, timings, signaturesVerified };
  } finally {
    await built.cleanup();
  }
}

export interface SpecOutputOptions extends Omit<SpecBuildOptions, 'log' | 'cache' | 'sourceDateEpochFlag' | 'trustSpecPaths' | 'fetchLock'> {
  /** SOURCE_DATE_EPOCH in seconds, over `sourceDateEpochEnv`, the spec's image settings and the lock's date. */
  sourceDateEpoch?: string;
  /** Package cache (default: ContentCache.at(): $REPRO_OCI_CACHE, else ~/.cache/repro-oci). */
  cache?: ContentCache;
  /** References to write the image to (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:…, docker://…). */
  outputs: string[];
  /** Also write the SBOMs (sbom.spdx.json, sbom.cdx.json) into this directory. */
  sbomDir?: string;
  transport?: TransportOptions;
  log?: (message: string) => void;
}

export interface SpecBuildResult extends BuiltImage {
  recipe: Recipe;
  /** SBOM files by their path in the image. */
  sboms: Record<string, Buffer>;
}

/** Builds a loaded spec from its lock and writes the image to every output (and the SBOMs to `sbomDir`). */
export async function buildLockedSpec(loaded: LoadedSpec, lock: Lock, options: SpecOutputOptions): Promise<SpecBuildResult> {
  options.outputs.forEach((o) => parseReference(o));
  const { outputs, sbomDir, transport, cache, sourceDateEpoch, ...rest } = options;
  const { image, result, recipe, sboms, timings } = await buildFromRecipeInputs(loaded.spec, loaded.baseDir, lock, {
    ...rest,
    ...(sourceDateEpoch !== undefined ? { sourceDateEpochFlag: sourceDateEpoch } : {}),
    cache: cache ?? ContentCache.at(),
    log: options.log ?? (() => {}),
  });
  try {
    const written = await timed(timings, 'write', async () => {
      const written = await writeOutputs(image, outputs, transport);
      if (sbomDir) {
        await ensureDir(sbomDir);
        for (const [path, content] of Object.entries(sboms)) await writeFileAtomic(join(sbomDir, basename(path)), content);
      }
      return written;
    });
    return { ...result, outputs: written, recipe, sboms, timings };
  } finally {
    await image.close();
  }
}

export interface SpecFileBuildOptions extends SpecOutputOptions {
  /** The lock to build from (default: defaultLockPath(spec)); resolved and written there when missing. */
  lock?: string;
  /** Refuse a spec that has setup commands, before fetching anything. */
  noCommands?: boolean;
  /** Never resolve nor write a lock: a missing lock is an error, as a stale one always is (CI). */
  frozen?: boolean;
}

/**
 * `build SPEC`: spec → lock → image, written to every output. The default lock (SPEC.lock.json) is made when
 * missing; an explicit `lock` must exist, and `frozen` never resolves.
 */
export async function buildSpecFile(specPath: string, options: SpecFileBuildOptions): Promise<SpecBuildResult> {
  options.outputs.forEach((o) => parseReference(o)); // a typo fails before any work
  const loaded = await loadSpec(specPath);
  const settings = checkImageSettings(loaded.spec.image ?? {}, 'spec image'); // before a lock is made for it
  if (options.noCommands) refuseCommands(expandSetup(settings.setup), 'spec');
  const mustExist = options.frozen ? '--frozen' : options.lock !== undefined ? '--lock' : undefined;
  const timings: Timings = {};
  const lock = await timed(timings, 'lock', () => lockForBuild(loaded, options.lock ?? defaultLockPath(specPath), options.log ?? (() => {}), mustExist, options.keyExpiry));
  const result = await buildLockedSpec(loaded, lock, options);
  return { ...result, timings: { ...timings, ...result.timings } };
}
