import type { Command } from 'commander';
import { loadTrustedKeys, formatVerify, readPackagePolicy, verifyJson, verifyReference } from '../../attest/verify-image.js';
import { ContentCache } from '../../fetch/cache.js';
import type { KeyExpiry } from '../../pacman/signature.js';
import { limitsFromOptions } from '../../setup/limits.js';
import { addCommandOptions, addRegistryOptions, keyExpiryOption, repeatable, transportOptions, type CommandCliOptions, type RegistryCliOptions } from '../options.js';
import { checkCache } from '../preflight.js';

interface VerifyCliOptions extends RegistryCliOptions, CommandCliOptions {
  key: string[];
  policy?: string;
  rebuild?: boolean;
  cache?: string;
  mirror: string[];
  allowUrl: string[];
  keyring?: string;
  keyExpiry: KeyExpiry;
  platform?: string;
  json?: boolean;
}

export function registerVerify(program: Command): void {
  addCommandOptions(addRegistryOptions(program
    .command('verify')
    .description("Check an image's signed publish attestations, found among its OCI referrers (docs/attestation.md); with --rebuild also rebuild it (exit 0 verified, 1 not verified, 2 error)")
    .argument('<ref>', 'docker://HOST/NAME[:TAG|@sha256:…] (or oci:DIR[:TAG], which keeps referrers too)')
    .option('--key <pub>', 'public key (PEM, as `key generate` writes PREFIX.pub) whose signature is trusted (repeatable: any one suffices)', repeatable, [])
    .option('--policy <file>', 'rebuilders file, as `status --rebuilders` reads it: the package policy recorded in the attestation must be at least as strict, and met')
    .option('--rebuild', 'also rebuild the image from its recipe and require the same digest (takes rebuild\'s options below)')
    .option('--cache <dir>', 'with --rebuild: package cache (default: $REPRO_OCI_CACHE or ~/.cache/repro-oci)')
    .option('--mirror <url>', 'with --rebuild: flat mirror holding packages by file name (repeatable)', repeatable, [])
    .option('--allow-url <prefix>', 'with --rebuild: also fetch the recipe\'s package URLs under PREFIX (repeatable)', repeatable, [])
    .option('--keyring <dir>', 'with --rebuild: keyring directory, when the recipe requires package signatures')
    .addOption(keyExpiryOption())
    .option('--platform <os/arch>', 'platform manifest to verify when the reference names an index (default: the only image, else linux/amd64)')
    .option('--json', 'print the verdict and each attestation\'s outcome as JSON (docs/json-output.md)')))
    .action(async (ref: string, opts: VerifyCliOptions) => {
      const keys = await loadTrustedKeys(opts.key);
      const packagePolicy = opts.policy !== undefined ? await readPackagePolicy(opts.policy) : undefined;
      const limits = limitsFromOptions(opts);
      if (opts.rebuild) await checkCache(opts.cache);
      const result = await verifyReference(ref, {
        keys,
        transport: transportOptions(opts),
        ...(packagePolicy ? { packagePolicy } : {}),
        ...(opts.platform ? { platform: opts.platform } : {}),
        ...(opts.rebuild
          ? {
            rebuild: {
              cache: ContentCache.at(opts.cache),
              mirrors: opts.mirror,
              allowUrls: opts.allowUrl,
              noCommands: !opts.commands,
              limits,
              keyExpiry: opts.keyExpiry,
              ...(opts.keyring ? { keyringDir: opts.keyring } : {}),
            },
          }
          : {}),
        log: (m) => process.stderr.write(`${m}\n`),
      });
      process.stdout.write(opts.json ? `${JSON.stringify(verifyJson(result), null, 2)}\n` : formatVerify(result));
      process.exitCode = result.verified ? 0 : 1;
    });
}
