import { diffImages, formatDiff, type DiffReport } from '../compare/image-diff.js';
import { checkImageSettings, layerCompressor } from '../image/image-settings.js';
import { UserError } from '../errors.js';
import { ContentCache } from '../fetch/cache.js';
import { openSource, type TransportOptions } from '../transports/open.js';
import type { Descriptor } from '../oci/types.js';
import { readJsonBlob } from '../transports/layout.js';
import { describeSkipped, resolvePlatformManifest, type SkippedManifest } from '../transports/platform-manifest.js';
import type { ImageSource } from '../transports/types.js';
import { CheckedBlobs, verifyAllBlobs } from '../transports/verify.js';
import { VERSION } from '../version.js';
import { buildFromRecipeInputs, type SpecBuildOptions } from '../image/build-spec.js';
import type { Recipe } from '../image/recipe.js';
import { readRecipe } from '../image/read-recipe.js';
import { DEFAULT_LIMITS, summarizeLimits, type SandboxLimits } from '../setup/limits.js';
import { expandSetup, refuseCommands, sandboxedRuns } from '../setup/setup.js';
import { applyUrlPolicy, refusedPackageError, UrlPolicy } from './url-policy.js';
import type { Lock } from '../lock/lock.js';
import { DEFAULT_KEY_EXPIRY, describeKeyExpiry, type KeyExpiry } from '../pacman/signature.js';
import { resolveLocation } from '../lock/spec.js';
import type { Digest } from '../oci/digest.js';
import { rebuildBootstrap } from '../bootstrap/rebuild.js';
import { bootstrapTarballPath } from '../bootstrap/tarball.js';

export interface RebuildOptions {
  cache: ContentCache;
  mirrors?: string[];
  keyringDir?: string;
  /** Refuse recipes made by another repro-oci version or compressor instead of trying. */
  strict?: boolean;
  platform?: string;
  /** URL prefixes the recipe's package URLs may use besides the archive and the mirrors (--allow-url). */
  allowUrls?: string[];
  /** Refuse a recipe with setup commands, before fetching anything (--no-commands). */
  noCommands?: boolean;
  /** Limits for the recipe's setup commands (default DEFAULT_LIMITS). */
  limits?: SandboxLimits;
  /**
   * The directory the recipe's relative package URLs are relative to: the spec's directory where the image was
   * built. Without it they are not used (the current directory has nothing to do with the image), and those
   * packages come from a mirror or the cache. Relative mirrors are relative to the current directory.
   */
  baseDir?: string;
  /** When signing keys' expiry is judged (default at-signature; docs/trust-model.md). */
  keyExpiry?: KeyExpiry;
  log: (message: string) => void;
}

export interface RebuildResult {
  reproducible: boolean;
  /** The manifest that was rebuilt (the per-platform manifest when the reference names an index). */
  manifest: string;
  rebuilt: string;
  /** Set when the reference named an index; `skipped`: its entries that are no platform's image (attestation manifests). */
  index?: { digest: string; platform: string; skipped: SkippedManifest[] };
  notes: string[];
  /**
   * Set when the image is reproducible by content only: its source keeps no manifest of the image's own (a
   * docker-archive), and the config (digest `config`, which lists the layers' diffIDs) and every layer's
   * uncompressed content match the rebuild.
   */
  byContent?: { config: string; layers: number };
  /** How the packages' signatures were judged: how many verified, under which key expiry policy. */
  signatures: { verified: number; keyExpiry: KeyExpiry };
  diff?: DiffReport;
}

/**
 * The recipe's lock with only the URLs the user allows (docs/trust-model.md). A package left with none must come
 * from the cache or a --mirror; otherwise it is refused here, before any package is fetched.
 */
