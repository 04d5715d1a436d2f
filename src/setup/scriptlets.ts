import { chmod, lstat, mkdir, readFile, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { lstatSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NondeterministicError, UserError } from '../errors.js';
import type { TreeNode } from '../install/installer.js';
import { LOCAL_DB_DIR, type InstalledPackage } from '../install/local-db.js';
import { rootOwnedBy, writeNodes } from '../install/materialize.js';
import { parseDependency, packageSatisfies } from '../pacman/depend.js';
import { sortWithHardlinks } from '../rootfs/tree.js';
import { parentPaths } from '../tar/entry.js';
import { makeScratchDir } from '../util/fs.js';
import type { Spool } from '../util/spool.js';
import { displayName, fsPath, readdirNames, readdirNamesSync, readlinkName } from '../util/raw-name.js';
import { LayerStore, MAX_LAYERS, OverlayTree } from './overlay.js';
import { fgetsChunks, selectHooks, targetsInput, triggeredHooks, type AlpmHook, type HookDirEntry, type HookTransaction, type HookWhen } from './alpm-hooks.js';
import { DEFAULT_LIMITS, type SandboxLimits } from './limits.js';
import { Spawner } from './spawner.js';
import {
  assertReachable,
  assertWithinDiskLimit,
  bothSettled,
  changedPaths,
  differingPaths,
  ENTRY_COST,
  foldBack,
  handOverEntry,
  killAll,
  runSandboxed,
  sandboxIdentity,
  scratchParent,
  snapshotEntry,
  TreeUsage,
  type CommandResult,
  type Identity,
  type Sandbox,
  type Snapshot,
} from './sandbox.js';

/**
 * pacman's transaction around the files, for `pacman -S` into an empty root (lib/libalpm/trans.c, add.c): the
 * PreTransaction hooks, then per package in install order its `pre_install` scriptlet, its files and its local
 * database entry, its `post_install` scriptlet; then ldconfig, then the PostTransaction hooks. Everything runs
 * in the setup sandbox (sandbox.ts), one bubblewrap per scriptlet or hook, on a tree written out progressively,
 * and the whole transaction runs twice, at once: the packages' files are written once, as overlayfs layers both
 * runs share, each run's changes go to an upper directory of its own (overlay.ts; in memory when there is room:
 * scratchParent). Any path the two runs leave different fails the build, naming the step that last changed it.
 * What the runs changed is folded back into the model as setup commands' changes are.
 */

export interface HookFile {
  name: string;
  content: string;
}

export interface TransactionOptions {
  scriptlets: boolean;
  hooks: boolean;
  /** The spec's own hooks: a HookDir after the tree's usr/share/libalpm/hooks (so they override its files). */
  hookFiles?: HookFile[];
  sourceDateEpoch: number;
  noExtract: string[];
  /** Paths the image leaves out: never judged by the two-run check. */
  exclude: string[];
  limits?: SandboxLimits;
  log: (message: string) => void;
}

export interface TransactionReport extends CommandResult {
  /** What ran, in order: `pre_install NAME`, `post_install NAME`, `ldconfig`, `hook NAME`. */
  ran: string[];
  /** Scriptlets and hooks that failed without stopping the transaction (pacman goes on after them too). */
  failures: string[];
  warnings: string[];
}

/** The hook directory packages install into, as pacman's SYSHOOKDIR under the root. */
export const SYSTEM_HOOK_DIR = 'usr/share/libalpm/hooks';
/** pacman's SCRIPTLET_SHELL and LDCONFIG (meson defaults, as Arch builds pacman). */
const SCRIPTLET_SHELL = '/bin/sh';
const LDCONFIG = 'sbin/ldconfig';
/** ldconfig's cache of inodes and ctimes: different on every run, so never kept (archlinux-docker drops it too). */
const LDCONFIG_AUX_CACHE = 'var/cache/ldconfig/aux-cache';
/** pacman's `mkdtemp("$root/tmp/alpm_XXXXXX")`, with a fixed name: the scriptlet may see it. */
const SCRIPTLET_DIR = 'tmp/alpm_000000';
/** fgets buffer pacman's grep() for a scriptlet function reads with. */
const GREP_LINE = 1024;
/** Symlinks followed when a path is resolved inside the tree (as the kernel's MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

/**
 * Whether pacman would run `fn` from a scriptlet: its grep() looks for the name anywhere in a line, after cutting
 * the line at its first `#`.
 */
export function scriptletHasFunction(script: Buffer, fn: string): boolean {
  const needle = Buffer.from(fn);
  for (const chunk of fgetsChunks(script, GREP_LINE)) {
    const hash = chunk.indexOf(0x23);
    if ((hash === -1 ? chunk : chunk.subarray(0, hash)).includes(needle)) return true;
  }
  return false;
}

/** The command line pacman's _alpm_runscriptlet gives /bin/sh -c for a fresh install. */
export function scriptletCommand(fn: string, version: string): string[] {
  return [SCRIPTLET_SHELL, '-c', `. /${SCRIPTLET_DIR}/.INSTALL; ${fn} ${version}`];
}

function dbDir(pkg: InstalledPackage): string {
  return `${LOCAL_DB_DIR}/${pkg.pkginfo.pkgname}-${pkg.pkginfo.pkgver}`;
}

/**
 * The installed tree cut into what exists before the first package (pacman's database directory) and what each
 * package adds (its files, the parents made for them, its database entry), each in write order.
 */
export function transactionStages(nodes: Map<string, TreeNode>, packages: InstalledPackage[]): { base: TreeNode[]; perPackage: TreeNode[][] } {
  const baseDirs = new Set([...parentPaths(`${LOCAL_DB_DIR}/x`), `${LOCAL_DB_DIR}/ALPM_DB_VERSION`]);
  const byName = new Map(packages.map((p, i) => [p.pkginfo.pkgname, i]));
  const byDbDir = new Map(packages.map((p, i) => [dbDir(p), i]));
  const base: TreeNode[] = [];
  const perPackage: TreeNode[][] = packages.map(() => []);
  for (const node of sortWithHardlinks(new Map([...nodes].map(([k, v]) => [k, { ...v }])))) {
    if (baseDirs.has(node.path)) {
      base.push(node);
      continue;
    }
    const inDb = node.path.startsWith(`${LOCAL_DB_DIR}/`) ? /^[^/]+/.exec(node.path.slice(LOCAL_DB_DIR.length + 1)) : null;
    const stage = (inDb && byDbDir.get(`${LOCAL_DB_DIR}/${inDb[0]}`)) ?? byName.get(node.owner);
    if (stage === undefined) base.push(node);
    else perPackage[stage]!.push(node);
  }
  return { base, perPackage };
}

type Resolved = { kind: 'missing' | 'devnull' } | { kind: 'found'; path: string; dir: boolean; executable: boolean };

/**
 * A path resolved inside the tree as it would be inside pacman's chroot: symlinks followed with `/` being the
 * tree's root, never the host's. A link to /dev/null (pacman's way to mask a hook) is reported as such.
 */
async function resolveInTree(root: string, path: string): Promise<Resolved> {
  let pending = path.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const name = pending.shift()!;
    if (name === '..') {
      done.pop();
      continue;
    }
    const current = [...done, name].join('/');
    const st = await lstat(fsPath(root, current)).catch(() => undefined);
    if (!st) return { kind: 'missing' };
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) return { kind: 'missing' };
      const target = await readlinkName(fsPath(root, current));
      if (target === '/dev/null') return pending.length ? { kind: 'missing' } : { kind: 'devnull' };
      if (target.startsWith('/')) done.length = 0;
      pending = [...target.split('/').filter((c) => c !== '' && c !== '.'), ...pending];
      continue;
    }
    if (pending.length && !st.isDirectory()) return { kind: 'missing' };
    done.push(name);
  }
  const resolved = done.join('/');
  const st = await stat(fsPath(root, resolved || '.'));
  return { kind: 'found', path: resolved, dir: st.isDirectory(), executable: st.isFile() && (st.mode & 0o111) !== 0 };
}

