import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, lchown, lstat, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NondeterministicError, UserError } from '../errors.js';
import type { TreeNode } from '../install/installer.js';
import { materialize, rootOwnedBy } from '../install/materialize.js';
import { PathPatterns } from '../install/noextract.js';
import { sortWithHardlinks } from '../rootfs/tree.js';
import { makeScratchDir, memoryScratchParent } from '../util/fs.js';
import type { Spool } from '../util/spool.js';
import { Progress } from '../util/progress.js';
import { startHere, type Spawner } from './spawner.js';
import { displayName, fsPath, readdirNamesSync, readlinkNameSync } from '../util/raw-name.js';
import { DEFAULT_LIMITS, describeLimit, type SandboxLimits } from './limits.js';

/**
 * Runs setup commands inside the tree with bubblewrap: no network, a fixed hostname, a clean environment
 * (SOURCE_DATE_EPOCH, TZ=UTC, LANG=C), under time, disk, memory and process limits (docs/trust-model.md: the
 * commands may come from a stranger's image). The tree is written out twice and the commands run on both copies;
 * any path whose result differs is reported as nondeterministic. What the commands changed is folded back
 * into the model: mtimes clamped to SOURCE_DATE_EPOCH, owners kept from the model (0:0 for new paths).
 */
export interface CommandResult {
  changed: string[];
  removed: string[];
}

export interface Snapshot {
  type: string;
  mode: number;
  size: number;
  ctimeNs: bigint;
  link?: string;
}

/** One path under root as a scan records it (synchronously: a scan makes one such call per entry of a local tree). */
export function snapshotEntry(root: string, path: string): Snapshot {
  const st = lstatSync(fsPath(root, path), { bigint: true });
  const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
  const snap: Snapshot = { type, mode: Number(st.mode & 0o7777n), size: Number(st.size), ctimeNs: st.ctimeNs };
  if (type === 'symlink') snap.link = readlinkNameSync(fsPath(root, path));
  return snap;
}

/** Every path under root, by its name's raw bytes decoded losslessly (util/raw-name.ts), as the tree model holds it. */
export function scan(root: string): Map<string, Snapshot> {
  const out = new Map<string, Snapshot>();
  const walk = (rel: string): void => {
    for (const name of readdirNamesSync(fsPath(root, rel))) {
      const path = rel ? `${rel}/${name}` : name;
      const snap = snapshotEntry(root, path);
      out.set(path, snap);
      if (snap.type === 'dir') walk(path);
    }
  };
  walk('');
  return out;
}

async function fileHash(path: Buffer): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Who the sandbox runs as. As root, a uid of its own (a random one far above real users, the tree's root-owned
 * entries handed to it, mapped back to 0 inside): RLIMIT_NPROC is not enforced for uid 0, and a uid nobody else
 * has also tells exactly which processes are the sandbox's. As any other user, that user (whose own process count
 * RLIMIT_NPROC then bounds).
 */
export interface Identity {
  uid: number;
  gid: number;
  /** Set when the sandbox has a uid of its own. */
  own: boolean;
}

export function sandboxIdentity(): Identity {
  if (process.getuid?.() !== 0) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, own: false };
  const id = randomInt(2 ** 30, 2 ** 31 - 1);
  return { uid: id, gid: id, own: true };
}

/** Hands one entry the transaction made itself to the sandbox's uid and gid, keeping its mode (chown clears set-id bits). */
export async function handOverEntry(path: Buffer, identity: Identity): Promise<void> {
  const st = await lstat(path);
  if (st.uid === 0 || st.gid === 0) {
    await lchown(path, st.uid === 0 ? identity.uid : st.uid, st.gid === 0 ? identity.gid : st.gid);
    if (!st.isSymbolicLink()) await chmod(path, st.mode & 0o7777);
  }
}

/** The sandbox's uid must be able to reach the tree: every directory above it must be searchable by others. */
export async function assertReachable(dir: string): Promise<void> {
  for (let path = dir; ; path = dirname(path)) {
    if (((await stat(path)).mode & 0o001) === 0) throw new UserError(`setup commands run as an unprivileged uid, which cannot reach ${dir}: ${path} is not searchable by others (chmod o+x, or set TMPDIR elsewhere)`);
    if (path === dirname(path)) return;
  }
}

