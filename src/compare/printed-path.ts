import { PathPatterns } from '../install/noextract.js';
import { displayName } from '../util/raw-name.js';
import type { Difference } from './difference.js';

/** How a diff prints a layer entry's path (a tar member name, relative): absolute, quoted when not printable (displayName). */
export function printedEntryPath(path: string): string {
  return displayName(`/${path}`);
}

const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', '"': '"', n: '\n', t: '\t' };

/**
 * The name a printed form stands for: the inverse of displayName. A plain form is the name itself; a quoted one
 * has its C escapes undone, `\xNN` of a byte 0x80–0xFF giving back the raw byte (U+DC80–U+DCFF, see raw-name.ts).
 * Undefined when a quoted form is not one displayName writes.
 */
export function parsePrintedName(printed: string): string | undefined {
  if (!printed.startsWith('"')) return printed;
  if (printed.length < 2 || !printed.endsWith('"')) return undefined;
  let out = '';
  const body = printed.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '"') return undefined;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    if (e !== undefined && e in SIMPLE_ESCAPES) {
      out += SIMPLE_ESCAPES[e];
    } else if (e === 'x' && /^[0-9a-f]{2}$/.test(body.slice(i + 1, i + 3))) {
      const byte = parseInt(body.slice(i + 1, i + 3), 16);
      out += String.fromCharCode(byte < 0x80 ? byte : 0xdc00 + byte);
      i += 2;
    } else if (e === 'u' && /^[0-9a-f]{4}$/.test(body.slice(i + 1, i + 5))) {
      out += String.fromCharCode(parseInt(body.slice(i + 1, i + 5), 16));
      i += 4;
    } else {
      return undefined;
    }
  }
  return out;
}

/** An `--ignore` pattern as a glob on tar member names: a quoted one stands for its raw bytes; the leading `/` is optional. */
function entryGlob(pattern: string): string {
  const negated = pattern.startsWith('!') ? '!' : '';
  const body = pattern.slice(negated.length);
  const raw = (parsePrintedName(body) ?? body).replace(/^\//, '');
  // PathPatterns reads a leading `!` as negation and `\` as its escape.
  return negated + (!negated && /^[!\\]/.test(raw) ? '\\' : '') + raw;
}

/**
 * The differences `--ignore` leaves. A pattern that is a difference's path exactly as printed (at any level:
 * `/usr/lib/x[1]`, `"/srv/caf\xe9"`, `config.Labels["…"]`, a package name) ignores exactly the differences at that
 * path; any other pattern is an fnmatch glob on entry paths (`*` crosses `/`, a later `!PATTERN` takes entries
 * back, as pacman's NoExtract does).
 */
export function withoutIgnored(diffs: Difference[], patterns: readonly string[]): Difference[] {
  if (patterns.length === 0) return diffs;
  const printed = new Set(diffs.map((d) => d.path));
  const literal = new Set(patterns.filter((p) => printed.has(p)));
  const globs = new PathPatterns(patterns.filter((p) => !literal.has(p)).map(entryGlob));
  return diffs.filter((d) => !literal.has(d.path) && !(d.level === 'entry' && globs.matches(parsePrintedName(d.path)!.slice(1))));
}
