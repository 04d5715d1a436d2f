import { join } from 'node:path';
import { UserError } from '../errors.js';
import { ContentCache } from '../fetch/cache.js';
import { buildSpecTree, lockForBuild, type SpecBuildOptions, type SpecOutputOptions } from '../image/build-spec.js';
import { checkImageSettings, type ImageSettings } from '../image/image-settings.js';
import type { Recipe } from '../image/recipe.js';
import type { TreeNode } from '../install/installer.js';
import type { InstalledPackage } from '../install/local-db.js';
import { defaultLockPath, type Lock } from '../lock/lock.js';
import { loadSpec, specArchitecture, type LoadedSpec, type Spec } from '../lock/spec.js';
import type { Compression } from '../oci/mediatypes.js';
import { expandSetup, refuseCommands } from '../setup/setup.js';
import { makeScratchDir } from '../util/fs.js';
import { timed, type Timings } from '../util/timings.js';
import { addPacstrapDirectories, applyCleanup, applyMakeVersion, archisoVersion, pacmanQuery, type BootstrapSettings } from './archiso.js';
import { bootstrapCompressor, bootstrapEntries, parseBootstrapOutput, writeTarball, writeTarballAtomic, type BootstrapOutput, type WrittenTarball } from './tarball.js';

/** What a bootstrap tarball's recipe records beside the spec and lock: how the tarball was compressed. */
export interface BootstrapRecipe extends Recipe {
  bootstrap: { compression: Compression };
}

const COMPRESSIONS: readonly Compression[] = ['zstd', 'gzip', 'none'];

/** A recipe read from a tarball must say it is a bootstrap's, with a compression this version knows. */
export function checkBootstrapRecipe(recipe: Recipe, what: string): BootstrapRecipe {
  const bootstrap = (recipe as Partial<BootstrapRecipe>).bootstrap;
  if (!bootstrap || typeof bootstrap !== 'object' || !COMPRESSIONS.includes(bootstrap.compression)) {
    throw new UserError(`${what}: the recipe has no valid bootstrap section (bootstrap.compression zstd, gzip or none)`);
  }
  return recipe as BootstrapRecipe;
}

/** The spec's bootstrap settings: IMAGE_ID archlinux and IMAGE_VERSION from SOURCE_DATE_EPOCH unless it names them. */
export function bootstrapSettings(spec: Spec, settings: ImageSettings, sourceDateEpoch: number): BootstrapSettings {
  return {
    arch: specArchitecture(spec),
    imageId: settings.bootstrap?.imageId ?? 'archlinux',
    imageVersion: settings.bootstrap?.imageVersion ?? archisoVersion(sourceDateEpoch),
  };
}

export interface BuiltBootstrap extends WrittenTarball {
  recipe: BootstrapRecipe;
  compressor: string;
  /** The tarball's pkglist.<arch>.txt. */
  pkglist: string;
  timings: Timings;
  signaturesVerified: number;
}

/**
 * spec + lock → archiso's bootstrap tarball, written by `write` (into scratch space, or atomically to the output).
 * The steps after pacstrap are mkarchiso's, in its order: _make_version, _make_pkglist, _cleanup_pacstrap_dir.
 */
export async function buildBootstrap(
  spec: Spec,
  baseDir: string,
  lock: Lock,
  compression: Compression,
  options: SpecBuildOptions & { sourceDateEpoch?: number },
  write: (entries: ReturnType<typeof bootstrapEntries>, sourceDateEpoch: number, compressor: ReturnType<typeof bootstrapCompressor>) => Promise<WrittenTarball>,
): Promise<BuiltBootstrap> {
  const settings = checkImageSettings(spec.image ?? {}, 'spec image');
  const compressor = bootstrapCompressor(compression, settings.bootstrap?.level);
  let pkglist = '';
  let bootstrap: BootstrapSettings | undefined;
  const tree = await buildSpecTree(spec, baseDir, lock, options, {
    compressor: compressor.identity,
    recipeFields: { bootstrap: { compression } },
    async finish(nodes: Map<string, TreeNode>, packages: InstalledPackage[], sde: number) {
      bootstrap = bootstrapSettings(spec, settings, sde);
      addPacstrapDirectories(nodes, sde);
      await applyMakeVersion(nodes, bootstrap, sde, (m) => options.log(`warning: ${m}`));
      pkglist = pacmanQuery(packages);
      applyCleanup(nodes, sde);
    },
  });
  try {
    const entries = bootstrapEntries(tree.nodes, bootstrap!, pkglist, tree.sourceDateEpoch);
    const written = await timed(tree.timings, 'tarball', () => write(entries, tree.sourceDateEpoch, compressor));
    return { ...written, recipe: tree.recipe as BootstrapRecipe, compressor: compressor.identity, pkglist, timings: tree.timings, signaturesVerified: tree.signaturesVerified };
  } finally {
    await tree.cleanup();
  }
}

