import { UserError } from '../errors.js';
import { compareMemberNames, MAX_ID, MAX_MTIME, memberName, type EntryType, type TarSourceEntry } from './entry.js';
import { byteOrder } from '../util/order.js';
import { displayName, encodeName, hasRawBytes } from '../util/raw-name.js';

/**
 * Deterministic tar writer. The archive is POSIX ustar; a PAX extended header precedes an entry only when a
 * value does not fit ustar (long or non-ASCII path or link target, large ids, sizes or times, xattrs); a short name
 * that is not UTF-8 stays raw in its ustar field. Every
 * byte is a function of the entries alone: see docs/tar-format.md.
 */
export interface TarWriteOptions {
  /** Clamp every mtime to at most this (SOURCE_DATE_EPOCH). */
  clampMtime?: number;
  /** Size of the buffers the archive is yielded in (the last one may be shorter); default 1 MiB. */
  chunkSize?: number;
}

/**
 * Gathers the archive into fresh buffers of a fixed size, so that consumers (hashes, compressors) see a few large
 * chunks instead of a header, a padding and many content pieces per file.
 */
export class ChunkedOutput {
  private buffer: Buffer;
  private used = 0;
  /** Bytes taken in so far (an archive's length, for its record padding). */
  total = 0;

  constructor(private readonly size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  /** Copies `data` in and returns the buffers it filled. */
  write(data: Uint8Array): Buffer[] {
    const full: Buffer[] = [];
    for (let done = 0; done < data.length; ) {
      const n = Math.min(data.length - done, this.size - this.used);
      this.buffer.set(data.subarray(done, done + n), this.used);
      this.used += n;
      this.total += n;
      done += n;
      if (this.used === this.size) full.push(this.take());
    }
    return full;
  }

  /** Lets `fill` write directly into the free part of the current buffer; returns a buffer if it became full. */
  fill(fill: (into: Buffer, offset: number, length: number) => number): { read: number; full?: Buffer } {
    const read = fill(this.buffer, this.used, this.size - this.used);
    this.used += read;
    this.total += read;
    return this.used === this.size ? { read, full: this.take() } : { read };
  }

  private take(): Buffer {
    const out = this.buffer;
    this.buffer = Buffer.allocUnsafe(this.size);
    this.used = 0;
    return out;
  }

  /** What is left at the end, in a buffer of its own size (a small archive must not pin a whole chunk). */
  rest(): Buffer[] {
    return this.used ? [Buffer.from(this.buffer.subarray(0, this.used))] : [];
  }
}

const BLOCK = 512;
const TYPEFLAG: Record<EntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};
const MAX_OCTAL_11 = 0o77777777777; // size and mtime fields
const MAX_OCTAL_7 = 0o7777777; // uid, gid, devmajor, devminor fields
const isId = (id: number): boolean => Number.isInteger(id) && id >= 0 && id <= MAX_ID;

function isPlainAscii(s: string, maxBytes: number): boolean {
  return s.length <= maxBytes && /^[\x20-\x7e]*$/.test(s);
}

/**
 * Whether a name that is not UTF-8 fits its ustar field as raw bytes. ustar fields are bytes in no charset, which
 * every reader takes as they are; a PAX record would need `hdrcharset=BINARY`, which bsdtar requires and GNU tar
 * 1.34 does not know (it warns, then extracts the right name), so PAX is kept for names that do not fit.
 */
function fitsUstarRaw(s: string, maxBytes: number): boolean {
  return hasRawBytes(s) && !s.includes('\0') && encodeName(s).length <= maxBytes;
}

function putName(buf: Buffer, offset: number, width: number, value: string): void {
  encodeName(value).copy(buf, offset, 0, width);
}

function putString(buf: Buffer, offset: number, width: number, value: string): void {
  buf.write(value, offset, width, 'ascii');
}

function putOctal(buf: Buffer, offset: number, width: number, value: number): void {
  buf.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'ascii');
  buf[offset + width - 1] = 0;
}

