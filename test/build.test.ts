import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, linkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const CLI = resolve('bin/repro-oci.js');

function run(args: string[], opts: { cwd?: string; env?: Record<string, string>; umask?: string } = {}): { code: number; stdout: string; stderr: string } {
  const command = `umask ${opts.umask ?? '022'}; exec node "$@"`;
  const r = spawnSync('bash', ['-c', command, 'bash', CLI, ...args], { cwd: opts.cwd ?? process.cwd(), env: { ...process.env, ...opts.env }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Writes the same tree with a chosen creation order and chosen mtimes. */
function makeTree(root: string, reverse: boolean, mtime: number): void {
  const files: [string, string, number][] = [
    ['etc/hostname', 'box\n', 0o644],
    ['etc/motd', 'hello\n', 0o644],
    ['usr/bin/tool', '#!/bin/sh\necho tool\n', 0o755],
    ['usr/share/doc/a b/readme', 'spaces\n', 0o644],
    ['usr/share/é/ü', 'unicode\n', 0o600],
  ];
  const ordered = reverse ? [...files].reverse() : files;
  for (const [path, content, mode] of ordered) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
    chmodSync(join(root, path), mode);
  }
  mkdirSync(join(root, 'var/empty'), { recursive: true });
  symlinkSync('../etc/motd', join(root, 'usr/motd'));
  linkSync(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-link'));
  const touch = (dir: string): void => {
    for (const name of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, name.name);
      if (name.isDirectory()) touch(p);
      if (!name.isSymbolicLink()) utimesSync(p, mtime, mtime);
    }
  };
  touch(root);
}

function tempDir(t: { after: (fn: () => void) => void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('one tree built twice under a perturbed environment gives one digest; one changed byte changes it', (t) => {
  const a = tempDir(t, 'det-a-');
  const b = tempDir(t, 'det-b-');
  makeTree(join(a, 'root'), false, 1000000000);
  makeTree(join(b, 'root'), true, 1600000000);
  const first = run(['build', '--rootfs', join(a, 'root'), '-o', `oci:${join(a, 'out')}`], { cwd: a, env: { TZ: 'UTC', LANG: 'C', HOSTNAME: 'one', TMPDIR: a } });
  const second = run(['build', '--rootfs', join(b, 'root'), '-o', `oci:${join(b, 'out')}`], {
    cwd: b,
    umask: '077',
    env: { TZ: 'Pacific/Kiritimati', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8', HOSTNAME: 'two', TMPDIR: b },
  });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(second.code, 0, second.stderr);
  assert.match(first.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal(second.stdout, first.stdout);

  writeFileSync(join(b, 'root/usr/share/é/ü'), 'unicodf\n');
  const third = run(['build', '--rootfs', join(b, 'root'), '-o', `oci:${join(b, 'out2')}`]);
  assert.equal(third.code, 0, third.stderr);
  assert.notEqual(third.stdout, first.stdout);
});

test('a directory and the tarball made from it by GNU tar give the same layer', (t) => {
  const w = tempDir(t, 'tarball-');
  makeTree(join(w, 'root'), false, 1000000000);
  spawnSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', join(w, 'root'), '-czf', join(w, 'root.tgz'), '.']);
  const env = { SOURCE_DATE_EPOCH: '1000000000' };
  const fromDir = run(['build', '--rootfs', join(w, 'root'), '-o', `oci:${join(w, 'o1')}`], { env });
  const fromTar = run(['build', '--rootfs', join(w, 'root.tgz'), '-o', `oci:${join(w, 'o2')}`], { env });
  assert.equal(fromDir.code, 0, fromDir.stderr);
  assert.equal(fromTar.code, 0, fromTar.stderr);
  assert.equal(fromTar.stdout, fromDir.stdout);
});

test('SOURCE_DATE_EPOCH sets created; without it the image still does not depend on the clock', (t) => {
  const w = tempDir(t, 'sde-');
  makeTree(join(w, 'root'), false, 1000000000);
  const r = run(['build', '--rootfs', join(w, 'root'), '-o', `oci:${join(w, 'o')}`], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(run(['inspect', '--json', `oci:${join(w, 'o')}`]).stdout) as { images: { created: string }[] };
  assert.equal(info.images[0]!.created, '2023-11-14T22:13:20Z');
  const unset = { ...process.env };
  delete unset.SOURCE_DATE_EPOCH;
  const r0 = spawnSync('node', [CLI, 'build', '--rootfs', join(w, 'root'), '-o', `oci:${join(w, 'o0')}`], { env: unset, encoding: 'utf8' });
  const info0 = JSON.parse(run(['inspect', '--json', `oci:${join(w, 'o0')}`]).stdout) as { images: { created: string }[] };
  assert.equal(r0.status, 0, r0.stderr);
  assert.equal(info0.images[0]!.created, '1970-01-01T00:00:00Z');
});

function assertCleanFailure(r: { code: number; stdout: string; stderr: string }, message: RegExp): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

test('bad input: one-line error, exit 2, nothing at the output path', async (t) => {
  const w = tempDir(t, 'bad-');
  const out = join(w, 'out');
  assertCleanFailure(run(['build', '--rootfs', join(w, 'missing'), '-o', `oci:${out}`]), /rootfs .*missing: no such file or directory/);
  assert.equal(existsSync(out), false);

  mkdirSync(join(w, 'evil'));
  writeFileSync(join(w, 'evil/x'), 'x');
  // GNU tar strips ../ and / unless told not to; -P keeps them, as a hostile archive would.
  spawnSync('tar', ['-P', '-cf', join(w, 'dotdot.tar'), '--transform', 's,^.*evil/x,../../escape,', join(w, 'evil/x')]);
  assertCleanFailure(run(['build', '--rootfs', join(w, 'dotdot.tar'), '-o', `oci-archive:${out}`]), /escapes the root with \.\./);
  assert.equal(existsSync(out), false);
  spawnSync('tar', ['-P', '-cf', join(w, 'abs.tar'), join(w, 'evil/x')]);
  assertCleanFailure(run(['build', '--rootfs', join(w, 'abs.tar'), '-o', `docker-archive:${out}`]), /absolute path/);
  assert.equal(existsSync(out), false);

  // A layout with a missing blob, and one whose blob bytes do not match their digest.
  makeTree(join(w, 'root'), false, 1);
  const good = join(w, 'good');
  assert.equal(run(['build', '--rootfs', join(w, 'root'), '-o', `oci:${good}`]).code, 0);
  const manifest = JSON.parse(readFileSync(join(good, 'index.json'), 'utf8')).manifests[0].digest as string;
  const layer = (JSON.parse(readFileSync(join(good, 'blobs/sha256', manifest.slice(7)), 'utf8')) as { layers: { digest: string }[] }).layers[0]!.digest;
  const layerPath = join(good, 'blobs/sha256', layer.slice(7));
  const bytes = readFileSync(layerPath);
  const dst = join(w, 'copied');
  bytes[bytes.length - 20] ^= 0xff;
  writeFileSync(layerPath, bytes);
  assertCleanFailure(run(['copy', `oci:${good}`, `oci:${dst}`]), new RegExp(`blob ${layer}: content has digest sha256:[0-9a-f]{64}, expected ${layer}`));
  assert.equal(existsSync(dst), false);
  assertCleanFailure(run(['copy', `oci:${good}`, `oci-archive:${dst}`]), /content has digest/);
  assert.equal(existsSync(dst), false);
  unlinkSync(layerPath);
  assertCleanFailure(run(['copy', `oci:${good}`, `docker-archive:${dst}`]), new RegExp(`blob ${layer} is missing`));
  assert.equal(existsSync(dst), false);
  assert.deepEqual(readdirSync(w).filter((n) => n.includes('.tmp-')), [], 'no temporary leftovers');
});

test('an interrupted build leaves no output, no temporary sibling and no scratch space', async (t) => {
  const w = tempDir(t, 'interrupt-');
  const scratch = join(w, 'tmp');
  mkdirSync(scratch);
  mkdirSync(join(w, 'root'));
  // Enough incompressible data that gzip is still busy when the signal comes.
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < 200; i++) {
    for (let j = 0; j < block.length; j += 4) block.writeUInt32LE((i * 2654435761 + j * 40503) >>> 0, j);
    writeFileSync(join(w, 'root', `f${i}`), block);
  }
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [CLI, 'build', '--rootfs', join(w, 'root'), '-o', `oci:${join(w, 'out')}`, '-o', `oci-archive:${join(w, 'out.tar')}`], { env: { ...process.env, TMPDIR: scratch }, stdio: 'ignore' });
  // Interrupted once it is at work (its scratch space or an output's temporary exists), however slow the machine.
  const atWork = (): boolean => readdirSync(scratch).length > 0 || readdirSync(w).some((n) => n.includes('.tmp-'));
  for (let waited = 0; !atWork() && waited < 60_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  assert.ok(atWork(), 'the build started');
  await new Promise((r) => setTimeout(r, 200));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  assert.equal(code, 130, 'interrupted, not finished');
  assert.deepEqual(readdirSync(w).sort(), ['root', 'tmp'], 'nothing beside the output path');
  assert.deepEqual(readdirSync(scratch), [], 'scratch space removed');
});
