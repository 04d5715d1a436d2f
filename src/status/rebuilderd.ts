import { createHash } from 'node:crypto';
import { errorMessage, NotFoundError, UserError } from '../errors.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../fetch/download.js';
import { byteOrder } from '../util/order.js';
import { displayName } from '../util/raw-name.js';
import { getBytes, getConditional } from './http-get.js';
import type { HttpCache } from './http-cache.js';
import type { ApiGeneration, RebuilderAnswer, Rebuilder, RebuilderRow, RebuildStatus } from './model.js';

/**
 * A client for rebuilderd's package lists, both API generations: v1 (`/api/v1/packages/binary`, paged) where the
 * server has it, else v0 (`/api/v0/pkgs/list`), detected per server by a 404 on v1. A few names are asked for
 * one by one (both APIs filter by exact name), so a small input downloads no whole distribution list; many
 * names read the whole list once instead (see `wholeListAbove`). With a cache, answers are revalidated with
 * If-Modified-Since. Everything a server sends is bounded (bytes per response, time per request, pages per
 * query) and checked field by field; a server that fails any of it gives no answer at all, which never counts
 * as GOOD. Records for names not asked about are skipped after checking their name (and v1 id).
 */

export interface QueryOptions {
  /** Time limit of each request (headers and body). */
  timeoutMs: number;
  /** Largest response body. */
  maxBytes: number;
  retry: RetryPolicy;
  /** Requests in flight per rebuilder. */
  concurrency: number;
  /** Answers kept on disk and asked for again with If-Modified-Since (a 304 reuses them); none: always fetched. */
  cache?: HttpCache;
  /**
   * Above this many names (default 100), a rebuilder's whole list is read once (v1 in large pages, v0 in one
   * answer) instead of one query per name: a thousand names are a few requests, not a thousand.
   */
  wholeListAbove?: number;
  /** Largest response when reading the whole list (default 32 MiB: about 90,000 v0 rows). */
  maxListBytes?: number;
}

export const DEFAULT_QUERY: QueryOptions = { timeoutMs: 30_000, maxBytes: 16 * 1024 * 1024, retry: DEFAULT_RETRY, concurrency: 8 };

/** Records per v1 page, and the most pages one name may take (a name has a handful of rows; more is hostile). */
const PAGE_LIMIT = 1000;
const MAX_PAGES = 20;
/** The same for a whole list: 5,000 v1 records are about 2.5 MB, and 200 pages a million rows. */
const LIST_PAGE_LIMIT = 5000;
const MAX_LIST_PAGES = 200;
const MAX_LIST_BYTES = 32 * 1024 * 1024;
const WHOLE_LIST_ABOVE = 100;

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

