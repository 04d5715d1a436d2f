import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildPackage, type PackageEntry, type PackageMetadata } from '../src/example/package-writer.js';
import { repoPackageFromBuilt, writeRepo } from '../src/example/repo-writer.js';
import { archisoVersion, pacmanQuery } from '../src/bootstrap/archiso.js';
import { bootstrapTarballPath, parseBootstrapOutput } from '../src/bootstrap/tarball.js';
import { COMMANDS_SKIP } from './support/busybox.js';
import { REPO_ROOT, runCli, tempDirFor } from './support/cli.js';
import { loadSpec } from '../src/lock/spec.js';
import { checkImageSettings } from '../src/image/image-settings.js';

/**
 * `build -o bootstrap:FILE`: archiso's bootstrap tarball (root.<arch>/, pkglist.<arch>.txt, version) from a
 * small corpus whose busybox package runs a post_install scriptlet and ships a hook, checked with real bsdtar,
 * GNU tar, sha256sum and pacman; rebuilt from itself; hostile tarballs and bad outputs refused in one line.
 */

const SDE = 1_700_000_000; // 2023-11-14 22:13:20 UTC
const HOOK = ['[Trigger]', 'Operation = Install', 'Type = Package', 'Target = lib*', '[Action]', 'When = PostTransaction', 'Exec = /usr/bin/sh -c "cat > /etc/hooked"', 'NeedsTargets', ''].join('\n');

/** Names whose byte order differs from a locale's (-, +, . and letters), one with an epoch. */
const LIBS: Omit<PackageMetadata, 'arch'>[] = [
  { pkgname: 'libw', pkgver: '1.0', pkgrel: 1 },
  { pkgname: 'lib-z', pkgver: '2.0', pkgrel: 3, epoch: 1 },
  { pkgname: 'lib.y', pkgver: '0.9', pkgrel: 1 },
  { pkgname: 'lib+x', pkgver: '3.1', pkgrel: 2 },
];

async function corpus(dir: string): Promise<void> {
  const out = join(dir, 'repo', 'core', 'os', 'x86_64');
  mkdirSync(out, { recursive: true });
  const pkg = async (meta: Omit<PackageMetadata, 'arch'>, entries: PackageEntry[], install?: string): Promise<ReturnType<typeof repoPackageFromBuilt>> => {
    const built = await buildPackage({ ...meta, arch: 'x86_64', sourceDateEpoch: SDE, pkginfoComments: ['test'], buildinfo: { buildtoolver: '0' }, entries, ...(install ? { install } : {}) });
    writeFileSync(join(out, built.filename), built.bytes);
    return repoPackageFromBuilt(built);
  };
  const packages = [
    await pkg({ pkgname: 'fs-base', pkgver: '2024.01', pkgrel: 1 }, [
      ...['boot', 'etc', 'usr', 'usr/lib', 'var', 'var/log', 'var/lib', 'var/tmp', 'usr/share'].map((path) => ({ path, type: 'dir' as const })),
      { path: 'bin', type: 'symlink', linkTarget: 'usr/bin' },
      { path: 'etc/os-release', type: 'symlink', linkTarget: '../usr/lib/os-release' },
      { path: 'usr/lib/os-release', type: 'file', content: 'NAME="Test Linux"\nIMAGE_ID=old\nID=test\n' },
      { path: 'etc/machine-id', type: 'file', content: '0123456789abcdef0123456789abcdef\n', mode: 0o444 },
      { path: 'etc/pacman.conf', type: 'file', content: '[options]\nArchitecture = x86_64\n' },
      { path: 'boot/vmlinuz-test', type: 'file', content: 'kernel\n' },
      { path: 'var/log/old.log', type: 'file', content: 'log\n' },
      { path: 'var/tmp/leftover', type: 'file', content: 'tmp\n' },
      { path: 'etc/keep.conf.pacnew', type: 'file', content: 'new\n' },
    ]),
    await pkg({ pkgname: 'busybox', pkgver: '1.36.1', pkgrel: 1, depends: ['fs-base'] }, [
      { path: 'usr/bin/busybox', type: 'file', content: readFileSync('/bin/busybox'), mode: 0o755 },
      ...['sh', 'cat', 'echo'].map((a) => ({ path: `usr/bin/${a}`, type: 'symlink' as const, linkTarget: 'busybox' })),
      { path: 'usr/share/libalpm', type: 'dir' },
      { path: 'usr/share/libalpm/hooks', type: 'dir' },
      { path: 'usr/share/libalpm/hooks/50-libs.hook', type: 'file', content: HOOK },
    ], 'post_install() {\n  echo "busybox $1 installed" > /etc/installed\n}\n'),
    ...(await Promise.all(LIBS.map((meta) => pkg({ ...meta, depends: ['fs-base'] }, [{ path: `usr/lib/${meta.pkgname}.so`, type: 'file', content: `${meta.pkgname}\n` }])))),
  ];
  await writeRepo(out, 'core', packages, { symlinks: false });
  writeFileSync(join(dir, 'spec.yaml'), [
    'architecture: x86_64',
    'repositories: [{ name: core, servers: [repo/$repo/os/$arch] }]',
    `packages: [busybox, ${LIBS.map((l) => l.pkgname).join(', ')}]`,
    'sigLevel: Never',
    'image:',
    '  setup: { scriptlets: true, hooks: true }',
    '',
  ].join('\n'));
}

