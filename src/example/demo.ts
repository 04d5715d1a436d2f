import { spawn } from 'node:child_process';
import { copyFile, lstat, mkdir, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readLock } from '../lock/lock.js';
import { UserError } from '../errors.js';
import { makeScratchDir } from '../util/fs.js';
import { Progress } from '../util/progress.js';
import { EXAMPLE_DIR } from './generate.js';
import { startExampleRebuilders } from './rebuilders.js';
import { checkWorkspaceDirectory, stagedWorkspace, WORKSPACE_FILES, WORKSPACE_MIRRORS, WORKSPACE_TAG, writeWorkspaceSources } from './workspace.js';

/**
 * `repro-oci example`: the bundled example run end to end, offline, through the command line as a user runs it —
 * each step a separate process, so that the two builds share nothing but their inputs.
 */

const CLI = fileURLToPath(new URL('../../../bin/repro-oci.js', import.meta.url));

/** Copies a tree in reverse listing order with scrambled mtimes, so the second build sees a different disk. */
async function perturbedCopy(from: string, to: string, seed: { n: number }): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const name of (await readdir(from)).reverse()) {
    const src = join(from, name);
    const dst = join(to, name);
    const info = await lstat(src);
    if (info.isDirectory()) await perturbedCopy(src, dst, seed);
    else if (info.isSymbolicLink()) await symlink(await readlink(src), dst);
    else await copyFile(src, dst);
    seed.n = (seed.n * 48271) % 2147483647;
    if (!info.isSymbolicLink()) await utimes(dst, seed.n % 2000000000, seed.n % 2000000000);
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The repro-oci commands the example runs: lock, two builds, the rebuild, status on the lock and on the image. */
const EXAMPLE_COMMANDS = 6;

/** Runs one repro-oci command of the example (its progress is the example's step count, not its own). */
function cli(args: string[], cwd: string, env: Record<string, string>, umask: number, steps: Progress): Promise<Run> {
  return cliRun(args, cwd, env, umask).finally(() => steps.advance());
}

function cliRun(args: string[], cwd: string, env: Record<string, string>, umask: number): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const previous = process.umask(umask);
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env, REPRO_OCI_PROGRESS: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    process.umask(previous);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 2, stdout: stdout.trim(), stderr: stderr.trim() }));
  });
}

function must(run: Run, what: string): string {
  if (run.code !== 0) throw new UserError(`example: ${what} failed (exit ${run.code}): ${run.stderr.split('\n').slice(-3).join(' | ')}`);
  return run.stdout;
}

export interface ExampleOptions {
  /** Keep the example as a workspace here (new or empty): its sources, lock, image and a README. */
  dir?: string;
  log: (line: string) => void;
  /** Where the rebuild's error lines go (stderr). */
  logError: (line: string) => void;
}

/**
 * `status` against three emulated rebuilders (src/example/rebuilders.ts), on the lock and on the image: true when
 * both give the verdicts the scenarios call for — every package verified by alpha, the one beta says BAD failing.
 */
async function statusStep(workspace: string, dir: string, image: string, log: (line: string) => void, steps: Progress): Promise<boolean> {
  await mkdir(dir);
  const lock = await readLock(join(workspace, WORKSPACE_FILES.lock));
  const rebuilders = await startExampleRebuilders(lock, join(dir, 'rebuilders.yaml'));
  try {
    log(`Status: three emulated rebuilderd on 127.0.0.1 — alpha signs every package; beta says ${rebuilders.bad} is BAD and knows ${rebuilders.otherVersion} only at another version; gamma (v0, no key) says GOOD to all, unverified:`);
    const env = { REPRO_OCI_STATE: join(dir, 'state'), REPRO_OCI_CACHE: join(dir, 'cache'), TMPDIR: dir };
    const expected = `${lock.packages.length - 1}/${lock.packages.length} packages meet the policy; 1 BAD on rebuilder beta`;
    let met = true;
    for (const input of [WORKSPACE_FILES.lock, image]) {
      const run = await cli(['status', input, '--rebuilders', rebuilders.file], workspace, env, 0o022, steps);
      if (run.code === 2) must(run, 'status');
      const lines = run.stdout.split('\n');
      log(`  $ repro-oci status ${input} --rebuilders rebuilders.yaml   (exit ${run.code})`);
      log((input === image ? lines.slice(-1) : lines).map((l) => `    ${l}`).join('\n'));
      met &&= run.code === 1 && lines.at(-1) === expected;
    }
    return met;
  } finally {
    await rebuilders.close();
  }
}

