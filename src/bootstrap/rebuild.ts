import { UserError } from '../errors.js';
import { parseRecipe } from '../image/recipe.js';
import { DEFAULT_KEY_EXPIRY } from '../pacman/signature.js';
import { checkImageSettings } from '../image/image-settings.js';
import { prepareRebuild, type RebuildOptions, type RebuildResult } from '../verify/rebuild.js';
import { displayName } from '../util/raw-name.js';
import { buildBootstrapToScratch, checkBootstrapRecipe } from './build.js';
import { bootstrapCompressor, readTarballRecipe } from './tarball.js';
import { fileDigest } from '../oci/digest.js';
import { openTarballSource } from './source.js';
import { diffImages } from '../compare/image-diff.js';
import { specArchitecture } from '../lock/spec.js';

/**
 * `rebuild FILE.tar.zst`: reads the recipe the tarball carries, builds the tarball again from it and compares the
 * bytes (sha256 of the whole file). The recipe is judged as an image's is (URL policy, --no-commands, --strict).
 */
export async function rebuildBootstrap(path: string, options: RebuildOptions): Promise<RebuildResult> {
  const what = `bootstrap tarball ${displayName(path)}`;
  const { bytes, arch } = await readTarballRecipe(path);
  const recipe = checkBootstrapRecipe(parseRecipe(bytes, undefined, what), what);
  if (specArchitecture(recipe.spec) !== arch) throw new UserError(`${what}: its recipe is for ${specArchitecture(recipe.spec)}, but it sits in root.${arch}/`);
  const digest = await fileDigest(path);
  const settings = checkImageSettings(recipe.spec.image ?? {}, 'recipe spec image');
  const compressor = bootstrapCompressor(recipe.bootstrap.compression, settings.bootstrap?.level).identity;
  const { notes, build } = await prepareRebuild(recipe, compressor, 'the tarball', options);
  const built = await buildBootstrapToScratch(recipe.spec, options.baseDir ?? process.cwd(), recipe.lock, recipe.bootstrap.compression, build);
  try {
    const result: RebuildResult = {
      reproducible: built.digest === digest,
      manifest: digest,
      rebuilt: built.digest,
      notes,
      signatures: { verified: built.signaturesVerified, keyExpiry: options.keyExpiry ?? DEFAULT_KEY_EXPIRY },
    };
    if (!result.reproducible) result.diff = await diffImages({ label: path, source: await openTarballSource(path) }, { label: 'rebuild', source: await openTarballSource(built.file) });
    return result;
  } finally {
    await built.cleanup();
  }
}
