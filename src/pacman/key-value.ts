import { UserError } from '../errors.js';

/** One `key = value` line of a makepkg metadata file (.PKGINFO, .BUILDINFO). */
export interface KeyValueLine {
  key: string;
  value: string;
  /** 1-based, for messages. */
  line: number;
}

export interface KeyValueFile {
  lines: KeyValueLine[];
  /** Lines that were neither blank, a comment, nor `key = value`; libalpm skips those too. */
  warnings: string[];
}

export function bytesToText(input: Buffer | string, what: string): string {
  if (typeof input === 'string') return input;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch {
    throw new UserError(`${what}: not valid UTF-8`);
  }
}

/**
 * Reads makepkg's `key = value` format the way libalpm does: the key ends at the first space, which must start
 * exactly ` = `; the value is everything after that, untrimmed. `#` starts a comment only at the start of a line.
 */
export function parseKeyValueLines(input: Buffer | string, what: string): KeyValueFile {
  const text = bytesToText(input, what);
  const lines: KeyValueLine[] = [];
  const warnings: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || line.startsWith('#')) return;
    const space = line.indexOf(' ');
    if (space <= 0 || line.slice(space, space + 3) !== ' = ') {
      warnings.push(`${what}: line ${index + 1} is not "key = value"; skipped`);
      return;
    }
    lines.push({ key: line.slice(0, space), value: line.slice(space + 3), line: index + 1 });
  });
  return { lines, warnings };
}

/** Accumulates typed fields from key-value lines, with errors that name the file, key and line. */
export class FieldCollector {
  private readonly seen = new Set<string>();

  constructor(private readonly what: string) {}

  /** A key that may appear once; a repeat is an error rather than a silent overwrite. */
  single(entry: KeyValueLine): string {
    if (this.seen.has(entry.key)) throw new UserError(`${this.what}: line ${entry.line}: ${entry.key} given more than once`);
    this.seen.add(entry.key);
    return entry.value;
  }

  /** A non-negative integer field such as a size or a date. */
  integer(entry: KeyValueLine): number {
    const value = this.single(entry);
    if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
      throw new UserError(`${this.what}: line ${entry.line}: ${entry.key} ${JSON.stringify(value)} is not a non-negative integer`);
    }
    return Number(value);
  }

  require<T>(value: T | undefined, key: string): T {
    if (value === undefined) throw new UserError(`${this.what}: required field ${key} is missing`);
    return value;
  }
}
