import { UserError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { decodeName } from '../util/raw-name.js';
import { MAX_ID, MAX_MTIME, type EntryType, type TarEntry } from './entry.js';

/**
 * An entry read from an archive. `name` is the member name exactly as stored; `path` drops trailing slashes. Names
 * and link targets are byte strings, decoded losslessly (util/raw-name.ts): PAX says `path` and `linkpath` are
 * UTF-8 unless `hdrcharset=BINARY`, but bsdtar and GNU tar store any bytes there (with that record), and ustar and
 * GNU long-name fields are bytes anyway, so every form is decoded the same way and nothing is replaced.
 */
export interface ReadEntry extends TarEntry {
  name: string;
  /** PAX records that applied to this entry (local over global), raw. */
  pax: Map<string, Buffer>;
  /** The entry's content; must be consumed before asking for the next entry, or it is skipped. */
  content(): AsyncIterable<Buffer>;
}

export interface TarReadOptions {
  /** What to call the archive in errors. */
  what?: string;
  /** Largest PAX or GNU long-name record accepted (hostile archives may declare gigabytes). */
  maxMetadataBytes?: number;
}

const BLOCK = 512;
/** What a ustar devmajor/devminor field holds (the writer cannot write more). */
const MAX_DEVICE = 0o7777777;

export function cString(buf: Buffer, start: number, width: number): Buffer {
  const field = buf.subarray(start, start + width);
  const nul = field.indexOf(0);
  return nul === -1 ? field : field.subarray(0, nul);
}

export function parseNumber(buf: Buffer, start: number, width: number, what: string, field: string): number {
  const raw = buf.subarray(start, start + width);
  if (raw[0]! & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as the marker.
    if (raw[0] === 0xff) throw new UserError(`${what}: negative ${field}`);
    let value = raw[0]! & 0x7f;
    for (let i = 1; i < raw.length; i++) value = value * 256 + raw[i]!;
    if (!Number.isSafeInteger(value)) throw new UserError(`${what}: ${field} is too large`);
    return value;
  }
  const text = raw.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[ ]+/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new UserError(`${what}: ${field} field ${JSON.stringify(text)} is not octal`);
  return parseInt(text, 8);
}

export function checksumOk(block: Buffer): boolean {
  const stored = parseInt(cString(block, 148, 8).toString('latin1').trim() || 'NaN', 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

export function parsePax(data: Buffer, what: string): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad the record block with NULs
    const space = data.indexOf(0x20, pos);
    const len = space === -1 ? NaN : Number(data.subarray(pos, space).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new UserError(`${what}: malformed PAX record at byte ${pos}`);
    }
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw new UserError(`${what}: malformed PAX record at byte ${pos}`);
    // Keys are UTF-8 by the standard, but a SCHILY.xattr key carries an attribute name, which is bytes.
    records.set(decodeName(record.subarray(0, eq)), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return records;
}

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/**
 * Reads ustar, PAX and GNU (long names, base-256 numbers) archives as a stream of entries. Only the metadata of
 * one entry is held at a time; contents stream through.
 */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array>, options: TarReadOptions = {}): AsyncGenerator<ReadEntry> {
  const what = options.what ?? 'tar archive';
  const maxMeta = options.maxMetadataBytes ?? 1024 * 1024;
  const reader = new ByteReader(source);
  let globalPax = new Map<string, Buffer>();
  let localPax = new Map<string, Buffer>();
  let gnuLongName: string | undefined;
  let gnuLongLink: string | undefined;
  try {
    while (true) {
      const block = await reader.read(BLOCK);
      if (block.length === 0) return; // tolerate archives without end-of-archive blocks
      if (block.length < BLOCK) throw new UserError(`${what}: truncated header at byte ${reader.offset - block.length}`);
      if (block.every((b) => b === 0)) return; // end of archive; trailing blocks are not read
      const at = reader.offset - BLOCK;
      if (!checksumOk(block)) throw new UserError(`${what}: bad header checksum at byte ${at} (not a tar archive, or corrupt)`);
      const typeflag = String.fromCharCode(block[156]!);
      const size = parseNumber(block, 124, 12, what, 'size');
      const padded = Math.ceil(size / BLOCK) * BLOCK;

      if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
        if (size > maxMeta) throw new UserError(`${what}: ${size}-byte metadata record at byte ${at} exceeds the ${maxMeta}-byte limit`);
        const data = await reader.read(size);
        if (data.length < size) throw new UserError(`${what}: truncated metadata record at byte ${at}`);
        await reader.skip(padded - size);
        if (typeflag === 'x') localPax = parsePax(data, what);
        else if (typeflag === 'g') globalPax = new Map([...globalPax, ...parsePax(data, what)]);
        else if (typeflag === 'L') gnuLongName = decodeName(cString(data, 0, data.length));
        else gnuLongLink = decodeName(cString(data, 0, data.length));
        continue;
      }

      const pax = new Map([...globalPax, ...localPax]);
      localPax = new Map();
      const magic = block.subarray(257, 263).toString('latin1');
      const isUstar = magic === 'ustar\0';
      let name = decodeName(cString(block, 0, 100));
      if (isUstar) {
        const prefix = decodeName(cString(block, 345, 155));
        if (prefix) name = `${prefix}/${name}`;
      }
      if (gnuLongName !== undefined) name = gnuLongName;
      if (pax.has('path')) name = decodeName(pax.get('path')!);
      let linkTarget = decodeName(cString(block, 157, 100));
      if (gnuLongLink !== undefined) linkTarget = gnuLongLink;
      if (pax.has('linkpath')) linkTarget = decodeName(pax.get('linkpath')!);
      gnuLongName = undefined;
      gnuLongLink = undefined;

      let type = TYPES[typeflag];
      if (type === undefined) throw new UserError(`${what}: entry ${JSON.stringify(name)} has unsupported type ${JSON.stringify(typeflag)}`);
      if (type === 'file' && typeflag !== '7' && name.endsWith('/')) type = 'dir';

      const paxNumber = (key: string, fallback: number): number => {
        const raw = pax.get(key);
        if (raw === undefined) return fallback;
        const value = Number(raw.toString('latin1'));
        if (!Number.isFinite(value) || (key !== 'mtime' && (!Number.isSafeInteger(value) || value < 0))) {
          throw new UserError(`${what}: entry ${JSON.stringify(name)} has a bad PAX ${key}`);
        }
        return Math.floor(value);
      };
      const entrySize = paxNumber('size', size);
      const xattrs: Record<string, Buffer> = {};
      for (const [key, value] of pax) if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice('SCHILY.xattr.'.length)] = value;

      // Only regular files carry data; a hardlink or other type declaring a size still has its blocks skipped.
      const dataSize = pax.has('size') ? entrySize : size;
      const entry: ReadEntry = {
        name,
        path: name.replace(/\/+$/, ''),
        type,
        mode: parseNumber(block, 100, 8, what, 'mode') & 0o7777,
        uid: paxNumber('uid', parseNumber(block, 108, 8, what, 'uid')),
        gid: paxNumber('gid', parseNumber(block, 116, 8, what, 'gid')),
        mtime: paxNumber('mtime', parseNumber(block, 136, 12, what, 'mtime')),
        size: type === 'file' ? dataSize : 0,
        pax,
        content: () => contentOnce(),
      };
      if (type === 'symlink' || type === 'hardlink') entry.linkTarget = linkTarget;
      if (type === 'char' || type === 'block') {
        entry.devMajor = parseNumber(block, 329, 8, what, 'devmajor');
        entry.devMinor = parseNumber(block, 337, 8, what, 'devminor');
      }
      const outOfRange = (field: string, value: number, min: number, max: number): void => {
        if (value < min || value > max) throw new UserError(`${what}: entry ${JSON.stringify(name)}: ${field} ${value} is out of range (${min} to ${max})`);
      };
      outOfRange('mtime', entry.mtime, -MAX_MTIME, MAX_MTIME);
      outOfRange('uid', entry.uid, 0, MAX_ID);
      outOfRange('gid', entry.gid, 0, MAX_ID);
      for (const device of [entry.devMajor, entry.devMinor]) if (device !== undefined) outOfRange('device number', device, 0, MAX_DEVICE);
      if (Object.keys(xattrs).length > 0) entry.xattrs = xattrs;
      const uname = pax.get('uname')?.toString('utf8') ?? cString(block, 265, 32).toString('utf8');
      const gname = pax.get('gname')?.toString('utf8') ?? cString(block, 297, 32).toString('utf8');
      if (uname) entry.uname = uname;
      if (gname) entry.gname = gname;

      let consumed = 0;
      let started = false;
      async function* contentOnce(): AsyncGenerator<Buffer> {
        if (started) throw new Error(`tar reader: content of ${name} read twice`);
        started = true;
        for await (const chunk of reader.chunks(dataSize)) {
          consumed += chunk.length;
          yield chunk;
        }
        if (consumed < dataSize) throw new UserError(`${what}: ${JSON.stringify(name)}: truncated content (${consumed} of ${dataSize} bytes)`);
      }

      yield entry;
      const rest = dataSize - consumed;
      const skipped = await reader.skip(rest);
      if (skipped < rest) throw new UserError(`${what}: ${JSON.stringify(name)}: truncated content (${consumed + skipped} of ${dataSize} bytes)`);
      const pad = Math.ceil(dataSize / BLOCK) * BLOCK - dataSize;
      if ((await reader.skip(pad)) < pad) throw new UserError(`${what}: truncated after ${JSON.stringify(name)}`);
    }
  } finally {
    await reader.close();
  }
}
