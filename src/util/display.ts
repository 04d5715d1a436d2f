/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * A name or value from outside (an archive member, a database field) as it may appear in a one-line message:
 * as is when it is printable, else JSON-quoted, so that a hostile name can neither break the message over lines
 * nor send control sequences to the terminal.
 */
export function displayName(text: string): string {
  return UNPRINTABLE.test(text) ? JSON.stringify(text).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : text;
}
