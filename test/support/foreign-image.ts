import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Gpg } from './gpg.js';
import { runOk } from './cli.js';
import { buildWithMakepkg, makeRepoWithRepoAdd, makepkgUnavailable, type MakepkgSpec } from './makepkg.js';
import { pacmanUnavailable, TRANSACTION } from './pacman.js';

/**
 * Foreign images made on this machine the way Arch Linux's own image is made (archlinux-docker's make-rootfs.sh,
 * shared reference arch-image-pipeline.md), by the real tools, from a makepkg-built corpus:
 *   1. real pacman `-Sy` into an empty root, `--noscriptlet`, an empty private hook dir (the host's hooks masked),
 *      NoExtract for man pages and docs, `--logfile /dev/null` (the `repro` variant);
 *   2. the steps that run without a keyring: the overlay's etc/locale.conf, `ln -fs /usr/lib/os-release
 *      etc/os-release`, `systemd-sysusers` and root's password locked, and the Dockerfile's `RUN ldconfig` (the
 *      corpus' own sysusers and ldconfig, small scripts, through real chroot);
 *   3. GNU tar with the `repro` flags and the exclude list, `zstd --long -T0 -8`, and the tarball (decompressed, as
 *      a COPY does) added as the layer of a new image by umoci (`init`, `new`, `raw add-layer`).
 * The Arch Linux Archive is a directory (`packages/<c>/<name>/<file>` + `.sig`) for a loopback server.
 */

export const SDE = 1_700_000_000;
export const LOCAL = 'var/lib/pacman/local';

/** What the corpus' `ldconfig` writes: the library names under /usr/lib, as a cache stand-in (deterministic). */
const LDCONFIG = "#!/usr/bin/sh\nls /usr/lib | grep '\\.so' > /etc/ld.so.cache\n";

/** What the corpus' `systemd-sysusers` does: adds its one system user and group, as sysusers.d would. */
const SYSUSERS = "#!/usr/bin/sh\necho 'fi:x:900:900::/:/usr/bin/nologin' >> /etc/passwd\necho 'fi:x:900:' >> /etc/group\necho 'fi:!*:::::::' >> /etc/shadow\necho 'fi:!*::' >> /etc/gshadow\n";

