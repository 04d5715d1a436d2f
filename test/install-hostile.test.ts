import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compressToBuffer, getCompressor } from '../src/compress/index.js';
import { installPackages, type PackageToInstall } from '../src/install/installer.js';
import type { TarSourceEntry } from '../src/tar/entry.js';
import { encodeHeader } from '../src/tar/writer.js';
import { tempDirFor } from './support/cli.js';

/** A member as a hostile package would carry it: any path, any order, sizes as declared. */
interface RawMember {
  path: string;
  type?: TarSourceEntry['type'];
  content?: string | Buffer;
  /** Declared size when it should differ from the content. */
  size?: number;
  linkTarget?: string;
  mode?: number;
  devMajor?: number;
}

function pkginfo(name: string, version = '1-1', extra = ''): RawMember {
  return { path: '.PKGINFO', content: `pkgname = ${name}\npkgver = ${version}\nsize = 1000\n${extra}` };
}

/** Raw tar bytes built header by header, bypassing the writer's own checks (hostile input must be expressible). */
function rawTar(members: RawMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const content = Buffer.from(m.content ?? '');
    const type = m.type ?? 'file';
    const size = m.size ?? (type === 'file' ? content.length : 0);
    const entry: TarSourceEntry = { path: m.path, type, mode: m.mode ?? (type === 'dir' ? 0o755 : 0o644), uid: 0, gid: 0, mtime: 1700000000, size };
    if (m.linkTarget !== undefined) entry.linkTarget = m.linkTarget;
    if (m.devMajor !== undefined) entry.devMajor = m.devMajor;
    parts.push(encodeHeader(entry));
    if (type === 'file') {
      parts.push(content);
      const written = content.length;
      parts.push(Buffer.alloc((512 - (written % 512)) % 512));
    }
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function zstd(data: Buffer): Promise<Buffer> {
  return compressToBuffer([data], getCompressor('zstd'));
}

async function writePackage(dir: string, name: string, members: RawMember[], opts: { version?: string; isize?: number; raw?: Buffer } = {}): Promise<PackageToInstall> {
  const file = join(dir, `${name}.pkg.tar.zst`);
  writeFileSync(file, opts.raw ?? (await zstd(rawTar(members))));
  return { name, version: opts.version ?? '1-1', file, reason: 'explicit', validation: ['sha256'], isize: opts.isize ?? 1000 };
}

const DIRS: RawMember[] = [
  { path: 'etc', type: 'dir' },
  { path: 'usr', type: 'dir' },
  { path: 'usr/bin', type: 'dir' },
];

/** Runs an install expected to fail and checks the error; the scratch space must be gone afterwards. */
async function expectRefused(t: { after: (fn: () => Promise<void>) => void }, packages: (dir: string) => Promise<PackageToInstall[]>, message: RegExp, options: Partial<Parameters<typeof installPackages>[1]> = {}): Promise<void> {
  const dir = await tempDirFor(t, 'hostile');
  const pkgs = await packages(dir);
  // The installer's scratch space goes into a temp dir of this test's own (other test files run at the same time
  // and install too), which must be empty again afterwards.
  const scratch = join(dir, 'tmp');
  mkdirSync(scratch);
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = scratch;
  try {
    await assert.rejects(installPackages(pkgs, { sourceDateEpoch: 0, ...options }), (err: Error) => {
      assert.equal(err.name, 'UserError', `a clear user error, not ${err.stack}`);
      assert.match(err.message, message);
      return true;
    });
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  }
  assert.deepEqual(readdirSync(scratch), [], 'scratch space removed');
}

test('hostile: ../ component', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'evil', [pkginfo('evil'), ...DIRS, { path: 'usr/../../etc/passwd', content: 'x' }])], /package evil: "usr\/\.\.\/\.\.\/etc\/passwd": absolute path or "\.\." component/);
});

test('hostile: absolute path', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'evil', [pkginfo('evil'), { path: '/etc/shadow', content: 'x' }])], /package evil: "\/etc\/shadow": absolute path/);
});

test('hostile: symlink followed by a write through it (same package)', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'evil', [pkginfo('evil'), ...DIRS, { path: 'usr/lib', type: 'symlink', linkTarget: '/etc' }, { path: 'usr/lib/cron.d', content: 'x' }])], /package evil: usr\/lib\/cron\.d: would be written through the symlink usr\/lib → \/etc \(owned by evil\)/);
});

