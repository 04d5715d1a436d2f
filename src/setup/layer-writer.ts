import { closeSync, openSync, readSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { TreeNode } from '../install/installer.js';
import { rootOwnedBy, writeNodes } from '../install/materialize.js';

/**
 * Writes part of a layer's files on a thread of its own (overlay.ts): a base-size layer is tens of thousands of
 * files, written while both runs wait for it and the machine's other core is idle. Only entries whose content is a
 * byte range of a local file (a spool) go here, described by plain data; the thread reads that range itself.
 */

/** A non-directory entry as the thread gets it. */
type PlainEntry = Omit<TreeNode, 'open'> & { spooled?: { file: string; offset: number } };

interface Job {
  root: string;
  owner?: { uid: number; gid: number };
  entries: PlainEntry[];
}

/**
 * Whether an entry can be written by the thread: no content, or content it can read where it is; and no extended
 * attributes (their native module is left to the main thread).
 */
export function writableElsewhere(node: TreeNode): boolean {
  if (node.type === 'dir' || node.type === 'hardlink' || (node.xattrs && Object.keys(node.xattrs).length > 0)) return false;
  return node.type !== 'file' || node.open?.spooled !== undefined || node.size === 0;
}

/** Writes `entries` (their parents exist) under `root` on a new thread; resolves when all are written. */
export function writeOnThread(entries: TreeNode[], root: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  const plain: PlainEntry[] = entries.map(({ open, ...rest }) => ({ ...rest, ...(open?.spooled ? { spooled: open.spooled } : {}) }));
  const job: Job = { root, entries: plain, ...(owner ? { owner } : {}) };
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { layerWriter: job } });
    let done = false;
    worker.on('message', (message: { error?: string; code?: string }) => {
      done = true;
      if (message.error) reject(Object.assign(new Error(message.error), message.code ? { code: message.code } : {}));
      else resolve();
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      if (!done) reject(new Error(`the layer-writing thread exited (${code})`));
    });
  });
}

async function serve(job: Job): Promise<void> {
  const fds = new Map<string, number>();
  const fdOf = (file: string): number => {
    let fd = fds.get(file);
    if (fd === undefined) fds.set(file, (fd = openSync(file, 'r')));
    return fd;
  };
  try {
    const nodes: TreeNode[] = job.entries.map(({ spooled, ...node }) => {
      if (!spooled) return node;
      const readSync_ = (position: number, into: Uint8Array, at: number, length: number): number => {
        const n = Math.min(length, node.size - position);
        return n <= 0 ? 0 : readSync(fdOf(spooled.file), into, at, n, spooled.offset + position);
      };
      return { ...node, open: Object.assign(() => Promise.reject(new Error('read synchronously')), { readSync: readSync_ }) };
    });
    await writeNodes(nodes, job.root, () => {}, job.owner ? rootOwnedBy(job.owner) : undefined);
    parentPort!.postMessage({});
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}

const job = isMainThread ? undefined : (workerData as { layerWriter?: Job } | null)?.layerWriter;
if (job) void serve(job);
