import { UserError } from '../errors.js';

/** A place in a text, 1-based, as editors count lines and columns. */
export interface TextPlace {
  line: number;
  column: number;
}

export function formatPlace(place: TextPlace): string {
  return `line ${place.line}, column ${place.column}`;
}

/** The line and column of a UTF-16 offset into `text` (a line ends at `\n`; `\r\n` counts once). */
export function placeOf(text: string, offset: number): TextPlace {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Parses JSON from a file or an image; a syntax error becomes one line with the line and column where the text
 * stops being JSON. The text is the document's author's: the message never quotes more of it than one character.
 */
export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const error = findJsonSyntaxError(text);
    throw new UserError(`${what}: not valid JSON${error ? ` at ${formatPlace(placeOf(text, error.offset))}: ${error.problem}` : ''}`);
  }
}

/** One character of a hostile text, safe to print: printable ASCII as itself, anything else as its code point. */
function describeCharacter(text: string, at: number): string {
  const code = text.codePointAt(at)!;
  return code >= 0x21 && code <= 0x7e ? `'${String.fromCodePoint(code)}'` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPE = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;
const WHITESPACE = /[ \t\n\r]*/y;

/**
 * Where and why `text` is not JSON (RFC 8259), or undefined if it is: V8's messages do not always give a position
 * (and quote the text when they do not), so the first error is found again by this strict scanner. It keeps its
 * own stack of open containers, so no depth of nesting can exhaust the call stack.
 */
export function findJsonSyntaxError(text: string): { offset: number; problem: string } | undefined {
  let at = 0;
  const open: ('[' | '{')[] = [];
  const fail = (expected: string): { offset: number; problem: string } => ({
    offset: at,
    problem: at >= text.length ? `the text ends where ${expected} belongs` : `unexpected ${describeCharacter(text, at)} where ${expected} belongs`,
  });
  const skipWhitespace = (): void => {
    WHITESPACE.lastIndex = at;
    WHITESPACE.exec(text);
    at = WHITESPACE.lastIndex;
  };
  /** Scans a string starting at its opening quote; a problem, or undefined once past its closing quote. */
  const scanString = (): { offset: number; problem: string } | undefined => {
    for (at++; at < text.length; ) {
      const c = text.charCodeAt(at);
      if (c === 0x22) {
        at++;
        return undefined;
      }
      if (c < 0x20) return { offset: at, problem: `${describeCharacter(text, at)} inside a string (control characters must be escaped)` };
      if (c === 0x5c) {
        ESCAPE.lastIndex = at;
        if (!ESCAPE.test(text)) return { offset: at, problem: 'an invalid escape sequence in a string' };
        at = ESCAPE.lastIndex;
      } else {
        at++;
      }
    }
    return { offset: at, problem: 'the text ends inside a string' };
  };
  type State = 'value' | 'value or ]' | 'key' | 'key or }' | 'after value';
  let state: State = 'value';
  for (;;) {
    skipWhitespace();
    if (state === 'value' || state === 'value or ]') {
      const c = text[at];
      if (c === ']' && state === 'value or ]') {
        at++;
        open.pop();
        state = 'after value';
      } else if (c === '{' || c === '[') {
        at++;
        open.push(c);
        state = c === '{' ? 'key or }' : 'value or ]';
      } else if (c === '"') {
        const problem = scanString();
        if (problem) return problem;
        state = 'after value';
      } else {
        NUMBER.lastIndex = at;
        const literal = ['true', 'false', 'null'].find((word) => text.startsWith(word, at));
        if (literal) at += literal.length;
        else if (NUMBER.test(text)) at = NUMBER.lastIndex;
        else return fail('a value');
        state = 'after value';
      }
    } else if (state === 'key' || state === 'key or }') {
      if (text[at] === '}' && state === 'key or }') {
        at++;
        open.pop();
        state = 'after value';
        continue;
      }
      if (text[at] !== '"') return fail('a quoted key');
      const problem = scanString();
      if (problem) return problem;
      skipWhitespace();
      if (text[at] !== ':') return fail("':'");
      at++;
      state = 'value';
    } else {
      const container = open.at(-1);
      if (container === undefined) return at < text.length ? { offset: at, problem: `unexpected ${describeCharacter(text, at)} after the end of the JSON value` } : undefined;
      const close = container === '[' ? ']' : '}';
      if (text[at] === ',') {
        at++;
        state = container === '[' ? 'value' : 'key';
      } else if (text[at] === close) {
        at++;
        open.pop();
      } else {
        return fail(`',' or '${close}'`);
      }
    }
  }
}
