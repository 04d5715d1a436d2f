import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { compressToBuffer, getCompressor } from '../compress/index.js';
import { compareMemberNames, memberName, normalizeMemberPath, parentPaths, type TarSourceEntry } from '../tar/entry.js';
import { writeTar } from '../tar/writer.js';
import { VERSION } from '../version.js';
import { byteOrder } from '../util/order.js';
import { PACKAGE_NAME } from '../pacman/names.js';
import { encodeName } from '../util/raw-name.js';

/**
 * A pure-TypeScript writer of Arch Linux package files (`.pkg.tar.zst`) laid out the way makepkg 6.0.x lays them
 * out (scripts/makepkg.sh.in `write_pkginfo`, `write_buildinfo`, `create_package`):
 *
 * - members `.BUILDINFO`, `.CHANGELOG`, `.INSTALL`, `.MTREE`, `.PKGINFO` and the package files, all in bytewise
 *   member-name order (our tar writer's order; makepkg's `**` glob sorts `a` < `a-b` < `a/x` by path without the
 *   directory slash, so the two orders differ only when a name continues with a byte below `/`);
 * - every mtime = SOURCE_DATE_EPOCH; owner 0:0 with names `root`/`root` (what bsdtar records under fakeroot) unless
 *   an entry says otherwise;
 * - `.PKGINFO` with makepkg's key order; single-valued keys are always written, even empty, as makepkg does;
 * - `.BUILDINFO` format 2;
 * - `.MTREE`: gzip of exactly what `bsdtar --format=mtree --options='!all,use-set,type,uid,gid,mode,time,size,md5,
 *   sha256,link'` prints for the same tree (libarchive's archive_write_set_format_mtree.c: per directory the most
 *   common uid/gid/mode of its children becomes `/set`, the directory line comes next, then its non-directory
 *   children by name, then its subdirectories depth first).
 *
 * The zstd level defaults to 19, the highest our compressor offers (Arch's makepkg.conf uses `--ultra -20`,
 * makepkg's built-in default is zstd's 3). Compressed bytes are not comparable with makepkg's anyway; the
 * uncompressed members are.
 */

export const DEFAULT_PACKAGE_ZSTD_LEVEL = 19;

export type PackageEntryType = 'file' | 'dir' | 'symlink' | 'hardlink';

export interface PackageEntry {
  /** Relative path inside the package, e.g. `usr/bin/foo` (no leading `/`, no trailing slash). */
  path: string;
  type: PackageEntryType;
  /** Permission bits (0o7777). Defaults: file 0644, dir 0755, symlink 0777; a hardlink shares its target's. */
  mode?: number;
  /** Owner; default 0:0. A hardlink shares its target's. */
  uid?: number;
  gid?: number;
  /** Owner names stored in the tar header; default `root` for id 0 and none otherwise (then pacman uses the id). */
  uname?: string;
  gname?: string;
  /** Regular file content. */
  content?: Buffer | string;
  /** Symlink target, or for a hardlink the path of the file it shares an inode with. */
  linkTarget?: string;
}

export interface PackageMetadata {
  pkgname: string;
  /** Defaults to pkgname, as in makepkg. */
  pkgbase?: string;
  pkgver: string;
  pkgrel: string | number;
  /** Written only when > 0, as makepkg's get_full_version does. */
  epoch?: string | number;
  pkgdesc?: string;
  url?: string;
  arch: string;
  license?: string[];
  groups?: string[];
  depends?: string[];
  optdepends?: string[];
  provides?: string[];
  conflicts?: string[];
  replaces?: string[];
  backup?: string[];
  makedepends?: string[];
  checkdepends?: string[];
  /** `key=value` lines written as `xdata = ...` after pkgbase (makepkg >= 6.1 writes `pkgtype=pkg`); none by default. */
  xdata?: string[];
  /** Default `Unknown Packager`, makepkg's default. */
  packager?: string;
  /** Default SOURCE_DATE_EPOCH, as makepkg writes. */
  builddate?: number;
}

