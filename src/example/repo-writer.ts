import { createHash } from 'node:crypto';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { compressToBuffer, decompressAuto, getCompressor } from '../compress/index.js';
import { compareMemberNames, type TarSourceEntry } from '../tar/entry.js';
import { readTar } from '../tar/reader.js';
import { writeTar } from '../tar/writer.js';
import { writeDesc } from '../pacman/desc.js';
import type { BuiltPackage } from './package-writer.js';
import { byteOrder } from '../util/order.js';

/**
 * Writes pacman sync databases (`<repo>.db`, `<repo>.files`) the way repo-add (pacman 6.0) does, but with
 * deterministic bytes: members in bytewise order, fixed mtimes, owner 0:0, our fixed-header gzip.
 *
 * Per package repo-add writes `<name>-<version>/desc` (and, in `.files`, the same `desc` plus `files`). Its desc
 * fields come from the package's `.PKGINFO` read the way repo-add reads it (`IFS=' =' read var val`, whitespace runs
 * squeezed to one space, the last value of a single-valued key winning), plus the file's size and checksums.
 */

/** What the database needs to know about one package file. */
export interface RepoPackage {
  /** The file name in the repository directory (%FILENAME%). */
  filename: string;
  /** The package's `.PKGINFO` text. */
  pkginfo: string;
  /** Package file size (%CSIZE%). */
  csize: number;
  sha256sum: string;
  /** Needed only when writing %MD5SUM%. */
  md5sum?: string;
  /** Member names as `bsdtar -tf` prints them (dirs end in `/`); top-level dot files are dropped here. */
  files: string[];
  /** Detached binary (not armored) OpenPGP signature of the package file, for %PGPSIG%. */
  signature?: Buffer;
}

export interface RepoWriteOptions {
  /** Write %MD5SUM% as pacman 6.0's repo-add does (later releases dropped it). Default false. */
  md5sum?: boolean;
  /** mtime of every database member; default 0. */
  mtime?: number;
}

/** The `.PKGINFO` fields as repo-add's db_write_entry reads them. */
export interface RepoPkgInfoFields {
  single: Map<string, string>;
  lists: Map<string, string[]>;
}

const LIST_KEYS = ['group', 'license', 'replaces', 'depend', 'conflict', 'provides', 'optdepend', 'makedepend', 'checkdepend'];

/** repo-add's loop over `.PKGINFO`: `IFS=' =' read -r var val`, then `${val//+([[:space:]])/ }`. */
export function readPkgInfoLikeRepoAdd(pkginfo: string): RepoPkgInfoFields {
  const single = new Map<string, string>();
  const lists = new Map<string, string[]>(LIST_KEYS.map((k) => [k, []]));
  for (const line of pkginfo.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // Leading IFS whitespace is skipped; var ends at a space or '='; then spaces, at most one '=', spaces.
    const match = /^ *([^ =]*) *=? *(.*?) *$/.exec(line);
    if (!match) continue;
    const [, key, rawValue] = match as unknown as [string, string, string];
    const value = rawValue.replace(/[ \t\n\v\f\r]+/g, ' ');
    const list = lists.get(key);
    if (list !== undefined) list.push(value);
    else single.set(key, value);
  }
  return { single, lists };
}

/** The `desc` member for one package, in repo-add's field order; empty fields are left out as repo-add does. */
export function repoDesc(pkg: RepoPackage, options: RepoWriteOptions = {}): string {
  const { single, lists } = readPkgInfoLikeRepoAdd(pkg.pkginfo);
  const name = single.get('pkgname');
  const version = single.get('pkgver');
  if (!name || !version) throw new UserError(`${pkg.filename}: invalid package file (no pkgname or pkgver in .PKGINFO)`);
  if (pkg.signature !== undefined) {
    if (pkg.signature.includes('BEGIN PGP SIGNATURE')) throw new UserError(`${pkg.filename}: armored signatures cannot be used for packages`);
    if (pkg.signature.length > 16384) throw new UserError(`${pkg.filename}: invalid package signature (larger than 16384 bytes)`);
  }
  if (options.md5sum && pkg.md5sum === undefined) throw new UserError(`${pkg.filename}: MD5SUM requested but not known`);
  // format_entry writes a field only when its first value is non-empty.
  const one = (value: string | undefined): string[] => (value ? [value] : []);
  const many = (values: string[]): string[] => (values.length > 0 && values[0] !== '' ? values : []);
  return writeDesc([
    ['FILENAME', one(pkg.filename)],
    ['NAME', one(name)],
    ['BASE', one(single.get('pkgbase'))],
    ['VERSION', one(version)],
    ['DESC', one(single.get('pkgdesc'))],
    ['GROUPS', many(lists.get('group')!)],
    ['CSIZE', one(String(pkg.csize))],
    ['ISIZE', one(single.get('size'))],
    ['MD5SUM', options.md5sum ? one(pkg.md5sum) : []],
    ['SHA256SUM', one(pkg.sha256sum)],
    ['PGPSIG', pkg.signature === undefined ? [] : one(pkg.signature.toString('base64'))],
    ['URL', one(single.get('url'))],
    ['LICENSE', many(lists.get('license')!)],
    ['ARCH', one(single.get('arch'))],
    ['BUILDDATE', one(single.get('builddate'))],
    ['PACKAGER', one(single.get('packager'))],
    ['REPLACES', many(lists.get('replaces')!)],
    ['CONFLICTS', many(lists.get('conflict')!)],
    ['PROVIDES', many(lists.get('provides')!)],
    ['DEPENDS', many(lists.get('depend')!)],
    ['OPTDEPENDS', many(lists.get('optdepend')!)],
    ['MAKEDEPENDS', many(lists.get('makedepend')!)],
    ['CHECKDEPENDS', many(lists.get('checkdepend')!)],
  ]);
}


