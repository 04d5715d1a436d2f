import { isDeepStrictEqual } from 'node:util';
import { byteOrder } from '../util/order.js';

/** How deep a comparison goes, from the outside in; also the order in which differences are listed. */
export type Level = 'index' | 'manifest' | 'config' | 'layer' | 'package' | 'entry';
export const LEVELS: readonly Level[] = ['index', 'manifest', 'config', 'layer', 'package', 'entry'];

/** What happened between side a and side b. */
export type DifferenceKind = 'added' | 'removed' | 'changed';

/**
 * One difference between two images, as data: the CLI prints it (formatDifference) or serialises it (diffJson).
 * Values are values (numbers, strings, objects), never JSON inside a string.
 */
export interface Difference {
  kind: DifferenceKind;
  level: Level;
  /**
   * Where, in the form the CLI prints and `--ignore` takes: a JSON path in the index, manifest or config
   * (`config.Labels["io.github.repro-oci.recipe"]`, `rootfs.diff_ids[0]`); `layers[N]`; a package name; or an
   * entry's absolute path, quoted with C escapes when it is not printable UTF-8 (`"/srv/caf\xe9"`, see displayName).
   */
  path: string;
  /** Entries and layer differences: the layer's position in the manifest, or `merged` for the filesystem all layers make. */
  layer?: number | 'merged';
  /**
   * Side a's value; absent when added. Fields: the JSON value. Entries: the differing fields (every field when
   * removed; null where a side has no such field). Packages: the version. Layers: digest, diffID and size.
   */
  before?: unknown;
  /** Side b's value; absent when removed. */
  after?: unknown;
  /** The pacman package owning the entry (on the side that has it; b's when both do), or the package itself. */
  package?: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * A JSON value as one line of text safe for a terminal: JSON escapes C0 controls and lone surrogates; the C1 controls
 * (U+009B starts an escape sequence too) and the line and paragraph separators are escaped here as well.
 */
export function jsonText(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A key in a JSON path: `.key` when it reads as an identifier, else `["…"]` as jsonText writes it. */
export function keyPath(prefix: string, key: string): string {
  return IDENTIFIER.test(key) ? (prefix ? `${prefix}.${key}` : key) : `${prefix}[${jsonText(key)}]`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The differences between two JSON documents at `level`, down to the leaves: a key or array element present on
 * one side only is one difference holding the whole value.
 */
export function compareJson(level: Level, a: unknown, b: unknown, path: string, out: Difference[]): void {
  if (isDeepStrictEqual(a, b)) return;
  if (isObject(a) && isObject(b)) {
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort(byteOrder)) {
      const at = keyPath(path, key);
      if (!Object.hasOwn(a, key)) out.push({ kind: 'added', level, path: at, after: b[key] });
      else if (!Object.hasOwn(b, key)) out.push({ kind: 'removed', level, path: at, before: a[key] });
      else compareJson(level, a[key], b[key], at, out);
    }
  } else if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const at = `${path}[${i}]`;
      if (i >= a.length) out.push({ kind: 'added', level, path: at, after: b[i] });
      else if (i >= b.length) out.push({ kind: 'removed', level, path: at, before: a[i] });
      else compareJson(level, a[i], b[i], at, out);
    }
  } else {
    out.push({ kind: 'changed', level, path, before: a, after: b });
  }
}