/** Runs the example; true when both builds matched, the rebuild reproduced the image and status judged as expected. */
export async function runExample(options: ExampleOptions): Promise<boolean> {
  const { log } = options;
  if (options.dir !== undefined) await checkWorkspaceDirectory(options.dir);
  const scratch = await makeScratchDir('example');
  const staged = options.dir !== undefined ? stagedWorkspace(options.dir) : undefined;
  const steps = new Progress('example', { unit: 'commands' }).start(EXAMPLE_COMMANDS);
  try {
    // Build 1 runs in the workspace itself (kept with --dir), build 2 in a perturbed copy of its sources.
    const a = staged?.path ?? join(scratch.path, 'a');
    const b = join(scratch.path, 'b');
    const shownA = options.dir !== undefined ? resolve(options.dir) : a;
    await mkdir(a, { recursive: true });
    const spec = WORKSPACE_FILES.spec;
    await writeWorkspaceSources(a);
    log(`Generated the example package archive from ${join(EXAMPLE_DIR, 'packages.yaml')}`);
    await perturbedCopy(a, b, { n: 20240320 });

    const envA = { TZ: 'UTC', LANG: 'C', LC_ALL: 'C', HOSTNAME: 'builder-a', TMPDIR: scratch.path, REPRO_OCI_CACHE: join(scratch.path, 'cache-a') };
    const envB = { TZ: 'Asia/Kathmandu', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8', HOSTNAME: 'builder-b', TMPDIR: b, REPRO_OCI_CACHE: join(scratch.path, 'cache-b') };
    log(must(await cli(['lock', spec], a, envA, 0o022, steps), 'lock'));
    log(`Build 1: in ${shownA}, TZ=UTC LANG=C umask 022`);
    const image = `oci:${WORKSPACE_FILES.image}:${WORKSPACE_TAG}`;
    const first = must(await cli(['build', spec, '-o', image], a, envA, 0o022, steps), 'build 1');
    log(`  ${first}`);
    log(`Build 2: in another directory, TZ=Asia/Kathmandu LANG=tr_TR.UTF-8 umask 077, its own lock and cache, files copied in reverse order with scrambled mtimes`);
    const second = must(await cli(['build', spec, '-o', image], b, envB, 0o077, steps), 'build 2');
    log(`  ${second}`);
    const match = first === second;
    log(match ? `MATCH: both builds produced ${first}` : 'DIFFERENT: the two builds are not reproducible');

    // The rebuild runs from a third, empty directory: the recipe's relative package paths mean nothing there, and
    // the packages come from the repositories as flat mirrors.
    log('Rebuild from the image alone, in another directory (recipe read from the image, packages fetched into an empty cache from the repositories, given with --mirror):');
    const elsewhere = join(scratch.path, 'elsewhere');
    await mkdir(elsewhere);
    const mirrors = WORKSPACE_MIRRORS.flatMap((m) => ['--mirror', join(a, m)]);
    const rebuilt = await cli(['rebuild', `oci:${join(a, WORKSPACE_FILES.image)}:${WORKSPACE_TAG}`, ...mirrors], elsewhere, { ...envB, TMPDIR: elsewhere, REPRO_OCI_CACHE: join(scratch.path, 'rebuild-cache') }, 0o022, steps);
    if (rebuilt.code === 2) must(rebuilt, 'rebuild');
    log(rebuilt.stdout.split('\n').map((l) => `  ${l}`).join('\n'));
    if (rebuilt.code !== 0 && rebuilt.stderr) options.logError(rebuilt.stderr);

    const statusMet = await statusStep(a, join(scratch.path, 'status'), image, log, steps);
    if (staged && options.dir !== undefined) {
      await staged.commit();
      log(`Workspace: ${shownA} (its ${WORKSPACE_FILES.readme} says what to run next: change a package, build again, see diff explain it)`);
    }
    return match && rebuilt.code === 0 && statusMet;
  } finally {
    steps.stop();
    await staged?.discard();
    await scratch.cleanup();
  }
}
