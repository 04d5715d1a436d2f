import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import type { TreeNode } from '../install/installer.js';
import type { ImageSettings } from '../image/image-settings.js';
import { parentPaths } from '../tar/entry.js';
import { rfc3339 } from '../util/time.js';
import type { Spool } from '../util/spool.js';
import type { SandboxLimits } from './limits.js';
import { runSetupCommands } from './sandbox.js';
import { contentNode, ensureParents, readNodeContent } from './setup.js';

/**
 * The `archlinux-docker` preset: what archlinux-docker's scripts/make-rootfs.sh and Dockerfile.template do around
 * pacman, step by step, from their own files (data/archlinux-docker/, provenance in its PROVENANCE.md), minus what
 * varies between builds (docs/archlinux-docker.md lists each difference and why).
 */

/** The archlinux-docker commit data/archlinux-docker/ was copied from: the default image revision label. */
export const ARCHLINUX_DOCKER_COMMIT = '34b87485162b028c8d957bdcd2674359d883cd21';

export type ArchlinuxDockerProfile = 'base' | 'base-devel' | 'multilib-devel' | 'repro';

/** `setup.archlinuxDocker` in image settings (schemas/image-config.schema.json). */
export interface ArchlinuxDockerSettings {
  /** The make-rootfs.sh GROUP: multilib-devel takes devtools' multilib.conf; every profile names the title label. */
  profile?: ArchlinuxDockerProfile;
  /** BUILD_VERSION: VERSION_ID in etc/os-release and the version label (default YYYYMMDD.0 of SOURCE_DATE_EPOCH). */
  version?: string;
  /** The revision label (default ARCHLINUX_DOCKER_COMMIT, where the steps come from). */
  revision?: string;
  /** 1: one layer (default); 2: the official shape, the rootfs and then the Dockerfile's RUN layer. */
  layers?: 1 | 2;
}

export type ArchlinuxDockerPreset = Required<Omit<ArchlinuxDockerSettings, 'version'>> & { version?: string };

const DATA_DIR = new URL('../../../data/archlinux-docker/', import.meta.url);
const dataCache = new Map<string, string>();

/** A file of data/archlinux-docker/, as shipped. */
export function archlinuxDockerData(name: string): string {
  let text = dataCache.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(name, DATA_DIR), 'utf8');
    dataCache.set(name, text);
  }
  return text;
}

export function resolvePreset(settings: ArchlinuxDockerSettings = {}): ArchlinuxDockerPreset {
  return { profile: settings.profile ?? 'base', revision: settings.revision ?? ARCHLINUX_DOCKER_COMMIT, layers: settings.layers ?? 1, ...(settings.version !== undefined ? { version: settings.version } : {}) };
}

/**
 * make-rootfs.sh's sed: the line holding `#DisableSandboxFilesystem` (pacman 7.1's devtools config), else every
 * line holding `#DisableSandbox`, becomes a comment and the option set.
 */
export function disableSandbox(conf: string): string {
  const option = conf.includes('#DisableSandboxFilesystem') ? 'DisableSandboxFilesystem' : 'DisableSandbox';
  const lines = conf.split('\n');
  return lines.map((line, i) => (i < lines.length - 1 || line !== '') && line.includes(`#${option}`) ? `# No kernel landlock in containerd\n${option}` : line).join('\n');
}

/** etc/pacman.conf as make-rootfs.sh writes it: devtools' config, the NoExtract block appended, the sandbox edit. */
export function archlinuxDockerPacmanConf(profile: ArchlinuxDockerProfile): string {
  return disableSandbox(archlinuxDockerData(profile === 'multilib-devel' ? 'multilib.conf' : 'extra.conf') + archlinuxDockerData('pacman-conf.d-noextract.conf'));
}

/** The NoExtract block's patterns, in order (pacman splits each value at whitespace). */
export function archlinuxDockerNoExtract(): string[] {
  return archlinuxDockerData('pacman-conf.d-noextract.conf').split('\n')
    .map((line) => /^\s*NoExtract\s*=(.*)$/.exec(line)?.[1])
    .flatMap((value) => value?.trim().split(/\s+/).filter(Boolean) ?? []);
}

/**
 * The exclude file's patterns without tar's `./`, and the repro variant's own removals: its wiped keyring
 * (`rm -rf etc/pacman.d/gnupg/*`), the ldconfig aux-cache it deletes, and pacman's log, which it sends to /dev/null.
 */
