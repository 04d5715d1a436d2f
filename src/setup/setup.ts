import { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { PathPatterns } from '../install/noextract.js';
import type { TreeNode } from '../install/installer.js';
import { normalizeMemberPath, parentPaths } from '../tar/entry.js';
import { archlinuxDockerExclude, archlinuxDockerFiles, archlinuxDockerNoExtract, resolvePreset, type ArchlinuxDockerPreset, type ArchlinuxDockerSettings } from './archlinux-docker.js';

/** `setup:` in image settings (schemas/image-config.schema.json). */
export interface SetupSettings {
  presets?: 'archlinux-docker'[];
  /** Options of the archlinux-docker preset (setup/archlinux-docker.ts). */
  archlinuxDocker?: ArchlinuxDockerSettings;
  files?: { path: string; content: string; mode?: string; uid?: number; gid?: number }[];
  symlinks?: { path: string; target: string }[];
  commands?: string[][];
  lockRootPassword?: boolean;
  exclude?: string[];
  /** Run the packages' install scriptlets (pre_install/post_install) as pacman does (setup/scriptlets.ts). */
  scriptlets?: boolean;
  /** Run ALPM hooks (the packages' and `hookFiles`) as pacman does. */
  hooks?: boolean;
  /** Hooks of the spec's own: a HookDir after the tree's usr/share/libalpm/hooks, overriding same-named files. */
  hookFiles?: { name: string; content: string }[];
}

export type ExpandedSetup = Required<Omit<SetupSettings, 'presets' | 'archlinuxDocker'>> & {
  /** NoExtract patterns of the presets, before the spec's own `noExtract`. */
  noExtract: string[];
  /** The archlinux-docker preset, when the setup names it: its steps on the tree, its config and layers. */
  archlinuxDocker?: ArchlinuxDockerPreset;
};

/** Presets expanded, then the user's own entries: the settings every later step works from. */
export function expandSetup(setup: SetupSettings | undefined): ExpandedSetup {
  const out: ExpandedSetup = { files: [], symlinks: [], commands: [], lockRootPassword: false, exclude: [], noExtract: [], scriptlets: setup?.scriptlets ?? false, hooks: setup?.hooks ?? false, hookFiles: setup?.hookFiles ?? [] };
  for (const preset of setup?.presets ?? []) {
    if (preset !== 'archlinux-docker') throw new UserError(`unknown setup preset ${String(preset)}`);
    const resolved = resolvePreset(setup?.archlinuxDocker);
    const { files, symlinks } = archlinuxDockerFiles(resolved);
    out.archlinuxDocker = resolved;
    out.files.push(...files);
    out.symlinks.push(...symlinks);
    out.exclude.push(...archlinuxDockerExclude());
    out.noExtract.push(...archlinuxDockerNoExtract());
    out.lockRootPassword = true;
  }
  if (setup?.archlinuxDocker && !out.archlinuxDocker) throw new UserError('setup.archlinuxDocker is set but presets does not name archlinux-docker');
  out.files.push(...(setup?.files ?? []));
  out.symlinks.push(...(setup?.symlinks ?? []));
  out.commands.push(...(setup?.commands ?? []));
  out.exclude.push(...(setup?.exclude ?? []));
  if (setup?.lockRootPassword !== undefined) out.lockRootPassword = setup.lockRootPassword;
  return out;
}

/** --no-commands: a spec or recipe that runs anything in the sandbox is refused, naming it, before anything is fetched. */
/** What a setup runs in the sandbox besides its commands, in words: the preset's tools, scriptlets, hooks. */
export function sandboxedRuns(setup: ExpandedSetup): string[] {
  const runs: string[] = [];
  if (setup.archlinuxDocker) runs.push("the archlinux-docker preset's update-ca-trust, systemd-sysusers and ldconfig (where the tree has them)");
  if (setup.scriptlets) runs.push("the packages' install scriptlets (setup.scriptlets)");
  if (setup.hooks) runs.push('ALPM hooks (setup.hooks)');
  return runs;
}

export function refuseCommands(setup: ExpandedSetup, what: string): void {
  const { commands } = setup;
  if (commands.length) throw new UserError(`--no-commands: the ${what} has ${commands.length} setup command(s): ${commands.map((c) => JSON.stringify(c)).join(', ')}`);
  const runs = sandboxedRuns(setup);
  if (runs.length) throw new UserError(`--no-commands: the ${what} runs ${runs.join(' and ')} in the sandbox`);
}

function setupPath(raw: string, what: string): string {
  const path = normalizeMemberPath(raw.replace(/^\/+/, ''));
  if (!path) throw new UserError(`setup ${what}: invalid path ${JSON.stringify(raw)}`);
  return path;
}

export async function readNodeContent(node: TreeNode): Promise<Buffer> {
  if (!node.open || node.size === 0) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of await node.open()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function ensureParents(nodes: Map<string, TreeNode>, path: string, mtime: number, what: string): void {
  for (const parent of parentPaths(path)) {
    const node = nodes.get(parent);
    if (node && node.type !== 'dir') throw new UserError(`setup ${what}: ${parent} is a ${node.type}, not a directory`);
    if (!node) nodes.set(parent, { path: parent, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0, owner: 'setup' });
  }
}

export function contentNode(path: string, content: Buffer, base: { mode: number; uid: number; gid: number; mtime: number }, owner = 'setup'): TreeNode {
  return { path, type: 'file', ...base, size: content.length, open: () => Readable.from([content]), owner };
}

/** Adds the setup's files and symlinks to a tree, replacing what packages put there. */
export function applySetupFiles(nodes: Map<string, TreeNode>, setup: ExpandedSetup, sourceDateEpoch: number): void {
  for (const file of setup.files) {
    const path = setupPath(file.path, 'file');
    ensureParents(nodes, path, sourceDateEpoch, `file ${path}`);
    if (nodes.get(path)?.type === 'dir') throw new UserError(`setup file ${path}: a directory is there`);
    const mode = file.mode !== undefined ? parseInt(file.mode, 8) : 0o644;
    nodes.set(path, contentNode(path, Buffer.from(file.content, 'utf8'), { mode, uid: file.uid ?? 0, gid: file.gid ?? 0, mtime: sourceDateEpoch }));
  }
  for (const link of setup.symlinks) {
    const path = setupPath(link.path, 'symlink');
    ensureParents(nodes, path, sourceDateEpoch, `symlink ${path}`);
    if (nodes.get(path)?.type === 'dir') throw new UserError(`setup symlink ${path}: a directory is there`);
    nodes.set(path, { path, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: sourceDateEpoch, size: 0, linkTarget: link.target, owner: 'setup' });
  }
}

/**
 * root:: → root:!: in etc/shadow, as archlinux-docker does; keeps the file's metadata. A tree without etc/shadow
 * has no password to lock: with `skipMissing` (the preset's own step) that is logged, else (the spec asks for it
 * itself) it is the error.
 */
export async function lockRootPassword(nodes: Map<string, TreeNode>, skipMissing?: (message: string) => void): Promise<void> {
  const shadow = nodes.get('etc/shadow');
  if (!shadow && skipMissing) return skipMissing('archlinux-docker: skipped the root password lock: the tree has no etc/shadow (the packages do not provide it; filesystem does in Arch)');
  if (!shadow || shadow.type !== 'file') throw new UserError(`setup lockRootPassword: the tree has no etc/shadow${shadow ? ' file (it is a ' + shadow.type + ')' : ''}`);
  const text = (await readNodeContent(shadow)).toString('utf8');
  const locked = text.replace(/^root::/m, 'root:!:');
  if (locked !== text) nodes.set('etc/shadow', contentNode('etc/shadow', Buffer.from(locked), shadow, shadow.owner));
}

/** Drops excluded paths and everything below an excluded directory; returns how many entries went. */
export function applyExcludes(nodes: Map<string, TreeNode>, patterns: string[]): number {
  if (patterns.length === 0) return 0;
  const matcher = new PathPatterns(patterns);
  let removed = 0;
  const excludedDirs: string[] = [];
  for (const path of [...nodes.keys()].sort()) {
    if (matcher.matches(path) || excludedDirs.some((d) => path.startsWith(`${d}/`))) {
      if (nodes.get(path)!.type === 'dir') excludedDirs.push(path);
      nodes.delete(path);
      removed++;
    }
  }
  for (const node of nodes.values()) {
    if (node.type === 'hardlink' && !nodes.has(node.linkTarget!)) throw new UserError(`setup exclude: ${node.path} is a hardlink to the excluded ${node.linkTarget}`);
  }
  return removed;
}
