import { spawn } from 'node:child_process';
import { chmod, copyFile, lstat, mkdir, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { makeScratchDir } from '../../util/fs.js';

const EXAMPLE_DIR = fileURLToPath(new URL('../../../../examples/hello/', import.meta.url));
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
    else {
      await copyFile(src, dst);
      await chmod(dst, info.mode & 0o777 & ~0o077); // as if checked out under umask 077
    }
    seed.n = (seed.n * 48271) % 2147483647;
    if (!info.isSymbolicLink()) await utimes(dst, seed.n % 2000000000, seed.n % 2000000000);
  }
}

function buildIn(dir: string, rootfs: string, env: Record<string, string>, umask: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const previous = process.umask(umask);
    const child = spawn(process.execPath, [CLI, 'build', '--rootfs', rootfs, '--config', join(EXAMPLE_DIR, 'image.yaml'), '-o', `oci:${join(dir, 'image')}:hello`], {
      cwd: dir,
      env: { ...process.env, ...env, TMPDIR: dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    process.umask(previous);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new UserError(`example build in ${dir} failed (exit ${code})`))));
  });
}

export function registerExample(program: Command): void {
  program
    .command('example')
    .description('Build the bundled example twice under different conditions and show that the digests match (no network)')
    .action(async () => {
      const a = await makeScratchDir('example-a');
      const b = await makeScratchDir('example-b');
      try {
        const log = (s: string): boolean => process.stdout.write(`${s}\n`);
        log(`Example root filesystem: ${join(EXAMPLE_DIR, 'rootfs')}`);
        log(`Build 1: in ${a.path}, TZ=UTC LANG=C umask 022, files as checked out`);
        const first = await buildIn(a.path, join(EXAMPLE_DIR, 'rootfs'), { TZ: 'UTC', LANG: 'C', LC_ALL: 'C' }, 0o022);
        log(`  ${first}`);
        const copy = join(b.path, 'rootfs-copy');
        await perturbedCopy(join(EXAMPLE_DIR, 'rootfs'), copy, { n: 20240320 });
        log(`Build 2: in ${b.path}, TZ=Asia/Kathmandu LANG=tr_TR.UTF-8 umask 077, a copy made in reverse order with scrambled mtimes`);
        const second = await buildIn(b.path, copy, { TZ: 'Asia/Kathmandu', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8' }, 0o077);
        log(`  ${second}`);
        if (first === second) {
          log(`MATCH: both builds produced ${first}`);
        } else {
          log('DIFFERENT: the builds are not reproducible');
          process.exitCode = 1;
        }
      } finally {
        await a.cleanup();
        await b.cleanup();
      }
    });
}
