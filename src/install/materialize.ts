import { chmodSync, chownSync, closeSync, createWriteStream, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, symlinkSync, utimesSync, writeSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.js';
import type { ContentOpener } from '../tar/entry.js';
import { displayName, encodeName, fsPath } from '../util/raw-name.js';
import type { TreeNode } from './installer.js';
import { settled, siblingTempPath } from '../util/fs.js';
import { systemReason } from '../util/fs-error.js';
import { applyXattrs, XattrFailures } from './xattrs.js';

export interface MaterializeReport {
  written: number;
  /** What could not be applied with this user's privileges (owners, device nodes, xattrs), by kind. */
  skipped: Map<string, number>;
}

/** One buffer for every spooled copy: contents are local and in the page cache, so a synchronous copy is cheapest. */
const COPY_BUFFER = Buffer.allocUnsafe(1024 * 1024);

/** Copies spooled content into a new file and returns it open: its owner, mode and times are then set through the descriptor. */
function copySpooled(read: NonNullable<ContentOpener['readSync']>, size: number, target: Buffer): number {
  const fd = openSync(target, 'wx', 0o600);
  try {
    let done = 0;
    while (done < size) {
      const n = read(done, COPY_BUFFER, 0, Math.min(COPY_BUFFER.length, size - done));
      if (n === 0) throw new Error(`${target.toString()}: spooled content ends at ${done} of ${size} bytes`);
      for (let w = 0; w < n; ) w += writeSync(fd, COPY_BUFFER, w, n - w);
      done += n;
    }
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Writes the tree to `root` all-or-nothing: into a temporary sibling, renamed into place once complete (over an
 * empty `root`, whose mode it keeps). On any failure the sibling is removed, and so are parent directories this
 * call created: the root is left as it was. A file-system error is one line naming the entry.
 */
export async function materialize(entries: TreeNode[], root: string, mapOwner?: OwnerMap): Promise<MaterializeReport> {
  let entry: TreeNode | undefined;
  try {
    return await materializeAtomically(entries, resolve(root), root, (current) => (entry = current), mapOwner);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof UserError || typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw err;
    throw new UserError(`--root ${root}: ${entry ? `cannot write ${displayName(`/${entry.path}`)}: ` : ''}${systemReason(err)}`);
  }
}

async function materializeAtomically(entries: TreeNode[], target: string, root: string, visiting: (node: TreeNode | undefined) => void, mapOwner?: OwnerMap): Promise<MaterializeReport> {
  const info = await lstat(target).catch(() => undefined);
  if (info && !info.isDirectory()) throw new UserError(`--root ${root}: exists and is not a directory`);
  if (info && (await readdir(target)).length > 0) throw new UserError(`--root ${root}: not empty`);
  const createdParent = await mkdir(dirname(target), { recursive: true });
  const temp = siblingTempPath(target);
  try {
    await mkdir(temp, { mode: 0o700 });
    const report = await writeNodes(entries, temp, visiting, mapOwner);
    visiting(undefined);
    await chmod(temp, info ? info.mode & 0o7777 : 0o755);
    await rename(temp, target);
    return report;
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    if (createdParent) await rm(createdParent, { recursive: true, force: true });
    throw err;
  } finally {
    settled(temp);
  }
}

/** Who owns what is written: the model's owners (default), or those mapped, e.g. root to a sandbox's own uid. */
export type OwnerMap = (uid: number, gid: number) => [number, number];

/** The owner map that gives root's entries (uid or gid 0) to `owner`, e.g. a sandbox's own uid, mapped back to 0 inside it. */
export function rootOwnedBy(owner: { uid: number; gid: number }): OwnerMap {
  return (uid, gid) => [uid === 0 ? owner.uid : uid, gid === 0 ? owner.gid : gid];
}

/**
 * Writes the tree's entries into an empty directory; `visiting` learns which entry is being written. Entries come
 * in sorted order, so parents exist before children; nothing is ever written through a symlink (the tree model has
 * none in a parent position, and files are created exclusively). Directory metadata is applied last, deepest first.
 * System calls are synchronous: a tree is tens of thousands of small local calls, and a thread-pool round trip
 * each would cost more than the calls themselves.
 */
export async function writeNodes(entries: TreeNode[], root: string, visiting: (node: TreeNode) => void, mapOwner: OwnerMap = (uid, gid) => [uid, gid]): Promise<MaterializeReport> {
  const isRoot = process.getuid?.() === 0;
  const skipped = new Map<string, number>();
  const skip = (kind: string): void => {
    skipped.set(kind, (skipped.get(kind) ?? 0) + 1);
  };
  const xattrFailures = new XattrFailures();
  let written = 0;
  const dirs: TreeNode[] = [];
  for (const node of entries) {
    visiting(node);
    const target = fsPath(root, node.path);
    let fd: number | undefined;
    switch (node.type) {
      case 'dir':
        mkdirSync(target, { mode: 0o700 });
        dirs.push(node);
        break;
      case 'file':
        if (node.open?.readSync) fd = copySpooled(node.open.readSync, node.size, target);
        else await pipeline(node.open ? Readable.from(await node.open()) : Readable.from([]), createWriteStream(target, { flags: 'wx', mode: 0o600 }));
        break;
      case 'symlink':
        symlinkSync(encodeName(node.linkTarget!), target);
        break;
      case 'hardlink':
        linkSync(fsPath(root, node.linkTarget!), target);
        break;
      default:
        skip(`${node.type} device or fifo nodes (need mknod)`);
        continue;
    }
    written++;
    if (node.type === 'hardlink') continue;
    try {
      const [uid, gid] = mapOwner(node.uid, node.gid);
      if (isRoot) {
        if (fd !== undefined) fchownSync(fd, uid, gid);
        else (node.type === 'symlink' ? lchownSync : chownSync)(target, uid, gid);
      } else if (uid !== process.getuid?.() || gid !== process.getgid?.()) skip('owners (need root)');
      if (node.xattrs) await applyXattrs(root, node.path, node.type, node.xattrs, xattrFailures);
      // After the owner: chown clears set-id bits.
      if (node.type === 'file') {
        if (fd !== undefined) {
          fchmodSync(fd, node.mode);
          futimesSync(fd, node.mtime, node.mtime);
        } else {
          chmodSync(target, node.mode);
          utimesSync(target, node.mtime, node.mtime);
        }
      } else if (node.type === 'symlink') {
        lutimesSync(target, node.mtime, node.mtime);
      }
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  finishDirectories(dirs, root, visiting);
  if (xattrFailures.count > 0) skipped.set(xattrFailures.summary(), xattrFailures.count);
  return { written, skipped };
}

/** Gives directories written in tree order their modes and times, deepest first: after everything in them is written. */
export function finishDirectories(dirs: TreeNode[], root: string, visiting: (node: TreeNode) => void = () => {}): void {
  for (const node of [...dirs].reverse()) {
    visiting(node);
    const target = fsPath(root, node.path);
    chmodSync(target, node.mode);
    utimesSync(target, node.mtime, node.mtime);
  }
}