/** The build-environment part of `.BUILDINFO`; makepkg fills it from the machine, we take fixed values. */
export interface BuildInfoFields {
  /** Omitted when not given (there is no PKGBUILD). */
  pkgbuildSha256sum?: string;
  /** Default `/build`. */
  builddir?: string;
  /** Default `/startdir`. */
  startdir?: string;
  /** Default `repro-oci`. */
  buildtool?: string;
  /** Default the repro-oci version. */
  buildtoolver?: string;
  buildenv?: string[];
  options?: string[];
  /** `name-version-arch` of the build environment's packages. */
  installed?: string[];
}

export interface PackageInput extends PackageMetadata {
  entries: PackageEntry[];
  /** `.INSTALL` script text. */
  install?: string;
  /** `.CHANGELOG` text. */
  changelog?: string;
  sourceDateEpoch: number;
  buildinfo?: BuildInfoFields;
  /** `#` comment lines at the top of `.PKGINFO`, without the `# ` (default: one naming repro-oci). */
  pkginfoComments?: string[];
  /** zstd level, default DEFAULT_PACKAGE_ZSTD_LEVEL. */
  zstdLevel?: number;
  /** Include `md5digest` in `.MTREE` (makepkg 6.0 does, 6.1 dropped it). Default true. */
  mtreeMd5?: boolean;
}

export interface BuiltPackage {
  /** `<pkgname>-<fullver>-<arch>.pkg.tar.zst`, makepkg's file name. */
  filename: string;
  bytes: Buffer;
  /** hex sha256 of bytes. */
  sha256: string;
  md5: string;
  /** Package file size (sync db %CSIZE%). */
  csize: number;
  /** Installed size (`.PKGINFO` size, sync db %ISIZE%). */
  isize: number;
  /** `[epoch:]pkgver-pkgrel`. */
  fullVersion: string;
  pkginfo: string;
  buildinfo: string;
  /** The mtree text before gzip. */
  mtreeText: string;
  /** Member names (directories end in `/`), without the top-level dot files: what repo-add lists in %FILES%. */
  files: string[];
}

const text = (value: string | Buffer): Buffer => (typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
const sha256Hex = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const md5Hex = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/** makepkg's get_full_version: `epoch:` only when epoch > 0. */
export function fullVersion(meta: Pick<PackageMetadata, 'pkgver' | 'pkgrel' | 'epoch'>): string {
  const epoch = meta.epoch === undefined || meta.epoch === '' ? 0 : Number(meta.epoch);
  if (!Number.isInteger(epoch) || epoch < 0) throw new UserError(`epoch ${JSON.stringify(meta.epoch)} is not a non-negative integer`);
  if (!/^[^:/\s-]+$/.test(meta.pkgver)) throw new UserError(`pkgver ${JSON.stringify(meta.pkgver)} is not valid (no ':', '/', '-' or whitespace)`);
  const pkgrel = String(meta.pkgrel);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(pkgrel)) throw new UserError(`pkgrel ${JSON.stringify(pkgrel)} is not valid`);
  return epoch > 0 ? `${epoch}:${meta.pkgver}-${pkgrel}` : `${meta.pkgver}-${pkgrel}`;
}

/** makepkg's `write_kv_pair`: one `key = value` line per value; a newline in a value is an error. */
function kv(key: string, values: readonly string[]): string {
  let out = '';
  for (const value of values) {
    if (value.includes('\n')) throw new UserError(`invalid value for ${key}: ${JSON.stringify(value)}`);
    out += `${key} = ${value}\n`;
  }
  return out;
}

/** `${x//+([[:space:]])/ }` */
const squeeze = (value: string): string => value.replace(/[ \t\n\v\f\r]+/g, ' ');

/** The `.PKGINFO` text, in makepkg's `write_pkginfo` order. */
export function writePkgInfo(meta: PackageMetadata, size: number, sourceDateEpoch: number, comments: readonly string[] = [`Generated by repro-oci ${VERSION}`]): string {
  let out = comments.map((c) => `# ${c}\n`).join('');
  out += kv('pkgname', [meta.pkgname]);
  out += kv('pkgbase', [meta.pkgbase ?? meta.pkgname]);
  out += kv('xdata', meta.xdata ?? []);
  out += kv('pkgver', [fullVersion(meta)]);
  out += kv('pkgdesc', [squeeze(meta.pkgdesc ?? '').trim()]);
  out += kv('url', [meta.url ?? '']);
  out += kv('builddate', [String(meta.builddate ?? sourceDateEpoch)]);
  out += kv('packager', [meta.packager ?? 'Unknown Packager']);
  out += kv('size', [String(size)]);
  out += kv('arch', [meta.arch]);
  out += kv('license', meta.license ?? []);
  out += kv('replaces', meta.replaces ?? []);
  out += kv('group', meta.groups ?? []);
  out += kv('conflict', meta.conflicts ?? []);
  out += kv('provides', meta.provides ?? []);
  out += kv('backup', meta.backup ?? []);
  out += kv('depend', meta.depends ?? []);
  out += kv('optdepend', (meta.optdepends ?? []).map(squeeze));
  out += kv('makedepend', meta.makedepends ?? []);
  out += kv('checkdepend', meta.checkdepends ?? []);
  return out;
}

