import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/test/support/cli.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The CLI launcher, bin/repro-oci.js. */
export const CLI = join(REPO_ROOT, 'bin', 'repro-oci.js');

export interface RunResult {
  /** Exit code, or null when the process died of a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout exactly as written, for byte and digest comparisons. */
  stdoutBytes: Buffer;
}

export interface RunOptions {
  cwd?: string;
  /** Added to (not replacing) the current environment; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, which is closed afterwards (stdin is empty when omitted). */
  input?: string | Buffer;
  /** Kills the child with SIGKILL after this many milliseconds (default 120 s). */
  timeoutMs?: number;
}

/**
 * Runs a command without a shell and captures its output and exit code; never throws for a non-zero exit.
 * repro-oci's progress is off (REPRO_OCI_PROGRESS=0) unless `env` says otherwise, so that tests can compare stderr
 * exactly; test/progress.test.ts tests the progress.
 */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, REPRO_OCI_PROGRESS: '0' };
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
    child.stdin.on('error', () => {}); // a child that exits without reading its input is not our failure
    child.stdin.end(options.input ?? '');
  });
}

/** Runs `node bin/repro-oci.js ARGS…`. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], options);
}

/** Like run(), but throws with the command's stderr unless it exits 0. */
export async function runOk(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code ?? result.signal}:\n${result.stderr}${result.stdout}`);
  }
  return result;
}

/** Like runCli(), but throws with the CLI's stderr unless it exits 0. */
export function runCliOk(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runOk(process.execPath, [CLI, ...args], options);
}

/** A fresh private directory under the system temp dir. */
export function makeTempDir(prefix = 'test'): Promise<string> {
  return mkdtemp(join(tmpdir(), `repro-oci-${prefix}-`));
}

/** Removes a directory tree; missing is fine. */
export function removeDir(path: string): Promise<void> {
  return rm(path, { recursive: true, force: true });
}

/** A temp dir removed when the test (or suite) that asked for it ends: pass `t` of a test, or node:test's `after`. */
export async function tempDirFor(owner: { after(fn: () => Promise<void>): void } | ((fn: () => Promise<void>) => void), prefix = 'test'): Promise<string> {
  const dir = await makeTempDir(prefix);
  const cleanup = () => removeDir(dir);
  if (typeof owner === 'function') owner(cleanup);
  else owner.after(cleanup);
  return dir;
}

/**
 * Environment that runs a child under libfaketime with its clock years away from ours, ticking from that date.
 * Set directly rather than through the `faketime` wrapper, whose shared-memory semaphore makes every process
 * of the tree exit 1 when it cannot be opened.
 */
export function fakeClockEnv(date: string): Record<string, string> {
  const lib = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'].map((d) => join(d, 'faketime', 'libfaketime.so.1')).find((p) => existsSync(p));
  if (!lib) throw new Error('libfaketime is not installed (Debian package faketime)');
  const env = { LD_PRELOAD: lib, FAKETIME: `@${date}`, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
  // A clock that silently stays real would make every "the clock is not read" test pass for nothing.
  const year = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(new Date().getUTCFullYear()))'], { env: { ...process.env, ...env }, encoding: 'utf8' }).stdout;
  if (year !== date.slice(0, 4)) throw new Error(`libfaketime did not set the clock to ${date} (the child saw year ${year})`);
  return env;
}
