import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { parseMtree } from '../pacman/mtree.js';
import { parsePkgInfo, type PkgInfo } from '../pacman/pkginfo.js';
import { decompressAuto } from '../compress/index.js';
import { UserError } from '../errors.js';
import { VerifiedFile } from '../fetch/verified-file.js';
import { normalizeMemberPath, parentPaths, type TarSourceEntry } from '../tar/entry.js';
import { readTar } from '../tar/reader.js';
import { makeScratchDir, readSmall } from '../util/fs.js';
import { Spool } from '../util/spool.js';
import { Progress } from '../util/progress.js';
import { decodeName, displayName } from '../util/raw-name.js';
import { sortWithHardlinks, type RootfsTree } from '../rootfs/tree.js';
import { alpmTrim, LOCAL_DB_DIR, localDbEntries, type InstalledPackage, type MetaFile, type Validation } from './local-db.js';
import { PathPatterns } from './noextract.js';

/**
 * Installs packages the way `pacman -S` into an empty root would, without pacman and without root: into a tree
 * model whose file contents are spooled to a private scratch directory and never land where the user can see
 * them until the tree is written out (as a layer, or by `install --root`). Hostile packages are refused with
 * the package and entry named, before anything is output.
 */

/** One package to install, already fetched and checked against the lock's sha256. */
export interface PackageToInstall {
  name: string;
  version: string;
  /** Path of the package file; all its bytes are checked against `sha256` (and `csize`) when it is read. */
  file: string;
  sha256?: string;
  csize?: number;
  reason: 'explicit' | 'dependency';
  validation: Validation[];
  /** Installed size from the lock, the budget against decompression bombs. */
  isize?: number;
  /** Who signed it, when a signature was verified. */
  signer?: { fingerprint: string; userId?: string };
}

export interface InstallOptions {
  sourceDateEpoch: number;
  /** pacman.conf NoExtract patterns. */
  noExtract?: string[];
  /** Device nodes are refused unless allowed (no Arch package ships one). */
  allowDevices?: boolean;
  /** Largest total of file contents accepted, whatever the packages declare (default 64 GiB). */
  maxInstalledBytes?: number;
  warn?: (message: string) => void;
}

/** A node of the installed tree: a layer entry plus the package that owns it. */
export interface TreeNode extends TarSourceEntry {
  owner: string;
}

export interface InstalledTree extends RootfsTree {
  entries: TreeNode[];
  packages: InstalledPackage[];
  /** Where the contents are held; later steps (setup commands) may store more there. */
  spool: Spool;
  /**
   * The sha256 of each regular file as its package installed it, hashed while extracting (for .MTREE): true of the
   * tree as returned, not after a setup step changes it. Files the installer writes itself are not in it.
   */
  fileDigests: ReadonlyMap<string, string>;
}

/** Slack over a package's declared installed size before its contents count as a decompression bomb. */
const BOMB_SLACK = 16 * 1024 * 1024;
const MAX_META_BYTES = 64 * 1024 * 1024;

/** md5 of a node's spooled content (a backup file reached through a hardlink, hashed after the fact). */
async function md5Of(node: TreeNode): Promise<string> {
  const hash = createHash('md5');
  if (node.open) for await (const chunk of await node.open()) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8);
}

