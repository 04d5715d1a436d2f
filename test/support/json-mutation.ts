import fc from 'fast-check';

/** Values that typed readers get wrong most often: wrong types, edge numbers, prototype names, hostile text. */
export const edgeValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53 + 2, -(2 ** 63), 1e308, '', ' ', '\n', 'a\rb', '\u001b[2J', '__proto__', 'toString', [], {}, [1], { '': 1 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'toString', 'x', '\n'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
);

/** One change to a JSON-like tree: the node at a (preorder) index is replaced, removed, or given an extra key. */
export interface TreeEdit {
  at: number;
  kind: 'replace' | 'remove' | 'add';
  key: string;
  value: unknown;
}

export const treeEdits = (maxEdits = 4): fc.Arbitrary<TreeEdit[]> =>
  fc.array(
    fc.record({
      at: fc.nat(),
      kind: fc.constantFrom('replace', 'replace', 'remove', 'add') as fc.Arbitrary<TreeEdit['kind']>,
      key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'extra', '', 'mediaType', 'size', 'digest'), fc.string({ maxLength: 8 })),
      value: edgeValue,
    }),
    { minLength: 1, maxLength: maxEdits },
  );

type Slot = { parent: Record<string, unknown> | unknown[]; key: string | number };

function slots(value: unknown, out: Slot[] = []): Slot[] {
  const children: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : value !== null && typeof value === 'object' ? Object.entries(value) : [];
  for (const [key, child] of children) {
    out.push({ parent: value as Slot['parent'], key });
    slots(child, out);
  }
  return out;
}

/** Applies edits to a deep copy of `tree` (keys such as `__proto__` become own properties, as JSON.parse makes them). */
export function applyTreeEdits(tree: unknown, edits: readonly TreeEdit[]): unknown {
  const root = { root: JSON.parse(JSON.stringify(tree)) as unknown };
  for (const edit of edits) {
    const all = slots(root);
    const slot = all[edit.at % all.length]!;
    const value = JSON.parse(JSON.stringify(edit.value ?? null)) as unknown;
    if (edit.kind === 'replace') slot.parent[slot.key as never] = value as never;
    else if (edit.kind === 'remove') {
      if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
      else if (slot.parent !== root) delete slot.parent[slot.key as string];
    } else {
      const target = (slot.parent as Record<string, unknown>)[slot.key as string];
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) Object.defineProperty(target, edit.key, { value, enumerable: true, writable: true, configurable: true });
      else if (Array.isArray(target)) target.push(value);
    }
  }
  return root.root;
}
