import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tempDirFor } from './support/cli.js';
import { rawPackageLock } from './support/raw-lock.js';

/**
 * `install --root` is all-or-nothing: the tree is written into a temporary sibling and renamed into place, so a
 * failure part-way (a name the filesystem cannot hold, a full disk) leaves the root as it was — absent, or empty.
 */
const TOO_LONG = 'n'.repeat(300); // NAME_MAX is 255 bytes on every Linux filesystem

const MEMBERS = [{ path: 'etc' }, { path: 'etc/a', content: 'a\n' }, { path: 'usr' }, { path: `usr/${TOO_LONG}`, content: 'x\n' }, { path: 'var' }];

function assertOneLine(r: { code: number | null; stderr: string; stdout: string }): void {
  assert.equal(r.code, 2, r.stderr + r.stdout);
  assert.doesNotMatch(r.stderr, /internal error/);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('repro-oci: '));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, new RegExp(`usr/${TOO_LONG}: .*name too long`));
}

test('install --root: a name longer than the filesystem allows is one line, exit 2, and no root is left', async (t) => {
  const dir = await tempDirFor(t, 'install-root-long');
  const lock = await rawPackageLock(dir, 'long', { members: MEMBERS });
  const root = join(dir, 'out', 'deeper', 'root');
  const r = await runCli(['install', lock, '--root', root], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
  assertOneLine(r);
  assert.equal(existsSync(join(dir, 'out')), false, 'nothing created, parents included');
  assert.deepEqual(readdirSync(dir).sort(), ['cache', 'lock.json', 'pkg-1-1-any.pkg.tar.zst']);
});

test('install --root: into an existing empty directory, a failure leaves it empty and as it was', async (t) => {
  const dir = await tempDirFor(t, 'install-root-empty');
  const lock = await rawPackageLock(dir, 'long', { members: MEMBERS });
  const root = join(dir, 'root');
  mkdirSync(root, { mode: 0o750 });
  const r = await runCli(['install', lock, '--root', root], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
  assertOneLine(r);
  assert.deepEqual(readdirSync(root), []);
  assert.equal(statSync(root).mode & 0o777, 0o750);
  assert.deepEqual(readdirSync(dir).sort(), ['cache', 'lock.json', 'pkg-1-1-any.pkg.tar.zst', 'root']);
});

test('install --root: a successful install into an existing empty directory keeps its mode; into a new one, 0755', async (t) => {
  const dir = await tempDirFor(t, 'install-root-ok');
  const lock = await rawPackageLock(dir, 'fine');
  const existing = join(dir, 'existing');
  mkdirSync(existing, { mode: 0o750 });
  for (const [root, mode] of [[existing, 0o750], [join(dir, 'new', 'root'), 0o755]] as const) {
    const r = await runCli(['install', lock, '--root', root], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(root, 'etc', 'x'), 'utf8'), 'x\n');
    assert.ok(existsSync(join(root, 'var/lib/pacman/local/fine-1-1/desc')));
    assert.equal(statSync(root).mode & 0o777, mode);
  }
  assert.deepEqual(readdirSync(dir).sort(), ['cache', 'existing', 'lock.json', 'new', 'pkg-1-1-any.pkg.tar.zst'], 'no temporary left beside the roots');
});

test('install --root: a root that is not empty is refused before anything is written', async (t) => {
  const dir = await tempDirFor(t, 'install-root-full');
  const lock = await rawPackageLock(dir, 'fine');
  mkdirSync(join(dir, 'root', 'keep'), { recursive: true });
  const r = await runCli(['install', lock, '--root', join(dir, 'root')], { env: { REPRO_OCI_CACHE: join(dir, 'cache') } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--root .*root: not empty/);
  assert.deepEqual(readdirSync(join(dir, 'root')), ['keep']);
});