const sh = (cmd: string, args: string[], cwd?: string): string => execFileSync(cmd, args, { encoding: 'utf8', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' }, ...(cwd ? { cwd } : {}) });

async function workspace(t: Parameters<typeof tempDirFor>[0], name: string): Promise<{ work: string; env: Record<string, string> }> {
  const work = await tempDirFor(t, name);
  await corpus(work);
  return { work, env: { REPRO_OCI_CACHE: join(work, 'cache'), SOURCE_DATE_EPOCH: String(SDE) } };
}

test('the bootstrap tarball: twice the same bytes, archiso\'s layout, pkglist as real pacman prints it, rebuilt from itself', { skip: COMMANDS_SKIP, timeout: 180_000 }, async (t) => {
  const { work, env } = await workspace(t, 'bootstrap');
  const a = await runCli(['build', 'spec.yaml', '-o', 'bootstrap:a.tar.zst:sha256'], { cwd: work, env });
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const b = await runCli(['build', 'spec.yaml', '-o', 'bootstrap:b.tar.zst', '--json'], { cwd: work, env: { ...env, TZ: 'Asia/Tokyo', REPRO_OCI_CACHE: join(work, 'cache-b') } });
  assert.equal(b.code, 0, b.stderr);
  const json = JSON.parse(b.stdout) as { bootstrap: { digest: string; compressor: string; path: string } };
  assert.equal(json.bootstrap.digest, a.stdout.trim());
  assert.match(json.bootstrap.compressor, /^zstd;impl=zstd-napi\/.*;level=3;/);
  assert.deepEqual(readFileSync(join(work, 'a.tar.zst')), readFileSync(join(work, 'b.tar.zst')));
  assert.equal(statSync(join(work, 'a.tar.zst')).mode & 0o777, 0o644);
  assert.equal(sh('sha256sum', ['-c', 'a.tar.zst.sha256'], work), 'a.tar.zst: OK\n');
  assert.deepEqual(readdirSync(work).filter((n) => n.startsWith('.')), [], 'no temporaries left beside the output');

  // Layout, as bsdtar lists it: pkglist and version at the top, everything else under root.x86_64/.
  const names = sh('bsdtar', ['-tf', 'a.tar.zst'], work).trimEnd().split('\n');
  assert.equal(names[0], 'pkglist.x86_64.txt');
  assert.equal(names[1], 'root.x86_64/');
  assert.equal(names.at(-1), 'version');
  assert.deepEqual(names.filter((n) => !n.startsWith('root.x86_64/')), ['pkglist.x86_64.txt', 'version']);
  for (const path of ['etc/installed', 'etc/hooked', 'usr/lib/clock-epoch', 'usr/share/repro-oci/recipe.json', 'usr/share/repro-oci/sbom.spdx.json', 'var/cache/pacman/pkg/', 'tmp/', 'proc/', 'boot/', 'var/lib/pacman/local/lib-z-1:2.0-3/desc']) {
    assert.ok(names.includes(`root.x86_64/${path}`), `${path} is in the tarball`);
  }
  for (const path of ['boot/vmlinuz-test', 'var/log/old.log', 'var/tmp/leftover', 'etc/keep.conf.pacnew', 'var/lib/pacman/sync/']) {
    assert.ok(!names.includes(`root.x86_64/${path}`), `${path} was cleaned up as archiso does`);
  }
  const listing = sh('tar', ['--numeric-owner', '-tvf', 'a.tar.zst', '--zstd'], work);
  assert.match(listing, /^-rw-r--r-- 0\/0 +11 2023-11-14 22:13 version$/m);
  assert.match(listing, /^drwxr-xr-x 0\/0 +0 2023-11-14 22:13 root\.x86_64\/$/m);
  assert.match(listing, /^drwxrwxrwt 0\/0 .* root\.x86_64\/tmp\/$/m);
  assert.match(listing, /^-rw-r--r-- 0\/0 +0 2023-11-14 22:13 root\.x86_64\/usr\/lib\/clock-epoch$/m);

  // Extracted with real bsdtar: the files mkarchiso writes, and pkglist as real pacman prints it from the tree.
  const root = join(work, 'x');
  mkdirSync(root);
  sh('bsdtar', ['-xpf', join(work, 'a.tar.zst'), '-C', root]);
  assert.equal(readFileSync(join(root, 'version'), 'utf8'), `${archisoVersion(SDE)}\n`);
  assert.equal(archisoVersion(SDE), '2023.11.14');
  const r = join(root, 'root.x86_64');
  assert.equal(readFileSync(join(r, 'etc/os-release'), 'utf8'), 'NAME="Test Linux"\nID=test\nIMAGE_ID=archlinux\nIMAGE_VERSION=2023.11.14\n');
  assert.equal(readFileSync(join(r, 'etc/machine-id'), 'utf8'), 'uninitialized\n');
  assert.equal(readFileSync(join(r, 'etc/installed'), 'utf8'), 'busybox 1.36.1-1 installed\n');
  assert.equal(readFileSync(join(r, 'etc/hooked'), 'utf8'), 'lib+x\nlib-z\nlib.y\nlibw\n');
  const pkglist = readFileSync(join(root, 'pkglist.x86_64.txt'), 'utf8');
  assert.equal(pkglist, 'busybox 1.36.1-1\nfs-base 2024.01-1\nlib+x 3.1-2\nlib-z 1:2.0-3\nlib.y 0.9-1\nlibw 1.0-1\n');
  assert.equal(sh('pacman', ['-Q', '--sysroot', r]), pkglist, 'pkglist is what pacman -Q --sysroot prints');
  assert.equal(pacmanQuery([]), '');

  // rebuild from the tarball alone: the same bytes; `bootstrap:FILE` names it too.
  const rebuilt = await runCli(['rebuild', 'a.tar.zst', '--mirror', 'repo/core/os/x86_64'], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'rebuild-cache') } });
  assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout);
  assert.equal(rebuilt.stdout, `reproducible: ${a.stdout.trim()}\n`);
  const viaPrefix = await runCli(['rebuild', `bootstrap:${join(work, 'a.tar.zst')}`, '--mirror', join(work, 'repo/core/os/x86_64'), '--json'], { env: { REPRO_OCI_CACHE: join(work, 'rebuild-cache') } });
  assert.equal(viaPrefix.code, 0, viaPrefix.stderr);
  assert.equal((JSON.parse(viaPrefix.stdout) as { reproducible: boolean }).reproducible, true);
  const refused = await runCli(['rebuild', 'a.tar.zst', '--no-commands'], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'rebuild-cache') } });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--no-commands: the recipe runs the packages' install scriptlets \(setup\.scriptlets\) and ALPM hooks \(setup\.hooks\) in the sandbox/);
});

