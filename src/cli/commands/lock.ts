import type { Command } from 'commander';
import { diffLocks, lockSpecFile } from '../../arch/lock.js';

export { defaultLockPath } from '../../arch/lock.js';

export function registerLock(program: Command): void {
  program
    .command('lock')
    .description('Resolve a spec against its repositories (or archive snapshot) into a lock of exact package files')
    .argument('<spec>', 'SPEC.yaml (see schemas/spec.schema.json)')
    .option('-o, --output <file>', 'lock file to write (default: SPEC.lock.json next to the spec)')
    .option('--update', 'compare with the existing lock and print what changed (added, removed, name old → new)')
    .option('--snapshot <date>', 'resolve against this archive snapshot (YYYY-MM-DD) instead of the one in the spec')
    .action(async (specPath: string, opts: { output?: string; update?: boolean; snapshot?: string }) => {
      const log = (msg: string): boolean => process.stderr.write(`${msg}\n`);
      const { lock, path: output, previous } = await lockSpecFile(specPath, { ...opts, log });
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
