import { join } from 'node:path';
import type { Command } from 'commander';
import { addRegistryOptions, repeatable, transportOptions, type RegistryCliOptions } from '../options.js';
import { diffImages, formatDiff } from '../../compare/image-diff.js';
import { differingFiles, extractFiles, runDiffoscope } from '../../compare/report-dir.js';
import { UserError } from '../../errors.js';
import { openSource } from '../../transports/open.js';
import { exists, siblingTempPath } from '../../util/fs.js';
import { rm } from 'node:fs/promises';


interface DiffOpts {
  json?: boolean;
  semantic?: boolean;
  ignore: string[];
  platform?: string;
  reportDir?: string;
  diffoscope?: boolean;
}

export function registerDiff(program: Command): void {
  addRegistryOptions(program
    .command('diff')
    .description('Compare two images: index, manifest, config, layers, tar entries and pacman packages (exit 0 same, 1 different, 2 error)')
    .argument('<a>', 'image reference')
    .argument('<b>', 'image reference')
    .option('--json', 'print the report as JSON')
    .option('--semantic', 'ignore timestamps, entry order and annotation noise')
    .option('--ignore <glob>', 'ignore differences in matching paths (fnmatch; repeatable)', repeatable, [])
    .option('--platform <os/arch>', 'platform to compare when a side is an index')
    .option('--report-dir <dir>', 'write both sides of each file whose content differs into DIR/a and DIR/b')
    .option('--diffoscope', 'hand files whose content differs to diffoscope (implies a report dir)'))
    .action(async (refA: string, refB: string, opts: DiffOpts & RegistryCliOptions) => {
      if (opts.reportDir && (await exists(opts.reportDir))) throw new UserError(`--report-dir ${opts.reportDir}: already exists`);
      const a = await openSource(refA, transportOptions(opts));
      try {
        const b = await openSource(refB, transportOptions(opts));
        try {
          const report = await diffImages({ label: refA, source: a }, { label: refB, source: b }, {
            semantic: opts.semantic ?? false,
            ignore: opts.ignore,
            ...(opts.platform ? { platform: opts.platform } : {}),
          });
          const files = differingFiles(report);
          let diffoscope = '';
          const reportDir = opts.reportDir ?? (opts.diffoscope && files.length ? siblingTempPath(join(process.cwd(), 'diff')) : undefined);
          if (reportDir && report.parsed && files.length) {
            await extractFiles(a, report.parsed.a, new Set(files), join(reportDir, 'a'), refA);
            await extractFiles(b, report.parsed.b, new Set(files), join(reportDir, 'b'), refB);
            if (opts.diffoscope) diffoscope = runDiffoscope(join(reportDir, 'a'), join(reportDir, 'b'), files);
            if (!opts.reportDir) await rm(reportDir, { recursive: true, force: true });
          }
          const json = (): string => JSON.stringify(report, (key, value: unknown) => (key === 'parsed' ? undefined : value), 2);
          process.stdout.write(opts.json ? `${json()}\n` : formatDiff(report));
          if (diffoscope) process.stdout.write(diffoscope);
          process.exitCode = report.same ? 0 : 1;
        } finally {
          await b.close();
        }
      } finally {
        await a.close();
      }
    });
}