test('hostile: symlink from one package, write through it from the next', async (t) => {
  await expectRefused(
    t,
    async (d) => [
      await writePackage(d, 'first', [pkginfo('first'), ...DIRS, { path: 'usr/share', type: 'symlink', linkTarget: '../../../../tmp' }]),
      await writePackage(d, 'second', [pkginfo('second'), { path: 'usr', type: 'dir' }, { path: 'usr/share/x', content: 'x' }]),
    ],
    /package second: usr\/share\/x: would be written through the symlink usr\/share → \.\.\/\.\.\/\.\.\/\.\.\/tmp \(owned by first\)/,
  );
});

test('hostile: hardlink to a path outside the tree', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'evil', [pkginfo('evil'), ...DIRS, { path: 'usr/bin/pw', type: 'hardlink', linkTarget: '../../etc/passwd' }])], /package evil: usr\/bin\/pw: hardlink to "\.\.\/\.\.\/etc\/passwd" points outside the tree/);
});

test('hostile: hardlink to a path not installed yet', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'evil', [pkginfo('evil'), ...DIRS, { path: 'usr/bin/a', type: 'hardlink', linkTarget: 'usr/bin/b' }, { path: 'usr/bin/b', content: 'b' }])], /package evil: usr\/bin\/a: hardlink to usr\/bin\/b, which this package has not installed before it/);
});

test('hostile: hardlink into another package\'s file', async (t) => {
  await expectRefused(
    t,
    async (d) => [
      await writePackage(d, 'first', [pkginfo('first'), ...DIRS, { path: 'etc/shadow', content: 'secret' }]),
      await writePackage(d, 'second', [pkginfo('second'), { path: 'etc', type: 'dir' }, { path: 'etc/copy', type: 'hardlink', linkTarget: 'etc/shadow' }]),
    ],
    /package second: etc\/copy: hardlink to etc\/shadow, which this package has not installed before it/,
  );
});

test('hostile: device node where devices are not allowed', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'evil', [pkginfo('evil'), { path: 'dev', type: 'dir' }, { path: 'dev/sda', type: 'block', devMajor: 8 }])], /package evil: dev\/sda: block device nodes are not allowed/);
});

test('hostile: a file where another package has a directory', async (t) => {
  await expectRefused(
    t,
    async (d) => [
      await writePackage(d, 'first', [pkginfo('first'), ...DIRS, { path: 'usr/lib', type: 'dir' }]),
      await writePackage(d, 'second', [pkginfo('second'), { path: 'usr', type: 'dir' }, { path: 'usr/lib', content: 'x' }]),
    ],
    /package second: usr\/lib: is a file here but a directory in first/,
  );
});

test('hostile: a directory where another package has a file', async (t) => {
  await expectRefused(
    t,
    async (d) => [
      await writePackage(d, 'first', [pkginfo('first'), ...DIRS, { path: 'usr/lib', content: 'x' }]),
      await writePackage(d, 'second', [pkginfo('second'), { path: 'usr', type: 'dir' }, { path: 'usr/lib', type: 'dir' }]),
    ],
    /package second: usr\/lib: is a directory here but a file in first/,
  );
});

test('file conflict between packages names both and the path', async (t) => {
  await expectRefused(
    t,
    async (d) => [
      await writePackage(d, 'first', [pkginfo('first'), ...DIRS, { path: 'usr/bin/tool', content: 'a' }]),
      await writePackage(d, 'second', [pkginfo('second'), ...DIRS, { path: 'usr/bin/tool', content: 'b' }]),
    ],
    /file conflict: \/usr\/bin\/tool exists in both 'first' and 'second'/,
  );
});

test('hostile: sizes that lie (.MTREE disagrees with the content)', async (t) => {
  const { gzipSync } = await import('node:zlib');
  const mtree = gzipSync('#mtree\n/set type=file uid=0 gid=0 mode=644\n./usr/bin/tool time=1700000000.0 size=999 sha256digest=' + '0'.repeat(64) + '\n');
  await expectRefused(t, async (d) => [await writePackage(d, 'liar', [{ path: '.MTREE', content: mtree }, pkginfo('liar'), ...DIRS, { path: 'usr/bin/tool', content: 'short' }])], /package liar: usr\/bin\/tool: 5 bytes, but \.MTREE says 999/);
});

test('hostile: a tar header that declares more content than there is', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'liar', [pkginfo('liar'), ...DIRS, { path: 'usr/bin/tool', content: 'short', size: 100000 }])], /package liar.*truncated/);
});

