import { createHash } from 'node:crypto';
import { discard } from '../oci/digest.js';
import type { EntryType } from '../tar/entry.js';
import { readTar, type ReadEntry } from '../tar/reader.js';

/** What a diff compares of one tar member: every header field that reaches the filesystem, and the content. */
export interface EntrySummary {
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  /** xattr name → hex value. */
  xattrs?: Record<string, string>;
  /** sha256 of the content, for regular files. */
  sha256?: string;
  /** Position in the archive. */
  index: number;
}

export interface LayerIndex {
  entries: Map<string, EntrySummary>;
  /** Member order as found (for order-only differences). */
  order: string[];
  /** Contents of small files that a pacman-aware diff wants (var/lib/pacman/local/…), kept in memory. */
  pacmanDb: Map<string, Buffer>;
}

const PACMAN_LOCAL = 'var/lib/pacman/local/';

/** Hands a file's content (of `size` bytes) to a second pass over a layer, e.g. to write it out. */
export type OnFile = (path: string, content: AsyncIterable<Buffer>, size: number) => Promise<void>;

/** Sees every member but the root as read, with its summary (content hashed), after onFile had its content. */
export type OnEntry = (entry: ReadEntry, summary: EntrySummary) => void;

/**
 * Streams a layer's uncompressed tar once (see readLayer, which verifies it) and summarizes every member;
 * contents are hashed, not kept, except pacman's local database files, which name the owner of every path.
 */
export async function indexLayer(tar: AsyncIterable<Buffer>, what: string, onFile?: OnFile, onEntry?: OnEntry): Promise<LayerIndex> {
  const entries = new Map<string, EntrySummary>();
  const order: string[] = [];
  const pacmanDb = new Map<string, Buffer>();
  let index = 0;
  for await (const entry of readTar(tar, { what })) {
    const path = entry.name.replace(/^\.\//, '').replace(/\/+$/, '');
    if (path === '' || path === '.') continue;
    const summary: EntrySummary = { path, type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, size: entry.size, mtime: entry.mtime, index: index++ };
    if (entry.linkTarget !== undefined) summary.linkTarget = entry.linkTarget;
    if (entry.devMajor !== undefined) summary.devMajor = entry.devMajor;
    if (entry.devMinor !== undefined) summary.devMinor = entry.devMinor;
    if (entry.xattrs) summary.xattrs = Object.fromEntries(Object.entries(entry.xattrs).map(([k, v]) => [k, v.toString('hex')]));
    if (entry.type === 'file') {
      const hash = createHash('sha256');
      const keep = path.startsWith(PACMAN_LOCAL) && entry.size < 16 * 1024 * 1024;
      const kept: Buffer[] = [];
      const content = (async function* () {
        for await (const chunk of entry.content()) {
          hash.update(chunk);
          if (keep) kept.push(chunk);
          yield chunk;
        }
      })();
      if (onFile) await onFile(path, content, entry.size);
      else await discard(content);
      summary.sha256 = hash.digest('hex');
      if (keep) pacmanDb.set(path, Buffer.concat(kept));
    }
    onEntry?.(entry, summary);
    entries.set(path, summary);
    order.push(path);
  }
  return { entries, order, pacmanDb };
}