export function archlinuxDockerExclude(): string[] {
  const listed = archlinuxDockerData('exclude').split('\n').filter((line) => line.trim() !== '').map((line) => line.replace(/^\.\//, ''));
  return [...listed, 'etc/pacman.d/gnupg/*', 'var/cache/ldconfig/aux-cache', 'var/log/pacman.log'];
}

/** The files and link make-rootfs.sh puts in place before pacman runs: its rootfs overlay and the os-release link. */
export function archlinuxDockerFiles(preset: ArchlinuxDockerPreset): { files: { path: string; content: string }[]; symlinks: { path: string; target: string }[] } {
  return {
    files: [
      { path: 'etc/pacman.conf', content: archlinuxDockerPacmanConf(preset.profile) },
      ...['etc/locale.conf', 'etc/pacman.d/mirrorlist'].map((path) => ({ path, content: archlinuxDockerData(`rootfs/${path}`) })),
    ],
    symlinks: [{ path: 'etc/os-release', target: '/usr/lib/os-release' }],
  };
}

/** The PATH setup commands see (setup/sandbox.ts), where a tool is looked for. */
const SANDBOX_PATH = ['usr/local/sbin', 'usr/local/bin', 'usr/bin', 'usr/sbin', 'bin', 'sbin'];

/** The node a path leads to in the tree, symlinks followed (absolute ones from the tree's root), as a chroot sees it. */
export function lookupInTree(nodes: ReadonlyMap<string, TreeNode>, path: string): TreeNode | undefined {
  let pending = path.split('/').filter((p) => p !== '' && p !== '.');
  const resolved: string[] = [];
  let hops = 0;
  let node: TreeNode | undefined;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '..') {
      resolved.pop();
      continue;
    }
    node = nodes.get([...resolved, name].join('/'));
    if (node?.type === 'hardlink') node = nodes.get(node.linkTarget!);
    if (!node) return undefined;
    if (node.type === 'symlink') {
      if (++hops > 40) return undefined; // ELOOP
      if (node.linkTarget!.startsWith('/')) resolved.length = 0;
      pending = [...node.linkTarget!.split('/').filter((p) => p !== '' && p !== '.'), ...pending];
      continue;
    }
    resolved.push(name);
  }
  return node;
}

/** Whether the tree has an executable file for `command`, found as the sandbox's PATH (or an absolute path) finds it. */
export function treeHasCommand(nodes: ReadonlyMap<string, TreeNode>, command: string): boolean {
  const candidates = command.startsWith('/') ? [command] : SANDBOX_PATH.map((dir) => `${dir}/${command}`);
  return candidates.some((path) => {
    const node = lookupInTree(nodes, path);
    return node?.type === 'file' && (node.mode & 0o111) !== 0;
  });
}

/** What each tool-run step acts on: a tree with some of it and without the tool is worth a note. */
const STEP_INPUTS: Record<string, { what: string; matches: (path: string) => boolean }> = {
  'update-ca-trust': { what: 'a trust store to extract', matches: (p) => p.startsWith('usr/share/ca-certificates/trust-source/') || p.startsWith('etc/ca-certificates/trust-source/') },
  '/usr/bin/systemd-sysusers': { what: 'sysusers.d files', matches: (p) => /^(usr\/lib|etc)\/sysusers\.d\/[^/]+\.conf$/.test(p) },
  ldconfig: { what: 'shared libraries', matches: (p) => /^(usr\/)?lib(32|64)?\/[^/]+\.so(\.[0-9]+)*$/.test(p) },
};

/**
 * Skips a step whose tool the tree does not have: there is nothing to run it with. When the tree has what the
 * step acts on, that is said (a spec that lists ca-certificates but not its tools, say); a tree with neither
 * (a small image of one's own) stays quiet. Returns whether the step runs.
 */
function toolStep(nodes: ReadonlyMap<string, TreeNode>, command: string[], log: (message: string) => void): boolean {
  const tool = command[0]!;
  if (treeHasCommand(nodes, tool)) return true;
  const inputs = STEP_INPUTS[tool];
  if (inputs && [...nodes.keys()].some(inputs.matches)) log(`archlinux-docker: skipped ${command.join(' ')}: the tree has ${inputs.what} but no ${tool} (the packages do not provide it)`);
  return false;
}

/**
 * make-rootfs.sh's chroot commands after pacman, in its order, kept to those whose tool the tree has (toolStep).
 * pacman-key is not run: no keyring is shipped (docs/archlinux-docker.md, "Keyring").
 */