/** The total GNU du prints for `args` (its first field), even when it could not read some of the tree (exit 1). */
function duTotal(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('du', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('latin1').on('data', (chunk: string) => (out += chunk.slice(0, 4096)));
    child.on('error', (err: NodeJS.ErrnoException) => reject(new UserError(err.code === 'ENOENT' ? 'setup commands need du (coreutils), which is not installed' : `du: ${err.message}`)));
    child.on('close', () => {
      const total = /^(\d+)\t/.exec(out);
      if (total) resolve(Number(total[1]));
      else reject(new UserError(`du ${args.join(' ')} gave no total`));
    });
  });
}

/**
 * Bytes the commands account for in the tree: every file's (apparent) size, plus 4 KiB for every entry, so that a
 * swarm of empty files counts too. Measured by GNU du (two passes, at once) rather than a walk here: du is several
 * times cheaper per entry than lstat from node.
 */
export async function treeUsage(root: string): Promise<number> {
  const [bytes, entries] = await Promise.all([duTotal(['-s', '-x', '-B1', '--apparent-size', '--', root]), duTotal(['-s', '-x', '--inodes', '--', root])]);
  return bytes + ENTRY_COST * entries;
}

/** What the file system holding `path` has in use, counted as treeUsage counts a tree: its blocks, 4 KiB per inode. */
async function fileSystemUsage(path: string): Promise<number> {
  const fs = await statfs(path);
  return (fs.blocks - fs.bfree) * fs.bsize + (fs.files - fs.ffree) * ENTRY_COST;
}

/**
 * A tree's usage, checked after every command, scriptlet and hook, and while one runs. du over a base-size tree
 * costs a tenth of a second, most steps write a few bytes: between exact measurements the usage is bounded from
 * above by the last one plus everything the file system has lost since (statfs, whoever wrote it: writes the
 * sandbox makes cannot hide from it). Only when that bound passes the limit is the tree measured again.
 * Sparse files take no blocks, so the bound does not see their apparent size: callers measure exactly before
 * they read what the commands wrote (transaction's end, a copy's scan).
 */
export class TreeUsage {
  private exact = 0;
  private fileSystemAtExact = 0;

  constructor(private readonly root: string) {}

  /** Measures the tree now (the file system's counters first, so that what is written meanwhile counts as growth). */
  async measure(): Promise<number> {
    this.fileSystemAtExact = await fileSystemUsage(this.root);
    this.exact = await treeUsage(this.root);
    return this.exact;
  }

  /** Whether the tree's usage is over `allowed`, measuring it only when the cheap bound cannot rule that out. */
  async exceeds(allowed: number): Promise<boolean> {
    const bound = this.exact + Math.max(0, (await fileSystemUsage(this.root)) - this.fileSystemAtExact);
    return bound > allowed && (await this.measure()) > allowed;
  }
}

export const ENTRY_COST = 4096;
/** How often (at least) a running command's processes and disk use are looked at. */
const WATCH_INTERVAL_MS = 200;
/** The last bytes of each of a command's output streams kept for its error message. */
const OUTPUT_TAIL = 64 * 1024;
/** How much of a failed command's output its error message shows: the last lines, each cut to a length. */
const SHOWN_LINES = 3;
const SHOWN_LINE_LENGTH = 300;

/** The last OUTPUT_TAIL bytes of a stream, as bytes (a character split between chunks is decoded whole). */
class OutputTail {
  private bytes = Buffer.alloc(0);

  keep(chunk: Buffer): void {
    this.bytes = Buffer.concat([this.bytes, chunk]);
    if (this.bytes.length > OUTPUT_TAIL) this.bytes = this.bytes.subarray(this.bytes.length - OUTPUT_TAIL);
  }

  text(): string {
    return this.bytes.toString('utf8');
  }
}

/**
 * The end of a command's output on one line: its last non-empty lines (a carriage return starts a line too, as a
 * progress bar redraws one), each cut short and with control characters escaped (the command may be a stranger's).
 */
function outputEnd(text: string): string {
  return text
    .split(/[\r\n]+/)
    .filter((line) => line.trim() !== '')
    .slice(-SHOWN_LINES)
    .map((line) => displayName(line.length > SHOWN_LINE_LENGTH ? `${line.slice(0, SHOWN_LINE_LENGTH)}…` : line))
    .join(' | ');
}

