import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { discard } from '../oci/digest.js';
import { checkConfig } from '../oci/raw-json.js';
import type { Manifest } from '../oci/types.js';
import { readJsonBlob } from '../transports/layout.js';
import type { ImageSource } from '../transports/types.js';
import { isMissingBlob, layerDiffIds, readLayer } from '../transports/verify.js';
import { fsPath } from '../util/raw-name.js';
import { indexLayer } from './layer-index.js';
import { parsePrintedName } from './printed-path.js';
import { byteOrder } from '../util/order.js';
import type { DiffReport } from './image-diff.js';

/** The files whose content differs (or that one side lacks), the ones worth handing to a person or to diffoscope; tar member names. */
export function differingFiles(report: DiffReport): string[] {
  const paths = report.differences
    .filter((d) => d.level === 'entry' && (d.kind !== 'changed' || Object.hasOwn(d.after as object, 'sha256')))
    .map((d) => parsePrintedName(d.path)!.slice(1));
  return [...new Set(paths)].sort(byteOrder);
}

/** How many bytes a report directory may take, shared by both sides; files that do not fit are not written. */
export class ReportBudget {
  written = 0;
  /** Files left out once the limit was reached. */
  skipped = 0;

  constructor(readonly limit: number) {}

  /** Whether a file of `size` bytes may still be written; once one may not, none may. */
  take(size: number): boolean {
    if (this.skipped === 0 && this.written + size <= this.limit) {
      this.written += size;
      return true;
    }
    this.skipped++;
    return false;
  }
}

/**
 * Clears the way for a file at `path` under `dir`: whatever an earlier layer left there (a directory, or a file
 * where this path needs a directory) goes, as the later layer's entry replaces it in the image. Everything under
 * `dir` is ours, and only files and directories are ever made there.
 */
async function makeRoom(dir: string, path: string): Promise<Buffer> {
  // File system paths from the raw names: \xff and \xfe must stay two files (util/raw-name).
  const parts = path.split('/');
  for (let depth = 1; depth < parts.length; depth++) {
    const parent = fsPath(dir, parts.slice(0, depth).join('/'));
    const info = await lstat(parent).catch(() => undefined);
    if (info && !info.isDirectory()) await rm(parent, { force: true });
    if (!info?.isDirectory()) await mkdir(parent);
  }
  const target = fsPath(dir, path);
  await rm(target, { recursive: true, force: true });
  return target;
}

/**
 * Writes one side's copy of each path under `dir`, layer by layer so that later layers win (paths are tar member
 * names, checked to stay inside), within the budget. Every layer is verified in full, against its diffID too.
 */
export async function extractFiles(source: ImageSource, manifest: Manifest, paths: Set<string>, dir: string, what: string, budget: ReportBudget): Promise<void> {
  const config = checkConfig(await readJsonBlob(source, manifest.config, 'config'), `${what} config`).value;
  const diffIds = layerDiffIds(manifest, config, `${what} manifest`);
  await mkdir(dir, { recursive: true });
  for (const [i, layer] of manifest.layers.entries()) {
    const where = `${what}: layer ${i} ${layer.digest}`;
    await readLayer(source, layer, diffIds[i], where, (tar) =>
      indexLayer(tar, where, async (path, content, size) => {
        if (!paths.has(path) || path.split('/').includes('..') || !budget.take(size)) return discard(content);
        await pipeline(Readable.from(content), createWriteStream(await makeRoom(dir, path), { mode: 0o644 }));
      }),
    ).catch((err: unknown) => {
      if (!isMissingBlob(err, layer.digest)) throw err; // not held here (--no-verify-blobs): the diff said so
    });
  }
}

/** Runs diffoscope on each pair when it is installed; returns its text output, or why it could not. */
export function runDiffoscope(dirA: string, dirB: string, paths: string[]): string {
  const probe = spawnSync('diffoscope', ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) return 'diffoscope is not installed\n';
  let out = '';
  for (const path of paths) {
    const r = spawnSync('diffoscope', ['--no-progress', '--text', '-', join(dirA, path), join(dirB, path)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    out += r.stdout;
  }
  return out;
}
