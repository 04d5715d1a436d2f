import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { busyboxRepo, COMMANDS_SKIP } from './support/busybox.js';
import { runCli, tempDirFor } from './support/cli.js';

/**
 * `image.setup.scriptlets` and `hooks` through the CLI: recorded in the recipe (so `rebuild` runs them again and
 * reproduces), refused by --no-commands, and a nondeterministic scriptlet named with the path it changed.
 */

const HOOK = ['[Trigger]', 'Operation = Install', 'Type = Path', 'Target = usr/bin/*', '[Action]', 'When = PostTransaction', 'Exec = /usr/bin/sh -c "sort > /etc/hooked-targets"', 'NeedsTargets', ''].join('\n');

async function repo(dir: string, postInstall: string): Promise<void> {
  await busyboxRepo(dir, ['sh', 'sort', 'mkdir', 'cat'], [{ path: 'bin', type: 'symlink', linkTarget: 'usr/bin' }], { install: `post_install() {\n  ${postInstall}\n}\n` });
}

function spec(setup: string[]): string {
  return ['repositories: [{ name: core, servers: [repo/$repo/os/$arch] }]', 'packages: [busybox]', 'sigLevel: Never', 'image:', '  setup:', ...setup.map((l) => `    ${l}`), ''].join('\n');
}

function layerListing(image: string): { listing: string; file: (path: string) => string } {
  const index = JSON.parse(readFileSync(join(image, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(join(image, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
  const layer = join(image, 'blobs/sha256', manifest.layers[0]!.digest.slice(7));
  return {
    listing: execFileSync('tar', ['--numeric-owner', '-tvzf', layer], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } }),
    file: (path) => execFileSync('tar', ['-xzOf', layer, path], { encoding: 'utf8' }),
  };
}

test('scriptlets and hooks: built twice alike, in the image, recorded so that rebuild reproduces; --no-commands refuses', { skip: COMMANDS_SKIP, timeout: 120_000 }, async (t) => {
  const work = await tempDirFor(t, 'scriptlets-build');
  await repo(work, 'echo "installed $1 at $SOURCE_DATE_EPOCH" > /etc/installed; mkdir -p /var/lib/made');
  writeFileSync(join(work, 'spec.yaml'), spec(['scriptlets: true', 'hooks: true', `hookFiles: [{ name: targets.hook, content: ${JSON.stringify(HOOK)} }]`]));
  const env = { REPRO_OCI_CACHE: join(work, 'cache') };
  const a = await runCli(['build', 'spec.yaml', '--source-date-epoch', '1700000000', '-o', `oci:${join(work, 'a')}:t`], { cwd: work, env });
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /scriptlets and hooks: 2 ran, \d+ path\(s\) changed, 0 removed/);
  const b = await runCli(['build', 'spec.yaml', '--source-date-epoch', '1700000000', '-o', `oci:${join(work, 'b')}:t`], { cwd: work, env: { ...env, TZ: 'Asia/Tokyo' } });
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, a.stdout);

  const { listing, file } = layerListing(join(work, 'a'));
  assert.equal(file('etc/installed'), 'installed 1.36.1-1 at 1700000000\n');
  assert.equal(file('etc/hooked-targets'), ['usr/bin/', 'usr/bin/busybox', 'usr/bin/cat', 'usr/bin/mkdir', 'usr/bin/sh', 'usr/bin/sort', ''].join('\n'));
  assert.match(listing, /^-rw-r--r-- 0\/0 +\d+ 2023-11-14 22:13 etc\/installed$/m, 'umask 022, owner root, mtime clamped');
  assert.match(listing, /^drwxr-xr-x 0\/0 .* var\/lib\/made\/$/m);
  assert.doesNotMatch(listing, / (dev|proc)\/$/m, 'no mount points of the sandbox left behind');

  const rebuilt = await runCli(['rebuild', `oci:${join(work, 'a')}:t`, '--mirror', join(work, 'repo/core/os/x86_64')], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'rebuild-cache') } });
  assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout);
  assert.match(rebuilt.stdout, /reproducible/);
  assert.match(rebuilt.stderr, /^the image's recipe runs the packages' install scriptlets \(setup\.scriptlets\) and ALPM hooks \(setup\.hooks\), sandboxed \(no network; /m, 'what runs is said before it runs');
  const refused = await runCli(['rebuild', `oci:${join(work, 'a')}:t`, '--no-commands'], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'rebuild-cache') } });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--no-commands: the recipe runs the packages' install scriptlets \(setup\.scriptlets\) and ALPM hooks \(setup\.hooks\) in the sandbox\n$/);
});

