import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { basename, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { TreeNode } from '../install/installer.js';
import { finishDirectories, rootOwnedBy, writeNodes } from '../install/materialize.js';
import { writableElsewhere, writeOnThread } from './layer-writer.js';
import { sortWithHardlinks } from '../rootfs/tree.js';
import { parentPaths } from '../tar/entry.js';
import type { Identity } from './sandbox.js';

/**
 * A transaction's tree written once and shared by its two runs (scriptlets.ts). What the packages install between
 * two steps is one layer of a store, written once; each run sees the layers it has reached as read-only overlayfs
 * lower layers under an upper directory of its own, which takes everything its scriptlets, hooks and this process
 * write (overlayfs copies a file up before it is changed). The overlay is mounted in the mount namespace of a small
 * holder process per run (util-linux unshare; in a user namespace of its own unless this process is root): this
 * process reaches the merged tree through /proc/HOLDER/root, each sandbox enters the namespace (nsenter).
 */

/** Lower layers one overlay may stack here; past it, what packages install is written into the run's upper directory. */
export const MAX_LAYERS = 100;
/** Entries from which a layer's files are written on two threads (layer-writer.ts). */
const THREADED_LAYER = 4096;
/** What a file costs to write beyond its bytes, in bytes, to split a layer's work in halves. */
const ENTRY_WEIGHT = 64 * 1024;

/**
 * Holds the mount: mounts the overlay afresh for each line of lower layers it reads (names in the store, the top
 * first), says `ok` or why not, and ends (its namespace and mount with it) when its input closes. Layer and
 * directory names are relative to the store, so that the option string never holds a path's commas or colons.
 */
const HOLDER_SCRIPT = [
  'cd "$1" || exit 1',
  'echo ready',
  'while IFS= read -r lowers; do',
  '  umount "$4" 2>/dev/null',
  '  if out=$(mount -t overlay overlay -o "$5,lowerdir=$lowers,upperdir=$2,workdir=$3" "$4" 2>&1); then echo ok; else echo "failed: $out" | tr "\\n" " "; echo; fi',
  'done',
].join('\n');

/**
 * Options no kernel default may turn on: each would record changes in xattrs rather than as plain entries
 * (a renamed lower directory is copied, as on any file system that cannot rename across devices).
 */
const MOUNT_OPTIONS = 'redirect_dir=nofollow,metacopy=off,index=off';

/** The layers of one transaction: a directory each, written once, by whichever run asks for it first. */
export class LayerStore {
  private readonly layers = new Map<string, Promise<string>>();

  /** `model` gives the parent directories a layer's entries need (as the tree has them); root's entries go to `owner` when given. */
  constructor(
    readonly dir: string,
    private readonly model: Map<string, TreeNode>,
    private readonly owner: { uid: number; gid: number } | undefined,
  ) {}

  /** The layer holding `entries` (known by `key`: the same key is the same entries), written on first use; its name in the store. */
  layer(key: string, entries: TreeNode[]): Promise<string> {
    let layer = this.layers.get(key);
    if (!layer) this.layers.set(key, (layer = this.write(`${this.layers.size}`, entries)));
    return layer;
  }

  private async write(name: string, entries: TreeNode[]): Promise<string> {
    const all = new Map(entries.map((e) => [e.path, { ...e }]));
    // Parents the layer's entries are below, with the attributes the tree gives them: the top layer's copy of a
    // directory is the one a run sees, so every copy is the same.
    for (const entry of entries) {
      for (const parent of parentPaths(entry.path)) {
        if (all.has(parent)) continue;
        const node = this.model.get(parent);
        if (node?.type !== 'dir') throw new Error(`layer ${name}: ${parent} is not a directory in the tree`);
        all.set(parent, { ...node });
      }
    }
    const dir = join(this.dir, name);
    await mkdir(dir, { mode: 0o755 });
    const mapOwner = this.owner ? rootOwnedBy(this.owner) : undefined;
    const sorted = sortWithHardlinks(all);
    if (sorted.length < THREADED_LAYER) {
      await writeNodes(sorted, dir, () => {}, mapOwner);
      return name;
    }
    // Directories first (open to their owner meanwhile), then the files on two threads, the tail half by size on
    // the other; then the directories' own modes and times.
    const dirs = sorted.filter((e) => e.type === 'dir');
    await writeNodes(dirs.map((d) => ({ ...d, mode: 0o700 })), dir, () => {}, mapOwner);
    const rest = sorted.filter((e) => e.type !== 'dir');
    const movable = rest.filter(writableElsewhere);
    const weight = (e: TreeNode): number => ENTRY_WEIGHT + (e.type === 'file' ? e.size : 0);
    let half = rest.reduce((sum, e) => sum + weight(e), 0) / 2;
    let split = movable.length;
    while (split > 0 && half > 0) half -= weight(movable[--split]!);
    const elsewhere = new Set(movable.slice(split));
    const written = await Promise.allSettled([writeOnThread([...elsewhere], dir, this.owner), writeNodes(rest.filter((e) => !elsewhere.has(e)), dir, () => {}, mapOwner)]);
    for (const result of written) if (result.status === 'rejected') throw result.reason;
    finishDirectories(dirs, dir);
    return name;
  }
}

/** One run's overlay: its upper directory, its mount point, and the holder of its mount namespace. */
export class OverlayTree {
  private stderr = '';

  /** The holder's answers, a line each. */
  private readonly lines: AsyncIterator<string>;

  private constructor(
    private readonly holder: ChildProcess,
    /** The mount point's path inside the holder's namespace: what a sandbox binds as its root. */
    readonly mountPoint: string,
    /** Where the run's changes are, as this process sees them. */
    readonly upper: string,
    /** Who the sandboxes run as: not root (`own` unset), the namespaces are in a user namespace of their own. */
    private readonly identity: Identity,
  ) {
    this.lines = createInterface({ input: holder.stdout! })[Symbol.asyncIterator]();
    holder.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-2000)));
  }

  private get rootless(): boolean {
    return !this.identity.own;
  }

  private async answer(): Promise<string | undefined> {
    const { value, done } = await this.lines.next();
    return done ? undefined : value;
  }

  /**
   * A run directory `runDir` beside the store (upper, work and mount point in it), held by a new holder. When the
   * sandboxes have a uid of their own (this process is root), the mount namespace is the machine's user
   * namespace's (the layers' owners as written); else a user namespace maps this user to root, as the sandboxes do.
   */
  static async open(store: LayerStore, runDir: string, identity: Identity): Promise<OverlayTree> {
    const rootless = !identity.own;
    // Searchable by the sandbox's uid down to the mount point (whatever this process's umask).
    await mkdir(runDir);
    await chmod(runDir, 0o711);
    for (const sub of ['upper', 'work', 'merged']) await mkdir(join(runDir, sub));
    await chmod(join(runDir, 'merged'), 0o755);
    const relative = `../${basename(runDir)}`;
    const options = `${rootless ? 'userxattr,' : ''}${MOUNT_OPTIONS}`;
    const unshare = ['unshare', ...(rootless ? ['--user', '--map-root-user'] : []), '--mount', '--propagation', 'private'];
    const holder = spawn(unshare[0]!, [...unshare.slice(1), 'sh', '-c', HOLDER_SCRIPT, 'sh', store.dir, `${relative}/upper`, `${relative}/work`, resolve(runDir, 'merged'), options], { stdio: ['pipe', 'pipe', 'pipe'] });
    holder.stdin!.on('error', () => {}); // a holder that ended says so by its output ending (mount)
    const tree = new OverlayTree(holder, resolve(runDir, 'merged'), join(runDir, 'upper'), identity);
    const started = new Promise<void>((ok, fail) => {
      holder.on('error', (err: NodeJS.ErrnoException) => fail(new UserError(err.code === 'ENOENT' ? 'scriptlets and hooks need unshare and nsenter (util-linux), which are not installed' : `unshare: ${err.message}`)));
      holder.on('spawn', ok);
    });
    await started;
    const ready = await tree.answer();
    if (ready === 'ready') return tree;
    holder.kill('SIGKILL');
    throw new UserError(`scriptlets and hooks need a mount namespace of their own${rootless ? ' in a user namespace (unprivileged user namespaces)' : ''}: ${tree.stderr.replace(/\s+/g, ' ').trim() || 'unshare failed'}`);
  }

  /** The merged tree as this process reaches it (through the holder's root: the mount is only in its namespace). */
  get view(): string {
    return `/proc/${this.holder.pid}/root${this.mountPoint}`;
  }

  /** The command prefix that runs a process in the holder's namespaces, as the sandbox's own uid when it has one. */
  get enter(): string[] {
    const target = `--target=${this.holder.pid}`;
    if (this.rootless) return ['nsenter', target, '--user', '--mount', '--preserve-credentials', '--'];
    return ['nsenter', target, '--mount', `--setuid=${this.identity.uid}`, `--setgid=${this.identity.gid}`, '--'];
  }

  /** Mounts the overlay over `layers` (store names, the bottom first), replacing the mount there was. */
  async mount(layers: string[]): Promise<void> {
    this.holder.stdin!.write(`${[...layers].reverse().join(':')}\n`);
    const answer = await this.answer();
    if (answer !== 'ok') throw new UserError(`scriptlets and hooks need overlayfs${this.rootless ? ' in a user namespace (Linux 5.11 or later)' : ''}: ${answer?.replace(/^failed: /, '').replace(/\s+/g, ' ').trim() || this.stderr.trim() || 'the mount holder ended'}`);
  }

  /** Ends the holder and waits for it: its mount is gone once this returns (its mode-000 work directory stays: util/fs.ts removes such trees). */
  async close(): Promise<void> {
    if (this.holder.exitCode !== null || this.holder.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.holder.once('close', () => r()));
    this.holder.stdin!.end();
    await exited;
  }
}
