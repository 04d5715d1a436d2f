import { UserError } from '../errors.js';
import type { TreeNode } from '../install/installer.js';
import type { InstalledPackage } from '../install/local-db.js';
import { parentPaths } from '../tar/entry.js';
import { contentNode, readNodeContent } from '../setup/setup.js';
import { compareNames } from '../util/raw-name.js';

/**
 * What archiso's mkarchiso does around pacstrap in bootstrap mode (archiso/mkarchiso: _build_buildmode_bootstrap →
 * _make_packages, _make_version, _make_pkglist, _cleanup_pacstrap_dir, _build_bootstrap_image), as pure functions
 * of the tree: the directories pacstrap makes before it installs, IMAGE_ID/IMAGE_VERSION appended to os-release,
 * usr/lib/clock-epoch, the cleanup and etc/machine-id. Every time archiso would take from the clock is
 * SOURCE_DATE_EPOCH here.
 */

export interface BootstrapSettings {
  /** The spec's architecture: the tarball's `root.<arch>/` and `pkglist.<arch>.txt`. */
  arch: string;
  /** archiso's iso_name: IMAGE_ID in os-release. */
  imageId: string;
  /** archiso's iso_version: IMAGE_VERSION in os-release and the `version` file. */
  imageVersion: string;
}

/** archiso's profiles: `iso_version="$(date --date="@${SOURCE_DATE_EPOCH}" +%Y.%m.%d)"` (UTC here, never the zone). */
export function archisoVersion(sourceDateEpoch: number): string {
  const d = new Date(sourceDateEpoch * 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${String(d.getUTCFullYear()).padStart(4, '0')}.${two(d.getUTCMonth() + 1)}.${two(d.getUTCDate())}`;
}

/**
 * `pacman -Q --sysroot ROOT` as archiso writes it to pkglist.<arch>.txt: `name version` per installed package, in
 * the order of libalpm's local package cache (sorted by name with strcmp, _alpm_pkg_cmp).
 */
export function pacmanQuery(packages: readonly InstalledPackage[]): string {
  return [...packages]
    .map((p) => ({ name: p.pkginfo.pkgname, version: p.pkginfo.pkgver }))
    .sort((a, b) => compareNames(a.name, b.name))
    .map((p) => `${p.name} ${p.version}\n`)
    .join('');
}

/** pacstrap's `newroot`: made before any package is installed (mkdir -m MODE -p; parents 0755). */
const PACSTRAP_DIRS: [string, number][] = [
  ['var/cache/pacman/pkg', 0o755],
  ['var/lib/pacman', 0o755],
  ['var/log', 0o755],
  ['dev', 0o755],
  ['run', 0o755],
  ['etc/pacman.d', 0o755],
  ['tmp', 0o1777],
  ['sys', 0o555],
  ['proc', 0o555],
];

function describe(node: TreeNode): string {
  return node.owner === 'setup' ? `the setup makes it a ${node.type}` : `package ${node.owner} ships it as a ${node.type}`;
}

function addDir(nodes: Map<string, TreeNode>, path: string, mode: number, mtime: number): void {
  const node = nodes.get(path);
  if (!node) nodes.set(path, { path, type: 'dir', mode, uid: 0, gid: 0, mtime, size: 0, owner: 'pacstrap' });
  else if (node.type !== 'dir' && !(node.type === 'symlink' && resolveInTree(nodes, path)?.type === 'dir')) {
    throw new UserError(`pacstrap makes ${path} a directory, but ${describe(node)}`);
  }
}

/** The directories pacstrap creates in the new root when no package did (packages' own metadata stay). */
export function addPacstrapDirectories(nodes: Map<string, TreeNode>, sourceDateEpoch: number): void {
  for (const [path, mode] of PACSTRAP_DIRS) {
    for (const parent of parentPaths(path)) addDir(nodes, parent, 0o755, sourceDateEpoch);
    addDir(nodes, path, mode, sourceDateEpoch);
  }
}

/**
 * Where `path` leads inside the tree, following symlinks as realpath(1) does, or undefined when it leaves the tree
 * (an absolute target is the build machine's path to archiso, so outside too). The last component may be missing.
 */
export function resolveInTree(nodes: Map<string, TreeNode>, path: string): { path: string; type?: TreeNode['type'] } | undefined {
  let pending = path.split('/');
  const done: string[] = [];
  let hops = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (!done.length) return undefined;
      done.pop();
      continue;
    }
    const here = [...done, part].join('/');
    const node = nodes.get(here);
    if (node?.type === 'symlink') {
      if (++hops > 40) return undefined; // ELOOP
      const target = node.linkTarget ?? '';
      if (target.startsWith('/')) return undefined;
      pending = [...target.split('/'), ...pending];
      continue;
    }
    if (!node && pending.some((p) => p !== '' && p !== '.')) return undefined; // a missing directory: realpath fails
    if (node && node.type !== 'dir' && pending.some((p) => p !== '' && p !== '.')) return undefined;
    done.push(part);
  }
  const resolved = done.join('/');
  const node = nodes.get(resolved);
  return node ? { path: resolved, type: node.type } : { path: resolved };
}

/** _make_version: IMAGE_ID and IMAGE_VERSION appended to os-release (old lines of those keys dropped), clock-epoch. */
export async function applyMakeVersion(nodes: Map<string, TreeNode>, settings: BootstrapSettings, sourceDateEpoch: number, warn: (m: string) => void): Promise<void> {
  const named = !nodes.has('etc/os-release') && nodes.has('usr/lib/os-release') ? 'usr/lib/os-release' : 'etc/os-release';
  const target = resolveInTree(nodes, named);
  if (!target) {
    warn(`os-release file ${named} is outside of the tree: IMAGE_ID and IMAGE_VERSION not appended (as archiso)`);
  } else {
    const node = nodes.get(target.path);
    if (node && node.type !== 'file') throw new UserError(`archiso appends IMAGE_ID to ${target.path}, but ${describe(node)}`);
    if (!node) requireDirectory(nodes, target.path, 'archiso appends IMAGE_ID to');
    const kept = node ? (await readNodeContent(node)).toString('latin1').split(/(?<=\n)/).filter((l) => !/^IMAGE_(ID|VERSION)=/.test(l)).join('') : '';
    const content = Buffer.from(`${kept}IMAGE_ID=${settings.imageId}\nIMAGE_VERSION=${settings.imageVersion}\n`, 'latin1');
    nodes.set(target.path, contentNode(target.path, content, node ?? { mode: 0o644, uid: 0, gid: 0, mtime: sourceDateEpoch }, node?.owner ?? 'archiso'));
    nodes.get(target.path)!.mtime = sourceDateEpoch;
  }
  // touch -m -d@SOURCE_DATE_EPOCH usr/lib/clock-epoch: made empty when missing, its mtime set either way.
  const clock = resolveInTree(nodes, 'usr/lib/clock-epoch');
  if (!clock) throw new UserError('archiso touches usr/lib/clock-epoch, which leads out of the tree');
  const existing = nodes.get(clock.path);
  if (existing) existing.mtime = sourceDateEpoch;
  else {
    requireDirectory(nodes, clock.path, 'archiso touches');
    nodes.set(clock.path, contentNode(clock.path, Buffer.alloc(0), { mode: 0o644, uid: 0, gid: 0, mtime: sourceDateEpoch }, 'archiso'));
  }
}

function requireDirectory(nodes: Map<string, TreeNode>, path: string, what: string): void {
  const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
  if (parent && nodes.get(parent)?.type !== 'dir') throw new UserError(`${what} ${path}, but the tree has no directory ${parent}`);
}

/** Removes one path; a hardlink to it becomes the file (find -delete removes a name, not the inode). */
function removePath(nodes: Map<string, TreeNode>, path: string): void {
  const node = nodes.get(path);
  if (!node) return;
  nodes.delete(path);
  if (node.type !== 'file') return;
  const links = [...nodes.values()].filter((n) => n.type === 'hardlink' && n.linkTarget === path).sort((a, b) => compareNames(a.path, b.path));
  const [heir, ...others] = links;
  if (!heir) return;
  const { open, size, mode, uid, gid, mtime, xattrs } = node;
  Object.assign(heir, { type: 'file', size, mode, uid, gid, mtime, xattrs, open });
  delete heir.linkTarget;
  for (const other of others) other.linkTarget = heir.path;
}

function below(nodes: Map<string, TreeNode>, dir: string): TreeNode[] {
  return [...nodes.values()].filter((n) => n.path.startsWith(`${dir}/`));
}

/** `[[ -d DIR ]] && find DIR …`: only a real directory is walked (find does not follow a symlinked start point's contents). */
function isDir(nodes: Map<string, TreeNode>, path: string): boolean {
  return nodes.get(path)?.type === 'dir';
}

/** _cleanup_pacstrap_dir, in its order; etc/machine-id becomes `uninitialized` (systemd's first-boot marker). */
export function applyCleanup(nodes: Map<string, TreeNode>, sourceDateEpoch: number): void {
  if (isDir(nodes, 'boot')) below(nodes, 'boot').forEach((n) => removePath(nodes, n.path));
  if (isDir(nodes, 'var/lib/pacman')) {
    for (const n of below(nodes, 'var/lib/pacman')) if (!n.path.slice('var/lib/pacman/'.length).includes('/') && n.type === 'file') removePath(nodes, n.path);
  }
  if (isDir(nodes, 'var/lib/pacman/sync')) [...below(nodes, 'var/lib/pacman/sync'), nodes.get('var/lib/pacman/sync')!].forEach((n) => removePath(nodes, n.path));
  for (const dir of ['var/cache/pacman/pkg', 'var/log']) {
    if (isDir(nodes, dir)) below(nodes, dir).filter((n) => n.type === 'file' || n.type === 'hardlink').forEach((n) => removePath(nodes, n.path));
  }
  if (isDir(nodes, 'var/tmp')) below(nodes, 'var/tmp').forEach((n) => removePath(nodes, n.path));
  for (const n of [...nodes.values()]) {
    if (/\.(pacnew|pacsave|pacorig)$/.test(n.path) && nodes.has(n.path)) {
      removePath(nodes, n.path);
      if (n.type === 'dir') below(nodes, n.path).forEach((c) => removePath(nodes, c.path));
    }
  }
  // rm -f etc/machine-id; printf 'uninitialized\n' > etc/machine-id
  const machineId = nodes.get('etc/machine-id');
  if (machineId?.type === 'dir') throw new UserError(`archiso writes etc/machine-id, but ${describe(machineId)}`);
  if (!isDir(nodes, 'etc')) throw new UserError('archiso writes etc/machine-id, but the tree has no directory etc');
  removePath(nodes, 'etc/machine-id');
  nodes.set('etc/machine-id', contentNode('etc/machine-id', Buffer.from('uninitialized\n'), { mode: 0o644, uid: 0, gid: 0, mtime: sourceDateEpoch }, 'archiso'));
}
