import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { buildRepoDatabases, repoDesc, type RepoPackage } from '../../src/example/repo-writer.js';

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

const FIXTURE_DATE = 1700000000;

/** The fixture as the repo writer's input: a `.PKGINFO` like makepkg's plus the file facts repo-add adds. */
function fixtureRepoPackage(pkg: FixturePackage): RepoPackage {
  const filename = pkg.filename ?? `${pkg.name}-${pkg.version}-${pkg.arch ?? 'any'}.pkg.tar.zst`;
  const lines: Array<[string, string]> = [
    ['pkgname', pkg.name],
    ['pkgbase', pkg.name],
    ['pkgver', pkg.version],
    ['pkgdesc', `fixture ${pkg.name}`],
    ['builddate', String(FIXTURE_DATE)],
    ['packager', 'Fixture <fixture@example.invalid>'],
    ['size', String(pkg.isize ?? 200)],
    ['arch', pkg.arch ?? 'any'],
    ...(pkg.groups ?? []).map((v): [string, string] => ['group', v]),
    ...(pkg.conflicts ?? []).map((v): [string, string] => ['conflict', v]),
    ...(pkg.provides ?? []).map((v): [string, string] => ['provides', v]),
    ...(pkg.depends ?? []).map((v): [string, string] => ['depend', v]),
  ];
  return {
    filename,
    pkginfo: lines.map(([k, v]) => `${k} = ${v}\n`).join(''),
    csize: pkg.csize ?? 100,
    sha256sum: pkg.sha256 ?? createHash('sha256').update(filename).digest('hex'),
    files: [],
  };
}

/** The `desc` member of a sync database entry, fields in repo-add's order (via src/example/repo-writer.ts). */
export function syncDesc(pkg: FixturePackage): string {
  return repoDesc(fixtureRepoPackage(pkg));
}

/** Writes `<repo>.db` as repo-add would (a gzip'd tar of `<name>-<version>/desc`), without pacman tools. */
export async function writeSyncDb(path: string, packages: FixturePackage[]): Promise<void> {
  const { db } = await buildRepoDatabases(packages.map(fixtureRepoPackage), { mtime: FIXTURE_DATE });
  writeFileSync(path, db);
}