/** Why a command failed, with the end of its stderr (else of its stdout, saying so). */
function failureMessage(what: string, code: number | null, signal: string | null, stdout: string, stderr: string): string {
  const how = code !== null ? `exit ${code}` : `killed by ${signal ?? 'a signal'}`;
  if (outputEnd(stderr)) return `${what} failed (${how}): ${outputEnd(stderr)}`;
  if (outputEnd(stdout)) return `${what} failed (${how}), nothing on stderr; its output ends: ${outputEnd(stdout)}`;
  return `${what} failed (${how}) with no output`;
}

/**
 * Pids of the processes running as `uid` (the sandbox's own uid: exactly its processes). Synchronously: it is
 * looked at after every command, scriptlet and hook, and /proc's few hundred entries cost microseconds each.
 */
function processesOf(uid: number, living = false): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = statSync(`/proc/${name}`, { throwIfNoEntry: false });
    if (st?.uid !== uid) continue;
    if (living && isZombie(name)) continue;
    pids.push(Number(name));
  }
  return pids;
}

/**
 * Whether a process has exited and waits to be reaped. bubblewrap's own helper ends up a zombie of the machine's
 * init, which may take seconds to reap it: it runs nothing, holds nothing and cannot be killed, so waiting for it
 * would only add those seconds to every command.
 */
function isZombie(pid: string): boolean {
  let stat = '';
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    // gone meanwhile
  }
  return /\) Z /.test(stat) || stat === '';
}

/** Kills every process of the sandbox's own uid, again until none is left (a fork bomb may still be forking). */
export async function killAll(uid: number): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const pids = processesOf(uid, true);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    // Processes the kernel is already taking down with the pid namespace go within a millisecond or two.
    await new Promise((r) => setTimeout(r, round < 10 ? 1 : 10));
  }
}

/** A tree being changed by commands: its root, who runs them, and the usage it started from. */
export interface Sandbox {
  root: string;
  identity: Identity;
  limits: SandboxLimits;
  /** Usage that does not count against the disk limit: the tree as written before the commands. */
  initialUsage: number;
  usage: TreeUsage;
  /** /tmp is the tree's own (as under pacman's chroot), not a private tmpfs. */
  treeTmp?: boolean;
  /** Starts the sandbox's processes from a small process of its own (spawner.ts); else they start from this one. */
  spawner?: Spawner;
  /**
   * A command prefix that enters the namespaces `root` is mounted in (overlay.ts) and, as root, takes the
   * sandbox's uid; else the sandbox starts in this process's namespaces, as its uid.
   */
  enter?: string[];
  /** Another sandbox runs as the same uid at once: processes are counted for both, and none is killed by its uid. */
  sharedUid?: boolean;
}

/** How one sandboxed run is fed and judged. */
export interface RunOptions {
  /** Bytes on its stdin (default: none, end of file at once). */
  stdin?: Buffer;
  /** What it is, in messages (default: setup command ["…"]). */
  what?: string;
  /** A non-zero exit is returned as its message instead of thrown (limits and a sandbox that cannot start still throw). */
  returnFailure?: boolean;
  /**
   * Whether the tree is measured exactly once the command is done (default), or only bounded (TreeUsage): for a
   * caller that runs many short commands in a row and measures exactly itself before it reads what they wrote.
   */
  exactUsage?: boolean;
}

function bwrapArgs(sandbox: Sandbox, command: string[], sourceDateEpoch: number): string[] {
  const { limits, identity } = sandbox;
  const rlimits = [`--as=${limits.memoryBytes}`, `--fsize=${limits.diskBytes}`, `--nproc=${limits.processes}`, '--core=0'];
  return [
    ...rlimits,
    '--',
    'bwrap',
    '--bind', sandbox.root, '/',
    // /dev read-only but its devices usable; /dev/shm and /tmp are memory, so they are bounded like the disk.
    '--dev', '/dev',
    '--size', String(limits.diskBytes), '--tmpfs', '/dev/shm',
    '--remount-ro', '/dev',
    '--proc', '/proc',
    ...(sandbox.treeTmp ? [] : ['--size', String(limits.diskBytes), '--tmpfs', '/tmp']),
    '--unshare-all',
    ...(identity.own ? ['--unshare-user', '--uid', '0', '--gid', '0'] : []),
    '--hostname', 'repro-oci',
    '--die-with-parent',
    '--clearenv',
    '--setenv', 'PATH', '/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin',
    '--setenv', 'SOURCE_DATE_EPOCH', String(sourceDateEpoch),
    '--setenv', 'TZ', 'UTC',
    '--setenv', 'LANG', 'C',
    '--setenv', 'LC_ALL', 'C',
    '--setenv', 'HOME', '/root',
    '--chdir', '/',
    '--',
    ...command,
  ];
}