async function lockWithinPolicy(recipe: Recipe, options: RebuildOptions): Promise<Lock> {
  // A relative mirror is relative to the current directory, as where packages are fetched (fetchLockedPackages).
  const mirrors = (options.mirrors ?? []).map((m) => resolveLocation(m, process.cwd()));
  const { lock, refused, dropped, unresolved } = applyUrlPolicy(recipe.lock, options.baseDir, new UrlPolicy(options.allowUrls ?? [], mirrors));
  if (mirrors.length === 0) {
    // Looked up in full (a corrupt entry is evicted here), so the refusal is decided before anything is fetched.
    for (const r of refused) if (!(await options.cache.lookup(`sha256:${r.pkg.sha256}` as Digest, r.pkg.csize || undefined, options.log))) throw refusedPackageError(r);
  }
  if (unresolved) options.log(`note: ${unresolved} of the recipe's package URL(s) are paths relative to the spec it was built from, which a rebuild does not resolve: not used (--mirror DIR serves those packages by file name)`);
  if (dropped > unresolved) options.log(`note: ${dropped - unresolved} of the recipe's package URL(s) are outside the allowed locations and are not used (--allow-url PREFIX allows more)`);
  return lock;
}

/** How a recipe is built again: its own SOURCE_DATE_EPOCH, only the packages the URL policy left, no spec paths. */
export type RecipeBuildOptions = SpecBuildOptions & { sourceDateEpoch: number };

/**
 * What every rebuild judges before it fetches anything: the recipe's repro-oci version and compressor (notes;
 * refused with --strict), what it runs in the sandbox (refused with --no-commands, else listed) and its package URLs (the
 * URL policy). `compressed` names what the recipe's compressor made (the layer, the tarball).
 */
export async function prepareRebuild(recipe: Recipe, compressor: string, compressed: string, options: RebuildOptions): Promise<{ notes: string[]; build: RecipeBuildOptions }> {
  const notes: string[] = [];
  if (recipe.reproOci !== VERSION) notes.push(`the image was built by repro-oci ${recipe.reproOci}; this is ${VERSION}`);
  if (compressor !== recipe.compressor) notes.push(`${compressed} was compressed by ${recipe.compressor}; this build compresses with ${compressor}`);
  if (notes.length && options.strict) throw new UserError(`--strict: ${notes.join('; ')}`);
  notes.forEach((n) => options.log(`note: ${n}`));

  // The recipe is the image author's: its commands and URLs are judged before anything is fetched or run.
  const setup = expandSetup(checkImageSettings(recipe.spec.image ?? {}, 'recipe spec image').setup);
  const limits = options.limits ?? DEFAULT_LIMITS;
  if (options.noCommands) refuseCommands(setup, 'recipe');
  const fetchLock = await lockWithinPolicy(recipe, options);
  const runs = sandboxedRuns(setup);
  const parts = [...(setup.commands.length ? [`${setup.commands.length} setup command(s)`] : []), ...runs];
  if (parts.length) {
    options.log(`the image's recipe runs ${parts.join(' and ')}, sandboxed (no network; ${summarizeLimits(limits)})${setup.commands.length ? ':' : ''}`);
    setup.commands.forEach((c) => options.log(`  ${JSON.stringify(c)}`));
  }
  const build: RecipeBuildOptions = {
    cache: options.cache,
    mirrors: options.mirrors ?? [],
    ...(options.keyringDir ? { keyringDir: options.keyringDir } : {}),
    ...(options.keyExpiry ? { keyExpiry: options.keyExpiry } : {}),
    trustSpecPaths: false,
    fetchLock,
    limits,
    sourceDateEpoch: recipe.sourceDateEpoch,
    log: options.log,
  };
  return { notes, build };
}

