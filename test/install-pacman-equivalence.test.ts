import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { installPackages, type PackageToInstall } from '../src/install/installer.js';
import { materialize } from '../src/install/materialize.js';
import { removeDir, runCliOk, runOk } from './support/cli.js';
import { compareTrees, DB, isAllowed, scanTree, type NodeInfo } from './support/tree-compare.js';
import { buildMakepkgCorpus, makepkgUnavailable, repoAddUnavailable, type MakepkgCorpus, type MakepkgSpec } from './support/makepkg.js';

/**
 * The pacman-equivalence test: a corpus of packages built with real makepkg, put in a repository with real repo-add,
 * installed once by real pacman (`pacman -S --root`) and once by installPackages() + materialize(); the two trees
 * and pacman's local databases must be byte-equal, except for the differences listed in ALLOWED_DIFFERENCES.
 */

const SDE = 1_700_000_000;
const REPO = 'eqtest';
/** The same patterns go to pacman.conf (NoExtract) and to installPackages(); the `!` one re-includes files. */
const NOEXTRACT = ['usr/share/doc/*', 'etc/alpha/skip.conf', '!usr/share/doc/*/keep*'];
/** `alpha` by name (it pulls in `beta` through a provision: reason 1), and the group `testgroup` (gamma, delta). */
const TARGETS = ['alpha', 'testgroup'];

const LONG_DIR = `usr/share/alpha/${'a-rather-long-directory-name-'.repeat(3)}end`;
const LONG_PATH = `${LONG_DIR}/${'and-an-even-longer-file-name-'.repeat(4)}end.txt`;