const C_ESCAPES: Record<string, string> = { '\\': '\\\\', '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' };

/**
 * A member name as `bsdtar -tf` prints it (tar/util.c safe_fprintf): backslash doubled, C escapes for
 * \a\b\f\n\r\t\v, other control bytes and bytes that are not UTF-8 (held as U+DC80–U+DCFF, see
 * util/raw-name.ts; `for…of` yields them alone, as they are never half of a pair) as `\ooo`; UTF-8 text stays.
 */
export function bsdtarListName(name: string): string {
  let out = '';
  for (const c of name) {
    const code = c.charCodeAt(0);
    const byte = code >= 0xdc80 && code <= 0xdcff ? code - 0xdc00 : code < 0x20 || code === 0x7f ? code : undefined;
    out += C_ESCAPES[c] ?? (byte !== undefined ? `\\${byte.toString(8).padStart(3, '0')}` : c);
  }
  return out;
}

/**
 * The `files` member: `%FILES%` then `bsdtar --exclude='^.*' -tf PKG | LC_ALL=C sort -u` (no trailing blank line,
 * exactly as repo-add writes it, including bsdtar's escaping of unusual bytes in names).
 */
export function repoFiles(pkg: Pick<RepoPackage, 'files'>): string {
  const names = [...new Set(pkg.files.filter((name) => !name.startsWith('.')).map(bsdtarListName))].sort(byteOrder);
  return `%FILES%\n${names.map((n) => `${n}\n`).join('')}`;
}

/** The `<name>-<version>` entry directory of a package. */
export function repoEntryDir(pkg: Pick<RepoPackage, 'pkginfo' | 'filename'>): string {
  const { single } = readPkgInfoLikeRepoAdd(pkg.pkginfo);
  const name = single.get('pkgname');
  const version = single.get('pkgver');
  if (!name || !version) throw new UserError(`${pkg.filename}: invalid package file (no pkgname or pkgver in .PKGINFO)`);
  return `${name}-${version}`;
}

/** A RepoPackage for a package made by buildPackage(). */
export function repoPackageFromBuilt(built: BuiltPackage, signature?: Buffer): RepoPackage {
  const pkg: RepoPackage = { filename: built.filename, pkginfo: built.pkginfo, csize: built.csize, sha256sum: built.sha256, md5sum: built.md5, files: built.files };
  if (signature !== undefined) pkg.signature = signature;
  return pkg;
}

/** A RepoPackage read from a package file's bytes (any compression our reader knows), as repo-add reads it. */
export async function repoPackageFromFile(filename: string, bytes: Buffer, signature?: Buffer): Promise<RepoPackage> {
  let pkginfo: string | undefined;
  const files: string[] = [];
  const source = (async function* () {
    yield bytes;
  })();
  for await (const entry of readTar(decompressAuto(source, filename), { what: filename })) {
    if (entry.name === '.PKGINFO') {
      const chunks: Buffer[] = [];
      for await (const chunk of entry.content()) chunks.push(chunk);
      pkginfo = Buffer.concat(chunks).toString('utf8');
    }
    files.push(entry.name);
  }
  if (pkginfo === undefined) throw new UserError(`${filename}: not a package (no .PKGINFO)`);
  const pkg: RepoPackage = {
    filename,
    pkginfo,
    csize: bytes.length,
    sha256sum: createHash('sha256').update(bytes).digest('hex'),
    md5sum: createHash('md5').update(bytes).digest('hex'),
    files,
  };
  if (signature !== undefined) pkg.signature = signature;
  return pkg;
}