export async function rebuild(source: ImageSource, label: string, options: RebuildOptions): Promise<RebuildResult> {
  const { descriptor, manifest, index } = await resolvePlatformManifest(source, options.platform, label);
  const recipe = await readRecipe(source, descriptor, manifest);
  const settings = checkImageSettings(recipe.spec.image ?? {}, 'recipe spec image');
  const { notes, build } = await prepareRebuild(recipe, layerCompressor(settings).identity, 'the layer', options);
  const built = await buildFromRecipeInputs(recipe.spec, options.baseDir ?? process.cwd(), recipe.lock, build);
  try {
    const rebuilt = built.result.manifest.digest;
    const signatures = { verified: built.signaturesVerified, keyExpiry: options.keyExpiry ?? DEFAULT_KEY_EXPIRY };
    const result: RebuildResult = { reproducible: rebuilt === descriptor.digest, manifest: descriptor.digest, rebuilt, notes, signatures, ...(index ? { index: { digest: index.digest, platform: index.platform, skipped: index.skipped } } : {}) };
    if (!result.reproducible && source.keepsOnlyContent && manifest.config.digest === built.result.config.digest) {
      // The same config names the same diffIDs: what is left to show is that every layer's content has them.
      await verifyAllBlobs(source, { descriptor, raw: await readJsonBlob(source, descriptor, 'manifest') }, new CheckedBlobs(), label);
      result.reproducible = true;
      result.byContent = { config: manifest.config.digest, layers: manifest.layers.length };
    }
    if (!result.reproducible) {
      const pinned = { root: async () => ({ descriptor, raw: await readJsonBlob(source, descriptor, 'manifest') }), openBlob: (d: Descriptor) => source.openBlob(d), close: async () => {} };
      result.diff = await diffImages({ label, source: pinned }, { label: 'rebuild', source: built.image });
    }
    return result;
  } finally {
    await built.image.close();
  }
}

export interface RebuildReferenceOptions extends Omit<RebuildOptions, 'cache' | 'log'> {
  /** Package cache (default: ContentCache.at(): $REPRO_OCI_CACHE, else ~/.cache/repro-oci). */
  cache?: ContentCache;
  transport?: TransportOptions;
  log?: (message: string) => void;
}

/** `rebuild REF`: opens the image, rebuilds it from its recipe and compares (see rebuild); a bootstrap tarball too. */
export async function rebuildReference(reference: string, options: RebuildReferenceOptions = {}): Promise<RebuildResult> {
  const { transport, cache, log, ...rest } = options;
  const tarball = bootstrapTarballPath(reference);
  if (tarball !== undefined) return rebuildBootstrap(tarball, { ...rest, cache: cache ?? ContentCache.at(), log: log ?? (() => {}) });
  const source = await openSource(reference, transport);
  try {
    return await rebuild(source, reference, { ...rest, cache: cache ?? ContentCache.at(), log: log ?? (() => {}) });
  } finally {
    await source.close();
  }
}

export function formatRebuild(result: RebuildResult): string {
  const lines: string[] = [];
  if (result.index) lines.push(`index ${result.index.digest}: rebuilding its ${result.index.platform} manifest (index-level annotations and attestations are the publisher's and are not rebuilt)`);
  const skipped = result.index && describeSkipped(result.index.digest, result.index.skipped);
  if (skipped) lines.push(skipped);
  if (result.byContent) {
    lines.push(`reproducible by content: config ${result.byContent.config} and the content of all ${result.byContent.layers} layer(s) match the rebuild`);
    lines.push(`(the archive keeps no manifest of the image's own, so its digest ${result.manifest} is not the image's; the rebuild's manifest is ${result.rebuilt})`);
  } else if (result.reproducible) {
    lines.push(`reproducible: ${result.manifest}`);
  } else {
    lines.push(`NOT reproducible: image ${result.manifest}, rebuild ${result.rebuilt}`);
    if (result.notes.length) lines.push(`likely cause: ${result.notes.join('; ')}`);
    if (result.diff) lines.push(formatDiff(result.diff, 40).trimEnd());
  }
  const { verified, keyExpiry } = result.signatures;
  if (verified > 0) lines.push(`signatures: ${verified} package signature(s) verified; ${describeKeyExpiry(keyExpiry)}`);
  return `${lines.join('\n')}\n`;
}
