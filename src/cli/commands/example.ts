import { spawn } from 'node:child_process';
import { copyFile, lstat, mkdir, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { EXAMPLE_DIR, writeExample } from '../../example/generate.js';
import { makeScratchDir } from '../../util/fs.js';

const CLI = fileURLToPath(new URL('../../../../bin/repro-oci.js', import.meta.url));

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

function cli(args: string[], cwd: string, env: Record<string, string>, umask: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const previous = process.umask(umask);
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env, TMPDIR: cwd, REPRO_OCI_PROGRESS: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    process.umask(previous);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 2, stdout: stdout.trim(), stderr: stderr.trim() }));
  });
}

function must(run: Run, what: string): string {
  if (run.code !== 0) throw new UserError(`example: ${what} failed (exit ${run.code}): ${run.stderr.split('\n').slice(-3).join(' | ')}`);
  return run.stdout;
}

export function registerExample(program: Command): void {
  program
    .command('example')
    .description('The bundled example, offline: generate a small Arch package archive, lock, build twice under different conditions, compare, then rebuild from the image alone')
    .action(async () => {
      const work = await makeScratchDir('example');
      const log = (s: string): boolean => process.stdout.write(`${s}\n`);
      try {
        const source = join(work.path, 'source');
        await writeExample(source);
        log(`Generated the example package archive from ${join(EXAMPLE_DIR, 'packages.yaml')}`);

        const a = join(work.path, 'a');
        const b = join(work.path, 'b');
        await perturbedCopy(source, a, { n: 1 });
        await perturbedCopy(source, b, { n: 20240320 });

        const envA = { TZ: 'UTC', LANG: 'C', LC_ALL: 'C', HOSTNAME: 'builder-a', REPRO_OCI_CACHE: join(a, '.cache') };
        const envB = { TZ: 'Asia/Kathmandu', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8', HOSTNAME: 'builder-b', REPRO_OCI_CACHE: join(b, '.cache') };
        log(must(await cli(['lock', 'spec.yaml'], a, envA, 0o022), 'lock'));
        log(`Build 1: in ${a}, TZ=UTC LANG=C umask 022`);
        const first = must(await cli(['build', 'spec.yaml', '-o', `oci:${join(a, 'image')}:hello`], a, envA, 0o022), 'build 1');
        log(`  ${first}`);
        log(`Build 2: in ${b}, TZ=Asia/Kathmandu LANG=tr_TR.UTF-8 umask 077, its own lock and cache, files copied in reverse order with scrambled mtimes`);
        const second = must(await cli(['build', 'spec.yaml', '-o', `oci:${join(b, 'image')}:hello`], b, envB, 0o077), 'build 2');
        log(`  ${second}`);
        const match = first === second;
        log(match ? `MATCH: both builds produced ${first}` : 'DIFFERENT: the two builds are not reproducible');

        log(`Rebuild from the image alone (recipe read from the image, packages fetched into an empty cache from ${b}, which --allow-url permits):`);
        // The recipe's URLs are relative paths, local files here: a rebuild fetches them only where it is told to.
        const allowLocal = ['--allow-url', `${pathToFileURL(b).href}/`];
        const rebuilt = await cli(['rebuild', `oci:${join(a, 'image')}:hello`, ...allowLocal], b, { ...envB, REPRO_OCI_CACHE: join(work.path, 'rebuild-cache') }, 0o022);
        if (rebuilt.code === 2) must(rebuilt, 'rebuild');
        log(rebuilt.stdout.split('\n').map((l) => `  ${l}`).join('\n'));
        if (rebuilt.code !== 0 && rebuilt.stderr) process.stderr.write(`${rebuilt.stderr}\n`);
        process.exitCode = match && rebuilt.code === 0 ? 0 : 1;
      } finally {
        await work.cleanup();
      }
    });
}
