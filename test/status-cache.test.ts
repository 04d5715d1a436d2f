import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { HttpCache } from '../src/status/http-cache.js';
import type { RebuilderAnswer, RebuilderRow } from '../src/status/model.js';
import { DEFAULT_QUERY, queryRebuilder, type QueryOptions } from '../src/status/rebuilderd.js';
import { runCli, tempDirFor } from './support/cli.js';
import { listenOnLoopback } from './support/http-server.js';
import { startRebuilder, type FakeRebuilder } from './support/rebuilderd.js';
import { syntheticRows, writeStatusLock } from './support/status-fixtures.js';

const RETRY = { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 };
const ROWS = syntheticRows(8);
/** Five of the eight listed names, and one no rebuilder lists. */
const NAMES = [...ROWS.slice(0, 5).map((r) => r.name), 'not-listed'];
const REBUILDER = (url: string) => ({ name: 'r', url });

interface Fixture {
  dir: string;
  cache: HttpCache;
  /** What the cache logged, one entry per call. */
  lines: string[];
}

async function fixture(t: TestContext): Promise<Fixture> {
  const dir = await tempDirFor(t, 'status-cache');
  const lines: string[] = [];
  return { dir, cache: new HttpCache(join(dir, 'rebuilders'), (line) => lines.push(line)), lines };
}

async function server(t: TestContext, options: Parameters<typeof startRebuilder>[0]): Promise<FakeRebuilder> {
  const s = await startRebuilder(options);
  t.after(() => s.close());
  return s;
}

function query(s: { url: string }, cache: HttpCache | undefined, extra: Partial<QueryOptions> = {}, names: string[] = NAMES): Promise<RebuilderAnswer> {
  return queryRebuilder(REBUILDER(s.url), names, { ...DEFAULT_QUERY, retry: RETRY, timeoutMs: 10_000, ...(cache ? { cache } : {}), ...extra });
}

