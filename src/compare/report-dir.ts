import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Manifest } from '../oci/types.js';
import type { ImageSource } from '../transports/types.js';
import { indexLayer } from './layer-index.js';
import type { DiffReport } from './image-diff.js';

/** The files whose content differs, the ones worth handing to a person or to diffoscope. */
export function differingFiles(report: DiffReport): string[] {
  return [...new Set(report.differences.filter((d) => d.level === 'file' && (d.field === 'sha256' || d.field === undefined)).map((d) => d.where))].sort();
}

/** Writes one side's copy of each path under `dir` (paths are tar member names, checked to stay inside). */
export async function extractFiles(source: ImageSource, manifest: Manifest, paths: Set<string>, dir: string, what: string): Promise<void> {
  for (const layer of manifest.layers) {
    await indexLayer(await source.openBlob(layer), `${what} layer ${layer.digest}`, async (path, content) => {
      if (!paths.has(path) || path.split('/').includes('..')) {
        for await (const chunk of content) void chunk;
        return;
      }
      const target = join(dir, path);
      await mkdir(dirname(target), { recursive: true });
      await pipeline(Readable.from(content), createWriteStream(target, { mode: 0o644 }));
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
