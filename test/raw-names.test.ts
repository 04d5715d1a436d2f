import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { chmod, lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { repoFiles, repoPackageFromFile } from '../src/example/repo-writer.js';
import { runSetupCommands } from '../src/setup/sandbox.js';
import { installPackages, type TreeNode } from '../src/install/installer.js';
import { compareMemberNames, type TarSourceEntry } from '../src/tar/entry.js';
import { readTar } from '../src/tar/reader.js';
import { writeTar } from '../src/tar/writer.js';
import { byteOrder } from '../src/util/order.js';
import { Spool } from '../src/util/spool.js';
import { compareNames, decodeName, displayName, encodeName } from '../src/util/raw-name.js';
import { makeTempDir, removeDir, runCli, runCliOk, runOk } from './support/cli.js';
import { buildWithMakepkg, makepkgUnavailable, makeRepoWithRepoAdd } from './support/makepkg.js';

/**
 * Finding 11 of issue 9: names that are not UTF-8 keep their bytes end to end — tar reader, tree, installer,
 * pacman's local database, the layer, `install --root`, `build --rootfs` and `diff` — as pacman keeps them.
 */

const SDE = 1_700_000_000;
const raw = (...parts: (string | number[] | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

// ---------------------------------------------------------------------------------------------------------------
// The name codec

test('decodeName/encodeName: every byte string round-trips, and valid UTF-8 decodes as UTF-8', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      assert.deepEqual(encodeName(decodeName(bytes)), Buffer.from(bytes));
    }),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 32 }), (text) => {
      assert.equal(decodeName(Buffer.from(text, 'utf8')), text);
      assert.deepEqual(encodeName(text), Buffer.from(text, 'utf8'));
    }),
    { numRuns: 2000 },
  );
  // Different bytes never share a name: \xff and \xfe, or caf\xe9 and café.
  assert.notEqual(decodeName(raw([0xff])), decodeName(raw([0xfe])));
  assert.notEqual(decodeName(raw('caf', [0xe9])), 'café');
  // Encoded surrogates, overlong forms and code points above U+10FFFF are not UTF-8: kept as bytes.
  for (const bad of [[0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
    assert.deepEqual(encodeName(decodeName(raw(bad))), raw(bad));
    assert.equal(decodeName(raw(bad)).length, bad.length, `${JSON.stringify(bad)}: one escape per byte`);
  }
});

test('names sort by their raw bytes (byteOrder, compareMemberNames)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 }), (a, b) => {
      const expected = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const [x, y] = [decodeName(a), decodeName(b)];
      assert.equal(Math.sign(byteOrder(x, y)), expected);
      assert.equal(Math.sign(compareNames(x, y)), expected);
      assert.equal(Math.sign(compareMemberNames({ path: x, type: 'file' }, { path: y, type: 'file' })), expected);
    }),
    { numRuns: 5000 },
  );
  const names = [raw([0xff]), raw([0xfe]), raw('caf', [0xe9]), raw('café'), raw('cafe')].map(decodeName);
  assert.deepEqual(names.sort(byteOrder).map((n) => encodeName(n).toString('hex')), ['63616665', '636166c3a9', '636166e9', 'fe', 'ff']);
});

test('displayName: printable UTF-8 as it is, anything else quoted with escapes', () => {
  assert.equal(displayName('usr/share/café'), 'usr/share/café');
  assert.equal(displayName(decodeName(raw('usr/caf', [0xe9]))), '"usr/caf\\xe9"');
  assert.equal(displayName(decodeName(raw('a\\', [0xff], '"\n'))), '"a\\\\\\xff\\"\\n"');
  assert.equal(displayName('"quoted"'), '"\\"quoted\\""');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 16 }), (a, b) => {
      if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) assert.notEqual(displayName(decodeName(a)), displayName(decodeName(b)));
    }),
    { numRuns: 3000 },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// tar writer → reader

/** A member name or link target: any bytes but NUL, not starting or ending with `/`. */
const memberBytes = fc.uint8Array({ minLength: 1, maxLength: 300 }).filter((b) => !b.includes(0) && b[0] !== 0x2f && b[b.length - 1] !== 0x2f);

