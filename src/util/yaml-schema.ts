import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.js';
import { displayName } from './raw-name.js';

/** Parses YAML from a user's file; a syntax error becomes one line naming the file. */
export function parseYamlText(text: string, what: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: false });
  } catch (err) {
    throw new UserError(`${what}: not valid YAML: ${displayName((err as Error).message.split('\n')[0]!)}`);
  }
}

/** Enough to act on; a hostile document can have thousands. */
const MAX_PROBLEMS = 5;

/**
 * A checker for one of the project's JSON schemas (schemas/NAME): the first few problems, on one line. The schema
 * is compiled on first use, not at import: a command pays only for the schemas it checks against.
 */
export function schemaChecker<T>(name: string): (value: unknown, what: string) => T {
  let compiled: ValidateFunction<T> | undefined;
  return (value, what) => {
    const validate = (compiled ??= new Ajv({ allErrors: true, strict: true }).compile<T>(JSON.parse(readFileSync(new URL(`../../../schemas/${name}`, import.meta.url), 'utf8')) as object));
    if (validate(value)) return value;
    // Paths and property names come from the document: quoted when they hold line breaks or control characters.
    const problems = (validate.errors ?? []).map((e) => `${displayName(e.instancePath || '/')} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${displayName(String(e.params.additionalProperty))})` : ''}`);
    const unique = [...new Set(problems)];
    const shown = unique.slice(0, MAX_PROBLEMS).join('; ');
    throw new UserError(`${what}: ${shown}${unique.length > MAX_PROBLEMS ? `; and ${unique.length - MAX_PROBLEMS} more` : ''}`);
  };
}
