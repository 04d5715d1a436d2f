import { writeFileSync } from 'node:fs';
import { sampleLock } from './raw-lock.js';
import type { FakeRow } from './rebuilderd.js';

/** `count` rows named `prefix-00000`…, over core and extra, all GOOD: a rebuilder's list or a lock's packages. */
export function syntheticRows(count: number, prefix = 'pkg'): FakeRow[] {
  return Array.from({ length: count }, (_, i) => ({ name: `${prefix}-${String(i).padStart(5, '0')}`, version: `1.${i % 7}-${(i % 3) + 1}`, arch: 'x86_64', repo: i % 2 ? 'extra' : 'core', status: 'GOOD' as const }));
}

/** Writes a lock (core and extra) whose packages are exactly these rows, for `status` to check. */
export function writeStatusLock(path: string, rows: FakeRow[]): void {
  const lock = sampleLock({ name: rows[0]!.name, version: rows[0]!.version, filename: 'x.pkg.tar.zst', sha256: 'a'.repeat(64), csize: 10 }) as { packages: Record<string, unknown>[]; repositories: Record<string, unknown>[]; targets: string[] };
  const template = lock.packages[0]!;
  lock.repositories.push({ ...lock.repositories[0], name: 'extra', servers: ['repo/extra/os/x86_64'] });
  lock.targets = rows.map((p) => p.name);
  lock.packages = rows.map((p, i) => ({ ...template, name: p.name, version: p.version, arch: p.arch, repository: p.repo, filename: `${p.name}-${p.version.replace(':', '')}-${p.arch}.pkg.tar.zst`, urls: [`${p.name}.pkg.tar.zst`], sha256: (i % 16).toString(16).repeat(64) }));
  writeFileSync(path, JSON.stringify(lock));
}
