import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { compressToBuffer, decompressAuto, getCompressor } from '../src/compress/index.js';
import { MAX_ID, type EntryType } from '../src/tar/entry.js';
import { readTar } from '../src/tar/reader.js';
import { encodeHeader } from '../src/tar/writer.js';
import { fuzzParameters, hostileText, parsesOrRefusesAsync } from './support/fuzz.js';

const BLOCK = 512;

interface Member {
  path: string;
  type: EntryType;
  content: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkTarget: string;
  xattrs: Record<string, Buffer>;
}

/** Members the writer accepts: long, non-ASCII and odd names (PAX records), big ids and times, xattrs. */
const member: fc.Arbitrary<Member> = fc.record({
  path: fc.oneof(fc.stringMatching(/^[a-z0-9._-]{1,20}(\/[a-z0-9._-]{1,20}){0,3}$/), hostileText(150)).filter((p) => p !== '' && !p.startsWith('/') && !p.endsWith('/')),
  type: fc.constantFrom<EntryType>('file', 'file', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo'),
  content: fc.uint8Array({ maxLength: 1200 }).map((b) => Buffer.from(b)),
  mode: fc.integer({ min: 0, max: 0o7777 }),
  // Valid archives: ids up to 2^32-1 (the reader refuses more, as GNU tar does; the mutations go beyond).
  uid: fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.integer({ min: 0, max: MAX_ID })),
  gid: fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.integer({ min: 0, max: MAX_ID })),
  mtime: fc.oneof(fc.integer({ min: 0, max: 2 ** 33 }), fc.integer({ min: -(2 ** 40), max: 2 ** 40 })),
  linkTarget: fc.oneof(fc.constant('target'), hostileText(120)).filter((t) => t !== ''),
  xattrs: fc.dictionary(fc.stringMatching(/^user\.[a-z]{1,8}$/), fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b)), { maxKeys: 2 }),
});

/** A valid archive of `members`, and where each header block (PAX or ustar) starts. */
function archive(members: readonly Member[]): { bytes: Buffer; headers: number[] } {
  const parts: Buffer[] = [];
  const headers: number[] = [];
  let offset = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    offset += b.length;
  };
  for (const m of members) {
    const size = m.type === 'file' ? m.content.length : 0;
    const header = encodeHeader({ path: m.path, type: m.type, mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, size, linkTarget: m.linkTarget, xattrs: m.xattrs, devMajor: 1, devMinor: 3 });
    // Every 512-byte block of the header that carries a checksum is a header block (PAX header, then ustar).
    for (let at = 0; at < header.length; at += BLOCK) if (header.subarray(at + 257, at + 262).toString('latin1') === 'ustar') headers.push(offset + at);
    push(header);
    if (size > 0) push(Buffer.concat([m.content, Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK)]));
  }
  push(Buffer.alloc(2 * BLOCK));
  return { bytes: Buffer.concat(parts), headers };
}

/** Writes a header block's checksum as tar does, so that a mutated header reaches the parser's other checks. */
function fixChecksum(bytes: Buffer, at: number): void {
  if (at + BLOCK > bytes.length) return;
  bytes.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + BLOCK; i++) sum += bytes[i]!;
  bytes.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
}

/** Header fields: offset and width. */
const FIELDS = [
  [0, 100], // name
  [100, 8], // mode
  [108, 8], // uid
  [116, 8], // gid
  [124, 12], // size
  [136, 12], // mtime
  [156, 1], // typeflag
  [157, 100], // linkname
  [257, 8], // magic, version
  [265, 32], // uname
  [297, 32], // gname
  [329, 8], // devmajor
  [337, 8], // devminor
  [345, 155], // prefix
] as const;

