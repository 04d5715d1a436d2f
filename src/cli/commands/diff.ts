import type { Command } from 'commander';
import { addRegistryOptions, repeatable, transportOptions, type RegistryCliOptions } from '../options.js';
import { diffReferences } from '../../compare/diff-references.js';
import { diffJson, formatDiff } from '../../compare/image-diff.js';
import { UserError } from '../../errors.js';
import { checkWritableDirectory } from '../../util/writable.js';
import { note } from '../output.js';

interface DiffOpts {
  json?: boolean;
  semantic?: boolean;
  ignore: string[];
  platform?: string;
  reportDir?: string;
  reportLimit: string;
  diffoscope?: boolean;
  verifyBlobs: boolean;
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** A byte count such as 1073741824, 512K, 16M or 1G (binary units). */
export function parseByteSize(text: string, option: string): number {
  const m = /^(\d+)([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  const value = m ? Number(m[1]) * UNITS[m[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(value)) throw new UserError(`${option} ${text}: expected a number of bytes, e.g. 1073741824, 512M or 1G`);
  return value;
}

const DEFAULT_REPORT_LIMIT = '1G';

export function registerDiff(program: Command): void {
  addRegistryOptions(program
    .command('diff')
    .description('Compare two images: index, manifest, config, layers, tar entries and pacman packages (exit 0 same, 1 different, 2 error)')
    .argument('<a>', 'image reference')
    .argument('<b>', 'image reference')
    .option('--json', 'print the report as JSON: a summary object, then each difference (kind, level, path, before, after, package)')
    .option('--semantic', 'ignore timestamps, entry order and annotation noise')
    .option('--ignore <path>', 'ignore the differences at PATH as printed (any level), or at entry paths matching it as an fnmatch glob (repeatable)', repeatable, [])
    .option('--platform <os/arch>', 'platform to compare when a side is an index')
    .option('--report-dir <dir>', 'write both sides of each file whose content differs into DIR/a and DIR/b')
    .option('--report-limit <bytes>', 'most bytes the report dir may hold (K, M, G suffixes); files beyond it are not written, with a note', DEFAULT_REPORT_LIMIT)
    .option('--diffoscope', 'hand files whose content differs to diffoscope (implies a report dir)')
    .option('--no-verify-blobs', 'do not hash every blob of both sides in full (the blobs read are still verified); by default a missing or corrupt blob is an error'))
    .action(async (refA: string, refB: string, opts: DiffOpts & RegistryCliOptions) => {
      if (opts.reportDir) await checkWritableDirectory(opts.reportDir, `--report-dir ${opts.reportDir}`);
      const { report, diffoscope } = await diffReferences(refA, refB, {
        semantic: opts.semantic ?? false,
        ignore: opts.ignore,
        verifyBlobs: opts.verifyBlobs,
        ...(opts.platform ? { platform: opts.platform } : {}),
        ...(opts.reportDir ? { reportDir: opts.reportDir } : {}),
        reportLimit: parseByteSize(opts.reportLimit, '--report-limit'),
        ...(opts.diffoscope ? { diffoscope: true } : {}),
        transport: transportOptions(opts),
        log: note,
      });
      process.stdout.write(opts.json ? `${JSON.stringify(diffJson(report), null, 2)}\n` : formatDiff(report));
      if (diffoscope) process.stdout.write(diffoscope);
      process.exitCode = report.same ? 0 : 1;
    });
}