/** One of the transaction's two runs. */
interface Run {
  /** Its merged tree, as this process reaches it (overlay.ts). */
  root: string;
  sandbox: Sandbox;
  overlay: OverlayTree;
  store: LayerStore;
  /** The store's layers it has mounted, the bottom first. */
  layers: string[];
  /** What packages (by index; -1 before the first) installed since the tree was last looked at: not written yet. */
  pending: { index: number; pkgName: string; entries: TreeNode[] }[];
  /** What each path should look like had nothing but the files been written: the baseline for changes. */
  expected: Map<string, Snapshot>;
  /** The kernel's ctime at the start of each step, to name the step that last changed a path. */
  marks: { step: string; ctimeNs: bigint }[];
  markFile: string;
  /** Nothing but the packages' own entries has been written yet: none of a stage's paths can exist. */
  untouched: boolean;
  sourceDateEpoch: number;
  report: TransactionReport;
}

/** Records when a step starts (a file's ctime: the kernel's clock, as the tree's ctimes). Synchronously: a few local calls, made per step. */
function mark(run: Run, step: string): void {
  writeFileSync(run.markFile, step);
  run.marks.push({ step, ctimeNs: lstatSync(run.markFile, { bigint: true }).ctimeNs });
}

/** Records the baseline of paths the transaction itself wrote, and of their parents (whose ctime that moved). */
function expect(run: Run, paths: Iterable<string>): void {
  const all = new Set<string>();
  for (const path of paths) {
    all.add(path);
    for (const parent of parentPaths(path)) all.add(parent);
  }
  for (const path of all) run.expected.set(path, snapshotEntry(run.root, path));
}

