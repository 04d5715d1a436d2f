import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, run, runCli, type RunResult } from './support/cli.js';
import { servedRepo, type ServedRepo } from './support/package-repo.js';

const ENV = { env: { REPRO_OCI_RETRY_DELAY_MS: '1' } };

/** Exit 2 with one error line, last (after any progress lines), no stack, no internal error. */
function assertOneLine(result: RunResult, pattern: RegExp): void {
  assert.equal(result.code, 2, result.stderr);
  assert.doesNotMatch(result.stderr, /internal error|\n\s+at /);
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('repro-oci: '));
  assert.equal(errors.length, 1, result.stderr);
  assert.ok(result.stderr.endsWith(`${errors[0]}\n`), result.stderr);
  assert.match(`${errors[0]}\n`, pattern);
}

/** Fails the build when anything was fetched or written: the checks come before the work. */
function assertNothingDone(repo: ServedRepo, requestsBefore: number, cache: string): void {
  assert.equal(repo.server.requests.length, requestsBefore, 'no package was fetched');
  assert.equal(existsSync(cache), false, 'the cache was not created');
  assert.deepEqual(readdirSync(repo.work).filter((n) => n.startsWith('.')), [], 'no temporary was left');
}

test('build: an output, --sbom, cache or lock path that cannot be written fails before the work, in one line', async (t) => {
  const repo = await servedRepo(t);
  const file = join(repo.work, 'a-file');
  writeFileSync(file, 'x');
  const cache = join(repo.work, 'cache');
  const before = repo.server.requests.length;
  const build = (args: string[]): Promise<RunResult> => runCli(['build', repo.spec, '--cache', cache, ...args], ENV);

  assertOneLine(await build(['-o', `oci:${file}/out`]), new RegExp(`^repro-oci: oci:${file}/out: ${file} is not a directory\\n$`));
  assertOneLine(await build(['-o', `oci:${file}`]), /: exists and is not a directory\n$/);
  assertOneLine(await build(['-o', `oci:${repo.work}`]), /: exists and is not an OCI image layout\n$/);
  assertOneLine(await build(['-o', 'oci:/proc/repro-oci-out']), /^repro-oci: oci:\/proc\/repro-oci-out: cannot create files in \/proc: the file system takes no new files there \(ENOENT\)\n$/);
  assertOneLine(await build(['-o', 'oci-archive:/proc/x.tar']), /^repro-oci: oci-archive:\/proc\/x\.tar: cannot create files in \/proc: /);
  assertOneLine(await build(['-o', `docker-archive:${file}/x.tar`]), /is not a directory\n$/);
  assertOneLine(await build(['-o', `docker-archive:${repo.work}/none/x.tar`]), /: directory .*\/none does not exist\n$/);
  assertOneLine(await build(['-o', `oci-archive:${repo.work}`]), /: is a directory\n$/);
  // A good output first: the bad second one is still caught before anything is written.
  assertOneLine(await build(['-o', `oci:${repo.work}/good`, '-o', 'oci:/proc/x']), /oci:\/proc\/x: /);
  assert.equal(existsSync(join(repo.work, 'good')), false);
  assertOneLine(await build(['-o', `oci:${repo.work}/out`, '--sbom', `${file}/sbom`]), new RegExp(`^repro-oci: --sbom ${file}/sbom: ${file} is not a directory\\n$`));
  assertOneLine(await runCli(['build', repo.spec, '--cache', `${file}/cache`, '-o', `oci:${repo.work}/out`], ENV), new RegExp(`^repro-oci: cache ${file}/cache: ${file} is not a directory\\n$`));
  assertOneLine(await runCli(['build', repo.spec, '--cache', '/proc/cache', '-o', `oci:${repo.work}/out`], ENV), /^repro-oci: cache \/proc\/cache: cannot create files in \/proc/);
  assertNothingDone(repo, before, cache);
  assert.equal(existsSync(join(repo.work, 'out')), false);
});

test('lock and build: a lock path that cannot be written fails before resolving', async (t) => {
  const repo = await servedRepo(t);
  const file = join(repo.work, 'a-file');
  writeFileSync(file, 'x');
  const before = repo.server.requests.length;
  assertOneLine(await runCli(['lock', repo.spec, '-o', `${file}/spec.lock.json`]), new RegExp(`^repro-oci: lock ${file}/spec.lock.json: ${file} is not a directory\\n$`));
  assertOneLine(await runCli(['lock', repo.spec, '-o', '/proc/spec.lock.json']), /^repro-oci: lock \/proc\/spec\.lock\.json: cannot create files in \/proc/);
  assertOneLine(await runCli(['lock', repo.spec, '-o', repo.work]), /: is a directory\n$/);
  assert.equal(repo.server.requests.length, before, 'nothing was resolved');
});

