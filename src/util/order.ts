/**
 * Compares strings as their UTF-8 bytes — code point order, independent of locale — the one order every sorted
 * output here uses (JavaScript's default sort compares UTF-16 units, and localeCompare depends on the locale).
 */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