export const CORPUS: Omit<MakepkgSpec, 'workDir'>[] = [
  {
    pkgname: 'fi-filesystem',
    pkgver: '2024.1',
    pkgrel: 1,
    files: [
      { path: 'bin', type: 'symlink', target: 'usr/bin' },
      { path: 'usr/lib/os-release', content: 'NAME="Foreign Linux"\nID=fi\nBUILD_ID=rolling\n' },
      { path: 'etc/os-release', type: 'symlink', target: '../usr/lib/os-release' },
      { path: 'usr/share/fi/data', content: 'kept\n' },
      { path: 'usr/local/bin', type: 'dir' },
      { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/usr/bin/sh\n' },
      { path: 'etc/group', content: 'root:x:0:root\n' },
      { path: 'etc/shadow', content: 'root::14871::::::\n', mode: 0o600 },
      { path: 'etc/gshadow', content: 'root:::root\n', mode: 0o600 },
    ],
    backup: ['etc/passwd', 'etc/group', 'etc/shadow', 'etc/gshadow'],
  },
  { pkgname: 'fi-busybox', pkgver: '1.36.1', pkgrel: 1, arch: 'x86_64', files: ['install -Dm755 /bin/busybox "$pkgdir"/usr/bin/busybox', ...['sh', 'ls', 'grep'].map((a) => `ln -s busybox "$pkgdir"/usr/bin/${a}`)].map((l) => `  ${l}`).join('\n') },
  {
    pkgname: 'fi-glibc',
    pkgver: '2.39',
    pkgrel: 2,
    arch: 'x86_64',
    depends: ['fi-filesystem', 'fi-busybox'],
    files: [
      { path: 'usr/lib/libfi.so.1', content: 'lib\n', mode: 0o755 },
      { path: 'usr/lib/libfi.so', type: 'symlink', target: 'libfi.so.1' },
      { path: 'usr/bin/ldconfig', content: LDCONFIG, mode: 0o755 },
    ],
  },
  {
    pkgname: 'fi-systemd',
    pkgver: '256.1',
    pkgrel: 1,
    arch: 'x86_64',
    depends: ['fi-filesystem', 'fi-busybox'],
    files: [{ path: 'usr/bin/systemd-sysusers', content: SYSUSERS, mode: 0o755 }],
  },
  {
    pkgname: 'fi-app',
    epoch: 1,
    pkgver: '2.0',
    pkgrel: 1,
    arch: 'x86_64',
    depends: ['fi-glibc'],
    backup: ['etc/fi-app.conf'],
    files: [
      { path: 'usr/bin/fi-app', content: '#!/usr/bin/sh\necho app\n', mode: 0o755 },
      { path: 'etc/fi-app.conf', content: 'x=1\n' },
      { path: 'usr/share/man/man1/fi-app.1', content: '.TH FI-APP 1\n' },
      { path: 'usr/share/doc/fi-app/README', content: 'read me\n' },
    ],
  },
];

/** archlinux-docker's NoExtract, cut to what the corpus has. */
export const NO_EXTRACT = ['usr/share/man/*', 'usr/share/doc/*'];

/** archlinux-docker's tar exclude list (GNU tar patterns, unanchored). */
const EXCLUDE = ['sys', 'proc', 'dev', 'etc/hostname', 'etc/machine-id', 'etc/resolv.conf', 'root/*', 'tmp/*', 'var/cache/pacman/pkg/*', 'var/lib/pacman/sync/*', 'var/tmp/*'];

export function foreignImageUnavailable(): string | undefined {
  const missing = ['/usr/bin/umoci', '/usr/bin/zstd', '/usr/sbin/chroot', '/bin/busybox'].find((t) => !existsSync(t));
  return pacmanUnavailable() ?? makepkgUnavailable() ?? (missing && `${missing} is not installed`);
}

export interface ForeignCorpus {
  work: string;
  keyring: string;
  gpg: Gpg;
  signer: string;
  /** The archive directory (served by the caller). */
  archive: string;
  /** The local repository pacman installs from. */
  repo: string;
  /** name → the repository's file name. */
  files: Map<string, string>;
  /** name → the file the archive holds (path), for the packages published. */
  published: Map<string, string>;
}

export interface ForeignCorpusOptions {
  /** Packages left out of the archive. */
  unpublished?: string[];
  /** Where the archive layout goes (default `work`/archive). */
  archive?: string;
  /** The file the archive holds for a package (default the package itself; e.g. recompressed as an older one). */
  publishAs?: (pkgname: string, file: string) => Promise<string>;
}

/**
 * Builds the corpus with makepkg, signs each package into an archive layout (but `unpublished`), and makes a
 * repository of all of them.
 */
export async function buildForeignCorpus(work: string, specs = CORPUS, options: ForeignCorpusOptions = {}): Promise<ForeignCorpus> {
  await runOk('chmod', ['0755', work]);
  const gpg = await Gpg.create();
  const signer = await gpg.genKey('Archive Packager <packager@example.invalid>', { at: SDE - 100 });
  const keyring = join(work, 'keyring');
  await gpg.writeKeyring(keyring, 'test', [signer], { trusted: [signer] });
  const repo = join(work, 'repo');
  const archive = options.archive ?? join(work, 'archive');
  mkdirSync(repo, { recursive: true });
  const files = new Map<string, string>();
  const published = new Map<string, string>();
  const built: string[] = [];
  for (const spec of specs) {
    const path = (await buildWithMakepkg({ ...spec, workDir: join(work, 'build', spec.pkgname) }, SDE))!;
    const file = join(repo, basename(path));
    cpSync(path, file);
    built.push(file);
    files.set(spec.pkgname, basename(file));
    if (options.unpublished?.includes(spec.pkgname)) continue;
    const archived = options.publishAs ? await options.publishAs(spec.pkgname, file) : file;
    await publishToArchive(archive, archived, gpg, signer);
    published.set(spec.pkgname, archived);
  }
  await makeRepoWithRepoAdd(repo, 'fitest', built);
  return { work, keyring, gpg, signer, archive, repo, files, published };
}

/** Puts a package file and its detached signature where the Arch Linux Archive keeps them. */
export async function publishToArchive(archive: string, file: string, gpg: Gpg, signer: string): Promise<void> {
  const name = basename(file).replace(/-[^-]+-[^-]+-[^-]+\.pkg\.tar\.(zst|xz)$/, '');
  const dir = join(archive, 'packages', name[0]!, name);
  mkdirSync(dir, { recursive: true });
  const bytes = readFileSync(file);
  writeFileSync(join(dir, basename(file)), bytes);
  writeFileSync(join(dir, `${basename(file)}.sig`), await gpg.detachSign(signer, bytes));
}

/** Steps 1 and 2: the root archlinux-docker's make-rootfs.sh and Dockerfile make, at `dir`/root. */
export async function makeForeignRoot(corpus: ForeignCorpus, dir: string, packages: string[] = ['fi-app', 'fi-systemd']): Promise<string> {
  const root = join(dir, 'root');
  for (const sub of ['root/var/lib/pacman', 'cache', 'hooks', 'gnupg']) mkdirSync(join(dir, sub), { recursive: true });
  const conf = ['[options]', 'Architecture = x86_64', 'SigLevel = Never', `NoExtract = ${NO_EXTRACT.join(' ')}`, '', '[fitest]', `Server = file://${corpus.repo}`, ''];
  writeFileSync(join(dir, 'pacman.conf'), conf.join('\n'));
  const args = ['--root', root, '--dbpath', join(root, 'var/lib/pacman'), '--config', join(dir, 'pacman.conf'), '--cachedir', join(dir, 'cache'), '--hookdir', join(dir, 'hooks'), '--gpgdir', join(dir, 'gnupg'), '--logfile', '/dev/null'];
  await runOk('pacman', [...args, ...TRANSACTION, '-Sy', ...packages], { env: { LC_ALL: 'C' } });
  writeFileSync(join(root, 'etc/locale.conf'), 'LANG=C.UTF-8\n');
  chmodSync(join(root, 'etc/locale.conf'), 0o644);
  rmSync(join(root, 'etc/os-release'), { force: true });
  symlinkSync('/usr/lib/os-release', join(root, 'etc/os-release'));
  await runOk('chroot', [root, '/usr/bin/systemd-sysusers'], { env: { LC_ALL: 'C' } });
  const shadow = join(root, 'etc/shadow');
  writeFileSync(shadow, readFileSync(shadow, 'latin1').replace(/^root::/m, 'root:!:'), 'latin1');
  await runOk('chroot', [root, '/usr/bin/ldconfig'], { env: { LC_ALL: 'C' } });
  return root;
}

/** Step 3: GNU tar (repro flags), zstd, then umoci; returns the image reference `oci:DIR:latest`. */
export async function imageOfRoot(root: string, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const exclude = join(dir, 'exclude');
  writeFileSync(exclude, `${EXCLUDE.join('\n')}\n`);
  const tar = join(dir, 'rootfs.tar');
  await runOk('tar', ['--sort=name', `--mtime=@${SDE}`, '--clamp-mtime', '--pax-option=delete=atime,delete=ctime', '--numeric-owner', '--xattrs', '--acls', `--exclude-from=${exclude}`, '-C', root, '-cf', tar, '.']);
  await runOk('zstd', ['--long', '-T0', '-8', '-q', '-f', tar, '-o', `${tar}.zst`]);
  rmSync(tar);
  // The image's build step decompresses the tarball and adds it as a layer (umoci compresses it with gzip).
  await runOk('zstd', ['-d', '-q', '-f', `${tar}.zst`, '-o', tar]);
  const layout = join(dir, 'layout');
  await runOk('umoci', ['init', '--layout', layout]);
  await runOk('umoci', ['new', '--image', `${layout}:latest`]);
  await runOk('umoci', ['raw', 'add-layer', '--image', `${layout}:latest`, '--history.created', new Date(SDE * 1000).toISOString(), '--history.created_by', 'COPY rootfs /', tar]);
  rmSync(tar);
  return `oci:${layout}:latest`;
}

/**
 * archlinux-docker's scripts/make-rootfs.sh as its `repro` GROUP runs it (the `base` package set; the variant whose
 * output does not vary between runs), its lines in order, from the project's copies of its files
 * (data/archlinux-docker/: devtools' extra.conf, the NoExtract block, the overlay, the exclude file), run by bash
 * with real pacman, chroot, GNU sed, touch and tar, and zstd. Changed only where this machine needs it: no
 * fakechroot/fakeroot (the tests run as root); the install-time pacman.conf (the script's `./pacman.conf`, never in
 * the image) has `SigLevel = Never` (the corpus is unsigned) and no `DownloadUser` (Debian's pacman 6.0); no
 * `--disable-sandbox-filesystem` (pacman 6.0 has no sandbox); a private `--cachedir` and `--gpgdir`; the archive
 * `server` is the corpus' (`…/repos/YYYY/MM/DD`). Returns the path of the `.tar.zst`.
 */
export async function runMakeRootfs(work: string, data: string, server: string, sourceDateEpoch: number): Promise<string> {
  const script = String.raw`set -euo pipefail
export TZ=UTC
declare -r GROUP=repro BUILDDIR="$1" OUTPUTDIR="$2" SERVER="$3" DATA="$5"
declare -rx SOURCE_DATE_EPOCH="$4"
cp -r "$DATA/rootfs" "$DATA/exclude" "$DATA/pacman-conf.d-noextract.conf" .

mkdir -p "$BUILDDIR/alpm-hooks/usr/share/libalpm/hooks"
if [[ -d /usr/share/libalpm/hooks ]]; then find /usr/share/libalpm/hooks -exec ln -sf /dev/null "$BUILDDIR/alpm-hooks"{} \; ; fi

mkdir -p "$BUILDDIR/var/lib/pacman/" "$OUTPUTDIR"
install -Dm644 "$DATA/extra.conf" "$BUILDDIR/etc/pacman.conf"
cat pacman-conf.d-noextract.conf >> "$BUILDDIR/etc/pacman.conf"

sed 's/Include = /&rootfs/g' < "$BUILDDIR/etc/pacman.conf" > pacman.conf
sed -i -e 's/^SigLevel .*/SigLevel = Never/' -e '/^DownloadUser/d' pacman.conf # this machine

if grep -q '#DisableSandboxFilesystem' "$BUILDDIR/etc/pacman.conf"; then
sed -i '/#DisableSandboxFilesystem/{c\
# No kernel landlock in containerd\
DisableSandboxFilesystem
}' "$BUILDDIR/etc/pacman.conf"
else
sed -i '/#DisableSandbox/{c\
# No kernel landlock in containerd\
DisableSandbox
}' "$BUILDDIR/etc/pacman.conf"
fi

cp --recursive --preserve=timestamps rootfs/* "$BUILDDIR/"
ln -fs /usr/lib/os-release "$BUILDDIR/etc/os-release"

sed -i "1iServer = $SERVER/\\\$repo/os/\\\$arch" rootfs/etc/pacman.d/mirrorlist
pacman -Sy -r "$BUILDDIR" --noconfirm --noprogressbar --dbpath "$BUILDDIR/var/lib/pacman" --config pacman.conf \
  --noscriptlet --logfile /dev/null --hookdir "$BUILDDIR/alpm-hooks/usr/share/libalpm/hooks/" \
  --cachedir "$PWD/cache" --gpgdir "$PWD/gnupg" base

chroot "$BUILDDIR" update-ca-trust
chroot "$BUILDDIR" pacman-key --init
chroot "$BUILDDIR" pacman-key --populate

rm -rf "$BUILDDIR"/etc/pacman.d/gnupg/*
find "$BUILDDIR" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

chroot "$BUILDDIR" /usr/bin/systemd-sysusers --root "/"
sed -i -e 's/^root::/root:!:/' "$BUILDDIR/etc/shadow"

tar --numeric-owner --xattrs --acls --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime --sort=name \
  --pax-option=delete=atime,delete=ctime --exclude-from=exclude -C "$BUILDDIR" -c . -f "$OUTPUTDIR/$GROUP.tar"
cd "$OUTPUTDIR"
zstd -q --long -T0 -8 "$GROUP.tar"
`;
  mkdirSync(work, { recursive: true });
  await runOk('bash', ['-c', script, 'make-rootfs', join(work, 'build'), join(work, 'output'), server, String(sourceDateEpoch), data], { cwd: work, env: { LC_ALL: 'C' } });
  return join(work, 'output', 'repro.tar.zst');
}

/**
 * The Dockerfile after make-rootfs.sh, as the `repro` variant's make-dockerfile.sh fills it: the rootfs (decompressed,
 * as the verify stage extracts it) COPYed as the first layer, then `RUN ldconfig && sed -i '/BUILD_ID/a
 * VERSION_ID=…' /etc/os-release && rm -f /var/cache/ldconfig/aux-cache` in the unpacked image (real chroot) and its
 * changes repacked by umoci as the second layer, after every path the step touched is set back to SOURCE_DATE_EPOCH
 * (podman's `--rewrite-timestamp`). Returns the image reference `oci:DIR:latest`.
 */
export async function imageOfRootfs(rootfsZst: string, dir: string, version: string, sourceDateEpoch: number): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const tar = join(dir, 'rootfs.tar');
  await runOk('zstd', ['-d', '-q', '-f', rootfsZst, '-o', tar]);
  const layout = join(dir, 'layout');
  const image = `${layout}:latest`;
  const created = new Date(sourceDateEpoch * 1000).toISOString();
  await runOk('umoci', ['init', '--layout', layout]);
  await runOk('umoci', ['new', '--image', image]);
  await runOk('umoci', ['raw', 'add-layer', '--image', image, '--history.created', created, '--history.created_by', 'COPY /rootfs/ /', tar]);
  rmSync(tar);
  const bundle = join(dir, 'bundle');
  await runOk('umoci', ['unpack', '--image', image, bundle]);
  const rootfs = join(bundle, 'rootfs');
  await runOk('chroot', [rootfs, '/bin/sh', '-c', `ldconfig && sed -i '/BUILD_ID/a VERSION_ID=${version}' /etc/os-release && rm -f /var/cache/ldconfig/aux-cache`], { env: { LC_ALL: 'C' } });
  await runOk('find', [rootfs, '-newermt', `@${sourceDateEpoch}`, '-exec', 'touch', '--no-dereference', `--date=@${sourceDateEpoch}`, '{}', '+']);
  await runOk('umoci', ['repack', '--image', image, '--history.created', created, '--history.created_by', 'RUN ldconfig && sed …', bundle]);
  rmSync(bundle, { recursive: true, force: true });
  return `oci:${image}`;
}