/** Gives an entry the transaction created to the sandbox's uid (mapped to root inside), then records it. */
async function handOver(run: Run, path: string): Promise<void> {
  if (run.sandbox.identity.own) await handOverEntry(fsPath(run.root, path), run.sandbox.identity);
}

/** Mount points bubblewrap makes in the tree when they are missing; pacman's chroot makes none. */
const MOUNT_POINTS = ['dev', 'proc'];

async function runStep(run: Run, step: string, command: string[], stdin?: Buffer): Promise<void> {
  mark(run, step);
  run.untouched = false;
  const missing = MOUNT_POINTS.filter((dir) => !lstatSync(fsPath(run.root, dir), { throwIfNoEntry: false }));
  // Measured exactly once, at the transaction's end (assertWithinDiskLimit): a step is only bounded (TreeUsage).
  const failure = await runSandboxed(run.sandbox, command, run.sourceDateEpoch, { what: step, returnFailure: true, exactUsage: false, ...(stdin ? { stdin } : {}) }).finally(() => {
    for (const dir of missing) {
      try {
        rmdirSync(fsPath(run.root, dir));
      } catch {
        // gone already, or not empty: left as the step left it
      }
    }
  });
  run.report.ran.push(step);
  if (failure) run.report.failures.push(failure);
  return failure === undefined ? undefined : Promise.reject(new StepFailed(failure));
}

class StepFailed extends Error {}

/** runStep for steps whose failure pacman reports and goes on after. */
async function runTolerated(run: Run, step: string, command: string[], stdin?: Buffer): Promise<boolean> {
  try {
    await runStep(run, step, command, stdin);
    return true;
  } catch (err) {
    if (err instanceof StepFailed) return false;
    throw err;
  }
}