test('copy, archive, install --root, ls and diff --report-dir check where they write first', async (t) => {
  const repo = await servedRepo(t);
  const file = join(repo.work, 'a-file');
  writeFileSync(file, 'x');
  const cache = join(repo.work, 'cache');
  const image = join(repo.work, 'image');
  const built = await runCli(['build', repo.spec, '--cache', cache, '-o', `oci:${image}`], ENV);
  assert.equal(built.code, 0, built.stderr);
  const lock = join(repo.work, 'spec.lock.json');

  assertOneLine(await runCli(['copy', `oci:${image}`, `oci:${file}/copy`]), /is not a directory\n$/);
  assertOneLine(await runCli(['copy', `oci:${image}`, 'oci-archive:/proc/copy.tar']), /cannot create files in \/proc/);
  assertOneLine(await runCli(['archive', `oci:${image}`, 'oci:/proc/archive']), /^repro-oci: oci:\/proc\/archive: cannot create files in \/proc/);
  assertOneLine(await runCli(['install', lock, '--cache', cache, '--root', `${file}/root`]), new RegExp(`^repro-oci: --root ${file}/root: ${file} is not a directory\\n$`));
  assertOneLine(await runCli(['install', lock, '--cache', cache, '--root', repo.work]), /^repro-oci: --root .*: not empty\n$/);
  assertOneLine(await runCli(['ls', lock, '--cache', `${file}/c`]), /^repro-oci: cache .*: .* is not a directory\n$/);
  assertOneLine(await runCli(['diff', `oci:${image}`, `oci:${image}`, '--report-dir', '/proc/report']), /^repro-oci: --report-dir \/proc\/report: cannot create files in \/proc/);
  assert.deepEqual(readdirSync(repo.work).filter((n) => n.startsWith('.')), []);
});

/** Whether this process may make a private mount namespace (root with CAP_SYS_ADMIN). */
function canUnshareMounts(): boolean {
  return spawnSync('unshare', ['-m', 'true']).status === 0;
}

test('a read-only output directory is refused before the build (read-only bind mount)', { skip: canUnshareMounts() ? false : 'cannot make a mount namespace here' }, async (t) => {
  const repo = await servedRepo(t);
  const ro = join(repo.work, 'ro');
  mkdirSync(ro);
  const cache = join(repo.work, 'cache');
  const script = `mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"`;
  const result = await run('unshare', ['-m', 'sh', '-c', script, 'sh', ro, process.execPath, CLI, 'build', repo.spec, '--cache', cache, '-o', `oci:${ro}/out`], ENV);
  assertOneLine(result, new RegExp(`^repro-oci: oci:${ro}/out: cannot create files in ${ro}: read-only file system \\(EROFS\\)\\n$`));
  assert.equal(existsSync(cache), false);
});

test('a write that fails during the work (disk full) is one line naming the path', { skip: canUnshareMounts() ? false : 'cannot make a mount namespace here' }, async (t) => {
  const repo = await servedRepo(t, 256 * 1024);
  const small = join(repo.work, 'small');
  mkdirSync(small);
  const script = `mount -t tmpfs -o size=64k tmpfs "$1" && shift && exec "$@"`;
  const result = await run('unshare', ['-m', 'sh', '-c', script, 'sh', small, process.execPath, CLI, 'build', repo.spec, '--cache', join(repo.work, 'cache'), '-o', `oci:${small}/out`], ENV);
  assertOneLine(result, new RegExp(`^repro-oci: ${small}/\\.out\\.tmp-[^/]+/blobs/sha256/[0-9a-f]{64}: cannot write: no space left on device \\(ENOSPC\\)\\n$`));
});

test('permission denied, as a user without rights to the output directory (runuser)', { skip: process.getuid?.() === 0 && spawnSync('runuser', ['-u', 'builder', '--', 'true']).status === 0 ? false : 'needs root and a user builder' }, async (t) => {
  const repo = await servedRepo(t);
  chmodSync(repo.work, 0o755); // readable by builder, writable by root only
  const cacheParent = join(repo.work, 'cache-of-builder');
  mkdirSync(cacheParent);
  const result = await run('runuser', ['-u', 'builder', '--', process.execPath, CLI, 'build', repo.spec, '--frozen', '--cache', '/tmp/repro-oci-builder-cache-unused', '-o', `oci:${repo.work}/out`], ENV);
  assertOneLine(result, new RegExp(`^repro-oci: oci:${repo.work}/out: cannot create files in ${repo.work}: permission denied \\(EACCES\\)\\n$`));
  const lock = await run('runuser', ['-u', 'builder', '--', process.execPath, CLI, 'lock', repo.spec, '-o', join(repo.work, 'new.lock.json')]);
  assertOneLine(lock, /^repro-oci: lock .*new\.lock\.json: cannot create files in .*: permission denied \(EACCES\)\n$/);
  const cache = await run('runuser', ['-u', 'builder', '--', process.execPath, CLI, 'build', repo.spec, '--frozen', '--cache', join(cacheParent, 'c'), '-o', 'oci:/tmp/repro-oci-builder-out-unused'], ENV);
  assertOneLine(cache, /^repro-oci: cache .*cache-of-builder\/c: cannot create files in .*cache-of-builder: permission denied \(EACCES\)\n$/);
});
