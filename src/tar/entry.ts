import type { Readable } from 'node:stream';
import { compareNames } from '../util/raw-name.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/**
 * One member of a layer, as written and as read. Paths are relative, `/`-separated, without `./`, `..` or a
 * trailing slash (the writer adds the slash to directory names). Paths and link targets are byte strings held as
 * decodeName gives them (util/raw-name.ts): bytes that are not UTF-8 survive as U+DC80–U+DCFF.
 */
export interface TarEntry {
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (0o7777); never the file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, an integer. */
  mtime: number;
  /** Content length for regular files; 0 for every other type. */
  size: number;
  /** Symlink target, or for hardlinks the path of the earlier entry it links to. */
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  /** Extended attributes by name (e.g. `security.capability`), values as raw bytes. */
  xattrs?: Record<string, Buffer>;
  /** Optional owner names; the writer stores them only when set (see docs/tar-format.md). */
  uname?: string;
  gname?: string;
}

/**
 * Opens a regular file's content. An opener may also offer positional synchronous reads (content spooled to a
 * local file); the tar writer then copies straight into its output chunks. It is a property of the opener, not
 * of the entry, so that whoever replaces an entry's content replaces both at once.
 */
export interface ContentOpener {
  (): Readable | Promise<Readable>;
  /** Reads up to `length` bytes at `position` of the content into `into` at `offset`; returns the count (0 at the end). */
  readSync?: (position: number, into: Uint8Array, offset: number, length: number) => number;
  /** Where the content is when it is a byte range of a local file (util/spool.ts): another thread can read it there. */
  spooled?: { file: string; offset: number };
}

/** An entry to write, with a way to open its content when it is a regular file. */
export interface TarSourceEntry extends TarEntry {
  open?: ContentOpener;
}

/** The largest mtime (either side of 1970) an entry may carry: what a Date can hold (±10^8 days), in seconds. */
export const MAX_MTIME = 8_640_000_000_000;
/** The largest uid or gid: uid_t and gid_t are 32 bits, and GNU tar refuses larger ("out of uid_t range"). */
export const MAX_ID = 0xffffffff;

/** Sort key of a member: its name in the archive (directories end in `/`), compared as bytes. */
export function memberName(entry: Pick<TarEntry, 'path' | 'type'>): string {
  return entry.type === 'dir' ? `${entry.path}/` : entry.path;
}

export function compareMemberNames(a: Pick<TarEntry, 'path' | 'type'>, b: Pick<TarEntry, 'path' | 'type'>): number {
  return compareNames(memberName(a), memberName(b));
}

/**
 * Normalizes a member path from an archive or a tree: strips `./` and `/` prefixes and trailing slashes and
 * returns undefined for the root itself. Returns null for a path that escapes (`..` component) or is empty
 * in the middle (`a//b`), which callers report as hostile.
 */
export function normalizeMemberPath(raw: string): string | undefined | null {
  let p = raw;
  while (p.startsWith('./')) p = p.slice(2);
  if (p === '.' || p === '' || p === '/') return undefined;
  if (p.startsWith('/')) return null;
  p = p.replace(/\/+$/, '');
  const parts = p.split('/');
  if (parts.some((part) => part === '..' || part === '' || part === '.')) return null;
  if (p.includes('\0')) return null;
  return p;
}

/** The ancestors of a relative member path, outermost first: `a/b/c` → `a`, `a/b`. */
export function parentPaths(path: string): string[] {
  const out: string[] = [];
  for (let at = path.indexOf('/'); at !== -1; at = path.indexOf('/', at + 1)) out.push(path.slice(0, at));
  return out;
}