/** `$root/tmp`, made 01777 when missing as pacman makes it; never anything but a directory. */
async function ensureTmp(run: Run): Promise<void> {
  const st = await lstat(fsPath(run.root, 'tmp')).catch(() => undefined);
  if (st && !st.isDirectory()) throw new UserError(`scriptlets: /tmp in the tree is a ${st.isSymbolicLink() ? 'symlink' : 'file'}, where pacman puts each scriptlet to run it`);
  if (st) return;
  await mkdir(fsPath(run.root, 'tmp'));
  await chmod(fsPath(run.root, 'tmp'), 0o1777);
  await handOver(run, 'tmp');
  expect(run, ['tmp']);
}

/** Runs one scriptlet function the way _alpm_runscriptlet does for a fresh install. */
async function runScriptlet(run: Run, pkg: InstalledPackage, fn: 'pre_install' | 'post_install'): Promise<void> {
  const script = pkg.install!.content;
  // From the database (post_install), pacman looks for the function first; from the package, after unpacking it.
  if (fn === 'post_install' && !scriptletHasFunction(script, fn)) return;
  await settle(run);
  run.untouched = false; // its directory and file are written even when the function is not there to run
  await ensureTmp(run);
  const dir = fsPath(run.root, SCRIPTLET_DIR);
  await mkdir(dir, { mode: 0o700 });
  const file = fsPath(run.root, `${SCRIPTLET_DIR}/.INSTALL`);
  await writeFile(file, script, { mode: 0o644 });
  await handOver(run, SCRIPTLET_DIR);
  await handOver(run, `${SCRIPTLET_DIR}/.INSTALL`);
  try {
    if (fn === 'pre_install' && !scriptletHasFunction(script, fn)) return;
    const ok = await runTolerated(run, `${fn} ${pkg.pkginfo.pkgname}`, scriptletCommand(fn, pkg.pkginfo.pkgver));
    if (!ok) run.report.warnings.push(`${fn} of ${pkg.pkginfo.pkgname} failed; pacman goes on, and so does the build`);
  } finally {
    // The scriptlet may have replaced its directory: nothing is removed through a symlink.
    const tmp = await lstat(fsPath(run.root, 'tmp')).catch(() => undefined);
    const own = await lstat(dir).catch(() => undefined);
    if (tmp?.isDirectory() && own?.isDirectory()) {
      await unlink(file).catch(() => undefined);
      await rmdir(dir).catch(() => undefined); // pacman too leaves it when the scriptlet left files in it
    }
  }
}

/** Queues a package's entries; they are written when the run next looks at or changes the tree (settle). */
function extract(run: Run, index: number, pkgName: string, entries: TreeNode[]): void {
  run.pending.push({ index, pkgName, entries });
}

/**
 * Clears the way for a package's entries as pacman extracts them over whatever scriptlets made: a directory
 * already there stays as it is, anything else there is replaced. Nothing is written below a path the scriptlets
 * turned into something other than a directory.
 */
