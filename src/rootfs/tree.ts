import type { TarSourceEntry } from '../tar/entry.js';

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
