import type { TarSourceEntry } from '../tar/entry.js';

/** A file tree ready to become a layer: entries in member-name byte order, contents opened lazily. */
export interface RootfsTree {
  entries: TarSourceEntry[];
  /** Removes scratch files that back the contents. */
  cleanup(): Promise<void>;
}

/** Ownership rules for trees read from a directory, where on-disk owners are an accident of who ran the build. */
export interface OwnershipRules {
  /** Keep the uid/gid found on disk instead of 0:0. */
  preserve?: boolean;
  /** Owner for a path and everything below it; the longest matching path wins. */
  owners?: { path: string; uid: number; gid: number }[];
}

export function ownerFor(path: string, rules: OwnershipRules, onDisk: { uid: number; gid: number }): { uid: number; gid: number } {
  let best: { path: string; uid: number; gid: number } | undefined;
  for (const rule of rules.owners ?? []) {
    const p = rule.path.replace(/^\/+|\/+$/g, '');
    if ((p === '' || path === p || path.startsWith(`${p}/`)) && (!best || p.length > best.path.length)) best = { ...rule, path: p };
  }
  if (best) return { uid: best.uid, gid: best.gid };
  return rules.preserve ? onDisk : { uid: 0, gid: 0 };
}