test('gzip bootstrap tarball: pinned compressor, rebuilt from itself; a different SOURCE_DATE_EPOCH is a different tarball', { skip: COMMANDS_SKIP, timeout: 180_000 }, async (t) => {
  const { work, env } = await workspace(t, 'bootstrap-gz');
  const a = await runCli(['build', 'spec.yaml', '-o', 'bootstrap:a.tar.gz', '--digestfile', 'a.digest'], { cwd: work, env });
  assert.equal(a.code, 0, a.stderr);
  assert.equal(readFileSync(join(work, 'a.digest'), 'utf8'), a.stdout.trim());
  sh('gzip', ['-t', 'a.tar.gz'], work); // throws unless gzip reads it whole
  assert.match(sh('tar', ['-tzf', 'a.tar.gz'], work), /^root\.x86_64\/usr\/share\/repro-oci\/recipe\.json$/m);
  const recipe = JSON.parse(sh('tar', ['-xzOf', 'a.tar.gz', 'root.x86_64/usr/share/repro-oci/recipe.json'], work)) as { compressor: string; bootstrap: unknown };
  assert.match(recipe.compressor, /^gzip;impl=node-zlib\/[^;]+;level=6;blocks=1048576$/);
  assert.deepEqual(recipe.bootstrap, { compression: 'gzip' });
  const later = await runCli(['build', 'spec.yaml', '-o', 'bootstrap:later.tar.gz'], { cwd: work, env: { ...env, SOURCE_DATE_EPOCH: String(SDE + 86_400) } });
  assert.equal(later.code, 0, later.stderr);
  assert.notEqual(later.stdout, a.stdout);
  assert.equal(sh('tar', ['-xzOf', 'later.tar.gz', 'version'], work), '2023.11.15\n');
  const rebuilt = await runCli(['rebuild', join(work, 'a.tar.gz'), '--mirror', join(work, 'repo/core/os/x86_64')], { env: { REPRO_OCI_CACHE: join(work, 'rebuild-cache') } });
  assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout);
  assert.match(rebuilt.stdout, /^reproducible: sha256:/);

  // diff reads tarballs as one-layer images: entry by entry.
  const same = await runCli(['diff', 'a.tar.gz', `bootstrap:${join(work, 'a.tar.gz')}`], { cwd: work });
  assert.equal(same.code, 0, same.stderr + same.stdout);
  const differ = await runCli(['diff', 'a.tar.gz', 'later.tar.gz'], { cwd: work });
  assert.equal(differ.code, 1, differ.stderr);
  assert.match(differ.stdout, /^ +~ \/version: mtime 1700000000 → 1700086400, sha256 [0-9a-f]{16} → [0-9a-f]{16}$/m);
  assert.match(differ.stdout, /^ +~ \/root\.x86_64\/usr\/lib\/os-release: mtime 1700000000 → 1700086400, sha256 /m);
});

