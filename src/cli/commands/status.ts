import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { parseDuration } from '../../setup/limits.js';
import type { PackageRule, Policy } from '../../status/model.js';
import { HttpCache } from '../../status/http-cache.js';
import { checkStatus } from '../../status/status.js';
import { explainPackage, formatExplain, formatStatus } from '../../status/verdict.js';
import { checkCache } from '../preflight.js';
import { addRegistryOptions, attestationsOption, repeatable, transportOptions, type RegistryCliOptions } from '../options.js';

interface StatusCliOptions extends RegistryCliOptions {
  rebuilder: string[];
  rebuilders?: string;
  require: string[];
  failOnBad?: boolean;
  attestations?: 'required' | 'optional';
  stateDir?: string;
  timeout: string;
  platform?: string;
  explain?: string;
  json?: boolean;
  cache?: string;
}

function count(text: string, option: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value > 64) throw new UserError(`${option}: give a whole number from 0 to 64`);
  return value;
}

/** `--require N` sets the default; `--require GLOB=N` a rule for the packages whose name matches GLOB. */
export function parseRequire(values: string[]): { require?: number; rules: PackageRule[] } {
  let require: number | undefined;
  const rules: PackageRule[] = [];
  for (const text of values) {
    const at = text.lastIndexOf('=');
    if (at === -1) {
      require = count(text, `--require ${JSON.stringify(text)}`);
      if (require === 0) throw new UserError(`--require "0": give a whole number of at least 1 (a rule GLOB=0 exempts packages)`);
    } else {
      const match = text.slice(0, at);
      if (match === '') throw new UserError(`--require ${JSON.stringify(text)}: give GLOB=N`);
      rules.push({ match, require: count(text.slice(at + 1), `--require ${JSON.stringify(text)}`) });
    }
  }
  return { ...(require !== undefined ? { require } : {}), rules };
}

export function registerStatus(program: Command): void {
  addRegistryOptions(program
    .command('status')
    .description('Ask rebuilderd instances whether each package of a lock, spec or image was reproduced at its exact version, and verify their signed attestations (exit 0 policy met, 1 not met, 2 error)')
    .argument('<input>', 'LOCK.json, SPEC.yaml (its lock beside it), or an image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[…], docker://HOST/NAME[:TAG|@sha256:…]')
    .option('--rebuilder <url[=keyfile]>', 'base URL of a rebuilderd instance, e.g. https://reproducible.archlinux.org; with =KEYFILE its attestations are checked with that public key instead of the published one pinned on first use (repeatable)', repeatable, [])
    .option('--rebuilders <file>', 'YAML file listing rebuilders (name, url, keys) and a policy (schemas/rebuilders.schema.json; default $XDG_CONFIG_HOME/repro-oci/rebuilders.yaml when no --rebuilder is given)')
    .option('--require <n|glob=n>', 'verified GOOD answers each package needs, from different rebuilders (default 1); GLOB=N for the packages whose name matches GLOB, first match wins, 0 exempts them (repeatable)', repeatable, [])
    .option('--no-fail-on-bad', 'do not fail a package for a BAD answer (or an invalid attestation) when it has enough GOOD ones')
    .addOption(attestationsOption())
    .option('--state-dir <dir>', 'where rebuilders\' keys are pinned on first use, and the private key that seals verified attestations in the cache (default $REPRO_OCI_STATE, else $XDG_STATE_HOME/repro-oci, else ~/.local/state/repro-oci)')
    .option('--timeout <duration>', 'time limit of each request to a rebuilder (500ms, 30s, 2m); one that runs out after the retries gives no answer', '30s')
    .option('--platform <os/arch>', 'platform manifest to read when the image reference names an index (default linux/amd64)')
    .option('--explain <package>', "show one package in full: each rebuilder's row, its log and diffoscope URLs, and its attestation")
    .option('--json', 'print every field as JSON (with --explain: that package\'s)')
    .option('--cache <dir>', 'cache directory; rebuilder answers are kept in its rebuilders/ and revalidated with If-Modified-Since, attestations kept and verified again or their seal checked (default: $REPRO_OCI_CACHE or ~/.cache/repro-oci)'))
    .action(async (input: string, opts: StatusCliOptions) => {
      await checkCache(opts.cache);
      const policy: Partial<Policy> = {};
      const { require, rules } = parseRequire(opts.require);
      if (require !== undefined) policy.require = require;
      if (rules.length) policy.rules = rules;
      if (opts.failOnBad === false) policy.failOnBad = false;
      if (opts.attestations !== undefined) policy.attestations = opts.attestations;
      const report = await checkStatus(input, {
        policy,
        timeoutMs: parseDuration(opts.timeout, '--timeout'),
        rebuilders: opts.rebuilder,
        ...(opts.rebuilders !== undefined ? { rebuildersFile: opts.rebuilders } : {}),
        ...(opts.stateDir !== undefined ? { stateDir: opts.stateDir } : {}),
        ...(opts.platform ? { platform: opts.platform } : {}),
        transport: transportOptions(opts),
        cache: HttpCache.at(opts.cache, (message) => process.stderr.write(`${message}\n`)),
      });
      if (opts.explain !== undefined) {
        const pkg = explainPackage(report, opts.explain);
        process.stdout.write(opts.json ? `${JSON.stringify(pkg, null, 2)}\n` : formatExplain(pkg));
        process.exitCode = pkg.verdict === 'ok' ? 0 : 1;
        return;
      }
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
      process.exitCode = report.policyMet ? 0 : 1;
    });
}
