import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { parseBuildInfo } from '../src/pacman/buildinfo.js';
import { parseMtree } from '../src/pacman/mtree.js';
import { buildPackage, installedSize, type PackageEntry, type PackageInput } from '../src/example/package-writer.js';
import { parsePkgInfo } from '../src/pacman/pkginfo.js';
import { bsdtarListName, buildRepoDatabases, repoPackageFromBuilt, repoPackageFromFile, writeRepo } from '../src/example/repo-writer.js';
import { readSyncDb } from '../src/pacman/syncdb.js';
import { decompressAuto } from '../src/compress/index.js';
import { readTar } from '../src/tar/reader.js';
import { run, runOk } from './support/cli.js';
import { buildWithMakepkg, makepkgUnavailable, makeRepoWithRepoAdd, makeTestGnupgHome, repoAddUnavailable, stopGpgAgent, type MakepkgFile, type MakepkgSpec } from './support/makepkg.js';

const SDE = 1700000000;
const PACKAGER = 'Test Packager <test@example.invalid>';
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

// ---------------------------------------------------------------------------------------------------------------
// One package described twice: as files for real makepkg and as entries for our writer.

const INSTALL = 'post_install() {\n  echo installed\n}\n';
const CHANGELOG = '2023-11-14 Test Packager\n  * first release\n';

interface Item extends MakepkgFile {
  content?: string;
}

const ITEMS: Item[] = [
  { path: 'etc/demo.conf', content: 'setting = 1\n', mode: 0o644 },
  { path: 'usr/bin/demo', content: '#!/bin/sh\necho demo\n', mode: 0o4755 },
  { path: 'usr/bin/link to data', type: 'symlink', target: '../share/demo/data' },
  { path: 'usr/share/demo/data', content: 'data\n'.repeat(100) },
  { path: 'usr/share/demo/hard', type: 'hardlink', target: 'usr/share/demo/data' },
  { path: 'usr/share/demo/empty', type: 'dir' },
  { path: 'usr/share/demo/we#ird=name\\x', content: '' },
  { path: 'srv/own', type: 'dir', owner: '1234:2345', mode: 0o2770 },
  { path: 'srv/own/f', content: 'owned\n', owner: '1234:2345', mode: 0o600 },
  // `a` and `a-b`: makepkg's glob order (a, a-b, a-b/z, a/x) is not member-name byte order (a-b/, a-b/z, a/, a/x).
  { path: 'a-b/z', content: 'z\n' },
  { path: 'a/x', content: 'x\n' },
];

const META = {
  pkgname: 'demo',
  pkgver: '1.0',
  pkgrel: 2,
  epoch: 3,
  pkgdesc: '  A   demo\n  package ',
  url: 'https://example.invalid/demo',
  arch: 'any',
  license: ['MIT', 'custom:foo bar'],
  groups: ['g1', 'g2'],
  depends: ['a-lib>=1', 'b-lib'],
  optdepends: ['c-lib:   for   c'],
  provides: ['demo-virtual=1.0'],
  conflicts: ['old-demo'],
  replaces: ['older-demo'],
  backup: ['etc/demo.conf'],
};

function makepkgSpec(workDir: string): MakepkgSpec {
  return { workDir, ...META, install: INSTALL, changelog: CHANGELOG, files: ITEMS, packager: PACKAGER };
}

function entries(items: readonly Item[]): PackageEntry[] {
  return items.map((item): PackageEntry => {
    const entry: PackageEntry = { path: item.path, type: item.type ?? 'file' };
    if (item.content !== undefined) entry.content = item.content;
    if (item.target !== undefined) entry.linkTarget = item.target;
    if (item.mode !== undefined) entry.mode = item.mode;
    if (item.owner !== undefined) [entry.uid, entry.gid] = item.owner.split(':').map(Number) as [number, number];
    return entry;
  });
}

function ourInput(extra: Partial<PackageInput> = {}): PackageInput {
  return { ...META, packager: PACKAGER, entries: entries(ITEMS), install: INSTALL, changelog: CHANGELOG, sourceDateEpoch: SDE, ...extra };
}

interface Member {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  linkTarget: string;
  content: Buffer;
}

