import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { UserError } from '../errors.js';
import { formatPlace, placeOf } from './json-text.js';
import { displayName } from './raw-name.js';

/** The text and syntax tree each parsed YAML document came from, by its root value: schema errors then name a line. */
const yamlSources = new WeakMap<object, { text: string; document: Document }>();

/** Parses YAML from a user's file; a syntax error becomes one line naming the file, the line and the column. */
export function parseYamlText(text: string, what: string): unknown {
  let value: unknown;
  let document: Document;
  try {
    document = parseDocument(text, { prettyErrors: false });
    const error = document.errors[0];
    if (error) throw new UserError(`${what}: not valid YAML at ${formatPlace(placeOf(text, error.pos[0]))}: ${displayName(error.message.split('\n')[0]!)}`);
    value = document.toJS(); // bounds alias expansion (maxAliasCount)
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${what}: not valid YAML: ${displayName((err as Error).message.split('\n')[0]!)}`);
  }
  if (typeof value === 'object' && value !== null) yamlSources.set(value, { text, document });
  return value;
}

/** Where the node at a JSON pointer starts (its key, when `key` is set), or its nearest ancestor that can be found. */
function yamlOffset(document: Document, pointer: string[], key: boolean): number | undefined {
  let node: unknown = document.contents;
  let offset = (node as { range?: [number] } | null)?.range?.[0];
  for (const [i, segment] of pointer.entries()) {
    if (isAlias(node)) node = node.resolve(document);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === segment);
      if (!pair) break;
      node = key && i === pointer.length - 1 ? pair.key : pair.value;
    } else if (isSeq(node)) {
      node = node.items[Number(segment)];
    } else {
      break;
    }
    const start = (node as { range?: [number] } | null)?.range?.[0];
    if (start === undefined) break;
    offset = start;
  }
  return offset;
}

/** Enough to act on; a hostile document can have thousands. */
const MAX_PROBLEMS = 5;
/** Longer names are no typo of a schema's keys (and would make the edit distance costly). */
const MAX_SUGGESTED_LENGTH = 64;

/**
 * The known name a mistyped one most likely meant: the same letters in another case, else the nearest within a
 * third of its length by edits (insertions, deletions, substitutions, swaps of neighbours), ignoring case.
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  if (name.length > MAX_SUGGESTED_LENGTH) return undefined;
  const lower = name.toLowerCase();
  const sameLetters = known.find((k) => k.toLowerCase() === lower);
  if (sameLetters !== undefined) return sameLetters;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Optimal string alignment distance (Levenshtein plus transpositions of adjacent characters). */
function editDistance(a: string, b: string): number {
  let previous2: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, previous2[j - 2]! + 1);
      current.push(d);
    }
    [previous2, previous] = [previous, current];
  }
  return previous[b.length]!;
}

interface Problem {
  pointer: string[];
  /** Whether the problem is a key (its place is the key's, not its value's). */
  key: boolean;
  text: string;
}

function decodePointer(instancePath: string): string[] {
  return instancePath === '' ? [] : instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function formatPointer(pointer: string[]): string {
  return displayName(`/${pointer.map((s) => s.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`);
}

/**
 * Ajv's errors as problems a person can act on: an unknown key with the key it most likely meant (and without the
 * "required" error that the typo causes), allowed values listed, and for `oneOf` only the errors of the
 * alternatives that have the value's type.
 */
function describeErrors(errors: ErrorObject[]): Problem[] {
  // oneOf: alternatives of another type say nothing about this value; when all are, say which types would do.
  const dropped = new Set<ErrorObject>();
  for (const oneOf of errors.filter((e) => e.keyword === 'oneOf')) {
    const branches = (oneOf.schema as unknown[]).map((_, i) => errors.filter((e) => e.schemaPath.startsWith(`${oneOf.schemaPath}/${i}/`)));
    const wrongType = branches.map((b) => b.some((e) => e.keyword === 'type' && e.instancePath === oneOf.instancePath));
    if (wrongType.every(Boolean)) {
      branches.flat().forEach((e) => dropped.add(e));
      const types = branches.map((b) => String(b.find((e) => e.keyword === 'type')!.params.type));
      oneOf.message = `must be ${[...new Set(types)].join(' or ')}`;
    } else {
      branches.forEach((b, i) => wrongType[i] && b.forEach((e) => dropped.add(e)));
      dropped.add(oneOf);
    }
  }
  const kept = errors.filter((e) => !dropped.has(e));
  const suggested = new Set<string>();
  const problems: Problem[] = [];
  for (const e of kept) {
    if (e.keyword !== 'additionalProperties') continue;
    const key = String(e.params.additionalProperty);
    const pointer = [...decodePointer(e.instancePath), key];
    const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
    const meant = closestName(key, known);
    if (meant !== undefined) suggested.add(`${e.instancePath}/${meant}`);
    problems.push({ pointer, key: true, text: `unknown key ${formatPointer(pointer)}${meant !== undefined ? ` (did you mean ${displayName(meant)}?)` : ''}` });
  }
  for (const e of kept) {
    const pointer = decodePointer(e.instancePath);
    if (e.keyword === 'additionalProperties') continue;
    if (e.keyword === 'required' && suggested.has(`${e.instancePath}/${String(e.params.missingProperty)}`)) continue;
    if (e.keyword === 'enum') {
      const allowed = (e.params.allowedValues as unknown[]).map(String);
      const meant = typeof e.data === 'string' ? closestName(e.data, allowed) : undefined;
      problems.push({ pointer, key: false, text: `${formatPointer(pointer)} must be one of ${allowed.map(displayName).join(', ')}${meant !== undefined ? ` (did you mean ${displayName(meant)}?)` : ''}` });
      continue;
    }
    problems.push({ pointer, key: false, text: `${formatPointer(pointer)} ${e.message ?? 'is invalid'}` });
  }
  return problems;
}

let validators: Record<string, ValidateFunction | undefined> | undefined;

/** The schemas of schemas/, compiled at build time (scripts/compile-schemas.ts), loaded on first use. */
function compiledSchema(name: string): ValidateFunction {
  validators ??= createRequire(import.meta.url)('./schema-validators.cjs') as Record<string, ValidateFunction | undefined>;
  const validate = validators[name];
  if (!validate) throw new Error(`no schema ${name}`);
  return validate;
}

/**
 * A checker for one of the project's JSON schemas (schemas/NAME): the first few problems, on one line, each at
 * its line and column when the value was parsed by parseYamlText.
 */
export function schemaChecker<T>(name: string): (value: unknown, what: string) => T {
  return (value, what) => {
    const validate = compiledSchema(name);
    if (validate(value)) return value as T;
    const source = typeof value === 'object' && value !== null ? yamlSources.get(value) : undefined;
    const problems = describeErrors(validate.errors ?? []).map((p) => {
      const offset = source && yamlOffset(source.document, p.pointer, p.key);
      return offset === undefined ? p.text : `${formatPlace(placeOf(source!.text, offset))}: ${p.text}`;
    });
    const unique = [...new Set(problems)];
    const shown = unique.slice(0, MAX_PROBLEMS).join('; ');
    throw new UserError(`${what}: ${shown}${unique.length > MAX_PROBLEMS ? `; and ${unique.length - MAX_PROBLEMS} more` : ''}`);
  };
}