/** One PAX record: `"<len> <key>=<value>\n"`, where len counts the whole record including itself. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(' '), encodeName(key), Buffer.from('='), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devMajor: number;
  devMinor: number;
}

function ustarHeader(h: HeaderFields): Buffer {
  const buf = Buffer.alloc(BLOCK);
  putName(buf, 0, 100, h.name);
  putOctal(buf, 100, 8, h.mode);
  putOctal(buf, 108, 8, h.uid);
  putOctal(buf, 116, 8, h.gid);
  putOctal(buf, 124, 12, h.size);
  putOctal(buf, 136, 12, h.mtime);
  putString(buf, 156, 1, h.typeflag);
  putName(buf, 157, 100, h.linkname);
  putString(buf, 257, 6, 'ustar\0');
  putString(buf, 263, 2, '00');
  putString(buf, 265, 32, h.uname);
  putString(buf, 297, 32, h.gname);
  putOctal(buf, 329, 8, h.devMajor);
  putOctal(buf, 337, 8, h.devMinor);
  return finishChecksum(buf);
}

/** Writes a header block's checksum as every tar writer does: six octal digits, NUL, space (the field summed as spaces). */
export function finishChecksum(buf: Buffer): Buffer {
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of buf) sum += byte;
  buf.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  buf[154] = 0;
  buf[155] = 0x20;
  return buf;
}

/** The zero bytes that fill `size` bytes of content up to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** A printable-ASCII stand-in for a name that lives in a PAX record; readers that honour PAX never see it. */
function asciiFallback(name: string, max: number): string {
  const ascii = encodeName(name).toString('latin1').replace(/[^\x20-\x7e]/g, '_');
  return ascii.length <= max ? ascii : ascii.slice(ascii.length - max);
}

/** Encodes the header block(s) of one entry: an optional PAX header plus the ustar header. */
export function encodeHeader(entry: TarSourceEntry, options: TarWriteOptions = {}): Buffer {
  const name = memberName(entry);
  const mtime = options.clampMtime !== undefined ? Math.min(entry.mtime, options.clampMtime) : entry.mtime;
  const size = entry.type === 'file' ? entry.size : 0;
  const link = entry.linkTarget ?? '';
  const uname = entry.uname ?? '';
  const gname = entry.gname ?? '';
  const pax = new Map<string, Buffer>();

  if (!isPlainAscii(name, 100) && !fitsUstarRaw(name, 100)) pax.set('path', encodeName(name));
  if (!isPlainAscii(link, 100) && !fitsUstarRaw(link, 100)) pax.set('linkpath', encodeName(link));
  // PAX values are UTF-8 unless this record says otherwise; bsdtar converts them to its locale and fails on raw
  // bytes without it. bsdtar (and so makepkg) writes the same record for such names.
  if ((pax.has('path') && hasRawBytes(name)) || (pax.has('linkpath') && hasRawBytes(link))) pax.set('hdrcharset', Buffer.from('BINARY'));
  if (!isPlainAscii(uname, 32)) pax.set('uname', Buffer.from(uname, 'utf8'));
  if (!isPlainAscii(gname, 32)) pax.set('gname', Buffer.from(gname, 'utf8'));
  if (entry.uid > MAX_OCTAL_7) pax.set('uid', Buffer.from(String(entry.uid)));
  if (entry.gid > MAX_OCTAL_7) pax.set('gid', Buffer.from(String(entry.gid)));
  if (size > MAX_OCTAL_11) pax.set('size', Buffer.from(String(size)));
  if (mtime < 0 || mtime > MAX_OCTAL_11) pax.set('mtime', Buffer.from(String(mtime)));
  for (const [key, value] of Object.entries(entry.xattrs ?? {})) pax.set(`SCHILY.xattr.${key}`, value);

  const header = ustarHeader({
    name: pax.has('path') ? asciiFallback(name, 100) : name,
    mode: entry.mode & 0o7777,
    uid: entry.uid > MAX_OCTAL_7 ? 0 : entry.uid,
    gid: entry.gid > MAX_OCTAL_7 ? 0 : entry.gid,
    size: size > MAX_OCTAL_11 ? 0 : size,
    mtime: pax.has('mtime') ? 0 : mtime,
    typeflag: TYPEFLAG[entry.type],
    linkname: pax.has('linkpath') ? asciiFallback(link, 100) : link,
    uname: pax.has('uname') ? '' : uname,
    gname: pax.has('gname') ? '' : gname,
    devMajor: entry.devMajor ?? 0,
    devMinor: entry.devMinor ?? 0,
  });
  if (pax.size === 0) return header;

  const keys = [...pax.keys()].sort(byteOrder);
  const records = Buffer.concat(keys.map((k) => paxRecord(k, pax.get(k)!)));
  const base = name.replace(/\/$/, '').split('/').pop() ?? '';
  const paxHeader = ustarHeader({
    name: asciiFallback(`PaxHeaders/${base}`, 100),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: records.length,
    mtime: Math.max(0, Math.min(mtime, MAX_OCTAL_11)),
    typeflag: 'x',
    linkname: '',
    uname: '',
    gname: '',
    devMajor: 0,
    devMinor: 0,
  });
  return Buffer.concat([paxHeader, records, padding(records.length), header]);
}

