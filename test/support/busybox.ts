import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildPackage, type PackageEntry } from '../../src/example/package-writer.js';
import { repoPackageFromBuilt, writeRepo } from '../../src/example/repo-writer.js';

/** Setup-command tests need a static busybox to put in a package, and bubblewrap to run it. */
export const CAN_RUN_COMMANDS = existsSync('/bin/busybox') && spawnSync('bwrap', ['--version']).status === 0;
export const COMMANDS_SKIP = !CAN_RUN_COMMANDS && 'needs /bin/busybox (busybox-static) and bwrap';

/**
 * A repository `repo/core/os/x86_64` under `dir` with one package, busybox: the static binary, a symlink for each
 * applet the commands use, and `entries` (and an `.INSTALL` scriptlet when given); `more` packages beside it.
 * Returns busybox's file name.
 */
export async function busyboxRepo(dir: string, applets: string[], entries: PackageEntry[] = [], options: { install?: string; more?: Parameters<typeof buildPackage>[0][] } = {}): Promise<string> {
  const { more = [], ...busybox } = options;
  const pkg = await buildPackage({
    ...busybox,
    pkgname: 'busybox',
    pkgver: '1.36.1',
    pkgrel: 1,
    arch: 'x86_64',
    sourceDateEpoch: 1700000000,
    pkginfoComments: ['test'],
    buildinfo: { buildtoolver: '0' },
    entries: [
      { path: 'etc', type: 'dir' },
      ...entries,
      { path: 'usr/bin/busybox', type: 'file', content: readFileSync('/bin/busybox'), mode: 0o755 },
      ...applets.map((a) => ({ path: `usr/bin/${a}`, type: 'symlink' as const, linkTarget: 'busybox' })),
    ],
  });
  const out = join(dir, 'repo', 'core', 'os', 'x86_64');
  mkdirSync(out, { recursive: true });
  const all = [pkg, ...(await Promise.all(more.map((m) => buildPackage(m))))];
  for (const built of all) writeFileSync(join(out, built.filename), built.bytes);
  await writeRepo(out, 'core', all.map((built) => repoPackageFromBuilt(built)), { symlinks: false });
  return pkg.filename;
}
