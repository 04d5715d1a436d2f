import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { createLock, diffLocks, readLock, serializeLock } from '../../arch/lock.js';
import { loadSpec } from '../../arch/spec.js';
import { UserError } from '../../errors.js';
import { exists, writeFileAtomic } from '../../util/fs.js';

/** The default lock path: next to the spec, `NAME.lock.json` for `NAME.yaml`. */
export function defaultLockPath(specPath: string): string {
  return join(dirname(specPath), `${basename(specPath).replace(/\.(ya?ml|json)$/, '')}.lock.json`);
}

export function registerLock(program: Command): void {
  program
    .command('lock')
    .description('Resolve a spec against its repositories (or archive snapshot) into a lock of exact package files')
    .argument('<spec>', 'SPEC.yaml (see schemas/spec.schema.json)')
    .option('-o, --output <file>', 'lock file to write (default: SPEC.lock.json next to the spec)')
    .option('--update', 'compare with the existing lock and print what changed (added, removed, name old → new)')
    .option('--snapshot <date>', 'resolve against this archive snapshot (YYYY-MM-DD) instead of the one in the spec')
    .action(async (specPath: string, opts: { output?: string; update?: boolean; snapshot?: string }) => {
      const output = opts.output ?? defaultLockPath(specPath);
      const loaded = await loadSpec(specPath);
      if (opts.snapshot !== undefined) {
        if (!loaded.spec.archive) throw new UserError('--snapshot needs a spec with an archive');
        if (!/^\d{4}-\d{2}-\d{2}$/.test(opts.snapshot)) throw new UserError(`--snapshot ${opts.snapshot}: expected YYYY-MM-DD`);
      }
      if (opts.update && !(await exists(output))) throw new UserError(`--update: no lock at ${output}`);
      const previous = opts.update ? await readLock(output) : undefined;
      const log = (msg: string): boolean => process.stderr.write(`${msg}\n`);
      const lock = await createLock(loaded, { ...(opts.snapshot ? { archiveDate: opts.snapshot } : {}), log });
      await writeFileAtomic(output, serializeLock(lock));
      if (previous) {
        const changes = diffLocks(previous, lock);
        const from = previous.archive?.date;
        const to = lock.archive?.date;
        process.stdout.write(from && to && from !== to ? `snapshot ${from} → ${to}\n` : '');
        process.stdout.write(changes.length ? `${changes.join('\n')}\n` : 'no package changes\n');
      } else {
        process.stdout.write(`locked ${lock.packages.length} packages to ${output}\n`);
      }
    });
}
