import fc from 'fast-check';
import { UserError } from '../../src/errors.js';

/**
 * Shared rules of the property-based fuzz tests (test/fuzz-*.test.ts). A parser fed anything either returns a
 * value or throws a UserError whose message is one line; any other exception, or a message that a hostile input
 * can break over lines, fails the property, and fast-check prints the seed and the smallest failing input.
 *
 * Runs are reproducible: the seed is fixed unless FUZZ_SEED says otherwise (a number, or `random`), and
 * FUZZ_SCALE multiplies the number of cases (e.g. FUZZ_SCALE=20 for a long run by hand).
 */
export function fuzzParameters<T>(numRuns: number): fc.Parameters<T> {
  const seed = process.env.FUZZ_SEED;
  const scale = Number(process.env.FUZZ_SCALE ?? '1');
  return {
    numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(scale) && scale > 0 ? scale : 1))),
    seed: seed === 'random' ? Date.now() ^ (Math.random() * 0x100000000) : seed !== undefined ? Number(seed) : 0x5eed,
    includeErrorInReport: true,
  };
}

/** The outcome every parser must have: a value, or a one-line UserError. */
export function checkRefusal(err: unknown): void {
  if (!(err instanceof UserError)) throw new Error(`not a UserError: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  if (/[\r\n]/.test(err.message)) throw new Error(`a UserError message on more than one line: ${JSON.stringify(err.message)}`);
  // Nor may it carry control characters (escape sequences) from the input to the terminal.
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  if (/[\u0000-\u0008\u000b-\u001f]/.test(err.message)) throw new Error(`a UserError message with control characters: ${JSON.stringify(err.message)}`);
}

/**
 * Inputs here are at most a few KiB: a parser that takes this long on one is quadratic or worse (a backtracking
 * regular expression, a loop that does not advance), which a hostile input would turn into a hang.
 */
const SLOW_MS = 2000;

function checkTime(started: number): void {
  const ms = performance.now() - started;
  if (ms > SLOW_MS) throw new Error(`took ${Math.round(ms)} ms on one input (limit ${SLOW_MS} ms)`);
}

/** Runs `parse` and checks its outcome (sync parsers). */
export function parsesOrRefuses(parse: () => unknown): void {
  const started = performance.now();
  try {
    parse();
  } catch (err) {
    checkRefusal(err);
  }
  checkTime(started);
}

/** Runs `parse` and checks its outcome (async parsers; fast-check's `timeout` stops one that never settles). */
export async function parsesOrRefusesAsync(parse: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  try {
    await parse();
  } catch (err) {
    checkRefusal(err);
  }
  checkTime(started);
}

/** Text as hostile files hold it: any code points, with line breaks, control characters and format bytes likely. */
export const hostileText = (maxLength = 200): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: fc.constantFrom('\n', '\r', '\t', ' ', '=', '%', '#', ':', '/', '\\', '"', "'", '\0', '\x1b', 'é', '\u2028', '-', '.', '0', '9', 'a', 'Z', '[', ']', '{', '}', '<', '>'), maxLength }),
  );

/** A text edit: replace, insert or delete a few characters at a position (a fraction of the length). */
export type TextEdit = { at: number; kind: 'replace' | 'insert' | 'delete'; text: string; length: number };

export const textEdits = (maxEdits = 6): fc.Arbitrary<TextEdit[]> =>
  fc.array(
    fc.record({
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      kind: fc.constantFrom('replace', 'insert', 'delete'),
      text: hostileText(12),
      length: fc.integer({ min: 0, max: 40 }),
    }) as fc.Arbitrary<TextEdit>,
    { minLength: 1, maxLength: maxEdits },
  );

/** Applies edits to a text (positions are fractions of its current length). */
export function applyTextEdits(text: string, edits: readonly TextEdit[]): string {
  let out = text;
  for (const edit of edits) {
    const at = Math.min(out.length, Math.floor(edit.at * out.length));
    if (edit.kind === 'insert') out = out.slice(0, at) + edit.text + out.slice(at);
    else if (edit.kind === 'delete') out = out.slice(0, at) + out.slice(at + edit.length);
    else out = out.slice(0, at) + edit.text + out.slice(at + edit.text.length);
  }
  return out;
}

/** Lines of a line-based format: lines of `sample`, shuffled, duplicated, dropped, or replaced by hostile ones. */
export const mutatedLines = (sample: string): fc.Arbitrary<string> => {
  const lines = sample.split('\n');
  return fc
    .array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...lines) }, { weight: 1, arbitrary: hostileText(60) }), { maxLength: lines.length * 2 + 4 })
    .map((picked) => picked.join('\n'));
};
