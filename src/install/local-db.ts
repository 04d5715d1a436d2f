import { Readable } from 'node:stream';
import { writeDesc } from '../arch/desc.js';
import { formatDependency, parseDependency } from '../arch/depend.js';
import type { PkgInfo } from '../arch/pkginfo.js';
import type { TarSourceEntry } from '../tar/entry.js';

/**
 * pacman's local database (`var/lib/pacman/local`) as libalpm writes it (be_local.c _alpm_local_db_write):
 * field order, omitted empty fields, dependency strings recomputed, files byte-sorted with directories
 * ending in `/`. desc, files and ALPM_DB_VERSION are 0644 and directories 0755, owned 0:0, with mtime
 * SOURCE_DATE_EPOCH (pacman takes the clock for those and for %INSTALLDATE%); mtree, install and changelog keep
 * the mode and mtime they had in the package, as pacman extracts them.
 */
export const LOCAL_DB_DIR = 'var/lib/pacman/local';
export const ALPM_DB_VERSION = '9\n';

export type Validation = 'none' | 'md5' | 'sha256' | 'pgp';

export interface InstalledPackage {
  pkginfo: PkgInfo;
  reason: 'explicit' | 'dependency';
  validation: Validation[];
  /** Paths as in the package, directories ending in `/`. */
  files: string[];
  /** [path, md5 of the installed file] in .PKGINFO order. */
  backup: [string, string][];
  /** .MTREE, .INSTALL and .CHANGELOG as they were in the package (pacman extracts them with their metadata). */
  mtree?: MetaFile;
  install?: MetaFile;
  changelog?: MetaFile;
}

export interface MetaFile {
  content: Buffer;
  mode: number;
  mtime: number;
}

const VALIDATION_ORDER: Validation[] = ['none', 'md5', 'sha256', 'pgp'];

function deps(list: string[]): string[] {
  return list.map((d) => formatDependency(parseDependency(d)));
}

export function localDesc(pkg: InstalledPackage, installDate: number): string {
  const p = pkg.pkginfo;
  const one = (v: string | number | undefined): string[] => (v === undefined || v === '' || v === 0 ? [] : [String(v)]);
  return writeDesc([
    ['NAME', [p.pkgname]],
    ['VERSION', [p.pkgver]],
    ['BASE', one(p.pkgbase)],
    ['DESC', one(p.pkgdesc)],
    ['URL', one(p.url)],
    ['ARCH', one(p.arch)],
    ['BUILDDATE', one(p.builddate)],
    ['INSTALLDATE', one(installDate)],
    ['PACKAGER', one(p.packager)],
    ['SIZE', one(p.size)],
    ['REASON', pkg.reason === 'dependency' ? ['1'] : []],
    ['GROUPS', p.groups],
    ['LICENSE', p.license],
    ['VALIDATION', VALIDATION_ORDER.filter((v) => pkg.validation.includes(v))],
    ['REPLACES', deps(p.replaces)],
    ['DEPENDS', deps(p.depends)],
    ['OPTDEPENDS', deps(p.optdepends)],
    ['CONFLICTS', deps(p.conflicts)],
    ['PROVIDES', deps(p.provides)],
    ['XDATA', p.xdata],
  ]);
}

export function localFiles(pkg: InstalledPackage): string {
  const sorted = [...pkg.files].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let out = sorted.length ? `%FILES%\n${sorted.join('\n')}\n\n` : '';
  if (pkg.backup.length) out += `%BACKUP%\n${pkg.backup.map(([path, md5]) => `${path}\t${md5}`).join('\n')}\n\n`;
  return out;
}

/** The database's entries for the tree: directories, ALPM_DB_VERSION and one directory per package. */
export function localDbEntries(packages: InstalledPackage[], sourceDateEpoch: number): TarSourceEntry[] {
  const dir = (path: string): TarSourceEntry => ({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: sourceDateEpoch, size: 0 });
  const file = (path: string, content: Buffer | string, mode = 0o644, mtime = sourceDateEpoch): TarSourceEntry => {
    const bytes = Buffer.from(content);
    return { path, type: 'file', mode, uid: 0, gid: 0, mtime, size: bytes.length, open: () => Readable.from([bytes]) };
  };
  const meta = (path: string, m: MetaFile): TarSourceEntry => file(path, m.content, m.mode, m.mtime);
  const entries = [dir('var/lib/pacman'), dir(LOCAL_DB_DIR), file(`${LOCAL_DB_DIR}/ALPM_DB_VERSION`, ALPM_DB_VERSION)];
  for (const pkg of packages) {
    const base = `${LOCAL_DB_DIR}/${pkg.pkginfo.pkgname}-${pkg.pkginfo.pkgver}`;
    entries.push(dir(base), file(`${base}/desc`, localDesc(pkg, sourceDateEpoch)), file(`${base}/files`, localFiles(pkg)));
    if (pkg.mtree) entries.push(meta(`${base}/mtree`, pkg.mtree));
    if (pkg.install) entries.push(meta(`${base}/install`, pkg.install));
    if (pkg.changelog) entries.push(meta(`${base}/changelog`, pkg.changelog));
  }
  return entries;
}
