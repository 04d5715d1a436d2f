/** commander argParser for repeatable options (`-o A -o B` → ['A', 'B']). */
export function repeatable(value: string, previous: string[]): string[] {
  return [...previous, value];
}
