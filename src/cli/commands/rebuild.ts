import type { Command } from 'commander';
import { addCommandOptions, addRegistryOptions, keyExpiryOption, repeatable, transportOptions, type CommandCliOptions, type RegistryCliOptions } from '../options.js';
import type { KeyExpiry } from '../../pacman/signature.js';
import { limitsFromOptions } from '../../setup/limits.js';
import { ContentCache } from '../../fetch/cache.js';
import { formatRebuild, rebuildReference } from '../../verify/rebuild.js';
import { checkCache } from '../preflight.js';
import { diffJson } from '../../compare/image-diff.js';
import { note } from '../output.js';

export function registerRebuild(program: Command): void {
  addCommandOptions(addRegistryOptions(program
    .command('rebuild')
    .description('Rebuild an image from the recipe it carries and say whether the digest matches (exit 0 reproducible, 1 not, 2 error)')
    .argument('<ref>', 'oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[…], docker://HOST/NAME[:TAG|@sha256:…], or a bootstrap tarball FILE.tar.zst|.tar.gz (bootstrap:FILE)')
    .option('--cache <dir>', 'package cache (default: $REPRO_OCI_CACHE or ~/.cache/repro-oci)')
    .option('--mirror <url>', 'flat mirror holding packages by file name, tried before the recipe\'s URLs (repeatable)', repeatable, [])
    .option('--allow-url <prefix>', 'also fetch the recipe\'s package URLs under PREFIX (http, https or file:///DIR/; repeatable); by default only https://archive.archlinux.org/ and the mirrors', repeatable, [])
    .option('--keyring <dir>', 'keyring directory, when the recipe requires package signatures')
    .addOption(keyExpiryOption())
    .option('--platform <os/arch>', 'platform manifest to rebuild when the reference names an index (default linux/amd64)')
    .option('--strict', 'refuse recipes made by another repro-oci version or compressor')
    .option('--json', 'print the verdict as JSON, with the differences as `diff --json` gives them')))
    .action(async (ref: string, opts: { cache?: string; mirror: string[]; allowUrl: string[]; keyring?: string; keyExpiry: KeyExpiry; platform?: string; strict?: boolean; json?: boolean } & RegistryCliOptions & CommandCliOptions) => {
      const limits = limitsFromOptions(opts);
      await checkCache(opts.cache);
      const result = await rebuildReference(ref, {
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
      // The differences as `diff --json` prints them.
      const json = (): string => JSON.stringify({ ...result, ...(result.diff ? { diff: diffJson(result.diff) } : {}) }, null, 2);
      process.stdout.write(opts.json ? `${json()}\n` : formatRebuild(result));
      process.exitCode = result.reproducible ? 0 : 1;
    });
}