test('hostile: truncated zstd stream', async (t) => {
  await expectRefused(
    t,
    async (d) => {
      const full = await zstd(rawTar([pkginfo('cut'), ...DIRS, { path: 'usr/bin/tool', content: Buffer.alloc(200000, 7) }]));
      return [await writePackage(d, 'cut', [], { raw: full.subarray(0, full.length - 40) })];
    },
    /package cut: corrupt or truncated zstd stream/,
  );
});

test('hostile: corrupt zstd stream', async (t) => {
  await expectRefused(
    t,
    async (d) => {
      const full = Buffer.from(await zstd(rawTar([pkginfo('bad'), ...DIRS, { path: 'usr/bin/tool', content: Buffer.from('x'.repeat(5000)) }])));
      full.fill(0xaa, 20, 60);
      return [await writePackage(d, 'bad', [], { raw: full })];
    },
    /package bad: (corrupt or truncated zstd stream|.*checksum)/,
  );
});

test('hostile: decompression bomb beyond the declared installed size', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'bomb', [pkginfo('bomb'), ...DIRS, { path: 'usr/bin/zeros', content: Buffer.alloc(20 * 1024 * 1024) }], { isize: 1000 })], /package bomb: usr\/bin\/zeros: contents exceed the declared installed size of 1000 bytes/);
});

test('hostile: decompression bomb beyond the configured limit', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'bomb', [pkginfo('bomb'), ...DIRS, { path: 'usr/bin/zeros', content: Buffer.alloc(3 * 1024 * 1024) }], { isize: 100 * 1024 * 1024 })], /contents exceed the configured limit of 1048576 bytes/, { maxInstalledBytes: 1024 * 1024 });
});

test('hostile: .PKGINFO names another package than the lock', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'glibc', [pkginfo('backdoor', '9-9'), ...DIRS])], /package glibc: \.PKGINFO names backdoor 9-9, but the lock expects glibc 1-1/);
});

test('hostile: the same path twice in one package', async (t) => {
  await expectRefused(t, async (d) => [await writePackage(d, 'dup', [pkginfo('dup'), ...DIRS, { path: 'etc/a', content: '1' }, { path: 'etc/a', content: '2' }])], /package dup: etc\/a: appears twice in the package/);
});

test('a well-formed package installs, with NoExtract, shared directories and a local database entry', async (t) => {
  const dir = await tempDirFor(t, 'benign');
  const warnings: string[] = [];
  const tree = await installPackages(
    [
      await writePackage(dir, 'one', [pkginfo('one', '1-1', 'backup = etc/one.conf\n'), ...DIRS, { path: 'etc/one.conf', content: 'a=1\n' }, { path: 'usr/bin/one', content: '#!/bin/sh\n', mode: 0o755 }, { path: 'usr/bin/one-link', type: 'hardlink', linkTarget: 'usr/bin/one' }]),
      await writePackage(dir, 'two', [pkginfo('two'), { path: 'etc', type: 'dir', mode: 0o700 }, { path: 'usr', type: 'dir' }, { path: 'usr/share', type: 'dir' }, { path: 'usr/share/doc', type: 'dir' }, { path: 'usr/share/doc/README', content: 'doc' }]),
    ],
    { sourceDateEpoch: 1700000000, noExtract: ['usr/share/doc/*'], warn: (m) => warnings.push(m) },
  );
  t.after(() => tree.cleanup());
  const paths = tree.entries.map((e) => `${e.type === 'dir' ? 'd' : e.type[0]} ${e.path} ${e.owner}`);
  assert.ok(paths.includes('f etc/one.conf one'));
  assert.ok(paths.includes('h usr/bin/one-link one'));
  assert.ok(!paths.some((p) => p.includes('README')), 'NoExtract honoured');
  assert.ok(paths.includes('f var/lib/pacman/local/one-1-1/desc '));
  assert.ok(warnings.some((w) => w.startsWith('directory permissions differ on /etc')));
  assert.equal(tree.entries.find((e) => e.path === 'etc')!.mode, 0o755, 'first package wins a shared directory');
  const files = tree.entries.find((e) => e.path === 'var/lib/pacman/local/one-1-1/files')!;
  const chunks: Buffer[] = [];
  for await (const c of await files.open!()) chunks.push(c as Buffer);
  const md5 = createHash('md5').update('a=1\n').digest('hex');
  assert.equal(Buffer.concat(chunks).toString(), `%FILES%\netc/\netc/one.conf\nusr/\nusr/bin/\nusr/bin/one\nusr/bin/one-link\n\n%BACKUP%\netc/one.conf\t${md5}\n\n`);
});