/** A v1 record's fields (its `id` is read by the pager). */
function v1Row(record: Json, what: string): RebuilderRow {
  const r = new RecordReader(record, what);
  return {
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

/** Which names a query is for: one (asked by name) or many (read from the whole list). */
interface Wanted {
  has(name: string): boolean;
  /** For messages: `for NAME` or `in its package list`. */
  subject: string;
  /** Query parameters that select these names. */
  filter: Record<string, string>;
  /** Records per v1 page, and the most pages. */
  pageLimit: number;
  maxPages: number;
  /** Largest response. */
  maxBytes: number;
  /** For a whole list: names the summaries kept of its pages (the sha256 of the sorted names). */
  summaryOf?: string;
}

function oneName(name: string, options: QueryOptions): Wanted {
  return { has: (n) => n === name, subject: `for ${displayName(name)}`, filter: { name }, pageLimit: PAGE_LIMIT, maxPages: MAX_PAGES, maxBytes: options.maxBytes };
}

function manyNames(names: readonly string[], options: QueryOptions): Wanted {
  const set = new Set(names);
  const summaryOf = createHash('sha256').update(JSON.stringify([...set].sort(byteOrder))).digest('hex');
  return { has: (n) => set.has(n), subject: 'in its package list', filter: {}, pageLimit: LIST_PAGE_LIMIT, maxPages: MAX_LIST_PAGES, maxBytes: options.maxListBytes ?? MAX_LIST_BYTES, summaryOf };
}

/** A record's name, checked on every record: rows for names not wanted are skipped without reading further. */
function recordName(record: Json, what: string): string {
  return new RecordReader(record, what).string('name');
}

/**
 * One answer of a list (a v1 page, or v0's whole list) reduced to what is used: how many records it had, its
 * last id and "total" (v1), and the records of the names wanted, each with its index in the answer.
 */
interface Page {
  total: number;
  count: number;
  lastId: number | null;
  records: [number, Json][];
}

/** Checks the ids of a v1 page in order: each must be above the last (on this page or before), or a hostile server could page forever. */
function idChecker(what: string, after: number | undefined): (record: Json, where: string) => number {
  let last = after;
  return (record, where) => {
    const id = new RecordReader(record, where).nullableId('id');
    if (id === null) throw new UserError(`${where}: "id" is missing`);
    if (last !== undefined && id <= last) throw new UserError(`${what}: record id ${id} does not follow ${last}`);
    last = id;
    return id;
  };
}

/** An answer as served → its Page: every record's id (v1) and name checked, the wanted ones kept. */
function reducePage(body: unknown, api: ApiGeneration, wanted: Wanted, after: number | undefined, what: string): Page {
  let list: unknown = body;
  let total: number | undefined;
  if (api === 'v1') {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UserError(`${what}: expected an object with "total" and "records"`);
    const t = (body as Json).total;
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) throw new UserError(`${what}: "total" is not a non-negative integer`);
    total = t;
    list = (body as Json).records;
  }
  const all = records(list, what);
  const nextId = api === 'v1' ? idChecker(what, after) : undefined;
  let lastId: number | null = null;
  const kept: [number, Json][] = [];
  for (const [i, record] of all.entries()) {
    const where = `${what}: record ${i}`;
    if (nextId) lastId = nextId(record, where);
    if (wanted.has(recordName(record, where))) kept.push([i, record]);
  }
  return { total: total ?? all.length, count: all.length, lastId, records: kept };
}

const SUMMARY_FORMAT = 'repro-oci-list-summary-1';

/**
 * A kept summary of a page, checked as the page was (it is cache content, trusted no more than the answer it
 * stands for): the Page, 'other names' when it was made for another set of names, or what is wrong with it.
 */
function keptPage(bytes: Buffer, api: ApiGeneration, wanted: Wanted, after: number | undefined, what: string): Page | string {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'a summary that is not JSON';
  }
  const v = value as Partial<Page> & { format?: unknown; api?: unknown; names?: unknown };
  if (typeof value !== 'object' || value === null || v.format !== SUMMARY_FORMAT || v.api !== api) return 'not a summary of this kind';
  if (v.names !== wanted.summaryOf) return 'other names';
  const count = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!count(v.total) || !count(v.count) || !Array.isArray(v.records) || v.records.length > v.count) return 'a summary of another shape';
  const nextId = api === 'v1' ? idChecker(what, after) : undefined;
  const kept: [number, Json][] = [];
  let index = -1;
  for (const item of v.records as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2 || !count(item[0]) || item[0] <= index || item[0] >= v.count) return 'a summary record of another shape';
    index = item[0];
    const record = records([item[1]], what)[0]!;
    const where = `${what}: record ${index}`;
    if (nextId) nextId(record, where);
    if (!wanted.has(recordName(record, where))) return 'a summary record of a name not asked for';
    kept.push([index, record]);
  }
  if (api === 'v1') {
    const lastKept = kept.length ? (kept.at(-1)![1].id as number) : undefined;
    const lastId = v.lastId;
    const ok = v.count === 0 ? lastId === null : count(lastId) && (after === undefined || lastId > after) && (lastKept === undefined || lastId >= lastKept);
    if (!ok) return 'a summary whose last id does not fit';
  } else if (v.lastId !== null || v.total !== v.count) return 'a summary of another shape';
  return { total: v.total, count: v.count, lastId: v.lastId ?? null, records: kept };
}

function summaryBytes(page: Page, api: ApiGeneration, wanted: Wanted): Buffer {
  return Buffer.from(JSON.stringify({ format: SUMMARY_FORMAT, api, names: wanted.summaryOf, ...page }));
}

/**
 * One answer of a list as a Page. With a cache: the answer is revalidated (If-Modified-Since); for a whole list,
 * a summary of each answer (the records of the names asked for) is kept beside it, and when the answer has not
 * changed since the summary was made (a 304 to its Last-Modified) the summary is used: the answer, tens of
 * megabytes of JSON, is neither read nor parsed. A kept summary is checked like an answer; one that fails is
 * evicted and the answer read instead.
 */
async function listPage(rebuilder: Rebuilder, url: string, api: ApiGeneration, wanted: Wanted, after: number | undefined, options: QueryOptions): Promise<Page> {
  const who = `rebuilder ${rebuilder.name}`;
  const what = `${who}: ${url}`;
  const { cache } = options;
  const fresh = (bytes: Buffer): Page => reducePage(parseJson(bytes, what), api, wanted, after, what);
  if (!cache) return fresh(await getBytes(url, who, wanted.maxBytes, options.retry, options.timeoutMs));
  const summaryKey = `summary ${url}`;
  const summary = wanted.summaryOf !== undefined ? await cache.entry(summaryKey, wanted.maxBytes) : undefined;
  if (summary?.lastModified !== undefined) {
    let page: Page | string;
    try {
      page = keptPage(summary.body, api, wanted, after, what);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      page = errorMessage(err).replace(`${what}: `, '');
    }
    if (typeof page !== 'string') {
      const answer = await getConditional(url, who, wanted.maxBytes, options.retry, options.timeoutMs, summary.lastModified);
      if (answer === 'not modified') return page;
      const changed = fresh(answer.body);
      if (answer.lastModified !== undefined) {
        await cache.keep(url, answer.body, answer.lastModified);
        await cache.keep(summaryKey, summaryBytes(changed, api, wanted), answer.lastModified);
      }
      return changed;
    }
    if (page !== 'other names') await cache.evict(summaryKey, page);
  }
  const answer = await cache.fetch(url, who, { limit: wanted.maxBytes, retry: options.retry, timeoutMs: options.timeoutMs });
  const page = fresh(answer.body);
  if (wanted.summaryOf !== undefined && answer.lastModified !== undefined) await cache.keep(summaryKey, summaryBytes(page, api, wanted), answer.lastModified);
  return page;
}