function gzipTar(entries: TarSourceEntry[]): Promise<Buffer> {
  return compressToBuffer(writeTar(entries), getCompressor('gzip'));
}

export interface RepoDatabases {
  /** `<repo>.db.tar.gz` bytes. */
  db: Buffer;
  /** `<repo>.files.tar.gz` bytes. */
  files: Buffer;
  /** Entry directory name → desc text, in byte order. */
  descs: Map<string, string>;
}

/** Builds both databases in memory. Two packages with the same name are an error (repo-add would replace one). */
export async function buildRepoDatabases(packages: readonly RepoPackage[], options: RepoWriteOptions = {}): Promise<RepoDatabases> {
  const mtime = options.mtime ?? 0;
  if (!Number.isSafeInteger(mtime) || mtime < 0) throw new UserError(`database mtime ${mtime} is not a non-negative integer`);
  const dbEntries: TarSourceEntry[] = [];
  const filesEntries: TarSourceEntry[] = [];
  const descs = new Map<string, string>();
  const names = new Map<string, string>();
  const fileEntry = (path: string, content: string): TarSourceEntry => {
    const data = Buffer.from(content, 'utf8');
    return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: data.length, open: () => Readable.from([data]) };
  };
  for (const pkg of packages) {
    const dir = repoEntryDir(pkg);
    const name = readPkgInfoLikeRepoAdd(pkg.pkginfo).single.get('pkgname')!;
    const clash = names.get(name);
    if (clash !== undefined) throw new UserError(`package ${name} is given twice (${clash}, ${pkg.filename})`);
    names.set(name, pkg.filename);
    const desc = repoDesc(pkg, options);
    descs.set(dir, desc);
    const dirEntry: TarSourceEntry = { path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0 };
    dbEntries.push(dirEntry, fileEntry(`${dir}/desc`, desc));
    filesEntries.push({ ...dirEntry }, fileEntry(`${dir}/desc`, desc), fileEntry(`${dir}/files`, repoFiles(pkg)));
  }
  dbEntries.sort(compareMemberNames);
  filesEntries.sort(compareMemberNames);
  const sortedDescs = new Map([...descs].sort(([a], [b]) => byteOrder(a, b)));
  return { db: await gzipTar(dbEntries), files: await gzipTar(filesEntries), descs: sortedDescs };
}

export interface WrittenRepo {
  /** `<dir>/<repo>.db` (a symlink to `<repo>.db.tar.gz`, as repo-add makes it). */
  db: string;
  files: string;
  databases: RepoDatabases;
}

/**
 * Writes `<repo>.db.tar.gz` and `<repo>.files.tar.gz` into dir, with `<repo>.db` and `<repo>.files` symlinks to
 * them as repo-add makes (or copies when `symlinks` is false). The package files themselves are not written.
 * `signDatabase`, when given, returns a detached signature that is written as `<file>.sig` next to each database.
 */
export async function writeRepo(
  dir: string,
  repoName: string,
  packages: readonly RepoPackage[],
  options: RepoWriteOptions & { symlinks?: boolean; signDatabase?: (data: Buffer) => Promise<Buffer> } = {},
): Promise<WrittenRepo> {
  if (!/^[A-Za-z0-9@._+-]+$/.test(repoName) || repoName.startsWith('.')) throw new UserError(`repository name ${JSON.stringify(repoName)} is not valid`);
  const databases = await buildRepoDatabases(packages, options);
  await mkdir(dir, { recursive: true });
  for (const [kind, data] of [
    ['db', databases.db],
    ['files', databases.files],
  ] as const) {
    const archive = `${repoName}.${kind}.tar.gz`;
    const link = `${repoName}.${kind}`;
    const signature = options.signDatabase ? await options.signDatabase(data) : undefined;
    await writeFile(join(dir, archive), data);
    if (signature) await writeFile(join(dir, `${archive}.sig`), signature);
    await rm(join(dir, link), { force: true });
    await rm(join(dir, `${link}.sig`), { force: true });
    if (options.symlinks === false) {
      await writeFile(join(dir, link), data);
      if (signature) await writeFile(join(dir, `${link}.sig`), signature);
    } else {
      await symlink(archive, join(dir, link));
      if (signature) await symlink(`${archive}.sig`, join(dir, `${link}.sig`));
    }
  }
  return { db: join(dir, `${repoName}.db`), files: join(dir, `${repoName}.files`), databases };
}