/** The rows of an answer, by name in byte order (an error answer fails the test with its reason). */
function rowsOf(answer: RebuilderAnswer): [string, RebuilderRow[]][] {
  assert.ok('rows' in answer, 'error' in answer ? answer.error : '');
  return [...answer.rows.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
}

function errorOf(answer: RebuilderAnswer): string {
  assert.ok('error' in answer, 'expected no answer');
  return answer.error;
}

/** The full URL the client last asked `server` for `name` with (after a v1 probe, the v0 query). */
function urlFor(s: FakeRebuilder, name: string): string {
  const path = [...s.requests].reverse().find((q) => new URL(q, 'http://x').searchParams.get('name') === name);
  assert.ok(path, `no request for ${name}`);
  return `${s.url}${path}`;
}

for (const api of ['v1', 'v0'] as const) {
  test(`${api}: a second query is asked with If-Modified-Since, answered 304 and served from the cache; a changed list is fetched again`, async (t) => {
    const f = await fixture(t);
    const s = await server(t, { api, rows: ROWS });
    const uncached = rowsOf(await query(s, undefined));
    const asked = s.requests.length;
    s.requests.length = 0;
    const cold = rowsOf(await query(s, f.cache));
    assert.deepEqual(cold, uncached);
    assert.equal(s.requests.length, asked);
    assert.deepEqual(s.conditional, []);
    // v0 is found after v1's 404, which is not an answer to keep: it is asked unconditionally each time.
    const listQueries = s.requests.filter((q) => q.includes(api === 'v1' ? '/api/v1/' : '/api/v0/'));
    assert.equal(listQueries.length, NAMES.length);

    const warm = rowsOf(await query(s, f.cache));
    assert.deepEqual(warm, cold);
    assert.deepEqual(s.conditional.sort(), [...listQueries].sort());
    assert.equal(s.notModified, NAMES.length);
    assert.deepEqual(f.lines, []);

    s.setRows(ROWS.map((r, i) => (i === 0 ? { ...r, status: 'BAD' } : r)));
    const changed = rowsOf(await query(s, f.cache));
    assert.equal(s.notModified, NAMES.length, 'every URL is answered anew once the list changed');
    assert.equal(changed.find(([name]) => name === ROWS[0]!.name)![1][0]!.status, 'BAD');
    assert.deepEqual(rowsOf(await query(s, f.cache)), changed);
    assert.equal(s.notModified, 2 * NAMES.length);
  });
}

test('corrupt, truncated, replaced, symlinked or foreign entries are evicted with one line each and fetched again', async (t) => {
  const f = await fixture(t);
  const s = await server(t, { api: 'v1', rows: ROWS });
  const expected = rowsOf(await query(s, f.cache));
  const [a, b, c, d, e] = NAMES.map((name) => f.cache.entryPath(urlFor(s, name)));
  assert.ok(existsSync(a!) && existsSync(e!));
  // d now holds a's entry, which is intact but filed for another URL: it must not answer for d's name.
  copyFileSync(a!, d!);
  const bytes = readFileSync(a!);
  bytes[bytes.length - 3] ^= 1;
  writeFileSync(a!, bytes);
  truncateSync(b!, readFileSync(b!).length - 10);
  rmSync(c!);
  mkdirSync(join(c!, 'sub'), { recursive: true });
  renameSync(e!, `${e!}.moved`);
  symlinkSync(`${e!}.moved`, e!);

  const conditionalBefore = s.conditional.length;
  assert.deepEqual(rowsOf(await query(s, f.cache)), expected);
  assert.equal(f.lines.length, 5, f.lines.join('\n'));
  for (const line of f.lines) assert.match(line, /^cache: \S+ was corrupt \([^\n]+\): removed, fetching again$/);
  const why = f.lines.join('\n');
  for (const reason of [/body has sha256 [0-9a-f]{64}, expected/, /\d+ body bytes, expected \d+/, /a directory/, /the entry of another URL/, /a symbolic link/]) assert.match(why, reason);
  // Only the sixth name's intact entry was asked for conditionally; the five were fetched afresh and stored.
  assert.equal(s.conditional.length - conditionalBefore, 1);
  const notModified = s.notModified;
  assert.deepEqual(rowsOf(await query(s, f.cache)), expected);
  assert.equal(s.notModified - notModified, NAMES.length);
  assert.equal(f.lines.length, 5);
  assert.ok(existsSync(`${e!}.moved`), 'the symlink target is not touched');
});

test('above wholeListAbove (default 100) names the whole list is read once (v1 paged, v0 in one answer), revalidated, and gives the same rows', async (t) => {
  const f = await fixture(t);
  // 5,003 rows: two v1 pages of 5,000. Ask every 25th name and one no list has.
  const list = syntheticRows(5003);
  const names = [...list.filter((_, i) => i % 25 === 0).map((r) => r.name), 'not-listed'];
  for (const api of ['v1', 'v0'] as const) {
    const s = await server(t, { api, rows: list });
    const byName = rowsOf(await query(s, undefined, { wholeListAbove: 1000 }, names));
    s.requests.length = 0;
    const whole = rowsOf(await query(s, f.cache, {}, names)); // 202 names: above the default 100
    assert.deepEqual(whole, byName, api);
    assert.ok(s.requests.every((q) => !q.includes('name=')), s.requests.join(' '));
    const lists = s.requests.filter((q) => !q.startsWith(api === 'v0' ? '/api/v1/' : '/api/v0/'));
    assert.deepEqual(lists.map((q) => new URL(q, 'http://x').searchParams.get('after')), api === 'v1' ? [null, '5000'] : [null]);
    assert.deepEqual(rowsOf(await query(s, f.cache, {}, names)), whole);
    assert.equal(s.notModified, lists.length);
  }
});

for (const api of ['v1', 'v0'] as const) {
  test(`${api}: a whole list's kept summaries answer a 304 without the list, are made anew for other names, and a forged one is evicted`, async (t) => {
    const f = await fixture(t);
    const list = syntheticRows(5003);
    const every = (n: number): string[] => [...list.filter((_, i) => i % n === 0).map((r) => r.name), 'not-listed'];
    const s = await server(t, { api, rows: list });
    const truth = async (names: string[]): Promise<[string, RebuilderRow[]][]> => rowsOf(await query(s, undefined, { wholeListAbove: 1000 }, names));
    const names = every(25);
    const expected = await truth(names);
    assert.deepEqual(rowsOf(await query(s, f.cache, {}, names)), expected);
    const pages = s.requests.filter((q) => !q.includes('name=') && q.startsWith(`/api/${api}/`)).map((q) => `${s.url}${q}`);
    assert.equal(pages.length, api === 'v1' ? 2 : 1);
    // The answers themselves go: the summaries beside them serve the 304s.
    for (const page of pages) rmSync(f.cache.entryPath(page));
    const before = { requests: s.requests.length, notModified: s.notModified };
    assert.deepEqual(rowsOf(await query(s, f.cache, {}, names)), expected);
    assert.equal(s.requests.slice(before.requests).filter((q) => q.startsWith(`/api/${api}/`)).length, pages.length, 'only the lists, asked conditionally');
    assert.equal(s.notModified - before.notModified, pages.length);

    // Other names: the summaries do not serve them; the lists are read (whole, their answers being gone) and summarised anew.
    const others = every(40);
    assert.deepEqual(rowsOf(await query(s, f.cache, {}, others)), await truth(others));
    assert.equal(s.notModified - before.notModified, pages.length);
    const summary = f.cache.entryPath(`summary ${pages[0]}`);
    const kept = readFileSync(summary);
    const newline = kept.indexOf(0x0a);
    const body = JSON.parse(kept.subarray(newline + 1).toString()) as { records: [number, Record<string, unknown>][] };
    // Someone with write access to the cache adds a record for a name not asked about, with a consistent header.
    const forge = (edit: (records: [number, Record<string, unknown>][]) => void): void => {
      const forged = structuredClone(body);
      edit(forged.records);
      const bytes = Buffer.from(JSON.stringify(forged));
      const header = { ...(JSON.parse(kept.subarray(0, newline).toString()) as object), size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
      writeFileSync(summary, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), bytes]));
    };
    forge((records) => void (records[0]![1].name = list[1]!.name));
    assert.deepEqual(rowsOf(await query(s, f.cache, {}, others)), await truth(others));
    assert.match(f.lines.at(-1)!, /^cache: \S+ was corrupt \(a summary record of a name not asked for\): removed, fetching again$/);
    if (api === 'v1') {
      forge((records) => void (records[1]![1].id = records[0]![1].id));
      assert.deepEqual(rowsOf(await query(s, f.cache, {}, others)), await truth(others));
      assert.match(f.lines.at(-1)!, /^cache: \S+ was corrupt \(record id \d+ does not follow \d+\): removed, fetching again$/);
    }
    // A changed list is read anew, and so is its summary.
    s.setRows(list.map((r, i) => (i === 0 ? { ...r, status: 'BAD' } : r)));
    const changed = rowsOf(await query(s, f.cache, {}, others));
    assert.equal(changed.find(([name]) => name === list[0]!.name)![1][0]!.status, 'BAD');
    const notModified = s.notModified;
    assert.deepEqual(rowsOf(await query(s, f.cache, {}, others)), changed);
    assert.equal(s.notModified - notModified, pages.length);
  });
}