/** The `.BUILDINFO` text, format 2, in makepkg's `write_buildinfo` order. */
export function writeBuildInfo(meta: PackageMetadata, sourceDateEpoch: number, fields: BuildInfoFields = {}): string {
  let out = kv('format', ['2']);
  out += kv('pkgname', [meta.pkgname]);
  out += kv('pkgbase', [meta.pkgbase ?? meta.pkgname]);
  out += kv('pkgver', [fullVersion(meta)]);
  out += kv('pkgarch', [meta.arch]);
  out += kv('pkgbuild_sha256sum', fields.pkgbuildSha256sum === undefined ? [] : [fields.pkgbuildSha256sum]);
  out += kv('packager', [meta.packager ?? 'Unknown Packager']);
  out += kv('builddate', [String(meta.builddate ?? sourceDateEpoch)]);
  out += kv('builddir', [fields.builddir ?? '/build']);
  out += kv('startdir', [fields.startdir ?? '/startdir']);
  out += kv('buildtool', [fields.buildtool ?? 'repro-oci']);
  out += kv('buildtoolver', [fields.buildtoolver ?? VERSION]);
  out += kv('buildenv', fields.buildenv ?? []);
  out += kv('options', fields.options ?? []);
  out += kv('installed', fields.installed ?? []);
  return out;
}

/** A resolved member of the package (metadata members included), as the tar and mtree writers see it. */
interface Member {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** For files and hardlinks: the inode's content. */
  content?: Buffer;
  linkTarget?: string;
}

const DEFAULT_MODE = { file: 0o644, dir: 0o755, symlink: 0o777, hardlink: 0o644 } as const;

function checkId(value: number | undefined, what: string): number {
  const id = value ?? 0;
  if (!Number.isSafeInteger(id) || id < 0) throw new UserError(`${what} must be a non-negative integer`);
  return id;
}

/**
 * Validates the entries, adds missing parent directories (0755 root, as `mkdir -p` under makepkg's umask 022
 * makes them) and resolves hardlinks: within a group of paths sharing an inode, the first in byte order is the
 * regular file and the others link to it, as bsdtar stores them when it meets them in that order.
 */
