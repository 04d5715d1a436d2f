import { posix } from 'node:path';
import { UserError } from '../errors.js';
import { compareMemberNames, memberName, type EntryType, type TarSourceEntry } from '../tar/entry.js';
import { ChunkedOutput, finishChecksum, padding, paxRecord, writeContent, writeTar } from '../tar/writer.js';
import { byteOrder } from '../util/order.js';
import { compareNames, decodeName, displayName, encodeName } from '../util/raw-name.js';
import { cString as cField, parseNumber as numericField } from '../tar/reader.js';
import { walkTar, type RawEnd, type RawMember, type WalkOptions } from './tar-walk.js';

/**
 * Which tool wrote a layer tar, told from the tar's own bytes, and the same tool's bytes for another tree: the
 * `layer` level of checking a foreign image (issue 13). docs/tar-format.md, "Foreign conventions", lists what
 * each tool writes; test/tar-convention.test.ts checks it against GNU tar and umoci as installed.
 */

export type TarTool = 'gnu-tar' | 'go-archive-tar' | 'repro-oci' | 'unknown';

/**
 * Member order. `directory`: each directory's entries sorted by name as bytes, depth first (GNU tar
 * --sort=name, Go's filepath.Walk); `path`: whole paths compared as bytes, directories without their slash
 * (umoci); `member-name`: whole member names as bytes, directories with their slash (repro-oci); `archive`: as
 * in the archive it was detected from (GNU tar without --sort=name writes directory-read order, which no tree
 * determines).
 */
export type MemberOrder = 'directory' | 'path' | 'member-name' | 'archive';

/** An entry with the metadata foreign writers record beyond TarEntry. */
export interface ForeignTarEntry extends TarSourceEntry {
  /** PAX time records exactly as written (`1600000000.5`): GNU tar's POSIX format writes atime/ctime unless told to delete them, and mtime when it has a fraction. */
  paxTimes?: { mtime?: string; atime?: string; ctime?: string };
  /** GNU tar --acls: `SCHILY.acl.access` / `SCHILY.acl.default`, text form. */
  acls?: { access?: Buffer; default?: Buffer };
}

export interface TarConvention {
  tool: TarTool;
  /** One line: `GNU tar, POSIX (pax) format, --sort=name, --numeric-owner, pax atime/ctime deleted, --mtime=@1700000000`. */
  summary: string;
  /** What in the archive says so, one fact per line. */
  evidence: string[];
  /** Header format: `gnu` (magic `ustar  `, ././@LongLink), `posix` (ustar plus PAX records), `ustar` (Go with the prefix field). */
  format: 'gnu' | 'posix' | 'ustar';
  order: MemberOrder;
  /** With order `archive`: member paths (no prefix, no slash) in the archive's order. */
  archiveOrder?: string[];
  /** `./` when the archive was made as `tar -C DIR .`. */
  namePrefix: '' | './';
  /** The root directory's own member (`./` from GNU tar, `.` from umoci), with its metadata; a tree has no entry for it. */
  root?: { name: string; entry: ForeignTarEntry };
  /** GNU tar: the mtime field of its PAX headers: `--mtime`'s value when given, else each member's. */
  paxHeaderMtime?: number | 'member';
  /** GNU tar, gnu format: owner names of ././@LongLink headers (GNU looks up uid 0 on the host that wrote it). */
  longLinkOwner?: { uname: string; gname: string };
  /** Go: long names split into the ustar prefix field (Header.Format unset, as umoci leaves it) rather than PAX (FormatPAX, as moby/containerd set). */
  goUstarPrefix?: boolean;
  /** End: this many zero blocks, then zeros up to a multiple of recordSize (GNU tar: 2 and 10240; Go and repro-oci: 2 and 512). */
  endZeroBlocks: number;
  recordSize: number;
}

const BLOCK = 512;
const GNU_RECORD = 10240;
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const TYPEFLAG: Record<EntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const TYPES: Record<string, EntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };

// ---------------------------------------------------------------------------------------------------------------
// Reading: from raw members to entries and to a convention.

/** The extra metadata of ForeignTarEntry from an entry's PAX records (src/tar/reader.ts ReadEntry.pax). */
export function foreignMetadata(pax: Map<string, Buffer> | [string, Buffer][]): Pick<ForeignTarEntry, 'paxTimes' | 'acls'> {
  const out: Pick<ForeignTarEntry, 'paxTimes' | 'acls'> = {};
  for (const [key, value] of pax) {
    if (key === 'mtime' || key === 'atime' || key === 'ctime') (out.paxTimes ??= {})[key] = value.toString('latin1');
    else if (key === 'SCHILY.acl.access') (out.acls ??= {}).access = value;
    else if (key === 'SCHILY.acl.default') (out.acls ??= {}).default = value;
  }
  return out;
}

