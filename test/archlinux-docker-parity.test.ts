import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, realpathSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import type { Difference } from '../src/compare/difference.js';
import { COMMANDS_SKIP } from './support/busybox.js';
import { REPO_ROOT, runCli, tempDirFor } from './support/cli.js';
import { foreignImageUnavailable, imageOfRootfs, runMakeRootfs } from './support/foreign-image.js';
import { buildWithMakepkg, makeRepoWithRepoAdd, type MakepkgSpec } from './support/makepkg.js';

/**
 * Issue 14 item 2: repro-oci's `base` profile (examples/archlinux-docker/base.yaml: `presets: [archlinux-docker]`,
 * two layers) against archlinux-docker's own pipeline run here (support/foreign-image.ts: make-rootfs.sh's lines
 * with real pacman, chroot, sed, touch, GNU tar and zstd, then the Dockerfile's COPY and RUN layers by umoci), both
 * from the same makepkg-built archive snapshot, compared file by file by `repro-oci diff`. Every difference must be
 * one docs/archlinux-docker.md lists ("What differs from archlinux-docker's output, and why"); the test names each
 * with that reason, and anything else fails it.
 *
 * The tools the steps run are the corpus' own: a static busybox for sh and sed, small scripts standing in for
 * update-ca-trust, pacman-key and systemd-sysusers (which reads the sysusers.d files), and this machine's static
 * ldconfig (Debian's, /usr/sbin/ldconfig) with a real shared library (libz) in usr/lib, whose SONAME link it makes.
 * The filesystem stand-in has no etc/os-release link of its own (as the bundled stand-in corpus): make-rootfs.sh
 * makes that link before pacman runs, and Debian's pacman 6.0 calls a package's link over it a file conflict.
 */

const SKIP = COMMANDS_SKIP || foreignImageUnavailable() || (!existsSync('/usr/lib/x86_64-linux-gnu/libz.so.1') && 'needs zlib1g');
const DATA = join(REPO_ROOT, 'data/archlinux-docker');
/** The base profile's archive date and SOURCE_DATE_EPOCH (2026-03-31 00:00 UTC); the packages were built earlier. */
const DATE = '2026/03/30';
const SDE = 1774915200;
const PACKAGE_SDE = 1774828800;
const VERSION = '20260331.0';

const script = (body: string): string => `#!/usr/bin/sh\n${body}\n`;

/** systemd-sysusers' `u NAME ID "GECOS" HOME` lines, as it applies them (the stand-in knows no other kind). */
const SYSUSERS = script(String.raw`for f in /usr/lib/sysusers.d/*.conf; do
  while read -r type name id gecos home; do
    [ "$type" = u ] || continue
    grep -q "^$name:" /etc/passwd && continue
    echo "$name:x:$id:$id::$home:/usr/bin/nologin" >> /etc/passwd
    echo "$name:x:$id:" >> /etc/group
    echo "$name:!*:::::::" >> /etc/shadow
    echo "$name:!*::" >> /etc/gshadow
  done < "$f"
done`);

/** This machine's zlib, the file its SONAME link leads to (libz.so.1.2.13 on bookworm): ldconfig makes that link. */
const LIBZ_LINK = '/usr/lib/x86_64-linux-gnu/libz.so.1';
const LIBZ = existsSync(LIBZ_LINK) ? realpathSync(LIBZ_LINK) : LIBZ_LINK;

type Spec = Omit<MakepkgSpec, 'workDir'> & { repo: 'core' | 'extra' };

