import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { isManifestMediaType, MediaType } from '../oci/mediatypes.js';
import { checkConfig, checkManifest, MAX_JSON_BYTES, parseRawJson } from '../oci/raw-json.js';
import { RECIPE_LABEL } from '../image/recipe.js';
import { Annotation, type Descriptor, type ImageConfig, type Manifest, type Platform } from '../oci/types.js';
import { makeScratchDir, readSmall, settled, siblingTempPath } from '../util/fs.js';
import { checkNewDirectory } from '../util/writable.js';
import { bytesStream, LayoutDestination, LayoutSource } from './layout.js';
import { checkBranchName } from './reference.js';
import type { ImageDestination, ImageSource } from './types.js';

/**
 * `oci-import:DIR[:BRANCH]`: a git repository whose branch holds an OCI image layout, the form docker-library's
 * `Builder: oci-import` reads (meta-scripts helpers/oci-import.sh: `git archive GitCommit:Directory`, then it
 * keeps the manifest, config and layers byte for byte and rewrites only index.json). The commit is a function of
 * the image and the parent commit alone: tree from the layout, author and committer `repro-oci`, both dated by the
 * image's `created` (SOURCE_DATE_EPOCH) in UTC, a message made from the image — so the commit hash is as
 * reproducible as the image. git runs with a scrubbed environment: no system or global config, no hooks, no
 * signing, no fsmonitor, no filters.
 */

/** Config media types docker-library accepts (oci.jq media_types_config). */
const CONFIG_TYPES: ReadonlySet<string> = new Set([MediaType.OciConfig, MediaType.DockerConfig]);

/** What docker-library's oci-import validation accepts as layers (meta-scripts oci.jq media_types_layer). */
const IMPORTABLE_LAYER_TYPES: ReadonlySet<string> = new Set([MediaType.OciLayer, MediaType.OciLayerGzip, MediaType.DockerLayer, MediaType.DockerLayerGzip]);

/** The commit's identity: fixed, so that the hash depends on nothing of the machine or the user. */
export const OCI_IMPORT_IDENTITY = { name: 'repro-oci', email: 'repro-oci@invalid' } as const;

/** Where the layout sits in the commit's tree (bashbrew's `Directory`) and the file it reads (`File`). */
const DIRECTORY = '.';
const FILE = 'index.json';

/** git's empty tree (SHA-1): the "before" of a checkout into an unborn branch. */
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/** The `Builder: oci-import` entry of an official-images library file (RFC 2822 style, as bashbrew reads it). */
export interface OciImportStanza {
  /** From the image's `org.opencontainers.image.version` label; absent when it has none (name the tags yourself). */
  Tags?: string;
  Architectures: string;
  GitFetch: string;
  GitCommit: string;
  Directory: string;
  File: string;
  Builder: 'oci-import';
}

/** What an oci-import output wrote. */
export interface OciImportCommit {
  /** The repository directory (as given). */
  repository: string;
  branch: string;
  /** The commit (40 hex digits): bashbrew's GitCommit. */
  commit: string;
  /** The branch's previous head, when it had one: the new commit's parent. */
  parent?: string;
  tree: string;
  /** The image manifest the layout names. */
  manifest: Digest;
  /** bashbrew's architecture name (amd64, arm64v8, …). */
  architecture: string;
  stanza: OciImportStanza;
  /** The stanza as lines to paste into library/NAME (with a comment line where a field must be filled in). */
  stanzaText: string;
}

