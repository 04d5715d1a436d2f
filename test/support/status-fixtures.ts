import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { sampleLock } from './raw-lock.js';
import type { FakeRow } from './rebuilderd.js';

/** `count` rows named `prefix-00000`…, over core and extra, all GOOD: a rebuilder's list or a lock's packages. */
export function syntheticRows(count: number, prefix = 'pkg'): FakeRow[] {
  return Array.from({ length: count }, (_, i) => ({ name: `${prefix}-${String(i).padStart(5, '0')}`, version: `1.${i % 7}-${(i % 3) + 1}`, arch: 'x86_64', repo: i % 2 ? 'extra' : 'core', status: 'GOOD' as const }));
}

/** The package file a synthetic row stands for: its name as Arch writes it, and a digest derived from the name. */
export function syntheticFile(row: FakeRow): { fileName: string; sha256: string } {
  return { fileName: `${row.name}-${row.version.replace(':', '')}-${row.arch}.pkg.tar.zst`, sha256: createHash('sha256').update(row.name).digest('hex') };
}

/** Writes a lock (core and extra) whose packages are exactly these rows, for `status` to check. */
export function writeStatusLock(path: string, rows: FakeRow[]): void {
  const lock = sampleLock({ name: rows[0]!.name, version: rows[0]!.version, filename: 'x.pkg.tar.zst', sha256: 'a'.repeat(64), csize: 10 }) as { packages: Record<string, unknown>[]; repositories: Record<string, unknown>[]; targets: string[] };
  const template = lock.packages[0]!;
  lock.repositories.push({ ...lock.repositories[0], name: 'extra', servers: ['repo/extra/os/x86_64'] });
  lock.targets = rows.map((p) => p.name);
  lock.packages = rows.map((p) => ({ ...template, name: p.name, version: p.version, arch: p.arch, repository: p.repo, filename: syntheticFile(p).fileName, urls: [`${p.name}.pkg.tar.zst`], sha256: syntheticFile(p).sha256 }));
  writeFileSync(path, JSON.stringify(lock));
}