function pseudoRandom(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const CORPUS: Omit<MakepkgSpec, 'workDir'>[] = [
  {
    pkgname: 'beta',
    pkgver: '1.5',
    pkgrel: 2,
    pkgdesc: 'The dependency',
    license: ['GPL-2.0-or-later'],
    provides: ['libbeta=1.5', 'libbeta.so=1-64'],
    backup: ['etc/beta.conf'],
    files: [
      { path: 'etc/beta.conf', content: 'beta=1\n' },
      { path: 'usr/lib/beta/libbeta.so.1', content: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]), mode: 0o755 },
      { path: 'usr/share/shared', type: 'dir' },
      { path: 'usr/share/shared/beta.txt', content: 'beta\n' },
      // NoExtract'd together with its directory: pacman creates neither.
      { path: 'usr/share/doc/beta/README', content: 'beta docs\n' },
    ],
  },
  {
    pkgname: 'alpha',
    epoch: 2,
    pkgver: '1.0',
    pkgrel: 1,
    pkgdesc: 'Alpha — the ✓ main package',
    url: 'https://example.invalid/alpha',
    license: ['MIT', 'custom:alpha'],
    depends: ['libbeta>=1.0'],
    optdepends: ['gamma: for the shared data', 'nothere>=2: not in any repository'],
    conflicts: ['alpha-old<2'],
    replaces: ['alpha-legacy'],
    provides: ['alpha-virtual=2.0'],
    backup: ['etc/alpha.conf', 'etc/alpha/skip.conf', 'etc/alpha/missing.conf'],
    install: 'post_install() {\n  echo "alpha installed"\n}\n',
    changelog: '2:1.0-1\n  * first release — ünïcödé\n',
    files: [
      { path: 'etc/alpha.conf', content: 'a=1\n', mode: 0o640 },
      { path: 'etc/alpha/skip.conf', content: 'never extracted\n' },
      { path: 'usr/bin/alpha', content: '#!/bin/sh\necho alpha\n', mode: 0o755 },
      { path: 'usr/bin/alpha-hard', type: 'hardlink', target: 'usr/bin/alpha' },
      { path: 'usr/bin/alpha-rel', type: 'symlink', target: 'alpha' },
      { path: 'usr/bin/alpha-abs', type: 'symlink', target: '/usr/bin/alpha' },
      { path: 'usr/bin/dangling', type: 'symlink', target: '../lib/nowhere' },
      { path: 'usr/bin/suid', content: 'suid\n', mode: 0o4755 },
      { path: 'usr/bin/sgid', content: 'sgid\n', owner: '0:5', mode: 0o2711 },
      { path: 'usr/lib/alpha-beta', type: 'symlink', target: 'beta' },
      // A shared directory declared again, with other permissions, after beta made it.
      { path: 'usr/share/shared', type: 'dir', mode: 0o775 },
      { path: 'usr/share/shared/alpha.txt', content: 'alpha\n' },
      { path: 'usr/share/alpha/empty', type: 'dir' },
      { path: 'usr/share/alpha/empty-file', content: '' },
      { path: "usr/share/alpha/with space & quote's.txt", content: 'x' },
      { path: LONG_PATH, content: 'long\n' },
      { path: 'usr/share/alpha/ünïcödé/文件.txt', content: 'ü\n' },
      { path: 'usr/share/alpha/ünïcödé-link', type: 'symlink', target: 'ünïcödé/文件.txt' },
      { path: 'usr/share/alpha/long-target-link', type: 'symlink', target: `/${LONG_PATH}` },
      { path: 'usr/share/alpha/data', content: pseudoRandom(100_000, 7), mode: 0o444 },
      { path: 'usr/share/alpha/data-hard', type: 'hardlink', target: 'usr/share/alpha/data' },
      { path: 'srv/sticky', type: 'dir', mode: 0o1777 },
      { path: 'srv/setgid', type: 'dir', owner: '0:100', mode: 0o2775 },
      { path: 'srv/owned', type: 'dir', owner: '1234:5678', mode: 0o750 },
      { path: 'srv/owned/file', content: 'mine\n', owner: '1234:5678', mode: 0o600 },
      { path: 'srv/owned/link', type: 'symlink', target: 'file', owner: '1234:5678' },
      // NoExtract'd directory with files the `!` pattern brings back (one two levels down).
      { path: 'usr/share/doc/alpha', type: 'dir', mode: 0o700 },
      { path: 'usr/share/doc/alpha/README', content: 'not extracted\n' },
      { path: 'usr/share/doc/alpha/keep-me', content: 'kept\n' },
      { path: 'usr/share/doc/alpha/sub/keep-deep', content: 'kept too\n' },
    ],
  },
  {
    pkgname: 'gamma',
    pkgver: '3.0',
    pkgrel: 1,
    pkgdesc: 'Group member with clashing directory metadata',
    groups: ['testgroup'],
    files: [
      { path: 'etc', type: 'dir', mode: 0o750 },
      { path: 'usr/share/shared', type: 'dir', owner: '0:100', mode: 0o700 },
      { path: 'usr/share/shared/gamma.txt', content: 'gamma\n' },
      { path: 'usr/share/doc/gamma/README', content: 'gamma docs\n' },
      // var/lib exists before any package (pacman's database lives below it).
      { path: 'var/lib', type: 'dir', mode: 0o750 },
      { path: 'var/lib/gamma/state', content: '' },
    ],
  },
  {
    pkgname: 'delta',
    pkgbase: 'delta-split',
    pkgver: '0.1',
    pkgrel: 1,
    arch: 'x86_64',
    groups: ['testgroup', 'other'],
    depends: ['alpha-virtual=2.0'],
    files: [
      { path: 'opt/delta/bin/delta', content: '#!/bin/sh\n', mode: 0o755 },
      { path: 'opt/delta/empty', type: 'dir' },
    ],
  },
];

type Corpus = MakepkgCorpus;

let corpusPromise: Promise<Corpus> | undefined;

/** Builds the corpus once for every test of this file (in parallel; makepkg is the slow part). */
function corpus(): Promise<Corpus> {
  corpusPromise ??= buildMakepkgCorpus('pacman-eq', CORPUS, REPO, SDE);
  return corpusPromise;
}

function unavailable(): string | undefined {
  return makepkgUnavailable() ?? repoAddUnavailable() ?? (existsSync('/usr/bin/pacman') ? undefined : '/usr/bin/pacman is not installed');
}

test.after(async () => {
  const built = await corpusPromise?.catch(() => undefined);
  // REPRO_OCI_KEEP_TEST_DIRS=1 keeps both roots for a look with diff -r / find -printf.
  if (built && process.env.REPRO_OCI_KEEP_TEST_DIRS !== '1') await removeDir(built.dir);
});

// ---------------------------------------------------------------------------------------------------------------

