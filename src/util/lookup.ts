/**
 * `table[key]` for a key read from outside: only the table's own entries, never what an object literal inherits
 * (`toString`, `constructor`, `__proto__`), which a hostile file can name as easily as a real key.
 */
export function ownEntry<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}