/** Strips the `./` prefix and trailing slashes of a member name. */
function plainPath(name: string): string {
  let p = name;
  while (p.startsWith('./')) p = p.slice(2);
  return p.replace(/\/+$/, '');
}

function isRootName(name: string): boolean {
  return plainPath(name) === '' || plainPath(name) === '.';
}

/** A member's metadata as an entry (content not attached). */
export function entryOfMember(member: RawMember, what = 'tar archive'): ForeignTarEntry {
  const block = member.block;
  const records = member.metadata.flatMap((m) => m.records);
  const pax = new Map(records);
  const type = TYPES[member.typeflag];
  if (type === undefined) throw new UserError(`${what}: ${displayName(member.name)} has unsupported type ${JSON.stringify(member.typeflag)}`);
  const num = (key: string, start: number, width: number): number => {
    const raw = pax.get(key);
    if (raw === undefined) return numericField(block, start, width, what, key);
    const value = Number(raw.toString('latin1'));
    if (!Number.isFinite(value)) throw new UserError(`${what}: ${displayName(member.name)} has a bad PAX ${key}`);
    return Math.floor(value);
  };
  let linkTarget = decodeName(cField(block, 157, 100));
  for (const m of member.metadata) if (m.typeflag === 'K') linkTarget = decodeName(cField(m.data, 0, m.data.length));
  if (pax.has('linkpath')) linkTarget = decodeName(pax.get('linkpath')!);
  const realType: EntryType = type === 'file' && member.typeflag !== '7' && member.name.endsWith('/') ? 'dir' : type;
  const entry: ForeignTarEntry = {
    path: plainPath(member.name),
    type: realType,
    mode: numericField(block, 100, 8, what, 'mode') & 0o7777,
    uid: num('uid', 108, 8),
    gid: num('gid', 116, 8),
    mtime: num('mtime', 136, 12),
    size: realType === 'file' ? member.dataSize : 0,
    ...foreignMetadata(records),
  };
  if (type === 'symlink') entry.linkTarget = linkTarget;
  if (type === 'hardlink') entry.linkTarget = plainPath(linkTarget);
  if (type === 'char' || type === 'block') {
    entry.devMajor = numericField(block, 329, 8, what, 'devmajor');
    entry.devMinor = numericField(block, 337, 8, what, 'devminor');
  }
  const xattrs: Record<string, Buffer> = {};
  for (const [key, value] of records) if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice('SCHILY.xattr.'.length)] = value;
  if (Object.keys(xattrs).length > 0) entry.xattrs = xattrs;
  const uname = pax.get('uname')?.toString('utf8') ?? cField(block, 265, 32).toString('utf8');
  const gname = pax.get('gname')?.toString('utf8') ?? cField(block, 297, 32).toString('utf8');
  if (uname) entry.uname = uname;
  if (gname) entry.gname = gname;
  return entry;
}

function splitDir(name: string): [string, string] {
  const trimmed = name.replace(/\/+$/, '') || name;
  const at = trimmed.lastIndexOf('/');
  return at === -1 ? ['.', trimmed] : [trimmed.slice(0, at) || '/', trimmed.slice(at + 1)];
}

/** GNU tar's default PAX header name, `%d/PaxHeaders/%f`, cut to the 100-byte field. */
function gnuPaxHeaderName(name: string): Buffer {
  const [dir, base] = splitDir(name);
  return encodeName(`${dir}/PaxHeaders/${base}`).subarray(0, 100);
}

/** Go's archive/tar PAX header name: path.Join(dir, "PaxHeaders.0", file), ASCII only, cut to 100, no trailing slash. */
function goPaxHeaderName(name: string): Buffer {
  const at = name.lastIndexOf('/');
  const joined = posix.join(name.slice(0, at + 1), 'PaxHeaders.0', name.slice(at + 1));
  let ascii = toAscii(encodeName(joined)).subarray(0, 100);
  while (ascii.length > 0 && ascii[ascii.length - 1] === 0x2f) ascii = ascii.subarray(0, ascii.length - 1);
  return ascii;
}

/** repro-oci's PAX header name (src/tar/writer.ts). */
function reproPaxHeaderName(name: string): Buffer {
  const base = name.replace(/\/$/, '').split('/').pop() ?? '';
  return Buffer.from(encodeName(`PaxHeaders/${base}`).toString('latin1').replace(/[^\x20-\x7e]/g, '_').slice(-100), 'latin1');
}

