import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { runExample } from '../../example/demo.js';
import { regenerateWorkspaceRepository } from '../../example/workspace.js';
import { note } from '../output.js';
import { progressNote } from '../../util/progress.js';

export function registerExample(program: Command): void {
  program
    .command('example')
    .description('The bundled example, offline: generate a small Arch package archive, lock, build twice under different conditions, compare, rebuild from the image alone, then run status against three emulated rebuilderd (exit 0 all as expected, 1 not, 2 error); nothing is kept unless --dir')
    .option('--dir <dir>', 'keep the example as a workspace in DIR (new or empty): packages.yaml, the package archive (repo/), spec.yaml, the lock, the image (image/) and a README.md with the next commands')
    .option('--repo-only', 'with --dir: only generate the workspace\'s package archive (repo/) again from its packages.yaml, after you edited it')
    .action(async (opts: { dir?: string; repoOnly?: boolean }) => {
      if (opts.repoOnly) {
        if (opts.dir === undefined) throw new UserError('--repo-only needs --dir DIR, the workspace whose packages.yaml to generate again');
        for (const repo of await regenerateWorkspaceRepository(opts.dir)) process.stdout.write(`${repo.directory}: ${repo.files.join(' ')}\n`);
        return;
      }
      const ok = await runExample({
        ...(opts.dir !== undefined ? { dir: opts.dir } : {}),
        log: (line) => progressNote(line, process.stdout),
        logError: note,
      });
      process.exitCode = ok ? 0 : 1;
    });
}
