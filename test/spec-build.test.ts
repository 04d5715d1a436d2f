import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, fakeClockEnv, run, runCli } from './support/cli.js';
import { EXAMPLE_DIGEST } from './support/example-digest.js';
import { buildWithMakepkg, makepkgUnavailable, makeRepoWithRepoAdd } from './support/makepkg.js';


test('bundled example: two perturbed builds match, the rebuild is reproducible, the digest is pinned (also under a clock years ahead)', async () => {
  // Run under faketime: the pinned digest was made with the real clock, so equality shows the clock is not read.
  const r = await runCli(['example'], { env: fakeClockEnv('2031-02-03 04:05:06') });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`MATCH: both builds produced ${EXAMPLE_DIGEST}`));
  assert.match(r.stdout, new RegExp(`reproducible: ${EXAMPLE_DIGEST}`));
  // Its status step: the lock's table with one column per emulated rebuilder, and the same verdict for the image.
  assert.match(r.stdout, /^ {4}voice-plain\s+1\.0-1\s+GOOD\s+BAD\s+GOOD \(unverified\)\s+BAD$/m);
  assert.equal(r.stdout.match(/^ {4}3\/4 packages meet the policy; 1 BAD on rebuilder beta$/gm)?.length, 2);
});

const SDE = 1710000000;

function fixtureSpec(): string {
  return [
    'repositories:',
    '  - name: fixture',
    '    servers: [repo/$repo/os/$arch]',
    'packages: [busybox]',
    'sigLevel: Never',
    'image:',
    '  config:',
    '    Cmd: [/usr/bin/sh]',
    '  setup:',
    '    presets: [archlinux-docker]',
    '',
  ].join('\n');
}

