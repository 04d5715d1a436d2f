import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tempDirFor } from './support/cli.js';
import { servedRepo } from './support/package-repo.js';
import { buildSpecFile } from '../src/image/build-spec.js';
import { checkLockFile } from '../src/lock/lock.js';
import { ContentCache } from '../src/fetch/cache.js';
import { UserError } from '../src/errors.js';

const ENV = { env: { REPRO_OCI_RETRY_DELAY_MS: '1' } };

test('lock --check: 0 when the lock matches the spec, 1 when missing or made for other packages; image settings do not count', async (t) => {
  const repo = await servedRepo(t);
  const lockPath = join(repo.work, 'spec.lock.json');
  const before = repo.server.requests.length;
  const current = await runCli(['lock', repo.spec, '--check']);
  assert.equal(current.code, 0, current.stderr);
  assert.equal(current.stdout, `lock ${lockPath} is current\n`);

  // Other image settings, same packages: still current.
  const text = readFileSync(repo.spec, 'utf8');
  writeFileSync(repo.spec, text.replace('Cmd: [/bin/sh]', 'Cmd: [/bin/true]'));
  assert.equal((await runCli(['lock', repo.spec, '--check'])).code, 0);

  writeFileSync(repo.spec, text.replace('packages: [beta]', 'packages: [alpha]'));
  const stale = await runCli(['lock', repo.spec, '--check']);
  assert.equal(stale.code, 1);
  assert.match(stale.stdout, /was made for a different package selection/);

  const missing = await runCli(['lock', repo.spec, '--check', '-o', join(repo.work, 'none.json')]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, `no lock at ${join(repo.work, 'none.json')}\n`);
  assert.equal(existsSync(join(repo.work, 'none.json')), false);
  assert.equal(repo.server.requests.length, before, '--check resolves nothing');

  const mixed = await runCli(['lock', repo.spec, '--check', '--update']);
  assert.equal(mixed.code, 2);
});

test('build --frozen never resolves nor writes a lock; an explicit --lock must exist', async (t) => {
  const repo = await servedRepo(t);
  const lockPath = join(repo.work, 'spec.lock.json');
  const cache = join(repo.work, 'cache');
  const out = join(repo.work, 'out');

  const frozen = await runCli(['build', repo.spec, '--frozen', '-o', `oci:${out}`, '--cache', cache], ENV);
  assert.equal(frozen.code, 0, frozen.stderr);
  assert.match(frozen.stdout, /^sha256:[0-9a-f]{64}\n$/);

  const lockBytes = readFileSync(lockPath);
  rmSync(lockPath);
  const before = repo.server.requests.length;
  const noLock = await runCli(['build', repo.spec, '--frozen', '-o', `oci:${out}2`, '--cache', cache], ENV);
  assert.equal(noLock.code, 2);
  assert.equal(noLock.stderr, `repro-oci: --frozen: no lock at ${lockPath} (make it with repro-oci lock SPEC -o ${lockPath})\n`);
  assert.equal(existsSync(lockPath), false, 'no lock was made');
  assert.equal(existsSync(`${out}2`), false);
  assert.equal(repo.server.requests.length, before, 'nothing was resolved');

  writeFileSync(lockPath, lockBytes);
  writeFileSync(repo.spec, readFileSync(repo.spec, 'utf8').replace('packages: [beta]', 'packages: [alpha]'));
  const stale = await runCli(['build', repo.spec, '--frozen', '-o', `oci:${out}2`, '--cache', cache], ENV);
  assert.equal(stale.code, 2);
  assert.match(stale.stderr, /^repro-oci: lock .* was made for a different package selection; run repro-oci lock again\n$/);
  assert.ok(readFileSync(lockPath).equals(lockBytes), 'the lock is untouched');

  const named = join(repo.work, 'other.lock.json');
  const explicit = await runCli(['build', repo.spec, '--lock', named, '-o', `oci:${out}2`, '--cache', cache], ENV);
  assert.equal(explicit.code, 2);
  assert.equal(explicit.stderr, `repro-oci: --lock: no lock at ${named} (make it with repro-oci lock SPEC -o ${named})\n`);
  assert.equal(existsSync(named), false, 'an explicit lock that does not exist is not made');
  assert.equal(repo.server.requests.length, before);
});