type Stop = 'timeoutMs' | 'diskBytes' | 'fileSize' | 'processes';

const STOP_REASONS: Record<Stop, string> = {
  timeoutMs: 'it ran longer than the time limit',
  diskBytes: 'it wrote more than the disk limit',
  fileSize: 'it wrote a file larger than the disk limit',
  processes: 'it reached the process limit',
};

/** How a command killed by SIGXFSZ (RLIMIT_FSIZE) exits, through bubblewrap or a shell: 128 + 25. */
const SIGXFSZ_EXIT = 153;

/**
 * Runs one command in the sandbox under its limits (prlimit sets the rlimits bubblewrap does not). A watch looks
 * at its process count and the tree's growth while it runs; a limit hit kills the whole sandbox, and is the one
 * line reported.
 */
export async function runSandboxed(sandbox: Sandbox, command: string[], sourceDateEpoch: number, options: RunOptions = {}): Promise<string | undefined> {
  const { identity, limits } = sandbox;
  // The host's sh sets the umask (bubblewrap 0.8 has no --umask): the caller's must not reach what commands write,
  // and this process's own umask stays untouched.
  const stdout = new OutputTail();
  const stderr = new OutputTail();
  const killByUid = identity.own && !sandbox.sharedUid;
  const child = (sandbox.spawner ? sandbox.spawner.run.bind(sandbox.spawner) : startHere)({
    argv: [...(sandbox.enter ?? []), '/bin/sh', '-c', 'umask 022 && exec prlimit "$@"', 'sh', ...bwrapArgs(sandbox, command, sourceDateEpoch)],
    ...(identity.own && !sandbox.enter ? { uid: identity.uid, gid: identity.gid } : {}),
    ...(options.stdin ? { stdin: options.stdin } : {}),
    onStdout: (chunk) => stdout.keep(chunk),
    onStderr: (chunk) => stderr.keep(chunk),
  });
  let stopped: Stop | undefined;
  let running = true;
  const stop = (why: Stop): void => {
    if (stopped || !running) return;
    stopped = why;
    child.kill(); // bubblewrap's init dies with it (--die-with-parent), and the pid namespace with that
    if (killByUid) killAll(identity.uid).catch(() => {}); // done again, awaited, once the command has gone
  };
  const timer = setTimeout(() => stop('timeoutMs'), limits.timeoutMs);
  let wake = (): void => {};
  const watch = (async () => {
    let pause = WATCH_INTERVAL_MS;
    while (running && !stopped) {
      await new Promise<void>((r) => {
        const sleep = setTimeout(r, pause);
        wake = () => {
          clearTimeout(sleep);
          r();
        };
      });
      if (!running) return;
      const started = performance.now();
      if (identity.own && processesOf(identity.uid).length >= limits.processes) stop('processes');
      else if (await sandbox.usage.exceeds(sandbox.initialUsage + limits.diskBytes)) stop('diskBytes');
      // A big tree takes a while to walk: never spend more than half the time watching.
      pause = Math.max(WATCH_INTERVAL_MS, performance.now() - started);
    }
  })().catch(() => {}); // a watch that fails (a /proc race) leaves the rlimits and the final check in place
  const { code, signal } = await child.ended
    .catch((err: NodeJS.ErrnoException) => {
      throw new UserError(err.code === 'ENOENT' ? `setup commands need ${sandbox.enter ? 'nsenter' : 'prlimit'} (util-linux), which is not installed` : `${sandbox.enter ? 'nsenter' : 'prlimit'}: ${err.message}`);
    })
    .finally(() => {
      running = false;
      clearTimeout(timer);
      wake(); // the watch's pause ends with the command
    });
  await watch;
  if (killByUid) await killAll(identity.uid); // nothing of the sandbox outlives its command
  const what = options.what ?? `setup command ${JSON.stringify(command)}`;
  const allowed = sandbox.initialUsage + limits.diskBytes;
  if (!stopped && (options.exactUsage === false ? await sandbox.usage.exceeds(allowed) : (await sandbox.usage.measure()) > allowed)) stopped = 'diskBytes';
  if (!stopped && code === SIGXFSZ_EXIT) stopped = 'fileSize';
  if (stopped) throw new UserError(`${what} was stopped: ${STOP_REASONS[stopped]} (${describeLimit(limits, stopped === 'fileSize' ? 'diskBytes' : stopped)})`);
  if (code === 0) return undefined;
  const errors = stderr.text();
  if (code === 127 && /prlimit: failed to execute bwrap/.test(errors)) throw new UserError('setup commands need bubblewrap (bwrap), which is not installed');
  const bwrapError = /^bwrap: (.*)/.exec(errors.trim());
  // A command that cannot be executed fails like one that ran and failed (pacman's execv in the chroot fails so).
  if (code === 1 && bwrapError && options.returnFailure && bwrapError[1]!.startsWith('execvp ')) return `${what} failed: ${displayName(bwrapError[1]!)}`;
  if (code === 1 && bwrapError) throw new UserError(`the sandbox for ${what} could not start: ${displayName(bwrapError[1]!)}${identity.own ? ' (run as root, it runs as an unprivileged uid of its own, which needs unprivileged user namespaces)' : ''}`);
  if (options.returnFailure) return failureMessage(what, code, signal, stdout.text(), errors);
  throw new UserError(failureMessage(what, code, signal, stdout.text(), errors));
}