test('concurrent queries on one cold cache (separate cache objects, as separate processes have) all succeed identically', async (t) => {
  const f = await fixture(t);
  const s = await server(t, { api: 'both', rows: ROWS });
  const answers = await Promise.all(Array.from({ length: 8 }, () => query(s, new HttpCache(f.cache.root, (line) => f.lines.push(line)))));
  const first = rowsOf(answers[0]!);
  for (const answer of answers) assert.deepEqual(rowsOf(answer), first);
  assert.deepEqual(f.lines, []);
  assert.deepEqual(readdirSync(join(f.cache.root, 'partial')), [], 'no partial file is left');
  assert.equal(readdirSync(join(f.cache.root, 'entries')).length, NAMES.length);
  assert.deepEqual(rowsOf(await query(s, f.cache)), first);
});

test('8 status processes at once on one cold --cache agree, and the warm run is served by 304s', async (t) => {
  const f = await fixture(t);
  const v1 = await server(t, { api: 'v1', rows: ROWS });
  const v0 = await server(t, { api: 'v0', rows: ROWS.map((r, i) => (i === 1 ? { ...r, status: 'BAD' } : r)) });
  const lock = join(f.dir, 'lock.json');
  writeStatusLock(lock, ROWS.slice(0, 5));
  const cacheDir = join(f.dir, 'cache');
  // The fakes publish no keys: their GOODs count only with attestations optional (keys and attestations: status-attest).
  const args = ['status', lock, '--rebuilder', v1.url, '--rebuilder', v0.url, '--cache', cacheDir, '--attestations', 'optional', '--json'];
  const env = { REPRO_OCI_RETRY_DELAY_MS: '1', REPRO_OCI_PROGRESS: '0', XDG_CONFIG_HOME: '/nonexistent', REPRO_OCI_STATE: join(f.dir, 'state') };
  const runs = await Promise.all(Array.from({ length: 8 }, () => runCli(args, { env })));
  for (const r of runs) {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, runs[0]!.stdout);
  }
  const report = JSON.parse(runs[0]!.stdout) as { packages: { name: string; verdict: string }[] };
  assert.deepEqual(report.packages.map((p) => p.verdict), ['ok', 'BAD', 'ok', 'ok', 'ok']);
  // List queries only: the key lookups (404 here) are not cached answers.
  const lists = (paths: string[]): number => paths.filter((p) => p.startsWith('/api/v1/packages/')).length;
  const unconditional = lists(v1.requests) - lists(v1.conditional);
  const warm = await runCli(args, { env });
  assert.equal(warm.stdout, runs[0]!.stdout);
  assert.equal(lists(v1.requests) - lists(v1.conditional), unconditional, 'the warm run asks v1 only conditionally');
  assert.ok(v1.notModified >= 5 && v0.notModified >= 5);
});