export function archlinuxDockerCommands(nodes: ReadonlyMap<string, TreeNode>, log: (message: string) => void): string[][] {
  return [['update-ca-trust'], ['/usr/bin/systemd-sysusers', '--root', '/']].filter((command) => toolStep(nodes, command, log));
}

function ensureDirNode(nodes: Map<string, TreeNode>, path: string, mtime: number): void {
  ensureParents(nodes, path, mtime, `archlinux-docker ${path}`);
  const node = nodes.get(path);
  if (node && node.type !== 'dir') throw new UserError(`setup archlinux-docker: ${path} is a ${node.type}, not a directory`);
  if (!node) nodes.set(path, { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0, owner: 'setup' });
}

/**
 * The directories pacman's own runs leave: `pacman -Sy` makes its sync and cache directories, and `pacman-key
 * --init` (only where the tree has pacman-key) the keyring's, 0755, which the repro variant then empties.
 */
export function archlinuxDockerDirectories(nodes: Map<string, TreeNode>, sourceDateEpoch: number): void {
  for (const dir of ['var/lib/pacman/sync', 'var/cache/pacman/pkg']) ensureDirNode(nodes, dir, sourceDateEpoch);
  if (treeHasCommand(nodes, 'pacman-key')) ensureDirNode(nodes, 'etc/pacman.d/gnupg', sourceDateEpoch);
}

/** The version the image carries: the setting, else the UTC date of SOURCE_DATE_EPOCH as YYYYMMDD.0. */
export function presetVersion(preset: ArchlinuxDockerPreset, sourceDateEpoch: number): string {
  return preset.version ?? `${rfc3339(sourceDateEpoch).slice(0, 10).replace(/-/g, '')}.0`;
}

/** os-release is a few hundred bytes; the edit holds it in memory, so a package's huge one is refused. */
const OS_RELEASE_LIMIT = 1024 * 1024;

/** The RUN line of Dockerfile.template this step implements; a changed template must be looked at again. */
const TEMPLATE_RUN = "RUN ldconfig && \\\n    sed -i '/BUILD_ID/a VERSION_ID=TEMPLATE_VERSION_ID' /etc/os-release\n";

/**
 * `sed -i '/BUILD_ID/a VERSION_ID=…' /etc/os-release`: sed reads through the link, appends the line after each line
 * holding BUILD_ID, and renames a regular file over the link, with the mode and owner of the file it read. Returns
 * whether it was done: a link that leads to no file (a tree without usr/lib/os-release) is left as it is, logged.
 */
export async function editOsRelease(nodes: Map<string, TreeNode>, version: string, sourceDateEpoch: number, log: (message: string) => void): Promise<boolean> {
  const read = lookupInTree(nodes, 'etc/os-release');
  if (read?.type !== 'file') {
    log('archlinux-docker: skipped the os-release edit: etc/os-release leads to no file (the packages do not provide usr/lib/os-release)');
    return false;
  }
  if (read.size > OS_RELEASE_LIMIT) throw new UserError(`setup archlinux-docker: etc/os-release leads to ${read.path}, ${read.size} bytes, more than the ${OS_RELEASE_LIMIT} the os-release edit reads`);
  const text = (await readNodeContent(read)).toString('latin1');
  const lines = text.split('\n');
  const complete = text.endsWith('\n');
  if (complete) lines.pop();
  let appendedLast = false;
  const out = lines.flatMap((line, i) => {
    if (!line.includes('BUILD_ID')) return [line];
    if (i === lines.length - 1) appendedLast = true;
    return [line, `VERSION_ID=${version}`];
  });
  const edited = Buffer.from(out.join('\n') + (complete || appendedLast ? '\n' : ''), 'latin1');
  nodes.set('etc/os-release', contentNode('etc/os-release', edited, { mode: read.mode, uid: read.uid, gid: read.gid, mtime: sourceDateEpoch }));
  return true;
}

export interface DockerfileStepResult {
  /** Paths the step created or changed (with their parent directories), as the RUN layer holds them. */
  changed: string[];
  removed: string[];
}

/**
 * The Dockerfile's `RUN ldconfig && sed … /etc/os-release` (the repro variant's `rm -f` of ldconfig's aux-cache is
 * the exclude list's). ldconfig runs in the sandbox where the tree has it (toolStep).
 */