/** An extended attribute name: any bytes but NUL and `=` (which ends a PAX key). */
const xattrBytes = fc.uint8Array({ minLength: 1, maxLength: 40 }).filter((b) => !b.includes(0) && !b.includes(0x3d));

test('tar: arbitrary byte names, link targets and xattr names round-trip exactly through writer → reader', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(memberBytes, { minLength: 1, maxLength: 8, comparator: (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0 }), fc.array(memberBytes, { minLength: 8, maxLength: 8 }), xattrBytes, async (names, targets, xattr) => {
      const entries: TarSourceEntry[] = names.map((bytes, i) => {
        const base = { path: decodeName(bytes), mode: 0o644, uid: 0, gid: 0, mtime: SDE, size: 0 };
        return i % 2 === 0 ? { ...base, type: 'file', xattrs: { [decodeName(xattr)]: raw('v') } } : { ...base, type: 'symlink', mode: 0o777, linkTarget: decodeName(targets[i]!) };
      });
      entries.sort(compareMemberNames);
      const archive = await collect(writeTar(entries));
      const shape = (e: TarSourceEntry): { name: Buffer; link?: Buffer; xattrs?: string[] } => ({
        name: encodeName(e.path),
        ...(e.linkTarget !== undefined ? { link: encodeName(e.linkTarget) } : {}),
        ...(e.xattrs ? { xattrs: Object.keys(e.xattrs).map((k) => encodeName(k).toString('hex')) } : {}),
      });
      const read: ReturnType<typeof shape>[] = [];
      for await (const entry of readTar(once(archive))) read.push(shape({ ...entry, path: entry.name }));
      const expected = entries.map(shape);
      assert.deepEqual(read, expected);
    }),
    { numRuns: 1000 },
  );
});

test('tar: a name that is not UTF-8 stays raw in ustar when it fits, else a PAX path with hdrcharset=BINARY', async () => {
  const header = (path: Buffer): TarSourceEntry => ({ path: decodeName(path), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: SDE, size: 0 });
  const short = await collect(writeTar([header(raw('usr/caf', [0xe9]))]));
  assert.deepEqual(short.subarray(0, 9), raw('usr/caf', [0xe9], [0]), 'raw bytes in the ustar name field');
  assert.ok(!short.includes(raw('path=')), 'no PAX header');
  const longName = raw('usr/', 'x'.repeat(100), [0xe9]);
  const long = await collect(writeTar([header(longName)]));
  assert.ok(long.includes(raw('21 hdrcharset=BINARY\n')), 'hdrcharset record');
  assert.ok(long.includes(raw('115 path=', longName, '\n')), 'raw path record');
  // UTF-8 names stay plain PAX path records.
  const utf8 = await collect(writeTar([header(raw('usr/café'))]));
  assert.ok(utf8.includes(raw('18 path=usr/café\n')) && !utf8.includes(raw('hdrcharset')));
});

// ---------------------------------------------------------------------------------------------------------------
// Reference extractors and a real package

interface RawNode {
  type: 'file' | 'dir' | 'symlink' | 'other';
  sha256?: string;
  link?: string;
  ino?: number;
}