test('pacman equivalence: installPackages + materialize give the tree and local database pacman -S gives', { timeout: 120_000 }, async (t) => {
  const why = unavailable();
  if (why) {
    t.skip(why);
    return;
  }
  const started = Date.now();
  const { dir, repoDir, files } = await corpus();
  t.diagnostic(`corpus built in ${Date.now() - started} ms`);

  // (a) real pacman. Its dbpath must exist beforehand (as pacstrap makes it): var, var/lib, var/lib/pacman 0755.
  const pacmanRoot = join(dir, 'pacman-root');
  for (const sub of ['', 'var', 'var/lib', DB]) {
    await mkdir(join(pacmanRoot, sub), { recursive: true });
    await chmod(join(pacmanRoot, sub), 0o755);
  }
  const conf = join(dir, 'pacman.conf');
  const hooks = join(dir, 'hooks');
  const cache = join(dir, 'pacman-cache');
  await mkdir(hooks, { recursive: true });
  await mkdir(cache, { recursive: true });
  await writeFile(conf, `[options]\nArchitecture = x86_64\nSigLevel = Never\nNoExtract = ${NOEXTRACT.join(' ')}\n\n[${REPO}]\nServer = file://${repoDir}\n`);
  const flags = ['--noconfirm', '--root', pacmanRoot, '--dbpath', join(pacmanRoot, DB), '--config', conf, '--cachedir', cache, '--logfile', '/dev/null', '--noscriptlet', '--hookdir', hooks];
  const env = { LC_ALL: 'C' };
  await runOk('pacman', ['-Sy', ...flags], { env });
  const plan = await runOk('pacman', ['-Sp', '--print-format', '%n %v %l', ...flags.filter((f) => f !== '--noscriptlet'), ...TARGETS], { env });
  const pacmanRun = await runOk('pacman', ['-S', ...flags, ...TARGETS], { env });
  t.diagnostic(`pacman -S said:\n${pacmanRun.stderr}${pacmanRun.stdout}`);

  // (b) ours, on the same package files in the order pacman used; reason 1 for what no target asked for.
  const order = plan.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [name, version, url] = line.split(' ') as [string, string, string];
      return { name, version, file: join(repoDir, decodeURIComponent(basename(url))) };
    });
  const names = order.map((p) => p.name);
  assert.deepEqual([...names].sort(), ['alpha', 'beta', 'delta', 'gamma']);
  assert.ok(names.indexOf('beta') < names.indexOf('alpha') && names.indexOf('alpha') < names.indexOf('delta'), `dependencies first: ${names.join(' ')}`);
  const explicit = (name: string): boolean => TARGETS.includes(name) || CORPUS.find((s) => s.pkgname === name)!.groups?.some((g) => TARGETS.includes(g)) === true;
  const packages: PackageToInstall[] = [];
  for (const p of order) {
    assert.equal(p.file, files.get(p.name));
    const sha256 = createHash('sha256').update(await readFile(p.file)).digest('hex');
    packages.push({ name: p.name, version: p.version, file: p.file, sha256, reason: explicit(p.name) ? 'explicit' : 'dependency', validation: ['sha256'] });
  }
  const warnings: string[] = [];
  const tree = await installPackages(packages, { sourceDateEpoch: SDE, noExtract: NOEXTRACT, warn: (m) => warnings.push(m) });
  const ourRoot = join(dir, 'our-root');
  try {
    await materialize(tree.entries, ourRoot);
  } finally {
    await tree.cleanup();
  }

  const [ours, theirs] = await Promise.all([scanTree(ourRoot), scanTree(pacmanRoot)]);
  const diffs = compareTrees(ours, theirs);
  const allowed = diffs.filter((d) => isAllowed(d));
  const bugs = diffs.filter((d) => !isAllowed(d));
  t.diagnostic(`${diffs.length} differences, ${allowed.length} allowed:\n${[...new Set(allowed.map((d) => `${d.field}`))].map((f) => `  ${f}: ${allowed.filter((d) => d.field === f).length}`).join('\n')}`);
  assert.deepEqual(bugs, [], `differences from pacman that are not allowed:\n${bugs.map((d) => `${d.path}: ${d.field}: ours ${JSON.stringify(d.ours)} pacman ${JSON.stringify(d.pacman)}`).join('\n')}`);

  // The comparison is not vacuous: the corpus's hard cases are in the trees, as pacman made them.
  const at = (path: string): NodeInfo => {
    const info = theirs.get(path);
    assert.ok(info, `${path} is in pacman's tree`);
    return info;
  };
  assert.equal(at('usr/bin/suid').mode, 0o4755);
  assert.equal(at('usr/bin/sgid').mode, 0o2711);
  assert.equal(at('usr/bin/sgid').gid, 5);
  assert.equal(at('srv/sticky').mode, 0o1777);
  assert.equal(at('srv/setgid').mode, 0o2775);
  assert.equal(at('srv/owned/file').uid, 1234);
  assert.equal(at('srv/owned/link').uid, 1234);
  assert.equal(at('usr/bin/alpha').hardlinks, 'usr/bin/alpha-hard');
  assert.equal(at('usr/share/alpha/data').hardlinks, 'usr/share/alpha/data-hard');
  assert.equal(at('usr/bin/alpha-abs').link, '/usr/bin/alpha');
  assert.equal(at('usr/share/alpha/long-target-link').link, `/${LONG_PATH}`);
  assert.ok(LONG_PATH.length > 100);
  assert.equal(at(LONG_PATH).size, 5);
  assert.equal(at('usr/share/alpha/ünïcödé/文件.txt').size, 3);
  assert.equal(at('usr/share/alpha/empty').type, 'dir');
  assert.equal(at('usr/share/shared').mode, 0o755, 'the first package that made a shared directory decides its metadata');
  assert.equal(at('usr/share/doc/alpha/keep-me').size, 5, 'the ! pattern re-includes');
  assert.ok(!theirs.has('usr/share/doc/alpha/README') && !theirs.has('etc/alpha/skip.conf'), 'NoExtract honoured');
  assert.ok(at(`${DB}/local/alpha-2:1.0-1/install`) && at(`${DB}/local/alpha-2:1.0-1/changelog`) && at(`${DB}/local/alpha-2:1.0-1/mtree`));
  assert.match(at(`${DB}/local/beta-1.5-2/desc`).text!, /%REASON%\n1\n/);
  // pacman's "directory permissions differ" warnings are ours too (we also warn when only the owner differs).
  const pacmanWarned = [...pacmanRun.stderr.matchAll(/directory permissions differ on (.*)\n/g)].map((m) => m[1]!.slice(pacmanRoot.length).replace(/\/$/, ''));
  assert.ok(pacmanWarned.includes('/usr/share/shared'), pacmanRun.stderr);
  for (const path of pacmanWarned) assert.ok(warnings.some((w) => w.startsWith(`directory permissions differ on ${path}\n`)), `we warn about ${path} as pacman does`);
  t.diagnostic(`equivalence test took ${Date.now() - started} ms`);
});