/** Values that numeric and text fields get wrong most often. */
const fieldValue = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => Buffer.from(b)),
  fc.constantFrom('77777777777', '7777777', '-1', ' 12 ', '0x10', '', '\0', '8', '99999999999', '1e3', 'NaN').map((s) => Buffer.from(s, 'latin1')),
  // GNU base-256: the high bit set, then big-endian bytes (huge, negative, or just past 2^53).
  fc.uint8Array({ minLength: 11, maxLength: 11 }).map((b) => Buffer.concat([Buffer.from([0x80]), Buffer.from(b)])),
  fc.constantFrom(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0x80, 0, 0, 0, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
  fc.constantFrom('x', 'g', 'L', 'K', '1', '2', '3', '5', '7', 'S', 'V', 'D').map((s) => Buffer.from(s)),
);

const PAX_KEYS = ['path', 'linkpath', 'size', 'uid', 'gid', 'mtime', 'uname', 'gname', 'SCHILY.xattr.user.a', 'atime', 'GNU.sparse.size', 'hdrcharset', ''];
const PAX_VALUES = ['0', '-1', '1.5', '1e400', 'Infinity', 'NaN', '9007199254740993', '18446744073709551616', '', ' ', '0x10', '-1e300', '1e-300', '99999999999999999999999'];

/** A PAX record, well-formed or not: `LEN key=value\n` with a right or wrong length. */
const paxRecord = fc
  .record({
    key: fc.oneof(fc.constantFrom(...PAX_KEYS), hostileText(10)),
    value: fc.oneof(fc.constantFrom(...PAX_VALUES), hostileText(30)),
    lengthError: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 5 }) }),
    raw: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: hostileText(20) }),
  })
  .map(({ key, value, lengthError, raw }) => {
    if (raw !== undefined) return Buffer.from(raw, 'utf8');
    const body = Buffer.from(` ${key}=${value}\n`, 'utf8');
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return Buffer.concat([Buffer.from(String(len + lengthError)), body]);
  });

/** A PAX header (`x` or `g`) with the given records, checksummed, to insert before a member. */
function paxHeader(records: Buffer[], typeflag: string): Buffer {
  const data = Buffer.concat(records);
  const header = encodeHeader({ path: 'PaxHeaders/x', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: data.length });
  header.write(typeflag, 156, 'latin1');
  fixChecksum(header, 0);
  return Buffer.concat([header, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

type Mutation =
  | { kind: 'field'; header: number; field: number; value: Buffer; checksum: boolean }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'pax'; before: number; records: Buffer[]; global: boolean };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('field' as const), header: fc.nat(), field: fc.nat(FIELDS.length - 1), value: fieldValue, checksum: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.nat(255) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('pax' as const), before: fc.nat(), records: fc.array(paxRecord, { minLength: 1, maxLength: 4 }), global: fc.boolean() }) },
);

function mutate(valid: { bytes: Buffer; headers: number[] }, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(valid.bytes);
  let headers = [...valid.headers];
  for (const m of mutations) {
    if (m.kind === 'field' && headers.length > 0) {
      const at = headers[m.header % headers.length]!;
      const [offset, width] = FIELDS[m.field]!;
      if (at + offset + width > bytes.length) continue;
      bytes.fill(0, at + offset, at + offset + width);
      m.value.copy(bytes, at + offset, 0, Math.min(width, m.value.length));
      if (m.checksum) fixChecksum(bytes, at);
    } else if (m.kind === 'byte' && bytes.length > 0) {
      bytes[m.at % bytes.length] = m.value;
    } else if (m.kind === 'truncate') {
      bytes = bytes.subarray(0, m.at % (bytes.length + 1));
    } else if (m.kind === 'pax') {
      const at = headers.length > 0 ? headers[m.before % headers.length]! : 0;
      const inserted = paxHeader(m.records, m.global ? 'g' : 'x');
      bytes = Buffer.concat([bytes.subarray(0, at), inserted, bytes.subarray(at)]);
      headers = [...headers.filter((h) => h < at), at, ...headers.filter((h) => h >= at).map((h) => h + inserted.length)];
    }
  }
  return bytes;
}

/** Feeds `bytes` in chunks of the given sizes (cycled), as a stream would. */
async function* chunked(bytes: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes.length > 0 ? sizes[i % sizes.length]! : bytes.length;
    yield bytes.subarray(at, at + n);
    at += n;
  }
}

