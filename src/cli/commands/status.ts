import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { parseDuration } from '../../image/limits.js';
import { HttpCache } from '../../status/http-cache.js';
import { checkStatus } from '../../status/status.js';
import { formatStatus } from '../../status/verdict.js';
import { checkCache } from '../preflight.js';
import { addRegistryOptions, repeatable, transportOptions, type RegistryCliOptions } from '../options.js';

interface StatusCliOptions extends RegistryCliOptions {
  rebuilder: string[];
  rebuilders?: string;
  require: string;
  failOnBad: boolean;
  timeout: string;
  platform?: string;
  json?: boolean;
  cache?: string;
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
    .option('--cache <dir>', 'cache directory; rebuilder answers are kept in its rebuilders/ and revalidated with If-Modified-Since (default: $REPRO_OCI_CACHE or ~/.cache/repro-oci)')
    .addHelpText('after', '\nNot done yet: fetching attestations and verifying their in-toto signatures (GOOD is the rebuilder\'s word),\nkey pinning, --explain.'))
    .action(async (input: string, opts: StatusCliOptions) => {
      await checkCache(opts.cache);
      const report = await checkStatus(input, {
        policy: { require: parseRequire(opts.require), failOnBad: opts.failOnBad },
        timeoutMs: parseDuration(opts.timeout, '--timeout'),
        rebuilders: opts.rebuilder,
        ...(opts.rebuilders !== undefined ? { rebuildersFile: opts.rebuilders } : {}),
        ...(opts.platform ? { platform: opts.platform } : {}),
        transport: transportOptions(opts),
        cache: HttpCache.at(opts.cache, (message) => process.stderr.write(`${message}\n`)),
      });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
      process.exitCode = report.policyMet ? 0 : 1;
    });
}