function clearForExtraction(run: Run, pkgName: string, entries: TreeNode[]): void {
  const checked = new Set<string>();
  for (const entry of entries) {
    for (const parent of parentPaths(entry.path)) {
      if (checked.has(parent)) continue;
      const st = lstatSync(fsPath(run.root, parent), { throwIfNoEntry: false });
      if (st && !st.isDirectory()) throw new UserError(`scriptlets made /${displayName(parent)} a ${st.isSymbolicLink() ? 'symlink' : 'file'}, and package ${pkgName} installs below it`);
      checked.add(parent);
    }
    const st = lstatSync(fsPath(run.root, entry.path), { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      if (entry.type === 'dir') continue;
      throw new UserError(`scriptlets made /${displayName(entry.path)} a directory, where package ${pkgName} installs a ${entry.type}`);
    }
    if (st) rmSync(fsPath(run.root, entry.path));
    if (entry.type === 'dir') checked.add(entry.path);
  }
}

/**
 * Hardlinked files, written into the run's own tree rather than a layer: overlayfs copies one name of a hardlink
 * up alone, where pacman's tree would change both.
 */
function hardlinked(entries: TreeNode[]): TreeNode[] {
  const targets = new Set(entries.filter((e) => e.type === 'hardlink').map((e) => e.linkTarget!));
  return targets.size === 0 ? [] : entries.filter((e) => e.type === 'hardlink' || targets.has(e.path));
}

/** Writes entries into the run's own tree (its upper directory, through the overlay), owned as the sandbox sees root. */
async function writeOwn(run: Run, entries: TreeNode[]): Promise<void> {
  if (entries.length === 0) return;
  await writeNodes(entries, run.root, () => {}, run.sandbox.identity.own ? rootOwnedBy(run.sandbox.identity) : undefined);
  expect(run, entries.map((e) => e.path));
  run.sandbox.initialUsage += entries.reduce((sum, e) => sum + ENTRY_COST + (e.type === 'file' ? e.size : 0), 0);
}

/**
 * Writes what packages installed since the tree was last looked at. After the first step, the way is cleared
 * first (clearForExtraction). The entries become one layer of the store (the same for both runs: written once),
 * mounted on top of the run's layers; what the run's upper directory hides of it (below a directory a scriptlet
 * removed or made anew: overlayfs hides all lower layers there) is written into the run's own tree, and so are
 * hardlinks. Past MAX_LAYERS, everything is.
 */
async function settle(run: Run): Promise<void> {
  if (run.pending.length === 0) return;
  const pending = run.pending;
  run.pending = [];
  const entries = pending.flatMap((p) => p.entries);
  if (!run.untouched) for (const { pkgName, entries: own } of pending) clearForExtraction(run, pkgName, own);
  mark(run, `extracting ${pending.at(-1)!.pkgName}`); // names what is written into the run's own tree below
  if (run.layers.length >= MAX_LAYERS) return writeOwn(run, entries);
  const ownPaths = new Set(hardlinked(entries).map((e) => e.path));
  const layered = entries.filter((e) => !ownPaths.has(e.path));
  run.layers.push(await run.store.layer(pending.map((p) => p.index).join(','), layered));
  await run.overlay.mount(run.layers);
  if (!run.untouched) {
    const upper = new UpperState(run);
    for (const e of layered) if (!upper.entries.has(e.path) && upper.hidesBelow(parentPath(e.path), e.path)) ownPaths.add(e.path);
  }
  await writeOwn(run, entries.filter((e) => ownPaths.has(e.path))); // in the entries' order: parents and link targets first
}

function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}

/**
 * What a run's upper directory holds, and which of the lower layers' entries it hides: every one below a whiteout
 * or another non-directory, and below an opaque directory (one a step made anew where the layers have one; told
 * from the others by whether a lower entry below it shows through).
 */
class UpperState {
  /** Path → whether it is a directory in the upper directory. */
  readonly entries = new Map<string, boolean>();
  private readonly hiding = new Map<string, boolean>();

  constructor(private readonly run: Run) {
    const walk = (rel: string): void => {
      for (const name of readdirNamesSync(fsPath(run.overlay.upper, rel))) {
        const path = rel ? `${rel}/${name}` : name;
        const dir = lstatSync(fsPath(run.overlay.upper, path)).isDirectory();
        this.entries.set(path, dir);
        if (dir) walk(path);
      }
    };
    walk('');
  }

  /** Whether the lower layers' entries in directory `dir` are hidden; `probe` is one of them, in a mounted layer and not in the upper directory. */
  hidesBelow(dir: string, probe: string): boolean {
    if (dir === '') return false;
    let hides = this.hiding.get(dir);
    if (hides === undefined) {
      const inUpper = this.entries.get(dir);
      // Not in the upper directory: a directory of the layers (which `dir` then probes for its parent), or one
      // this process wrote into the run's own tree that a step removed since, and all below it with it.
      if (inUpper === undefined) hides = this.run.expected.has(dir) || this.hidesBelow(parentPath(dir), dir);
      else hides = !inUpper || !lstatSync(fsPath(this.run.root, probe), { throwIfNoEntry: false });
      this.hiding.set(dir, hides);
    }
    return hides;
  }