test('makepkg-built fixture: perturbed builds agree, rebuild reproduces, a shell runs from the image; a lock change changes the digest and the old image still rebuilds', { skip: makepkgUnavailable() }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'repro-oci-specbuild-'));
  chmodSync(work, 0o755);
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const repo = join(work, 'repo', 'fixture', 'os', 'x86_64');
  mkdirSync(repo, { recursive: true });

  const fsPkg = await buildWithMakepkg(
    {
      workDir: join(work, 'mk-fs'),
      pkgname: 'fixture-filesystem',
      pkgver: '1.0',
      pkgrel: 1,
      files: [
        { path: 'etc', type: 'dir' },
        { path: 'etc/passwd', content: 'root:x:0:0::/root:/usr/bin/sh\n' },
        { path: 'etc/group', content: 'root:x:0:root\n' },
        { path: 'etc/shadow', content: 'root::19800::::::\n', mode: 0o600 },
        { path: 'root', type: 'dir', mode: 0o750 },
        { path: 'tmp', type: 'dir', mode: 0o1777 },
        { path: 'usr/bin', type: 'dir' },
        { path: 'bin', type: 'symlink', target: 'usr/bin' },
      ],
    },
    SDE,
  );
  const busybox = (pkgrel: number, extra: { path: string; content: string }[] = []) =>
    buildWithMakepkg(
      {
        workDir: join(work, `mk-busybox-${pkgrel}`),
        pkgname: 'busybox',
        pkgver: '1.36.1',
        pkgrel,
        depends: ['fixture-filesystem'],
        files: [{ path: 'usr/bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 }, { path: 'usr/bin/sh', type: 'symlink', target: 'busybox' }, ...extra],
      },
      SDE,
    );
  const bb1 = await busybox(1);
  for (const p of [fsPkg!, bb1!]) copyFileSync(p, join(repo, p.split('/').pop()!));
  await makeRepoWithRepoAdd(repo, 'fixture', [fsPkg!.split('/').pop()!, bb1!.split('/').pop()!]);
  writeFileSync(join(work, 'spec.yaml'), fixtureSpec());

  // Two builds: different cwd, temp dir, cache, TZ, locale, umask, and a clock set years ahead for the second.
  const lock = await runCli(['lock', join(work, 'spec.yaml')], { cwd: work });
  assert.equal(lock.code, 0, lock.stderr);
  const a = mkdtempSync(join(tmpdir(), 'repro-oci-a-'));
  const b = mkdtempSync(join(tmpdir(), 'repro-oci-b-'));
  t.after(() => rmSync(a, { recursive: true, force: true }));
  t.after(() => rmSync(b, { recursive: true, force: true }));
  const first = await runCli(['build', join(work, 'spec.yaml'), '-o', `oci:${join(a, 'img')}:t`], { cwd: a, env: { TZ: 'UTC', LANG: 'C', TMPDIR: a, REPRO_OCI_CACHE: join(a, 'cache'), SOURCE_DATE_EPOCH: undefined } });
  assert.equal(first.code, 0, first.stderr);
  const second = await run(
    'bash',
    ['-c', 'umask 077; exec "$@"', 'bash', process.execPath, CLI, 'build', join(work, 'spec.yaml'), '-o', `oci:${join(b, 'img')}:t`],
    { env: { TZ: 'Pacific/Chatham', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8', TMPDIR: b, REPRO_OCI_CACHE: join(b, 'cache'), HOSTNAME: 'elsewhere', SOURCE_DATE_EPOCH: undefined, ...fakeClockEnv('2031-05-05 10:00:00') } },
  );
  assert.equal(second.code, 0, second.stderr);
  assert.match(first.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal(second.stdout, first.stdout, 'perturbed builds differ');

  // Rebuild from the image alone, with an empty cache (the recipe's relative repository paths are not resolved: the
  // repository serves as a flat --mirror).
  const rebuilt = await runCli(['rebuild', `oci:${join(a, 'img')}:t`, '--mirror', repo], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'rebuild-cache') } });
  assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout);
  assert.equal(rebuilt.stdout, `reproducible: ${first.stdout}`);

  // An independent consumer runs it: umoci unpacks, bubblewrap runs the image's own shell.
  const bundle = join(a, 'bundle');
  const unpack = await run('umoci', ['unpack', '--rootless', '--image', `${join(a, 'img')}:t`, bundle]);
  assert.equal(unpack.code, 0, unpack.stderr);
  const shell = await run('bwrap', ['--bind', join(bundle, 'rootfs'), '/', '--dev', '/dev', '--proc', '/proc', '--unshare-all', '--', '/usr/bin/sh', '-c', 'echo "hello from $(cat /etc/os-release 2>/dev/null | head -1)$(busybox | head -1 | cut -d" " -f1)"; grep ^root /etc/shadow']);
  assert.equal(shell.code, 0, shell.stderr);
  assert.match(shell.stdout, /^hello from BusyBox\nroot:!:19800::::::\n$/);

  // One package changes: the lock says so, the digest changes, and the old image still rebuilds.
  const bb2 = await busybox(2, [{ path: 'usr/share/busybox/NEWS', content: 'rebuilt\n' }]);
  copyFileSync(bb2!, join(repo, bb2!.split('/').pop()!));
  await makeRepoWithRepoAdd(repo, 'fixture', [bb2!.split('/').pop()!]);
  const update = await runCli(['lock', join(work, 'spec.yaml'), '--update'], { cwd: work });
  assert.equal(update.code, 1, `exit 1: the lock changed; ${update.stderr}`);
  assert.equal(update.stdout, '  busybox 1.36.1-1 → 1.36.1-2\n');
  const third = await runCli(['build', join(work, 'spec.yaml'), '-o', `oci:${join(a, 'img2')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(a, 'cache') } });
  assert.equal(third.code, 0, third.stderr);
  assert.notEqual(third.stdout, first.stdout);
  const old = await runCli(['rebuild', `oci:${join(a, 'img')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(a, 'cache') } });
  assert.equal(old.code, 0, old.stderr + old.stdout);
  assert.equal(old.stdout, `reproducible: ${first.stdout}`);
});