test('a nondeterministic scriptlet fails the build, naming the path and the scriptlet', { skip: COMMANDS_SKIP, timeout: 120_000 }, async (t) => {
  const work = await tempDirFor(t, 'scriptlets-nondet');
  await repo(work, 'cat /proc/sys/kernel/random/uuid > /etc/instance-id');
  writeFileSync(join(work, 'spec.yaml'), spec(['scriptlets: true']));
  const r = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'out')}`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\nrepro-oci: scriptlets and hooks are nondeterministic: 1 path\(s\) differ between two runs: etc\/instance-id \(last changed by post_install busybox\)\n$/);
  assert.equal(existsSync(join(work, 'out')), false);
});

test('scriptlets stay off unless asked for: the same package, no scriptlet run', { skip: COMMANDS_SKIP, timeout: 120_000 }, async (t) => {
  const work = await tempDirFor(t, 'scriptlets-off');
  await repo(work, 'echo ran > /etc/installed');
  writeFileSync(join(work, 'spec.yaml'), spec(['exclude: [nothing]']));
  const r = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'out')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /scriptlets and hooks/);
  const { listing } = layerListing(join(work, 'out'));
  assert.match(listing, /var\/lib\/pacman\/local\/busybox-1\.36\.1-1\/install$/m);
  assert.doesNotMatch(listing, /etc\/installed/);
});

test('the tree scriptlets and hooks run on is in memory when it has room, else in TMPDIR; REPRO_OCI_MEMORY_SCRATCH=off keeps it there', { skip: COMMANDS_SKIP, timeout: 120_000 }, async (t) => {
  const work = await tempDirFor(t, 'scriptlets-scratch');
  // The scriptlet's file lands in its run's upper directory (overlay.ts), where the test looks for it while the scriptlet waits.
  await busyboxRepo(work, ['sh', 'sleep'], [{ path: 'bin', type: 'symlink', linkTarget: 'usr/bin' }], { install: 'post_install() {\n  echo here > /etc/scratch-marker\n  sleep 1\n}\n' });
  writeFileSync(join(work, 'spec.yaml'), spec(['scriptlets: true']));
  const memory = mkdtempSync('/dev/shm/scriptlets-test-');
  t.after(() => rmSync(memory, { recursive: true, force: true }));
  chmodSync(memory, 0o755);
  const tmp = join(work, 'tmp');
  mkdirSync(tmp);
  chmodSync(work, 0o755);
  assert.equal(execFileSync('stat', ['-f', '-c', '%T', memory], { encoding: 'utf8' }), 'tmpfs\n');
  const holdsMarker = (dir: string): boolean =>
    readdirSync(dir)
      .filter((n) => n.startsWith('repro-oci-transaction-'))
      .some((n) => readdirSync(join(dir, n)).some((run) => /^[ab]-/.test(run) && existsSync(join(dir, n, run, 'upper', 'etc', 'scratch-marker'))));
  for (const [setting, expected] of [[memory, memory], ['off', tmp]] as const) {
    const seen = new Set<string>();
    const look = setInterval(() => {
      for (const dir of [memory, tmp]) if (holdsMarker(dir)) seen.add(dir);
    }, 20);
    const r = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, `out-${setting === 'off' ? 'off' : 'memory'}`)}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache'), TMPDIR: tmp, REPRO_OCI_MEMORY_SCRATCH: setting } });
    clearInterval(look);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...seen], [expected], `REPRO_OCI_MEMORY_SCRATCH=${setting}`);
    assert.deepEqual(readdirSync(memory), []);
    assert.deepEqual(readdirSync(tmp), []);
  }
});

test('the tree scriptlets change is their run\'s own: a package file changed in place changes once, hardlinks together; a directory made anew takes a later package\'s files, a renamed one moves whole', { skip: COMMANDS_SKIP, timeout: 120_000 }, async (t) => {
  const work = await tempDirFor(t, 'scriptlets-layers');
  // busybox's files are one layer of the store both runs share (src/setup/overlay.ts); its post_install changes them.
  // Written through to the store, the second run would append again, or miss what it removes: the two runs would differ.
  const later = { pkgname: 'later', pkgver: '1.0', pkgrel: 1, arch: 'x86_64', sourceDateEpoch: 1700000000, depends: ['busybox'], entries: [{ path: 'usr/share/remade/from-later', type: 'file' as const, content: 'later\n' }] };
  await busyboxRepo(
    work,
    ['sh', 'rm', 'mkdir', 'mv', 'echo'],
    [
      { path: 'bin', type: 'symlink', linkTarget: 'usr/bin' },
      { path: 'etc/conf', type: 'file', content: 'original\n' },
      { path: 'etc/linked', type: 'file', content: 'one inode\n' },
      { path: 'etc/linked-too', type: 'hardlink', linkTarget: 'etc/linked' },
      { path: 'usr/share/remade', type: 'dir' },
      { path: 'usr/share/remade/old', type: 'file', content: 'old\n' },
      { path: 'usr/share/moved', type: 'dir' },
      { path: 'usr/share/moved/inside', type: 'file', content: 'inside\n' },
    ],
    {
      install: 'post_install() {\n  echo appended >> /etc/conf\n  echo appended >> /etc/linked\n  rm -rf /usr/share/remade\n  mkdir /usr/share/remade\n  echo made > /usr/share/remade/made\n  mv /usr/share/moved /usr/share/moved-to\n}\n',
      more: [later],
    },
  );
  writeFileSync(join(work, 'spec.yaml'), spec(['scriptlets: true']).replace('packages: [busybox]', 'packages: [busybox, later]'));
  const r = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'out')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  const { listing, file } = layerListing(join(work, 'out'));
  assert.equal(file('etc/conf'), 'original\nappended\n');
  assert.equal(file('etc/linked'), 'one inode\nappended\n');
  assert.equal(file('etc/linked-too'), 'one inode\nappended\n', 'both names of a hardlink changed, as in pacman\'s tree');
  const paths = listing
    .split('\n')
    .map((line) => line.split(/\s+/).slice(5).join(' '))
    .filter((p) => p.startsWith('usr/share/') && !p.startsWith('usr/share/repro-oci/'));
  assert.deepEqual(paths.sort(), ['usr/share/', 'usr/share/moved-to/', 'usr/share/moved-to/inside', 'usr/share/remade/', 'usr/share/remade/from-later', 'usr/share/remade/made']);
  assert.equal(file('usr/share/remade/from-later'), 'later\n');
});

test('a layer of thousands of files (written on two threads) is whole when scriptlets read it: every file\'s bytes and mode', { skip: COMMANDS_SKIP, timeout: 300_000 }, async (t) => {
  const work = await tempDirFor(t, 'scriptlets-wide-layer');
  const files = Array.from({ length: 5000 }, (_, i) => ({ path: `usr/share/wide/d${String(i % 50).padStart(2, '0')}/f${String(i).padStart(4, '0')}`, content: `file ${i}\n`.repeat(1 + (i % 7)), mode: i % 3 === 0 ? 0o750 : 0o644 }));
  const wide = {
    pkgname: 'wide',
    pkgver: '1.0',
    pkgrel: 1,
    arch: 'x86_64',
    sourceDateEpoch: 1700000000,
    depends: ['busybox'],
    zstdLevel: 3,
    entries: [{ path: 'usr/share/wide', type: 'dir' as const }, ...Array.from({ length: 50 }, (_, d) => ({ path: `usr/share/wide/d${String(d).padStart(2, '0')}`, type: 'dir' as const })), ...files.map((f) => ({ ...f, type: 'file' as const }))],
  };
  // checker's scriptlet runs on the layer holding base, busybox and wide (src/setup/overlay.ts THREADED_LAYER: 4096 entries).
  const checker = {
    pkgname: 'checker',
    pkgver: '1.0',
    pkgrel: 1,
    arch: 'x86_64',
    sourceDateEpoch: 1700000000,
    depends: ['wide'],
    entries: [],
    install: 'post_install() {\n  find /usr/share/wide -type f | sort | xargs cat | md5sum > /etc/wide-sum\n  find /usr/share/wide -type f -perm 750 | wc -l > /etc/wide-750\n}\n',
  };
  await busyboxRepo(work, ['sh', 'find', 'sort', 'xargs', 'cat', 'md5sum', 'wc'], [{ path: 'bin', type: 'symlink', linkTarget: 'usr/bin' }], { more: [wide, checker] });
  writeFileSync(join(work, 'spec.yaml'), spec(['scriptlets: true']).replace('packages: [busybox]', 'packages: [checker]'));
  const r = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'out')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  const { file } = layerListing(join(work, 'out'));
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  assert.equal(file('etc/wide-sum'), `${createHash('md5').update(sorted.map((f) => f.content).join('')).digest('hex')}  -\n`);
  assert.equal(file('etc/wide-750').trim(), String(files.filter((f) => f.mode === 0o750).length));
});

test('past the most overlay layers a run stacks, packages are written into its own tree: every file there, every scriptlet run in order', { skip: COMMANDS_SKIP, timeout: 300_000 }, async (t) => {
  const work = await tempDirFor(t, 'scriptlets-many-layers');
  // One layer per package with a scriptlet (its pre_install file is written before its files): 105 of them pass MAX_LAYERS (100).
  const names = Array.from({ length: 105 }, (_, i) => `p${String(i).padStart(3, '0')}`);
  const more = names.map((name, i) => ({
    pkgname: name,
    pkgver: '1.0',
    pkgrel: 1,
    arch: 'x86_64',
    sourceDateEpoch: 1700000000,
    depends: i === 0 ? ['busybox'] : [names[i - 1]!],
    entries: [{ path: `usr/share/many/${name}`, type: 'file' as const, content: `${name}\n` }],
    install: `post_install() {\n  cat /usr/share/many/${name} >> /etc/order\n}\n`,
    zstdLevel: 3, // level 19 takes ~0.16 s of each of 105 packages
  }));
  await busyboxRepo(work, ['sh', 'cat'], [{ path: 'bin', type: 'symlink', linkTarget: 'usr/bin' }, { path: 'usr/share/many', type: 'dir' }], { more });
  writeFileSync(join(work, 'spec.yaml'), spec(['scriptlets: true']).replace('packages: [busybox]', `packages: [${names.at(-1)}]`));
  const r = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'out')}:t`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  const { listing, file } = layerListing(join(work, 'out'));
  assert.equal(file('etc/order'), names.map((n) => `${n}\n`).join(''));
  for (const name of names) assert.match(listing, new RegExp(`^-rw-r--r-- 0/0 +5 .* usr/share/many/${name}$`, 'm'));
});

