import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { makeTempDir, runOk } from './cli.js';
import type { PackageMetadata } from '../../src/example/package-writer.js';
import { encodeName } from '../../src/util/raw-name.js';

/**
 * Builds real packages with real makepkg (and real repositories with real repo-add) for tests that compare our
 * writers with the reference tools.
 *
 * makepkg refuses to run as root, so as root the build runs as user `builder` (created when missing) through
 * `runuser`. makepkg runs package() under fakeroot, so `owner` (chown) works without privileges.
 *
 * A private makepkg.conf keeps the packaged content exactly what package() made:
 *   OPTIONS=(!strip docs libtool staticlibs emptydirs !zipman !purge !debug !lto)
 *   - !strip: stripping rewrites ELF files;          - docs: !docs would delete doc directories;
 *   - libtool / staticlibs: the negations delete *.la / *.a;  - emptydirs: !emptydirs deletes empty directories;
 *   - !zipman: zipman gzips man and info pages;       - !purge: purge deletes PURGE_TARGETS (*.pod, .packlist, ...);
 *   - !debug / !lto: no split debug package, no compiler flags.
 *   BUILDENV=(!distcc !color !ccache !check !sign)
 * PKGEXT=.pkg.tar.zst with COMPRESSZST=(zstd -c -z -q -).
 */

export type MakepkgFileType = 'file' | 'dir' | 'symlink' | 'hardlink';

export interface MakepkgFile {
  /** Relative to $pkgdir. */
  path: string;
  /** Default 'file'. */
  type?: MakepkgFileType;
  content?: string | Buffer;
  /** Applied with chmod after chown (chown clears setuid bits). Not for symlinks. */
  mode?: number;
  /** `uid:gid`, applied with chown -h under fakeroot. */
  owner?: string;
  /** Symlink target, or the existing path a hardlink links to (relative to $pkgdir). */
  target?: string;
}

/** The PKGBUILD fields makepkg is given, named as our own package writer names them. */
type PkgbuildFields = Pick<PackageMetadata, 'pkgname' | 'pkgbase' | 'pkgver' | 'pkgrel' | 'epoch' | 'pkgdesc' | 'url' | 'license' | 'depends' | 'optdepends' | 'provides' | 'conflicts' | 'replaces' | 'groups' | 'backup'>;

export interface MakepkgSpec extends PkgbuildFields {
  /**
   * A directory the helper may fill (PKGBUILD, build/, out/, src/); it is chowned to `builder`. Its ancestors must
   * be searchable by `builder` (chmod 0755 a mkdtemp directory).
   */
  workDir: string;
  /** Default `any`. */
  arch?: string;
  /** `.INSTALL` script text (written next to the PKGBUILD as `<pkgname>.install`). */
  install?: string;
  /** `.CHANGELOG` text. */
  changelog?: string;
  /** The body of package() as shell, or files materialised there in order. */
  files: string | MakepkgFile[];
  /** Default `Test Packager <test@example.invalid>`. */
  packager?: string;
}

/** Shell single-quoting. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

const bashArray = (values: readonly string[] | undefined): string => `(${(values ?? []).map(shellQuote).join(' ')})`;

/** Why real makepkg cannot run here, or undefined when it can. */
export function makepkgUnavailable(): string | undefined {
  for (const tool of ['/usr/bin/makepkg', '/usr/bin/fakeroot', '/usr/bin/bsdtar', '/usr/bin/zstd']) if (!existsSync(tool)) return `${tool} is not installed`;
  if (process.getuid?.() !== 0) return 'not root (the helper builds as user builder through runuser)';
  if (!existsSync('/usr/sbin/runuser') && !existsSync('/usr/bin/runuser')) return 'runuser is not installed';
  return undefined;
}

/** Why real repo-add cannot run here, or undefined. */
export function repoAddUnavailable(): string | undefined {
  for (const tool of ['/usr/bin/repo-add', '/usr/bin/bsdtar']) if (!existsSync(tool)) return `${tool} is not installed`;
  return undefined;
}

let builderIds: { uid: number; gid: number } | undefined;

function builder(): { uid: number; gid: number } {
  if (builderIds === undefined) {
    execFileSync('bash', ['-c', 'id builder >/dev/null 2>&1 || useradd -m builder'], { stdio: 'ignore' });
    const uid = Number(execFileSync('id', ['-u', 'builder'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'builder'], { encoding: 'utf8' }).trim());
    builderIds = { uid, gid };
  }
  return builderIds;
}