export async function runDockerfileStep(nodes: Map<string, TreeNode>, preset: ArchlinuxDockerPreset, sourceDateEpoch: number, context: { exclude: string[]; spool: Spool; limits?: SandboxLimits; log: (message: string) => void }): Promise<DockerfileStepResult> {
  if (!archlinuxDockerData('Dockerfile.template').includes(TEMPLATE_RUN)) throw new Error('data/archlinux-docker/Dockerfile.template: its RUN step is not the one setup/archlinux-docker.ts implements');
  const changed = new Set<string>();
  const removed: string[] = [];
  if (toolStep(nodes, ['ldconfig'], context.log)) {
    const result = await runSetupCommands(nodes, [['ldconfig']], sourceDateEpoch, context.exclude, context.spool, context.limits);
    result.changed.forEach((p) => changed.add(p));
    removed.push(...result.removed);
  }
  if (await editOsRelease(nodes, presetVersion(preset, sourceDateEpoch), sourceDateEpoch, context.log)) changed.add('etc/os-release');
  for (const path of [...changed]) parentPaths(path).forEach((p) => changed.add(p));
  return { changed: [...changed].sort(), removed: removed.sort() };
}

/**
 * The RUN layer's entries: what the step left of what it changed, and a whiteout (`.wh.NAME`) for each path of the
 * rootfs layer it removed.
 */
export function dockerfileLayerEntries(lower: ReadonlyMap<string, TreeNode>, nodes: ReadonlyMap<string, TreeNode>, step: DockerfileStepResult, sourceDateEpoch: number): Map<string, TreeNode> {
  const upper = new Map<string, TreeNode>();
  for (const path of step.changed) {
    const node = nodes.get(path);
    if (node) upper.set(path, node);
  }
  for (const path of step.removed) {
    if (!lower.has(path) || nodes.has(path)) continue;
    const slash = path.lastIndexOf('/');
    const whiteout = `${path.slice(0, slash + 1)}.wh.${path.slice(slash + 1)}`;
    upper.set(whiteout, contentNode(whiteout, Buffer.alloc(0), { mode: 0o644, uid: 0, gid: 0, mtime: sourceDateEpoch }));
  }
  return upper;
}

/** A `KEY="value"` or `KEY=value` list of a Dockerfile instruction, as Dockerfile.template writes them. */
function instructionValues(keyword: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of archlinuxDockerData('Dockerfile.template').split('\n')) {
    const m = new RegExp(`^${keyword} ([^=\\s]+)=(?:"([^"]*)"|(\\S*))$`).exec(line);
    if (m) out.push([m[1]!, m[2] ?? m[3]!]);
  }
  return out;
}

/** The default PATH BuildKit and Buildah give an image whose Dockerfile sets none, as the official image's config has. */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The image config the Dockerfile gives: its LABELs (the TEMPLATE_ values as the release job fills them, from the
 * settings and SOURCE_DATE_EPOCH, never the clock), Env (PATH, then its ENV) and CMD.
 */
export function archlinuxDockerConfig(preset: ArchlinuxDockerPreset, sourceDateEpoch: number): { Env: string[]; Cmd: string[]; Labels: Record<string, string> } {
  const fill: Record<string, string> = {
    TEMPLATE_TITLE: `Arch Linux ${preset.profile} Image`,
    TEMPLATE_VERSION_ID: presetVersion(preset, sourceDateEpoch),
    TEMPLATE_REVISION: preset.revision,
    TEMPLATE_CREATED: rfc3339(sourceDateEpoch),
  };
  const Labels = Object.fromEntries(instructionValues('LABEL').map(([key, value]) => [key, value.replace(/TEMPLATE_[A-Z_]+/g, (t) => fill[t] ?? t)]));
  const Env = [DEFAULT_PATH, ...instructionValues('ENV').map(([key, value]) => `${key}=${value}`)];
  const cmd = /^CMD (\[.*\])$/m.exec(archlinuxDockerData('Dockerfile.template'))?.[1];
  return { Env, Cmd: cmd ? (JSON.parse(cmd) as string[]) : [], Labels };
}

/** The settings with the preset's config under the spec's own: its Env and Cmd when it sets none, its labels under the spec's. */
export function withArchlinuxDockerConfig(settings: ImageSettings, preset: ArchlinuxDockerPreset, sourceDateEpoch: number): ImageSettings {
  const preset_ = archlinuxDockerConfig(preset, sourceDateEpoch);
  const own = settings.config ?? {};
  return { ...settings, config: { ...own, Env: own.Env ?? preset_.Env, Cmd: own.Cmd ?? preset_.Cmd, Labels: { ...preset_.Labels, ...own.Labels } } };
}
