import { compareNames } from './raw-name.js';

/**
 * Compares strings as their bytes — UTF-8, with names that are not UTF-8 as their raw bytes (see raw-name.ts) —
 * code point order, independent of locale: the one order every sorted output here uses (JavaScript's default
 * sort compares UTF-16 units, and localeCompare depends on the locale).
 */
export function byteOrder(a: string, b: string): number {
  return compareNames(a, b);
}