function packageBody(files: string | MakepkgFile[]): string {
  if (typeof files === 'string') return files;
  const lines: string[] = [];
  const p = (path: string): string => `"$pkgdir"/${shellQuote(path)}`;
  const parent = (path: string): string | undefined => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : undefined);
  for (const file of files) {
    const type = file.type ?? 'file';
    const dir = type === 'dir' ? file.path : parent(file.path);
    if (dir !== undefined) lines.push(`mkdir -p ${p(dir)}`);
    switch (type) {
      case 'file': {
        const content = typeof file.content === 'string' ? Buffer.from(file.content, 'utf8') : (file.content ?? Buffer.alloc(0));
        lines.push(`printf %s ${shellQuote(content.toString('base64'))} | base64 -d > ${p(file.path)}`);
        break;
      }
      case 'symlink':
        lines.push(`ln -s ${shellQuote(file.target!)} ${p(file.path)}`);
        break;
      case 'hardlink':
        lines.push(`ln ${p(file.target!)} ${p(file.path)}`);
        break;
      case 'dir':
        break;
    }
  }
  // Owners first, then modes: chown clears setuid/setgid bits.
  for (const file of files) if (file.owner !== undefined) lines.push(`chown -h ${shellQuote(file.owner)} ${p(file.path)}`);
  for (const file of files) if (file.mode !== undefined && file.type !== 'symlink') lines.push(`chmod ${file.mode.toString(8)} ${p(file.path)}`);
  return lines.map((l) => `  ${l}`).join('\n');
}

const MAKEPKG_CONF = `CARCH="x86_64"
CHOST="x86_64-pc-linux-gnu"
BUILDENV=(!distcc !color !ccache !check !sign)
OPTIONS=(!strip docs libtool staticlibs emptydirs !zipman !purge !debug !lto)
INTEGRITY_CHECK=(sha256)
COMPRESSZST=(zstd -c -z -q -)
PKGEXT='.pkg.tar.zst'
SRCEXT='.src.tar.gz'
`;

/** The PKGBUILD the helper writes for a spec. */
export function makePkgbuild(spec: MakepkgSpec): string {
  const lines = [
    spec.pkgbase !== undefined ? `pkgbase=${shellQuote(spec.pkgbase)}` : undefined,
    `pkgname=${shellQuote(spec.pkgname)}`,
    `pkgver=${shellQuote(spec.pkgver)}`,
    `pkgrel=${shellQuote(String(spec.pkgrel))}`,
    spec.epoch !== undefined ? `epoch=${shellQuote(String(spec.epoch))}` : undefined,
    spec.pkgdesc !== undefined ? `pkgdesc=${shellQuote(spec.pkgdesc)}` : undefined,
    `arch=(${shellQuote(spec.arch ?? 'any')})`,
    spec.url !== undefined ? `url=${shellQuote(spec.url)}` : undefined,
    `license=${bashArray(spec.license)}`,
    `groups=${bashArray(spec.groups)}`,
    `depends=${bashArray(spec.depends)}`,
    `optdepends=${bashArray(spec.optdepends)}`,
    `provides=${bashArray(spec.provides)}`,
    `conflicts=${bashArray(spec.conflicts)}`,
    `replaces=${bashArray(spec.replaces)}`,
    `backup=${bashArray(spec.backup)}`,
    spec.install !== undefined ? `install=${shellQuote(`${spec.pkgname}.install`)}` : undefined,
    spec.changelog !== undefined ? `changelog=${shellQuote(`${spec.pkgname}.changelog`)}` : undefined,
    '',
    'package() {',
    packageBody(spec.files),
    '}',
    '',
  ];
  return lines.filter((l) => l !== undefined).join('\n');
}

/**
 * Builds one package with real makepkg as user `builder` and returns the path of the `.pkg.tar.zst`, or undefined
 * when makepkg cannot run here (see makepkgUnavailable; tests then t.skip).
 */
export async function buildWithMakepkg(spec: MakepkgSpec, sourceDateEpoch: number): Promise<string | undefined> {
  if (makepkgUnavailable() !== undefined) return undefined;
  const { uid, gid } = builder();
  const dir = spec.workDir;
  mkdirSync(dir, { recursive: true });
  for (const sub of ['build', 'out', 'src']) mkdirSync(join(dir, sub), { recursive: true });
  // Names and values may hold bytes that are not UTF-8 (src/util/raw-name.ts): the PKGBUILD gets those bytes.
  writeFileSync(join(dir, 'PKGBUILD'), encodeName(makePkgbuild(spec)));
  writeFileSync(join(dir, 'makepkg.conf'), MAKEPKG_CONF);
  if (spec.install !== undefined) writeFileSync(join(dir, `${spec.pkgname}.install`), spec.install);
  if (spec.changelog !== undefined) writeFileSync(join(dir, `${spec.pkgname}.changelog`), spec.changelog);
  for (const name of readdirSync(dir)) chownSync(join(dir, name), uid, gid);
  chownSync(dir, uid, gid);
  const env = [
    'LC_ALL=C',
    `PKGEXT=.pkg.tar.zst`,
    `SOURCE_DATE_EPOCH=${sourceDateEpoch}`,
    `PACKAGER=${spec.packager ?? 'Test Packager <test@example.invalid>'}`,
    `BUILDDIR=${join(dir, 'build')}`,
    `PKGDEST=${join(dir, 'out')}`,
    `SRCDEST=${join(dir, 'src')}`,
  ];
  await runOk('runuser', ['-u', 'builder', '--', 'env', ...env, 'makepkg', '--config', join(dir, 'makepkg.conf'), '--nodeps', '--noconfirm', '--noprogressbar', '--force'], {
    cwd: dir,
    timeoutMs: 300_000,
  });
  const built = readdirSync(join(dir, 'out')).filter((name) => name.startsWith(`${spec.pkgname}-`) && name.endsWith('.pkg.tar.zst'));
  if (built.length !== 1) throw new Error(`makepkg produced ${JSON.stringify(built)} in ${join(dir, 'out')}`);
  return join(dir, 'out', built[0]!);
}

