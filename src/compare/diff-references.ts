import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { openSource, type TransportOptions } from '../transports/open.js';
import { missingBlobHint } from '../transports/verify.js';
import { exists, settled, siblingTempPath } from '../util/fs.js';
import { diffImages, type DiffReport, type Side } from './image-diff.js';
import { differingFiles, extractFiles, ReportBudget, runDiffoscope } from './report-dir.js';

/** 1 GiB: room for the differing files of any sane image pair, not for a decompression bomb. */
export const DEFAULT_REPORT_LIMIT = 1024 ** 3;

export interface DiffReferencesOptions {
  /** Ignore timestamps, entry order and annotation noise. */
  semantic?: boolean;
  /** Paths whose differences are ignored: as printed, or fnmatch globs of entry paths (see DiffOptions.ignore). */
  ignore?: string[];
  /** Platform to compare when a side is an index (os/arch). */
  platform?: string;
  /** Hash every blob of both sides in full first (default true); the blobs read are verified either way. */
  verifyBlobs?: boolean;
  /** Write both sides of each file whose content differs into DIR/a and DIR/b (DIR must not exist). */
  reportDir?: string;
  /** Most bytes the report directory may hold (default DEFAULT_REPORT_LIMIT). */
  reportLimit?: number;
  /** Hand the differing files to diffoscope (a temporary report directory when `reportDir` is not given). */
  diffoscope?: boolean;
  transport?: TransportOptions;
  log?: (message: string) => void;
}

export interface DiffReferencesResult {
  report: DiffReport;
  /** diffoscope's output, with `diffoscope` and differing files. */
  diffoscope?: string;
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

/** `diff A B`: compares two images from index down to tar entries and pacman packages. */
export async function diffReferences(refA: string, refB: string, options: DiffReferencesOptions = {}): Promise<DiffReferencesResult> {
  if (options.reportDir && (await exists(options.reportDir))) throw new UserError(`--report-dir ${options.reportDir}: already exists`);
  const budget = new ReportBudget(options.reportLimit ?? DEFAULT_REPORT_LIMIT);
  const a = await openSource(refA, options.transport);
  try {
    const b = await openSource(refB, options.transport);
    try {
      const sideA = { label: refA, source: a };
      const sideB = { label: refB, source: b };
      const report = await diffImages(sideA, sideB, {
        semantic: options.semantic ?? false,
        ignore: options.ignore ?? [],
        verifyBlobs: options.verifyBlobs ?? true,
        ...(options.platform ? { platform: options.platform } : {}),
      }).catch((err: unknown) => {
        throw missingBlobHint(err);
      });
      const files = differingFiles(report);
      let diffoscope = '';
      const reportDir = options.reportDir ?? (options.diffoscope && files.length ? siblingTempPath(join(process.cwd(), 'diff')) : undefined);
      if (reportDir && report.parsed && files.length) {
        await writeReportDir(reportDir, report, sideA, sideB, files, budget);
        if (budget.skipped) options.log?.(`note: --report-dir ${reportDir}: stopped at the ${budget.limit}-byte limit (--report-limit); ${budget.skipped} file(s) not written`);
        if (options.diffoscope) diffoscope = runDiffoscope(join(reportDir, 'a'), join(reportDir, 'b'), files);
        if (!options.reportDir) await rm(reportDir, { recursive: true, force: true });
      }
      return { report, ...(diffoscope ? { diffoscope } : {}) };
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}
