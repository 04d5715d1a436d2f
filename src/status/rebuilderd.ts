import { errorMessage, NotFoundError, UserError } from '../errors.js';
import { DEFAULT_RETRY, fetchBytes, type RetryPolicy } from '../fetch/download.js';
import { displayName } from '../util/raw-name.js';
import type { ApiGeneration, RebuilderAnswer, Rebuilder, RebuilderRow, RebuildStatus } from './model.js';

/**
 * A client for rebuilderd's package lists, both API generations: v1 (`/api/v1/packages/binary`, paged) where the
 * server has it, else v0 (`/api/v0/pkgs/list`), detected per server by a 404 on v1. Each name is asked for on
 * its own (both APIs filter by exact name), so no whole distribution list is downloaded. Everything a server
 * sends is bounded (bytes per response, time per request, pages per name) and checked field by field; a server
 * that fails any of it gives no answer at all, which never counts as GOOD.
 */

export interface QueryOptions {
  /** Time limit of each request (headers and body). */
  timeoutMs: number;
  /** Largest response body. */
  maxBytes: number;
  retry: RetryPolicy;
  /** Requests in flight per rebuilder. */
  concurrency: number;
}

export const DEFAULT_QUERY: QueryOptions = { timeoutMs: 30_000, maxBytes: 16 * 1024 * 1024, retry: DEFAULT_RETRY, concurrency: 8 };

/** Records per v1 page, and the most pages one name may take (a name has a handful of rows; more is hostile). */
const PAGE_LIMIT = 1000;
const MAX_PAGES = 20;

const STATUSES = new Set(['GOOD', 'BAD', 'UNKWN']);

type Json = Record<string, unknown>;

/** Field checks for one record; a wrong type names the rebuilder, the record and the field on one line. */
class RecordReader {
  constructor(private readonly value: Json, private readonly what: string) {}

  private fail(field: string, expected: string): never {
    throw new UserError(`${this.what}: ${JSON.stringify(field)} is not ${expected}`);
  }

  string(field: string): string {
    const v = this.value[field];
    if (typeof v !== 'string' || v.length > 4096) this.fail(field, 'a string');
    return v;
  }

  nullableString(field: string): string | null {
    return this.value[field] === null || this.value[field] === undefined ? null : this.string(field);
  }

  nullableId(field: string): number | null {
    const v = this.value[field];
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(field, 'a non-negative integer or null');
    return v;
  }

  status(field: string, nullable: boolean): RebuildStatus | null {
    const v = this.value[field];
    if (v === null && nullable) return null;
    if (typeof v !== 'string' || !STATUSES.has(v)) this.fail(field, `GOOD, BAD or UNKWN${nullable ? ' or null' : ''}`);
    return v as RebuildStatus;
  }

  optionalBoolean(field: string): boolean | undefined {
    const v = this.value[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.fail(field, 'a boolean');
    return v;
  }
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new UserError(`${what}: not valid JSON`);
  }
}

function records(list: unknown, what: string): Json[] {
  if (!Array.isArray(list)) throw new UserError(`${what}: expected an array of records`);
  return list.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new UserError(`${what}: record ${i} is not an object`);
    return item as Json;
  });
}

function v1Row(record: Json, what: string): { id: number; row: RebuilderRow } {
  const r = new RecordReader(record, what);
  const id = r.nullableId('id');
  if (id === null) throw new UserError(`${what}: "id" is missing`);
  return {
    id,
    row: {
      name: r.string('name'),
      version: r.string('version'),
      architecture: r.string('architecture'),
      repository: r.nullableString('component'),
      status: r.status('status', true),
      buildId: r.nullableId('build_id'),
      artifactId: r.nullableId('artifact_id'),
      attestationLogId: r.nullableId('attestation_log_id'),
      diffoscopeLogId: r.nullableId('diffoscope_log_id'),
      date: r.nullableString('last_seen'),
      artifactUrl: r.string('url'),
    },
  };
}

function v0Row(record: Json, what: string): RebuilderRow {
  const r = new RecordReader(record, what);
  const hasAttestation = r.optionalBoolean('has_attestation');
  const hasDiffoscope = r.optionalBoolean('has_diffoscope');
  return {
    name: r.string('name'),
    version: r.string('version'),
    architecture: r.string('architecture'),
    repository: r.nullableString('suite'),
    status: r.status('status', false),
    buildId: r.nullableId('build_id'),
    ...(hasAttestation !== undefined ? { hasAttestation } : {}),
    ...(hasDiffoscope !== undefined ? { hasDiffoscope } : {}),
    date: r.nullableString('built_at'),
    artifactUrl: r.string('artifact_url'),
  };
}