/** Reads every entry; reads the content of those `readContent` picks (the others are skipped by the reader). */
async function readAll(bytes: Buffer, sizes: readonly number[], readContent: readonly boolean[]): Promise<void> {
  let i = 0;
  for await (const entry of readTar(chunked(bytes, sizes), { what: 'fuzz.tar', maxMetadataBytes: 64 * 1024 })) {
    if (readContent[i++ % Math.max(1, readContent.length)]) for await (const chunk of entry.content()) void chunk;
  }
}

const chunkSizes = fc.array(fc.integer({ min: 1, max: 2000 }), { maxLength: 4 });
const RUNS = 2500;

test('fuzz: tar reader on random bytes', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 3 * BLOCK }), chunkSizes, async (bytes, sizes) => {
      await parsesOrRefusesAsync(() => readAll(Buffer.from(bytes), sizes, [true]));
    }),
    { ...fuzzParameters(RUNS), timeout: 5000 },
  );
});

test('fuzz: tar reader on mutated valid archives (header fields, checksums, sizes, PAX records, truncation)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(member, { minLength: 1, maxLength: 4 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), chunkSizes, fc.array(fc.boolean(), { maxLength: 4 }), async (members, mutations, sizes, readContent) => {
      const bytes = mutate(archive(members), mutations);
      await parsesOrRefusesAsync(() => readAll(bytes, sizes, readContent));
    }),
    { ...fuzzParameters(RUNS), timeout: 5000 },
  );
});

test('fuzz: tar reader reads back every valid archive the writer makes', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(member, { minLength: 1, maxLength: 4 }), chunkSizes, async (members, sizes) => {
      const { bytes } = archive(members);
      let count = 0;
      for await (const entry of readTar(chunked(bytes, sizes))) {
        const m = members[count++]!;
        let size = 0;
        for await (const chunk of entry.content()) size += chunk.length;
        if (entry.uid !== m.uid || entry.gid !== m.gid || entry.mtime !== m.mtime || size !== (m.type === 'file' ? m.content.length : 0)) {
          throw new Error(`entry ${count} read back as ${JSON.stringify({ uid: entry.uid, gid: entry.gid, mtime: entry.mtime, size })}`);
        }
      }
      if (count !== members.length) throw new Error(`${count} entries read back of ${members.length}`);
    }),
    { ...fuzzParameters(RUNS / 5), timeout: 5000 },
  );
});

const XZ_AVAILABLE = spawnSync('xz', ['--version']).status === 0;

/** `bytes` compressed as `kind` (xz by the system's xz, as repro-oci reads it). */
async function compressed(bytes: Buffer, kind: 'gzip' | 'zstd' | 'xz'): Promise<Buffer> {
  if (kind === 'xz') return spawnSync('xz', ['-c', '-q'], { input: bytes, maxBuffer: 1 << 24 }).stdout;
  return compressToBuffer([bytes], getCompressor(kind));
}

test('fuzz: tar reader behind the decompressor (gzip, zstd, xz), with corrupt and truncated streams', async () => {
  const kinds = XZ_AVAILABLE ? (['gzip', 'zstd', 'xz'] as const) : (['gzip', 'zstd'] as const);
  await fc.assert(
    fc.asyncProperty(
      fc.array(member, { minLength: 1, maxLength: 3 }),
      fc.constantFrom(...kinds),
      fc.array(fc.oneof(fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.nat(255) }), fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() })), { maxLength: 3 }),
      chunkSizes,
      async (members, kind, mutations, sizes) => {
        const packed = mutate({ bytes: await compressed(archive(members).bytes, kind), headers: [] }, mutations);
        await parsesOrRefusesAsync(async () => {
          for await (const entry of readTar(decompressAuto(chunked(packed, sizes), 'fuzz.tar'), { what: 'fuzz.tar' })) for await (const chunk of entry.content()) void chunk;
        });
      },
    ),
    { ...fuzzParameters(300), timeout: 10_000 },
  );
});