/** Repacks an extracted tarball with GNU tar (the member order of `names`), zstd-compressed. */
function repack(dir: string, file: string, names: string[]): void {
  sh('tar', ['--zstd', '-cf', file, '-C', dir, '--no-recursion', ...names]);
}

test('hostile bootstrap tarballs given to rebuild: one line each, nothing built', { skip: COMMANDS_SKIP, timeout: 180_000 }, async (t) => {
  const { work, env } = await workspace(t, 'bootstrap-hostile');
  const built = await runCli(['build', 'spec.yaml', '-o', 'bootstrap:good.tar.zst'], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr);
  const x = join(work, 'x');
  mkdirSync(x);
  sh('bsdtar', ['-xpf', join(work, 'good.tar.zst'), '-C', x]);
  const members = sh('bsdtar', ['-tf', join(work, 'good.tar.zst')]).trimEnd().split('\n');
  const recipePath = join(x, 'root.x86_64/usr/share/repro-oci/recipe.json');
  const recipe = readFileSync(recipePath, 'utf8');
  const rebuildOf = (file: string): ReturnType<typeof runCli> => runCli(['rebuild', file, '--mirror', 'repo/core/os/x86_64'], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'rebuild-cache') } });
  const oneLine = (r: { code: number | null; stderr: string; stdout: string }, pattern: RegExp): void => {
    assert.equal(r.code, 2, r.stderr + r.stdout);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.match(lines.at(-1)!, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  };

  // A recipe that is not JSON, one without its bootstrap section, one for another architecture.
  const cases: [string, string, RegExp][] = [
    ['not-json', '{"recipeVersion": 1,', /^repro-oci: bootstrap tarball .*not-json\.tar\.zst: .*recipe\.json.*JSON/],
    ['no-bootstrap', JSON.stringify({ ...JSON.parse(recipe), bootstrap: undefined }), /the recipe has no valid bootstrap section/],
    ['other-arch', JSON.stringify({ ...JSON.parse(recipe), spec: { ...JSON.parse(recipe).spec, architecture: 'aarch64' } }), /(its recipe is for aarch64, but it sits in root\.x86_64\/|different package selection)/],
  ];
  for (const [name, text, pattern] of cases) {
    writeFileSync(recipePath, text);
    repack(x, join(work, `${name}.tar.zst`), members);
    oneLine(await rebuildOf(`${name}.tar.zst`), pattern);
  }

  // A recipe that is valid but says something else: rebuilt, and the bytes differ (exit 1), never "reproducible".
  writeFileSync(recipePath, JSON.stringify({ ...JSON.parse(recipe), sourceDateEpoch: SDE + 1 }, null, 2));
  repack(x, join(work, 'tampered.tar.zst'), members);
  const tampered = await runCli(['rebuild', 'tampered.tar.zst', '--mirror', 'repo/core/os/x86_64'], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'tampered-cache') } });
  assert.equal(tampered.code, 1, tampered.stderr + tampered.stdout);
  assert.match(tampered.stdout, /^NOT reproducible: image sha256:[0-9a-f]{64}, rebuild sha256:[0-9a-f]{64}\n/);
  assert.match(tampered.stdout, /^ +~ \/root\.x86_64\/usr\/share\/repro-oci\/recipe\.json: /m, 'the differences are listed');
  writeFileSync(recipePath, recipe);

  // Path traversal and strangers beside root.<arch>/: refused while reading, before anything is fetched.
  writeFileSync(join(work, 'evil'), 'x');
  sh('tar', ['--zstd', '-cf', join(work, 'traversal.tar.zst'), '-C', x, '--no-recursion', 'pkglist.x86_64.txt', '--transform', 's,^pkglist.x86_64.txt$,root.x86_64/../../etc/evil,', 'pkglist.x86_64.txt']);
  oneLine(await rebuildOf('traversal.tar.zst'), /member "root\.x86_64\/\.\.\/\.\.\/etc\/evil" is not a relative path inside the tarball$/);
  sh('tar', ['--zstd', '-cf', join(work, 'absolute.tar.zst'), '-P', join(work, 'evil')]);
  oneLine(await rebuildOf('absolute.tar.zst'), /is not a relative path inside the tarball$/);
  sh('tar', ['--zstd', '-cf', join(work, 'stranger.tar.zst'), '-C', work, 'evil']);
  oneLine(await rebuildOf('stranger.tar.zst'), /member "evil" is neither under root\.<arch>\/ nor pkglist\.<arch>\.txt or version: not an archiso bootstrap tarball$/);
  repack(x, join(work, 'no-recipe.tar.zst'), members.filter((m) => !m.endsWith('recipe.json')));
  oneLine(await rebuildOf('no-recipe.tar.zst'), /carries no recipe \(root\.x86_64\/usr\/share\/repro-oci\/recipe\.json\): it was not built by repro-oci$/);
  writeFileSync(join(work, 'garbage.tar.zst'), Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64, 7)]));
  oneLine(await rebuildOf('garbage.tar.zst'), /garbage\.tar\.zst: corrupt or truncated zstd stream/);
  oneLine(await rebuildOf('missing.tar.zst'), /missing\.tar\.zst: cannot be read \(no such file\)$/);
  assert.equal(existsSync(join(work, 'rebuild-cache')), false, 'nothing was fetched for a refused tarball');
});