  /**
   * The run's result, as changedPaths takes it: after, every entry of the upper directory the merged tree shows
   * (whiteouts show none); before, the baseline of what this process wrote, and the tree's entries the upper
   * directory hides now.
   */
  changes(model: Map<string, TreeNode>): { before: Map<string, Snapshot>; after: Map<string, Snapshot> } {
    const after = new Map<string, Snapshot>();
    for (const path of this.entries.keys()) {
      if (lstatSync(fsPath(this.run.root, path), { throwIfNoEntry: false })) after.set(path, snapshotEntry(this.run.root, path));
    }
    const before = new Map(this.run.expected);
    for (const [path, node] of model) {
      if (after.has(path) || before.has(path)) continue;
      if (this.entries.has(path) || this.hidesBelow(parentPath(path), path)) before.set(path, { type: node.type, mode: node.mode, size: node.size, ctimeNs: 0n });
    }
    return { before, after };
  }
}

/** A hook directory of the tree, as pacman's readdir + stat sees it (a missing directory has no hooks). */
async function treeHookDir(root: string, dir: string): Promise<Map<string, HookDirEntry>> {
  const out = new Map<string, HookDirEntry>();
  const resolved = await resolveInTree(root, dir);
  if (resolved.kind !== 'found' || !resolved.dir) return out;
  for (const name of await readdirNames(fsPath(root, resolved.path))) {
    const file = `/${dir}/${name}`;
    const target = await resolveInTree(root, `${resolved.path}/${name}`);
    if (target.kind === 'devnull') out.set(name, { kind: 'file', content: Buffer.alloc(0), file });
    else if (target.kind !== 'found') out.set(name, { kind: 'error', message: 'No such file or directory', file });
    else if (target.dir) out.set(name, { kind: 'dir', file });
    else out.set(name, { kind: 'file', content: await readFile(fsPath(root, target.path)), file });
  }
  return out;
}

function hookDirs(options: TransactionOptions): Map<string, HookDirEntry> {
  return new Map((options.hookFiles ?? []).map((h) => [h.name, { kind: 'file', content: Buffer.from(h.content, 'utf8'), file: `(spec) ${h.name}` }]));
}

/** _alpm_hook_run: reads the hook directories now (what the transaction installed so far is in them), runs what triggers. */
async function runHooks(run: Run, when: HookWhen, trans: HookTransaction, installed: InstalledPackage[], options: TransactionOptions): Promise<void> {
  await settle(run);
  const selection = selectHooks([await treeHookDir(run.root, SYSTEM_HOOK_DIR), hookDirs(options)]);
  for (const hook of selection.hooks) run.report.warnings.push(...hook.warnings);
  if (selection.errors.length) {
    // pacman: a PreTransaction failure to read any hook fails the transaction; PostTransaction it skips that hook.
    if (when === 'PreTransaction') throw new UserError(`hooks: ${selection.errors.join('; ')} (pacman fails the transaction: failed to run transaction hooks)`);
    run.report.warnings.push(...selection.errors);
  }
  for (const { hook, targets } of triggeredHooks(selection, when, trans)) {
    const ok = dependsSatisfied(run, hook, installed) && (await runHook(run, hook, targets));
    if (ok) continue;
    if (hook.abortOnFail && when === 'PreTransaction') throw new UserError(`PreTransaction hook ${displayName(hook.name)} failed and has AbortOnFail: pacman aborts the transaction (${run.report.failures.at(-1) ?? 'its Depends are not installed'})`);
  }
}

