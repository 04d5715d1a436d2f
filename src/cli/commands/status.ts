import type { Command } from 'commander';
import { parseLock, readLock, type Lock } from '../../arch/lock.js';
import { loadSpec } from '../../arch/spec.js';
import { UserError } from '../../errors.js';
import { parseDuration } from '../../image/limits.js';
import { packagesFromImage, packagesFromLock } from '../../status/packages.js';
import { DEFAULT_QUERY, queryRebuilder } from '../../status/rebuilderd.js';
import { selectRebuilders } from '../../status/rebuilders.js';
import { formatStatus, statusReport } from '../../status/verdict.js';
import type { PackageSet } from '../../status/model.js';
import { openSource } from '../../transports/open.js';
import { TRANSPORTS } from '../../transports/reference.js';
import { exists, readUserFile } from '../../util/fs.js';
import { addRegistryOptions, repeatable, transportOptions, type RegistryCliOptions } from '../options.js';
import { defaultLockPath } from './lock.js';

interface StatusCliOptions extends RegistryCliOptions {
  rebuilder: string[];
  rebuilders?: string;
  require: string;
  failOnBad: boolean;
  timeout: string;
  platform?: string;
  json?: boolean;
}

function isImageReference(input: string): boolean {
  return TRANSPORTS.some((t) => input.startsWith(`${t}:`));
}

/** A lock file as it is; a spec through the lock beside it, which must have been made for it. */
async function lockFromFile(path: string): Promise<Lock> {
  const text = await readUserFile(path, 'input');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: a YAML spec
  }
  if (typeof parsed === 'object' && parsed !== null && 'lockVersion' in parsed) return parseLock(text, `lock ${path}`);
  const loaded = await loadSpec(path);
  const lockPath = defaultLockPath(path);
  if (!(await exists(lockPath))) throw new UserError(`spec ${path} has no lock beside it (${lockPath}): run repro-oci lock ${path}`);
  const lock = await readLock(lockPath);
  if (lock.specDigest !== loaded.digest) throw new UserError(`lock ${lockPath} was made for a different package selection; run repro-oci lock again`);
  return lock;
}

async function packagesOf(input: string, opts: StatusCliOptions): Promise<PackageSet> {
  if (!isImageReference(input)) return packagesFromLock(await lockFromFile(input), 'lock');
  const source = await openSource(input, transportOptions(opts));
  try {
    return await packagesFromImage(source, input, opts.platform);
  } finally {
    await source.close();
  }
}

function parseRequire(text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < 1) throw new UserError(`--require ${JSON.stringify(text)}: give a whole number of at least 1`);
  return value;
}

export function registerStatus(program: Command): void {
  addRegistryOptions(program
    .command('status')
    .description('Ask rebuilderd instances whether each package of a lock, spec or image was reproduced at its exact version (exit 0 policy met, 1 not met, 2 error)')
    .argument('<input>', 'LOCK.json, SPEC.yaml (its lock beside it), or an image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[…], docker://HOST/NAME[:TAG|@sha256:…]')
    .option('--rebuilder <url>', 'base URL of a rebuilderd instance, e.g. https://reproducible.archlinux.org (repeatable)', repeatable, [])
    .option('--rebuilders <file>', 'YAML file listing rebuilders by name and url (schemas/rebuilders.schema.json; default $XDG_CONFIG_HOME/repro-oci/rebuilders.yaml when no --rebuilder is given)')
    .option('--require <n>', 'GOOD answers each package needs, from different rebuilders', '1')
    .option('--no-fail-on-bad', 'do not fail a package for a BAD answer when it has enough GOOD ones')
    .option('--timeout <duration>', 'time limit of each request to a rebuilder (500ms, 30s, 2m); one that runs out after the retries gives no answer', '30s')
    .option('--platform <os/arch>', 'platform manifest to read when the image reference names an index (default linux/amd64)')
    .option('--json', 'print every field as JSON')
    .addHelpText('after', '\nNot done yet: fetching attestations and verifying their in-toto signatures (GOOD is the rebuilder\'s word),\nkey pinning, If-Modified-Since caching, --explain.'))
    .action(async (input: string, opts: StatusCliOptions) => {
      const policy = { require: parseRequire(opts.require), failOnBad: opts.failOnBad };
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const rebuilders = await selectRebuilders(opts.rebuilder, opts.rebuilders);
      if (policy.require > rebuilders.length) throw new UserError(`--require ${policy.require} cannot be met by ${rebuilders.length} rebuilder(s)`);
      const set = await packagesOf(input, opts);
      const names = set.packages.map((p) => p.name);
      const answers = await Promise.all(rebuilders.map((r) => queryRebuilder(r, names, { ...DEFAULT_QUERY, timeoutMs })));
      const report = statusReport(set, answers, policy);
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
      process.exitCode = report.policyMet ? 0 : 1;
    });
}
