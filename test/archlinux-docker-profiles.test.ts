import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { generateExampleArchive } from '../src/example/generate.js';
import { buildPackage } from '../src/example/package-writer.js';
import { repoPackageFromBuilt, writeRepo } from '../src/example/repo-writer.js';
import { ARCHLINUX_DOCKER_COMMIT, archlinuxDockerNoExtract, disableSandbox, dockerfileLayerEntries, editOsRelease, lookupInTree } from '../src/setup/archlinux-docker.js';
import { readNodeContent } from '../src/setup/setup.js';
import { Readable } from 'node:stream';
import type { TreeNode } from '../src/install/installer.js';
import { COMMANDS_SKIP } from './support/busybox.js';
import { fakeClockEnv, REPO_ROOT, runCli, tempDirFor } from './support/cli.js';

const PROFILES = ['base', 'base-devel', 'multilib-devel', 'repro'] as const;
const DATA = join(REPO_ROOT, 'data/archlinux-docker');
const EXAMPLES = join(REPO_ROOT, 'examples/archlinux-docker');
const SNAPSHOT = 'repos/2026/03/30';

/** data/archlinux-docker/ as PROVENANCE.md records it: a change to these bytes must be a deliberate one. */
const DATA_SHA256: Record<string, string> = {
  'extra.conf': '2be4c46c7339babddd7ec6bf180042c35ca1b4a732c5b4c880ac981bf13dd36d',
  'multilib.conf': '8e6ec821c92eb3e3fd212181c218b938a7b3b0802c0c0afcbf9fc763ca66daff',
  'pacman-conf.d-noextract.conf': '3fc3b20e938f3bae0750933f285d026e04603c11d8242666fd755023c0b5eeef',
  exclude: 'fc46ac38f01f1df7fc997302b4b4a0cdb34c5d0f12fdc73afe63de510b6d4bd2',
  'rootfs/etc/locale.conf': '89dd29db91ea608d72b5b4d3d3f5816cc2d3c1dd730741dc41b20ce12f1c2b3b',
  'rootfs/etc/pacman.d/mirrorlist': '2a2f89c3f48e80f626bb5e6eb7e5f13ee36b3938048b3634f53dfbedbd944b2f',
};

/** make-rootfs.sh's own lines for etc/pacman.conf, run by bash and GNU sed on the shipped files: the oracle. */
function upstreamPacmanConf(dir: string, profile: string): string {
  const script = [
    'set -euo pipefail',
    'GROUP="$1"; DATA="$2"; BUILDDIR="$3"',
    '[[ "$GROUP" == "multilib-devel" ]] && pacman_conf=multilib.conf || pacman_conf=extra.conf',
    'install -Dm644 "$DATA/$pacman_conf" "$BUILDDIR/etc/pacman.conf"',
    'cat "$DATA/pacman-conf.d-noextract.conf" >> "$BUILDDIR/etc/pacman.conf"',
    "if grep -q '#DisableSandboxFilesystem' \"$BUILDDIR/etc/pacman.conf\"; then",
    "sed -i '/#DisableSandboxFilesystem/{c\\",
    '# No kernel landlock in containerd\\',
    'DisableSandboxFilesystem',
    "}' \"$BUILDDIR/etc/pacman.conf\"",
    'else',
    "sed -i '/#DisableSandbox/{c\\",
    '# No kernel landlock in containerd\\',
    'DisableSandbox',
    "}' \"$BUILDDIR/etc/pacman.conf\"",
    'fi',
  ].join('\n');
  const builddir = join(dir, `oracle-${profile}`);
  execFileSync('bash', ['-c', script, 'make-rootfs', profile, DATA, builddir]);
  return readFileSync(join(builddir, 'etc/pacman.conf'), 'utf8');
}

interface Layer {
  listing: string;
  names: Set<string>;
  read(path: string): string;
}

interface Image {
  digest: string;
  config: { config: { Env: string[]; Cmd: string[]; Labels: Record<string, string> }; rootfs: { diff_ids: string[] }; history: unknown[] };
  layers: Layer[];
}

function blob(layout: string, digest: string): string {
  return join(layout, 'blobs/sha256', digest.slice('sha256:'.length));
}