/** pacman refuses to run a hook whose Depends no installed package satisfies (they are never installed for it). */
function dependsSatisfied(run: Run, hook: AlpmHook, installed: InstalledPackage[]): boolean {
  const pkgs = installed.map((p) => ({ name: p.pkginfo.pkgname, version: p.pkginfo.pkgver, provides: p.pkginfo.provides }));
  const missing = hook.depends.filter((d) => !pkgs.some((p) => packageSatisfies(parseDependency(d), p)));
  if (missing.length === 0) return true;
  run.report.ran.push(`hook ${hook.name}`); // pacman logs it as run before it looks at its Depends
  run.report.failures.push(`unable to run hook ${displayName(hook.name)}: could not satisfy dependencies (${missing.join(', ')})`);
  return false;
}

async function runHook(run: Run, hook: AlpmHook, targets: string[]): Promise<boolean> {
  const exec = hook.exec ?? [];
  if (exec.length === 0) {
    run.report.failures.push(`hook ${displayName(hook.name)}: its Exec is empty`);
    return false;
  }
  // pacman execv()s the path as written, relative to the chroot's / when it has no slash.
  const command = exec[0]!.includes('/') ? exec : [`/${exec[0]}`, ...exec.slice(1)];
  const ok = await runTolerated(run, `hook ${hook.name}`, command, hook.needsTargets ? targetsInput(targets) : undefined);
  if (!ok) run.report.warnings.push(`hook ${displayName(hook.name)} failed; pacman goes on, and so does the build`);
  return ok;
}

/** pacman runs ldconfig after the packages when the root has etc/ld.so.conf and an executable ldconfig. */
async function runLdconfig(run: Run): Promise<void> {
  await settle(run);
  const conf = await resolveInTree(run.root, 'etc/ld.so.conf');
  const ldconfig = await resolveInTree(run.root, LDCONFIG);
  if (conf.kind === 'missing' || ldconfig.kind !== 'found' || !ldconfig.executable) return;
  if (!(await runTolerated(run, 'ldconfig', [`/${LDCONFIG}`]))) run.report.warnings.push('ldconfig failed; pacman goes on, and so does the build');
  const aux = await lstat(fsPath(run.root, LDCONFIG_AUX_CACHE)).catch(() => undefined);
  if (aux?.isFile()) await unlink(fsPath(run.root, LDCONFIG_AUX_CACHE));
}

/** What both runs share: the store, who runs their sandboxes and how they are started, the transaction. */
interface Shared {
  store: LayerStore;
  identity: Identity;
  spawner: Spawner;
  stages: ReturnType<typeof transactionStages>;
  trans: HookTransaction;
  packages: InstalledPackage[];
  options: TransactionOptions;
  /** Each run's overlay, once open: closed by the caller however the runs end. */
  overlays: OverlayTree[];
}

async function runOnLayers(runDir: string, shared: Shared): Promise<{ run: Run; upper: UpperState }> {
  const { store, identity, spawner, stages, trans, packages, options } = shared;
  const overlay = await OverlayTree.open(store, runDir, identity);
  shared.overlays.push(overlay);
  // The upper directory is the merged tree's root: 0755, root's inside the sandbox.
  await chmod(overlay.upper, 0o755);
  if (identity.own) await handOverEntry(Buffer.from(overlay.upper), identity);
  const usage = new TreeUsage(overlay.upper);
  const sandbox: Sandbox = { root: overlay.mountPoint, identity, limits: options.limits ?? DEFAULT_LIMITS, initialUsage: await usage.measure(), usage, treeTmp: true, spawner, enter: overlay.enter, sharedUid: identity.own };
  const report: TransactionReport = { ran: [], failures: [], warnings: [], changed: [], removed: [] };
  const run: Run = { root: overlay.view, sandbox, overlay, store, layers: [], pending: [], expected: new Map(), marks: [], markFile: join(runDir, 'mark'), untouched: true, sourceDateEpoch: options.sourceDateEpoch, report };
  extract(run, -1, 'pacman', stages.base);
  if (options.hooks) await runHooks(run, 'PreTransaction', trans, [], options);
  for (const [i, pkg] of packages.entries()) {
    const scriptlet = options.scriptlets && pkg.install !== undefined;
    if (scriptlet) await runScriptlet(run, pkg, 'pre_install');
    extract(run, i, pkg.pkginfo.pkgname, stages.perPackage[i]!);
    if (scriptlet) await runScriptlet(run, pkg, 'post_install');
  }
  await runLdconfig(run);
  if (options.hooks) await runHooks(run, 'PostTransaction', trans, packages, options);
  await settle(run);
  mark(run, 'end');
  await assertWithinDiskLimit(sandbox, 'scriptlets and hooks');
  return { run, upper: new UpperState(run) };
}

