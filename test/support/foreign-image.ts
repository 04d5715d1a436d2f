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
  /** name → the archive's file name. */
  files: Map<string, string>;
}

/**
 * Builds the corpus with makepkg, signs each package into an archive layout (but `unpublished`), and makes a
 * repository of all of them.
 */
export async function buildForeignCorpus(work: string, specs = CORPUS, unpublished: string[] = []): Promise<ForeignCorpus> {
  await runOk('chmod', ['0755', work]);
  const gpg = await Gpg.create();
  const signer = await gpg.genKey('Archive Packager <packager@example.invalid>', { at: SDE - 100 });
  const keyring = join(work, 'keyring');
  await gpg.writeKeyring(keyring, 'test', [signer], { trusted: [signer] });
  const repo = join(work, 'repo');
  const archive = join(work, 'archive');
  mkdirSync(repo, { recursive: true });
  const files = new Map<string, string>();
  const built: string[] = [];
  for (const spec of specs) {
    const path = (await buildWithMakepkg({ ...spec, workDir: join(work, 'build', spec.pkgname) }, SDE))!;
    const file = join(repo, basename(path));
    cpSync(path, file);
    built.push(file);
    if (!unpublished.includes(spec.pkgname)) await publishToArchive(archive, file, gpg, signer);
    files.set(spec.pkgname, basename(file));
  }
  await makeRepoWithRepoAdd(repo, 'fitest', built);
  return { work, keyring, gpg, signer, archive, repo, files };
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