/** OCI platform → bashbrew architecture (bashbrew architecture/oci-platform.go). */
export function bashbrewArchitecture(platform: Pick<Platform, 'os' | 'architecture' | 'variant'>): string | undefined {
  const { os, architecture, variant } = platform;
  const linux: Record<string, string> = {
    amd64: 'amd64',
    '386': 'i386',
    'arm/v5': 'arm32v5',
    'arm/v6': 'arm32v6',
    'arm/v7': 'arm32v7',
    arm64: 'arm64v8',
    'arm64/v8': 'arm64v8',
    ppc64le: 'ppc64le',
    riscv64: 'riscv64',
    s390x: 's390x',
    mips64le: 'mips64le',
  };
  if (os === 'linux') return linux[variant ? `${architecture}/${variant}` : architecture];
  if (os === 'windows' && architecture === 'amd64') return 'windows-amd64';
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// git, scrubbed

/** Config that must not come from the repository or the user: no hooks, signing, fsmonitor, conversions or gc. */
const GIT_CONFIG = [
  'core.hooksPath=/dev/null',
  'commit.gpgSign=false',
  'core.fsmonitor=false',
  'i18n.commitEncoding=UTF-8',
  'core.autocrlf=false',
  'core.eol=lf',
  'core.symlinks=false',
  'gc.auto=0',
  // Layers above this stream into a pack and out to the checkout instead of being held whole in git's memory.
  'core.bigFileThreshold=16m',
  'maintenance.auto=false',
];

interface Git {
  run(args: string[], options?: { input?: string; env?: Record<string, string>; okCodes?: number[] }): Promise<{ code: number; stdout: string }>;
  /** Runs git with its output streamed into a new file. */
  toFile(args: string[], file: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** git bound to `cwd`, with an environment built from nothing: an empty HOME, no system or global config, UTC, C locale. */
async function scrubbedGit(cwd: string, label: string): Promise<Git> {
  const home = await makeScratchDir('git-home');
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home.path,
    XDG_CONFIG_HOME: home.path,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    // status must not refresh the user's index: a refused run touches nothing.
    GIT_OPTIONAL_LOCKS: '0',
    // git must not find a repository above DIR (a layout directory inside someone's checkout).
    GIT_CEILING_DIRECTORIES: dirname(cwd),
    LC_ALL: 'C',
    TZ: 'UTC',
  };
  const spawnGit = (args: string[], env: Record<string, string> = {}): ChildProcess => spawn('git', [...GIT_CONFIG.flatMap((c) => ['-c', c]), ...args], { cwd, env: { ...base, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const notRunnable = (e: NodeJS.ErrnoException): UserError => (e.code === 'ENOENT' ? new UserError(`${label}: needs git, which is not on PATH (Debian: apt-get install git)`) : new UserError(`${label}: cannot run git: ${e.message}`));
  return {
    cleanup: home.cleanup,
    toFile: async (args, file) => {
      const child = spawnGit(args);
      child.stdin!.end();
      child.stderr!.resume();
      const exited = new Promise<number | null>((resolveExit, reject) => {
        child.on('error', (e: NodeJS.ErrnoException) => reject(notRunnable(e)));
        child.on('close', resolveExit);
      });
      await pipeline(child.stdout!, createWriteStream(file, { flags: 'wx', mode: 0o644 }));
      const code = await exited;
      if (code !== 0) throw new UserError(`${label}: git ${args.join(' ')} failed (exit ${code})`);
    },
    run: (args, options = {}) =>
      new Promise((resolvePromise, reject) => {
        const child = spawnGit(args, options.env);
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout!.on('data', (b: Buffer) => out.push(b));
        child.stderr!.on('data', (b: Buffer) => err.push(b));
        child.on('error', (e: NodeJS.ErrnoException) => reject(notRunnable(e)));
        child.on('close', (code) => {
          const stdout = Buffer.concat(out).toString('utf8');
          if (code === 0 || options.okCodes?.includes(code ?? -1)) return resolvePromise({ code: code ?? -1, stdout });
          // git's first fatal:/error: line says why (hints follow it); else its last line.
          const lines = Buffer.concat(err).toString('utf8').trim().split('\n').filter(Boolean);
          const why = (lines.find((l) => /^(fatal|error): /.test(l)) ?? lines.pop() ?? `exit ${code}`).replace(/^(fatal|error): /, '');
          reject(new UserError(`${label}: git ${args[0]} failed: ${why}`));
        });
        child.stdin!.on('error', () => {}); // git may exit before reading all of stdin; its exit code tells
        child.stdin!.end(options.input ?? '');
      }),
  };
}

/** What is at DIR: nothing (or an empty directory) to create a repository in, or a repository to add a commit to. */
type Target = { kind: 'new' } | { kind: 'repository'; bare: boolean; headBranch: string | undefined };

async function inspectTarget(dir: string, label: string): Promise<Target> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) return { kind: 'new' };
  if (!info.isDirectory()) throw new UserError(`${label}: exists and is not a directory`);
  const names = await readdir(dir);
  if (names.length === 0) return { kind: 'new' };
  const looksBare = ['HEAD', 'objects', 'refs'].every((n) => names.includes(n));
  if (!names.includes('.git') && !looksBare) throw new UserError(`${label}: exists, is not empty and is not a git repository`);
  const top = await realpath(dir);
  const git = await scrubbedGit(top, label);
  try {
    const bare = (await git.run(['rev-parse', '--is-bare-repository'])).stdout.trim() === 'true';
    if (!bare) {
      const root = (await git.run(['rev-parse', '--show-toplevel'])).stdout.trim();
      if (root !== top) throw new UserError(`${label}: is not the top directory of a git repository`);
    }
    const format = (await git.run(['rev-parse', '--show-object-format'])).stdout.trim();
    if (format !== 'sha1') throw new UserError(`${label}: a ${format} repository; bashbrew's GitCommit is a SHA-1 commit`);
    if (!bare) {
      const status = (await git.run(['status', '--porcelain', '--untracked-files=all', '--ignore-submodules=none'])).stdout;
      if (status !== '') throw new UserError(`${label}: has uncommitted changes (git status): commit, stash or remove them first`);
    }
    const head = await git.run(['symbolic-ref', '-q', 'HEAD'], { okCodes: [1] });
    const ref = head.stdout.trim();
    return { kind: 'repository', bare, headBranch: ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : undefined };
  } finally {
    await git.cleanup();
  }
}

/**
 * Checks, before any work, that DIR can take an oci-import commit: git is installed, DIR is absent, an empty
 * directory or the top of a clean SHA-1 git repository (never a file, never another non-empty directory), and
 * BRANCH, when given, a valid name that is, if it exists, a commit.
 */
export async function checkOciImportTarget(dir: string, branch: string | undefined, label = `oci-import:${dir}${branch ? `:${branch}` : ''}`): Promise<void> {
  if (branch !== undefined) checkBranchName(branch, label);
  const probeDir = await makeScratchDir('git-probe');
  try {
    const git = await scrubbedGit(probeDir.path, label);
    await git.run(['--version']).finally(() => git.cleanup());
  } finally {
    await probeDir.cleanup();
  }
  const target = await inspectTarget(dir, label);
  if (target.kind === 'new') return checkNewDirectory(dir, label);
  if (branch !== undefined) await branchHead(resolve(dir), branch, label);
}

/** The branch's commit, undefined when it does not exist; an existing ref that is no commit is refused. */
async function branchHead(dir: string, branch: string, label: string): Promise<string | undefined> {
  const git = await scrubbedGit(dir, label);
  try {
    const exists = await git.run(['show-ref', '--verify', '--quiet', `refs/heads/${branch}`], { okCodes: [1] });
    if (exists.code !== 0) return undefined;
    const commit = await git.run(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`], { okCodes: [1] });
    if (commit.code !== 0) throw new UserError(`${label}: refs/heads/${branch} is not a commit`);
    return commit.stdout.trim();
  } finally {
    await git.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the image's facts: platform, date, labels

interface ImageFacts {
  manifest: Manifest;
  config: ImageConfig;
  platform: Platform;
  architecture: string;
  sourceDateEpoch: number;
  labels: Record<string, string>;
}

async function readImageFacts(documents: ReadonlyMap<string, Buffer>, root: Descriptor, label: string): Promise<ImageFacts> {
  if (!isManifestMediaType(root.mediaType)) {
    throw new UserError(`${label}: docker-library's oci-import takes one platform's image, not an index (${root.mediaType}): name one platform's manifest`);
  }
  const blob = async (digest: Digest): Promise<Buffer> => {
    const bytes = documents.get(digest);
    if (!bytes) throw new UserError(`${label}: ${digest} was not written as a manifest or config`);
    return bytes;
  };
  const manifest = checkManifest(parseRawJson(await blob(root.digest), `manifest ${root.digest}`), `manifest ${root.digest}`, root.mediaType).value;
  manifest.layers.forEach((layer, i) => {
    if (!IMPORTABLE_LAYER_TYPES.has(layer.mediaType)) {
      throw new UserError(`${label}: docker-library's oci-import takes tar or gzip layers; layer ${i} is ${layer.mediaType} (build with image.layer.compression: gzip)`);
    }
  });
  const config = checkConfig(parseRawJson(await blob(manifest.config.digest), `config ${manifest.config.digest}`), `config ${manifest.config.digest}`).value;
  const platform: Platform = { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) };
  const architecture = bashbrewArchitecture(platform);
  if (!architecture) throw new UserError(`${label}: bashbrew has no architecture for ${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`);
  const created = typeof config.created === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(config.created) ? Date.parse(config.created) / 1000 : NaN;
  if (!Number.isSafeInteger(created) || created < 0) {
    throw new UserError(`${label}: the image config's created (${JSON.stringify(config.created ?? null)}) is not a whole second in UTC; it dates the commit`);
  }
  return { manifest, config, platform, architecture, sourceDateEpoch: created, labels: config.config?.Labels ?? {} };
}

/** The commit message: the image and where it came from, nothing of the machine that wrote it. */
function commitMessage(facts: ImageFacts, manifestDigest: Digest): string {
  const title = facts.labels['org.opencontainers.image.title'] ?? 'OCI image';
  const version = facts.labels['org.opencontainers.image.version'];
  const recipe = facts.labels[RECIPE_LABEL];
  const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ').slice(0, 200);
  return [
    `${oneLine(title)}${version ? ` ${oneLine(version)}` : ''} for ${facts.architecture}`,
    '',
    `Manifest: ${manifestDigest}`,
    `Platform: ${facts.platform.os}/${facts.platform.architecture}${facts.platform.variant ? `/${facts.platform.variant}` : ''}`,
    `Created: ${facts.config.created} (SOURCE_DATE_EPOCH=${facts.sourceDateEpoch})`,
    ...(recipe ? [`Recipe: ${oneLine(recipe)}`] : []),
    '',
    'An OCI image layout for docker-library\'s "Builder: oci-import", written by repro-oci.',
    '',
  ].join('\n');
}

const DOCKER_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function ociImportStanza(facts: { labels: Record<string, string>; architecture: string }, branch: string, commit: string): { stanza: OciImportStanza; text: string } {
  const version = facts.labels['org.opencontainers.image.version'];
  const stanza: OciImportStanza = {
    ...(version !== undefined && DOCKER_TAG.test(version) ? { Tags: version } : {}),
    Architectures: facts.architecture,
    GitFetch: `refs/heads/${branch}`,
    GitCommit: commit,
    Directory: DIRECTORY,
    File: FILE,
    Builder: 'oci-import',
  };
  const lines = Object.entries(stanza).map(([k, v]) => `${k}: ${v}`);
  if (stanza.Tags === undefined) lines.unshift('# Tags: (name them: the image has no org.opencontainers.image.version label)');
  return { stanza, text: `${lines.join('\n')}\n` };
}

// ---------------------------------------------------------------------------------------------------------------
// the destination

/** Every file of the layout, as paths relative to it (oci-layout, index.json, blobs/sha256/HEX). */
async function layoutFiles(dir: string): Promise<string[]> {
  const blobs = (await readdir(join(dir, 'blobs', 'sha256'))).map((n) => `blobs/sha256/${n}`);
  const top = (await readdir(dir)).filter((n) => n !== 'blobs');
  return [...top, ...blobs].sort();
}

/** Writes the layout's files as git objects and returns the root tree (git mktree sorts entries itself). */
async function writeTree(git: Git, layoutDir: string): Promise<string> {
  const files = await layoutFiles(layoutDir);
  const hashed = (await git.run(['hash-object', '-w', '--no-filters', '--stdin-paths'], { input: files.map((f) => join(layoutDir, f)).join('\n') + '\n' })).stdout.trim().split('\n');
  if (hashed.length !== files.length) throw new UserError(`git hash-object returned ${hashed.length} objects for ${files.length} files`);
  const entry = (mode: string, type: string, sha: string, name: string): string => `${mode} ${type} ${sha}\t${name}`;
  const mktree = async (lines: string[]): Promise<string> => (await git.run(['mktree'], { input: lines.join('\n') + '\n' })).stdout.trim();
  const blobLines = files.flatMap((f, i) => (f.startsWith('blobs/sha256/') ? [entry('100644', 'blob', hashed[i]!, f.slice('blobs/sha256/'.length))] : []));
  const sha256Tree = await mktree(blobLines);
  const blobsTree = await mktree([entry('040000', 'tree', sha256Tree, 'sha256')]);
  const topLines = files.flatMap((f, i) => (f.includes('/') ? [] : [entry('100644', 'blob', hashed[i]!, f)]));
  return mktree([...topLines, entry('040000', 'tree', blobsTree, 'blobs')]);
}

/**
 * Stages the image as an OCI layout (the layout writer, in scratch space), then on commit writes it into the
 * repository as objects, makes the commit, and only then moves the branch (and the working tree, when HEAD is on
 * that branch). A new repository is assembled beside DIR and renamed into place. Nothing of DIR changes on
 * failure, except unreachable objects git's gc removes.
 */
export class OciImportDestination implements ImageDestination {
  /** Set by a successful commit(). */
  result: OciImportCommit | undefined;
  private readonly documents = new Map<string, Buffer>();

  private constructor(
    private readonly dir: string,
    private readonly branch: string | undefined,
    private readonly label: string,
    private readonly scratch: { path: string; cleanup: () => Promise<void> },
    private readonly layout: LayoutDestination,
  ) {}

  static async create(dir: string, branch: string | undefined, label = `oci-import:${dir}${branch ? `:${branch}` : ''}`): Promise<OciImportDestination> {
    await checkOciImportTarget(dir, branch, label);
    const scratch = await makeScratchDir('oci-import');
    try {
      const layout = await LayoutDestination.create(join(scratch.path, 'layout'), undefined, label);
      return new OciImportDestination(dir, branch, label, scratch, layout);
    } catch (err) {
      await scratch.cleanup();
      throw err;
    }
  }

  hasBlob(digest: Digest): Promise<boolean> {
    return this.layout.hasBlob(digest);
  }

  /** Manifests and configs are also kept in memory (bounded: MAX_JSON_BYTES each): commit() reads the platform and date from them. */
  async putBlob(descriptor: Descriptor, content: Readable | AsyncIterable<Buffer>): Promise<void> {
    if (!isManifestMediaType(descriptor.mediaType) && !CONFIG_TYPES.has(descriptor.mediaType)) return this.layout.putBlob(descriptor, content);
    const bytes = await readSmall(content, MAX_JSON_BYTES, `${this.label}: blob ${descriptor.digest}`);
    await this.layout.putBlob(descriptor, bytesStream(bytes)); // verifies the digest
    this.documents.set(descriptor.digest, bytes);
  }

  async commit(root: Descriptor): Promise<void> {
    try {
      const layoutDir = join(this.scratch.path, 'layout');
      const facts = await readImageFacts(this.documents, root, this.label);
      const branch = this.branch ?? `dist-${facts.architecture}`;
      const version = facts.labels['org.opencontainers.image.version'];
      // One entry (docker-library's helper requires exactly one), with its platform; annotations of it are the
      // publisher's to replace, so only the tag is named.
      await this.layout.commit({
        mediaType: root.mediaType,
        digest: root.digest,
        size: root.size,
        platform: facts.platform,
        ...(version !== undefined && DOCKER_TAG.test(version) ? { annotations: { [Annotation.RefName]: version } } : {}),
      });
      this.result = await this.writeCommit(layoutDir, facts, root.digest, branch);
    } finally {
      await this.scratch.cleanup();
    }
  }

  async abort(): Promise<void> {
    await this.scratch.cleanup();
  }

  private async writeCommit(layoutDir: string, facts: ImageFacts, manifestDigest: Digest, branch: string): Promise<OciImportCommit> {
    const dir = resolve(this.dir);
    const target = await inspectTarget(dir, this.label); // again: DIR may have changed while the image was built
    const date = `@${facts.sourceDateEpoch} +0000`;
    const identity = {
      GIT_AUTHOR_NAME: OCI_IMPORT_IDENTITY.name,
      GIT_AUTHOR_EMAIL: OCI_IMPORT_IDENTITY.email,
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_NAME: OCI_IMPORT_IDENTITY.name,
      GIT_COMMITTER_EMAIL: OCI_IMPORT_IDENTITY.email,
      GIT_COMMITTER_DATE: date,
    };
    const ref = `refs/heads/${branch}`;
    const fresh = target.kind === 'new';
    const repoDir = fresh ? siblingTempPath(dir) : dir;
    if (fresh) await mkdir(repoDir);
    const git = await scrubbedGit(repoDir, this.label);
    try {
      if (fresh) await git.run(['init', '--quiet', '--template=', '--object-format=sha1', `--initial-branch=${branch}`]);
      const parent = fresh ? undefined : await branchHead(dir, branch, this.label);
      const tree = await writeTree(git, layoutDir);
      const commit = (await git.run(['commit-tree', '--no-gpg-sign', tree, ...(parent ? ['-p', parent] : []), '-F', '-'], { input: commitMessage(facts, manifestDigest), env: identity })).stdout.trim();
      const onBranch = target.kind === 'new' || (!target.bare && target.headBranch === branch);
      const update = ['update-ref', '-m', `repro-oci: oci-import ${manifestDigest}`, ref, commit, parent ?? ''];
      if (onBranch) {
        // The working tree follows the branch (it was clean); read-tree -m refuses to overwrite untracked files.
        await git.run(['read-tree', '-m', '-u', parent ?? EMPTY_TREE, commit]);
        try {
          await git.run(update, { env: identity });
        } catch (err) {
          await git.run(['read-tree', '-m', '-u', commit, parent ?? EMPTY_TREE]).catch(() => {});
          throw err;
        }
      } else {
        await git.run(update, { env: identity });
      }
      if (fresh) {
        const info = await stat(dir).catch(() => undefined);
        if (info?.isDirectory() && (await readdir(dir)).length === 0) await rm(dir, { recursive: true });
        else if (info) throw new UserError(`${this.label}: appeared while writing; not replaced`);
        await rename(repoDir, dir);
        settled(repoDir);
      }
      const { stanza, text } = ociImportStanza(facts, branch, commit);
      return { repository: this.dir, branch, commit, ...(parent ? { parent } : {}), tree, manifest: manifestDigest, architecture: facts.architecture, stanza, stanzaText: text };
    } catch (err) {
      if (fresh) {
        await rm(repoDir, { recursive: true, force: true });
        settled(repoDir);
      }
      throw err;
    } finally {
      await git.cleanup();
    }
  }
}

/**
 * Reads the layout a branch (default: HEAD) of an oci-import repository holds, as docker-library does: the
 * commit's tree is checked out into scratch space (symlinks as plain files) and read as an OCI layout.
 */
/** The paths of an OCI layout that a reader needs; nothing else of the commit is written out. */
const LAYOUT_PATH = /^(oci-layout|index\.json|blobs\/sha256\/[0-9a-f]{64})$/;

/**
 * Writes the layout files of `commit` into `dir` from git's blobs, by path, as plain files: no checkout, so no
 * smudge filter, attribute or hook that a stranger's repository configures runs (a `read-tree -u` runs the filters
 * of the repository's own config). Anything but regular files at layout paths is left out.
 */
async function exportLayout(git: Git, commit: string, dir: string, label: string): Promise<void> {
  const listing = (await git.run(['ls-tree', '-r', '-z', '--full-tree', commit])).stdout;
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const record of listing.split('\0')) {
    const found = /^(100644|100755) blob ([0-9a-f]{40})\t(.*)$/s.exec(record);
    if (!found || !LAYOUT_PATH.test(found[3]!)) continue;
    await git.toFile(['cat-file', 'blob', found[2]!], join(dir, found[3]!));
  }
  if (!(await stat(join(dir, 'index.json')).catch(() => undefined))) throw new UserError(`${label}: the commit holds no index.json`);
}

export async function openOciImportSource(dir: string, branch: string | undefined, label = `oci-import:${dir}${branch ? `:${branch}` : ''}`): Promise<ImageSource> {
  if (branch !== undefined) checkBranchName(branch, label);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new UserError(`${label}: no such directory`);
  const top = await realpath(dir);
  const scratch = await makeScratchDir('oci-import-read');
  const git = await scrubbedGit(top, label);
  try {
    const rev = branch === undefined ? 'HEAD' : `refs/heads/${branch}`;
    const commit = await git.run(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { okCodes: [1] });
    if (commit.code !== 0) throw new UserError(`${label}: ${branch === undefined ? 'HEAD is not a commit' : `no branch ${branch}`}`);
    const layoutDir = join(scratch.path, 'layout');
    await exportLayout(git, commit.stdout.trim(), layoutDir, label);
    return await LayoutSource.open(layoutDir, undefined, label, scratch.cleanup);
  } catch (err) {
    await scratch.cleanup();
    throw err;
  } finally {
    await git.cleanup();
  }
}
