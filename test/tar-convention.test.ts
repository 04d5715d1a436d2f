/**
 * Foreign tar conventions (src/foreign/tar-convention.ts) and the layer/digest levels (src/foreign/layer-reproduction.ts)
 * against the real writers: GNU tar with archlinux-docker's repro flags and without them, umoci repack (Go
 * archive/tar), zstd and gzip as installed. A tree read back from a layer and written in the detected convention
 * must give the layer's bytes exactly.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, linkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { compressToBuffer, getCompressor } from '../src/compress/index.js';
import { UserError } from '../src/errors.js';
import { detectTarConvention, foreignMetadata, writeTarInConvention, type ForeignTarEntry, type TarConvention } from '../src/foreign/tar-convention.js';
import { formatLayerVerdict, reproduceLayer, type LayerVerdict } from '../src/foreign/layer-reproduction.js';
import type { Digest } from '../src/oci/digest.js';
import { compareMemberNames, normalizeMemberPath } from '../src/tar/entry.js';
import { readTar } from '../src/tar/reader.js';
import { writeTar } from '../src/tar/writer.js';
import { makeTempDir, removeDir } from './support/cli.js';

const SDE = 1700000000;
const LONG_DIR = `dir/${'x'.repeat(120)}`;
const LONG_FILE = `${LONG_DIR}/${'y'.repeat(110)}`;
const available = (command: string, args = ['--version']): boolean => spawnSync(command, args).status === 0;
const haveUmoci = available('umoci');
const haveZstd = available('zstd');
const sha = (data: Buffer): Digest => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const oneLine = (err: unknown): boolean => err instanceof UserError && !err.message.includes('\n');

let work: string;
let xattrsSupported = false;

/** A tree with every kind of member and every reason for a long-name or PAX record. */
function makeTree(root: string, extra?: (root: string) => void): void {
  mkdirSync(join(root, LONG_DIR), { recursive: true });
  for (const d of ['bin', 'dir/sub', 'emptydir', 'd']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'dir/a'), 'hello\n');
  writeFileSync(join(root, LONG_FILE), 'long\n');
  writeFileSync(join(root, 'd-x'), 'sorts before d/ as a path, after it per directory\n');
  writeFileSync(join(root, 'd/a'), 'in d\n');
  writeFileSync(join(root, 'bin/su'), '#!/bin/sh\n');
  chmodSync(join(root, 'bin/su'), 0o4755);
  writeFileSync(join(root, 'old'), 'older than SOURCE_DATE_EPOCH, with a fraction\n');
  symlinkSync('a', join(root, 'dir/sym'));
  symlinkSync(LONG_FILE, join(root, 'longlink'));
  linkSync(join(root, 'dir/a'), join(root, 'dir/hard'));
  // Non-ASCII names (ca-certificates' /etc/ssl/certs has UTF-8 ones) and a name that is not UTF-8 at all.
  writeFileSync(join(root, 'café'), 'utf-8 name\n');
  symlinkSync('café', join(root, 'Főtanúsítvány.pem'));
  writeFileSync(Buffer.concat([Buffer.from(`${root}/raw`), Buffer.of(0xe9)]), 'latin-1 name\n');
  symlinkSync(Buffer.concat([Buffer.from('target'), Buffer.of(0xe9)]), join(root, 'rawlink'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  // user.* xattrs in an order that is not sorted: GNU tar keeps the file system's (listxattr) order.
  const py = spawnSync('/usr/bin/python3', ['-c', `import os\nfor k, v in (('user.test', b'v1\\x00x'), ('user.b', b'2'), ('user.a', b'1')): os.setxattr(${JSON.stringify(join(root, 'dir/a'))}, k, v)`]);
  xattrsSupported = py.status === 0;
  extra?.(root);
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', `@${SDE}`, '{}', '+']);
  execFileSync('touch', ['-d', '@1600000000.5', join(root, 'old')]);
}

const REPRO_FLAGS = ['--sort=name', `--mtime=@${SDE}`, '--clamp-mtime', '--pax-option=delete=atime,delete=ctime', '--numeric-owner', '--xattrs', '--acls'];

function gnuTar(root: string, flags: string[]): Buffer {
  return execFileSync('tar', [...flags, '-C', root, '-c', '.'], { maxBuffer: 1 << 30 });
}

/** The tree as the content level hands it over: entries read with src/tar/reader.ts, paths without `./`. */
async function treeOf(tar: Buffer): Promise<ForeignTarEntry[]> {
  const entries: ForeignTarEntry[] = [];
  for await (const read of readTar(Readable.from([tar]))) {
    const chunks: Buffer[] = [];
    for await (const chunk of read.content()) chunks.push(Buffer.from(chunk));
    const path = normalizeMemberPath(read.name);
    if (path === undefined) continue;
    assert.ok(path !== null, read.name);
    const entry: ForeignTarEntry = { path, type: read.type, mode: read.mode, uid: read.uid, gid: read.gid, mtime: read.mtime, size: read.size, ...foreignMetadata(read.pax) };
    if (read.linkTarget !== undefined) entry.linkTarget = read.type === 'hardlink' ? normalizeMemberPath(read.linkTarget)! : read.linkTarget;
    if (read.devMajor !== undefined) Object.assign(entry, { devMajor: read.devMajor, devMinor: read.devMinor });
    if (read.xattrs) entry.xattrs = read.xattrs;
    if (read.uname) entry.uname = read.uname;
    if (read.gname) entry.gname = read.gname;
    const body = Buffer.concat(chunks);
    if (read.type === 'file') entry.open = () => Readable.from([body]);
    entries.push(entry);
  }
  return entries;
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return Buffer.concat(out);
}

async function roundTrip(tar: Buffer): Promise<{ convention: TarConvention; rebuilt: Buffer }> {
  const convention = await detectTarConvention(Readable.from([tar]));
  const rebuilt = await collect(writeTarInConvention(convention, await treeOf(tar)));
  return { convention, rebuilt };
}

function firstDifference(a: Buffer, b: Buffer): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function assertSameBytes(rebuilt: Buffer, original: Buffer): void {
  if (rebuilt.equals(original)) return;
  const at = firstDifference(rebuilt, original);
  assert.fail(`rebuilt differs at byte ${at} (lengths ${rebuilt.length}, ${original.length}): ${JSON.stringify(rebuilt.subarray(at - (at % 512), at - (at % 512) + 160).toString('latin1'))} vs ${JSON.stringify(original.subarray(at - (at % 512), at - (at % 512) + 160).toString('latin1'))}`);
}

function blobOf(data: Buffer): { digest: Digest; size: number; open: () => AsyncIterable<Buffer> } {
  return { digest: sha(data), size: data.length, open: () => Readable.from([data]) };
}

async function reproduce(tree: ForeignTarEntry[], blob: Buffer, tar: Buffer): Promise<LayerVerdict> {
  return reproduceLayer(tree, blobOf(blob), sha(tar));
}

before(async () => {
  work = await makeTempDir('tar-convention');
  makeTree(join(work, 'tree'));
});
after(() => removeDir(work));

describe('GNU tar', () => {
  test("archlinux-docker's repro flags: detected with its flags, written back byte for byte", async () => {
    const tar = gnuTar(join(work, 'tree'), REPRO_FLAGS);
    const { convention, rebuilt } = await roundTrip(tar);
    assert.equal(convention.tool, 'gnu-tar');
    assert.equal(convention.format, 'posix');
    assert.equal(convention.order, 'directory');
    assert.equal(convention.namePrefix, './');
    assert.equal(convention.root?.name, './');
    assert.equal(convention.recordSize, 10240);
    assert.equal(convention.paxHeaderMtime, SDE);
    for (const flag of ['POSIX (pax) format', '--sort=name', '--numeric-owner', 'pax atime/ctime deleted', `--mtime=@${SDE}`]) assert.ok(convention.summary.includes(flag), convention.summary);
    if (xattrsSupported) assert.ok(convention.summary.includes('--xattrs'), convention.summary);
    assert.equal(tar.length % 10240, 0);
    assertSameBytes(rebuilt, tar);
  });

  test('--sort=name alone (gnu format: ././@LongLink, owner names, no PAX) is written back byte for byte', async () => {
    const tar = gnuTar(join(work, 'tree'), ['--sort=name']);
    const { convention, rebuilt } = await roundTrip(tar);
    assert.equal(convention.tool, 'gnu-tar');
    assert.equal(convention.format, 'gnu');
    assert.ok(convention.evidence.some((e) => e.includes('././@LongLink')), convention.evidence.join('; '));
    assert.ok(!convention.summary.includes('--numeric-owner'), convention.summary);
    assertSameBytes(rebuilt, tar);
  });

  test('POSIX format with atime/ctime kept, xattrs and ACL records: written back with the records in GNU order', async () => {
    const tar = gnuTar(join(work, 'tree'), ['--format=posix', '--sort=name', '--xattrs', '--acls']);
    const { convention, rebuilt } = await roundTrip(tar);
    assert.equal(convention.tool, 'gnu-tar');
    assert.ok(convention.summary.includes('pax atime/ctime kept'), convention.summary);
    assert.equal(convention.paxHeaderMtime, 'member');
    assertSameBytes(rebuilt, tar);
  });

  test('zstd --long -T0 -8 of the tar file, as archlinux-docker compresses it: digest identical', { skip: !haveZstd && 'zstd not installed' }, async () => {
    const tar = gnuTar(join(work, 'tree'), REPRO_FLAGS);
    writeFileSync(join(work, 'rootfs.tar'), tar);
    execFileSync('zstd', ['-q', '-f', '--long', '-T0', '-8', join(work, 'rootfs.tar')]);
    const blob = readFileSync(join(work, 'rootfs.tar.zst'));
    const verdict = await reproduce(await treeOf(tar), blob, tar);
    assert.equal(verdict.diffID.verdict, 'identical', formatLayerVerdict(verdict));
    assert.equal(verdict.digest.verdict, 'identical', formatLayerVerdict(verdict));
    assert.match(formatLayerVerdict(verdict), /digest: identical \(zstd CLI v[0-9.]+ -8 /);
  });

  test('a 20 MiB layer piped through zstd --long -T0 -8 (no content size; tried on a prefix first): digest identical', { skip: !haveZstd && 'zstd not installed' }, async () => {
    const root = join(work, 'big');
    makeTree(root, (r) => {
      const lines: string[] = [];
      for (let i = 0; lines.length < 400_000; i++) lines.push(`line ${i} ${(i * 2654435761) % 4294967296}`);
      writeFileSync(join(r, 'bin/big'), `${lines.join('\n')}\n`.repeat(2));
    });
    const tar = gnuTar(root, REPRO_FLAGS);
    assert.ok(tar.length > 17 * 1024 * 1024);
    const blob = execFileSync('zstd', ['-q', '--long', '-T0', '-8', '-c'], { input: tar, maxBuffer: 1 << 30 });
    const verdict = await reproduce(await treeOf(tar), blob, tar);
    assert.equal(verdict.digest.verdict, 'identical', formatLayerVerdict(verdict));
    assert.match(formatLayerVerdict(verdict), /-8 --long=27 -T0\)/);
  });

  test('GNU gzip -9 -n: digest identical', async () => {
    const tar = gnuTar(join(work, 'tree'), REPRO_FLAGS);
    const blob = execFileSync('gzip', ['-9', '-n', '-c'], { input: tar });
    const verdict = await reproduce(await treeOf(tar), blob, tar);
    assert.equal(verdict.digest.verdict, 'identical', formatLayerVerdict(verdict));
    assert.match(formatLayerVerdict(verdict), /GNU gzip [0-9.]+ -9 -n/);
  });
});

describe('umoci (Go archive/tar)', { skip: !haveUmoci && 'umoci not installed' }, () => {
  let layerTar: Buffer;
  let layerBlob: Buffer;

  before(() => {
    const layout = join(work, 'oci');
    const bundle = join(work, 'bundle');
    execFileSync('umoci', ['init', '--layout', layout]);
    execFileSync('umoci', ['new', '--image', `${layout}:t`]);
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${layout}:t`, bundle]);
    execFileSync('cp', ['-a', `${join(work, 'tree')}/.`, join(bundle, 'rootfs')]);
    // A long name that fits the ustar prefix field: Go splits it there when Header.Format is unset.
    mkdirSync(join(bundle, 'rootfs', 'p'.repeat(60)));
    writeFileSync(join(bundle, 'rootfs', 'p'.repeat(60), 'q'.repeat(60)), 'split\n');
    execFileSync('umoci', ['repack', '--image', `${layout}:t`, bundle]);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blobPath = (digest: string): string => join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
    const manifest = JSON.parse(readFileSync(blobPath(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
    layerBlob = readFileSync(blobPath(manifest.layers.at(-1)!.digest));
    layerTar = execFileSync('gzip', ['-dc'], { input: layerBlob, maxBuffer: 1 << 30 });
    assert.ok(readdirSync(join(layout, 'blobs', 'sha256')).length >= 4);
  });

  test('repack layer: detected as Go archive/tar (umoci), written back byte for byte', async () => {
    const { convention, rebuilt } = await roundTrip(layerTar);
    assert.equal(convention.tool, 'go-archive-tar');
    assert.equal(convention.root?.name, '.');
    assert.equal(convention.goUstarPrefix, true);
    assert.equal(convention.order, 'path');
    assert.equal(convention.recordSize, 512);
    assert.match(convention.summary, /umoci/);
    assertSameBytes(rebuilt, layerTar);
  });

  test('its gzip (Go): diffID identical, digest not reproducible, named', async () => {
    const verdict = await reproduce(await treeOf(layerTar), layerBlob, layerTar);
    assert.equal(verdict.diffID.verdict, 'identical');
    assert.equal(verdict.digest.verdict, 'not reproducible');
    assert.match(formatLayerVerdict(verdict), /digest: not reproducible \(Go compress\/gzip: /);
  });
});

describe('repro-oci layers', () => {
  test("its own tar and gzip: detected, digest identical with repro-oci's compressor", async () => {
    const tree = await treeOf(gnuTar(join(work, 'tree'), REPRO_FLAGS));
    const tar = await collect(writeTar([...tree].sort(compareMemberNames)));
    const blob = await compressToBuffer([tar], getCompressor('gzip', 6));
    const verdict = await reproduce(tree, blob, tar);
    assert.equal(verdict.convention.tool, 'repro-oci');
    assert.equal(verdict.diffID.verdict, 'identical', formatLayerVerdict(verdict));
    assert.equal(verdict.digest.verdict, 'identical', formatLayerVerdict(verdict));
    assert.match(formatLayerVerdict(verdict), /repro-oci gzip;impl=node-zlib/);
  });
});

describe('tampered layers', () => {
  test('an extra member in the layer: diffID differs, the member named', async () => {
    const root = join(work, 'extra');
    makeTree(root, (r) => writeFileSync(join(r, 'dir/evil'), 'added\n'));
    const tar = gnuTar(root, REPRO_FLAGS);
    const tree = (await treeOf(tar)).filter((e) => e.path !== 'dir/evil');
    const verdict = await reproduce(tree, tar, tar);
    assert.equal(verdict.diffID.verdict, 'differs');
    assert.deepEqual(verdict.diffID.verdict === 'differs' && [verdict.diffID.first.member, verdict.diffID.first.what], ['dir/evil', 'in the layer, not in the tree']);
    assert.equal(verdict.digest.verdict, 'not reached');
    assert.match(formatLayerVerdict(verdict), /diffID: differs \(first at dir\/evil: in the layer, not in the tree\)/);
  });

  test('a changed PAX record: diffID differs at that member and record', async () => {
    const tar = gnuTar(join(work, 'tree'), REPRO_FLAGS);
    const tree = await treeOf(tar);
    const at = tar.indexOf('mtime=1600000000.5');
    assert.ok(at > 0);
    const tampered = Buffer.from(tar);
    tampered.write('7', at + 'mtime=1600000000.'.length, 'latin1');
    const verdict = await reproduce(tree, tampered, tampered);
    assert.equal(verdict.diffID.verdict, 'differs');
    assert.deepEqual(verdict.diffID.verdict === 'differs' && [verdict.diffID.first.member, verdict.diffID.first.what], ['old', 'PAX record mtime']);
  });

  test('changed content under the same header: named as content', async () => {
    const tar = gnuTar(join(work, 'tree'), REPRO_FLAGS);
    const tree = await treeOf(tar);
    const tampered = Buffer.from(tar);
    const at = tampered.indexOf('#!/bin/sh\n');
    tampered.write('#!/bin/SH\n', at, 'latin1');
    const verdict = await reproduce(tree, tampered, tampered);
    assert.deepEqual(verdict.diffID.verdict === 'differs' && [verdict.diffID.first.member, verdict.diffID.first.what], ['bin/su', 'content']);
  });

  test('a blob that does not match its digest or diffID is refused on one line', async () => {
    const tar = gnuTar(join(work, 'tree'), REPRO_FLAGS);
    const tree = await treeOf(tar);
    await assert.rejects(reproduceLayer(tree, { ...blobOf(tar), digest: sha(Buffer.from('other')) }, sha(tar)), oneLine);
    await assert.rejects(reproduceLayer(tree, blobOf(tar), sha(Buffer.from('other'))), (err) => oneLine(err) && /not its diffID/.test((err as Error).message));
  });
});

/** A header block with a correct checksum, for building hostile archives. */
function header(name: string, typeflag: string, size: number, fill?: (block: Buffer) => void): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 'latin1');
  block.write('0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  block.write('00000000000\0', 136, 'latin1');
  block.write(typeflag, 156, 'latin1');
  block.write('ustar\x0000', 257, 'latin1');
  fill?.(block);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}
const pad = (data: Buffer): Buffer => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
const paxHeader = (records: string): Buffer => Buffer.concat([header('PaxHeaders/x', 'x', records.length), pad(Buffer.from(records))]);
const END = Buffer.alloc(1024);

describe('hostile layers: one-line errors', () => {
  const refuses = async (tar: Buffer, pattern: RegExp): Promise<void> => {
    await assert.rejects(detectTarConvention(Readable.from([tar])), (err) => oneLine(err) && pattern.test((err as Error).message));
  };

  test('a bad header checksum', async () => {
    const tar = Buffer.concat([header('a', '0', 0), END]);
    tar[0] = 0x62;
    await refuses(tar, /bad header checksum at byte 0/);
  });

  test('endless PAX headers before a member', async () => {
    const many = Array.from({ length: 50 }, () => paxHeader('11 a=bcdef\n'));
    await refuses(Buffer.concat([...many, header('a', '0', 0), END]), /metadata headers in a row/);
  });

  test('a PAX header declaring gigabytes, and an absurd PAX size', async () => {
    await refuses(Buffer.concat([header('PaxHeaders/x', 'x', 2 ** 33), END]), /exceeds the 1048576-byte limit/);
    await refuses(Buffer.concat([paxHeader('30 size=999999999999999999999\n'), header('a', '0', 0), END]), /bad PAX size/);
    await refuses(Buffer.concat([paxHeader('99999 path=a\n'), header('a', '0', 0), END]), /malformed PAX record/);
  });

  test('truncated content, data after the end blocks, a root member that is not first', async () => {
    await refuses(Buffer.concat([header('a', '0', 4096), Buffer.alloc(1000, 0x61)]), /truncated/);
    await refuses(Buffer.concat([header('a', '0', 0), END, Buffer.from('trailing garbage')]), /data after the end-of-archive blocks/);
    await refuses(Buffer.concat([header('a', '0', 0), header('./', '5', 0), END]), /root directory member/);
  });

  test('an archive no known tool wrote cannot be written again, and says why', async () => {
    const convention = await detectTarConvention(Readable.from([Buffer.concat([paxHeader('11 a=bcdef\n'), header('a', '0', 0), END])]));
    assert.equal(convention.tool, 'unknown');
    await assert.rejects(collect(writeTarInConvention(convention, [])), (err) => oneLine(err) && /unknown tool/.test((err as Error).message));
    const tar = Buffer.concat([paxHeader('11 a=bcdef\n'), header('a', '0', 0), END]);
    const verdict = await reproduce([], tar, tar);
    assert.equal(verdict.diffID.verdict, 'unknown writer');
    assert.match(formatLayerVerdict(verdict), /diffID: not compared \(unknown tar writer: .*PAX headers named otherwise/);
  });
});