test('a scriptlet that turns a directory into a symlink (out of the tree, to the host) never gets a later package written through it', { skip: COMMANDS_SKIP, timeout: 120_000 }, async (t) => {
  const work = await tempDirFor(t, 'scriptlets-escape');
  const outside = join(work, 'host-dir');
  mkdirSync(outside);
  const victim = { pkgname: 'victim', pkgver: '1.0', pkgrel: 1, arch: 'x86_64', sourceDateEpoch: 1700000000, depends: ['busybox'], entries: [{ path: 'usr/share/shared/file', type: 'file' as const, content: 'written\n' }] };
  // busybox owns usr/share/shared; its post_install swaps it for a symlink to a host directory, before victim is extracted.
  await busyboxRepo(work, ['sh', 'rm', 'ln'], [{ path: 'bin', type: 'symlink', linkTarget: 'usr/bin' }, { path: 'usr/share/shared', type: 'dir' }], {
    install: `post_install() {\n  rm -rf /usr/share/shared\n  ln -s ${outside} /usr/share/shared\n}\n`,
    more: [victim],
  });
  writeFileSync(join(work, 'spec.yaml'), spec(['scriptlets: true']).replace('packages: [busybox]', 'packages: [busybox, victim]'));
  const r = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'out')}`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /\nrepro-oci: scriptlets made \/usr\/share\/shared a symlink, and package victim installs below it\n$/);
  assert.deepEqual(readdirSync(outside), [], 'nothing was written through the symlink');
  assert.equal(existsSync(join(work, 'out')), false);
});
