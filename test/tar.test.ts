import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, lstatSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { sha256 } from '../src/oci/digest.js';
import type { TarSourceEntry } from '../src/tar/entry.js';
import { readTar, type ReadEntry } from '../src/tar/reader.js';
import { writeTar } from '../src/tar/writer.js';
import { Spool } from '../src/util/spool.js';

function file(path: string, content: string, extra: Partial<TarSourceEntry> = {}): TarSourceEntry {
  const bytes = Buffer.from(content);
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: bytes.length, open: () => Readable.from([bytes]), ...extra };
}
function dir(path: string, extra: Partial<TarSourceEntry> = {}): TarSourceEntry {
  return { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1700000000, size: 0, ...extra };
}

const longName = `deep/${'x'.repeat(120)}/file.txt`;
/** Every entry type and every reason for a PAX header, in member-name byte order. */
function corpus(): TarSourceEntry[] {
  return [
    dir('bin'),
    file('bin/setuid', '#!/bin/sh\n', { mode: 0o4755 }),
    { path: 'bin/sh', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1700000000, size: 0, linkTarget: 'busybox' },
    file('bin/tool', 'tool', { uid: 3000000, gid: 3000001, xattrs: { 'security.capability': Buffer.from('0100000200040000000000000000000000000000', 'hex'), 'user.a': Buffer.from('b') } }),
    { path: 'bin/tool2', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: 0, linkTarget: 'bin/tool' },
    dir('café'),
    file('café/日本.txt', 'unicode\n'),
    dir('deep'),
    dir(`deep/${'x'.repeat(120)}`),
    file(longName, 'long\n'),
    dir('dev'),
    { path: 'dev/null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 1700000000, size: 0, devMajor: 1, devMinor: 3 },
    { path: 'dev/sda', type: 'block', mode: 0o660, uid: 0, gid: 6, mtime: 1700000000, size: 0, devMajor: 8, devMinor: 0 },
    { path: 'fifo', type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtime: 1700000000, size: 0 },
    dir('tmp', { mode: 0o1777 }),
    file('tmp/future', 'clamped', { mtime: 4000000000 }),
  ];
}

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of gen) parts.push(chunk);
  return Buffer.concat(parts);
}

// Changing this digest means every layer we ever built changes: only with a documented format decision.
const GOLDEN_CORPUS_TAR = 'sha256:af20f995313dfd77c53e6404594c009390ee46c4240372e6ed3cb09ac9c2aa61';

test('tar writer output is pinned (golden digest)', async () => {
  const tar = await collect(writeTar(corpus(), { clampMtime: 1800000000 }));
  assert.equal(tar.length % 512, 0);
  assert.equal(sha256(tar), GOLDEN_CORPUS_TAR);
});

test('spooled contents (positional reads) give the same archive; chunks are exactly the chunk size', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'repro-oci-spool-'));
  const spool = new Spool(join(dir, 'contents'));
  t.after(() => {
    spool.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const spooled: TarSourceEntry[] = [];
  for (const entry of corpus()) {
    if (entry.type !== 'file') {
      spooled.push(entry);
      continue;
    }
    // Contents of several files back to back, each appended in pieces, as the installer spools them.
    const bytes = Buffer.concat([Buffer.from('garbage before'), await collect(await entry.open!())]);
    const offset = spool.append(bytes.subarray(0, 3)) + 14;
    spool.append(bytes.subarray(3));
    spooled.push({ ...entry, open: spool.opener(offset, entry.size) });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of writeTar(spooled, { clampMtime: 1800000000, chunkSize: 1536 })) chunks.push(chunk);
  assert.equal(sha256(Buffer.concat(chunks)), GOLDEN_CORPUS_TAR);
  assert.ok(chunks.slice(0, -1).every((c) => c.length === 1536), 'every chunk but the last has the chunk size');
  // A spooled range that ends early is an error, not a shorter archive.
  const short = { ...file('a', 'abc'), size: 1 << 20, open: spool.opener(0, 1 << 20) };
  await assert.rejects(collect(writeTar([short])), /content is \d+ bytes, declared 1048576/);
});

