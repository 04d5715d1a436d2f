import { byteOrder } from '../util/order.js';

/**
 * The one writer for JSON whose bytes we hash (manifests, indexes, configs, locks): object keys sorted by code
 * point, no insignificant whitespace, integers only. Fixed output for fixed input, whatever the insertion order.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function canonicalJson(value: unknown): string {
  return write(value, '$', '');
}

export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

/**
 * The same canonical form, indented by two spaces with a trailing newline: for files people read and diff
 * (locks). Still a pure function of the value.
 */
export function canonicalJsonPretty(value: unknown): string {
  return `${write(value, '$', '\n')}\n`;
}


/** `newline` is '' for the compact form, or a newline plus the current indentation for the pretty one. */
function write(value: unknown, path: string, newline: string): string {
  if (value === null) return 'null';
  const inner = newline && `${newline}  `;
  const colon = newline ? ': ' : ':';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON: ${path} is not a safe integer: ${value}`);
      return String(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        if (value.length === 0) return '[]';
        return `[${inner}${value.map((v, i) => write(v, `${path}[${i}]`, inner)).join(`,${inner}`)}${newline}]`;
      }
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
      if (entries.length === 0) return '{}';
      entries.sort(([a], [b]) => byteOrder(a, b));
      return `{${inner}${entries.map(([k, v]) => `${JSON.stringify(k)}${colon}${write(v, `${path}.${k}`, inner)}`).join(`,${inner}`)}${newline}}`;
    }
    default:
      throw new TypeError(`canonical JSON: ${path} has unsupported type ${typeof value}`);
  }
}
