import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { listenOnLoopback } from './support/http-server.js';
import type { RunResult } from './support/cli.js';
import { buildInto, servedRepo, type ServedRepo } from './support/package-repo.js';

/** No download grows past the size the lock declares, whatever a mirror sends. */

const SERVER_LIMIT = 64 * 1024 * 1024;

/** A mirror whose every file is an endless body (ended by the test at 64 MiB); counts what it sent. */
async function endlessMirror(t: { after: (fn: () => Promise<void>) => void }): Promise<{ url: string; sent: () => number }> {
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const { port, close } = await listenOnLoopback((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    const pump = (): void => {
      while (sent < SERVER_LIMIT && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  t.after(close);
  return { url: `http://127.0.0.1:${port}`, sent: () => sent };
}

/** The largest size each file in `dir` reached while `during` ran (sampled every few milliseconds). */
async function fileSizesDuring<T>(dir: string, during: Promise<T>): Promise<{ result: T; largest: Map<string, number> }> {
  const largest = new Map<string, number>();
  const sample = (): void => {
    for (const name of existsSync(dir) ? readdirSync(dir) : []) {
      largest.set(name, Math.max(largest.get(name) ?? 0, statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0));
    }
  };
  const timer = setInterval(sample, 2);
  try {
    return { result: await during, largest };
  } finally {
    clearInterval(timer);
    sample();
  }
}

/** Runs a build and checks that no partial file ever grew past its package's locked size (+ `slack`). */
async function buildWatchingPartials(repo: ServedRepo, extra: string[], slack = 0): Promise<RunResult> {
  const cache = join(repo.work, 'cache');
  const { result, largest } = await fileSizesDuring(join(cache, 'partial'), buildInto(repo, cache, join(repo.work, 'img'), extra));
  assert.ok(largest.size > 0, 'partial files were seen');
  for (const [name, size] of largest) {
    const pkg = repo.packages.find((p) => name.startsWith(p.sha256))!;
    assert.ok(size <= pkg.csize + slack, `${name} grew to ${size} bytes, the lock says ${pkg.csize}`);
  }
  return result;
}

test('an endless body from a mirror is cut at the locked size, named in one line, and the next location is used', async (t) => {
  const repo = await servedRepo(t, 1024 * 1024);
  const alpha = repo.packages[0]!;
  const mirror = await endlessMirror(t);
  const r = await buildWatchingPartials(repo, ['--mirror', mirror.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(mirror.sent() < SERVER_LIMIT, 'the download stopped long before the server did');
  const url = `${mirror.url}/${alpha.filename}`;
  const lines = r.stderr.split('\n').filter((l) => l.includes(url));
  assert.deepEqual(lines, [`package alpha 1.0-1: ${url}: more than the ${alpha.csize} bytes expected; trying the next location`]);
});

test('an endless body from the only location is an error naming the package and URL', async (t) => {
  const repo = await servedRepo(t, 1024 * 1024);
  const alpha = repo.packages[0]!;
  const mirror = await endlessMirror(t);
  await repo.server.close(); // the lock's own location is gone
  const r = await buildWatchingPartials(repo, ['--mirror', mirror.url]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^repro-oci: package alpha 1\\.0-1: could not be downloaded: ${mirror.url}/${alpha.filename}: more than the ${alpha.csize} bytes expected; `, 'm'));
  assert.ok(!existsSync(join(repo.work, 'cache', 'blobs')), 'nothing was cached');
});

test('a local file longer than the locked size is not copied past it', async (t) => {
  const repo = await servedRepo(t, 1024 * 1024);
  const alpha = repo.packages[0]!;
  const dir = join(repo.work, 'local-mirror');
  mkdirSync(dir);
  writeFileSync(join(dir, alpha.filename), Buffer.concat([alpha.bytes, Buffer.alloc(32 * 1024 * 1024)]));
  const mirror = pathToFileURL(dir).href;
  const r = await buildWatchingPartials(repo, ['--mirror', mirror], 1);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`^package alpha 1\\.0-1: ${mirror}/${alpha.filename}: more than the ${alpha.csize} bytes expected; trying the next location$`, 'm'));
});

test('a --mirror file: URL naming another host, or not decodable, is one line and the next location is tried', async (t) => {
  const repo = await servedRepo(t);
  for (const mirror of ['file://otherhost/pkgs', 'file:///%zz']) {
    const r = await buildInto(repo, join(repo.work, `cache-${mirror.length}`), join(repo.work, `img-${mirror.length}`), ['--mirror', mirror]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /not a usable file: URL \(another host, or not decodable\); trying the next location/);
    assert.doesNotMatch(r.stderr, /internal error/);
  }
});