/** Builds a bootstrap tarball into a private scratch file (rebuild compares it there); `cleanup` removes it. */
export async function buildBootstrapToScratch(
  spec: Spec,
  baseDir: string,
  lock: Lock,
  compression: Compression,
  options: SpecBuildOptions & { sourceDateEpoch?: number },
): Promise<BuiltBootstrap & { file: string; cleanup(): Promise<void> }> {
  const scratch = await makeScratchDir('bootstrap');
  try {
    const file = join(scratch.path, 'bootstrap.tar');
    const built = await buildBootstrap(spec, baseDir, lock, compression, options, (entries, sde, compressor) => writeTarball(entries, sde, compressor, file));
    return { ...built, file, cleanup: scratch.cleanup };
  } catch (err) {
    await scratch.cleanup();
    throw err;
  }
}

export interface BootstrapFileBuildOptions extends Omit<SpecOutputOptions, 'outputs' | 'sbomDir' | 'transport'> {
  /** `bootstrap:FILE.tar.zst|.tar.gz|.tar[:sha256]`. */
  output: string;
  /** The lock to build from (default: defaultLockPath(spec)); resolved and written there when missing. */
  lock?: string;
  /** Refuse a spec that runs commands, scriptlets or hooks, before fetching anything. */
  noCommands?: boolean;
  /** Never resolve nor write a lock. */
  frozen?: boolean;
}

export interface BootstrapFileBuild extends BuiltBootstrap {
  output: BootstrapOutput;
}

/** `build SPEC -o bootstrap:FILE`: spec → lock → archiso's bootstrap tarball, written atomically. */
export async function buildBootstrapSpecFile(specPath: string, options: BootstrapFileBuildOptions): Promise<BootstrapFileBuild> {
  const output = parseBootstrapOutput(options.output);
  if (!output) throw new UserError(`${options.output}: not a bootstrap output (bootstrap:FILE.tar.zst)`);
  const loaded: LoadedSpec = await loadSpec(specPath);
  const settings = checkImageSettings(loaded.spec.image ?? {}, 'spec image');
  bootstrapCompressor(output.compression, settings.bootstrap?.level); // a bad level fails before the lock
  if (options.noCommands) refuseCommands(expandSetup(settings.setup), 'spec');
  const mustExist = options.frozen ? '--frozen' : options.lock !== undefined ? '--lock' : undefined;
  const log = options.log ?? (() => {});
  const timings: Timings = {};
  const lock = await timed(timings, 'lock', () => lockForBuild(loaded, options.lock ?? defaultLockPath(specPath), log, mustExist, options.keyExpiry));
  const { cache, sourceDateEpoch, sourceDateEpochEnv, mirrors, keyringDir, limits, keyExpiry } = options;
  const built = await buildBootstrap(loaded.spec, loaded.baseDir, lock, output.compression, {
    ...(sourceDateEpoch !== undefined ? { sourceDateEpochFlag: sourceDateEpoch } : {}),
    ...(sourceDateEpochEnv !== undefined ? { sourceDateEpochEnv } : {}),
    ...(mirrors ? { mirrors } : {}),
    ...(keyringDir !== undefined ? { keyringDir } : {}),
    ...(limits ? { limits } : {}),
    ...(keyExpiry ? { keyExpiry } : {}),
    cache: cache ?? ContentCache.at(),
    log,
  }, (entries, sde, compressor) => writeTarballAtomic(entries, sde, compressor, output));
  return { ...built, output, timings: { ...timings, ...built.timings } };
}