/** The step whose run last changed a path (by its ctime), for the nondeterminism message. */
function lastStep(run: Run, after: Snapshot | undefined): string {
  if (!after) return 'removed';
  let step = 'before the transaction';
  for (const m of run.marks) if (m.ctimeNs <= after.ctimeNs && m.step !== 'end') step = m.step;
  return step;
}

/**
 * Runs the transaction's scriptlets and hooks on the installed tree (see the module comment) and folds what they
 * changed back into `nodes`. A scriptlet or hook that fails is reported and the transaction goes on, as pacman
 * does; a PreTransaction hook with AbortOnFail that fails, or a PreTransaction hook file pacman cannot read, stops
 * the build (pacman installs nothing then).
 */
export async function runTransaction(nodes: Map<string, TreeNode>, packages: InstalledPackage[], spool: Spool, options: TransactionOptions): Promise<TransactionReport> {
  const scratch = await makeScratchDir('transaction', await scratchParent(nodes.values(), options.limits ?? DEFAULT_LIMITS, 1));
  const identity = sandboxIdentity(); // both runs': the layers they share are root's to both
  const spawner = Spawner.start();
  const overlays: OverlayTree[] = [];
  try {
    if (identity.own) {
      await chmod(scratch.path, 0o711);
      await assertReachable(scratch.path);
    }
    // The scratch directory is searchable by the sandbox's uid, so by anyone: unguessable names keep what is in it private.
    const name = (what: string): string => join(scratch.path, `${what}-${randomBytes(16).toString('hex')}`);
    const store = new LayerStore(name('layers'), nodes, identity.own ? identity : undefined);
    await mkdir(store.dir, { mode: 0o700 });
    const trans: HookTransaction = { add: packages.map((p) => ({ name: p.pkginfo.pkgname, files: p.files })), remove: [], noExtract: options.noExtract };
    const shared: Shared = { store, identity, spawner, stages: transactionStages(nodes, packages), trans, packages, options, overlays };
    // At once: while one run waits on its sandbox, the other writes or mounts its layers (each layer is written
    // once, by the run that asks first; both runs settle before anything is removed).
    const [a, b] = await bothSettled(runOnLayers(name('a'), shared), runOnLayers(name('b'), shared));
    const runA = { root: a.run.root, ...a.upper.changes(nodes) };
    const runB = { root: b.run.root, ...b.upper.changes(nodes) };
    const differing = await differingPaths(runA, runB, options.exclude);
    if (differing.length > 0) {
      const named = differing.slice(0, 10).map((p) => `${displayName(p)} (last changed by ${lastStep(a.run, runA.after.get(p))})`);
      throw new NondeterministicError(`scriptlets and hooks are nondeterministic: ${differing.length} path(s) differ between two runs: ${named.join(', ')}${differing.length > 10 ? ', …' : ''}`);
    }
    const result = changedPaths(runA.before, runA.after);
    await foldBack(nodes, result, runA.after, runA.root, options.sourceDateEpoch, spool, 'scriptlets and hooks');
    return { ...a.run.report, ...result };
  } finally {
    await Promise.all(overlays.map((o) => o.close()));
    if (identity.own) await killAll(identity.uid); // nothing of either run outlives the transaction
    spawner.close();
    await scratch.cleanup();
  }
}
