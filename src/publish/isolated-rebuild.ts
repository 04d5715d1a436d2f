import { spawn } from 'node:child_process';
import { copyFile, link, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DiffJson } from '../compare/image-diff.js';
import { UserError } from '../errors.js';
import type { ContentCache } from '../fetch/cache.js';
import type { Lock } from '../lock/lock.js';
import type { Digest } from '../oci/digest.js';
import type { KeyExpiry } from '../pacman/signature.js';
import type { SandboxLimits } from '../setup/limits.js';
import { readSmall } from '../util/fs.js';

/**
 * publish's independent rebuild: the built image is rebuilt from its recipe alone by a second node process
 * (rebuild-child.ts) that shares nothing in memory with the build, under another time zone, locale and umask, in
 * another working directory, with its own empty package cache, $TMPDIR and $HOME. What it would fetch comes from a
 * flat mirror of hard links to the packages the build fetched and verified (no second download), which the child
 * hashes in full again as it takes them into its own cache.
 */

/** What the child is asked, as JSON on its stdin. */
export interface ChildRebuildRequest {
  reference: string;
  cache: string;
  mirrors: string[];
  umask: string;
  keyringDir?: string;
  keyExpiry?: KeyExpiry;
  limits?: SandboxLimits;
  noCommands: boolean;
}

/** What the child prints on stdout. */
export interface ChildRebuildResult {
  reproducible: boolean;
  manifest: string;
  rebuilt: string;
  notes: string[];
  /** The verdict as `rebuild` prints it, with the differences when they differ. */
  text: string;
  diff?: DiffJson;
}

/** The settings publish changes for the rebuild on purpose, as the attestation records them. */
export interface RebuildEnvironment {
  TZ: string;
  LC_ALL: string;
  umask: string;
}

/**
 * The rebuild's time zone, locale and umask: fixed choices (so the attestation that records them is the same on
 * every machine), each replaced by a second choice only when the caller already runs with it. Chatham's +12:45 is
 * no whole hour off anything; Turkish is the locale in which `I` lowercases to a dotless `ı`.
 */
export function rebuildEnvironment(env: NodeJS.ProcessEnv, umask: number): RebuildEnvironment {
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return {
    TZ: env.TZ === 'Pacific/Chatham' ? 'Asia/Kathmandu' : 'Pacific/Chatham',
    LC_ALL: locale === 'tr_TR.UTF-8' ? 'C' : 'tr_TR.UTF-8',
    umask: umask === 0o077 ? '0027' : '0077',
  };
}

/** This process's umask, from /proc (reading it through process.umask() is deprecated); 022 where /proc is missing. */
export async function currentUmask(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const found = /^Umask:\s*([0-7]+)$/m.exec(status);
  return found ? Number.parseInt(found[1]!, 8) : 0o022;
}

const SAFE_FILE_NAME = /^(?!\.\.?$)[^/\0]+$/;

/**
 * A flat mirror directory of the lock's packages, each a hard link to the build's verified cache entry (a copy
 * when the cache is on another filesystem). A package the cache lacks is left out: the child fetches it itself.
 */
export async function mirrorOfCache(lock: Lock, cache: ContentCache, dir: string): Promise<number> {
  await mkdir(dir, { recursive: true });
  let linked = 0;
  for (const pkg of lock.packages) {
    if (!SAFE_FILE_NAME.test(pkg.filename)) continue; // a lock's file name is one path component; anything else is not served
    const from = cache.path(`sha256:${pkg.sha256}` as Digest);
    const to = join(dir, pkg.filename);
    try {
      await link(from, to);
      linked++;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      if (code === 'EEXIST') continue; // the same file name twice in a lock: the first is served
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw new UserError(`publish: cannot link ${from} into the rebuild's mirror: ${(err as Error).message}`);
      await copyFile(from, to);
      linked++;
    }
  }
  return linked;
}

export interface IsolatedRebuildOptions {
  /** The built image, `oci:DIR:TAG`. */
  reference: string;
  /** An empty directory the child gets for its cache, $TMPDIR, $HOME and working directory. */
  scratch: string;
  /** The flat mirror of the build's packages (mirrorOfCache). */
  mirror: string;
  environment: RebuildEnvironment;
  keyringDir?: string;
  keyExpiry?: KeyExpiry;
  limits?: SandboxLimits;
  noCommands?: boolean;
  log: (message: string) => void;
}

/** The child's answer; `failed` is its one-line error when the rebuild could not be done. */
export type IsolatedRebuild = { result: ChildRebuildResult } | { failed: string };

const MAX_CHILD_OUTPUT = 64 * 1024 * 1024;
const CHILD_ENTRY = new URL('./rebuild-child.js', import.meta.url);
/** The caller's settings that would point the child at the caller's files or state. */
const NOT_INHERITED = ['REPRO_OCI_CACHE', 'REPRO_OCI_STATE', 'XDG_CACHE_HOME', 'XDG_CONFIG_HOME', 'XDG_STATE_HOME', 'LANG', 'LANGUAGE', 'SOURCE_DATE_EPOCH'];

export async function rebuildInSeparateProcess(options: IsolatedRebuildOptions): Promise<IsolatedRebuild> {
  const dirs = { cache: join(options.scratch, 'cache'), tmp: join(options.scratch, 'tmp'), home: join(options.scratch, 'home'), cwd: join(options.scratch, 'work') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of NOT_INHERITED) delete env[name];
  for (const name of Object.keys(env)) if (name.startsWith('LC_')) delete env[name];
  Object.assign(env, { TZ: options.environment.TZ, LC_ALL: options.environment.LC_ALL, LANG: options.environment.LC_ALL, TMPDIR: dirs.tmp, HOME: dirs.home });
  const request: ChildRebuildRequest = {
    reference: options.reference,
    cache: dirs.cache,
    mirrors: [pathToFileURL(`${options.mirror}/`).href],
    umask: options.environment.umask,
    ...(options.keyringDir ? { keyringDir: options.keyringDir } : {}),
    ...(options.keyExpiry ? { keyExpiry: options.keyExpiry } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    noCommands: options.noCommands ?? false,
  };
  const child = spawn(process.execPath, [CHILD_ENTRY.pathname], { cwd: dirs.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const stop = (): void => void child.kill('SIGKILL');
  process.once('exit', stop);
  try {
    const stdout = readSmall(child.stdout, MAX_CHILD_OUTPUT, 'the rebuild process\'s output');
    let lastLine = '';
    let pending = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('repro-oci: ')) lastLine = line.slice('repro-oci: '.length);
        else options.log(`rebuild: ${line}`);
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(request));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve([c, s]));
    });
    const output = await stdout;
    if (code === 0) return { result: JSON.parse(output.toString('utf8')) as ChildRebuildResult };
    if (code === 2 && lastLine) return { failed: lastLine };
    throw new Error(`the rebuild process ended with ${signal ?? `exit ${code}`}: ${lastLine || pending || '(no message)'}`);
  } finally {
    process.removeListener('exit', stop);
  }
}
