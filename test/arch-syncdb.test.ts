import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { parseBuildInfo } from '../src/pacman/buildinfo.js';
import { parseMtree } from '../src/pacman/mtree.js';
import { parsePkgInfo } from '../src/pacman/pkginfo.js';
import { readSyncDb } from '../src/pacman/syncdb.js';
import { decompressAuto } from '../src/compress/index.js';
import { readTar } from '../src/tar/reader.js';
import { writeTar } from '../src/tar/writer.js';

const SOURCE_DATE_EPOCH = '1700000000';

// A split package, so the database holds two entries whose archive order need not be name order.
const PKGBUILD = `pkgbase=tinybase
pkgname=(zeta-tiny alpha-tiny)
pkgver=1.2.3
pkgrel=1
epoch=1
pkgdesc='A tiny test package'
arch=(any)
url='https://example.invalid'
license=(MIT)
options=(!debug !strip)

package_zeta-tiny() {
  depends=('alpha-tiny>=1:1.0')
  provides=('tiny=1.2.3')
  mkdir -p "$pkgdir/usr/share/x"
  echo hi > "$pkgdir/usr/share/x/f"
}

package_alpha-tiny() {
  optdepends=('zeta-tiny: the other half')
  mkdir -p "$pkgdir/usr/share/y"
  echo hello > "$pkgdir/usr/share/y/g"
  ln -s g "$pkgdir/usr/share/y/link to g"
}
`;

function toolsMissing(): string | undefined {
  for (const tool of ['/usr/bin/makepkg', '/usr/bin/repo-add', '/usr/bin/bsdtar']) if (!existsSync(tool)) return `${tool} is not installed`;
  if (process.getuid?.() === 0 && !existsSync('/usr/sbin/runuser') && !existsSync('/usr/bin/runuser')) return 'runuser is not installed';
  return undefined;
}

/** makepkg refuses to run as root, so as root the build runs as an unprivileged `builder` user. */
function buildPackages(dir: string): string[] {
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('bash', ['-c', 'id builder >/dev/null 2>&1 || useradd -m builder'], { stdio: 'ignore' });
  writeFileSync(join(dir, 'PKGBUILD'), PKGBUILD);
  for (const sub of ['build', 'out', 'src']) mkdirSync(join(dir, sub));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'builder'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'builder'], { encoding: 'utf8' }).trim());
    for (const path of [dir, join(dir, 'PKGBUILD'), join(dir, 'build'), join(dir, 'out'), join(dir, 'src')]) chownSync(path, uid, gid);
  }
  const env = [`PKGEXT=.pkg.tar.zst`, `SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}`, `BUILDDIR=${dir}/build`, `PKGDEST=${dir}/out`, `SRCDEST=${dir}/src`];
  const makepkg = ['env', ...env, 'makepkg', '--nodeps', '--noconfirm', '--noprogressbar'];
  const [command, ...args] = asRoot ? ['runuser', '-u', 'builder', '--', ...makepkg] : makepkg;
  execFileSync(command!, args, { cwd: dir, stdio: 'pipe', env: { ...process.env, LC_ALL: 'C' } });
  return readdirSync(join(dir, 'out'))
    .filter((name) => name.endsWith('.pkg.tar.zst'))
    .sort();
}