function resolveEntries(entries: readonly PackageEntry[]): Member[] {
  const byPath = new Map<string, PackageEntry>();
  for (const entry of entries) {
    const path = normalizeMemberPath(entry.path);
    if (path === undefined || path === null || path !== entry.path) {
      throw new UserError(`package entry ${JSON.stringify(entry.path)}: path must be relative, normalized, without ./ or a trailing slash`);
    }
    if (!path.includes('/') && path.startsWith('.')) throw new UserError(`package entry ${JSON.stringify(path)}: top-level names starting with "." are reserved for package metadata`);
    if (byPath.has(path)) throw new UserError(`package entry ${JSON.stringify(path)} appears twice`);
    if (!['file', 'dir', 'symlink', 'hardlink'].includes(entry.type)) throw new UserError(`package entry ${path}: unsupported type ${JSON.stringify(entry.type)}`);
    if (entry.type === 'file' && entry.content === undefined) throw new UserError(`package entry ${path}: a file needs content`);
    if (entry.type !== 'file' && entry.content !== undefined) throw new UserError(`package entry ${path}: only files have content`);
    if ((entry.type === 'symlink' || entry.type === 'hardlink') && !entry.linkTarget) throw new UserError(`package entry ${path}: a ${entry.type} needs linkTarget`);
    if (entry.mode !== undefined && (!Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0o7777)) throw new UserError(`package entry ${path}: mode must be within 0o7777`);
    byPath.set(path, entry);
  }
  // Parent directories makepkg's pkgdir necessarily has.
  for (const path of [...byPath.keys()]) {
    for (const parent of parentPaths(path)) {
      const existing = byPath.get(parent);
      if (existing === undefined) byPath.set(parent, { path: parent, type: 'dir' });
      else if (existing.type !== 'dir') throw new UserError(`package entry ${path}: parent ${parent} is not a directory`);
    }
  }

  // Hardlink groups: each hardlink names a file (or another hardlink) sharing its inode.
  const inodeOf = (path: string, seen: Set<string> = new Set()): string => {
    const entry = byPath.get(path);
    if (entry === undefined) throw new UserError(`hardlink target ${JSON.stringify(path)} is not in the package`);
    if (entry.type === 'file') return path;
    if (entry.type !== 'hardlink') throw new UserError(`hardlink target ${JSON.stringify(path)} is not a regular file`);
    if (seen.has(path)) throw new UserError(`hardlink loop at ${JSON.stringify(path)}`);
    seen.add(path);
    const target = normalizeMemberPath(entry.linkTarget!);
    if (typeof target !== 'string') throw new UserError(`hardlink ${path}: bad target ${JSON.stringify(entry.linkTarget)}`);
    return inodeOf(target, seen);
  };
  const groups = new Map<string, string[]>();
  for (const [path, entry] of byPath) {
    if (entry.type !== 'file' && entry.type !== 'hardlink') continue;
    const inode = inodeOf(path);
    const group = groups.get(inode) ?? [];
    group.push(path);
    groups.set(inode, group);
  }

  const members: Member[] = [];
  for (const [path, entry] of byPath) {
    if (entry.type === 'file' || entry.type === 'hardlink') continue;
    const member: Member = {
      path,
      type: entry.type,
      mode: entry.type === 'symlink' ? 0o777 : (entry.mode ?? DEFAULT_MODE[entry.type]),
      uid: checkId(entry.uid, `${path}: uid`),
      gid: checkId(entry.gid, `${path}: gid`),
    };
    if (entry.type === 'symlink') member.linkTarget = entry.linkTarget!;
    if (entry.uname !== undefined) member.uname = entry.uname;
    if (entry.gname !== undefined) member.gname = entry.gname;
    members.push(member);
  }
  for (const [inode, paths] of groups) {
    const file = byPath.get(inode)!;
    const content = text(file.content!);
    paths.sort(byteOrder);
    paths.forEach((path, index) => {
      const member: Member = {
        path,
        type: index === 0 ? 'file' : 'hardlink',
        mode: file.mode ?? DEFAULT_MODE.file,
        uid: checkId(file.uid, `${inode}: uid`),
        gid: checkId(file.gid, `${inode}: gid`),
        content,
      };
      if (index > 0) member.linkTarget = paths[0]!;
      if (file.uname !== undefined) member.uname = file.uname;
      if (file.gname !== undefined) member.gname = file.gname;
      members.push(member);
    });
  }
  return members;
}

