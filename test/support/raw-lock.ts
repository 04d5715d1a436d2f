import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { compressToBuffer, getCompressor } from '../../src/compress/index.js';
import type { TarSourceEntry } from '../../src/tar/entry.js';
import { writeTar } from '../../src/tar/writer.js';

/** A member of a raw package: a directory, or a file with content. */
export interface RawPackageMember {
  path: string;
  content?: string;
}

const MTIME = 1700000000;

/** A package whose .PKGINFO says whatever the test wants (a hostile name included), written without any checks. */
export async function rawPackage(name: string, version: string, members: RawPackageMember[]): Promise<Buffer> {
  const file = (path: string, bytes: Buffer): TarSourceEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: MTIME, size: bytes.length, open: () => Readable.from([bytes]) });
  const entries: TarSourceEntry[] = [file('.PKGINFO', Buffer.from(`pkgname = ${name}\npkgver = ${version}\nsize = 2\n`))];
  for (const m of members) entries.push(m.content === undefined ? { path: m.path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: MTIME, size: 0 } : file(m.path, Buffer.from(m.content)));
  return compressToBuffer(writeTar(entries), getCompressor('zstd'));
}

/** A lock as `repro-oci lock` writes it, with every optional field present so that mutations reach them all. */
export function sampleLock(pkg: { name: string; version: string; filename: string; sha256: string; csize: number }): Record<string, unknown> {
  const hex = (c: string): string => c.repeat(64);
  return {
    lockVersion: 1,
    specDigest: `sha256:${hex('0')}`,
    architecture: 'x86_64',
    archive: { url: 'https://archive.example/', date: '2024-03-20' },
    repositories: [{ name: 'core', servers: ['repo/core/os/x86_64'], database: `sha256:${hex('1')}` }],
    targets: [pkg.name],
    sigLevel: 'Never',
    keyring: { name: 'archlinux', keys: `sha256:${hex('2')}`, trusted: ['A'.repeat(40)], revoked: [] },
    packages: [
      { name: pkg.name, version: pkg.version, arch: 'any', repository: 'core', filename: pkg.filename, urls: [pkg.filename], sha256: pkg.sha256, csize: pkg.csize, isize: 10, builddate: MTIME, signature: 'iQEzBAABCAAdFiEE', reason: 'explicit' },
    ],
  };
}

/**
 * Writes a raw package and a lock for it beside it in `dir` (sigLevel Never, so no keyring is needed; the package's
 * URL is relative to the lock); `mutate` may spoil the lock first. Returns the lock's path.
 */
export async function rawPackageLock(dir: string, name: string, options: { members?: RawPackageMember[]; mutate?: (lock: Record<string, unknown>) => void } = {}): Promise<string> {
  const bytes = await rawPackage(name, '1-1', options.members ?? [{ path: 'etc' }, { path: 'etc/x', content: 'x\n' }]);
  const filename = 'pkg-1-1-any.pkg.tar.zst';
  writeFileSync(join(dir, filename), bytes);
  const lock = sampleLock({ name, version: '1-1', filename, sha256: createHash('sha256').update(bytes).digest('hex'), csize: bytes.length });
  delete lock.keyring;
  delete (lock.packages as Record<string, unknown>[])[0]!.signature;
  options.mutate?.(lock);
  const path = join(dir, 'lock.json');
  writeFileSync(path, JSON.stringify(lock));
  return path;
}
