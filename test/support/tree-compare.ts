import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Scanning a root pacman (or repro-oci) installed into and comparing two such trees, field by field, with the only
 * differences accepted between repro-oci's install and pacman's (ALLOWED_DIFFERENCES). Shared by the pacman
 * equivalence test and the scriptlet/hook oracle.
 */


export interface NodeInfo {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  sha256?: string;
  link?: string;
  /** The other paths sharing this file's inode, sorted (hardlink identity). */
  hardlinks?: string;
  /** Text of pacman's database files, for readable differences. */
  text?: string;
}

export const DB = 'var/lib/pacman';

/** Paths left out of the comparison entirely: pacman's own working state, not part of the installed set. */
const EXCLUDED: { path: string; reason: string }[] = [
  { path: `${DB}/sync`, reason: 'pacman -Sy downloads the sync databases there; our installer works from a lock and has none' },
  { path: `${DB}/db.lck`, reason: "pacman's lock file (removed when pacman exits; listed in case a run is interrupted)" },
  // The cache (--cachedir) and log (--logfile /dev/null) are outside the root, so not in the scan at all.
];

export async function scanTree(root: string): Promise<Map<string, NodeInfo>> {
  const out = new Map<string, NodeInfo>();
  const inodes = new Map<number, string[]>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      if (EXCLUDED.some((e) => path === e.path || path.startsWith(`${e.path}/`))) continue;
      const full = join(root, path);
      const st = await lstat(full);
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
      const info: NodeInfo = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : 0, mtime: Math.floor(st.mtimeMs / 1000) };
      if (type === 'file') {
        const bytes = await readFile(full);
        info.sha256 = createHash('sha256').update(bytes).digest('hex');
        if (path.startsWith(`${DB}/`) && !path.endsWith('/mtree')) info.text = bytes.toString('utf8');
        if (st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), path]);
      }
      if (type === 'symlink') info.link = await readlink(full);
      out.set(path, info);
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  for (const group of inodes.values()) for (const path of group) out.get(path)!.hardlinks = group.filter((p) => p !== path).sort().join(' ');
  return out;
}

export interface Difference {
  path: string;
  type: NodeInfo['type'];
  field: string;
  ours: unknown;
  pacman: unknown;
}

export interface AllowedDifference {
  path: RegExp;
  field: string;
  /** Further condition on the difference (default: any). */
  when?: (d: Difference) => boolean;
  reason: string;
}

/**
 * The ONLY accepted differences between pacman's install and ours. Anything else is a bug in the installer or the
 * local database writer.
 */
export const ALLOWED_DIFFERENCES: AllowedDifference[] = [
  {
    path: /^var\/lib\/pacman\/local\/[^/]+\/desc$/,
    field: 'desc %INSTALLDATE%',
    reason: 'pacman 6.0.2 writes the wall clock at install time; we write SOURCE_DATE_EPOCH so that the layer is reproducible',
  },
  {
    path: /^var\/lib\/pacman\/local\/[^/]+\/desc$/,
    field: 'desc %XDATA%',
    when: (d) => d.pacman === undefined,
    reason: "Debian's pacman 6.0.2 neither reads nor writes xdata; our writer follows pacman >= 6.1, which records .PKGINFO xdata (makepkg 6.0.2 writes none, so this corpus does not trigger it)",
  },
  {
    path: /./,
    field: 'mtime',
    when: (d) => d.type === 'dir',
    reason: 'directory mtimes: pacman creates directories (the database directories, parents it makes for NoExtract survivors) at the wall clock, and every file later extracted into a directory moves its mtime to the clock; we use SOURCE_DATE_EPOCH or the package mtime',
  },
  {
    path: /^var\/lib\/pacman\/local\/(ALPM_DB_VERSION|[^/]+\/(desc|files))$/,
    field: 'mtime',
    reason: 'pacman writes ALPM_DB_VERSION, desc and files at install time (wall clock); we use SOURCE_DATE_EPOCH (mtree, install and changelog keep the package mtime on both sides)',
  },
];

/** Whether a difference is one of ALLOWED_DIFFERENCES (or of a test's own `extra` ones). */
export function isAllowed(d: Difference, extra: AllowedDifference[] = []): boolean {
  return [...ALLOWED_DIFFERENCES, ...extra].some((a) => a.field === d.field && a.path.test(d.path) && (a.when?.(d) ?? true));
}

/** `%KEY%` blocks of a desc file in order, each with the raw text up to the next key line (values and blank lines). */
function descBlocks(text: string): [string, string][] {
  const blocks: [string, string][] = [];
  for (const line of text.split('\n')) {
    if (/^%[A-Z0-9_]+%$/.test(line)) blocks.push([line, '']);
    else if (blocks.length) blocks[blocks.length - 1]![1] += `${line}\n`;
    else blocks.push(['(before the first key)', `${line}\n`]);
  }
  return blocks;
}

function compareDesc(path: string, ours: string, pacman: string, diffs: Difference[]): void {
  const a = descBlocks(ours);
  const b = descBlocks(pacman);
  const keys = [...new Set([...a.map(([k]) => k), ...b.map(([k]) => k)])];
  const differing = new Set<string>();
  for (const key of keys) {
    const x = a.find(([k]) => k === key)?.[1];
    const y = b.find(([k]) => k === key)?.[1];
    if (x !== y) {
      differing.add(key);
      diffs.push({ path, type: 'file', field: `desc ${key}`, ours: x, pacman: y });
    }
  }
  // With the differing blocks taken out, the rest must be the same bytes (field order, separators, trailing newline).
  const strip = (text: string): string => descBlocks(text).filter(([k]) => !differing.has(k)).map(([k, v]) => `${k}\n${v}`).join('');
  if (strip(ours) !== strip(pacman)) diffs.push({ path, type: 'file', field: 'desc layout', ours, pacman });
}

export function compareTrees(ours: Map<string, NodeInfo>, pacman: Map<string, NodeInfo>): Difference[] {
  const diffs: Difference[] = [];
  const paths = [...new Set([...ours.keys(), ...pacman.keys()])].sort();
  for (const path of paths) {
    const a = ours.get(path);
    const b = pacman.get(path);
    if (!a || !b) {
      diffs.push({ path, type: (a ?? b)!.type, field: 'presence', ours: a ? a.type : 'missing', pacman: b ? b.type : 'missing' });
      continue;
    }
    const d = (field: string, x: unknown, y: unknown): void => {
      if (x !== y) diffs.push({ path, type: b.type, field, ours: x, pacman: y });
    };
    d('type', a.type, b.type);
    if (a.type !== b.type) continue;
    d('mode', a.mode.toString(8), b.mode.toString(8));
    d('uid', a.uid, b.uid);
    d('gid', a.gid, b.gid);
    d('link', a.link, b.link);
    d('hardlinks', a.hardlinks, b.hardlinks);
    d('mtime', a.mtime, b.mtime);
    if (/^var\/lib\/pacman\/local\/[^/]+\/desc$/.test(path)) {
      compareDesc(path, a.text!, b.text!, diffs);
      continue;
    }
    d('size', a.size, b.size);
    if (a.sha256 !== b.sha256) diffs.push({ path, type: b.type, field: 'content', ours: a.text ?? a.sha256, pacman: b.text ?? b.sha256 });
  }
  return diffs;
}