export interface RepoAddResult {
  /** `<dir>/<repo>.db.tar.gz` */
  db: string;
  files: string;
}

/** Whether this repo-add knows `--include-sigs` (pacman >= 6.1; 6.0 always includes an existing `.sig`). */
function repoAddHasIncludeSigs(): boolean {
  return readFileSync('/usr/bin/repo-add', 'utf8').includes('--include-sigs');
}

/** Signs a file with `gpg --detach-sign --no-armor` using the first secret key in gnupgHome; returns the .sig path. */
export async function detachSign(path: string, gnupgHome: string): Promise<string> {
  await runOk('gpg', ['--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', '--detach-sign', '--no-armor', '-o', `${path}.sig`, path], { env: { GNUPGHOME: gnupgHome } });
  return `${path}.sig`;
}

/** A fresh GNUPGHOME with one unprotected signing key; returns its fingerprint. */
export async function makeTestGnupgHome(home: string, uid = 'Repo Test <repo-test@example.invalid>'): Promise<string> {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  await runOk('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never'], { env: { GNUPGHOME: home } });
  const listing = await runOk('gpg', ['--batch', '--with-colons', '--list-secret-keys'], { env: { GNUPGHOME: home } });
  const fpr = /^fpr:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(listing.stdout)?.[1];
  if (fpr === undefined) throw new Error(`no fingerprint in gpg output:\n${listing.stdout}`);
  return fpr;
}

/** Stops the gpg-agent that signing started for gnupgHome. */
export async function stopGpgAgent(gnupgHome: string): Promise<void> {
  await runOk('gpgconf', ['--kill', 'gpg-agent'], { env: { GNUPGHOME: gnupgHome } }).catch(() => undefined);
}

/**
 * Runs real repo-add on package files that already sit in dir (pkgPaths may be absolute or relative to dir).
 * With `sign`, each package is first signed (`<pkg>.sig`, binary) with the key in that GNUPGHOME, the signatures go
 * into %PGPSIG% (`--include-sigs` where supported) and the databases are signed (`--sign`).
 */
export async function makeRepoWithRepoAdd(dir: string, repoName: string, pkgPaths: readonly string[], options: { sign?: string } = {}): Promise<RepoAddResult | undefined> {
  if (repoAddUnavailable() !== undefined) return undefined;
  const args = ['-q'];
  const env: Record<string, string> = { LC_ALL: 'C' };
  if (options.sign !== undefined) {
    env.GNUPGHOME = options.sign;
    for (const pkg of pkgPaths) await detachSign(pkg.startsWith('/') ? pkg : join(dir, pkg), options.sign);
    if (repoAddHasIncludeSigs()) args.push('--include-sigs');
    args.push('--sign');
  }
  const db = join(dir, `${repoName}.db.tar.gz`);
  await runOk('repo-add', [...args, db, ...pkgPaths], { cwd: dir, env });
  const files = join(dir, `${repoName}.files.tar.gz`);
  if (!statSync(db).isFile() || !statSync(files).isFile()) throw new Error(`repo-add did not write ${db} and ${files}`);
  return { db, files };
}

/** A corpus built by makepkg into a repo-add repository: a temp directory the builder user can reach. */
export interface MakepkgCorpus {
  dir: string;
  repoDir: string;
  /** Package file by package name. */
  files: Map<string, string>;
}

export async function buildMakepkgCorpus(prefix: string, specs: readonly Omit<MakepkgSpec, 'workDir'>[], repoName: string, sourceDateEpoch: number): Promise<MakepkgCorpus> {
  const dir = await makeTempDir(prefix);
  await chmod(dir, 0o755); // the builder user must reach its work directories
  const repoDir = join(dir, 'repo');
  await mkdir(repoDir);
  const built = await Promise.all(specs.map((spec) => buildWithMakepkg({ ...spec, workDir: join(dir, 'build', spec.pkgname) }, sourceDateEpoch)));
  const files = new Map<string, string>();
  for (const [i, path] of built.entries()) {
    const target = join(repoDir, basename(path!));
    await copyFile(path!, target);
    files.set(specs[i]!.pkgname, target);
  }
  await makeRepoWithRepoAdd(repoDir, repoName, [...files.values()].map((f) => basename(f)));
  return { dir, repoDir, files };
}