/**
 * Measures the tree exactly and stops `what` when it went over the disk limit: for callers that ran commands with
 * `exactUsage: false`, before they read what the commands wrote.
 */
export async function assertWithinDiskLimit(sandbox: Sandbox, what: string): Promise<void> {
  if ((await sandbox.usage.measure()) - sandbox.initialUsage > sandbox.limits.diskBytes) throw new UserError(`${what} were stopped: ${STOP_REASONS.diskBytes.replace('it wrote', 'they wrote')} (${describeLimit(sandbox.limits, 'diskBytes')})`);
}

/** The tree written to `dir` (a new directory in a private scratch directory), root's entries owned by the sandbox's uid. */
export async function sandboxOnCopy(entries: TreeNode[], dir: string, limits: SandboxLimits): Promise<{ sandbox: Sandbox; before: Map<string, Snapshot> }> {
  const identity = sandboxIdentity();
  if (identity.own) {
    await chmod(dirname(dir), 0o711);
    await assertReachable(dirname(dir));
  }
  await materialize(entries, dir, identity.own ? rootOwnedBy(identity) : undefined);
  if (identity.own) await handOverEntry(Buffer.from(dir), identity);
  const before = scan(dir);
  const usage = new TreeUsage(dir);
  return { sandbox: { root: dir, identity, limits, initialUsage: await usage.measure(), usage }, before };
}

/** Runs the commands on one materialized copy and returns what it changed relative to `before`. */
async function runOnCopy(entries: TreeNode[], commands: string[][], sourceDateEpoch: number, dir: string, limits: SandboxLimits, progress: Progress): Promise<{ before: Map<string, Snapshot>; after: Map<string, Snapshot> }> {
  const { sandbox, before } = await sandboxOnCopy(entries, dir, limits);
  for (const command of commands) {
    await runSandboxed(sandbox, command, sourceDateEpoch);
    progress.advance();
  }
  return { before, after: scan(dir) };
}

export function changedPaths(before: Map<string, Snapshot>, after: Map<string, Snapshot>): { changed: string[]; removed: string[] } {
  const changed: string[] = [];
  for (const [path, snap] of after) {
    const old = before.get(path);
    if (!old || old.ctimeNs !== snap.ctimeNs || old.type !== snap.type) changed.push(path);
  }
  const removed = [...before.keys()].filter((p) => !after.has(p));
  return { changed, removed };
}

/**
 * Where the copies of a tree go (two for setup commands, one shared by a transaction's two runs), with what two
 * runs' commands may write: in memory when it has room for all of that (util/fs.ts memoryScratchParent), else TMPDIR.
 */
export async function scratchParent(nodes: Iterable<TreeNode>, limits: SandboxLimits, copies: 1 | 2): Promise<string | undefined> {
  let size = 0;
  for (const node of nodes) size += ENTRY_COST + (node.type === 'file' ? node.size : 0);
  return memoryScratchParent(copies * size, copies * size + 2 * limits.diskBytes);
}

/**
 * Both results, once both are settled: a run that fails first never leaves the other writing into a scratch
 * directory being removed. The first's failure is reported when both fail, as it would be had they run in turn.
 */
export async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}

