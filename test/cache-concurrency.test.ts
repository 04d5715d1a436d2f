import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ownerMark } from '../src/util/process-owner.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildInto, cacheEntry, servedRepo, type ServedRepo } from './support/package-repo.js';

/** Several processes share one cache (CI runners, a rebuilder's workers): all succeed, with identical results. */

const PROCESSES = 8;

/** The cache holds the verified packages and nothing else: no partial download, no evicted entry left over. */
function assertOnlyVerifiedBlobs(repo: ServedRepo, cache: string): void {
  assert.deepEqual(readdirSync(join(cache, 'blobs', 'sha256')).sort(), repo.packages.map((p) => p.sha256).sort());
  for (const p of repo.packages) assert.ok(readFileSync(cacheEntry(cache, p)).equals(p.bytes));
  for (const dir of ['partial', 'trash']) {
    const path = join(cache, dir);
    assert.deepEqual(existsSync(path) ? readdirSync(path) : [], [], `${dir}/ is empty`);
  }
}

async function buildAtOnce(repo: ServedRepo, cache: string, round: string): Promise<string[]> {
  const runs = await Promise.all(Array.from({ length: PROCESSES }, (_, i) => buildInto(repo, cache, join(repo.work, `${round}-${i}`))));
  for (const [i, r] of runs.entries()) assert.equal(r.code, 0, `${round} build ${i}: ${r.stderr}`);
  return runs.map((r) => r.stdout);
}

test(`${PROCESSES} builds at once on one cache, cold, warm, and with a corrupt entry, all succeed with identical digests`, { timeout: 600_000 }, async (t) => {
  const repo = await servedRepo(t, 4 * 1024 * 1024);
  const cache = join(repo.work, 'cache');
  const cold = await buildAtOnce(repo, cache, 'cold');
  assert.match(cold[0]!, /^sha256:[0-9a-f]{64}\n$/);
  assert.deepEqual(new Set(cold), new Set([cold[0]]), 'every cold build gave the same digest');
  assertOnlyVerifiedBlobs(repo, cache);
  const warm = await buildAtOnce(repo, cache, 'warm');
  assert.deepEqual(new Set(warm), new Set([cold[0]]), 'every warm build gave the same digest');
  assertOnlyVerifiedBlobs(repo, cache);
  // All of them find the same corrupt entry: each may evict it and fetch again, none may disturb another.
  writeFileSync(cacheEntry(cache, repo.packages[0]!), 'corrupt');
  const repaired = await buildAtOnce(repo, cache, 'repaired');
  assert.deepEqual(new Set(repaired), new Set([cold[0]]), 'every build after the corruption gave the same digest');
  assertOnlyVerifiedBlobs(repo, cache);
});

test('partial downloads left by a process that is gone: one is resumed by the next build, the others removed', async (t) => {
  const repo = await servedRepo(t, 1024 * 1024);
  const cache = join(repo.work, 'cache');
  const alpha = repo.packages[0]!;
  // The owner mark of a process that has exited: its pid, any start time, and this machine's pid namespace.
  const space = ownerMark()!.split('.')[2];
  const gone = `${spawnSync(process.execPath, ['-e', '']).pid!}.1.${space}`;
  mkdirSync(join(cache, 'partial'), { recursive: true });
  const half = alpha.bytes.length >> 1;
  writeFileSync(join(cache, 'partial', `${alpha.sha256}.${gone}-0123456789ab.part`), alpha.bytes.subarray(0, half));
  // A second one (the same process retried, or another died too) is only debris: removed.
  writeFileSync(join(cache, 'partial', `${alpha.sha256}.${gone}-ba9876543210.part`), alpha.bytes.subarray(0, half));
  // A partial of a process in another pid namespace (a container sharing the cache) cannot be judged: left alone.
  const foreign = join(cache, 'partial', `${alpha.sha256}.${gone.split('.')[0]}.1.${space === 'ffffffff' ? 'fffffffe' : 'ffffffff'}-0a0b0c0d0e0f.part`);
  writeFileSync(foreign, alpha.bytes.subarray(0, 10));
  const before = repo.server.requests.length;
  const r = await buildInto(repo, cache, join(repo.work, 'img'));
  assert.equal(r.code, 0, r.stderr);
  const requests = repo.server.requests.slice(before).filter((q) => q.includes(alpha.filename));
  assert.deepEqual(requests.map((q) => q.replace(/^GET \S+/, 'GET')), [`GET bytes=${half}-`]);
  assert.ok(existsSync(foreign), "another pid namespace's partial is kept");
  rmSync(foreign);
  assertOnlyVerifiedBlobs(repo, cache);
});