/** Every path under `root` by its raw bytes (hex), with what it is; nothing decoded through a locale. */
async function scanRaw(root: string, under = ''): Promise<Map<string, RawNode>> {
  const out = new Map<string, RawNode>();
  const rootBytes = Buffer.from(root);
  const walk = async (rel: Buffer): Promise<void> => {
    const dir = rel.length ? Buffer.concat([rootBytes, raw('/'), rel]) : rootBytes;
    for (const name of await readdir(dir, { encoding: 'buffer' })) {
      const path = rel.length ? Buffer.concat([rel, raw('/'), name]) : name;
      const full = Buffer.concat([rootBytes, raw('/'), path]);
      const st = await lstat(full);
      const node: RawNode = { type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other' };
      if (node.type === 'file') node.sha256 = createHash('sha256').update(await readFile(full)).digest('hex');
      if (node.type === 'symlink') node.link = (await readlink(full, { encoding: 'buffer' })).toString('hex');
      const key = path.toString('hex');
      if (path.toString('latin1').startsWith(under)) out.set(key, node);
      if (node.type === 'dir') await walk(path);
    }
  };
  await walk(Buffer.alloc(0));
  return out;
}

function hexPaths(...names: Buffer[]): string[] {
  return names.map((n) => n.toString('hex')).sort();
}

/** The raw names the tests use: three that are not UTF-8, one that is, a long one, a symlink and a hardlink. */
const CAFE = raw('usr/share/raw/caf', [0xe9]);
const FF = raw('usr/share/raw/', [0xff]);
const FE = raw('usr/share/raw/', [0xfe]);
const UTF8 = raw('usr/share/raw/café');
const DIR = raw('usr/share/raw/dir', [0xc3]);
const LONG = raw('usr/share/raw/dir', [0xc3], '/', 'long-'.repeat(25), [0xe9]);
const LINK = raw('usr/share/raw/link', [0xe9]);
const HARD = raw('usr/share/raw/', [0xfe], '-hard');
const EXPECTED = hexPaths(raw('usr/share/raw'), CAFE, FF, FE, UTF8, DIR, LONG, LINK, HARD);

// (UTF-8 names are left out here: bsdtar in the C locale cannot convert a UTF-8 PAX path to ASCII and exits 1,
// though it extracts the right bytes; the package test below extracts them in C.UTF-8.)
test('layer: GNU tar and bsdtar extract raw names, link targets and hardlinks byte for byte', async (t) => {
  const dir = await makeTempDir('raw-names-layer');
  try {
    const file = (path: Buffer, content: string): TarSourceEntry => ({ path: decodeName(path), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: SDE, size: content.length, open: () => once(Buffer.from(content)) as never });
    const entries: TarSourceEntry[] = [
      ...['usr', 'usr/share', 'usr/share/raw'].map((path) => ({ path, type: 'dir' as const, mode: 0o755, uid: 0, gid: 0, mtime: SDE, size: 0 })),
      { path: decodeName(DIR), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: SDE, size: 0 },
      file(CAFE, 'cafe'),
      file(FF, 'ff'),
      file(FE, 'fe'),
      file(LONG, 'long'),
      { path: decodeName(LINK), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: SDE, size: 0, linkTarget: decodeName(raw('caf', [0xe9])) },
      { path: decodeName(HARD), type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: SDE, size: 0, linkTarget: decodeName(FE) },
    ];
    entries.sort(compareMemberNames);
    const layer = join(dir, 'layer.tar');
    await writeFile(layer, await collect(writeTar(entries)));
    for (const [tool, locale] of [['tar', 'C'], ['tar', 'C.UTF-8'], ['bsdtar', 'C'], ['bsdtar', 'C.UTF-8']] as const) {
      const out = join(dir, `${tool}-${locale}`);
      await mkdir(out);
      const r = await runOk(tool, ['-xf', layer, '-C', out], { env: { LC_ALL: locale } });
      // GNU tar 1.34 does not know hdrcharset (the long name's record): it says so and extracts the raw name.
      const warnings = r.stderr.split('\n').filter((l) => l !== '' && l !== "tar: Ignoring unknown extended header keyword 'hdrcharset'");
      assert.deepEqual(warnings, [], `${tool} (${locale}) extracts without other warnings`);
      const tree = await scanRaw(out);
      assert.deepEqual([...tree.keys()].filter((k) => k.startsWith(raw('usr/share/raw').toString('hex'))).sort(), EXPECTED.filter((k) => k !== UTF8.toString('hex')), `${tool} (${locale}) names`);
      assert.equal(tree.get(LINK.toString('hex'))?.link, raw('caf', [0xe9]).toString('hex'), `${tool} (${locale}) symlink target`);
      assert.equal(tree.get(HARD.toString('hex'))?.sha256, tree.get(FE.toString('hex'))?.sha256);
      const ino = async (p: Buffer): Promise<number> => (await lstat(Buffer.concat([Buffer.from(out), raw('/'), p]))).ino;
      assert.equal(await ino(HARD), await ino(FE), `${tool} (${locale}) hardlink`);
    }
  } finally {
    await removeDir(dir);
  }
  t.diagnostic('GNU tar and bsdtar, in the C and C.UTF-8 locales');
});

const PACKAGE_BODY = `  mkdir -p "$pkgdir"/usr/share/raw/$'dir\\xc3'
  printf cafe > "$pkgdir"/usr/share/raw/$'caf\\xe9'
  printf ff > "$pkgdir"/usr/share/raw/$'\\xff'
  printf fe > "$pkgdir"/usr/share/raw/$'\\xfe'
  printf utf8 > "$pkgdir"/usr/share/raw/café
  printf skip > "$pkgdir"/usr/share/raw/$'skip\\xe9'
  printf long > "$pkgdir"/usr/share/raw/$'dir\\xc3'/${'long-'.repeat(25)}$'\\xe9'
  ln -s $'caf\\xe9' "$pkgdir"/usr/share/raw/$'link\\xe9'
  ln "$pkgdir"/usr/share/raw/$'\\xfe' "$pkgdir"/usr/share/raw/$'\\xfe'-hard
`;
const NOEXTRACT = 'usr/share/raw/skip*';
const PKGDB = 'var/lib/pacman/local/rawnames-1-1';

test('a makepkg package with names that are not UTF-8: pacman -U, install --root and the layer agree byte for byte', { timeout: 180_000 }, async (t) => {
  const why = makepkgUnavailable() ?? (existsSync('/usr/bin/pacman') ? undefined : '/usr/bin/pacman is not installed');
  if (why) {
    t.skip(why);
    return;
  }
  const dir = await makeTempDir('raw-names-pkg');
  try {
    await chmod(dir, 0o755);
    // A backup entry and a description that are not UTF-8 either: .PKGINFO holds their bytes, and so does the database.
    const spec = { workDir: join(dir, 'build'), pkgname: 'rawnames', pkgver: '1', pkgrel: 1, files: PACKAGE_BODY, backup: [decodeName(CAFE)], pkgdesc: decodeName(raw('Caf', [0xe9], ' names')) };
    const pkg = (await buildWithMakepkg(spec, SDE))!;
    const bytes = await readFile(pkg);
    const sha256 = createHash('sha256').update(bytes).digest('hex');

    // Real pacman (its database directory must exist, as pacstrap makes it).
    const pacmanRoot = join(dir, 'pacman-root');
    await mkdir(join(pacmanRoot, 'var/lib/pacman'), { recursive: true });
    const conf = join(dir, 'pacman.conf');
    await writeFile(conf, `[options]\nArchitecture = x86_64\nSigLevel = Never\nNoExtract = ${NOEXTRACT}\n`);
    await runOk('pacman', ['-U', '--noconfirm', '--root', pacmanRoot, '--dbpath', join(pacmanRoot, 'var/lib/pacman'), '--config', conf, '--cachedir', join(dir, 'cache'), '--logfile', '/dev/null', '--noscriptlet', '--hookdir', join(dir, 'hooks'), pkg], { env: { LC_ALL: 'C' } });
    const pacmanTree = await scanRaw(pacmanRoot, 'usr/share/raw');
    assert.deepEqual([...pacmanTree.keys()].sort(), EXPECTED, 'pacman kept the raw names and left out the NoExtract one');
    const pacmanFiles = await readFile(join(pacmanRoot, PKGDB, 'files'));
    assert.ok(pacmanFiles.includes(CAFE) && pacmanFiles.includes(FF) && pacmanFiles.includes(FE), 'pacman lists the raw names');

    // repro-oci install --root, from a lock naming the same package file.
    const lockPath = join(dir, 'lock.json');
    const lock = {
      lockVersion: 1,
      specDigest: `sha256:${'0'.repeat(64)}`,
      architecture: 'x86_64',
      repositories: [{ name: 'raw', servers: [], database: `sha256:${'0'.repeat(64)}` }],
      targets: ['rawnames'],
      sigLevel: 'Never',
      packages: [{ name: 'rawnames', version: '1-1', arch: 'any', repository: 'raw', filename: basename(pkg), urls: [`file://${pkg}`], sha256, csize: bytes.length, isize: 0, builddate: SDE, reason: 'explicit' }],
    };
    await writeFile(lockPath, JSON.stringify(lock));
    const ourRoot = join(dir, 'our-root');
    await runCliOk(['install', lockPath, '--root', ourRoot, '--cache', join(dir, 'repro-cache'), '--source-date-epoch', String(SDE), '--noextract', NOEXTRACT]);
    assert.deepEqual(await scanRaw(ourRoot, 'usr/share/raw'), pacmanTree, 'install --root: same raw names, contents and link targets as pacman');
    assert.deepEqual(await readFile(join(ourRoot, PKGDB, 'files')), pacmanFiles, "the local database's files entry is pacman's, byte for byte");
    assert.ok(pacmanFiles.includes(raw('%BACKUP%\n', CAFE, '\t')), 'the backup entry is listed with its md5');
    const descBlock = (desc: Buffer): Buffer => desc.subarray(desc.indexOf(raw('%DESC%\n')), desc.indexOf(raw('\n\n'), desc.indexOf(raw('%DESC%\n'))));
    const pacmanDesc = await readFile(join(pacmanRoot, PKGDB, 'desc'));
    assert.deepEqual(descBlock(pacmanDesc), raw('%DESC%\nCaf', [0xe9], ' names'));
    assert.deepEqual(descBlock(await readFile(join(ourRoot, PKGDB, 'desc'))), descBlock(pacmanDesc), '%DESC% keeps its bytes');
    const ls = await runCliOk(['ls', lockPath, '--cache', join(dir, 'repro-cache'), '--source-date-epoch', String(SDE), '--noextract', NOEXTRACT]);
    assert.match(ls.stdout, /^-rw-r--r-- 0\/0 +4 "\/usr\/share\/raw\/caf\\xe9" {2}\[rawnames\]$/m, ls.stdout);
    assert.match(ls.stdout, /^l.* "\/usr\/share\/raw\/link\\xe9" -> "caf\\xe9" {2}\[rawnames\]$/m);
    assert.match(ls.stdout, / \/usr\/share\/raw\/café {2}\[rawnames\]$/m);
    assert.ok(!ls.stdout.includes('\ufffd'), 'no replacement characters');

    // repo-add's files database lists the names as bsdtar -tf prints them: bytes that are not UTF-8 as \ooo in
    // any locale (UTF-8 text too in the C locale repo-add runs in here, so café is left out of the comparison).
    const repoDir = join(dir, 'repo');
    await mkdir(repoDir);
    await writeFile(join(repoDir, basename(pkg)), bytes);
    const repo = await makeRepoWithRepoAdd(repoDir, 'raw', [basename(pkg)]);
    if (repo) {
      const listed = (await runOk('tar', ['-xzOf', repo.files, 'rawnames-1-1/files'])).stdout.split('\n').filter((l) => !l.endsWith('caf\\303\\251'));
      const ours = repoFiles(await repoPackageFromFile(basename(pkg), bytes)).split('\n').filter((l) => !l.endsWith('café'));
      assert.deepEqual(ours, listed, 'repoFiles matches repo-add');
      assert.ok(ours.includes('usr/share/raw/caf\\351'));
    }

    // The layer made from the same install, extracted by GNU tar and bsdtar.
    const tree = await installPackages([{ name: 'rawnames', version: '1-1', file: pkg, sha256, reason: 'explicit', validation: ['sha256'] }], { sourceDateEpoch: SDE, noExtract: [NOEXTRACT] });
    const layer = join(dir, 'layer.tar');
    try {
      await writeFile(layer, await collect(writeTar(tree.entries)));
    } finally {
      await tree.cleanup();
    }
    for (const tool of ['tar', 'bsdtar']) {
      const out = join(dir, `x-${tool}`);
      await mkdir(out);
      await runOk(tool, ['-xf', layer, '-C', out], { env: { LC_ALL: 'C.UTF-8' } });
      assert.deepEqual(await scanRaw(out, 'usr/share/raw'), pacmanTree, `${tool} extracts the layer to pacman's raw names`);
      assert.deepEqual(await readFile(join(out, PKGDB, 'files')), pacmanFiles, `${tool}: the layer's files entry`);
    }
  } finally {
    await removeDir(dir);
  }
});

test('build --rootfs keeps raw names from a directory, and diff prints them escaped', { timeout: 120_000 }, async () => {
  const dir = await makeTempDir('raw-names-diff');
  try {
    const makeRoot = async (name: string, content: string): Promise<string> => {
      const root = join(dir, name);
      await mkdir(join(root, 'srv'), { recursive: true });
      await writeFile(Buffer.concat([Buffer.from(root), raw('/srv/caf', [0xe9])]), content);
      await writeFile(Buffer.concat([Buffer.from(root), raw('/srv/', [0xff])]), `${content} ff`);
      await writeFile(Buffer.concat([Buffer.from(root), raw('/srv/', [0xfe])]), `${content} fe`);
      return root;
    };
    const env = { SOURCE_DATE_EPOCH: String(SDE) };
    const built = await runCliOk(['build', '--rootfs', await makeRoot('a', 'one'), '-o', `oci:${join(dir, 'img-a')}`], { env });
    // The same tree as a tarball, written by GNU tar (raw ustar names) or bsdtar (PAX, hdrcharset=BINARY), gives the same image.
    await runOk('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', join(dir, 'a'), '-cf', join(dir, 'gnu.tar'), '.']);
    await runOk('bsdtar', ['--numeric-owner', '--uid', '0', '--gid', '0', '--format', 'pax', '-C', join(dir, 'a'), '-cf', join(dir, 'bsd.tar'), '.'], { env: { LC_ALL: 'C' } });
    for (const tarball of ['gnu.tar', 'bsd.tar']) {
      const fromTar = await runCliOk(['build', '--rootfs', join(dir, tarball), '-o', `oci:${join(dir, `img-${tarball}`)}`], { env });
      assert.equal(fromTar.stdout, built.stdout, `${tarball} gives the directory's image`);
    }
    await runCliOk(['build', '--rootfs', await makeRoot('b', 'two'), '-o', `oci:${join(dir, 'img-b')}`], { env });
    // The layer holds the raw names.
    const index = JSON.parse(await readFile(join(dir, 'img-a', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blob = (d: string): string => join(dir, 'img-a', 'blobs', ...d.split(':'));
    const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
    const out = join(dir, 'x');
    await mkdir(out);
    await runOk('tar', ['-xf', blob(manifest.layers[0]!.digest), '-C', out], { env: { LC_ALL: 'C' } });
    assert.deepEqual([...(await scanRaw(out, 'srv/')).keys()].sort(), hexPaths(raw('srv/caf', [0xe9]), raw('srv/', [0xff]), raw('srv/', [0xfe])));

    const report = join(dir, 'report');
    const diff = await runCli(['diff', `oci:${join(dir, 'img-a')}`, `oci:${join(dir, 'img-b')}`, '--report-dir', report]);
    assert.equal(diff.code, 1, diff.stderr);
    assert.match(diff.stdout, /"\/srv\/caf\\xe9": size|"\/srv\/caf\\xe9": sha256/, diff.stdout);
    assert.ok(!diff.stdout.includes('\ufffd'), 'no replacement characters in the report');
    // The report dir holds each side's file under its raw name: \xff and \xfe stay two files.
    for (const [side, content] of [['a', 'one'], ['b', 'two']] as const) {
      for (const byte of [0xff, 0xfe]) {
        const file = Buffer.concat([Buffer.from(join(report, side)), raw('/srv/', [byte])]);
        assert.equal(await readFile(file, 'utf8'), `${content} ${byte.toString(16)}`, `report ${side}: the \\x${byte.toString(16)} file`);
      }
    }
  } finally {
    await removeDir(dir);
  }
});

test('.MTREE checks reach names that are not UTF-8 (a lying size is refused, named unambiguously)', async () => {
  const dir = await makeTempDir('raw-names-mtree');
  try {
    const member = (path: string, content: Buffer | string, type: 'file' | 'dir' = 'file'): TarSourceEntry => {
      const bytes = Buffer.from(content);
      return { path, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: SDE, size: type === 'file' ? bytes.length : 0, open: () => once(bytes) as never };
    };
    // bsdtar's mtree writes every byte outside printable ASCII as \ooo.
    const mtree = gzipSync(`#mtree\n/set type=file uid=0 gid=0 mode=644\n./usr/caf\\351 time=${SDE}.0 size=999\n./usr/\\377 time=${SDE}.0 size=2\n`);
    const pkginfo = `pkgname = liar\npkgver = 1-1\nsize = 1\n`;
    const entries = [member('.MTREE', mtree), member('.PKGINFO', pkginfo), member('usr', '', 'dir'), member(decodeName(raw('usr/caf', [0xe9])), 'short'), member(decodeName(raw('usr/', [0xff])), 'ff')];
    const file = join(dir, 'liar.pkg.tar');
    await writeFile(file, await collect(writeTar(entries.sort(compareMemberNames))));
    await assert.rejects(installPackages([{ name: 'liar', version: '1-1', file, reason: 'explicit', validation: ['none'], isize: 100 }], { sourceDateEpoch: SDE }), (err: Error) => {
      assert.equal(err.name, 'UserError');
      assert.equal(err.message, 'package liar: "usr/caf\\xe9": 5 bytes, but .MTREE says 999');
      return true;
    });
  } finally {
    await removeDir(dir);
  }
});

test('setup commands see and make raw names; the tree model keeps them', { skip: !(existsSync('/bin/busybox') && existsSync('/usr/bin/bwrap')) && 'needs /bin/busybox and bwrap' }, async () => {
  const dir = await makeTempDir('raw-names-setup');
  const spool = new Spool(join(dir, 'spool'));
  try {
    const node = (path: string, type: TreeNode['type'], extra: Partial<TreeNode> = {}): [string, TreeNode] => [path, { path, type, mode: type === 'file' ? 0o755 : type === 'dir' ? 0o755 : 0o777, uid: 0, gid: 0, mtime: SDE, size: 0, owner: 'test', ...extra }];
    const content = (bytes: Buffer): Partial<TreeNode> => ({ size: bytes.length, open: () => once(bytes) as never });
    const busybox = await readFile('/bin/busybox');
    const nodes = new Map<string, TreeNode>([
      node('usr', 'dir'),
      node('usr/bin', 'dir'),
      node('usr/bin/busybox', 'file', content(busybox)),
      node('usr/bin/sh', 'symlink', { linkTarget: 'busybox' }),
      node('srv', 'dir'),
      node(decodeName(raw('srv/caf', [0xe9])), 'file', content(raw('cafe'))),
      node(decodeName(raw('srv/', [0xff])), 'file', content(raw('ff'))),
      node(decodeName(raw('srv/', [0xfe])), 'file', content(raw('fe'))),
    ]);
    const made = decodeName(raw('srv/n', [0xe9]));
    const result = await runSetupCommands(nodes, [['sh', '-c', 'printf new > "/srv/$(printf "n\\351")"; printf ff2 > "/srv/$(printf "\\377")"']], SDE, [], spool);
    assert.deepEqual(result.removed, []);
    const changedInSrv = result.changed.filter((p) => p.startsWith('srv/'));
    assert.deepEqual(changedInSrv.map((p) => encodeName(p).toString('hex')).sort(), hexPaths(raw('srv/n', [0xe9]), raw('srv/', [0xff])));
    assert.equal((await collect((await nodes.get(made)!.open!()) as AsyncIterable<Buffer>)).toString(), 'new');
    assert.equal((await collect((await nodes.get(decodeName(raw('srv/', [0xff])))!.open!()) as AsyncIterable<Buffer>)).toString(), 'ff2');
    assert.ok(nodes.has(decodeName(raw('srv/', [0xfe]))) && nodes.has(decodeName(raw('srv/caf', [0xe9]))));
  } finally {
    spool.close();
    await removeDir(dir);
  }
});
