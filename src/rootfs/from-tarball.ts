import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decompressAuto } from '../compress/index.js';
import { UserError } from '../errors.js';
import { normalizeMemberPath, parentPaths, type TarSourceEntry } from '../tar/entry.js';
import { readTar } from '../tar/reader.js';
import { makeScratchDir } from '../util/fs.js';
import { Spool } from '../util/spool.js';
import { displayName } from '../util/raw-name.js';
import { sortWithHardlinks, type RootfsTree } from './tree.js';

/**
 * Reads a tarball (plain, gzip or zstd) as a tree. Owners, modes, mtimes and xattrs come from the archive.
 * Members that would escape the root (`..`, absolute paths, hardlinks to paths not in the archive) are refused
 * before anything is used. File contents are spooled to a private scratch directory so the layer can be
 * written in sorted order without holding contents in memory.
 */
export async function treeFromTarball(file: string, options: { mtime: number }): Promise<RootfsTree> {
  const info = await stat(file).catch(() => undefined);
  if (!info) throw new UserError(`rootfs ${file}: no such file`);
  if (!info.isFile()) throw new UserError(`rootfs ${file}: not a regular file`);
  const scratch = await makeScratchDir('rootfs');
  const spool = new Spool(join(scratch.path, 'contents'));
  const cleanup = async (): Promise<void> => {
    spool.close();
    await scratch.cleanup();
  };
  const what = `rootfs ${file}`;
  const byPath = new Map<string, TarSourceEntry>();
  try {
    for await (const entry of readTar(decompressAuto(createReadStream(file), what), { what })) {
      const path = normalizeMemberPath(entry.name);
      if (path === null) throw new UserError(`${what}: member ${JSON.stringify(entry.name)} is an absolute path or escapes the root with ..`);
      if (path === undefined) continue; // the root directory itself
      if (byPath.has(path)) throw new UserError(`${what}: member ${displayName(path)} appears twice`);
      const out: TarSourceEntry = { path, type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime, size: entry.size };
      if (entry.linkTarget !== undefined) out.linkTarget = entry.linkTarget;
      if (entry.devMajor !== undefined) out.devMajor = entry.devMajor;
      if (entry.devMinor !== undefined) out.devMinor = entry.devMinor;
      if (entry.xattrs) out.xattrs = entry.xattrs;
      if (entry.type === 'hardlink') {
        const target = normalizeMemberPath(entry.linkTarget ?? '');
        const linked = target ? byPath.get(target) : undefined;
        if (!target || !linked) throw new UserError(`${what}: hardlink ${displayName(path)} points to ${JSON.stringify(entry.linkTarget)}, which is not an earlier member`);
        if (linked.type !== 'file') throw new UserError(`${what}: hardlink ${displayName(path)} points to ${displayName(target)}, which is not a regular file`);
        out.linkTarget = target;
      }
      if (entry.type === 'file' && entry.size > 0) {
        out.open = (await spool.store(entry.content())).open;
      }
      byPath.set(path, out);
    }
    // Parents the archive left implicit become plain directories, so every member has its directory.
    for (const path of [...byPath.keys()]) {
      for (const parent of parentPaths(path)) {
        const existing = byPath.get(parent);
        if (existing && existing.type !== 'dir') throw new UserError(`${what}: ${displayName(path)} is below ${displayName(parent)}, which is a ${existing.type}, not a directory`);
        if (!existing) byPath.set(parent, { path: parent, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: options.mtime, size: 0 });
      }
    }
    const entries = sortWithHardlinks(byPath);
    return { entries, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