function readImage(layout: string): Image {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]!.digest;
  const manifest = JSON.parse(readFileSync(blob(layout, digest), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const config = JSON.parse(readFileSync(blob(layout, manifest.config.digest), 'utf8')) as Image['config'];
  const layers = manifest.layers.map((l) => {
    const file = blob(layout, l.digest);
    const listing = execFileSync('tar', ['--numeric-owner', '-tvzf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    const names = new Set(execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).split('\n').filter(Boolean).map((n) => n.replace(/\/$/, '')));
    return { listing, names, read: (path: string) => execFileSync('tar', ['-xzOf', file, path], { encoding: 'utf8' }) };
  });
  return { digest, config, layers };
}

/** A profile's spec with the corpus as its archive: the packages are unsigned stand-ins, so no keyring. */
function profileSpec(work: string, profile: string, change: (spec: Record<string, unknown>) => void = () => {}): string {
  const spec = parse(readFileSync(join(EXAMPLES, `${profile}.yaml`), 'utf8')) as Record<string, unknown> & { archive: { url: string } };
  spec.archive.url = pathToFileURL(join(work, 'archive')).href;
  spec.sigLevel = 'Never';
  delete spec.keyring;
  change(spec);
  const path = join(work, `${profile}-${createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 8)}.yaml`);
  writeFileSync(path, stringify(spec));
  return path;
}

async function build(work: string, spec: string, out: string, env: Record<string, string | undefined> = {}): Promise<{ image: Image; stderr: string }> {
  const r = await runCli(['build', spec, '--cache', join(work, 'cache'), '-o', `oci:${join(work, out)}:t`], { cwd: work, env: { SOURCE_DATE_EPOCH: undefined, ...env } });
  assert.equal(r.code, 0, r.stderr);
  return { image: readImage(join(work, out)), stderr: r.stderr };
}

const work = await tempDirFor(after, 'archlinux-docker');
before(async () => {
  await generateExampleArchive(join(EXAMPLES, 'packages.yaml'), join(work, 'archive'), 'x86_64', SNAPSHOT);
});

test('the shipped upstream files are the recorded bytes; pacman.conf is what make-rootfs.sh writes', () => {
  for (const [file, sha] of Object.entries(DATA_SHA256)) assert.equal(createHash('sha256').update(readFileSync(join(DATA, file))).digest('hex'), sha, file);
  assert.match(readFileSync(join(DATA, 'PROVENANCE.md'), 'utf8'), new RegExp(ARCHLINUX_DOCKER_COMMIT));
  // The pacman 7.0 form of devtools' config takes sed's other branch.
  assert.equal(disableSandbox('a\n#DisableSandbox\nb\n'), 'a\n# No kernel landlock in containerd\nDisableSandbox\nb\n');
  assert.deepEqual(archlinuxDockerNoExtract().slice(-3), ['usr/share/vim/vim*/lang/*', 'etc/pacman.conf', 'etc/pacman.d/mirrorlist']);
});

test('lookupInTree follows links as a chroot does, and gives up on loops', () => {
  const node = (path: string, type: TreeNode['type'], linkTarget?: string): [string, TreeNode] => [path, { path, type, mode: type === 'file' ? 0o755 : 0o777, uid: 0, gid: 0, mtime: 0, size: 0, owner: 'x', ...(linkTarget ? { linkTarget } : {}) }];
  const nodes = new Map([node('bin', 'symlink', 'usr/bin'), node('usr', 'dir'), node('usr/bin', 'dir'), node('usr/bin/ldconfig', 'file'), node('etc', 'dir'), node('etc/os-release', 'symlink', '/usr/lib/os-release'), node('loop', 'symlink', 'loop')]);
  assert.equal(lookupInTree(nodes, '/bin/ldconfig')?.path, 'usr/bin/ldconfig');
  assert.equal(lookupInTree(nodes, 'etc/../bin/ldconfig')?.path, 'usr/bin/ldconfig');
  assert.equal(lookupInTree(nodes, 'etc/os-release'), undefined, 'dangling');
  assert.equal(lookupInTree(nodes, 'loop/x'), undefined);
});

for (const profile of PROFILES) {
  test(`the ${profile} profile builds from the bundled corpus, twice alike, doing each step of the preset`, { timeout: 120_000 }, async () => {
    const spec = profileSpec(work, profile);
    const a = await build(work, spec, `${profile}-a`);
    // Another clock, time zone and umask for the second build: none of them reaches the image.
    const umask = process.umask(0o077);
    const b = await build(work, spec, `${profile}-b`, { ...fakeClockEnv('2031-07-04 12:00:00'), TZ: 'Asia/Tokyo' }).finally(() => process.umask(umask));
    assert.equal(b.image.digest, a.image.digest);
    const { config, layers } = a.image;
    assert.deepEqual(b.image.config.rootfs.diff_ids, config.rootfs.diff_ids);

    // Two layers: the rootfs, then the Dockerfile's RUN step (the os-release edit; no ldconfig in this corpus).
    assert.equal(layers.length, 2);
    assert.equal(config.history.length, 2);
    const [rootfs, run] = layers as [Layer, Layer];
    assert.deepEqual([...run.names].sort(), ['etc', 'etc/os-release']);
    assert.match(run.listing, /^-rw-r--r-- 0\/0 +\d+ 2026-03-31 00:00 etc\/os-release$/m, 'a regular file, with the mode of the file sed read');
    assert.match(run.read('etc/os-release'), /\nBUILD_ID=rolling\nVERSION_ID=20260331\.0\nANSI_COLOR=/);
    assert.match(rootfs.listing, /^lrwxrwxrwx 0\/0 .* etc\/os-release -> \/usr\/lib\/os-release$/m, 'ln -fs /usr/lib/os-release');
    // The corpus has a trust store and sysusers.d files but not the tools: said. No shared libraries: ldconfig skipped quietly.
    assert.match(a.stderr, /\narchlinux-docker: skipped update-ca-trust: the tree has a trust store to extract but no update-ca-trust \(the packages do not provide it\)\n/);
    assert.match(a.stderr, /\narchlinux-docker: skipped \/usr\/bin\/systemd-sysusers --root \/: the tree has sysusers\.d files but no \/usr\/bin\/systemd-sysusers/);
    assert.doesNotMatch(a.stderr, /skipped ldconfig/);

    // pacman.conf: devtools' config for the profile, the NoExtract block and the sandbox edit, as bash and sed make it.
    const pacmanConf = rootfs.read('etc/pacman.conf');
    assert.equal(pacmanConf, upstreamPacmanConf(work, profile));
    assert.equal(pacmanConf.includes('[multilib]'), profile === 'multilib-devel');
    assert.match(pacmanConf, /\n# No kernel landlock in containerd\nDisableSandboxFilesystem\n#DisableSandboxSyscalls\n/);
    // The overlay, over what the packages ship (their pacman.conf and mirrorlist are NoExtract'd).
    assert.equal(rootfs.read('etc/locale.conf'), 'LANG=C.UTF-8\n');
    assert.equal(rootfs.read('etc/pacman.d/mirrorlist'), readFileSync(join(DATA, 'rootfs/etc/pacman.d/mirrorlist'), 'utf8'));
    // NoExtract: documentation and most locales out, the `!` patterns back in.
    for (const gone of ['usr/share/man/man8/pacman.8.gz', 'usr/share/doc/bash/README', 'usr/share/info/libc.info.gz', 'usr/share/locale/de/LC_MESSAGES/libc.mo', 'usr/share/i18n/locales/de_DE', 'usr/share/i18n/charmaps/ISO-8859-2.gz']) assert.ok(!rootfs.names.has(gone), gone);
    for (const kept of ['usr/share/locale/locale.alias', 'usr/share/locale/en_GB/LC_MESSAGES/libc.mo', 'usr/share/i18n/locales/en_US', 'usr/share/i18n/locales/C', 'usr/share/i18n/charmaps/UTF-8.gz', 'usr/share/i18n/charmaps/ANSI_X3.4-1968.gz']) assert.ok(rootfs.names.has(kept), kept);
    // The exclude list: gone with their contents, or emptied.
    for (const gone of ['dev', 'proc', 'sys', 'etc/resolv.conf', 'etc/machine-id', 'root/.bash_profile']) assert.ok(!rootfs.names.has(gone), gone);
    for (const emptied of ['root', 'tmp', 'var/tmp', 'var/cache/pacman/pkg', 'var/lib/pacman/sync', 'etc/pacman.d/gnupg']) {
      assert.ok(rootfs.names.has(emptied), emptied);
      assert.ok(![...rootfs.names].some((n) => n.startsWith(`${emptied}/`)), `${emptied} is empty`);
    }
    assert.match(rootfs.listing, /^drwxr-xr-x 0\/0 .* etc\/pacman\.d\/gnupg\/$/m, 'pacman-key --init makes it 0755; no keyring in it');
    assert.equal(rootfs.read('etc/shadow'), 'root:!:14871::::::\n', 'root password locked');
    // What the group brings.
    assert.equal(rootfs.names.has('usr/bin/make'), profile === 'base-devel');
    assert.equal(rootfs.names.has('usr/bin/gcc') && rootfs.names.has('usr/lib32/libc.so.6.stand-in'), profile === 'multilib-devel');

    // The Dockerfile's config: PATH as BuildKit and Buildah set it, its ENV and CMD, and its labels filled from the spec and SOURCE_DATE_EPOCH.
    assert.deepEqual(config.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8']);
    assert.deepEqual(config.config.Cmd, ['/usr/bin/bash']);
    const labels = Object.fromEntries(Object.entries(config.config.Labels).filter(([k]) => k.startsWith('org.opencontainers.image.')));
    assert.deepEqual(labels, {
      'org.opencontainers.image.title': `Arch Linux ${profile} Image`,
      'org.opencontainers.image.description': 'Official containerd image of Arch Linux, a simple, lightweight Linux distribution aimed for flexibility.',
      'org.opencontainers.image.authors': 'Santiago Torres-Arias <santiago@archlinux.org> (@SantiagoTorres), Christian Rebischke <Chris.Rebischke@archlinux.org> (@shibumi), Justin Kromlinger <hashworks@archlinux.org> (@hashworks)',
      'org.opencontainers.image.url': 'https://gitlab.archlinux.org/archlinux/archlinux-docker/-/blob/master/README.md',
      'org.opencontainers.image.documentation': 'https://wiki.archlinux.org/title/Docker#Arch_Linux',
      'org.opencontainers.image.source': 'https://gitlab.archlinux.org/archlinux/archlinux-docker',
      'org.opencontainers.image.licenses': 'GPL-3.0-or-later',
      'org.opencontainers.image.version': '20260331.0',
      'org.opencontainers.image.revision': ARCHLINUX_DOCKER_COMMIT,
      'org.opencontainers.image.created': '2026-03-31T00:00:00Z',
    });
  });
}

test('one layer: the same files, the RUN step folded in; the spec\'s own config goes over the preset\'s', { timeout: 120_000 }, async () => {
  const spec = profileSpec(work, 'base', (s) => {
    const image = s.image as { setup: { archlinuxDocker: Record<string, unknown> }; config?: unknown };
    image.setup.archlinuxDocker = { profile: 'base', layers: 1, version: '20260331.0.508794', revision: 'abc123' };
    image.config = { Cmd: ['/bin/sh'], Labels: { 'org.opencontainers.image.title': 'mine' } };
  });
  const { image } = await build(work, spec, 'base-one');
  assert.equal(image.layers.length, 1);
  const [layer] = image.layers as [Layer];
  assert.match(layer.listing, /^-rw-r--r-- 0\/0 .* etc\/os-release$/m);
  assert.match(layer.read('etc/os-release'), /\nBUILD_ID=rolling\nVERSION_ID=20260331\.0\.508794\n/);
  assert.equal(layer.read('etc/locale.conf'), 'LANG=C.UTF-8\n');
  assert.deepEqual(image.config.config.Cmd, ['/bin/sh']);
  assert.equal(image.config.config.Env[1], 'LANG=C.UTF-8');
  assert.equal(image.config.config.Labels['org.opencontainers.image.title'], 'mine');
  assert.equal(image.config.config.Labels['org.opencontainers.image.version'], '20260331.0.508794');
  assert.equal(image.config.config.Labels['org.opencontainers.image.revision'], 'abc123');
});

test('a tree without filesystem: the steps with nothing to act on are skipped and said; an explicit lockRootPassword is the error', { timeout: 120_000 }, async () => {
  const spec = profileSpec(work, 'base', (s) => { s.packages = ['ca-certificates']; });
  const { image, stderr } = await build(work, spec, 'no-filesystem');
  assert.match(stderr, /archlinux-docker: skipped the root password lock: the tree has no etc\/shadow/);
  assert.match(stderr, /archlinux-docker: skipped the os-release edit: etc\/os-release leads to no file/);
  const [rootfs, run] = image.layers as [Layer, Layer];
  assert.match(rootfs.listing, /etc\/os-release -> \/usr\/lib\/os-release$/m, 'the link is made as ln -fs makes it, dangling');
  assert.ok(rootfs.names.has('usr/share/ca-certificates/trust-source/mozilla.trust.p11-kit'));
  assert.deepEqual([...run.names], [], 'the RUN step changed nothing');

  const explicit = profileSpec(work, 'base', (s) => {
    s.packages = ['ca-certificates'];
    (s.image as { setup: Record<string, unknown> }).setup.lockRootPassword = true;
  });
  const r = await runCli(['build', explicit, '--cache', join(work, 'cache'), '-o', `oci:${join(work, 'never')}`], { cwd: work });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\nrepro-oci: setup lockRootPassword: the tree has no etc\/shadow\n$/);
  const refused = await runCli(['build', spec, '--no-commands', '--cache', join(work, 'cache'), '-o', `oci:${join(work, 'never')}`], { cwd: work });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--no-commands: the spec runs the archlinux-docker preset's update-ca-trust, systemd-sysusers and ldconfig \(where the tree has them\) in the sandbox\n$/);
});

/**
 * A package of the test's own with the tools the corpus has no binaries for: a static busybox for /bin/sh, scripts
 * standing in for update-ca-trust and systemd-sysusers that leave a trace of how they were run, this machine's
 * static ldconfig and a real shared library for it to find.
 */
async function toolsRepo(dir: string): Promise<string> {
  const script = (body: string) => `#!/bin/sh\n${body}\n`;
  const pkg = await buildPackage({
    pkgname: 'test-tools', pkgver: '1', pkgrel: 1, arch: 'x86_64', sourceDateEpoch: 1774828800, pkginfoComments: ['test'], buildinfo: { buildtoolver: '0' },
    entries: [
      { path: 'usr/bin/busybox', type: 'file', content: readFileSync('/bin/busybox'), mode: 0o755 },
      ...['sh', 'cat', 'mkdir'].map((a) => ({ path: `usr/bin/${a}`, type: 'symlink' as const, linkTarget: 'busybox' })),
      { path: 'usr/bin/update-ca-trust', type: 'file', mode: 0o755, content: script('mkdir -p /etc/ca-certificates/extracted && cat /usr/share/ca-certificates/trust-source/* > /etc/ca-certificates/extracted/tls-ca-bundle.pem') },
      { path: 'usr/bin/systemd-sysusers', type: 'file', mode: 0o755, content: script('echo "$0 $*" > /etc/sysusers-ran; echo "bin:x:1:1::/:/usr/bin/nologin" >> /etc/passwd') },
      { path: 'usr/bin/ldconfig', type: 'file', content: readFileSync('/usr/sbin/ldconfig'), mode: 0o755 },
      { path: 'usr/lib/libc.so.6', type: 'file', content: readFileSync('/usr/lib/x86_64-linux-gnu/libc.so.6'), mode: 0o755 },
    ],
  });
  const out = join(dir, 'tools');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, pkg.filename), pkg.bytes);
  await writeRepo(out, 'tools', [repoPackageFromBuilt(pkg)], { symlinks: false });
  return out;
}

test('with the tools in the tree: update-ca-trust, systemd-sysusers --root / and ldconfig run; ldconfig\'s cache lands in the RUN layer', { skip: COMMANDS_SKIP, timeout: 300_000 }, async () => {
  const tools = await toolsRepo(work);
  const spec = profileSpec(work, 'base', (s) => {
    s.repositories = [...(s.repositories as string[]), { name: 'tools', servers: [pathToFileURL(tools).href] }];
    s.packages = ['base', 'test-tools'];
  });
  const a = await build(work, spec, 'tools-a');
  const b = await build(work, spec, 'tools-b');
  assert.equal(b.image.digest, a.image.digest);
  const [rootfs, run] = a.image.layers as [Layer, Layer];
  assert.equal(rootfs.read('etc/ca-certificates/extracted/tls-ca-bundle.pem'), '# stand-in trust source\n');
  assert.equal(rootfs.read('etc/sysusers-ran'), '/usr/bin/systemd-sysusers --root /\n');
  assert.match(rootfs.read('etc/passwd'), /\nbin:x:1:1::\/:\/usr\/bin\/nologin\n$/);
  assert.equal(rootfs.read('etc/shadow'), 'root:!:14871::::::\n');
  assert.ok(!rootfs.names.has('etc/ld.so.cache'), 'ldconfig runs in the Dockerfile step, not before');
  assert.ok(run.names.has('etc/ld.so.cache') && run.names.has('etc/os-release'));
  assert.match(run.read('etc/ld.so.cache'), /libc\.so\.6/);
  for (const layer of [rootfs, run]) assert.ok(!layer.names.has('var/cache/ldconfig/aux-cache'), 'aux-cache records inodes and times: excluded');
});

test('hostile input: a bad version is refused by the schema; a huge or looping os-release is a clear outcome; a removed path becomes a whiteout', async () => {
  const spec = profileSpec(work, 'base', (s) => { (s.image as { setup: { archlinuxDocker: Record<string, unknown> } }).setup.archlinuxDocker.version = '1\nVERSION_ID=evil'; });
  const r = await runCli(['build', spec, '--cache', join(work, 'cache'), '-o', `oci:${join(work, 'never')}`], { cwd: work });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^repro-oci: spec .*archlinuxDocker\/version.*\n$/m);
  assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('repro-oci:')).length, 1);

  const file = (path: string, content: Buffer, size = content.length): [string, TreeNode] => [path, { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size, owner: 'x', open: async () => Readable.from([content]) }];
  const link = (path: string, linkTarget: string): [string, TreeNode] => [path, { path, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0, owner: 'x', linkTarget }];
  const dir = (path: string): [string, TreeNode] => [path, { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, owner: 'x' }];
  const huge = new Map([dir('etc'), link('etc/os-release', '/usr/lib/os-release'), dir('usr'), dir('usr/lib'), file('usr/lib/os-release', Buffer.alloc(0), 2 ** 40)]);
  await assert.rejects(editOsRelease(huge, '1', 0, () => {}), /^UserError: setup archlinux-docker: etc\/os-release leads to usr\/lib\/os-release, 1099511627776 bytes, more than the 1048576 the os-release edit reads$/);
  const notes: string[] = [];
  const looping = new Map([dir('etc'), link('etc/os-release', 'os-release')]);
  assert.equal(await editOsRelease(looping, '1', 0, (m) => notes.push(m)), false);
  assert.match(notes[0]!, /skipped the os-release edit/);
  // No BUILD_ID and no final newline: sed appends nothing and keeps the bytes as they are.
  const plain = new Map([dir('etc'), file('etc/os-release', Buffer.from('ID=x'))]);
  assert.equal(await editOsRelease(plain, '1', 0, () => {}), true);
  assert.equal((await readNodeContent(plain.get('etc/os-release')!)).toString(), 'ID=x');
  const last = new Map([dir('etc'), file('etc/os-release', Buffer.from('ID=x\nBUILD_ID=rolling'))]);
  await editOsRelease(last, '2', 0, () => {});
  assert.equal((await readNodeContent(last.get('etc/os-release')!)).toString(), 'ID=x\nBUILD_ID=rolling\nVERSION_ID=2\n', 'as GNU sed: the appended line ends with a newline');

  const lower = new Map([dir('var'), file('var/gone', Buffer.from('x'))]);
  const upper = dockerfileLayerEntries(lower, new Map([dir('var')]), { changed: ['var'], removed: ['var/gone'] }, 5);
  assert.deepEqual([...upper.keys()].sort(), ['var', 'var/.wh.gone']);
  assert.equal(upper.get('var/.wh.gone')!.size, 0);
});