const CORPUS: Spec[] = [
  {
    repo: 'core', pkgname: 'filesystem', pkgver: '2025.10.12', pkgrel: 1,
    backup: ['etc/passwd', 'etc/group', 'etc/shadow', 'etc/gshadow', 'etc/resolv.conf'],
    files: [
      { path: 'bin', type: 'symlink', target: 'usr/bin' },
      { path: 'sbin', type: 'symlink', target: 'usr/bin' },
      { path: 'lib', type: 'symlink', target: 'usr/lib' },
      { path: 'dev', type: 'dir' },
      { path: 'proc', type: 'dir', mode: 0o555 },
      { path: 'sys', type: 'dir', mode: 0o555 },
      { path: 'tmp', type: 'dir', mode: 0o1777 },
      { path: 'root/.bash_profile', content: '# root\n' },
      { path: 'var/tmp', type: 'dir', mode: 0o1777 },
      { path: 'var/log', type: 'dir' },
      { path: 'etc/passwd', content: 'root:x:0:0::/root:/usr/bin/sh\n' },
      { path: 'etc/group', content: 'root:x:0:root\n' },
      { path: 'etc/shadow', content: 'root::14871::::::\n', mode: 0o600 },
      { path: 'etc/gshadow', content: 'root:::root\n', mode: 0o600 },
      { path: 'etc/resolv.conf', content: '# the runtime writes this\n' },
      { path: 'usr/lib/os-release', content: 'NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\nANSI_COLOR="38;2;23;147;209"\n' },
      { path: 'usr/share/man/man7/archlinux.7', content: '.TH ARCHLINUX 7\n' },
      { path: 'root', type: 'dir', mode: 0o750 },
    ],
  },
  {
    repo: 'core', pkgname: 'busybox', pkgver: '1.36.1', pkgrel: 1, arch: 'x86_64',
    files: ['install -Dm755 /bin/busybox "$pkgdir"/usr/bin/busybox', ...['sh', 'cat', 'grep', 'mkdir', 'sed', 'rm', 'head'].map((a) => `ln -s busybox "$pkgdir"/usr/bin/${a}`)].map((l) => `  ${l}`).join('\n'),
  },
  {
    repo: 'core', pkgname: 'glibc', pkgver: '2.43', pkgrel: 1, arch: 'x86_64', depends: ['filesystem', 'busybox'], backup: ['etc/ld.so.conf'],
    files: [
      `  install -Dm755 /usr/sbin/ldconfig "$pkgdir"/usr/bin/ldconfig`,
      `  install -Dm755 ${LIBZ} "$pkgdir"/usr/lib/${basename(LIBZ)}`,
      `  printf 'include /etc/ld.so.conf.d/*.conf\\n' | install -Dm644 /dev/stdin "$pkgdir"/etc/ld.so.conf`,
      ...['usr/share/locale/de/LC_MESSAGES/libc.mo', 'usr/share/locale/en_GB/LC_MESSAGES/libc.mo', 'usr/share/locale/locale.alias', 'usr/share/i18n/charmaps/UTF-8.gz', 'usr/share/i18n/charmaps/ISO-8859-2.gz', 'usr/share/info/libc.info.gz'].map((p) => `  echo ${basename(p)} | install -Dm644 /dev/stdin "$pkgdir"/${p}`),
    ].join('\n'),
  },
  {
    repo: 'core', pkgname: 'ca-certificates', pkgver: '20240618', pkgrel: 1, depends: ['busybox'],
    files: [
      { path: 'usr/share/ca-certificates/trust-source/mozilla.trust.p11-kit', content: '# a trust source\n' },
      { path: 'usr/bin/update-ca-trust', content: script('mkdir -p /etc/ca-certificates/extracted && cat /usr/share/ca-certificates/trust-source/* > /etc/ca-certificates/extracted/tls-ca-bundle.pem'), mode: 0o755 },
    ],
  },
  {
    repo: 'core', pkgname: 'systemd', pkgver: '259.5', pkgrel: 1, arch: 'x86_64', depends: ['glibc'],
    files: [
      { path: 'etc/machine-id', content: 'uninitialized\n', mode: 0o444 },
      { path: 'usr/lib/sysusers.d/basic.conf', content: 'u bin 1 "n/a" /\nu nobody 65534 "Kernel Overflow User" /\n' },
      { path: 'usr/bin/systemd-sysusers', content: SYSUSERS, mode: 0o755 },
    ],
  },
  {
    repo: 'core', pkgname: 'pacman-mirrorlist', pkgver: '20260213', pkgrel: 1, backup: ['etc/pacman.d/mirrorlist'],
    files: [{ path: 'etc/pacman.d/mirrorlist', content: '#Server = https://mirror.example.invalid/$repo/os/$arch\n' }],
  },
  {
    repo: 'core', pkgname: 'pacman', pkgver: '7.1.0', pkgrel: 1, arch: 'x86_64', depends: ['glibc', 'pacman-mirrorlist'], backup: ['etc/pacman.conf'],
    files: [
      { path: 'etc/pacman.conf', content: '# the package\'s own\n[options]\n' },
      // pacman-key --init makes a new random master key; --populate signs with it: never the same twice.
      { path: 'usr/bin/pacman-key', content: script('mkdir -p -m 755 /etc/pacman.d/gnupg && head -c 32 /dev/urandom >> /etc/pacman.d/gnupg/pubring.kbx 2>/dev/null || echo "$$" >> /etc/pacman.d/gnupg/pubring.kbx'), mode: 0o755 },
      { path: 'usr/share/man/man8/pacman.8', content: '.TH PACMAN 8\n' },
      { path: 'var/cache/pacman/pkg', type: 'dir' },
      { path: 'var/lib/pacman', type: 'dir' },
    ],
  },
  {
    repo: 'extra', pkgname: 'less', pkgver: '668', pkgrel: 1, arch: 'x86_64', depends: ['glibc'],
    files: [
      { path: 'usr/bin/less', content: script('cat "$@"'), mode: 0o755 },
      { path: 'usr/share/doc/less/README', content: 'read me\n' },
    ],
  },
  {
    repo: 'core', pkgname: 'base', pkgver: '3', pkgrel: 3,
    depends: ['filesystem', 'busybox', 'glibc', 'ca-certificates', 'systemd', 'pacman', 'less'],
    files: '  true', // a meta-package: makepkg needs a body
  },
];

