import type { Command } from 'commander';
import { addCommandOptions, addRegistryOptions, keyExpiryOption, repeatable, transportOptions, type CommandCliOptions, type RegistryCliOptions } from '../options.js';
import type { KeyExpiry } from '../../pacman/signature.js';
import { limitsFromOptions } from '../../setup/limits.js';
import { ContentCache } from '../../fetch/cache.js';
import { formatRebuild, rebuildReference } from '../../verify/rebuild.js';
import { NoRecipeError } from '../../image/read-recipe.js';
import { formatForeignRebuild, foreignContentPasses, foreignRebuildJson, verifyForeignReference } from '../../foreign/verify-content.js';
import { DEFAULT_ARCHIVE_URL } from '../../lock/from-image.js';
import { UserError } from '../../errors.js';
import type { SandboxLimits } from '../../setup/limits.js';
import { checkCache } from '../preflight.js';
import { diffJson } from '../../compare/image-diff.js';
import { note } from '../output.js';

export function registerRebuild(program: Command): void {
  addCommandOptions(addRegistryOptions(program
    .command('rebuild')
    .description("Rebuild an image from the recipe it carries and say whether the digest matches (exit 0 reproducible, 1 not, 2 error). An image without a recipe (or with --from-pacman-db) is checked against its pacman database instead: its packages locked from the Arch Linux Archive, installed, and every path compared (exit 0 when no difference is unexplained, 1 otherwise, 2 error)")
    .argument('<ref>', 'oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[…], docker://HOST/NAME[:TAG|@sha256:…], or a bootstrap tarball FILE.tar.zst|.tar.gz (bootstrap:FILE)')
    .option('--cache <dir>', 'package cache (default: $REPRO_OCI_CACHE or ~/.cache/repro-oci)')
    .option('--mirror <url>', 'flat mirror holding packages by file name, tried before the recipe\'s URLs (repeatable)', repeatable, [])
    .option('--allow-url <prefix>', 'also fetch the recipe\'s package URLs under PREFIX (http, https or file:///DIR/; repeatable); by default only https://archive.archlinux.org/ and the mirrors', repeatable, [])
    .option('--keyring <dir>', 'keyring directory, when the recipe requires package signatures; always needed without a recipe')
    .option('--from-pacman-db', 'check the image against its pacman database even when it carries a recipe (what `lock --from-image` locks, installed and compared path by path)')
    .option('--archive <url>', `without a recipe: the Arch Linux Archive holding packages/<first letter>/<name>/<file> and .sig (default ${DEFAULT_ARCHIVE_URL})`)
    .option('--keyring-name <name>', 'without a recipe: the keyring\'s name in --keyring DIR (default archlinux)')
    .addOption(keyExpiryOption())
    .option('--platform <os/arch>', 'platform manifest to rebuild when the reference names an index (default linux/amd64)')
    .option('--strict', 'refuse recipes made by another repro-oci version or compressor')
    .option('--json', 'print the verdict as JSON, with the differences as `diff --json` gives them')))
    .action(async (ref: string, opts: RebuildCliOptions) => {
      const limits = limitsFromOptions(opts);
      await checkCache(opts.cache);
      if (opts.fromPacmanDb) return rebuildFromPacmanDb(ref, opts, limits);
      let result;
      try {
        result = await rebuildReference(ref, {
          transport: transportOptions(opts),
          cache: ContentCache.at(opts.cache),
          mirrors: opts.mirror,
          allowUrls: opts.allowUrl,
          noCommands: !opts.commands,
          limits,
          ...(opts.keyring ? { keyringDir: opts.keyring } : {}),
          keyExpiry: opts.keyExpiry,
          ...(opts.platform ? { platform: opts.platform } : {}),
          strict: opts.strict ?? false,
          log: note,
        });
      } catch (err) {
        if (!(err instanceof NoRecipeError)) throw err;
        note(`note: ${err.message}; checking it against its pacman database`);
        return rebuildFromPacmanDb(ref, opts, limits);
      }
      // The differences as `diff --json` prints them.
      const json = (): string => JSON.stringify({ ...result, ...(result.diff ? { diff: diffJson(result.diff) } : {}) }, null, 2);
      process.stdout.write(opts.json ? `${json()}\n` : formatRebuild(result));
      process.exitCode = result.reproducible ? 0 : 1;
    });
}

type RebuildCliOptions = { cache?: string; mirror: string[]; allowUrl: string[]; keyring?: string; keyringName?: string; archive?: string; fromPacmanDb?: boolean; keyExpiry: KeyExpiry; platform?: string; strict?: boolean; json?: boolean } & RegistryCliOptions & CommandCliOptions;

/** An image repro-oci did not build: its pacman database locked from the archive, installed, compared path by path. */
async function rebuildFromPacmanDb(ref: string, opts: RebuildCliOptions, limits: SandboxLimits): Promise<void> {
  if (opts.keyring === undefined) throw new UserError('checking an image against its pacman database verifies every package signature: give the keyring (--keyring DIR, e.g. /usr/share/pacman/keyrings)');
  if (opts.mirror.length || opts.allowUrl.length || opts.strict) throw new UserError('--mirror, --allow-url and --strict are for a recipe; an image checked against its pacman database takes its packages from --archive');
  const result = await verifyForeignReference(ref, {
    transport: transportOptions(opts),
    cache: ContentCache.at(opts.cache),
    keyringDir: opts.keyring,
    ...(opts.keyringName !== undefined ? { keyringName: opts.keyringName } : {}),
    ...(opts.archive !== undefined ? { archive: opts.archive } : {}),
    keyExpiry: opts.keyExpiry,
    ...(opts.platform ? { platform: opts.platform } : {}),
    noCommands: !opts.commands,
    limits,
    log: note,
  });
  process.stdout.write(opts.json ? `${JSON.stringify(foreignRebuildJson(result), null, 2)}\n` : formatForeignRebuild(result));
  process.exitCode = foreignContentPasses(result) ? 0 : 1;
}