const PAX_HEADER_NAMES = { gnu: gnuPaxHeaderName, go: goPaxHeaderName, repro: reproPaxHeaderName };

/** Go's toASCII: drops every byte of a non-ASCII character and NULs. */
function toAscii(bytes: Buffer): Buffer {
  return Buffer.from(bytes.filter((b) => b !== 0 && b < 0x80));
}

function componentCompare(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = compareNames(pa[i]!, pb[i]!);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

const ORDERS: Record<Exclude<MemberOrder, 'archive'>, (a: { path: string; type: EntryType }, b: { path: string; type: EntryType }) => number> = {
  directory: (a, b) => componentCompare(a.path, b.path),
  path: (a, b) => compareNames(a.path, b.path),
  'member-name': (a, b) => compareMemberNames(a, b),
};

export interface DetectOptions extends WalkOptions {
  /** Most members accepted (their names are kept to tell the order); default 4,000,000. */
  maxMembers?: number;
}

interface Tally {
  members: number;
  gnuMagic: number;
  ustarMagic: number;
  longLinks: number;
  longLinkOwner?: { uname: string; gname: string };
  pax: number;
  paxNamed: { gnu: number; go: number; repro: number; other: number };
  paxHeaderModes: Set<string>;
  paxHeaderMtimes: Set<number>;
  paxMtimeIsMember: number;
  atime: number;
  ctime: number;
  xattrs: number;
  acls: number;
  ownerNames: number;
  ustarPrefix: number;
  paxPathSplittable: number;
  globalHeaders: number;
  dotSlash: number;
  orders: Set<Exclude<MemberOrder, 'archive'>>;
}

function splittableUstar(name: Buffer): boolean {
  if (name.length <= 100 || name.some((b) => b >= 0x80)) return false;
  let length = name.length;
  if (length > 156) length = 156;
  else if (name[length - 1] === 0x2f) length--;
  const i = name.subarray(0, length).lastIndexOf(0x2f);
  const nameLen = name.length - i - 1;
  return i > 0 && nameLen <= 100 && nameLen > 0 && i <= 155;
}

/**
 * Reads a whole layer tar and says which tool wrote it, with the evidence, and the parameters to write another
 * tree the same way. Hostile input (bad checksums, endless or huge metadata records) is a one-line UserError.
 */
export async function detectTarConvention(source: AsyncIterable<Buffer | Uint8Array>, options: DetectOptions = {}): Promise<TarConvention> {
  const what = options.what ?? 'tar archive';
  const maxMembers = options.maxMembers ?? 4_000_000;
  const t: Tally = {
    members: 0, gnuMagic: 0, ustarMagic: 0, longLinks: 0, pax: 0, paxNamed: { gnu: 0, go: 0, repro: 0, other: 0 },
    paxHeaderModes: new Set(), paxHeaderMtimes: new Set(), paxMtimeIsMember: 0, atime: 0, ctime: 0, xattrs: 0, acls: 0,
    ownerNames: 0, ustarPrefix: 0, paxPathSplittable: 0, globalHeaders: 0, dotSlash: 0,
    orders: new Set(['directory', 'path', 'member-name']),
  };
  const paths: string[] = [];
  let previous: { path: string; type: EntryType } | undefined;
  let root: TarConvention['root'];
  const walk = walkTar(source, options);
  let end: RawEnd;
  for (;;) {
    const next = await walk.next();
    if (next.done) {
      end = next.value;
      break;
    }
    const member = next.value;
    if (++t.members > maxMembers) throw new UserError(`${what}: more than ${maxMembers} members`);
    const entry = entryOfMember(member, what);
    const magic = member.block.subarray(257, 265).toString('latin1');
    if (magic === 'ustar  \0') t.gnuMagic++;
    else if (magic.startsWith('ustar\0')) t.ustarMagic++;
    if (member.block[345] !== 0 && magic.startsWith('ustar\0')) t.ustarPrefix++;
    if (cField(member.block, 265, 32).length > 0 || cField(member.block, 297, 32).length > 0) t.ownerNames++;
    if (member.name.startsWith('./')) t.dotSlash++;
    for (const m of member.metadata) {
      if (m.typeflag === 'L' || m.typeflag === 'K') {
        t.longLinks++;
        t.longLinkOwner ??= { uname: cField(m.block, 265, 32).toString('utf8'), gname: cField(m.block, 297, 32).toString('utf8') };
        continue;
      }
      if (m.typeflag === 'g') {
        t.globalHeaders++;
        continue;
      }
      t.pax++;
      const headerName = cField(m.block, 0, 100);
      // A long name cut to 100 bytes can read the same under two tools' patterns: only a unique match counts.
      const matches = (['gnu', 'go', 'repro'] as const).filter((tool) => headerName.equals(PAX_HEADER_NAMES[tool](member.name)));
      if (matches.length === 1) t.paxNamed[matches[0]!]++;
      else if (matches.length === 0) t.paxNamed.other++;
      t.paxHeaderModes.add(cField(m.block, 100, 8).toString('latin1'));
      const headerMtime = numericField(m.block, 136, 12, what, 'mtime');
      t.paxHeaderMtimes.add(headerMtime);
      if (headerMtime === entry.mtime) t.paxMtimeIsMember++;
      const keys = m.records.map(([k]) => k);
      if (keys.includes('atime')) t.atime++;
      if (keys.includes('ctime')) t.ctime++;
      if (keys.some((k) => k.startsWith('SCHILY.xattr.'))) t.xattrs++;
      if (keys.some((k) => k.startsWith('SCHILY.acl.'))) t.acls++;
      if (keys.length === 1 && keys[0] === 'path' && splittableUstar(encodeName(member.name))) t.paxPathSplittable++;
    }
    if (isRootName(member.name)) {
      if (root || t.members > 1) throw new UserError(`${what}: root directory member ${JSON.stringify(member.name)} is not the first`);
      root = { name: member.name, entry: { ...entry, path: '.' } };
    } else {
      const current = { path: entry.path, type: entry.type };
      if (previous) for (const order of [...t.orders]) if (ORDERS[order](previous, current) >= 0) t.orders.delete(order);
      previous = current;
      paths.push(entry.path);
    }
    for await (const chunk of member.content()) void chunk;
  }
  if (end.garbageAfterEnd) throw new UserError(`${what}: data after the end-of-archive blocks`);
  return decide(t, paths, root, end);
}

function decide(t: Tally, paths: string[], root: TarConvention['root'], end: RawEnd): TarConvention {
  const evidence: string[] = [];
  const tail = end.length - end.offset;
  const gnuRecords = end.length % GNU_RECORD === 0 && tail >= 2 * BLOCK && tail < 2 * BLOCK + GNU_RECORD;
  const endZeroBlocks = gnuRecords ? 2 : end.zeroBlocks;
  const recordSize = gnuRecords ? GNU_RECORD : BLOCK;
  evidence.push(gnuRecords ? `padded to ${GNU_RECORD}-byte records (${end.zeroBlocks} zero blocks at the end)` : `${end.zeroBlocks} zero blocks at the end, no record padding`);
  if (root) evidence.push(`root directory archived as ${JSON.stringify(root.name)}`);
  const namePrefix: '' | './' = t.dotSlash > 0 && t.dotSlash === t.members ? './' : '';
  if (namePrefix) evidence.push('every name starts with ./ (tar -C DIR .)');
  if (t.gnuMagic) evidence.push(`${t.gnuMagic} headers with GNU magic "ustar  "`);
  if (t.longLinks) evidence.push(`${t.longLinks} ././@LongLink headers`);
  const named = t.paxNamed;
  if (named.gnu) evidence.push(`${named.gnu} PAX headers named %d/PaxHeaders/%f (GNU tar)`);
  if (named.go) evidence.push(`${named.go} PAX headers named DIR/PaxHeaders.0/FILE, mode 0, mtime 0 (Go archive/tar)`);
  if (named.repro) evidence.push(`${named.repro} PAX headers named PaxHeaders/BASE (repro-oci)`);
  if (named.other) evidence.push(`${named.other} PAX headers named otherwise`);
  if (t.globalHeaders) evidence.push(`${t.globalHeaders} global PAX headers`);
  if (t.ustarPrefix) evidence.push(`${t.ustarPrefix} long names in the ustar prefix field`);

  let tool: TarTool;
  if (named.gnu || t.gnuMagic || t.longLinks || (!named.go && !named.repro && (namePrefix === './' || root?.name === './' || gnuRecords))) tool = 'gnu-tar';
  else if (named.go || root?.name === '.' || t.ustarPrefix) tool = 'go-archive-tar';
  else if (named.repro || (t.orders.has('member-name') && !root && end.zeroBlocks === 2)) tool = 'repro-oci';
  else tool = 'unknown';
  if (named.other || t.globalHeaders) tool = 'unknown';
  const conflicting = [named.gnu, named.go, named.repro].filter((n) => n > 0).length > 1;
  if (conflicting) {
    evidence.push('PAX header names of more than one tool');
    tool = 'unknown';
  }

  // When more than one order fits (a small tree), the tool's own: GNU tar and Go's filepath.Walk sort per
  // directory, umoci sorts whole paths, repro-oci member names.
  const preferred: Record<TarTool, Exclude<MemberOrder, 'archive'>[]> = {
    'gnu-tar': ['directory', 'path', 'member-name'],
    'go-archive-tar': root?.name === '.' ? ['path', 'directory', 'member-name'] : ['directory', 'path', 'member-name'],
    'repro-oci': ['member-name', 'directory', 'path'],
    unknown: ['directory', 'path', 'member-name'],
  };
  const order: MemberOrder = preferred[tool].find((o) => t.orders.has(o)) ?? 'archive';
  const base = { evidence, order, namePrefix, endZeroBlocks, recordSize, ...(root ? { root } : {}) };
  const orderText = (o: MemberOrder): string => ({ directory: 'sorted by name per directory', path: 'sorted by path', 'member-name': 'sorted by member name', archive: 'unsorted (archive order kept)' })[o];
  const withOrder = order === 'archive' ? { archiveOrder: paths } : {};
  switch (tool) {
    case 'gnu-tar': {
      const format = t.gnuMagic > 0 ? 'gnu' : 'posix';
      const flags = [format === 'gnu' ? 'gnu format' : 'POSIX (pax) format'];
      if (order === 'directory') flags.push('--sort=name');
      else flags.push('no --sort=name (directory order)');
      if (t.ownerNames === 0) flags.push('--numeric-owner');
      if (format === 'posix') flags.push(t.atime || t.ctime ? 'pax atime/ctime kept' : t.pax ? 'pax atime/ctime deleted' : 'no PAX headers');
      if (t.xattrs) flags.push('--xattrs');
      if (t.acls) flags.push('--acls');
      const fixed = t.paxHeaderMtimes.size === 1 && t.paxMtimeIsMember < t.pax ? [...t.paxHeaderMtimes][0]! : undefined;
      if (fixed !== undefined) flags.push(`--mtime=@${fixed}`);
      if (format === 'posix' && t.atime === 0 && t.ctime === 0 && t.pax === 0) evidence.push('POSIX format assumed: no header says gnu');
      return {
        ...base, ...withOrder, tool, format, summary: `GNU tar, ${flags.join(', ')}, ${orderText(order)}`,
        paxHeaderMtime: fixed ?? 'member',
        ...(format === 'gnu' ? { longLinkOwner: t.longLinkOwner ?? { uname: 'root', gname: 'root' } } : {}),
      };
    }
    case 'go-archive-tar': {
      const goUstarPrefix = t.paxPathSplittable > 0 ? false : true;
      if (t.paxPathSplittable) evidence.push('a long name that fits the ustar prefix field is in PAX (Header.Format = FormatPAX)');
      else if (!t.ustarPrefix) evidence.push('no long name tells ustar prefix from PAX; Header.Format unset (umoci) assumed');
      const who = root?.name === '.' ? 'as umoci writes it' : 'as podman/buildah/BuildKit write it';
      return { ...base, ...withOrder, tool, format: goUstarPrefix ? 'ustar' : 'posix', goUstarPrefix, summary: `Go archive/tar ${who}, ${goUstarPrefix ? 'ustar with PAX when needed' : 'PAX format'}, ${orderText(order)}` };
    }
    case 'repro-oci':
      if (!named.repro) evidence.push('no PAX header; ustar headers, member-name order and two end blocks are what repro-oci (and Go archive/tar, identically here) writes');
      return { ...base, ...withOrder, tool, format: 'posix', summary: 'repro-oci (src/tar/writer.ts)' };
    default:
      return { ...base, ...withOrder, tool: 'unknown', format: t.gnuMagic ? 'gnu' : 'posix', summary: 'unknown tar writer' };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Writing: the bytes a tool would write for a tree.

function octal(buf: Buffer, offset: number, width: number, value: number): void {
  buf.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'latin1');
  buf[offset + width - 1] = 0;
}

/** GNU tar's numeric field: octal when it fits, else base-256 (gnu format only). */
function gnuNumber(buf: Buffer, offset: number, width: number, value: number): void {
  if (value >= 0 && value < 8 ** (width - 1)) return octal(buf, offset, width, value);
  let v = BigInt(value);
  for (let i = width - 1; i > 0; i--) {
    buf[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[offset] = 0x80;
}

function isAscii(bytes: Buffer): boolean {
  return bytes.every((b) => b < 0x80);
}

interface Named {
  entry: ForeignTarEntry;
  /** The member name in the archive (prefix and directory slash included). */
  name: string;
  /** The link field as written (hardlinks carry the archive's name for their target). */
  link: string;
}

function paxBlock(header: Buffer, records: [string, Buffer][]): Buffer {
  const data = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  return Buffer.concat([finishChecksum(header), data, padding(data.length)]);
}

function gnuHeaders(c: TarConvention, { entry, name, link }: Named): Buffer {
  const nameBytes = encodeName(name);
  const linkBytes = encodeName(link);
  const out: Buffer[] = [];
  const size = entry.type === 'file' ? entry.size : 0;
  const block = Buffer.alloc(BLOCK);
  nameBytes.copy(block, 0, 0, 100);
  octal(block, 100, 8, entry.mode & 0o7777);
  block.write(TYPEFLAG[entry.type], 156, 'latin1');
  linkBytes.copy(block, 157, 0, 100);
  Buffer.from(entry.uname ?? '', 'utf8').copy(block, 265, 0, 32);
  Buffer.from(entry.gname ?? '', 'utf8').copy(block, 297, 0, 32);
  const device = entry.type === 'char' || entry.type === 'block';
  if (c.format === 'gnu') {
    const longLink = (type: 'K' | 'L', value: Buffer): Buffer => {
      const h = Buffer.alloc(BLOCK);
      h.write('././@LongLink', 0, 'latin1');
      octal(h, 100, 8, 0o644);
      octal(h, 108, 8, 0);
      octal(h, 116, 8, 0);
      octal(h, 124, 12, value.length + 1);
      octal(h, 136, 12, 0);
      h.write(type, 156, 'latin1');
      h.write('ustar  \0', 257, 'latin1');
      Buffer.from(c.longLinkOwner?.uname ?? 'root').copy(h, 265, 0, 32);
      Buffer.from(c.longLinkOwner?.gname ?? 'root').copy(h, 297, 0, 32);
      const data = Buffer.concat([value, Buffer.alloc(1)]);
      return Buffer.concat([finishChecksum(h), data, padding(data.length)]);
    };
    if (linkBytes.length > 100) out.push(longLink('K', linkBytes));
    if (nameBytes.length > 100) out.push(longLink('L', nameBytes));
    gnuNumber(block, 108, 8, entry.uid);
    gnuNumber(block, 116, 8, entry.gid);
    gnuNumber(block, 124, 12, size);
    gnuNumber(block, 136, 12, entry.mtime);
    block.write('ustar  \0', 257, 'latin1');
    if (device) {
      octal(block, 329, 8, entry.devMajor ?? 0);
      octal(block, 337, 8, entry.devMinor ?? 0);
    }
    out.push(finishChecksum(block));
    return Buffer.concat(out);
  }
  // POSIX format, records in the order GNU tar's start_header stores them.
  const records: [string, Buffer][] = [];
  if (linkBytes.length > 100) records.push(['linkpath', linkBytes]);
  if (nameBytes.length > 100 || !isAscii(nameBytes)) records.push(['path', nameBytes]);
  const fit = (key: string, value: number, max: number): number => {
    if (value <= max) return value;
    records.push([key, Buffer.from(String(value))]);
    return 0;
  };
  octal(block, 108, 8, fit('uid', entry.uid, MAX_OCTAL_7));
  octal(block, 116, 8, fit('gid', entry.gid, MAX_OCTAL_7));
  octal(block, 124, 12, fit('size', size, MAX_OCTAL_11));
  const mtimeFits = entry.mtime >= 0 && entry.mtime <= MAX_OCTAL_11;
  if (entry.paxTimes?.mtime !== undefined) records.push(['mtime', Buffer.from(entry.paxTimes.mtime, 'latin1')]);
  else if (!mtimeFits) records.push(['mtime', Buffer.from(String(entry.mtime))]);
  octal(block, 136, 12, mtimeFits ? entry.mtime : 0);
  octal(block, 329, 8, device ? (entry.devMajor ?? 0) : 0);
  octal(block, 337, 8, device ? (entry.devMinor ?? 0) : 0);
  if (entry.paxTimes?.atime !== undefined) records.push(['atime', Buffer.from(entry.paxTimes.atime, 'latin1')]);
  if (entry.paxTimes?.ctime !== undefined) records.push(['ctime', Buffer.from(entry.paxTimes.ctime, 'latin1')]);
  for (const [key, value] of [['uname', entry.uname], ['gname', entry.gname]] as const) {
    const bytes = Buffer.from(value ?? '', 'utf8');
    if (bytes.length > 32 || !isAscii(bytes)) records.push([key, bytes]);
  }
  if (entry.acls?.access) records.push(['SCHILY.acl.access', entry.acls.access]);
  if (entry.acls?.default) records.push(['SCHILY.acl.default', entry.acls.default]);
  for (const [key, value] of Object.entries(entry.xattrs ?? {})) records.push([`SCHILY.xattr.${key}`, value]);
  block.write('ustar\x0000', 257, 'latin1');
  if (records.length > 0) {
    const h = Buffer.alloc(BLOCK);
    gnuPaxHeaderName(name).copy(h, 0);
    octal(h, 100, 8, 0o644);
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, records.reduce((n, [k, v]) => n + paxRecord(k, v).length, 0));
    const headerMtime = c.paxHeaderMtime === 'member' || c.paxHeaderMtime === undefined ? entry.mtime : c.paxHeaderMtime;
    octal(h, 136, 12, Math.max(0, Math.min(headerMtime, MAX_OCTAL_11)));
    h.write('x', 156, 'latin1');
    h.write('ustar\x0000', 257, 'latin1');
    out.push(paxBlock(h, records));
  }
  out.push(finishChecksum(block));
  return Buffer.concat(out);
}

/** Go's formatter.formatString: copy, NUL-terminate when shorter, and never leave a trailing slash cut mid-name. */
function goString(buf: Buffer, offset: number, width: number, value: Buffer): void {
  value.copy(buf, offset, 0, width);
  if (value.length < width) buf[offset + value.length] = 0;
  if (value.length > width && buf[offset + width - 1] === 0x2f) {
    let n = width - 1;
    while (n > 0 && value[n - 1] === 0x2f) n--;
    buf[offset + n] = 0;
  }
}

function goHeaders(c: TarConvention, { entry, name, link }: Named): Buffer {
  const nameBytes = encodeName(name);
  const linkBytes = encodeName(link);
  const size = entry.type === 'file' ? entry.size : 0;
  const pax = new Map<string, Buffer>();
  let ustarAllowed = c.goUstarPrefix !== false;
  if (nameBytes.length > 100 || !isAscii(nameBytes)) {
    pax.set('path', nameBytes);
    if (!splittableUstar(nameBytes)) ustarAllowed = false;
  }
  if (linkBytes.length > 100 || !isAscii(linkBytes)) {
    pax.set('linkpath', linkBytes);
    ustarAllowed = false;
  }
  const fit = (key: string, value: number, max: number): number => {
    if (value >= 0 && value <= max) return value;
    pax.set(key, Buffer.from(String(value)));
    ustarAllowed = false;
    return 0;
  };
  const uid = fit('uid', entry.uid, MAX_OCTAL_7);
  const gid = fit('gid', entry.gid, MAX_OCTAL_7);
  const fittedSize = fit('size', size, MAX_OCTAL_11);
  const mtime = fit('mtime', entry.mtime, MAX_OCTAL_11);
  for (const [key, value] of [['uname', entry.uname], ['gname', entry.gname]] as const) {
    const bytes = Buffer.from(value ?? '', 'utf8');
    if (bytes.length > 32 || !isAscii(bytes)) {
      pax.set(key, bytes);
      ustarAllowed = false;
    }
  }
  for (const [key, value] of Object.entries(entry.xattrs ?? {})) {
    pax.set(`SCHILY.xattr.${key}`, value);
    ustarAllowed = false;
  }
  const main = (header: Buffer, fieldName: Buffer, prefix: Buffer): Buffer => {
    header.write(TYPEFLAG[entry.type], 156, 'latin1');
    goString(header, 0, 100, fieldName);
    goString(header, 157, 100, ustarAllowed ? linkBytes : toAscii(linkBytes));
    octal(header, 100, 8, entry.mode & 0o7777);
    octal(header, 108, 8, uid);
    octal(header, 116, 8, gid);
    octal(header, 124, 12, fittedSize);
    octal(header, 136, 12, mtime);
    goString(header, 265, 32, Buffer.from(pax.has('uname') ? toAscii(Buffer.from(entry.uname ?? '')) : (entry.uname ?? '')));
    goString(header, 297, 32, Buffer.from(pax.has('gname') ? toAscii(Buffer.from(entry.gname ?? '')) : (entry.gname ?? '')));
    octal(header, 329, 8, entry.devMajor ?? 0);
    octal(header, 337, 8, entry.devMinor ?? 0);
    if (prefix.length) goString(header, 345, 155, prefix);
    header.write('ustar\x0000', 257, 'latin1');
    return finishChecksum(header);
  };
  if (ustarAllowed) {
    let fieldName = nameBytes;
    let prefix: Buffer = Buffer.alloc(0);
    if (nameBytes.length > 100) {
      let length = nameBytes.length > 156 ? 156 : nameBytes[nameBytes.length - 1] === 0x2f ? nameBytes.length - 1 : nameBytes.length;
      length = nameBytes.subarray(0, length).lastIndexOf(0x2f);
      prefix = nameBytes.subarray(0, length);
      fieldName = nameBytes.subarray(length + 1);
    }
    return main(Buffer.alloc(BLOCK), fieldName, prefix);
  }
  const out: Buffer[] = [];
  if (pax.size > 0) {
    const records = [...pax.keys()].sort(byteOrder).map((k): [string, Buffer] => [k, pax.get(k)!]);
    const h = Buffer.alloc(BLOCK);
    goString(h, 0, 100, goPaxHeaderName(name));
    octal(h, 100, 8, 0);
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, records.reduce((n, [k, v]) => n + paxRecord(k, v).length, 0));
    octal(h, 136, 12, 0);
    h.write('x', 156, 'latin1');
    h.write('ustar\x0000', 257, 'latin1');
    out.push(paxBlock(h, records));
  }
  out.push(main(Buffer.alloc(BLOCK), toAscii(nameBytes), Buffer.alloc(0)));
  return Buffer.concat(out);
}

export interface ConventionWriteOptions {
  /** Size of the buffers yielded (the last may be shorter); default 1 MiB. */
  chunkSize?: number;
}

/** Orders a tree's entries as the convention's tool would have archived them. */
export function orderEntries<T extends { path: string; type: EntryType }>(convention: TarConvention, entries: T[]): T[] {
  if (convention.order !== 'archive') return [...entries].sort(ORDERS[convention.order]);
  const position = new Map((convention.archiveOrder ?? []).map((p, i) => [p, i]));
  return [...entries].sort((a, b) => (position.get(a.path) ?? Infinity) - (position.get(b.path) ?? Infinity) || componentCompare(a.path, b.path));
}

/**
 * The bytes the convention's tool writes for this tree: member order, header fields, PAX records in that tool's
 * order, end blocks and record padding. Entries are paths without `./`; the convention adds its prefix and its
 * root member (metadata from `convention.root`, since a tree has no entry for its root).
 */
export async function* writeTarInConvention(convention: TarConvention, entries: Iterable<ForeignTarEntry> | AsyncIterable<ForeignTarEntry>, options: ConventionWriteOptions = {}): AsyncGenerator<Buffer> {
  const list: ForeignTarEntry[] = [];
  for await (const entry of entries) list.push(entry);
  if (convention.tool === 'repro-oci') {
    yield* writeTar(list.sort(compareMemberNames), options.chunkSize ? { chunkSize: options.chunkSize } : {});
    return;
  }
  if (convention.tool === 'unknown') throw new UserError(`cannot write a tar as an unknown tool does (${convention.evidence.join('; ')})`);
  const encode = convention.tool === 'gnu-tar' ? gnuHeaders : goHeaders;
  const prefix = convention.namePrefix;
  const out = new ChunkedOutput(options.chunkSize ?? 1024 * 1024);
  const seen = new Set<string>();
  const members: Named[] = [];
  if (convention.root) members.push({ entry: convention.root.entry, name: convention.root.name, link: '' });
  for (const entry of orderEntries(convention, list)) {
    if (seen.has(entry.path)) throw new Error(`tar writer: ${displayName(entry.path)} twice`);
    seen.add(entry.path);
    const name = prefix + memberName(entry);
    const link = entry.type === 'hardlink' ? prefix + (entry.linkTarget ?? '') : (entry.linkTarget ?? '');
    members.push({ entry, name, link });
  }
  for (const member of members) {
    yield* out.write(encode(convention, member));
    if (member.entry.type === 'file' && member.entry.size > 0) yield* writeContent(out, member.entry);
  }
  const endLength = out.total + convention.endZeroBlocks * BLOCK;
  const total = Math.ceil(endLength / convention.recordSize) * convention.recordSize;
  yield* out.write(Buffer.alloc(total - out.total));
  yield* out.rest();
}