function endpoint(rebuilder: Rebuilder, path: string, query: Record<string, string>): string {
  return `${rebuilder.url}${path}?${new URLSearchParams(query).toString()}`;
}

/** Every v1 row for one name, page by page (sorted by id, each page after the last id seen). */
async function v1Rows(rebuilder: Rebuilder, name: string, options: QueryOptions): Promise<RebuilderRow[]> {
  const rows: RebuilderRow[] = [];
  let after: number | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query: Record<string, string> = { name, distribution: 'archlinux', sort: 'id', direction: 'Ascending', limit: String(PAGE_LIMIT) };
    if (after !== undefined) query.after = String(after);
    const url = endpoint(rebuilder, '/api/v1/packages/binary', query);
    const what = `rebuilder ${rebuilder.name}: ${url}`;
    const body = parseJson(await fetchBytes(url, `rebuilder ${rebuilder.name}`, options.maxBytes, options.retry, options.timeoutMs), what);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UserError(`${what}: expected an object with "total" and "records"`);
    const { total, records: list } = body as Json;
    if (typeof total !== 'number' || !Number.isSafeInteger(total) || total < 0) throw new UserError(`${what}: "total" is not a non-negative integer`);
    const got = records(list, what).map((record, i) => v1Row(record, `${what}: record ${i}`));
    for (const { id, row } of got) {
      // Each page must move forward, or a hostile server could page forever.
      if (after !== undefined && id <= after) throw new UserError(`${what}: record id ${id} does not follow ${after}`);
      rows.push(row);
    }
    if (got.length < PAGE_LIMIT || rows.length >= total) return rows;
    after = got[got.length - 1]!.id;
  }
  throw new UserError(`rebuilder ${rebuilder.name}: more than ${MAX_PAGES} pages for ${displayName(name)}`);
}

async function v0Rows(rebuilder: Rebuilder, name: string, options: QueryOptions): Promise<RebuilderRow[]> {
  const url = endpoint(rebuilder, '/api/v0/pkgs/list', { name, distro: 'archlinux' });
  const what = `rebuilder ${rebuilder.name}: ${url}`;
  const body = parseJson(await fetchBytes(url, `rebuilder ${rebuilder.name}`, options.maxBytes, options.retry, options.timeoutMs), what);
  return records(body, what).map((record, i) => v0Row(record, `${what}: record ${i}`));
}

/** v1 unless the server says it has no such endpoint (404), then v0; a 404 there too means it is no rebuilderd. */
async function detectAndQuery(rebuilder: Rebuilder, name: string, options: QueryOptions): Promise<{ api: ApiGeneration; rows: RebuilderRow[] }> {
  try {
    return { api: 'v1', rows: await v1Rows(rebuilder, name, options) };
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  try {
    return { api: 'v0', rows: await v0Rows(rebuilder, name, options) };
  } catch (err) {
    if (err instanceof NotFoundError) throw new UserError(`rebuilder ${rebuilder.name}: neither /api/v1/packages/binary nor /api/v0/pkgs/list exists (HTTP 404)`);
    throw err;
  }
}

/**
 * Asks one rebuilder for the rows of each name. The first name also detects the API; the rest go in parallel
 * (`options.concurrency` at a time). The first failure ends the whole query: a rebuilder answers for all the
 * names or for none, and one that is down is not asked a thousand more times.
 */
export async function queryRebuilder(rebuilder: Rebuilder, names: readonly string[], options: QueryOptions = DEFAULT_QUERY): Promise<RebuilderAnswer> {
  const rows = new Map<string, RebuilderRow[]>();
  // Rows for other names (a server that ignores the filter) are dropped: only exact names are ever looked at.
  const keep = (name: string, got: RebuilderRow[]): void => void rows.set(name, got.filter((r) => r.name === name));
  const unique = [...new Set(names)];
  try {
    if (unique.length === 0) return { rebuilder, api: 'v1', rows };
    const first = await detectAndQuery(rebuilder, unique[0]!, options);
    keep(unique[0]!, first.rows);
    const ask = first.api === 'v1' ? v1Rows : v0Rows;
    let next = 1;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && next < unique.length) {
        const name = unique[next++]!;
        try {
          keep(name, await ask(rebuilder, name, options));
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, unique.length) }, worker));
    return { rebuilder, api: first.api, rows };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    // The answer is filed under the rebuilder already: its name is not repeated in the reason.
    const prefix = `rebuilder ${rebuilder.name}: `;
    const message = errorMessage(err);
    return { rebuilder, error: message.startsWith(prefix) ? message.slice(prefix.length) : message };
  }
}
