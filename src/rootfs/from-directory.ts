import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { compareMemberNames, type EntryType, type TarSourceEntry } from '../tar/entry.js';
import { displayName, fsPath, readdirNames, readlinkName } from '../util/raw-name.js';
import { normalizedMode, ownerFor, type DirectoryRules, type RootfsTree } from './tree.js';

/** Linux dev_t split (glibc's gnu_dev_major/minor). */
function devMajor(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function devMinor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'EACCES' ? 'permission denied' : (e.code ?? e.message);
}

/**
 * Reads a directory as a tree. Every input-side accident is normalized away: mtimes become `mtime`
 * (SOURCE_DATE_EPOCH), owners follow the rules (0:0 by default), entries are sorted bytewise, and
 * hardlinked files become one file plus links to its first path in that order. Modes are kept as they are
 * (they are content) unless the rules ask to normalize them. Sockets cannot be archived and are skipped, as tar does.
 * Names keep their raw bytes, UTF-8 or not (util/raw-name.ts).
 */
export async function treeFromDirectory(root: string, options: { mtime: number; rules?: DirectoryRules; warn?: (msg: string) => void }): Promise<RootfsTree> {
  const info = await lstat(root).catch(() => undefined);
  if (!info) throw new UserError(`rootfs ${root}: no such directory`);
  if (!info.isDirectory()) throw new UserError(`rootfs ${root}: not a directory`);
  const entries: (TarSourceEntry & { inode?: string })[] = [];

  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdirNames(fsPath(root, rel));
    } catch (err) {
      throw new UserError(`rootfs ${root}: cannot read directory ${displayName(rel || '.')}: ${describeError(err)}`);
    }
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const full = fsPath(root, path);
      const st = await lstat(full);
      const { uid, gid } = ownerFor(path, options.rules ?? {}, { uid: st.uid, gid: st.gid });
      const base = { path, mode: st.mode & 0o7777, uid, gid, mtime: options.mtime, size: 0 };
      const normalize = options.rules?.normalizeModes === true;
      let type: EntryType;
      if (st.isDirectory()) type = 'dir';
      else if (st.isFile()) type = 'file';
      else if (st.isSymbolicLink()) type = 'symlink';
      else if (st.isCharacterDevice()) type = 'char';
      else if (st.isBlockDevice()) type = 'block';
      else if (st.isFIFO()) type = 'fifo';
      else {
        options.warn?.(`rootfs: ${displayName(path)}: socket ignored`);
        continue;
      }
      const entry: TarSourceEntry & { inode?: string } = { ...base, type };
      if (normalize && (type === 'file' || type === 'dir' || type === 'symlink')) entry.mode = normalizedMode(type, entry.mode);
      if (type === 'file') {
        entry.size = st.size;
        entry.open = () => createReadStream(full);
        if (st.nlink > 1) entry.inode = `${st.dev}:${st.ino}`;
      } else if (type === 'symlink') {
        entry.linkTarget = await readlinkName(full);
      } else if (type === 'char' || type === 'block') {
        entry.devMajor = devMajor(st.rdev);
        entry.devMinor = devMinor(st.rdev);
      }
      entries.push(entry);
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  entries.sort(compareMemberNames);

  const firstPathOfInode = new Map<string, string>();
  for (const entry of entries) {
    if (!entry.inode) continue;
    const first = firstPathOfInode.get(entry.inode);
    if (first === undefined) firstPathOfInode.set(entry.inode, entry.path);
    else {
      entry.type = 'hardlink';
      entry.linkTarget = first;
      entry.size = 0;
      delete entry.open;
    }
    delete entry.inode;
  }
  return { entries, cleanup: async () => {} };
}
