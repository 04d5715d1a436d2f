import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { ContentCache } from '../../fetch/cache.js';
import type { KeyExpiry } from '../../pacman/signature.js';
import { formatPublish, publishJson } from '../../publish/format.js';
import { publishSpec } from '../../publish/publish.js';
import { limitsFromOptions, parseDuration } from '../../setup/limits.js';
import { HttpCache } from '../../status/http-cache.js';
import type { Policy } from '../../status/model.js';
import { addCommandOptions, addRegistryOptions, attestationsOption, keyExpiryOption, repeatable, transportOptions, type CommandCliOptions, type RegistryCliOptions } from '../options.js';
import { checkCache } from '../preflight.js';
import { parseRequire } from './status.js';

interface PublishCliOptions extends RegistryCliOptions, CommandCliOptions {
  to: string[];
  key: string;
  dryRun?: boolean;
  lock?: string;
  frozen?: boolean;
  cache?: string;
  mirror: string[];
  keyring?: string;
  keyExpiry: KeyExpiry;
  sourceDateEpoch?: string;
  rebuilder: string[];
  rebuilders?: string;
  requireRebuilders?: string;
  require: string[];
  attestations?: 'required' | 'optional';
  stateDir?: string;
  timeout: string;
  json?: boolean;
}

/** `--require-rebuilders N` and `--require GLOB=N` as `status --require` reads them. */
function policyOptions(opts: PublishCliOptions): Partial<Omit<Policy, 'failOnBad'>> {
  const policy: Partial<Omit<Policy, 'failOnBad'>> = {};
  const { require, rules } = parseRequire([...(opts.requireRebuilders !== undefined ? [opts.requireRebuilders] : []), ...opts.require]);
  if (opts.requireRebuilders !== undefined && opts.require.some((r) => !r.includes('='))) throw new UserError('give the number of rebuilders once: --require-rebuilders N (--require takes GLOB=N here)');
  if (require !== undefined) policy.require = require;
  if (rules.length) policy.rules = rules;
  if (opts.attestations !== undefined) policy.attestations = opts.attestations;
  return policy;
}

export function registerPublish(program: Command): void {
  addCommandOptions(addRegistryOptions(program
    .command('publish')
    .description('Build a spec, rebuild the image in a separate isolated process, check its packages with rebuilders when given, and only when every check passes push it with its recipe and a signed attestation, tag last (exit 0 published, 1 a check failed and nothing was pushed, 2 error)')
    .argument('<spec>', 'SPEC.yaml')
    .requiredOption('--to <ref>', 'registry to publish to: docker://HOST/NAME[:TAG] (tag latest when none; repeatable)', repeatable, [])
    .requiredOption('--key <file>', 'private key that signs the attestation (PEM, ed25519 or ECDSA P-256: repro-oci key generate)')
    .option('--dry-run', 'run every check and sign, push nothing; print what would be pushed')
    .option('--rebuilder <url[=keyfile]>', 'rebuilderd instance whose answers the package policy judges, as status --rebuilder (repeatable); with none and no --rebuilders, no package policy', repeatable, [])
    .option('--rebuilders <file>', 'YAML file of rebuilders and a policy, as status --rebuilders')
    .option('--require-rebuilders <n>', 'verified GOOD answers each package needs, from different rebuilders (default 1, or the file\'s)')
    .option('--require <glob=n>', 'GOOD answers the packages whose name matches GLOB need, first match wins, 0 exempts them (repeatable)', repeatable, [])
    .addOption(attestationsOption())
    .option('--state-dir <dir>', 'where rebuilders\' keys are pinned on first use (as status --state-dir)')
    .option('--timeout <duration>', 'time limit of each request to a rebuilder', '30s')
    .option('--lock <file>', 'lock to build from, which must exist (default SPEC.lock.json beside the spec, created when missing)')
    .option('--frozen', 'never resolve nor write a lock; fail when it is missing or stale')
    .option('--cache <dir>', "the build's package cache (default: $REPRO_OCI_CACHE or ~/.cache/repro-oci); the rebuild gets an empty one of its own")
    .option('--mirror <url>', 'flat mirror holding packages by file name, tried before the lock URLs (repeatable)', repeatable, [])
    .option('--keyring <dir>', "keyring directory (default: the spec's keyring.dir)")
    .addOption(keyExpiryOption())
    .option('--source-date-epoch <seconds>', 'timestamp for created and file mtimes (default: $SOURCE_DATE_EPOCH, then the spec, then the lock\'s snapshot date)')
    .option('--json', 'print the checks, what was (or would be) pushed and the timings as JSON')))
    .action(async (spec: string, opts: PublishCliOptions) => {
      if (opts.to.length === 0) throw new UserError('publish needs at least one --to');
      const policy = policyOptions(opts);
      const limits = limitsFromOptions(opts);
      await checkCache(opts.cache);
      const stderr = (m: string): boolean => process.stderr.write(`${m}\n`);
      const result = await publishSpec(spec, {
        destinations: opts.to,
        key: opts.key,
        dryRun: opts.dryRun === true,
        ...(opts.lock !== undefined ? { lock: opts.lock } : {}),
        ...(opts.frozen ? { frozen: true } : {}),
        noCommands: !opts.commands,
        limits,
        cache: ContentCache.at(opts.cache),
        mirrors: opts.mirror,
        ...(opts.keyring ? { keyringDir: opts.keyring } : {}),
        keyExpiry: opts.keyExpiry,
        ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
        ...(process.env.SOURCE_DATE_EPOCH ? { sourceDateEpochEnv: process.env.SOURCE_DATE_EPOCH } : {}),
        rebuilders: opts.rebuilder,
        ...(opts.rebuilders !== undefined ? { rebuildersFile: opts.rebuilders } : {}),
        policy,
        statusTimeoutMs: parseDuration(opts.timeout, '--timeout'),
        ...(opts.stateDir !== undefined ? { stateDir: opts.stateDir } : {}),
        statusCache: HttpCache.at(opts.cache, stderr),
        transport: transportOptions(opts),
        log: stderr,
      });
      process.stdout.write(opts.json ? `${JSON.stringify(publishJson(result), null, 2)}\n` : formatPublish(result));
      process.exitCode = result.failed.length ? 1 : 0;
    });
}