/** A server on 127.0.0.1 that answers every request with `handler`; counts requests. */
async function hostile(t: TestContext, handler: Parameters<typeof listenOnLoopback>[0]): Promise<{ url: string }> {
  const { port, close } = await listenOnLoopback(handler);
  t.after(close);
  return { url: `http://127.0.0.1:${port}` };
}

test('a 304 to a request that was not conditional (nothing cached for it) is no answer, never a cache hit', async (t) => {
  const f = await fixture(t);
  let answered = 0;
  const body = JSON.stringify({ total: 0, records: [] });
  const s = await hostile(t, (req, res) => {
    // First a proper answer, then 304 to everything, asked for conditionally or not.
    if (answered++ === 0) res.writeHead(200, { 'Content-Type': 'application/json', 'Last-Modified': 'Mon, 01 Jun 2026 12:00:00 GMT' }).end(body);
    else res.writeHead(304).end();
    void req;
  });
  const one = ['solo'];
  rowsOf(await query(s, f.cache, {}, one));
  const entry = readdirSync(join(f.cache.root, 'entries'));
  assert.equal(entry.length, 1);
  assert.deepEqual(rowsOf(await query(s, f.cache, {}, one)), [['solo', []]], 'the 304 to a conditional request reuses the entry');
  rmSync(join(f.cache.root, 'entries', entry[0]!));
  assert.match(errorOf(await query(s, f.cache, {}, one)), /HTTP 304 \(not modified\) to a request that was not conditional/);
  assert.match(errorOf(await query(s, undefined, {}, one)), /HTTP 304 \(not modified\) to a request that was not conditional/);
  assert.deepEqual(readdirSync(join(f.cache.root, 'entries')), []);
});

test('an endless answer is cut at the limit and nothing of it is stored', async (t) => {
  const f = await fixture(t);
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const s = await hostile(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Last-Modified': 'Mon, 01 Jun 2026 12:00:00 GMT' });
    const more = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', more);
    };
    more();
  });
  const error = errorOf(await query(s, f.cache, { maxBytes: 1024 * 1024 }, ['solo']));
  assert.match(error, /more than the 1048576-byte limit/);
  assert.equal(existsSync(join(f.cache.root, 'entries')), false);
});

test('HttpCache: answers without Last-Modified are not stored; revalidate: false serves a stored body without asking', async (t) => {
  const f = await fixture(t);
  const s = await server(t, { api: 'v1', rows: ROWS, v1LastModified: false });
  const first = rowsOf(await query(s, f.cache));
  assert.deepEqual(rowsOf(await query(s, f.cache)), first);
  assert.deepEqual(s.conditional, []);
  assert.equal(existsSync(join(f.cache.root, 'entries')), false);

  const url = urlFor(s, NAMES[0]!);
  const asked = s.requests.length;
  const stored = await f.cache.get(url, 'object', { limit: 1024 * 1024, retry: RETRY, revalidate: false });
  assert.equal(s.requests.length, asked + 1);
  assert.deepEqual(await f.cache.get(url, 'object', { limit: 1024 * 1024, retry: RETRY, revalidate: false }), stored);
  assert.equal(s.requests.length, asked + 1, 'the stored body was used without a request');
  // The entry is still checked in full: a damaged one is fetched again.
  const path = f.cache.entryPath(url);
  writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from('x')]));
  assert.deepEqual(await f.cache.get(url, 'object', { limit: 1024 * 1024, retry: RETRY, revalidate: false }), stored);
  assert.equal(s.requests.length, asked + 2);
  assert.equal(f.lines.length, 1);
});
