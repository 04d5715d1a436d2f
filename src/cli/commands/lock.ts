import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { createLock, diffLocks, lockState, readLock, sameLock, serializeLock, staleLockMessage } from '../../arch/lock.js';
import { loadSpec, type LoadedSpec } from '../../arch/spec.js';
import { checkImageSettings } from '../../build/image-settings.js';
import { UserError } from '../../errors.js';
import { exists, writeFileAtomic } from '../../util/fs.js';
import { checkWritableFile } from '../preflight.js';

/** The default lock path: next to the spec, `NAME.lock.json` for `NAME.yaml`. */
export function defaultLockPath(specPath: string): string {
  return join(dirname(specPath), `${basename(specPath).replace(/\.(ya?ml|json)$/, '')}.lock.json`);
}

/** A spec as lock and build read it: the whole spec is checked, image settings too, before anything is fetched. */
export async function loadCheckedSpec(specPath: string): Promise<LoadedSpec> {
  const loaded = await loadSpec(specPath);
  checkImageSettings(loaded.spec.image ?? {}, 'spec image');
  return loaded;
}

interface LockCliOptions {
  output?: string;
  update?: boolean;
  check?: boolean;
  snapshot?: string;
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
    .addHelpText('after', `\n${EXIT_STATUS}`)
    .action(async (specPath: string, opts: LockCliOptions) => {
      const output = opts.output ?? defaultLockPath(specPath);
      if (opts.check && (opts.update || opts.snapshot !== undefined)) throw new UserError('--check resolves nothing: it does not go with --update or --snapshot');
      const loaded = await loadCheckedSpec(specPath);
      if (opts.check) {
        const found = await lockState(loaded, output);
        process.stdout.write(found.state === 'missing' ? `no lock at ${output}\n` : found.state === 'stale' ? `${staleLockMessage(output)}\n` : `lock ${output} is current\n`);
        process.exitCode = found.state === 'current' ? 0 : 1;
        return;
      }
      if (opts.snapshot !== undefined) {
        if (!loaded.spec.archive) throw new UserError('--snapshot needs a spec with an archive');
        if (!/^\d{4}-\d{2}-\d{2}$/.test(opts.snapshot)) throw new UserError(`--snapshot ${opts.snapshot}: expected YYYY-MM-DD`);
      }
      if (opts.update && !(await exists(output))) throw new UserError(`--update: no lock at ${output}`);
      const previous = opts.update ? await readLock(output) : undefined;
      await checkWritableFile(output, `lock ${output}`);
      const log = (msg: string): boolean => process.stderr.write(`${msg}\n`);
      const lock = await createLock(loaded, { ...(opts.snapshot ? { archiveDate: opts.snapshot } : {}), log });
      if (!previous) {
        await writeFileAtomic(output, serializeLock(lock));
        process.stdout.write(`locked ${lock.packages.length} packages to ${output}\n`);
        return;
      }
      if (sameLock(previous, lock)) {
        process.stdout.write('no change\n');
        return;
      }
      await writeFileAtomic(output, serializeLock(lock));
      const changes = diffLocks(previous, lock);
      const from = previous.archive?.date;
      const to = lock.archive?.date;
      process.stdout.write(from && to && from !== to ? `snapshot ${from} → ${to}\n` : '');
      process.stdout.write(changes.length ? `${changes.join('\n')}\n` : 'no package changes; other fields changed (spec digest, databases, keyring or URLs)\n');
      process.exitCode = 1;
    });
}
