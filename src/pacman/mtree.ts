import zlib from 'node:zlib';
import { UserError } from '../errors.js';
import { bytesToText } from './key-value.js';
import { decodeName } from '../util/raw-name.js';

/**
 * The mtree manifests bsdtar writes and makepkg stores gzip'd as `.MTREE` (and pacman copies to the local db).
 */

export type MtreeType = 'file' | 'dir' | 'link' | 'block' | 'char' | 'fifo' | 'socket';

export interface MtreeTime {
  sec: number;
  /** bsdtar writes `time=SEC.NSEC` with NSEC as a plain integer count of nanoseconds, not a decimal fraction. */
  nsec: number;
}

export interface MtreeEntry {
  /** Relative path without a leading `./`, unescaped. */
  path: string;
  type: MtreeType;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  time?: MtreeTime;
  size?: number;
  sha256?: string;
  md5?: string;
  /** Symlink target, unescaped. */
  link?: string;
  /** Every keyword in effect for this entry (after /set defaults), raw values, for anything not modelled. */
  keywords: Record<string, string>;
}

const TYPES = new Set<string>(['file', 'dir', 'link', 'block', 'char', 'fifo', 'socket']);

const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, s: 32, t: 9, v: 11, '\\': 92 };

/**
 * Undoes mtree's vis-style escaping: `\ooo` octal bytes and a few letter escapes; other backslashes stay. The
 * bytes are a file name, decoded losslessly as the package's own member names are (util/raw-name.ts).
 */
export function unescapeMtree(text: string): string {
  if (!text.includes('\\')) return text;
  const bytes: number[] = [];
  const raw = Buffer.from(text, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== 0x5c || i + 1 >= raw.length) {
      bytes.push(c);
      continue;
    }
    const next = String.fromCharCode(raw[i + 1]!);
    const octal = raw.subarray(i + 1, i + 4).toString('latin1');
    if (/^[0-3][0-7][0-7]$/.test(octal)) {
      bytes.push(parseInt(octal, 8));
      i += 3;
    } else if (SIMPLE_ESCAPES[next] !== undefined) {
      bytes.push(SIMPLE_ESCAPES[next]);
      i += 1;
    } else {
      bytes.push(c);
    }
  }
  return decodeName(Buffer.from(bytes));
}

function gunzipIfNeeded(input: Buffer | string, what: string): string {
  if (typeof input === 'string') return input;
  if (input.length >= 2 && input[0] === 0x1f && input[1] === 0x8b) {
    try {
      return bytesToText(zlib.gunzipSync(input), what);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`${what}: corrupt gzip data (${(err as Error).message})`);
    }
  }
  return bytesToText(input, what);
}

/** Physical lines joined where a line ends in an unescaped backslash. */
function logicalLines(text: string): Array<{ text: string; line: number }> {
  const out: Array<{ text: string; line: number }> = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (pending === '') startLine = index + 1;
    const trailing = /\\+$/.exec(line)?.[0].length ?? 0;
    if (trailing % 2 === 1) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    out.push({ text: pending + line, line: startLine });
    pending = '';
  });
  if (pending !== '') out.push({ text: pending, line: startLine });
  return out;
}

function splitKeyword(token: string): [string, string] {
  const eq = token.indexOf('=');
  return eq === -1 ? [token, ''] : [token.slice(0, eq), token.slice(eq + 1)];
}

function normalizePath(path: string): string {
  let out = path;
  while (out.startsWith('./')) out = out.slice(2);
  return out === '' ? '.' : out;
}

function toEntry(path: string, keywords: Record<string, string>, what: string, line: number): MtreeEntry {
  const where = `${what}: line ${line} (${JSON.stringify(path)})`;
  const integer = (key: string, radix: 8 | 10): number | undefined => {
    const value = keywords[key];
    if (value === undefined) return undefined;
    const pattern = radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
    if (!pattern.test(value)) throw new UserError(`${where}: ${key}=${JSON.stringify(value)} is not a valid number`);
    const parsed = parseInt(value, radix);
    if (!Number.isSafeInteger(parsed)) throw new UserError(`${where}: ${key} is too large`);
    return parsed;
  };
  const type = keywords.type ?? 'file';
  if (!TYPES.has(type)) throw new UserError(`${where}: unknown type ${JSON.stringify(type)}`);
  const entry: MtreeEntry = { path, type: type as MtreeType, keywords };
  const mode = integer('mode', 8);
  if (mode !== undefined) entry.mode = mode & 0o7777;
  const uid = integer('uid', 10);
  if (uid !== undefined) entry.uid = uid;
  const gid = integer('gid', 10);
  if (gid !== undefined) entry.gid = gid;
  const size = integer('size', 10);
  if (size !== undefined) entry.size = size;
  if (keywords.uname !== undefined) entry.uname = unescapeMtree(keywords.uname);
  if (keywords.gname !== undefined) entry.gname = unescapeMtree(keywords.gname);
  if (keywords.time !== undefined) {
    const match = /^([0-9]+)(?:\.([0-9]+))?$/.exec(keywords.time);
    if (!match) throw new UserError(`${where}: time=${JSON.stringify(keywords.time)} is not SECONDS[.NANOSECONDS]`);
    const nsec = Number(match[2] ?? '0');
    if (nsec > 999_999_999) throw new UserError(`${where}: time=${keywords.time} has more than 999999999 nanoseconds`);
    entry.time = { sec: Number(match[1]), nsec };
  }
  const sha256 = keywords.sha256digest ?? keywords.sha256;
  if (sha256 !== undefined) entry.sha256 = sha256.toLowerCase();
  const md5 = keywords.md5digest ?? keywords.md5;
  if (md5 !== undefined) entry.md5 = md5.toLowerCase();
  if (keywords.link !== undefined) entry.link = unescapeMtree(keywords.link);
  return entry;
}

/**
 * Parses an mtree manifest (gzip'd or not). Entries whose path has a `/` are full paths; a bare name is relative
 * to the current directory of the classic format, which a `type=dir` entry enters and `..` leaves.
 */
export function parseMtree(input: Buffer | string, what = '.MTREE'): MtreeEntry[] {
  const text = gunzipIfNeeded(input, what);
  let defaults: Record<string, string> = {};
  const cwd: string[] = [];
  const entries: MtreeEntry[] = [];
  for (const { text: line, line: number } of logicalLines(text)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [first, ...rest] = trimmed.split(/[ \t]+/) as [string, ...string[]];
    if (first === '/set') {
      for (const token of rest) {
        const [key, value] = splitKeyword(token);
        defaults[key] = value;
      }
      continue;
    }
    if (first === '/unset') {
      for (const token of rest) {
        const [key] = splitKeyword(token);
        if (key === 'all') defaults = {};
        else delete defaults[key];
      }
      continue;
    }
    if (first.startsWith('/')) throw new UserError(`${what}: line ${number}: unknown special command ${JSON.stringify(first)}`);
    const name = unescapeMtree(first);
    if (name === '..' && !first.includes('/')) {
      if (cwd.length === 0) throw new UserError(`${what}: line ${number}: ".." above the top directory`);
      cwd.pop();
      continue;
    }
    const keywords: Record<string, string> = { ...defaults };
    for (const token of rest) {
      const [key, value] = splitKeyword(token);
      keywords[key] = value;
    }
    const full = first.includes('/') ? name : [...cwd, name].join('/');
    const entry = toEntry(normalizePath(full), keywords, what, number);
    entries.push(entry);
    if (!first.includes('/') && entry.type === 'dir') cwd.push(name);
  }
  return entries;
}
