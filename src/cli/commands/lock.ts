import type { Command } from 'commander';
import { checkLockFile, lockSpecFile, staleLockMessage, type LockSpecResult } from '../../lock/lock.js';
import { UserError } from '../../errors.js';
import { note, printJson } from '../output.js';
import type { KeyExpiry } from '../../pacman/signature.js';
import { keyExpiryOption } from '../options.js';

interface LockCliOptions {
  output?: string;
  update?: boolean;
  check?: boolean;
  snapshot?: string;
  json?: boolean;
  keyExpiry: KeyExpiry;
}

/** `lock --json` (docs/json-output.md): where the lock is, whether this run changed it, what moved, its packages. */
export function lockJson(result: LockSpecResult): object {
  const { lock, previous } = result;
  return {
    lock: result.path,
    changed: result.changed ?? true,
    ...(lock.archive ? { archive: lock.archive } : {}),
    ...(previous ? { previous: { ...(previous.archive ? { archive: previous.archive } : {}), packages: previous.packages.length } } : {}),
    ...(result.packageChanges ? { changes: result.packageChanges.map((c) => ({ kind: c.kind, name: c.name, ...(c.before !== undefined ? { before: c.before } : {}), ...(c.after !== undefined ? { after: c.after } : {}) })) } : {}),
    packages: lock.packages.map((p) => ({
      name: p.name,
      version: p.version,
      arch: p.arch,
      repository: p.repository,
      filename: p.filename,
      sha256: p.sha256,
      csize: p.csize,
      isize: p.isize,
      reason: p.reason,
    })),
  };
}

const EXIT_STATUS = 'Exit status: 0 the lock is current (--check) or unchanged (--update); 1 it is missing or stale (--check) or was changed (--update); 2 an error.';

export function registerLock(program: Command): void {
  program
    .command('lock')
    .description('Resolve a spec against its repositories (or archive snapshot) into a lock of exact package files')
    .argument('<spec>', 'SPEC.yaml (see schemas/spec.schema.json)')
    .option('-o, --output <file>', 'lock file to write, or to compare with (default: SPEC.lock.json next to the spec)')
    .option('--update', 'resolve again, compare with the existing lock and print what changed (added, removed, name old → new), or "no change"')
    .option('--check', 'resolve nothing: check that the lock exists and was made for this spec (for CI)')
    .option('--snapshot <date>', 'resolve against this archive snapshot (YYYY-MM-DD) instead of the one in the spec')
    .addOption(keyExpiryOption())
    .option('--json', 'print the lock path, whether it changed, the changes (with --update) and the packages as JSON; with --check, the path and state')
    .addHelpText('after', `\n${EXIT_STATUS}`)
    .action(async (specPath: string, opts: LockCliOptions) => {
      if (opts.check) {
        if (opts.update || opts.snapshot !== undefined) throw new UserError('--check resolves nothing: it does not go with --update or --snapshot');
        const { path, state } = await checkLockFile(specPath, opts.output);
        if (opts.json) printJson({ lock: path, state });
        else process.stdout.write(state === 'missing' ? `no lock at ${path}\n` : state === 'stale' ? `${staleLockMessage(path)}\n` : `lock ${path} is current\n`);
        process.exitCode = state === 'current' ? 0 : 1;
        return;
      }
      const result = await lockSpecFile(specPath, { output: opts.output, update: opts.update, snapshot: opts.snapshot, keyExpiry: opts.keyExpiry, log: note });
      const { lock, path: output, previous, changes, changed } = result;
      if (previous && changed) process.exitCode = 1;
      if (opts.json) {
        printJson(lockJson(result));
        return;
      }
      if (!previous) {
        process.stdout.write(`locked ${lock.packages.length} packages to ${output}\n`);
        return;
      }
      if (!changed) {
        process.stdout.write('no change\n');
        return;
      }
      const from = previous.archive?.date;
      const to = lock.archive?.date;
      process.stdout.write(from && to && from !== to ? `snapshot ${from} → ${to}\n` : '');
      process.stdout.write(changes?.length ? `${changes.join('\n')}\n` : 'no package changes; other fields changed (spec digest, databases, keyring or URLs)\n');
    });
}
