import { Readable } from 'node:stream';
import { formatDependency, parseDependency } from '../pacman/depend.js';
import type { PkgInfo } from '../pacman/pkginfo.js';
import type { TarSourceEntry } from '../tar/entry.js';
import { byteOrder } from '../util/order.js';
import { encodeName } from '../util/raw-name.js';

/**
 * pacman's local database (`var/lib/pacman/local`) as libalpm writes it (be_local.c _alpm_local_db_write), checked
 * byte for byte against pacman 6.0.2 by test/install-pacman-equivalence.test.ts: field order, which fields are
 * written when empty (see localDesc), dependency strings recomputed, files byte-sorted with directories ending in
 * `/`, every backup entry (`(null)` for one not extracted). desc, files and ALPM_DB_VERSION are 0644 and directories
 * 0755, owned 0:0, with mtime SOURCE_DATE_EPOCH (pacman takes the clock for those and for %INSTALLDATE%); mtree,
 * install and changelog are 0644 (extract_db_file forces it) with the owner and mtime they had in the package.
 */
export const LOCAL_DB_DIR = 'var/lib/pacman/local';
export const ALPM_DB_VERSION = '9\n';

export type Validation = 'none' | 'md5' | 'sha256' | 'pgp';

export interface InstalledPackage {
  pkginfo: PkgInfo;
  reason: 'explicit' | 'dependency';
  validation: Validation[];
  /** Paths as in the package (byte strings, see util/raw-name.ts), directories ending in `/`. */
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
  /** pacman forces 0644 (extract_db_file). */
  mode: number;
  mtime: number;
  /** Owner as in the package (pacman extracts with the archive's owner); default 0:0. */
  uid?: number;
  gid?: number;
}

const VALIDATION_ORDER: Validation[] = ['none', 'md5', 'sha256', 'pgp'];

/** libalpm trims every .PKGINFO value (_alpm_strtrim: isspace at both ends) before it keeps it. */
export function alpmTrim(value: string): string {
  return value.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '');
}

function deps(list: string[]): string[] {
  return list.map((d) => formatDependency(parseDependency(alpmTrim(d))));
}

/**
 * The `desc` file as _alpm_local_db_write prints it: NAME and VERSION always; BASE, DESC, URL, ARCH and PACKAGER
 * whenever .PKGINFO set them, even to an empty string (makepkg writes `pkgdesc = ` and `url = ` for a package
 * without them, and pacman then writes `%DESC%` and an empty line); BUILDDATE, INSTALLDATE, SIZE and REASON when
 * non-zero; lists when non-empty.
 */
export function localDesc(pkg: InstalledPackage, installDate: number): string {
  const p = pkg.pkginfo;
  let out = '';
  const block = (key: string, values: readonly string[]): void => {
    if (values.length) out += `%${key}%\n${values.join('\n')}\n\n`;
  };
  const text = (key: string, value: string | undefined): void => block(key, value === undefined ? [] : [alpmTrim(value)]);
  const number = (key: string, value: number | undefined): void => block(key, value ? [String(value)] : []);
  text('NAME', p.pkgname);
  text('VERSION', p.pkgver);
  text('BASE', p.pkgbase);
  text('DESC', p.pkgdesc);
  text('URL', p.url);
  text('ARCH', p.arch);
  number('BUILDDATE', p.builddate);
  number('INSTALLDATE', installDate);
  text('PACKAGER', p.packager);
  number('SIZE', p.size);
  block('REASON', pkg.reason === 'dependency' ? ['1'] : []);
  block('GROUPS', p.groups.map(alpmTrim));
  block('LICENSE', p.license.map(alpmTrim));
  block('VALIDATION', VALIDATION_ORDER.filter((v) => pkg.validation.includes(v)));
  block('REPLACES', deps(p.replaces));
  block('DEPENDS', deps(p.depends));
  block('OPTDEPENDS', deps(p.optdepends));
  block('CONFLICTS', deps(p.conflicts));
  block('PROVIDES', deps(p.provides));
  block('XDATA', p.xdata.map(alpmTrim));
  return out;
}

/** The `files` file; paths are written with their raw bytes, as libalpm writes what libarchive gave it (as desc). */
export function localFiles(pkg: InstalledPackage): Buffer {
  const sorted = [...pkg.files].sort(byteOrder);
  let out = sorted.length ? `%FILES%\n${sorted.join('\n')}\n\n` : '';
  if (pkg.backup.length) out += `%BACKUP%\n${pkg.backup.map(([path, md5]) => `${path}\t${md5}`).join('\n')}\n\n`;
  return encodeName(out);
}

/** The database's entries for the tree: directories, ALPM_DB_VERSION and one directory per package. */
export function localDbEntries(packages: InstalledPackage[], sourceDateEpoch: number): TarSourceEntry[] {
  const dir = (path: string): TarSourceEntry => ({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: sourceDateEpoch, size: 0 });
  const file = (path: string, content: Buffer | string, mode = 0o644, mtime = sourceDateEpoch, uid = 0, gid = 0): TarSourceEntry => {
    const bytes = Buffer.from(content);
    return { path, type: 'file', mode, uid, gid, mtime, size: bytes.length, open: () => Readable.from([bytes]) };
  };
  const meta = (path: string, m: MetaFile): TarSourceEntry => file(path, m.content, m.mode, m.mtime, m.uid ?? 0, m.gid ?? 0);
  const entries = [dir('var/lib/pacman'), dir(LOCAL_DB_DIR), file(`${LOCAL_DB_DIR}/ALPM_DB_VERSION`, ALPM_DB_VERSION)];
  for (const pkg of packages) {
    const base = `${LOCAL_DB_DIR}/${pkg.pkginfo.pkgname}-${pkg.pkginfo.pkgver}`;
    entries.push(dir(base), file(`${base}/desc`, encodeName(localDesc(pkg, sourceDateEpoch))), file(`${base}/files`, localFiles(pkg)));
    if (pkg.mtree) entries.push(meta(`${base}/mtree`, pkg.mtree));
    if (pkg.install) entries.push(meta(`${base}/install`, pkg.install));
    if (pkg.changelog) entries.push(meta(`${base}/changelog`, pkg.changelog));
  }
  return entries;
}
