import { UserError } from '../errors.js';
import { parseJsonText } from './json-text.js';
import { displayName } from './raw-name.js';

/**
 * The first object member name that appears twice in one object of `text`, a JSON text that JSON.parse accepted,
 * or undefined. JSON.parse keeps the last of the two; Go's encoding/json also does but other parsers keep the first
 * or refuse, so a signed document with a repeated name can mean different things to two verifiers. Strings are
 * skipped whole, so only structural braces and brackets count; the scan keeps its own stack (no recursion).
 */
export function repeatedJsonKey(text: string): string | undefined {
  const open: (Set<string> | null)[] = [];
  for (let at = 0; at < text.length; at++) {
    const c = text.charCodeAt(at);
    if (c === 0x7b /* { */) open.push(new Set());
    else if (c === 0x5b /* [ */) open.push(null);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) open.pop();
    else if (c === 0x22 /* " */) {
      let end = at + 1;
      while (text.charCodeAt(end) !== 0x22) end += text.charCodeAt(end) === 0x5c /* \ */ ? 2 : 1;
      const names = open[open.length - 1];
      if (names && nextSignificant(text, end + 1) === ':') {
        const name = JSON.parse(text.slice(at, end + 1)) as string;
        if (names.has(name)) return name;
        names.add(name);
      }
      at = end;
    }
  }
  return undefined;
}

function nextSignificant(text: string, from: number): string | undefined {
  let at = from;
  while (at < text.length && ' \t\r\n'.includes(text[at]!)) at++;
  return text[at];
}

/**
 * A signed document's JSON read strictly: UTF-8 without substitutions, JSON (a syntax error with its line and
 * column), and no member name twice in one object — each refusal one line naming `what`. Verifiers of signed
 * documents (attestations, DSSE envelopes, in-toto statements) read through this one gate.
 */
export function parseStrictJson(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new UserError(`${what}: is not valid UTF-8`);
  }
  const value = parseJsonText(text, what);
  const repeated = repeatedJsonKey(text);
  if (repeated !== undefined) throw new UserError(`${what}: has the member ${displayName(repeated.length > 100 ? `${repeated.slice(0, 100)}…` : repeated)} twice in one object`);
  return value;
}