/** The corpus as the Arch Linux Archive lays out a day: `repos/YYYY/MM/DD/<repo>/os/x86_64/`, databases by repo-add. */
async function buildArchive(work: string): Promise<string> {
  const archive = join(work, 'archive');
  const built = new Map<string, string[]>();
  for (const { repo, ...spec } of CORPUS) {
    const path = (await buildWithMakepkg({ ...spec, workDir: join(work, 'build', spec.pkgname) }, PACKAGE_SDE))!;
    const dir = join(archive, 'repos', DATE, repo, 'os', 'x86_64');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, basename(path));
    writeFileSync(file, readFileSync(path));
    built.set(repo, [...(built.get(repo) ?? []), basename(file)]);
  }
  for (const [repo, files] of built) await makeRepoWithRepoAdd(join(archive, 'repos', DATE, repo, 'os', 'x86_64'), repo, files);
  return archive;
}

/** examples/archlinux-docker/base.yaml with the corpus as its archive: unsigned packages, so no keyring. */
function baseSpec(work: string, archive: string): string {
  const spec = parse(readFileSync(join(REPO_ROOT, 'examples/archlinux-docker/base.yaml'), 'utf8')) as Record<string, unknown> & { archive: { url: string } };
  spec.archive.url = pathToFileURL(archive).href;
  spec.sigLevel = 'Never';
  delete spec.keyring;
  const path = join(work, 'base.yaml');
  writeFileSync(path, stringify(spec));
  return path;
}

interface DiffJson {
  summary: { same: boolean };
  differences: Difference[];
}

const work = await tempDirFor(after, 'archlinux-docker-parity');

test('the base profile equals archlinux-docker\'s own pipeline run here, file by file, but for the documented differences', { skip: SKIP, timeout: 600_000 }, async () => {
  chmodSync(work, 0o755); // makepkg runs as the builder user
  const archive = await buildArchive(work);

  const rootfs = await runMakeRootfs(join(work, 'upstream'), DATA, pathToFileURL(join(archive, 'repos', DATE)).href, SDE);
  const official = await imageOfRootfs(rootfs, join(work, 'upstream-image'), VERSION, SDE);

  const built = await runCli(['build', baseSpec(work, archive), '--cache', join(work, 'cache'), '-o', `oci:${join(work, 'ours')}:base`], { cwd: work, env: { SOURCE_DATE_EPOCH: undefined } });
  assert.equal(built.code, 0, built.stderr);
  const ours = `oci:${join(work, 'ours')}:base`;

  const reportDir = join(work, 'report');
  const r = await runCli(['diff', '--json', '--report-dir', reportDir, official, ours]);
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout) as DiffJson;
  const unexplained: Difference[] = [];
  const seen = new Map<string, number>();
  for (const d of report.differences.filter((x) => x.level === 'entry' || x.level === 'package')) {
    const reason = documentedReason(d, reportDir);
    if (reason === undefined) unexplained.push(d);
    else seen.set(reason, (seen.get(reason) ?? 0) + 1);
  }
  assert.deepEqual(unexplained, [], 'every difference is one docs/archlinux-docker.md lists');
  // Each documented difference this corpus can show did show: the comparison saw what it explains away.
  assert.deepEqual([...seen.keys()].sort(), Object.values(REASONS).sort());

  // And what both must have done, read from the merged view: the diff found no difference at these paths.
  const paths = new Set(report.differences.map((d) => d.path));
  for (const same of ['/etc/pacman.conf', '/etc/pacman.d/mirrorlist', '/etc/locale.conf', '/etc/os-release', '/etc/shadow', '/etc/passwd', '/etc/ca-certificates/extracted/tls-ca-bundle.pem', '/etc/pacman.d/gnupg']) {
    assert.ok(!paths.has(same), same);
    assert.ok(lstatSync(join(work, 'upstream/build', same), { throwIfNoEntry: false }), `${same} is in upstream's root`);
  }
  assert.match(readFileSync(join(work, 'upstream/build/etc/shadow'), 'utf8'), /^root:!:14871:/);
  assert.match(readFileSync(join(work, 'upstream/build/etc/passwd'), 'utf8'), /\nnobody:x:65534:/, 'systemd-sysusers ran');
});