test('tar writer output round-trips through our reader', async () => {
  const tar = await collect(writeTar(corpus(), { clampMtime: 1800000000 }));
  const seen: (ReadEntry & { content?: string })[] = [];
  for await (const entry of readTar(Readable.from([tar]))) {
    const content = entry.type === 'file' ? (await collect(entry.content())).toString() : '';
    seen.push(Object.assign(entry, { content }));
  }
  const expected = corpus();
  assert.deepEqual(seen.map((e) => e.path), expected.map((e) => e.path));
  for (const [i, want] of expected.entries()) {
    const got = seen[i]!;
    assert.equal(got.type, want.type, want.path);
    assert.equal(got.mode, want.mode, want.path);
    assert.equal(got.uid, want.uid, want.path);
    assert.equal(got.gid, want.gid, want.path);
    assert.equal(got.mtime, Math.min(want.mtime, 1800000000), want.path);
    assert.equal(got.linkTarget, want.linkTarget, want.path);
    assert.equal(got.devMajor, want.devMajor, want.path);
    assert.deepEqual(got.xattrs, want.xattrs, want.path);
  }
  assert.equal(seen.find((e) => e.path === longName)?.content, 'long\n');
  assert.equal(seen.find((e) => e.path === 'café/日本.txt')?.content, 'unicode\n');
});

test('GNU tar and bsdtar read our archives identically to what we wrote', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'tar-test-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const tarPath = join(work, 'a.tar');
  writeFileSync(tarPath, await collect(writeTar(corpus().filter((e) => e.type !== 'char' && e.type !== 'block'))));
  const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', tarPath], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  assert.match(listing, /^-rwsr-xr-x 0\/0 +10 2023-11-14 22:13:20 bin\/setuid$/m);
  assert.match(listing, /^-rw-r--r-- 3000000\/3000001 +4 .* bin\/tool$/m);
  assert.match(listing, /^hrw-r--r-- 0\/0 +0 .* bin\/tool2 link to bin\/tool$/m);
  assert.match(listing, /^drwxrwxrwt 0\/0 +0 .* tmp\/$/m);
  assert.ok(listing.includes(longName), 'long name');
  const out = join(work, 'x');
  execFileSync('mkdir', [out]);
  execFileSync('bsdtar', ['--no-xattrs', '-xpf', tarPath, '-C', out]);
  assert.equal(readFileSync(join(out, longName), 'utf8'), 'long\n');
  assert.equal(readFileSync(join(out, 'café/日本.txt'), 'utf8'), 'unicode\n');
  assert.equal(readlinkSync(join(out, 'bin/sh')), 'busybox');
  assert.equal(lstatSync(join(out, 'bin/tool2')).ino, lstatSync(join(out, 'bin/tool')).ino);
  assert.equal(lstatSync(join(out, 'tmp')).mode & 0o7777, 0o1777);
  assert.ok(lstatSync(join(out, 'fifo')).isFIFO());
});

test('tar writer refuses unsorted or duplicate entries', async () => {
  await assert.rejects(collect(writeTar([file('b', 'x'), file('a', 'y')])), /not after/);
  await assert.rejects(collect(writeTar([file('a', 'x'), file('a', 'y')])), /not after/);
});

test('tar writer refuses content that lies about its size', async () => {
  const liar = { ...file('a', 'abc'), size: 5 };
  await assert.rejects(collect(writeTar([liar])), /content is 3 bytes, declared 5/);
  const longer = { ...file('a', 'abcdef'), size: 2 };
  await assert.rejects(collect(writeTar([longer])), /longer than its declared size/);
});

test('tar reader reports truncation and garbage clearly', async () => {
  const tar = await collect(writeTar([file('a', 'x'.repeat(2000))]));
  await assert.rejects(async () => {
    for await (const e of readTar(Readable.from([tar.subarray(0, 1024)]))) await collect(e.content());
  }, /truncated content/);
  await assert.rejects(async () => {
    for await (const e of readTar(Readable.from([Buffer.alloc(512, 0x41)]))) void e;
  }, /bad header checksum/);
});

test('tar reader reads GNU tar output (long names via GNU records)', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'tar-gnu-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const name = 'n'.repeat(150);
  writeFileSync(join(work, name), 'gnu');
  const tar = execFileSync('tar', ['--format=gnu', '-C', work, '-cf', '-', name]);
  const entries = [];
  for await (const e of readTar(Readable.from([tar]))) entries.push({ path: e.path, content: (await collect(e.content())).toString() });
  assert.deepEqual(entries, [{ path: name, content: 'gnu' }]);
});
