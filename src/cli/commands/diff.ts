import { join } from 'node:path';
import type { Command } from 'commander';
import { addRegistryOptions, repeatable, transportOptions, type RegistryCliOptions } from '../options.js';
import { diffImages, formatDiff, type DiffReport, type Side } from '../../compare/image-diff.js';
import { differingFiles, extractFiles, ReportBudget, runDiffoscope } from '../../compare/report-dir.js';
import { UserError } from '../../errors.js';
import { openSource } from '../../transports/open.js';
import { missingBlobHint } from '../../transports/verify.js';
import { exists, settled, siblingTempPath } from '../../util/fs.js';
import { rename, rm } from 'node:fs/promises';
import { checkWritableDirectory } from '../preflight.js';

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

/**
 * Writes both sides of each differing file into a fresh directory beside `finalDir`, renamed into place only when
 * complete, so a failure (a blob that does not verify) leaves nothing half-written.
 */
async function writeReportDir(finalDir: string, report: DiffReport, a: Side, b: Side, files: string[], budget: ReportBudget): Promise<void> {
  const temp = siblingTempPath(finalDir);
  try {
    await extractFiles(a.source, report.parsed!.a, new Set(files), join(temp, 'a'), a.label, budget);
    await extractFiles(b.source, report.parsed!.b, new Set(files), join(temp, 'b'), b.label, budget);
    if (await exists(finalDir)) throw new UserError(`--report-dir ${finalDir}: appeared while writing; not replaced`);
    await rename(temp, finalDir);
  } finally {
    await rm(temp, { recursive: true, force: true });
    settled(temp);
  }
}

/** 1 GiB: room for the differing files of any sane image pair, not for a decompression bomb. */
const DEFAULT_REPORT_LIMIT = '1G';

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
    .option('--report-limit <bytes>', 'most bytes the report dir may hold (K, M, G suffixes); files beyond it are not written, with a note', DEFAULT_REPORT_LIMIT)
    .option('--diffoscope', 'hand files whose content differs to diffoscope (implies a report dir)')
    .option('--no-verify-blobs', 'do not hash every blob of both sides in full (the blobs read are still verified); by default a missing or corrupt blob is an error'))
    .action(async (refA: string, refB: string, opts: DiffOpts & RegistryCliOptions) => {
      if (opts.reportDir && (await exists(opts.reportDir))) throw new UserError(`--report-dir ${opts.reportDir}: already exists`);
      if (opts.reportDir) await checkWritableDirectory(opts.reportDir, `--report-dir ${opts.reportDir}`);
      const budget = new ReportBudget(parseByteSize(opts.reportLimit, '--report-limit'));
      const a = await openSource(refA, transportOptions(opts));
      try {
        const b = await openSource(refB, transportOptions(opts));
        try {
          const sideA = { label: refA, source: a };
          const sideB = { label: refB, source: b };
          const report = await diffImages(sideA, sideB, {
            semantic: opts.semantic ?? false,
            ignore: opts.ignore,
            verifyBlobs: opts.verifyBlobs,
            ...(opts.platform ? { platform: opts.platform } : {}),
          }).catch((err: unknown) => {
            throw missingBlobHint(err);
          });
          const files = differingFiles(report);
          let diffoscope = '';
          const reportDir = opts.reportDir ?? (opts.diffoscope && files.length ? siblingTempPath(join(process.cwd(), 'diff')) : undefined);
          if (reportDir && report.parsed && files.length) {
            await writeReportDir(reportDir, report, sideA, sideB, files, budget);
            if (budget.skipped) process.stderr.write(`note: --report-dir ${reportDir}: stopped at the ${budget.limit}-byte limit (--report-limit); ${budget.skipped} file(s) not written\n`);
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