test('bootstrap outputs: bad names and places fail in one line before any work; a failed build leaves nothing', { timeout: 60_000 }, async (t) => {
  const work = await tempDirFor(t, 'bootstrap-outputs');
  writeFileSync(join(work, 'spec.yaml'), 'repositories: [{ name: core, servers: [repo/$repo/os/$arch] }]\npackages: [nothing-here]\nsigLevel: Never\n');
  mkdirSync(join(work, 'adir.tar.zst'));
  const env = { REPRO_OCI_CACHE: join(work, 'cache') };
  const cases: [string[], RegExp][] = [
    [['-o', 'bootstrap:out.tar.xz'], /bootstrap:out\.tar\.xz: the file name must end in \.tar\.zst, \.tar\.gz or \.tar/],
    [['-o', 'bootstrap:'], /bootstrap:: no file after bootstrap:/],
    [['-o', 'bootstrap:a:b.tar.zst'], /a path with ':' is not supported/],
    [['-o', 'bootstrap:no-dir/out.tar.zst'], /bootstrap:no-dir\/out\.tar\.zst: directory .*no-dir does not exist/],
    [['-o', 'bootstrap:adir.tar.zst'], /bootstrap:adir\.tar\.zst: is a directory/],
    [['-o', 'bootstrap:out.tar.zst', '-o', 'oci:img'], /a bootstrap:FILE output is the build's only output/],
    [['-o', 'bootstrap:out.tar.zst', '--sbom', 'sboms'], /--sbom is for image outputs/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(['build', 'spec.yaml', ...args], { cwd: work, env });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trimEnd().split('\n').at(-1)!, pattern);
  }
  const rootfs = await runCli(['build', '--rootfs', work, '-o', 'bootstrap:out.tar.zst'], { cwd: work, env });
  assert.equal(rootfs.code, 2);
  assert.match(rootfs.stderr, /a bootstrap tarball is built from a spec \(SPEC\.yaml\), not --rootfs\n$/);
  // The package does not exist: the build fails after the output was checked, and leaves no file behind.
  const failed = await runCli(['build', 'spec.yaml', '-o', 'bootstrap:out.tar.zst:sha256'], { cwd: work, env });
  assert.equal(failed.code, 2);
  assert.deepEqual(readdirSync(work).filter((n) => n.startsWith('out') || n.startsWith('.')), []);
});

test('bootstrap output and tarball names parse as documented; the bundled bootstrap spec is valid', async () => {
  const example = await loadSpec(join(REPO_ROOT, 'examples', 'archlinux-bootstrap.yaml'));
  assert.deepEqual(example.spec.packages, ['arch-install-scripts', 'base'], "archiso's releng bootstrap_packages");
  const settings = checkImageSettings(example.spec.image, 'example');
  assert.deepEqual([settings.setup?.scriptlets, settings.setup?.hooks, settings.bootstrap?.level], [true, true, 19]);
  assert.deepEqual(parseBootstrapOutput('bootstrap:dir/archlinux-bootstrap-x86_64.tar.zst'), { path: 'dir/archlinux-bootstrap-x86_64.tar.zst', compression: 'zstd', sha256File: false });
  assert.deepEqual(parseBootstrapOutput('bootstrap:a.tar.gz:sha256'), { path: 'a.tar.gz', compression: 'gzip', sha256File: true });
  assert.deepEqual(parseBootstrapOutput('bootstrap:a.tar'), { path: 'a.tar', compression: 'none', sha256File: false });
  assert.equal(parseBootstrapOutput('oci:a.tar.zst'), undefined);
  assert.throws(() => parseBootstrapOutput('bootstrap:.tar.zst'), /must end in/);
  assert.equal(bootstrapTarballPath('a.tar.zst'), 'a.tar.zst');
  assert.equal(bootstrapTarballPath('bootstrap:a.bin'), 'a.bin');
  assert.equal(bootstrapTarballPath('oci-archive:a.tar'), undefined);
  assert.equal(bootstrapTarballPath('docker://x/y.tar'), undefined);
  assert.equal(archisoVersion(0), '1970.01.01');
  assert.equal(archisoVersion(1711929599), '2024.03.31');
});
