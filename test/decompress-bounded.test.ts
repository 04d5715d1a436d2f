import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { compressToBuffer, decompressAuto, getCompressor } from '../src/compress/index.js';
import { DigestMismatchError } from '../src/errors.js';
import { sha256, verifiedStream } from '../src/oci/digest.js';
import { readTar } from '../src/tar/reader.js';
import { peakRss, plainTar, zstdFrame, zstdTar, type BombMember } from './support/bombs.js';
import { tempDirFor } from './support/cli.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Reads a whole stream, sampling the memory held in buffers (garbage not yet collected included, hence the
 * margin below: unbounded decompression holds the whole gibibyte at once); returns the bytes seen and the peak.
 */
async function consumeSampling(source: AsyncIterable<Buffer>): Promise<{ bytes: number; peakBuffers: number }> {
  let bytes = 0;
  let peakBuffers = 0;
  let chunks = 0;
  for await (const chunk of source) {
    bytes += chunk.length;
    if (chunks++ % 256 === 0) peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers);
  }
  return { bytes, peakBuffers };
}

test('a zstd bomb decompresses in bounded memory: output is made as fast as it is read', async (t) => {
  const bomb = zstdFrame([{ zeros: GiB }]);
  assert.ok(bomb.length < 64 * 1024, `${bomb.length} bytes on disk`);
  const { bytes, peakBuffers } = await consumeSampling(decompressAuto(Readable.from([bomb]), 'bomb'));
  assert.equal(bytes, GiB);
  t.diagnostic(`peak ${Math.round(peakBuffers / MiB)} MiB held in buffers`);
  assert.ok(peakBuffers < 256 * MiB, `peak ${Math.round(peakBuffers / MiB)} MiB held in buffers`);
});

test('a gzip bomb decompresses in bounded memory', async (t) => {
  const zeros = Buffer.alloc(MiB);
  const bomb = await compressToBuffer((function* () {
    for (let i = 0; i < 256; i++) yield zeros;
  })(), getCompressor('gzip', 1));
  const { bytes, peakBuffers } = await consumeSampling(decompressAuto(Readable.from([bomb]), 'bomb'));
  assert.equal(bytes, 256 * MiB);
  t.diagnostic(`peak ${Math.round(peakBuffers / MiB)} MiB held in buffers`);
  assert.ok(peakBuffers < 128 * MiB, `peak ${Math.round(peakBuffers / MiB)} MiB held in buffers`);
});

/** Incompressible bytes, so that a compressed blob is larger than any stream buffer between source and reader. */
const NOISE = randomBytes(2 * MiB);

/** A blob whose start is the honest one's but whose tail differs (the first member is the same). */
async function forgedTail(compression: 'zstd' | 'gzip' | 'none'): Promise<{ honest: Buffer; forged: Buffer }> {
  const members = (last: string): BombMember[] => [{ path: 'a/recipe.json', content: '{"x":1}' }, { path: 'm/middle', content: NOISE }, { path: 'z/last', content: last }];
  if (compression === 'zstd') return { honest: zstdTar(members('honest')), forged: zstdTar(members('forged')) };
  const [honest, forged] = [plainTar(members('honest')), plainTar(members('forged'))];
  if (compression === 'none') return { honest, forged };
  return { honest: await compressToBuffer([honest], getCompressor('gzip')), forged: await compressToBuffer([forged], getCompressor('gzip')) };
}

for (const compression of ['zstd', 'gzip', 'none'] as const) {
  test(`a ${compression} reader that stops early still gets the verifier's verdict on the whole blob`, async () => {
    const { honest, forged } = await forgedTail(compression);
    // Small chunks, as a file or a network delivers them: the verifier has not seen the tail when the reader stops.
    const chunked = (bytes: Buffer): Buffer[] => Array.from({ length: Math.ceil(bytes.length / 1024) }, (_, i) => bytes.subarray(i * 1024, i * 1024 + 1024));
    const open = (): Readable => verifiedStream(Readable.from(chunked(forged)), sha256(honest), undefined, 'blob X');
    // Stops at the first entry, as the recipe reader does.
    await assert.rejects(async () => {
      for await (const entry of readTar(decompressAuto(open(), 'layer'))) {
        assert.equal(entry.name, 'a/recipe.json');
        break;
      }
    }, (err: Error) => err instanceof DigestMismatchError && /blob X: content has digest/.test(err.message));
    // Reads to the end of the archive: the tar reader stops at its end blocks, the blob is still checked.
    await assert.rejects(async () => {
      for await (const entry of readTar(decompressAuto(open(), 'layer'))) void entry;
    }, DigestMismatchError);
    // The honest blob passes both ways.
    for await (const entry of readTar(decompressAuto(verifiedStream(Readable.from([honest]), sha256(honest), undefined, 'blob X'), 'layer'))) void entry;
  });
}

test('installing a zstd bomb package stays under 300 MB of memory until it is refused', async (t) => {
  const work = await tempDirFor(t, 'bomb-install');
  const pkginfo = 'pkgname = bomb\npkgver = 1-1\npkgdesc = zeros\nurl = https://example.invalid\nbuilddate = 1700000000\npackager = test\nsize = 1000\narch = any\n';
  const pkg = zstdTar([{ path: '.PKGINFO', content: pkginfo }, { path: 'usr', type: 'dir' }, { path: 'usr/bin', type: 'dir' }, { path: 'usr/bin/zeros', zeros: 4 * GiB }]);
  writeFileSync(join(work, 'bomb-1-1-any.pkg.tar.zst'), pkg);
  const lock = {
    architecture: 'x86_64',
    lockVersion: 1,
    packages: [{ arch: 'any', builddate: 1700000000, csize: pkg.length, filename: 'bomb-1-1-any.pkg.tar.zst', isize: 1000, name: 'bomb', reason: 'explicit', repository: 'core', sha256: sha256(pkg).slice(7), urls: ['bomb-1-1-any.pkg.tar.zst'], version: '1-1' }],
    repositories: [{ database: sha256('none'), name: 'core', servers: ['.'] }],
    sigLevel: 'Never',
    specDigest: sha256('spec'),
    targets: ['bomb'],
  };
  writeFileSync(join(work, 'bomb.lock.json'), JSON.stringify(lock));
  const result = await peakRss(['install', join(work, 'bomb.lock.json'), '--root', join(work, 'root'), '--cache', join(work, 'cache')]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /package bomb: usr\/bin\/zeros: contents exceed the declared installed size/);
  t.diagnostic(`peak RSS ${result.peakRssMb} MB`);
  assert.ok(result.peakRssMb < 300, `peak RSS ${result.peakRssMb} MB`);
});