export async function runSetupCommands(nodes: Map<string, TreeNode>, commands: string[][], sourceDateEpoch: number, exclude: string[], spool: Spool, limits: SandboxLimits = DEFAULT_LIMITS): Promise<CommandResult> {
  if (commands.length === 0) return { changed: [], removed: [] };
  const entries = sortWithHardlinks(new Map([...nodes].map(([k, v]) => [k, { ...v }])));
  const parent = await scratchParent(entries, limits, 2);
  const a = await makeScratchDir('sandbox-a', parent);
  const b = await makeScratchDir('sandbox-b', parent);
  // Each command runs twice, once in each copy, to show that it is deterministic.
  const progress = new Progress('setup', { unit: 'command runs' }).start(2 * commands.length);
  try {
    // The scratch directories are searchable by the sandbox's uid, so by anyone: an unguessable name keeps the copies private.
    const rootA = join(a.path, `root-${randomBytes(16).toString('hex')}`);
    const rootB = join(b.path, `root-${randomBytes(16).toString('hex')}`);
    const [runA, runB] = await bothSettled(runOnCopy(entries, commands, sourceDateEpoch, rootA, limits, progress), runOnCopy(entries, commands, sourceDateEpoch, rootB, limits, progress));
    const resultA = changedPaths(runA.before, runA.after);
    const differing = await differingPaths({ root: rootA, ...runA }, { root: rootB, ...runB }, exclude);
    if (differing.length > 0) throw new NondeterministicError(`setup commands are nondeterministic: ${differing.length} path(s) differ between two runs: ${differing.slice(0, 10).map(displayName).join(', ')}${differing.length > 10 ? ', …' : ''}`);
    await foldBack(nodes, resultA, runA.after, rootA, sourceDateEpoch, spool, 'setup commands');
    return resultA;
  } finally {
    progress.stop();
    await Promise.all([a.cleanup(), b.cleanup()]);
  }
}

/** One run's tree: where it is, and what was there before and after the commands. */
export interface RunTrees {
  root: string;
  before: Map<string, Snapshot>;
  after: Map<string, Snapshot>;
}

/** The paths two runs touched and disagree on, by content, not by timestamps; excluded paths aside. Sorted. */
export async function differingPaths(a: RunTrees, b: RunTrees, exclude: string[]): Promise<string[]> {
  const excluded = new PathPatterns(exclude);
  const resultA = changedPaths(a.before, a.after);
  const resultB = changedPaths(b.before, b.after);
  const differing: string[] = [];
  const touched = new Set([...resultA.changed, ...resultB.changed, ...resultA.removed, ...resultB.removed]);
  for (const path of [...touched].sort()) {
    if (excluded.matches(path)) continue;
    const sa = a.after.get(path);
    const sb = b.after.get(path);
    if (!sa || !sb) {
      if (sa || sb) differing.push(path);
      continue;
    }
    if (sa.type !== sb.type || sa.mode !== sb.mode || sa.size !== sb.size || sa.link !== sb.link) differing.push(path);
    else if (sa.type === 'file' && (await fileHash(fsPath(a.root, path))) !== (await fileHash(fsPath(b.root, path)))) differing.push(path);
  }
  return differing;
}

/**
 * Folds what a run changed back into the model: mtimes clamped to SOURCE_DATE_EPOCH (a directory that was one
 * keeps its own), owners kept from the model (0:0 for new paths), new contents spooled.
 */
export async function foldBack(nodes: Map<string, TreeNode>, result: CommandResult, after: Map<string, Snapshot>, root: string, sourceDateEpoch: number, spool: Spool, what: string): Promise<void> {
  for (const path of result.removed) nodes.delete(path);
  for (const path of [...result.changed].sort()) {
    const snap = after.get(path)!;
    const old = nodes.get(path);
    const owner = { uid: old?.uid ?? 0, gid: old?.gid ?? 0 };
    const base = { path, mode: snap.mode, ...owner, mtime: sourceDateEpoch, size: 0, owner: old?.owner ?? 'setup' };
    if (snap.type === 'dir') nodes.set(path, { ...base, type: 'dir', ...(old?.type === 'dir' ? { mtime: old.mtime } : {}) });
    else if (snap.type === 'symlink') nodes.set(path, { ...base, type: 'symlink', mode: 0o777, linkTarget: snap.link! });
    else if (snap.type === 'file') {
      const { open, size } = await spool.store(createReadStream(fsPath(root, path)));
      nodes.set(path, { ...base, type: 'file', size, open });
    } else throw new UserError(`${what} created ${displayName(path)}, which is neither a file, a directory nor a symlink`);
  }
}
