import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenOnLoopback } from '../util/loopback.js';

/**
 * An emulated rebuilderd on 127.0.0.1 (rebuilderd itself is not packaged where repro-oci is tested), answering
 * exactly in the shapes its source (v0.27) sends, for the example and the tests: v1 `GET /api/v1/packages/binary`
 * (`{ total, records }`, filters name/version/architecture/component/distribution, paging by `sort=id` and
 * `after`/`limit`) and v0 `GET /api/v0/pkgs/list` (an array of releases, filters name/distro/suite/architecture/status).
 * Without filters either lists every row, as rebuilderd does. Answers carry `Last-Modified`, and a request whose
 * `If-Modified-Since` is not older gets 304 with no body (rebuilderd's v0 rule; its v1 sends neither, which
 * `v1LastModified: false` imitates).
 */

export interface FakeRow {
  name: string;
  version: string;
  arch: string;
  repo: string;
  /** null: listed, never built (v1 sends null; v0 sends UNKWN with build_id null). */
  status: 'GOOD' | 'BAD' | 'UNKWN' | null;
}

export interface FakeRebuilderOptions {
  /** Which API generations it serves (the other answers 404, as a server without that route does). */
  api: 'v1' | 'v0' | 'both';
  rows: FakeRow[];
  /** Wait this long before answering each request. */
  delayMs?: number;
  /** Answers every request to an API it serves with this body instead (hostile servers). */
  rawBody?: string | Buffer;
  /** PEM public keys served at /api/v1/meta/public-keys and /api/v0/public-keys as `{ "current": [...] }`; none: 404. */
  publicKeys?: string[];
  /** The attestation body served for a GOOD row (v1 per artifact, v0 per build); undefined: 404. */
  attestation?: (row: FakeRow) => Buffer | undefined;
  /** The list's Last-Modified (default: a second no other fake of this process has used, so no cache mistakes it). */
  lastModified?: Date;
  /** false: v1 sends no Last-Modified and ignores If-Modified-Since, as rebuilderd 0.27 does (default true). */
  v1LastModified?: boolean;
}

export interface FakeRebuilder {
  url: string;
  /** The options it answers by, read at each request: a test may change them (a rotated key). */
  options: FakeRebuilderOptions;
  /** Request paths with their query, in arrival order. */
  requests: string[];
  /** The requests that carried If-Modified-Since (path and query), and how many were answered 304. */
  conditional: string[];
  notModified: number;
  /** Replaces the rows and moves Last-Modified one second on (the list changed). */
  setRows(rows: FakeRow[]): void;
  close(): Promise<void>;
}

function v1Record(row: FakeRow, id: number): Record<string, unknown> {
  const built = row.status !== null;
  return {
    id,
    name: row.name,
    version: row.version,
    distribution: 'archlinux',
    release: null,
    component: row.repo,
    architecture: row.arch,
    url: `https://geo.mirror.pkgbuild.com/${row.repo}/os/x86_64/${row.name}-${row.version}-${row.arch}.pkg.tar.zst`,
    status: row.status,
    build_id: built ? 1000 + id : null,
    artifact_id: built ? 2000 + id : null,
    diffoscope_log_id: row.status === 'BAD' ? 3000 + id : null,
    attestation_log_id: row.status === 'GOOD' ? 4000 + id : null,
    last_seen: '2026-06-01T12:00:00',
    seen_in_last_sync: true,
  };
}

function v0Record(row: FakeRow, id: number): Record<string, unknown> {
  const built = row.status !== null;
  return {
    name: row.name,
    version: row.version,
    status: row.status ?? 'UNKWN',
    distro: 'archlinux',
    suite: row.repo,
    architecture: row.arch,
    artifact_url: `https://geo.mirror.pkgbuild.com/${row.repo}/os/x86_64/${row.name}-${row.version}-${row.arch}.pkg.tar.zst`,
    build_id: built ? 1000 + id : null,
    built_at: built ? '2026-06-01T12:00:00.123456789' : null,
    has_diffoscope: row.status === 'BAD',
    has_attestation: row.status === 'GOOD',
  };
}