/** The v1 rows of the wanted names, page by page (sorted by id, each page after the last id seen). */
async function v1Rows(rebuilder: Rebuilder, wanted: Wanted, options: QueryOptions): Promise<RebuilderRow[]> {
  const rows: RebuilderRow[] = [];
  let seen = 0;
  let after: number | undefined;
  for (let page = 0; page < wanted.maxPages; page++) {
    const query: Record<string, string> = { ...wanted.filter, distribution: 'archlinux', sort: 'id', direction: 'Ascending', limit: String(wanted.pageLimit) };
    if (after !== undefined) query.after = String(after);
    const url = endpoint(rebuilder, '/api/v1/packages/binary', query);
    const what = `rebuilder ${rebuilder.name}: ${url}`;
    const got = await listPage(rebuilder, url, 'v1', wanted, after, options);
    for (const [i, record] of got.records) rows.push(v1Row(record, `${what}: record ${i}`));
    if (got.lastId !== null) after = got.lastId;
    seen += got.count;
    if (got.count < wanted.pageLimit || seen >= got.total) return rows;
  }
  throw new UserError(`rebuilder ${rebuilder.name}: more than ${wanted.maxPages} pages ${wanted.subject}`);
}

async function v0Rows(rebuilder: Rebuilder, wanted: Wanted, options: QueryOptions): Promise<RebuilderRow[]> {
  const url = endpoint(rebuilder, '/api/v0/pkgs/list', { ...wanted.filter, distro: 'archlinux' });
  const what = `rebuilder ${rebuilder.name}: ${url}`;
  const got = await listPage(rebuilder, url, 'v0', wanted, undefined, options);
  return got.records.map(([i, record]) => v0Row(record, `${what}: record ${i}`));
}

/** v1 unless the server says it has no such endpoint (404), then v0; a 404 there too means it is no rebuilderd. */
async function detectAndQuery(rebuilder: Rebuilder, wanted: Wanted, options: QueryOptions): Promise<{ api: ApiGeneration; rows: RebuilderRow[] }> {
  try {
    return { api: 'v1', rows: await v1Rows(rebuilder, wanted, options) };
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  try {
    return { api: 'v0', rows: await v0Rows(rebuilder, wanted, options) };
  } catch (err) {
    if (err instanceof NotFoundError) throw new UserError(`rebuilder ${rebuilder.name}: neither /api/v1/packages/binary nor /api/v0/pkgs/list exists (HTTP 404)`);
    throw err;
  }
}

/**
 * Asks one rebuilder for the rows of each name. Up to `wholeListAbove` names: the first name also detects the
 * API, the rest go in parallel (`options.concurrency` at a time). More names: the whole list, read once. The
 * first failure ends the whole query: a rebuilder answers for all the names or for none, and one that is down is
 * not asked a thousand more times.
 */
export async function queryRebuilder(rebuilder: Rebuilder, names: readonly string[], options: QueryOptions = DEFAULT_QUERY): Promise<RebuilderAnswer> {
  const rows = new Map<string, RebuilderRow[]>();
  const unique = [...new Set(names)];
  try {
    if (unique.length === 0) return { rebuilder, api: 'v1', rows };
    if (unique.length > (options.wholeListAbove ?? WHOLE_LIST_ABOVE)) {
      const all = await detectAndQuery(rebuilder, manyNames(unique, options), options);
      for (const name of unique) rows.set(name, []);
      for (const row of all.rows) rows.get(row.name)!.push(row);
      return { rebuilder, api: all.api, rows };
    }
    // Rows for other names (a server that ignores the filter) were dropped: only exact names are ever looked at.
    const first = await detectAndQuery(rebuilder, oneName(unique[0]!, options), options);
    rows.set(unique[0]!, first.rows);
    const ask = first.api === 'v1' ? v1Rows : v0Rows;
    let next = 1;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && next < unique.length) {
        const name = unique[next++]!;
        try {
          rows.set(name, await ask(rebuilder, oneName(name, options), options));
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
