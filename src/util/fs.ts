import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, lstatSync, readdirSync, rmSync, type Stats } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { OWNER_MARK, ownerIsGone, ownerMark } from './process-owner.js';
import { writeFailure } from './fs-error.js';

/**
 * Temporary paths that exist only while an operation runs. If the process is interrupted (SIGINT, SIGTERM) they
 * are removed before it exits, so an interrupted build leaves neither output nor debris beside it.
 */
const temporaries = new Set<string>();
let signalsHandled = false;

/** Ends the process at once (a signal, or a crash the CLI could not handle) without leaving temporaries behind. */
export function removeTemporariesAndExit(code: number): never {
  for (const path of temporaries) rmSync(path, { recursive: true, force: true });
  process.exit(code);
}

/**
 * Makes SIGINT and SIGTERM remove the temporaries and exit 130 and 143. The CLI calls it first thing, so that an
 * interrupt exits the same way however early it comes; library users get it with their first temporary.
 */
export function handleInterrupts(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  process.once('SIGINT', () => removeTemporariesAndExit(130));
  process.once('SIGTERM', () => removeTemporariesAndExit(143));
}

function track(path: string): string {
  temporaries.add(path);
  handleInterrupts();
  return path;
}

/**
 * Temporaries carry their owner's mark in their name (see process-owner.ts), so that what a killed process left
 * can be told apart from what a running one uses: `repro-oci-PREFIX-MARK-XXXXXX` in TMPDIR, `.NAME.tmp-MARK-HEX`
 * beside an output. Without a mark (no /proc) they are named as before and never swept.
 */
const marked = (): string => {
  const mark = ownerMark();
  return mark === undefined ? '' : `${mark}-`;
};
const SCRATCH_NAME = new RegExp(`^repro-oci-[a-z][a-z0-9-]*-${OWNER_MARK}-[A-Za-z0-9]{6}$`);
const SIBLING_NAME = new RegExp(`^\\..+\\.tmp-${OWNER_MARK}-[0-9a-f]{12}$`, 's');

/**
 * Removes the entries of `dir` that `pattern` names as temporaries of a process that is gone — only those that
 * are ours: owned by our uid and of the kind we make (lstat: a symlink is never followed, nor removed). Best
 * effort: a temporary that cannot be removed now is left for a later run.
 */
function sweepAbandoned(dir: string, pattern: RegExp, isOurKind: (info: Stats) => boolean): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const mark = pattern.exec(name);
    if (!mark || !ownerIsGone(mark[1]!, mark[2]!, mark[3]!)) continue;
    const path = join(dir, name);
    try {
      const info = lstatSync(path);
      if (info.uid === process.getuid?.() && isOurKind(info)) removeTreeSync(path);
    } catch {
      // gone meanwhile (another run swept it), or not removable by us: not ours to insist on
    }
  }
}

/** Removes the scratch directories in TMPDIR (and memory scratch) that processes killed before their cleanup left behind. */
export function sweepAbandonedScratchDirs(): void {
  for (const dir of new Set([tmpdir(), memoryScratchSetting()].filter((d): d is string => d !== undefined))) sweepAbandoned(dir, SCRATCH_NAME, (info) => info.isDirectory());
}

/** Directories whose abandoned temporaries this process has already swept (once each is enough). */
const sweptDirs = new Set<string>();

/**
 * A temporary sibling of `path`, on the same filesystem so that rename() is atomic. The first time a process
 * writes into a directory, the temporaries that killed processes left there are removed.
 */
export function siblingTempPath(path: string): string {
  const dir = dirname(path);
  if (!sweptDirs.has(dir)) {
    sweptDirs.add(dir);
    sweepAbandoned(dir, SIBLING_NAME, (info) => info.isFile() || info.isDirectory());
  }
  return track(join(dir, `.${basename(path)}.tmp-${marked()}${randomBytes(6).toString('hex')}`));
}

/** Forgets a temporary path once it was renamed into place or removed. */
export function settled(path: string): void {
  temporaries.delete(path);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Fills a temp sibling of `path` with `fill` and renames it into place only if that succeeded. */
async function replaceAtomically(path: string, fill: (temp: string) => Promise<void>): Promise<void> {
  const temp = siblingTempPath(path);
  try {
    await fill(temp);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw writeFailure(err, path, temp);
  } finally {
    settled(temp);
  }
}

/** Writes a small file all-or-nothing: a temp sibling, fsync, then rename over the target. */
export function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  return replaceAtomically(path, async (temp) => {
    await writeFile(temp, data, { mode: 0o644 });
    const handle = await open(temp, 'r+');
    await handle.sync();
    await handle.close();
  });
}

/** Streams into a temp sibling and renames it into place only when the whole stream succeeded. */
export function streamToFileAtomic(path: string, source: Readable | AsyncIterable<Buffer>, transforms: NodeJS.ReadWriteStream[] = []): Promise<void> {
  return replaceAtomically(path, (temp) => pipeline([source, ...transforms, createWriteStream(temp, { mode: 0o644 })] as NodeJS.ReadWriteStream[]));
}