function json(res: ServerResponse, value: unknown, lastModified: Date | undefined): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length, ...(lastModified ? { 'Last-Modified': lastModified.toUTCString() } : {}) }).end(body);
}

let lastSecondIssued = 0;

/** A whole second after every Last-Modified this process's fakes have used so far. */
function freshLastModified(): Date {
  lastSecondIssued = Math.max(Math.floor(Date.now() / 1000), lastSecondIssued + 1);
  return new Date(lastSecondIssued * 1000);
}

export async function startRebuilder(options: FakeRebuilderOptions): Promise<FakeRebuilder> {
  const requests: string[] = [];
  const conditional: string[] = [];
  let rows = options.rows.map((row, i) => ({ row, id: i + 1 }));
  let lastModified = options.lastModified ?? freshLastModified();
  let notModified = 0;
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const served = (url.pathname === '/api/v1/packages/binary' && options.api !== 'v0') || (url.pathname === '/api/v0/pkgs/list' && options.api !== 'v1');
    if (options.rawBody !== undefined && served) {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(options.rawBody);
      return;
    }
    const dated = served && (url.pathname === '/api/v0/pkgs/list' || options.v1LastModified !== false);
    const since = Date.parse(req.headers['if-modified-since'] ?? '');
    if (dated && since >= lastModified.getTime()) {
      notModified++;
      res.writeHead(304).end();
      return;
    }
    const is = (param: string, value: string): boolean => !q.has(param) || q.get(param) === value;
    if (url.pathname === '/api/v1/packages/binary' && options.api !== 'v0') {
      const matching = rows.filter(({ row }) => is('name', row.name) && is('version', row.version) && is('architecture', row.arch) && is('component', row.repo) && is('distribution', 'archlinux'));
      const after = q.has('after') ? Number(q.get('after')) : 0;
      const limit = q.has('limit') ? Number(q.get('limit')) : 1000;
      const page = matching.filter(({ id }) => id > after).slice(0, limit);
      json(res, { total: matching.length, records: page.map(({ row, id }) => v1Record(row, id)) }, dated ? lastModified : undefined);
      return;
    }
    const build = /^\/api\/(v1)\/builds\/(\d+)\/artifacts\/(\d+)\/attestation$/.exec(url.pathname) ?? /^\/api\/(v0)\/builds\/(\d+)\/attestation$/.exec(url.pathname);
    if (build && (options.api === 'both' || options.api === build[1])) {
      const found = rows.find(({ id }) => 1000 + id === Number(build[2]) && (build[3] === undefined || 2000 + id === Number(build[3])));
      const body = found?.row.status === 'GOOD' ? options.attestation?.(found.row) : undefined;
      if (body) res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length }).end(body);
      else res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found');
      return;
    }
    const keysPath = url.pathname === '/api/v1/meta/public-keys' ? 'v1' : url.pathname === '/api/v0/public-keys' ? 'v0' : undefined;
    if (keysPath && (options.api === 'both' || options.api === keysPath) && options.publicKeys) {
      json(res, { current: options.publicKeys }, undefined);
      return;
    }
    if (url.pathname === '/api/v0/pkgs/list' && options.api !== 'v1') {
      const matching = rows.filter(({ row }) => is('name', row.name) && is('distro', 'archlinux') && is('suite', row.repo) && is('architecture', row.arch) && is('status', row.status ?? 'UNKWN'));
      json(res, matching.map(({ row, id }) => v0Record(row, id)), lastModified);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found');
  };
  const { port, close } = await listenOnLoopback((req, res) => {
    requests.push(req.url ?? '/');
    if (req.headers['if-modified-since'] !== undefined) conditional.push(req.url ?? '/');
    if (options.delayMs) setTimeout(() => answer(req, res), options.delayMs).unref();
    else answer(req, res);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    options,
    requests,
    conditional,
    get notModified() {
      return notModified;
    },
    setRows(next: FakeRow[]): void {
      rows = next.map((row, i) => ({ row, id: i + 1 }));
      lastModified = new Date(lastModified.getTime() + 1000);
    },
    close,
  };
}