/** makepkg's `dirsize`: bytes of every regular file, a hardlinked inode counted once; links and dirs are 0. */
export function installedSize(entries: readonly PackageEntry[]): number {
  return resolveEntries(entries).reduce((sum, m) => sum + (m.type === 'file' ? m.content!.length : 0), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// mtree, as libarchive's writer prints it with makepkg's options

/** libarchive's mtree_quote: every byte outside its safe set becomes `\ooo`. */
function mtreeQuote(value: string): string {
  let out = '';
  for (const byte of encodeName(value)) {
    const safe = byte > 0x20 && byte < 0x7f && byte !== 0x23 && byte !== 0x3d && byte !== 0x5c;
    out += safe ? String.fromCharCode(byte) : `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return out;
}

interface MtreeNode {
  name: string;
  /** `.` for top-level members, `./usr` for members of usr, ... */
  parentdir: string;
  member?: Member;
  children: Map<string, MtreeNode>;
}

/** libarchive's attr_counter list: descending counts, a value overtakes only a strictly smaller count. */
class AttrCounter {
  private readonly list: Array<{ value: number; count: number }> = [];

  add(value: number): void {
    const index = this.list.findIndex((c) => c.value === value);
    if (index === -1) {
      this.list.push({ value, count: 1 });
      return;
    }
    const counter = this.list[index]!;
    counter.count++;
    if (index === 0 || this.list[index - 1]!.count >= counter.count) return;
    let j = index - 1;
    while (j >= 0 && this.list[j]!.count < counter.count) j--;
    this.list.splice(index, 1);
    this.list.splice(j + 1, 0, counter);
  }

  get top(): { value: number; count: number } | undefined {
    return this.list[0];
  }
}


/**
 * The mtree text bsdtar writes for these members with `!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link`
 * (md5 optional). All members share one mtime.
 */
function writeMtreeText(members: readonly Member[], mtime: number, md5: boolean): string {
  const root: MtreeNode = { name: '.', parentdir: '', children: new Map() };
  const sorted = [...members].sort((a, b) => byteOrder(a.path, b.path));
  for (const member of sorted) {
    const parts = member.path.split('/');
    let node = root;
    let parentdir = '.';
    for (const part of parts.slice(0, -1)) {
      let next = node.children.get(part);
      if (next === undefined) {
        next = { name: part, parentdir, children: new Map() };
        node.children.set(part, next);
      }
      node = next;
      parentdir = `${parentdir}/${part}`;
    }
    const name = parts[parts.length - 1]!;
    const existing = node.children.get(name);
    if (existing !== undefined) existing.member = member;
    else node.children.set(name, { name, parentdir, member, children: new Map() });
  }

  const isDir = (n: MtreeNode): boolean => n.member === undefined || n.member.type === 'dir';
  const set = { processing: false, keys: { type: false, uid: false, gid: false, mode: false }, type: '', uid: 0, gid: 0, mode: 0 };
  let out = '#mtree\n';

  const writeGlobal = (children: MtreeNode[]): void => {
    const uid = new AttrCounter();
    const gid = new AttrCounter();
    const mode = new AttrCounter();
    for (const child of children) {
      const m = child.member!;
      uid.add(m.uid);
      gid.add(m.gid);
      mode.add(m.mode);
    }
    const keys = { type: true, uid: true, gid: true, mode: true };
    const eff = { type: true, uid: true, gid: true, mode: true };
    if (set.processing) {
      eff.type = false;
      const check = (counter: AttrCounter, key: 'uid' | 'gid' | 'mode'): void => {
        const top = counter.top;
        if (top === undefined) eff[key] = false;
        else if (set.keys[key] && (top.count < 2 || set[key] === top.value)) eff[key] = false;
      };
      check(uid, 'uid');
      check(gid, 'gid');
      check(mode, 'mode');
    } else {
      if (uid.top === undefined) keys.uid = false;
      if (gid.top === undefined) keys.gid = false;
      if (mode.top === undefined) keys.mode = false;
    }
    let line = '';
    if (keys.type && eff.type) {
      line += ' type=file';
      set.type = 'file';
    }
    if (keys.uid && eff.uid) {
      set.uid = uid.top!.value;
      line += ` uid=${set.uid}`;
    }
    if (keys.gid && eff.gid) {
      set.gid = gid.top!.value;
      line += ` gid=${set.gid}`;
    }
    if (keys.mode && eff.mode) {
      set.mode = mode.top!.value;
      line += ` mode=${set.mode.toString(8)}`;
    }
    if (line !== '') out += `/set${line}\n`;
    set.keys = keys;
    set.processing = true;
  };

  const writeEntry = (node: MtreeNode, children: MtreeNode[]): void => {
    const m = node.member!;
    if (m.type === 'dir') writeGlobal(children);
    let line = `${mtreeQuote(node.parentdir)}/${mtreeQuote(node.name)}`;
    line += ` time=${mtime}.0`;
    if (!(set.keys.mode && set.mode === m.mode)) line += ` mode=${m.mode.toString(8)}`;
    if (!(set.keys.gid && set.gid === m.gid)) line += ` gid=${m.gid}`;
    if (!(set.keys.uid && set.uid === m.uid)) line += ` uid=${m.uid}`;
    switch (m.type) {
      case 'symlink':
        line += ` type=link link=${mtreeQuote(m.linkTarget!)}`;
        break;
      case 'dir':
        line += ' type=dir';
        break;
      default:
        // Regular files and hardlinks (bsdtar reads a hardlink's content from disk like any file).
        if (!(set.keys.type && set.type === 'file')) line += ' type=file';
        line += ` size=${m.content!.length}`;
        if (md5) line += ` md5digest=${md5Hex(m.content!)}`;
        line += ` sha256digest=${sha256Hex(m.content!)}`;
    }
    out += `${line}\n`;
  };

  const sortedChildren = (node: MtreeNode): MtreeNode[] => [...node.children.values()].sort((a, b) => byteOrder(a.name, b.name));
  const visit = (node: MtreeNode, isRoot: boolean): void => {
    if (!isRoot && node.member === undefined) throw new Error(`mtree: directory ${node.parentdir}/${node.name} has no entry`);
    const children = sortedChildren(node);
    if (isRoot) writeGlobal(children);
    else writeEntry(node, children);
    for (const child of children) if (!isDir(child)) writeEntry(child, []);
    for (const child of children) if (isDir(child)) visit(child, false);
  };
  visit(root, true);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

function toTarEntry(m: Member, mtime: number): TarSourceEntry {
  const size = m.type === 'file' ? m.content!.length : 0;
  const entry: TarSourceEntry = { path: m.path, type: m.type, mode: m.mode, uid: m.uid, gid: m.gid, mtime, size };
  if (m.linkTarget !== undefined) entry.linkTarget = m.linkTarget;
  const uname = m.uname ?? (m.uid === 0 ? 'root' : undefined);
  const gname = m.gname ?? (m.gid === 0 ? 'root' : undefined);
  if (uname !== undefined) entry.uname = uname;
  if (gname !== undefined) entry.gname = gname;
  if (m.type === 'file') {
    const content = m.content!;
    entry.open = () => Readable.from([content]);
  }
  return entry;
}

/** Builds a `.pkg.tar.zst` in memory. Every byte is a function of the input. */
export async function buildPackage(input: PackageInput): Promise<BuiltPackage> {
  const epoch = input.sourceDateEpoch;
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new UserError(`SOURCE_DATE_EPOCH ${epoch} is not a non-negative integer`);
  if (!PACKAGE_NAME.test(input.pkgname)) throw new UserError(`pkgname ${JSON.stringify(input.pkgname)} is not valid`);
  if (!/^[A-Za-z0-9_]+$/.test(input.arch)) throw new UserError(`arch ${JSON.stringify(input.arch)} is not valid`);
  const version = fullVersion(input);
  const members = resolveEntries(input.entries);
  const isize = members.reduce((sum, m) => sum + (m.type === 'file' ? m.content!.length : 0), 0);

  const pkginfo = writePkgInfo(input, isize, epoch, input.pkginfoComments);
  const buildinfo = writeBuildInfo(input, epoch, input.buildinfo);
  const meta = (path: string, content: string): Member => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from(content, 'utf8') });
  const metaMembers = [meta('.BUILDINFO', buildinfo), meta('.PKGINFO', pkginfo)];
  if (input.changelog !== undefined) metaMembers.push(meta('.CHANGELOG', input.changelog));
  if (input.install !== undefined) metaMembers.push(meta('.INSTALL', input.install));

  const mtreeText = writeMtreeText([...metaMembers, ...members], epoch, input.mtreeMd5 ?? true);
  const mtree: Member = { path: '.MTREE', type: 'file', mode: 0o644, uid: 0, gid: 0, content: await compressToBuffer([Buffer.from(mtreeText, 'utf8')], getCompressor('gzip')) };

  const all = [...metaMembers, mtree, ...members].map((m) => toTarEntry(m, epoch)).sort(compareMemberNames);
  const bytes = await compressToBuffer(writeTar(all), getCompressor('zstd', input.zstdLevel ?? DEFAULT_PACKAGE_ZSTD_LEVEL));
  const files = all.map(memberName).filter((name) => !name.startsWith('.'));
  return {
    filename: `${input.pkgname}-${version}-${input.arch}.pkg.tar.zst`,
    bytes,
    sha256: sha256Hex(bytes),
    md5: md5Hex(bytes),
    csize: bytes.length,
    isize,
    fullVersion: version,
    pkginfo,
    buildinfo,
    mtreeText,
    files,
  };
}