/** statfs's f_type of a tmpfs (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994;

/** Where trees may be written in memory: REPRO_OCI_MEMORY_SCRATCH (a directory on a tmpfs; `off` for never), else /dev/shm. */
function memoryScratchSetting(): string | undefined {
  const setting = process.env.REPRO_OCI_MEMORY_SCRATCH;
  if (setting === 'off') return undefined;
  return setting || '/dev/shm';
}

/**
 * A directory in memory for scratch that holds whole trees (the copies setup commands run on, the layers scriptlets
 * and hooks run on), when there is room: a tmpfs with `reserve` bytes free (the copies and all their commands may
 * add) and a machine with `copies` bytes of memory available beyond 1 GiB. Creating tens of thousands of files costs
 * several times more on a disk's file system than in memory, and the copies live only while their commands run.
 * Otherwise undefined: the scratch goes to TMPDIR.
 */
export async function memoryScratchParent(copies: number, reserve: number): Promise<string | undefined> {
  const dir = memoryScratchSetting();
  if (dir === undefined) return undefined;
  try {
    const fs = await statfs(dir);
    if (fs.type !== TMPFS_MAGIC || fs.bavail * fs.bsize < reserve) return undefined;
    const available = /^MemAvailable:\s+(\d+) kB$/m.exec(await readFile('/proc/meminfo', 'latin1'));
    return available && Number(available[1]) * 1024 >= copies + 2 ** 30 ? dir : undefined;
  } catch {
    return undefined; // no such directory, no /proc: TMPDIR it is
  }
}

/** Gives every directory of a tree to its owner to change (never through a symlink): what a scratch tree needs to be removed. */
function openDirectoriesSync(path: string | Buffer): void {
  const info = lstatSync(path, { throwIfNoEntry: false });
  if (!info?.isDirectory()) return;
  chmodSync(path, 0o700);
  for (const name of readdirSync(path, { encoding: 'buffer' })) openDirectoriesSync(Buffer.concat([Buffer.from(path), Buffer.from('/'), name]));
}

/**
 * rmSync of a tree, which may hold directories nobody may change: overlayfs leaves its work directory mode 000
 * (overlay.ts), and a scriptlet may leave anything.
 */
function removeTreeSync(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    openDirectoriesSync(path);
    rmSync(path, { recursive: true, force: true });
  }
}

function rmTree(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn('rm', ['-rf', '--one-file-system', '--', path], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code === 0));
  });
}

/**
 * Removes a scratch tree with rm(1): a tree of tens of thousands of entries goes several times faster than by
 * node's recursive rm, and off this thread; again after opening its directories when rm could not. rmSync where
 * there is no rm.
 */
async function removeTree(path: string): Promise<void> {
  try {
    if (await rmTree(path)) return;
    openDirectoriesSync(path);
    if (!(await rmTree(path))) throw new UserError(`cannot remove the scratch directory ${path}`);
  } catch (err) {
    if (err instanceof UserError) throw err;
    removeTreeSync(path);
  }
}

/** A private scratch directory (in TMPDIR, or in `parent`), removed by the returned cleanup. */
export async function makeScratchDir(prefix: string, parent = tmpdir()): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = track(await mkdtemp(join(parent, `repro-oci-${prefix}-${marked()}`)).catch((err: unknown) => {
    throw writeFailure(err, parent);
  }));
  return {
    path,
    cleanup: async () => {
      await removeTree(path);
      settled(path);
    },
  };
}

/** Reads a whole text file the user named; a failure is one line saying which file and why. */
export async function readUserFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = { ENOENT: 'no such file', EISDIR: 'is a directory', EACCES: 'permission denied', ENOTDIR: 'a parent is not a directory' }[code ?? ''];
    throw new UserError(`${what} ${path}: cannot be read (${why ?? code ?? (err as Error).message})`);
  }
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir never returns where a directory exists but refuses new
 * names with ENOENT (/proc). A failure is one line naming the path.
 */
export async function ensureDir(path: string): Promise<void> {
  const missing: string[] = [];
  for (let at = path; ; at = dirname(at)) {
    const info = await stat(at).catch(() => undefined);
    if (info?.isDirectory() || dirname(at) === at) break;
    missing.unshift(at);
  }
  for (const dir of missing) {
    await mkdir(dir).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw writeFailure(err, dir);
    });
    if (!(await stat(dir)).isDirectory()) throw new UserError(`${dir}: cannot write: not a directory`);
  }
}

/** Reads a whole stream that is known to be small (JSON documents), refusing more than `limit` bytes. */
export async function readSmall(source: AsyncIterable<Buffer>, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > limit) throw new UserError(`${what}: larger than the ${limit}-byte limit`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
