import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeDesc } from '../../src/arch/desc.js';
import { getCompressor } from '../../src/compress/index.js';
import { compareMemberNames, type TarSourceEntry } from '../../src/tar/entry.js';
import { writeTar } from '../../src/tar/writer.js';

/** A package as a sync database describes it; only name and version are required. */
export interface FixturePackage {
  name: string;
  version: string;
  arch?: string;
  depends?: string[];
  provides?: string[];
  conflicts?: string[];
  groups?: string[];
  filename?: string;
  sha256?: string;
  csize?: number;
  isize?: number;
}

/** The `desc` member of a sync database entry, fields in repo-add's order. */
export function syncDesc(pkg: FixturePackage): string {
  const filename = pkg.filename ?? `${pkg.name}-${pkg.version}-${pkg.arch ?? 'any'}.pkg.tar.zst`;
  return writeDesc([
    ['FILENAME', [filename]],
    ['NAME', [pkg.name]],
    ['BASE', [pkg.name]],
    ['VERSION', [pkg.version]],
    ['DESC', [`fixture ${pkg.name}`]],
    ['GROUPS', pkg.groups ?? []],
    ['CSIZE', [String(pkg.csize ?? 100)]],
    ['ISIZE', [String(pkg.isize ?? 200)]],
    ['SHA256SUM', [pkg.sha256 ?? createHash('sha256').update(filename).digest('hex')]],
    ['ARCH', [pkg.arch ?? 'any']],
    ['BUILDDATE', ['1700000000']],
    ['PACKAGER', ['Fixture <fixture@example.invalid>']],
    ['CONFLICTS', pkg.conflicts ?? []],
    ['PROVIDES', pkg.provides ?? []],
    ['DEPENDS', pkg.depends ?? []],
  ]);
}

/** Writes `<repo>.db` as repo-add would (a gzip'd tar of `<name>-<version>/desc`), without pacman tools. */
export async function writeSyncDb(path: string, packages: FixturePackage[]): Promise<void> {
  const entries: TarSourceEntry[] = [];
  for (const pkg of packages) {
    const dir = `${pkg.name}-${pkg.version}`;
    const desc = Buffer.from(syncDesc(pkg));
    entries.push({ path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1700000000, size: 0 });
    entries.push({ path: `${dir}/desc`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: desc.length, open: () => Readable.from([desc]) });
  }
  entries.sort(compareMemberNames);
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  await pipeline([Readable.from(writeTar(entries)), ...getCompressor('gzip').createStages(), sink] as unknown as NodeJS.ReadWriteStream[]);
  writeFileSync(path, Buffer.concat(chunks));
}