/** docs/archlinux-docker.md, "What differs from archlinux-docker's output, and why": the items this test meets. */
const REASONS = {
  times: 'Times: repro-oci keeps the packages\' mtimes (clamped at SOURCE_DATE_EPOCH); the repro variant touches every file to it',
  installdate: 'Times: %INSTALLDATE% is SOURCE_DATE_EPOCH, pacman writes the clock',
  recipe: 'History: the rootfs layer carries the recipe and SBOMs (usr/share/repro-oci/)',
  ldconfig: 'ldconfig runs once, in the RUN step: upstream\'s pacman also runs it after the transaction, into the rootfs layer',
  auxCache: 'var/cache/ldconfig/aux-cache: removed (never written, so no whiteout for it in the RUN layer)',
  runLayerDirs: 'The RUN layer: the parents of what the step changed, which Docker\'s snapshotter lists by mtime',
} as const;

/** What ldconfig writes: its cache, the SONAME links it makes, its cache directory. */
const LDCONFIG_PATHS = /^\/(etc\/ld\.so\.cache|usr\/lib\/libz\.so\.1|var\/cache\/ldconfig(\/aux-cache)?)$/;

function side(d: Difference, which: 'before' | 'after'): Record<string, unknown> | undefined {
  return d[which] as Record<string, unknown> | undefined;
}

/** The documented reason for one difference (a: the official image, b: repro-oci's), or undefined. */
function documentedReason(d: Difference, reportDir: string): string | undefined {
  const a = side(d, 'before');
  const b = side(d, 'after');
  if (d.level !== 'entry') return undefined;
  if (d.path === '/usr/share/repro-oci' || d.path.startsWith('/usr/share/repro-oci/')) return d.kind === 'added' && d.layer !== 1 ? REASONS.recipe : undefined;
  if (d.kind === 'changed') {
    const fields = Object.keys(a!);
    if (fields.length === 1 && fields[0] === 'mtime') return a!.mtime === SDE && (b!.mtime as number) <= SDE ? REASONS.times : undefined;
    const desc = /^\/var\/lib\/pacman\/local\/[^/]+\/desc$/.test(d.path);
    if (desc && fields.every((f) => f === 'sha256' || f === 'size' || f === 'mtime')) {
      const withoutDate = (which: string): string => readFileSync(join(reportDir, which, d.path), 'utf8').replace(/^%INSTALLDATE%\n\d+\n\n/m, '');
      const date = /^%INSTALLDATE%\n(\d+)$/m.exec(readFileSync(join(reportDir, 'b', d.path), 'utf8'))?.[1];
      return withoutDate('a') === withoutDate('b') && date === String(SDE) ? REASONS.installdate : undefined;
    }
    return undefined;
  }
  // Layer by layer: what ldconfig made sits in upstream's rootfs layer and in repro-oci's RUN layer.
  if (LDCONFIG_PATHS.test(d.path) && d.layer !== 'merged') return (d.layer === 0 && d.kind === 'removed') || (d.layer === 1 && d.kind === 'added') ? REASONS.ldconfig : undefined;
  if (d.path === '/var/cache/ldconfig/.wh.aux-cache' && d.layer === 1 && d.kind === 'removed') return REASONS.auxCache;
  if (d.layer === 1 && (a ?? b)!.type === 'dir') return REASONS.runLayerDirs;
  return undefined;
}