// ---------------------------------------------------------------------------------------------------------------

test('CLI: repro-oci install LOCK --root DIR and repro-oci ls LOCK on a file:// lock', { timeout: 120_000 }, async (t) => {
  const why = makepkgUnavailable() ?? repoAddUnavailable();
  if (why) {
    t.skip(why);
    return;
  }
  const { dir, files } = await corpus();
  const work = join(dir, 'cli');
  await mkdir(work, { recursive: true });
  const locked = async (name: string, reason: 'explicit' | 'dependency'): Promise<Record<string, unknown>> => {
    const file = files.get(name)!;
    const bytes = await readFile(file);
    const spec = CORPUS.find((s) => s.pkgname === name)!;
    const version = `${spec.epoch !== undefined ? `${spec.epoch}:` : ''}${spec.pkgver}-${spec.pkgrel}`;
    return {
      name,
      version,
      arch: spec.arch ?? 'any',
      repository: REPO,
      filename: basename(file),
      urls: [`file://${file.split('/').map(encodeURIComponent).join('/')}`],
      sha256: createHash('sha256').update(bytes).digest('hex'),
      csize: bytes.length,
      isize: 0,
      builddate: SDE,
      reason,
    };
  };
  const lock = {
    lockVersion: 1,
    specDigest: `sha256:${'0'.repeat(64)}`,
    architecture: 'x86_64',
    repositories: [{ name: REPO, servers: [], database: `sha256:${'0'.repeat(64)}` }],
    targets: ['alpha'],
    sigLevel: 'Never',
    packages: [await locked('beta', 'dependency'), await locked('alpha', 'explicit')],
  };
  const lockPath = join(work, 'lock.json');
  await writeFile(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
  const root = join(work, 'root');
  const common = ['--cache', join(work, 'cache'), '--source-date-epoch', String(SDE), '--noextract', 'usr/share/doc/*'];

  const install = await runCliOk(['install', lockPath, '--root', root, ...common]);
  assert.match(install.stdout, /^installed 2 packages, \d+ entries into /m);
  assert.equal(await readFile(join(root, 'usr/bin/alpha'), 'utf8'), '#!/bin/sh\necho alpha\n');
  const suid = await lstat(join(root, 'usr/bin/suid'));
  assert.equal(suid.mode & 0o7777, 0o4755);
  const owned = await lstat(join(root, 'srv/owned/file'));
  assert.deepEqual([owned.uid, owned.gid, owned.mode & 0o7777], [1234, 5678, 0o600]);
  assert.equal((await lstat(join(root, 'usr/bin/alpha-hard'))).ino, (await lstat(join(root, 'usr/bin/alpha'))).ino);
  assert.equal(await readlink(join(root, 'usr/bin/alpha-abs')), '/usr/bin/alpha');
  assert.ok(!existsSync(join(root, 'usr/share/doc/alpha/README')), '--noextract honoured');
  assert.match(await readFile(join(root, 'var/lib/pacman/local/beta-1.5-2/desc'), 'utf8'), /%REASON%\n1\n/);

  const ls = await runCliOk(['ls', lockPath, ...common]);
  const lines = ls.stdout.trimEnd().split('\n');
  // `MODE UID/GID SIZE /PATH[ -> TARGET| link to TARGET]  [OWNER]`
  const pathOf = (l: string): string | undefined => /^\S{10} \d+\/\d+ +\d+ \/(.*?)(?: -> .*| link to .*)? {2}\[[^\]]+\]$/.exec(l)?.[1];
  const line = (path: string): string => {
    const found = lines.find((l) => pathOf(l) === path);
    assert.ok(found, `ls lists /${path}:\n${ls.stdout}`);
    return found;
  };
  // mode, uid/gid, size, path, owning package
  assert.match(line('usr/bin/suid'), /^-rwsr-xr-x 0\/0 +5 \/usr\/bin\/suid {2}\[alpha\]$/);
  assert.match(line('usr/bin/sgid'), /^-rwx--s--x 0\/5 +5 \/usr\/bin\/sgid {2}\[alpha\]$/);
  assert.match(line('srv/owned/file'), /^-rw------- 1234\/5678 +5 \/srv\/owned\/file {2}\[alpha\]$/);
  assert.match(line('srv/sticky'), /^drwxrwxrwt 0\/0 +0 \/srv\/sticky {2}\[alpha\]$/);
  assert.match(line('usr/bin/alpha-abs'), /^lrwxrwxrwx 0\/0 +0 \/usr\/bin\/alpha-abs -> \/usr\/bin\/alpha {2}\[alpha\]$/);
  assert.match(line('usr/bin/alpha-hard'), /^h.* \/usr\/bin\/alpha-hard link to usr\/bin\/alpha {2}\[alpha\]$/);
  assert.match(line('etc/beta.conf'), /^-rw-r--r-- 0\/0 +7 \/etc\/beta\.conf {2}\[beta\]$/);
  assert.match(line('usr/share/shared'), /^drwxr-xr-x 0\/0 +0 \/usr\/share\/shared {2}\[beta\]$/);
  assert.match(line('var/lib/pacman/local/alpha-2:1.0-1/desc'), /^-rw-r--r-- 0\/0 +\d+ \/var\/lib\/pacman\/local\/alpha-2:1\.0-1\/desc {2}\[pacman db\]$/);
  assert.ok(!lines.some((l) => l.includes('/usr/share/doc/alpha/README')));
  // Same tree as install wrote: every listed path exists on disk.
  for (const l of lines) {
    const path = pathOf(l);
    assert.ok(path !== undefined, `ls line has the expected columns: ${l}`);
    assert.ok((await lstat(join(root, path)).catch(() => undefined)) !== undefined, `/${path} is on disk`);
  }
});
