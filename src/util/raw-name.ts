import { isUtf8 } from 'node:buffer';
import { readdir, readlink } from 'node:fs/promises';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * File names are byte strings (Linux, tar, pacman), not text. A name is held here as a JavaScript string decoded
 * losslessly, as Python's "surrogateescape" does: valid UTF-8 decodes as usual, and each byte of an invalid
 * sequence becomes the lone surrogate U+DC00 + byte (U+DC80–U+DCFF), which no valid UTF-8 decodes to. Encoding
 * turns those back into the same bytes, so `encodeName(decodeName(bytes))` is always `bytes`, and two different
 * byte names never decode to the same string. Names leave the process (tar headers, pacman's database, file
 * system calls) only through encodeName.
 */

const ESCAPE_BASE = 0xdc00;
const ESCAPED = /[\udc80-\udcff]/;
const SURROGATE = /[\ud800-\udfff]/;

/** Length of the valid UTF-8 sequence starting at `at` (1–4), or 0 when the bytes there are not one. */
function validSequenceLength(bytes: Uint8Array, at: number): number {
  const b = bytes[at]!;
  if (b < 0x80) return 1;
  const continuation = (i: number, low = 0x80, high = 0xbf): boolean => at + i < bytes.length && bytes[at + i]! >= low && bytes[at + i]! <= high;
  if (b >= 0xc2 && b <= 0xdf) return continuation(1) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    // E0 excludes overlong forms, ED excludes the UTF-16 surrogates (U+D800–U+DFFF).
    const second = b === 0xe0 ? continuation(1, 0xa0) : b === 0xed ? continuation(1, 0x80, 0x9f) : continuation(1);
    return second && continuation(2) ? 3 : 0;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    // F0 excludes overlong forms, F4 anything above U+10FFFF.
    const second = b === 0xf0 ? continuation(1, 0x90) : b === 0xf4 ? continuation(1, 0x80, 0x8f) : continuation(1);
    return second && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

/** Decodes a name's bytes without loss (see the module comment). */
export function decodeName(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(buf)) return buf.toString('utf8');
  let out = '';
  let runStart = 0;
  for (let at = 0; at < buf.length; ) {
    const length = validSequenceLength(buf, at);
    if (length > 0) {
      at += length;
      continue;
    }
    out += buf.toString('utf8', runStart, at) + String.fromCharCode(ESCAPE_BASE + buf[at]!);
    at += 1;
    runStart = at;
  }
  return out + buf.toString('utf8', runStart);
}

/**
 * The bytes of a name: UTF-8, except that U+DC80–U+DCFF stand for the raw bytes 0x80–0xFF. Any other lone
 * surrogate cannot come from decodeName; it is written as U+FFFD, as Node writes it.
 */
export function encodeName(name: string): Buffer {
  if (!ESCAPED.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let runStart = 0;
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    if (!isEscape(name, i)) continue;
    parts.push(Buffer.from(name.slice(runStart, i), 'utf8'), Buffer.of(unit - ESCAPE_BASE));
    runStart = i + 1;
  }
  parts.push(Buffer.from(name.slice(runStart), 'utf8'));
  return Buffer.concat(parts);
}

/** Whether the low surrogate at `i` completes a pair (a real character), rather than standing for a byte. */
function isLowHalfOfPair(name: string, i: number): boolean {
  const before = i > 0 ? name.charCodeAt(i - 1) : 0;
  return before >= 0xd800 && before <= 0xdbff;
}

/** Whether a name holds bytes that are not UTF-8 (tar's PAX `hdrcharset=BINARY` case). */
export function hasRawBytes(name: string): boolean {
  return ESCAPED.test(name) && !isUtf8(encodeName(name));
}

/** Orders names by their bytes (what `LC_ALL=C sort` and libalpm's strcmp do), whatever they hold. */
export function compareNames(a: string, b: string): number {
  // Without surrogates, UTF-16 unit order is code point order, which is UTF-8 byte order.
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(encodeName(a), encodeName(b));
}

/**
 * A name for messages, unambiguous whatever its bytes: as it is when it is printable UTF-8, else in double quotes
 * with C escapes (`\\`, `\"`, `\n`, `\t`, `\xNN` for any other control byte and every byte that is not UTF-8, `\uNNNN`
 * for C1 controls and the line and paragraph separators).
 * A plain name never starts with `"`, so the two forms cannot be confused.
 */
export function displayName(name: string): string {
  if (!needsQuoting(name)) return name;
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    const c = name[i]!;
    if (c === '\\' || c === '"') out += `\\${c}`;
    else if (c === '\n') out += '\\n';
    else if (c === '\t') out += '\\t';
    else if (isControl(unit)) out += `\\x${hex(unit)}`;
    else if (isSeparatorOrC1(unit)) out += `\\u${unit.toString(16).padStart(4, '0')}`;
    else if (isEscape(name, i)) out += `\\x${hex(unit - ESCAPE_BASE)}`;
    else out += c;
  }
  return `"${out}"`;
}

function isControl(unit: number): boolean {
  return unit < 0x20 || unit === 0x7f;
}

/** Whether the unit at `i` stands for a raw byte (an escape that is not half of a real character). */
function isEscape(name: string, i: number): boolean {
  const unit = name.charCodeAt(i);
  return unit >= 0xdc80 && unit <= 0xdcff && !isLowHalfOfPair(name, i);
}

/** C1 controls and the Unicode line and paragraph separators: terminals and log readers act on them too. */
function isSeparatorOrC1(unit: number): boolean {
  return (unit >= 0x80 && unit <= 0x9f) || unit === 0x2028 || unit === 0x2029;
}

function needsQuoting(name: string): boolean {
  if (name.startsWith('"')) return true;
  for (let i = 0; i < name.length; i++) if (isControl(name.charCodeAt(i)) || isSeparatorOrC1(name.charCodeAt(i)) || isEscape(name, i)) return true;
  return false;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** The file system path of a tree path (relative, `/`-separated) under `root`, with the name's raw bytes. */
export function fsPath(root: string, path: string): Buffer {
  return path === '' ? Buffer.from(root) : Buffer.concat([Buffer.from(join(root, '/')), encodeName(path)]);
}

/** The entries of a directory by name, decoded losslessly (Node's string form replaces bytes that are not UTF-8). */
export async function readdirNames(dir: Buffer | string): Promise<string[]> {
  return (await readdir(dir, { encoding: 'buffer' })).map(decodeName);
}

/** A symlink's target, decoded losslessly. */
export async function readlinkName(path: Buffer | string): Promise<string> {
  return decodeName(await readlink(path, { encoding: 'buffer' }));
}

/** readdirNames, synchronously: for walks over a local tree, where a thread-pool round trip per call costs more than the call. */
export function readdirNamesSync(dir: Buffer | string): string[] {
  return readdirSync(dir, { encoding: 'buffer' }).map(decodeName);
}

/** readlinkName, synchronously (see readdirNamesSync). */
export function readlinkNameSync(path: Buffer | string): string {
  return decodeName(readlinkSync(path, { encoding: 'buffer' }));
}