test('lock --update: "no change" and exit 0 when nothing moved (file untouched); the changes and exit 1 otherwise', async (t) => {
  const repo = await servedRepo(t);
  const lockPath = join(repo.work, 'spec.lock.json');
  const bytes = readFileSync(lockPath);
  const mtime = statSync(lockPath).mtimeMs;
  const same = await runCli(['lock', repo.spec, '--update'], ENV);
  assert.equal(same.code, 0, same.stderr);
  assert.equal(same.stdout, 'no change\n');
  assert.ok(readFileSync(lockPath).equals(bytes));
  assert.equal(statSync(lockPath).mtimeMs, mtime, 'an unchanged lock is not rewritten');

  writeFileSync(repo.spec, readFileSync(repo.spec, 'utf8').replace('packages: [beta]', 'packages: [alpha]'));
  const changed = await runCli(['lock', repo.spec, '--update'], ENV);
  assert.equal(changed.code, 1, changed.stderr);
  assert.equal(changed.stdout, '- beta 1.0-1\n');
  assert.equal((await runCli(['lock', repo.spec, '--check'])).code, 0, 'the updated lock was written');

  // Same packages, another sigLevel spelling: the lock changes, no package does.
  writeFileSync(repo.spec, readFileSync(repo.spec, 'utf8').replace('sigLevel: Never', 'sigLevel: Never PackageNever'));
  const fields = await runCli(['lock', repo.spec, '--update'], ENV);
  assert.equal(fields.code, 1, fields.stderr);
  assert.match(fields.stdout, /^no package changes; other fields changed/);
  assert.match((await runCli(['lock', '--help'])).stdout, /Exit status: 0 .* 1 .* 2 an error/s);
});

test('lock, and build without a lock, check the image section before fetching anything', async (t) => {
  const repo = await servedRepo(t);
  const work = await tempDirFor(t, 'lock-image');
  const spec = join(work, 'spec.yaml');
  writeFileSync(spec, readFileSync(repo.spec, 'utf8').replace('config: { Cmd: [/bin/sh] }', 'config: { Cmd: [/bin/sh], Nonsense: 1 }'));
  const before = repo.server.requests.length;
  const result = await runCli(['lock', spec]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^repro-oci: spec .*spec\.yaml: line \d+, column \d+: unknown key \/image\/config\/Nonsense\n$/);
  assert.equal(existsSync(join(work, 'spec.lock.json')), false);
  // build locks a spec without a lock the same way: the image section is checked first.
  const build = await runCli(['build', spec, '-o', `oci:${join(work, 'out')}`, '--cache', join(work, 'cache')]);
  assert.equal(build.code, 2);
  assert.match(build.stderr, /^repro-oci: spec .*spec\.yaml: line \d+, column \d+: unknown key \/image\/config\/Nonsense\n$/);
  assert.equal(existsSync(join(work, 'spec.lock.json')), false);
  assert.equal(repo.server.requests.length, before);
});

test('library: buildSpecFile with frozen and checkLockFile resolve nothing', async (t) => {
  const repo = await servedRepo(t);
  const lockPath = join(repo.work, 'spec.lock.json');
  assert.deepEqual(await checkLockFile(repo.spec), { path: lockPath, state: 'current' });
  rmSync(lockPath);
  assert.deepEqual(await checkLockFile(repo.spec), { path: lockPath, state: 'missing' });
  const before = repo.server.requests.length;
  await assert.rejects(
    buildSpecFile(repo.spec, { frozen: true, outputs: [`oci:${join(repo.work, 'out')}`], cache: new ContentCache(join(repo.work, 'cache')) }),
    (err: unknown) => err instanceof UserError && err.message.startsWith(`--frozen: no lock at ${lockPath}`),
  );
  assert.equal(existsSync(lockPath), false);
  assert.equal(repo.server.requests.length, before);
});