export async function installPackages(packages: PackageToInstall[], options: InstallOptions): Promise<InstalledTree> {
  const scratch = await makeScratchDir('install');
  // Every package's contents go to one append-only spool; each node reads its own byte range back.
  const spool = new Spool(join(scratch.path, 'contents'));
  const cleanup = async (): Promise<void> => {
    spool.close();
    await scratch.cleanup();
  };
  const nodes = new Map<string, TreeNode>();
  const installed: InstalledPackage[] = [];
  const fileDigests = new Map<string, string>();
  const noExtract = new PathPatterns(options.noExtract ?? []);
  const warn = options.warn ?? (() => {});
  const maxTotal = options.maxInstalledBytes ?? 64 * 1024 ** 3;
  let total = 0;
  // pacman's database directory exists before the first package is extracted (pacman refuses a missing DBPath,
  // and libalpm makes local/ before it extracts a package), so a package that declares var or var/lib finds them
  // there: 0755 root, as pacstrap and libalpm make them.
  for (const dir of [...parentPaths(LOCAL_DB_DIR), LOCAL_DB_DIR]) {
    nodes.set(dir, { path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: options.sourceDateEpoch, size: 0, owner: '' });
  }
  const progress = new Progress('install', { unit: 'packages' }).start(packages.length);
  try {
    for (const pkg of packages) {
      const what = `package ${pkg.name}`;
      // Paths are byte strings (util/raw-name.ts): messages show them unambiguously.
      const fail: (entry: string, why: string) => never = (entry, why) => {
        throw new UserError(`${what}: ${displayName(entry)}: ${why}`);
      };
      let pkginfo: PkgInfo | undefined;
      const meta: { mtree?: MetaFile; install?: MetaFile; changelog?: MetaFile } = {};
      const files: string[] = [];
      const contentDigests = new Map<string, { size: number; sha256: string; md5?: string }>();
      // md5 only for %BACKUP% files, once .PKGINFO (first in a package) says which.
      const backupPaths = new Set<string>();
      const budget = (pkg.isize ?? 0) + BOMB_SLACK;
      let packageBytes = 0;

      const source = await openPackage(pkg, what);
      for await (const entry of readToTheEnd(readTar(decompressAuto(source.chunks(), what), { what }), source)) {
        const path = normalizeMemberPath(entry.name);
        if (path === null) throw new UserError(`${what}: ${JSON.stringify(entry.name)}: absolute path or ".." component: refused`);
        if (path === undefined) continue;
        if (path.startsWith('.')) {
          // libalpm reserves every path starting with '.': .PKGINFO, .MTREE, .INSTALL and .CHANGELOG are package
          // metadata, anything else (.BUILDINFO, a `.hidden/` tree) is neither installed nor listed in %FILES%.
          const metaName = METADATA.get(path);
          if (metaName === undefined) continue;
          if (entry.type !== 'file') fail(path, `metadata member is a ${entry.type}`);
          const content = await readSmall(entry.content(), MAX_META_BYTES, `${what}: ${path}`);
          // pacman extracts them into the database with mode 0644 (extract_db_file), keeping owner and mtime.
          const metaFile: MetaFile = { content, mode: 0o644, mtime: entry.mtime, uid: entry.uid, gid: entry.gid };
          if (metaName === 'pkginfo') {
            // libalpm keeps .PKGINFO values as bytes (backup paths are file names; pacman accepts any bytes in a
            // description): decoded losslessly, and written back to the database with the same bytes.
            pkginfo = parsePkgInfo(decodeName(content), `${what}: .PKGINFO`);
            for (const b of pkginfo.backup) backupPaths.add(alpmTrim(b));
          } else meta[metaName] = metaFile;
          continue;
        }
        files.push(entry.type === 'dir' ? `${path}/` : path);

        // NoExtract applies to directories as well (pacman checks every entry): nothing is created for a
        // matched path, and a parent it left out is made below like any missing parent. pacman matches the name as
        // the package's tar holds it, a directory's with its trailing slash: `usr/share/man/*` takes usr/share/man/.
        if (noExtract.matches(entry.type === 'dir' ? `${path}/` : path)) {
          warn(`${what}: ${displayName(path)} not extracted (NoExtract)`);
          continue;
        }

        // Every parent must be a real directory in the tree: never a symlink (a write through it could land
        // anywhere) and never a file. A missing parent is created as libarchive creates it under pacman
        // (umask 022): 0755, owned by root.
        for (const parent of parentPaths(path)) {
          const node = nodes.get(parent);
          if (node?.type === 'symlink') fail(path, `would be written through the symlink ${displayName(parent)} → ${displayName(node.linkTarget!)} (owned by ${ownerName(node)})`);
          if (node && node.type !== 'dir') fail(path, `its parent ${displayName(parent)} is a ${node.type} owned by ${ownerName(node)}`);
          if (!node) nodes.set(parent, { path: parent, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: options.sourceDateEpoch, size: 0, owner: pkg.name });
        }
        if ((entry.type === 'char' || entry.type === 'block') && !options.allowDevices) fail(path, `${entry.type} device nodes are not allowed`);

        const existing = nodes.get(path);
        if (existing) {
          if (existing.type === 'dir' && entry.type === 'dir') {
            // Shared directory: what is on disk stays (pacman skips the entry and only warns).
            if (existing.mode !== entry.mode || existing.uid !== entry.uid || existing.gid !== entry.gid) {
              warn(`directory permissions differ on ${displayName(`/${path}`)}\nfilesystem: ${octal(existing.mode)} ${existing.uid}:${existing.gid}  package: ${octal(entry.mode)} ${entry.uid}:${entry.gid}`);
            }
            // A database directory made before any package belongs to the first package that declares it.
            if (existing.owner === '') existing.owner = pkg.name;
            continue;
          }
          if (existing.owner === pkg.name) fail(path, 'appears twice in the package');
          if (existing.type === 'dir') fail(path, `is a ${entry.type} here but a directory in ${ownerName(existing)}`);
          if (entry.type === 'dir') fail(path, `is a directory here but a ${existing.type} in ${ownerName(existing)}`);
          throw new UserError(`file conflict: ${displayName(`/${path}`)} exists in both '${ownerName(existing)}' and '${pkg.name}'`);
        }

        const node: TreeNode = { path, type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime, size: 0, owner: pkg.name };
        if (entry.xattrs) node.xattrs = entry.xattrs;
        if (entry.type === 'symlink') {
          if (!entry.linkTarget) fail(path, 'symlink without a target');
          node.linkTarget = entry.linkTarget;
        } else if (entry.type === 'hardlink') {
          const target = normalizeMemberPath(entry.linkTarget ?? '');
          if (!target) fail(path, `hardlink to ${JSON.stringify(entry.linkTarget)} points outside the tree`);
          const linked = nodes.get(target);
          if (!linked || linked.owner !== pkg.name) fail(path, `hardlink to ${displayName(target)}, which this package has not installed before it`);
          if (linked.type !== 'file') fail(path, `hardlink to ${displayName(target)}, which is a ${linked.type}`);
          node.linkTarget = target;
        } else if (entry.type === 'char' || entry.type === 'block') {
          node.devMajor = entry.devMajor ?? 0;
          node.devMinor = entry.devMinor ?? 0;
        } else if (entry.type === 'file') {
          const sha = createHash('sha256');
          const md5 = !pkginfo || backupPaths.has(path) ? createHash('md5') : undefined;
          let offset: number | undefined;
          let size = 0;
          for await (const chunk of entry.content()) {
            size += chunk.length;
            if (packageBytes + size > budget || total + packageBytes + size > maxTotal) {
              const limit = total + packageBytes + size > maxTotal ? `configured limit of ${maxTotal}` : `declared installed size of ${pkg.isize ?? 0}`;
              throw new UserError(`${what}: ${displayName(path)}: contents exceed the ${limit} bytes (decompression bomb?)`);
            }
            sha.update(chunk);
            md5?.update(chunk);
            const at = spool.append(chunk);
            offset ??= at;
          }
          packageBytes += size;
          node.size = size;
          node.open = spool.opener(offset ?? 0, size);
          contentDigests.set(path, { size, sha256: sha.digest('hex'), ...(md5 ? { md5: md5.digest('hex') } : {}) });
        }
        nodes.set(path, node);
      }
      total += packageBytes;

      if (!pkginfo) throw new UserError(`${what}: no .PKGINFO (not a package)`);
      if (pkginfo.pkgname !== pkg.name || pkginfo.pkgver !== pkg.version) {
        throw new UserError(`${what}: .PKGINFO names ${pkginfo.pkgname} ${pkginfo.pkgver}, but the lock expects ${pkg.name} ${pkg.version}`);
      }
      if (meta.mtree) checkMtree(meta.mtree.content, contentDigests, what);
      for (const [path, { sha256 }] of contentDigests) {
        const node = nodes.get(path);
        if (node?.owner === pkg.name && node.type === 'file') fileDigests.set(path, sha256);
      }
      // Every backup entry is recorded, in .PKGINFO order, with the md5 of the file as installed. One that was not
      // extracted (NoExtract, not in the package, not a regular file) keeps libalpm's NULL hash, which glibc's
      // printf writes as "(null)".
      const backup: [string, string][] = [];
      for (const raw of pkginfo.backup) {
        const path = alpmTrim(raw);
        const node = nodes.get(path);
        const target = node?.owner === pkg.name && node.type === 'hardlink' ? node.linkTarget! : path;
        const digests = node?.owner === pkg.name ? contentDigests.get(target) : undefined;
        const linked = digests && !digests.md5 ? nodes.get(target) : undefined;
        const md5 = digests?.md5 ?? (linked ? await md5Of(linked) : undefined);
        backup.push([path, md5 ?? NULL_HASH]);
      }
      installed.push({ pkginfo, reason: pkg.reason, validation: pkg.validation, files, backup, ...meta });
      progress.advance();
    }

    for (const entry of localDbEntries(installed, options.sourceDateEpoch)) {
      for (const parent of parentPaths(entry.path)) {
        const node = nodes.get(parent);
        if (node && node.type !== 'dir') throw new UserError(`package ${node.owner}: ${displayName(parent)}: a ${node.type} where pacman's local database needs a directory`);
        if (!node) nodes.set(parent, { path: parent, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: options.sourceDateEpoch, size: 0, owner: '' });
      }
      const existing = nodes.get(entry.path);
      if (existing && !(existing.type === 'dir' && entry.type === 'dir')) throw new UserError(`package ${ownerName(existing)}: ${displayName(entry.path)}: collides with pacman's local database`);
      if (!existing) nodes.set(entry.path, { ...entry, owner: '' });
    }
    return { entries: sortWithHardlinks(nodes), packages: installed, spool, fileDigests, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  } finally {
    progress.stop();
  }
}

/**
 * The package file's bytes and, once the installer has read what it needs, the check that all of them match
 * the lock's sha256 (and size): the tar's end is not the file's.
 */
async function openPackage(pkg: PackageToInstall, what: string): Promise<{ chunks: () => AsyncIterable<Buffer>; verify: () => Promise<void> }> {
  if (!pkg.sha256) return { chunks: () => createReadStream(pkg.file), verify: async () => {} };
  try {
    const file = await VerifiedFile.open(pkg.file, `sha256:${pkg.sha256}`, pkg.csize);
    return { chunks: () => file.chunks(), verify: () => file.verify(`${what} (${pkg.file})`) };
  } catch (err) {
    throw new UserError(`${what}: cannot read ${pkg.file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/**
 * The tar's entries, then (or when the reader stops early) the verdict on every byte of the file: the tar's
 * end-of-archive is not the file's end, and a file that does not match explains a failed read best.
 */
async function* readToTheEnd<T>(entries: AsyncIterable<T>, source: { verify: () => Promise<void> }): AsyncGenerator<T> {
  try {
    yield* entries;
  } finally {
    await source.verify(); // a mismatch replaces the reader's own error
  }
}

/** Package metadata members by name; libalpm ignores every other path that starts with '.'. */
const METADATA = new Map<string, 'pkginfo' | 'mtree' | 'install' | 'changelog'>([
  ['.PKGINFO', 'pkginfo'],
  ['.MTREE', 'mtree'],
  ['.INSTALL', 'install'],
  ['.CHANGELOG', 'changelog'],
]);

/** What libalpm writes for a backup file it did not extract: printf("%s", NULL) in glibc. */
const NULL_HASH = '(null)';

function ownerName(node: TreeNode): string {
  return node.owner || "pacman's local database";
}


/** Every regular file must match the size and sha256 its package's .MTREE declares ("sizes that lie"). */
function checkMtree(mtree: Buffer, contents: Map<string, { size: number; sha256: string }>, what: string): void {
  for (const entry of parseMtree(mtree, `${what}: .MTREE`)) {
    if (entry.type !== 'file' || entry.path.startsWith('.')) continue;
    const actual = contents.get(entry.path);
    if (!actual) continue; // NoExtract, or a hardlink recorded as a file
    if (entry.size !== undefined && entry.size !== actual.size) throw new UserError(`${what}: ${displayName(entry.path)}: ${actual.size} bytes, but .MTREE says ${entry.size}`);
    if (entry.sha256 !== undefined && entry.sha256 !== actual.sha256) throw new UserError(`${what}: ${displayName(entry.path)}: content does not match the sha256 in .MTREE`);
  }
}
