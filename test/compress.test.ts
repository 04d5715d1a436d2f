import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { compressToBuffer, createDecompressor, decompressAuto, getCompressor } from '../src/compress/index.js';
import type { Compression } from '../src/oci/mediatypes.js';
import { sha256 } from '../src/oci/digest.js';

/** 1 MiB of mixed, compressible, seeded data: text lines and pseudo-random bytes. */
function sample(): Buffer {
  const parts: Buffer[] = [];
  let x = 12345;
  for (let i = 0; i < 4096; i++) {
    parts.push(Buffer.from(`line ${i} of the golden sample ${i % 7 === 0 ? 'with a twist' : ''}\n`));
    const noise = Buffer.alloc(64);
    for (let j = 0; j < noise.length; j++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      noise[j] = x & 0xff;
    }
    parts.push(noise);
  }
  return Buffer.concat(parts).subarray(0, 1 << 20);
}

async function compress(compression: Compression, data: Buffer, chunkSize: number, level?: number, parallel = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
  return compressToBuffer(chunks, getCompressor(compression, level, parallel));
}

// Pinned outputs: a dependency or Node upgrade that changes compressed bytes must fail here, loudly, because
// it changes the digest of every image built afterwards. Update only together with the compressor identity.
const GOLDEN: Record<string, string> = {
  'gzip-6': 'sha256:6c47660ff88557c52e536d153df98a3b176e47d1442b3289897b0d13c227dd55',
  'gzip-9': 'sha256:86ed5854619a720a64f7cb092054710e3f2d08d2b43207fefae49ef83a0be5fd',
  'zstd-3': 'sha256:454d2336d6050e8bf60dc188bcb4f1f924bf9180095a8717981713efa7fea2e4',
  'zstd-19': 'sha256:fdcd87f8908d06f22286aec3fc92703a2e5b6d2c7d357a410c6572dfec0a8a76',
};

for (const [name, golden] of Object.entries(GOLDEN)) {
  const [compression, level] = name.split('-') as [Compression, string];
  test(`${name}: output is pinned and independent of input chunking`, async () => {
    const data = sample();
    const a = await compress(compression, data, 65536, Number(level));
    const b = await compress(compression, data, 1000, Number(level));
    assert.equal(sha256(a), sha256(b), 'chunking changed the output');
    assert.equal(sha256(a), golden);
  });
}

test('compressor identities name implementation, version and parameters', () => {
  assert.match(getCompressor('gzip').identity, /^gzip;impl=node-zlib\/[0-9][^;]*;level=6$/);
  assert.match(getCompressor('zstd', 5).identity, /^zstd;impl=zstd-napi\/[0-9.]+;libzstd=1\.[0-9.]+;level=5;checksum=1;workers=0$/);
  assert.equal(getCompressor('none').identity, 'none');
  assert.throws(() => getCompressor('gzip', 12), /out of range/);
});

test('gzip and zstd output is read by the reference CLIs', async () => {
  const data = sample();
  assert.ok(execFileSync('gzip', ['-dc'], { input: await compress('gzip', data, 4096) }).equals(data));
  assert.ok(execFileSync('zstd', ['-dcq'], { input: await compress('zstd', data, 4096) }).equals(data));
  // The gzip header is fixed: no name, mtime 0, XFL 0, OS 255.
  assert.ok((await compress('gzip', data, 4096)).subarray(0, 10).equals(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])));
});

async function drain(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of source) out.push(c);
  return Buffer.concat(out);
}

test('decompressAuto detects gzip, zstd and plain input', async () => {
  const data = sample();
  for (const c of ['none', 'gzip', 'zstd'] as const) {
    const packed = await compress(c, data, 8192);
    assert.ok((await drain(decompressAuto(Readable.from([packed]), c))).equals(data), c);
  }
});

test('truncated or corrupt compressed streams are errors, not short data', async () => {
  const data = sample();
  for (const c of ['gzip', 'zstd'] as const) {
    const packed = await compress(c, data, 8192);
    await assert.rejects(drain(decompressAuto(Readable.from([packed.subarray(0, packed.length - 100)]), `t-${c}`)), new RegExp(`t-${c}: corrupt or truncated ${c}`));
    const corrupt = Buffer.from(packed);
    corrupt.fill(0x55, 2000, 2100);
    await assert.rejects(drain(decompressAuto(Readable.from([corrupt]), `c-${c}`)), new RegExp(`c-${c}: corrupt or truncated ${c}`));
  }
  assert.ok(createDecompressor('none'));
});

test('xz input (old .pkg.tar.xz packages) is read through xz, and a cut stream is an error', async () => {
  const data = sample();
  const packed = execFileSync('xz', ['-c', '-6'], { input: data, maxBuffer: 1 << 26 });
  assert.ok((await drain(decompressAuto(Readable.from([packed]), 'xz'))).equals(data));
  await assert.rejects(drain(decompressAuto(Readable.from([packed.subarray(0, packed.length - 30)]), 'cut')), /cut: corrupt or truncated xz stream/);
});

// Parallel gzip: pinned too, and independent of chunking; lengths around the 1 MiB block size. A single block
// is exactly the classic stream (its golden equals gzip-6's above).
const PARALLEL_GOLDEN: Record<string, string> = {
  'one block exactly': 'sha256:6c47660ff88557c52e536d153df98a3b176e47d1442b3289897b0d13c227dd55',
  'three and a half blocks': 'sha256:48ecfb027e83060ea2adfa686bc81639320d538e0cf38b66eb36397b9e5c9aa5',
  'under one block': 'sha256:7912593ec5c26bf2a15eb3f983a5b4c9481ba144f08efc8c174c930ea8a0642b',
};

function parallelInput(name: string): Buffer {
  const one = sample();
  if (name === 'one block exactly') return one;
  if (name === 'under one block') return one.subarray(0, 100000);
  return Buffer.concat([one, one.subarray(7), one, one.subarray(0, 1 << 19)]);
}

for (const [name, golden] of Object.entries(PARALLEL_GOLDEN)) {
  test(`parallel gzip (${name}): pinned, independent of chunking, read by GNU gzip`, async () => {
    const data = parallelInput(name);
    const a = await compress('gzip', data, 65536, 6, true);
    const b = await compress('gzip', data, 9999, 6, true);
    const c = await compress('gzip', data, 1 << 20, 6, true); // whole blocks, as the tar writer hands them over
    assert.equal(sha256(a), sha256(b), 'chunking changed the output');
    assert.equal(sha256(a), sha256(c), 'block-sized chunks changed the output');
    assert.ok(execFileSync('gzip', ['-dc'], { input: a, maxBuffer: 1 << 26 }).equals(data));
    assert.equal(sha256(a), golden);
  });
}

test('parallel gzip names its block size in its identity', () => {
  assert.match(getCompressor('gzip', 6, true).identity, /^gzip;impl=node-zlib\/[^;]+;level=6;blocks=1048576$/);
});