async function readPackage(bytes: Buffer, what: string): Promise<Member[]> {
  const members: Member[] = [];
  const source = (async function* () {
    yield bytes;
  })();
  for await (const entry of readTar(decompressAuto(source, what), { what })) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry.content()) chunks.push(chunk);
    members.push({
      name: entry.name,
      type: entry.type,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      mtime: entry.mtime,
      uname: entry.uname ?? '',
      gname: entry.gname ?? '',
      linkTarget: entry.linkTarget ?? '',
      content: Buffer.concat(chunks),
    });
  }
  return members;
}

const byName = (members: Member[]): Map<string, Member> => new Map(members.map((m) => [m.name, m]));
const byteSorted = (names: string[]): string[] => [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

// ---------------------------------------------------------------------------------------------------------------
// Shared real builds (made once, on first use).

let work: string | undefined;
let realDemo: string | undefined;

function workDir(): string {
  if (work === undefined) {
    work = mkdtempSync(join(tmpdir(), 'arch-package-writer-'));
    chmodSync(work, 0o755);
  }
  return work;
}

async function realDemoPackage(t: TestContext): Promise<string | undefined> {
  const missing = makepkgUnavailable();
  if (missing !== undefined) {
    t.skip(`${missing}; comparison with real makepkg skipped`);
    return undefined;
  }
  realDemo ??= await buildWithMakepkg(makepkgSpec(join(workDir(), 'demo')), SDE);
  return realDemo;
}

test.after(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Without external tools

test('buildPackage lays members out like makepkg, in byte order, with pinned times and owners', async () => {
  const built = await buildPackage(ourInput());
  assert.equal(built.filename, 'demo-3:1.0-2-any.pkg.tar.zst');
  assert.equal(built.fullVersion, '3:1.0-2');
  assert.equal(built.csize, built.bytes.length);
  assert.equal(built.sha256, sha256(built.bytes));
  assert.equal(built.bytes.readUInt32LE(0), 0xfd2fb528, 'zstd frame');
  const members = await readPackage(built.bytes, built.filename);
  const names = members.map((m) => m.name);
  assert.deepEqual(names.slice(0, 5), ['.BUILDINFO', '.CHANGELOG', '.INSTALL', '.MTREE', '.PKGINFO']);
  assert.deepEqual(names, byteSorted(names));
  assert.ok(names.includes('usr/share/demo/empty/') && names.includes('usr/') && names.includes('srv/'), 'parent directories are added');
  assert.deepEqual(built.files, names.slice(5));
  for (const m of members) assert.equal(m.mtime, SDE, m.name);
  const get = byName(members);
  assert.deepEqual([get.get('srv/own/')!.uid, get.get('srv/own/')!.gid, get.get('srv/own/')!.mode, get.get('srv/own/')!.uname], [1234, 2345, 0o2770, '']);
  assert.deepEqual([get.get('usr/bin/demo')!.mode, get.get('usr/bin/demo')!.uname, get.get('usr/bin/demo')!.gname], [0o4755, 'root', 'root']);
  assert.deepEqual([get.get('usr/share/demo/hard')!.type, get.get('usr/share/demo/hard')!.linkTarget], ['hardlink', 'usr/share/demo/data']);
  assert.deepEqual([get.get('usr/bin/link to data')!.type, get.get('usr/bin/link to data')!.mode], ['symlink', 0o777]);

  // Installed size: file bytes, the hardlinked inode once, as makepkg's dirsize.
  const expected = ITEMS.filter((i) => (i.type ?? 'file') === 'file').reduce((sum, i) => sum + Buffer.byteLength(i.content ?? ''), 0);
  assert.equal(built.isize, expected);
  assert.equal(installedSize(entries(ITEMS)), expected);
  const pkginfo = parsePkgInfo(get.get('.PKGINFO')!.content);
  assert.equal(pkginfo.size, expected);
  assert.equal(pkginfo.pkgdesc, 'A demo package');
  assert.deepEqual(pkginfo.optdepends, ['c-lib: for c']);
  assert.deepEqual(pkginfo.warnings, []);
  assert.equal(parseBuildInfo(get.get('.BUILDINFO')!.content).format, 2);

  // .MTREE: our own parser sees every member but itself, with the right facts.
  const mtree = parseMtree(get.get('.MTREE')!.content);
  assert.deepEqual(
    byteSorted(mtree.map((e) => e.path)),
    byteSorted(names.filter((n) => n !== '.MTREE').map((n) => n.replace(/\/$/, ''))),
  );
  for (const entry of mtree) {
    const m = get.get(entry.path) ?? get.get(`${entry.path}/`)!;
    assert.equal(entry.mode, m.mode, entry.path);
    assert.equal(entry.uid, m.uid, entry.path);
    assert.equal(entry.gid, m.gid, entry.path);
    assert.deepEqual(entry.time, { sec: SDE, nsec: 0 });
    if (m.type === 'file') assert.deepEqual([entry.type, entry.size, entry.sha256], ['file', m.content.length, sha256(m.content)], entry.path);
    if (m.type === 'symlink') assert.deepEqual([entry.type, entry.link], ['link', m.linkTarget]);
    if (m.type === 'hardlink') assert.equal(entry.sha256, sha256('data\n'.repeat(100)));
  }
});

test('buildPackage is deterministic and validates its input', async () => {
  const a = await buildPackage(ourInput());
  const b = await buildPackage(ourInput({ entries: [...entries(ITEMS)].reverse() }));
  assert.equal(a.sha256, b.sha256, 'entry order does not matter');
  const level3 = await buildPackage(ourInput({ zstdLevel: 3 }));
  assert.notEqual(level3.sha256, a.sha256);

  // A hardlink group is stored as bsdtar meets it: the first path in byte order holds the content.
  const linked = await buildPackage(
    ourInput({
      install: undefined,
      changelog: undefined,
      entries: [
        { path: 'z', type: 'file', content: 'zz', mode: 0o600 },
        { path: 'a', type: 'hardlink', linkTarget: 'z' },
      ],
    }),
  );
  const linkedMembers = byName(await readPackage(linked.bytes, 'linked'));
  assert.deepEqual([...linkedMembers.keys()], ['.BUILDINFO', '.MTREE', '.PKGINFO', 'a', 'z']);
  assert.deepEqual([linkedMembers.get('a')!.type, linkedMembers.get('a')!.content.toString(), linkedMembers.get('a')!.mode], ['file', 'zz', 0o600]);
  assert.deepEqual([linkedMembers.get('z')!.type, linkedMembers.get('z')!.linkTarget, linkedMembers.get('z')!.mode], ['hardlink', 'a', 0o600]);
  assert.equal(linked.isize, 2);
  // A package without files is still a package (metapackages).
  const empty = await buildPackage(ourInput({ entries: [], install: undefined, changelog: undefined }));
  assert.deepEqual(empty.files, []);
  assert.equal(empty.isize, 0);

  const bad = async (list: PackageEntry[], pattern: RegExp): Promise<void> => {
    await assert.rejects(buildPackage(ourInput({ entries: list })), pattern);
  };
  await bad([{ path: 'x', type: 'file', content: '' }, { path: 'x', type: 'file', content: '' }], /appears twice/);
  await bad([{ path: '/abs', type: 'file', content: '' }], /must be relative/);
  await bad([{ path: '.hidden', type: 'file', content: '' }], /reserved for package metadata/);
  await bad([{ path: 'h', type: 'hardlink', linkTarget: 'missing' }], /not in the package/);
  await bad([{ path: 'f', type: 'file', content: '' }, { path: 'f/g', type: 'file', content: '' }], /parent f is not a directory/);
  await assert.rejects(buildPackage(ourInput({ pkgver: '1-2' })), /pkgver/);
  await assert.rejects(buildPackage(ourInput({ pkgdesc: undefined, url: 'a\nb' })), /invalid value for url/);
});

test('the sync database from buildRepoDatabases is read back by readSyncDb', async () => {
  const built = await buildPackage(ourInput());
  const { db, files, descs } = await buildRepoDatabases([repoPackageFromBuilt(built, Buffer.from([1, 2, 3]))], { mtime: SDE });
  assert.equal(db.readUInt16BE(0), 0x1f8b);
  const read = await readSyncDb(
    (async function* () {
      yield files;
    })(),
    'test.files',
  );
  assert.deepEqual(read.warnings, []);
  const [pkg] = read.packages;
  assert.equal(pkg!.dir, 'demo-3:1.0-2');
  assert.deepEqual([...descs.keys()], ['demo-3:1.0-2']);
  assert.equal(pkg!.desc.pgpsig, 'AQID');
  assert.equal(pkg!.desc.md5sum, undefined, 'MD5SUM is off by default');
  assert.deepEqual([pkg!.desc.csize, pkg!.desc.isize, pkg!.desc.sha256sum], [built.csize, built.isize, built.sha256]);
  assert.equal(pkg!.desc.desc, 'A demo package');
  assert.deepEqual(pkg!.files, built.files.map(bsdtarListName), 'listed as bsdtar -tf prints them');
  const again = await buildRepoDatabases([repoPackageFromBuilt(built, Buffer.from([1, 2, 3]))], { mtime: SDE });
  assert.ok(again.db.equals(db) && again.files.equals(files), 'databases are deterministic');
});

// ---------------------------------------------------------------------------------------------------------------
// Against real makepkg, repo-add and pacman

test('our package matches a real makepkg build of the same content', async (t) => {
  const realPath = await realDemoPackage(t);
  if (realPath === undefined) return;
  const real = await readPackage(readFileSync(realPath), realPath);
  const ours = await buildPackage(ourInput());
  const mine = await readPackage(ours.bytes, ours.filename);
  assert.equal(ours.filename, realPath.split('/').pop());

  // Same members; only the order differs where makepkg's glob order is not byte order (see ITEMS).
  assert.deepEqual(byteSorted(mine.map((m) => m.name)), byteSorted(real.map((m) => m.name)));
  assert.deepEqual(
    real.map((m) => m.name).filter((n) => n.startsWith('a')),
    ['a/', 'a-b/', 'a-b/z', 'a/x'],
  );
  const realByName = byName(real);
  for (const m of mine) {
    const r = realByName.get(m.name)!;
    // bsdtar names owners it can look up (root); 1234/2345 have no name on the build host, nor in ours.
    const facts = (x: Member) => [x.type, x.mode.toString(8), x.uid, x.gid, x.mtime, x.uname, x.gname, x.linkTarget];
    assert.deepEqual(facts(m), facts(r), m.name);
    if (!['.BUILDINFO', '.PKGINFO', '.MTREE'].includes(m.name)) assert.ok(m.content.equals(r.content), `${m.name} content`);
  }

  // .PKGINFO: every field equal; only makepkg's "# Generated by makepkg / # using fakeroot" comments differ.
  const realPkginfo = realByName.get('.PKGINFO')!.content.toString();
  assert.deepEqual(parsePkgInfo(ours.pkginfo).entries, parsePkgInfo(realPkginfo).entries);
  const comments = realPkginfo
    .split('\n')
    .filter((l) => l.startsWith('# '))
    .map((l) => l.slice(2));
  const sameComments = await buildPackage(ourInput({ pkginfoComments: comments }));
  assert.equal(sameComments.pkginfo, realPkginfo, '.PKGINFO is byte-identical with the same comments');

  // .BUILDINFO: these fields describe makepkg's build environment, which our writer does not have.
  const LEGITIMATELY_DIFFERENT = new Set([
    'pkgbuild_sha256sum', // there is no PKGBUILD (omitted unless given)
    'builddir', // makepkg's BUILDDIR; ours defaults to /build
    'startdir', // the PKGBUILD directory; ours defaults to /startdir
    'buildtool', // makepkg vs repro-oci
    'buildtoolver', // makepkg version vs repro-oci version
    'buildenv', // makepkg.conf BUILDENV; none by default
    'options', // makepkg.conf OPTIONS; none by default
    'installed', // packages of the build host (pacman -Qi); none by default
  ]);
  const realBuildinfoText = realByName.get('.BUILDINFO')!.content.toString();
  const realBuildinfo = parseBuildInfo(realBuildinfoText);
  const keep = (entries: Array<[string, string]>) => entries.filter(([k]) => !LEGITIMATELY_DIFFERENT.has(k));
  assert.deepEqual(keep(parseBuildInfo(ours.buildinfo).entries), keep(realBuildinfo.entries));

  // Given makepkg's environment fields, .BUILDINFO is byte-identical and so is the whole .MTREE text, which
  // checks the mtree writer against bsdtar line by line (/set choices, key order, escaping, hardlinks).
  const same = await buildPackage(
    ourInput({
      pkginfoComments: comments,
      buildinfo: {
        pkgbuildSha256sum: realBuildinfo.pkgbuildSha256sum!,
        builddir: realBuildinfo.builddir!,
        startdir: realBuildinfo.startdir!,
        buildtool: realBuildinfo.buildtool!,
        buildtoolver: realBuildinfo.buildtoolver!,
        buildenv: realBuildinfo.buildenv,
        options: realBuildinfo.options,
        installed: realBuildinfo.installed,
      },
    }),
  );
  assert.equal(same.buildinfo, realBuildinfoText);
  const realMtree = zlib.gunzipSync(realByName.get('.MTREE')!.content).toString();
  assert.equal(same.mtreeText, realMtree);
  const sameMembers = byName(await readPackage(same.bytes, same.filename));
  assert.equal(zlib.gunzipSync(sameMembers.get('.MTREE')!.content).toString(), realMtree);

  // Real bsdtar reads our package and lists the same members.
  const listing = await runOk('bsdtar', ['-tf', '-'], { input: ours.bytes });
  assert.deepEqual(listing.stdout.trim().split('\n'), mine.map((m) => bsdtarListName(m.name)));
});

function pacmanUnavailable(): string | undefined {
  if (!existsSync('/usr/bin/pacman')) return 'pacman is not installed';
  if (process.getuid?.() !== 0) return 'pacman -U into a temp root needs root here';
  return undefined;
}

interface PacmanRoot {
  root: string;
  /** Options every operation takes. */
  args: string[];
}

/** Options of operations that change something (-U, -S). */
const TRANSACTION = ['--noconfirm', '--noprogressbar', '--noscriptlet'];

function pacmanRoot(dir: string, repos: Array<[string, string]> = []): PacmanRoot {
  const root = join(dir, 'root');
  for (const sub of ['root/var/lib/pacman', 'cache', 'hooks', 'gnupg']) mkdirSync(join(dir, sub), { recursive: true });
  const conf = ['[options]', 'Architecture = x86_64', 'SigLevel = Never', ''];
  for (const [name, server] of repos) conf.push(`[${name}]`, `Server = ${server}`, '');
  writeFileSync(join(dir, 'pacman.conf'), conf.join('\n'));
  const args = [
    '--root',
    root,
    '--dbpath',
    join(root, 'var/lib/pacman'),
    '--config',
    join(dir, 'pacman.conf'),
    '--cachedir',
    join(dir, 'cache'),
    '--hookdir',
    join(dir, 'hooks'),
    '--gpgdir',
    join(dir, 'gnupg'),
    '--logfile',
    join(dir, 'pacman.log'),
  ];
  return { root, args };
}

/** `type mode uid gid size link` of every path under root, sorted. */
async function tree(root: string): Promise<string[]> {
  const out = await runOk('find', ['.', '-path', './var', '-prune', '-o', '-printf', '%P %y %m %U %G %s %l\n'], { cwd: root });
  return out.stdout
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith(' '))
    .sort();
}

test('pacman -U installs our package cleanly, and the result equals installing the makepkg build', async (t) => {
  const missing = pacmanUnavailable();
  if (missing !== undefined) return t.skip(missing);
  const realPath = await realDemoPackage(t);
  if (realPath === undefined) return;
  const ours = await buildPackage(ourInput());
  const dir = join(workDir(), 'pacman-U');
  mkdirSync(dir, { recursive: true });
  const ourFile = join(dir, ours.filename.replace(/:/g, '_'));
  writeFileSync(ourFile, ours.bytes);

  const installed: Array<{ tree: string[]; desc: string; files: string; mtree: Buffer }> = [];
  for (const [label, file] of [
    ['ours', ourFile],
    ['makepkg', realPath],
  ] as const) {
    const { root, args } = pacmanRoot(join(dir, label));
    // -dd: the demo's dependencies are not installable here; dependency checks are not about the package format.
    const result = await runOk('pacman', [...args, ...TRANSACTION, '-dd', '-U', file]);
    assert.doesNotMatch(result.stderr, /warning|error/i, `${label}: ${result.stderr}`);
    const check = await run('pacman', [...args, '-Qkk', 'demo']);
    assert.equal(check.code, 0, `${label} -Qkk: ${check.stdout}${check.stderr}`);
    assert.match(check.stdout, /demo: \d+ total files, 0 altered files/);
    assert.equal(check.stderr, '', `${label} -Qkk`);
    const local = join(root, 'var/lib/pacman/local/demo-3:1.0-2');
    installed.push({
      tree: await tree(root),
      desc: readFileSync(join(local, 'desc'), 'utf8').replace(/%INSTALLDATE%\n\d+\n/, ''),
      files: readFileSync(join(local, 'files'), 'utf8'),
      mtree: zlib.gunzipSync(readFileSync(join(local, 'mtree'))),
    });
    assert.equal(readFileSync(join(local, 'install'), 'utf8'), INSTALL);
    assert.equal(readFileSync(join(local, 'changelog'), 'utf8'), CHANGELOG);
  }
  const [mine, real] = installed;
  assert.deepEqual(mine!.tree, real!.tree);
  assert.equal(mine!.desc, real!.desc);
  assert.equal(mine!.files, real!.files);
  // The mtree texts differ only in the .BUILDINFO line (build environment fields) and the .PKGINFO line
  // (makepkg's comment lines); the previous test shows they are identical once those agree.
  const dropBuildinfo = (m: Buffer) =>
    m
      .toString()
      .split('\n')
      .filter((l) => !l.startsWith('./.BUILDINFO ') && !l.startsWith('./.PKGINFO '));
  assert.deepEqual(dropBuildinfo(mine!.mtree), dropBuildinfo(real!.mtree));
});

test('repo-writer descs equal repo-add descs; pacman reads our database and installs from it', async (t) => {
  const missing = makepkgUnavailable() ?? repoAddUnavailable();
  if (missing !== undefined) return t.skip(missing);
  const realPath = await realDemoPackage(t);
  if (realPath === undefined) return;
  const base = workDir();
  const other = await buildWithMakepkg(
    {
      workDir: join(base, 'other'),
      pkgbase: 'otherbase',
      pkgname: 'other',
      pkgver: '2.0.1',
      pkgrel: '1',
      pkgdesc: 'Another  package',
      arch: 'any',
      depends: ['demo>=3:1.0'],
      files: [{ path: 'usr/share/other/readme', content: 'read me\n' }],
    },
    SDE,
  );
  const repoDir = join(base, 'repo-real');
  const oursDir = join(base, 'repo-ours');
  mkdirSync(repoDir);
  mkdirSync(oursDir);
  const names = [realPath, other!].map((p) => p.split('/').pop()!);
  for (const [i, path] of [realPath, other!].entries()) writeFileSync(join(repoDir, names[i]!), readFileSync(path));

  const gnupg = join(base, 'gnupg');
  await makeTestGnupgHome(gnupg);
  t.after(() => stopGpgAgent(gnupg));
  // other first on the command line: repo-add's member order is then not name order.
  const result = await makeRepoWithRepoAdd(repoDir, 'test', [names[1]!, names[0]!], { sign: gnupg });
  assert.ok(result !== undefined);
  assert.ok(existsSync(`${result.db}.sig`), 'repo-add signed the database');

  const inputs = await Promise.all(names.map((n) => repoPackageFromFile(n, readFileSync(join(repoDir, n)), readFileSync(join(repoDir, `${n}.sig`)))));
  // pacman 6.0's repo-add writes MD5SUM; ask for it so that the desc texts can be compared byte for byte.
  await writeRepo(oursDir, 'test', inputs, { md5sum: true, mtime: SDE });
  const read = async (path: string) => readSyncDb((async function* () {
    yield readFileSync(path);
  })(), path);
  for (const kind of ['db', 'files']) {
    const theirs = await read(join(repoDir, `test.${kind}.tar.gz`));
    const mine = await read(join(oursDir, `test.${kind}`));
    assert.deepEqual(mine.warnings, []);
    assert.deepEqual(
      mine.packages.map((p) => p.dir),
      ['demo-3:1.0-2', 'other-2.0.1-1'],
    );
    for (const [i, pkg] of mine.packages.entries()) {
      const ref = theirs.packages[i]!;
      for (const field of Object.keys(ref.desc) as Array<keyof typeof ref.desc>) assert.deepEqual(pkg.desc[field], ref.desc[field], `${kind} ${pkg.dir} ${field}`);
      assert.deepEqual(pkg.desc, ref.desc);
      assert.deepEqual(pkg.files, ref.files);
    }
  }
  // Byte for byte, the members equal repo-add's (its archive order and mtimes differ; ours are fixed).
  const extract = async (archive: string, into: string) => {
    mkdirSync(into);
    await runOk('bsdtar', ['-xf', archive, '-C', into]);
  };
  await extract(join(repoDir, 'test.files.tar.gz'), join(base, 'x-real'));
  await extract(join(oursDir, 'test.files'), join(base, 'x-ours'));
  for (const dir of ['demo-3:1.0-2', 'other-2.0.1-1']) {
    for (const member of ['desc', 'files']) {
      assert.equal(readFileSync(join(base, 'x-ours', dir, member), 'utf8'), readFileSync(join(base, 'x-real', dir, member), 'utf8'), `${dir}/${member}`);
    }
  }
  // Without the md5sum option the only difference is the missing %MD5SUM%.
  const noMd5 = await buildRepoDatabases(inputs);
  assert.doesNotMatch([...noMd5.descs.values()].join(''), /%MD5SUM%/);

  // Real pacman reads our database: -Sy, -Sp, -Si; then installs our own package from a repository we wrote.
  const pacmanMissing = pacmanUnavailable();
  if (pacmanMissing !== undefined) return t.skip(pacmanMissing);
  const ours = await buildPackage({
    pkgname: 'hello',
    pkgver: '1.0',
    pkgrel: 1,
    arch: 'any',
    pkgdesc: 'hello from repro-oci',
    entries: [{ path: 'usr/share/hello/greeting', type: 'file', content: 'hello\n' }],
    sourceDateEpoch: SDE,
  });
  writeFileSync(join(oursDir, ours.filename), ours.bytes);
  for (const n of names) writeFileSync(join(oursDir, n), readFileSync(join(repoDir, n)));
  await writeRepo(oursDir, 'ours', [...inputs, repoPackageFromBuilt(ours)], { mtime: SDE });
  const { args } = pacmanRoot(join(base, 'pacman-S'), [['ours', `file://${oursDir}`]]);
  await runOk('pacman', [...args, '--noprogressbar', '-Sy']);
  const printed = await runOk('pacman', [...args, '-Sp', '-dd', '--print-format', '%n %v', 'demo', 'other', 'hello']);
  assert.deepEqual(printed.stdout.trim().split('\n').sort(), ['demo 3:1.0-2', 'hello 1.0-1', 'other 2.0.1-1']);
  const info = await runOk('pacman', [...args, '-Si', 'ours/demo'], { env: { LC_ALL: 'C' } });
  assert.match(info.stdout, /^Description\s+: A demo package$/m);
  assert.match(info.stdout, /^Depends On\s+: a-lib>=1\s+b-lib$/m);
  assert.match(info.stdout, /^Validated By\s+: SHA-256 Sum\s+Signature$/m);
  const installed = await runOk('pacman', [...args, ...TRANSACTION, '-S', 'hello']);
  assert.doesNotMatch(installed.stderr, /warning|error/i);
  assert.equal(readFileSync(join(base, 'pacman-S', 'root', 'usr/share/hello/greeting'), 'utf8'), 'hello\n');
  const check = await run('pacman', [...args, '-Qkk', 'hello']);
  assert.equal(check.code, 0, check.stdout + check.stderr);
});
