import { compareMemberNames, type TarSourceEntry } from '../tar/entry.js';

/** A file tree ready to become a layer: entries in member-name byte order, contents opened lazily. */
export interface RootfsTree {
  entries: TarSourceEntry[];
  /** Removes scratch files that back the contents. */
  cleanup(): Promise<void>;
}

/**
 * How to read metadata from a directory, where owners are an accident of who ran the build and permission
 * bits of a version-control checkout depend on the umask it was made under.
 */
export interface DirectoryRules {
  /** Keep the uid/gid found on disk instead of 0:0. */
  preserveOwnership?: boolean;
  /** Owner for a path and everything below it; the longest matching path wins. */
  owners?: { path: string; uid: number; gid: number }[];
  /** Keep only what git keeps: files 0755 when executable by their owner, else 0644; directories 0755. */
  normalizeModes?: boolean;
}

export function normalizedMode(type: string, mode: number): number {
  if (type === 'dir') return 0o755;
  if (type === 'symlink') return 0o777;
  return mode & 0o100 ? 0o755 : 0o644;
}

export function ownerFor(path: string, rules: DirectoryRules, onDisk: { uid: number; gid: number }): { uid: number; gid: number } {
  let best: { path: string; uid: number; gid: number } | undefined;
  for (const rule of rules.owners ?? []) {
    const p = rule.path.replace(/^\/+|\/+$/g, '');
    if ((p === '' || path === p || path.startsWith(`${p}/`)) && (!best || p.length > best.path.length)) best = { ...rule, path: p };
  }
  if (best) return { uid: best.uid, gid: best.gid };
  return rules.preserveOwnership ? onDisk : { uid: 0, gid: 0 };
}

/**
 * Sorts entries into member-name byte order and makes every hardlink follow the member that carries the
 * content: in each group of linked paths, the first in sorted order becomes the file and the others link to
 * it. `byPath` must hold every entry; links must point at regular files.
 */
export function sortWithHardlinks<T extends TarSourceEntry>(byPath: Map<string, T>): T[] {
  const entries = [...byPath.values()].sort(compareMemberNames);
  const groups = new Map<string, T[]>();
  for (const entry of entries) {
    const key = entry.type === 'hardlink' ? entry.linkTarget! : entry.type === 'file' ? entry.path : undefined;
    if (key !== undefined) groups.set(key, [...(groups.get(key) ?? []), entry]);
  }
  for (const [filePath, members] of groups) {
    const file = byPath.get(filePath)!;
    const first = members[0]!;
    if (first === file) continue;
    const { open, size, mode, uid, gid, mtime, xattrs } = file;
    Object.assign(first, { type: 'file', size, mode, uid, gid, mtime, xattrs, open });
    delete first.linkTarget;
    for (const other of members.slice(1)) {
      other.type = 'hardlink';
      other.linkTarget = first.path;
      other.size = 0;
      delete other.open;
    }
  }
  return entries;
}