async function packageMembers(path: string): Promise<Map<string, Buffer>> {
  const members = new Map<string, Buffer>();
  for await (const entry of readTar(decompressAuto(createReadStream(path), path), { what: path })) {
    if (!entry.path.startsWith('.')) continue;
    const chunks: Buffer[] = [];
    for await (const chunk of entry.content()) chunks.push(chunk);
    members.set(entry.path, Buffer.concat(chunks));
  }
  return members;
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

let workDir: string | undefined;
let built: string[] = [];

function setUp(t: TestContext): string | undefined {
  const missing = toolsMissing();
  if (missing !== undefined) {
    t.skip(`${missing}; real pacman database test skipped`);
    return undefined;
  }
  if (workDir === undefined) {
    workDir = mkdtempSync(join(tmpdir(), 'arch-syncdb-'));
    chmodSync(workDir, 0o755);
    built = buildPackages(workDir);
  }
  return workDir;
}

test.after(() => {
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

test('readSyncDb reads a real repo-add database (gzip and zstd), sorted by name', async (t) => {
  const dir = setUp(t);
  if (dir === undefined) return;
  const out = join(dir, 'out');
  assert.deepEqual(built, ['alpha-tiny-1:1.2.3-1-any.pkg.tar.zst', 'zeta-tiny-1:1.2.3-1-any.pkg.tar.zst']);
  // zeta first on the command line, so repo-add's member order is not name order.
  for (const db of ['test.db.tar.gz', 'zst.db.tar.zst']) {
    execFileSync('repo-add', ['-q', db, built[1]!, built[0]!], { cwd: out, stdio: 'pipe' });
    const { packages, warnings } = await readSyncDb(createReadStream(join(out, db)), db);
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      packages.map((p) => p.dir),
      ['alpha-tiny-1:1.2.3-1', 'zeta-tiny-1:1.2.3-1'],
    );
    const [alpha, zeta] = packages;
    assert.equal(alpha!.files, undefined);
    assert.equal(zeta!.desc.filename, built[1]);
    assert.equal(zeta!.desc.base, 'tinybase');
    assert.equal(zeta!.desc.version, '1:1.2.3-1');
    assert.equal(zeta!.desc.arch, 'any');
    assert.equal(zeta!.desc.builddate, Number(SOURCE_DATE_EPOCH));
    assert.deepEqual(zeta!.desc.depends, ['alpha-tiny>=1:1.0']);
    assert.deepEqual(zeta!.desc.provides, ['tiny=1.2.3']);
    assert.deepEqual(alpha!.desc.optdepends, ['zeta-tiny: the other half']);
    const file = readFileSync(join(out, built[1]!));
    assert.equal(zeta!.desc.sha256sum, sha256(file));
    assert.equal(zeta!.desc.csize, file.length);
    assert.equal(zeta!.desc.isize, 3);
  }
});

test('readSyncDb reads the files database and an uncompressed database', async (t) => {
  const dir = setUp(t);
  if (dir === undefined) return;
  const out = join(dir, 'out');
  execFileSync('repo-add', ['-q', 'files.db.tar.gz', ...built], { cwd: out, stdio: 'pipe' });
  const files = await readSyncDb(createReadStream(join(out, 'files.files.tar.gz')), 'files.files');
  assert.deepEqual(files.packages[0]!.files, ['usr/', 'usr/share/', 'usr/share/y/', 'usr/share/y/g', 'usr/share/y/link to g']);
  assert.deepEqual(files.packages[1]!.files, ['usr/', 'usr/share/', 'usr/share/x/', 'usr/share/x/f']);
  // The same members as a plain tar, in reverse order.
  execFileSync('bash', ['-c', 'mkdir plain && cd plain && bsdtar -xf ../files.db.tar.gz && bsdtar -cf ../plain.tar $(ls -r)'], { cwd: out });
  const plain = await readSyncDb(createReadStream(join(out, 'plain.tar')), 'plain.tar');
  assert.deepEqual(
    plain.packages.map((p) => p.desc.name),
    ['alpha-tiny', 'zeta-tiny'],
  );
});

test("a real package's .PKGINFO, .BUILDINFO and .MTREE parse and agree", async (t) => {
  const dir = setUp(t);
  if (dir === undefined) return;
  const members = await packageMembers(join(dir, 'out', built[0]!));
  assert.deepEqual([...members.keys()], ['.BUILDINFO', '.MTREE', '.PKGINFO']);
  const pkginfo = parsePkgInfo(members.get('.PKGINFO')!, `${built[0]} .PKGINFO`);
  assert.equal(pkginfo.pkgname, 'alpha-tiny');
  assert.equal(pkginfo.pkgbase, 'tinybase');
  assert.equal(pkginfo.pkgver, '1:1.2.3-1');
  assert.equal(pkginfo.builddate, Number(SOURCE_DATE_EPOCH));
  assert.equal(pkginfo.size, 6);
  assert.deepEqual(pkginfo.optdepends, ['zeta-tiny: the other half']);
  assert.deepEqual(pkginfo.warnings, []);

  const buildinfo = parseBuildInfo(members.get('.BUILDINFO')!);
  assert.equal(buildinfo.format, 2);
  assert.equal(buildinfo.pkgname, 'alpha-tiny');
  assert.equal(buildinfo.buildtool, 'makepkg');
  assert.deepEqual(buildinfo.warnings, []);

  const mtree = parseMtree(members.get('.MTREE')!);
  assert.deepEqual(
    mtree.map((e) => e.path),
    ['.BUILDINFO', '.PKGINFO', 'usr', 'usr/share', 'usr/share/y', 'usr/share/y/g', 'usr/share/y/link to g'],
  );
  const byPath = new Map(mtree.map((e) => [e.path, e]));
  assert.equal(byPath.get('.PKGINFO')!.sha256, sha256(members.get('.PKGINFO')!));
  assert.equal(byPath.get('.PKGINFO')!.size, members.get('.PKGINFO')!.length);
  const g = byPath.get('usr/share/y/g')!;
  assert.deepEqual([g.type, g.mode, g.uid, g.gid, g.size, g.sha256], ['file', 0o644, 0, 0, 6, sha256('hello\n')]);
  assert.deepEqual(g.time, { sec: Number(SOURCE_DATE_EPOCH), nsec: 0 });
  const link = byPath.get('usr/share/y/link to g')!;
  assert.deepEqual([link.type, link.link, link.mode], ['link', 'g', 0o777]);
  assert.equal(byPath.get('usr')!.type, 'dir');
});

/** A database archive built in memory with the project's tar writer (members must be in byte order). */
async function* syntheticDb(members: Array<[string, string]>, gzip = false): AsyncGenerator<Buffer> {
  const entries = members.map(([path, text]) => {
    const data = Buffer.from(text);
    return { path, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: data.length, open: () => Readable.from([data]) };
  });
  const chunks: Buffer[] = [];
  for await (const chunk of writeTar(entries)) chunks.push(chunk);
  const tar = Buffer.concat(chunks);
  yield gzip ? zlib.gzipSync(tar) : tar;
}

const desc = (name: string, version: string, extra = ''): string =>
  `%FILENAME%\n${name}-${version}-any.pkg.tar.zst\n\n%NAME%\n${name}\n\n%VERSION%\n${version}\n\n${extra}`;

test('readSyncDb warns about unknown keys and members but keeps going', async () => {
  const db = await readSyncDb(
    syntheticDb(
      [
        ['b-1-1/desc', desc('b', '1-1', '%FUTURE%\nx\n\n')],
        ['b-1-1/extra', 'x'],
        ['c-2-1/desc', desc('c', '2-1')],
      ],
      true,
    ),
    'core.db',
  );
  assert.deepEqual(
    db.packages.map((p) => p.desc.name),
    ['b', 'c'],
  );
  assert.deepEqual(db.warnings, ['core.db: unexpected member "b-1-1/extra" skipped', 'core.db: b-1-1/desc: unknown key %FUTURE% skipped']);
});

test('readSyncDb rejects inconsistent databases with the member named', async () => {
  await assert.rejects(readSyncDb(syntheticDb([['a-1-1/desc', desc('a', '1-2')]]), 'core.db'), /core\.db: a-1-1\/desc: entry directory does not match NAME a and VERSION 1-2/);
  await assert.rejects(readSyncDb(syntheticDb([['a-1-1/files', '%FILES%\nx\n']]), 'core.db'), /core\.db: a-1-1\/ has no desc/);
  await assert.rejects(readSyncDb(syntheticDb([['a-1-1/desc', '%NAME%\na\n']]), 'core.db'), /core\.db: a-1-1\/desc: required %FILENAME% is missing/);
  await assert.rejects(readSyncDb(syntheticDb([['a-1-1/desc', desc('a', '1-1')], ['a-2-1/desc', desc('a', '2-1')]]), 'core.db'), /package a appears twice/);
  await assert.rejects(
    readSyncDb(
      (async function* () {
        yield Buffer.from('this is not a database at all, just some text that is long enough to fill a header block'.repeat(8));
      })(),
      'junk.db',
    ),
    /junk\.db: bad header checksum/,
  );
});