function checkEntry(entry: TarSourceEntry): void {
  const bad = (why: string): never => {
    throw new Error(`tar writer: entry ${JSON.stringify(entry.path)}: ${why}`);
  };
  if (entry.path === '' || entry.path.startsWith('/') || entry.path.endsWith('/')) bad('path must be relative without a trailing slash');
  if (!Number.isSafeInteger(entry.mtime) || Math.abs(entry.mtime) > MAX_MTIME) bad('mtime must be an integer number of seconds that a Date can hold');
  if (!isId(entry.uid) || !isId(entry.gid)) bad('uid/gid must be integers from 0 to 2^32-1 (GNU tar refuses larger)');
  if (entry.type === 'file' && (!Number.isSafeInteger(entry.size) || entry.size < 0)) bad('size must be a non-negative integer');
  if ((entry.type === 'symlink' || entry.type === 'hardlink') && !entry.linkTarget) bad('link without a target');
  if ((entry.type === 'char' || entry.type === 'block') && ((entry.devMajor ?? 0) > MAX_OCTAL_7 || (entry.devMinor ?? 0) > MAX_OCTAL_7)) bad('device number too large');
}

/**
 * A file member's content and its padding to the block. Spooled content is copied straight into the output's
 * chunks, without a stream per file; content that is not exactly the declared size is refused, so a lying source
 * cannot shift the archive.
 */
export async function* writeContent(out: ChunkedOutput, entry: TarSourceEntry): AsyncGenerator<Buffer> {
  if (!entry.open) throw new Error(`tar writer: file ${displayName(entry.path)} has no content`);
  let written = 0;
  const readSync = entry.open.readSync;
  if (readSync) {
    while (written < entry.size) {
      const { read, full } = out.fill((into, offset, length) => readSync(written, into, offset, Math.min(length, entry.size - written)));
      if (read === 0) break;
      written += read;
      if (full) yield full;
    }
  } else {
    for await (const chunk of await entry.open()) {
      const buf = chunk as Buffer;
      written += buf.length;
      if (written > entry.size) throw new UserError(`${displayName(entry.path)}: content is longer than its declared size ${entry.size}`);
      yield* out.write(buf);
    }
  }
  if (written !== entry.size) throw new UserError(`${displayName(entry.path)}: content is ${written} bytes, declared ${entry.size}`);
  yield* out.write(padding(entry.size));
}

/**
 * Streams the archive for entries that arrive in strictly increasing member-name order (bytewise); out-of-order
 * or duplicate entries are a bug in the caller and stop the stream. A file whose content is not exactly its
 * declared size is refused, so a lying source cannot shift the archive.
 */
export async function* writeTar(entries: AsyncIterable<TarSourceEntry> | Iterable<TarSourceEntry>, options: TarWriteOptions = {}): AsyncGenerator<Buffer> {
  const out = new ChunkedOutput(options.chunkSize ?? 1024 * 1024);
  let previous: TarSourceEntry | undefined;
  for await (const entry of entries) {
    checkEntry(entry);
    if (previous && compareMemberNames(previous, entry) >= 0) {
      throw new Error(`tar writer: ${JSON.stringify(memberName(entry))} is not after ${JSON.stringify(memberName(previous))} in byte order`);
    }
    previous = entry;
    yield* out.write(encodeHeader(entry, options));
    if (entry.type === 'file' && entry.size > 0) yield* writeContent(out, entry);
  }
  yield* out.write(Buffer.alloc(2 * BLOCK));
  yield* out.rest();
}
