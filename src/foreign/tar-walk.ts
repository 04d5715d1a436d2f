import { UserError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { decodeName } from '../util/raw-name.js';
import { checksumOk, cString, parseNumber, parsePax } from '../tar/reader.js';

/**
 * A header-level view of a tar archive, for telling which tool wrote it and where two archives part: every
 * member with its raw header bytes (PAX and GNU long-name records included, in the order written) and the end of
 * the archive (how many zero blocks, record padding). src/tar/reader.ts reads entries; this keeps the bytes.
 */
export interface RawMetadata {
  typeflag: 'x' | 'g' | 'L' | 'K';
  block: Buffer;
  data: Buffer;
  /** PAX records in the order written (x and g only). */
  records: [string, Buffer][];
}

export interface RawMember {
  /** Offset of the member's first header block (metadata records included). */
  offset: number;
  /** The member's name as its headers resolve it (PAX path, GNU long name, ustar prefix/name). */
  name: string;
  typeflag: string;
  /** The main header block. */
  block: Buffer;
  metadata: RawMetadata[];
  dataSize: number;
  /** The member's data; read it before asking for the next member, or it is skipped. */
  content(): AsyncIterable<Buffer>;
}

export interface RawEnd {
  /** Offset of the first zero block (the archive's data ends there). */
  offset: number;
  /** Archive length in bytes. */
  length: number;
  /** Zero blocks from the end marker on, before any non-zero byte. */
  zeroBlocks: number;
  /** Whether anything but zeros follows the end marker. */
  garbageAfterEnd: boolean;
}

export interface WalkOptions {
  what?: string;
  /** Largest PAX or long-name record (default 1 MiB). */
  maxMetadataBytes?: number;
  /** Most metadata headers before one member (default 8: GNU writes at most two, Go one). */
  maxMetadataHeaders?: number;
}

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/**
 * Walks an archive member by member. The generator's return value is the end of the archive; the whole source
 * is read (trailing zeros and record padding too), so a caller hashing the source sees every byte.
 */
export async function* walkTar(source: AsyncIterable<Buffer | Uint8Array>, options: WalkOptions = {}): AsyncGenerator<RawMember, RawEnd> {
  const what = options.what ?? 'tar archive';
  const maxMeta = options.maxMetadataBytes ?? 1024 * 1024;
  const maxHeaders = options.maxMetadataHeaders ?? 8;
  const reader = new ByteReader(source);
  try {
    let metadata: RawMetadata[] = [];
    let memberOffset = 0;
    while (true) {
      const at = reader.offset;
      const block = await reader.read(BLOCK);
      if (block.length === 0 || block.equals(ZERO_BLOCK.subarray(0, block.length))) {
        if (metadata.length > 0) throw new UserError(`${what}: metadata header at byte ${memberOffset} without a member`);
        if (block.length > 0 && block.length < BLOCK) throw new UserError(`${what}: truncated block at byte ${at}`);
        return await readEnd(reader, at, block.length === 0 ? 0 : 1);
      }
      if (block.length < BLOCK) throw new UserError(`${what}: truncated header at byte ${at}`);
      if (!checksumOk(block)) throw new UserError(`${what}: bad header checksum at byte ${at} (not a tar archive, or corrupt)`);
      if (metadata.length === 0) memberOffset = at;
      const typeflag = String.fromCharCode(block[156]!);
      const size = parseNumber(block, 124, 12, what, 'size');
      const padding = Math.ceil(size / BLOCK) * BLOCK - size;
      if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
        if (metadata.length >= maxHeaders) throw new UserError(`${what}: more than ${maxHeaders} metadata headers in a row at byte ${at}`);
        if (size > maxMeta) throw new UserError(`${what}: ${size}-byte metadata record at byte ${at} exceeds the ${maxMeta}-byte limit`);
        const data = Buffer.from(await reader.read(size));
        if (data.length < size || (await reader.skip(padding)) < padding) throw new UserError(`${what}: truncated metadata record at byte ${at}`);
        const records = typeflag === 'x' || typeflag === 'g' ? [...parsePax(data, what)] : [];
        metadata.push({ typeflag, block: Buffer.from(block), data, records });
        continue;
      }
      const name = resolveName(block, metadata);
      // Only these types carry data; others declaring a size still have their blocks skipped.
      const dataSize = paxSize(metadata, what) ?? size;
      let consumed = 0;
      let started = false;
      const member: RawMember = {
        offset: memberOffset,
        name,
        typeflag,
        block: Buffer.from(block),
        metadata,
        dataSize,
        content: async function* () {
          if (started) throw new Error(`tar walk: content of ${name} read twice`);
          started = true;
          for await (const chunk of reader.chunks(dataSize)) {
            consumed += chunk.length;
            yield chunk;
          }
        },
      };
      metadata = [];
      yield member;
      const rest = dataSize - consumed;
      const pad = Math.ceil(dataSize / BLOCK) * BLOCK - dataSize;
      if ((await reader.skip(rest)) < rest || (await reader.skip(pad)) < pad) throw new UserError(`${what}: truncated content of ${JSON.stringify(name)}`);
    }
  } finally {
    await reader.close();
  }
}

function paxSize(metadata: RawMetadata[], what: string): number | undefined {
  let size: number | undefined;
  for (const m of metadata) {
    for (const [key, value] of m.records) {
      if (key !== 'size') continue;
      const text = value.toString('latin1');
      if (!/^[0-9]{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UserError(`${what}: bad PAX size ${JSON.stringify(text.slice(0, 40))}`);
      size = Number(text);
    }
  }
  return size;
}

function resolveName(block: Buffer, metadata: RawMetadata[]): string {
  let name = decodeName(cString(block, 0, 100));
  if (block.subarray(257, 263).toString('latin1') === 'ustar\0') {
    const prefix = cString(block, 345, 155);
    if (prefix.length > 0) name = `${decodeName(prefix)}/${name}`;
  }
  for (const m of metadata) {
    if (m.typeflag === 'L') name = decodeName(cString(m.data, 0, m.data.length));
    for (const [key, value] of m.records) if (key === 'path') name = decodeName(value);
  }
  return name;
}

async function readEnd(reader: ByteReader, offset: number, firstZero: number): Promise<RawEnd> {
  let zeroBlocks = firstZero;
  let garbageAfterEnd = false;
  let inZeros = firstZero === 1;
  let partial = 0;
  for await (const chunk of reader.chunks(Number.MAX_SAFE_INTEGER)) {
    if (!inZeros) {
      garbageAfterEnd ||= chunk.some((b) => b !== 0);
      continue;
    }
    const nonZero = chunk.findIndex((b) => b !== 0);
    partial += nonZero === -1 ? chunk.length : nonZero;
    zeroBlocks += Math.floor(partial / BLOCK);
    partial %= BLOCK;
    if (nonZero !== -1) {
      garbageAfterEnd = true;
      inZeros = false;
    }
  }
  return { offset, length: reader.offset, zeroBlocks, garbageAfterEnd };
}
