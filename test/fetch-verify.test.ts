import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BuiltPackage } from '../src/example/package-writer.js';
import { repoPackageFromBuilt, writeRepo } from '../src/example/repo-writer.js';
import { Gpg } from './support/gpg.js';
import { serveDirectory, type FileServer } from './support/http-server.js';
import { runCli, tempDirFor } from './support/cli.js';
import { noise, testPackage } from './support/package-repo.js';

const SNAPSHOT = 'repos/2024/03/20/core/os/x86_64';

function pkg(name: string, depends: string[] = []): Promise<BuiltPackage> {
  return testPackage(name, noise(name, 64 * 1024), depends);
}

interface Fixture {
  work: string;
  server: FileServer;
  gpg: Gpg;
  signer: string;
  packages: BuiltPackage[];
  keyring: string;
}

/** A signed repository in the archive layout, served over HTTP, and a keyring in archlinux-keyring's format. */
async function signedArchive(t: { after: (fn: () => Promise<void>) => void }, options: { revoke?: boolean } = {}): Promise<Fixture> {
  const work = await tempDirFor(t, 'fetch-verify');
  const gpg = await Gpg.create();
  t.after(() => gpg.dispose());
  const signer = await gpg.genKey('Packager <packager@example.invalid>');
  const packages = [await pkg('alpha'), await pkg('beta', ['alpha'])];
  const dir = join(work, 'archive', SNAPSHOT);
  mkdirSync(dir, { recursive: true });
  const repoPackages = [];
  for (const p of packages) {
    writeFileSync(join(dir, p.filename), p.bytes);
    repoPackages.push(repoPackageFromBuilt(p, await gpg.detachSign(signer, p.bytes)));
  }
  await writeRepo(dir, 'core', repoPackages, { symlinks: false });
  const keyring = join(work, 'keyring');
  mkdirSync(keyring);
  writeFileSync(join(keyring, 'test.gpg'), await gpg.exportPublic([signer]));
  writeFileSync(join(keyring, 'test-trusted'), `${signer}:4:\n`);
  writeFileSync(join(keyring, 'test-revoked'), options.revoke ? `${signer}\n` : '');
  const server = await serveDirectory(join(work, 'archive'));
  t.after(() => server.close());
  writeFileSync(
    join(work, 'spec.yaml'),
    [`archive: { url: "${server.url}", date: "2024-03-20" }`, 'repositories: [core]', 'packages: [beta]', 'sigLevel: Required DatabaseOptional', 'keyring: { dir: keyring, name: test }', ''].join('\n'),
  );
  const lock = await runCli(['lock', join(work, 'spec.yaml')]);
  assert.equal(lock.code, 0, lock.stderr);
  return { work, server, gpg, signer, packages, keyring };
}

function cacheBlobs(cache: string): string[] {
  const dir = join(cache, 'blobs', 'sha256');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

function partials(cache: string): string[] {
  const dir = join(cache, 'partial');
  return existsSync(dir) ? readdirSync(dir) : [];
}

async function install(f: Fixture, cache: string, extra: string[] = [], lockFile = join(f.work, 'spec.lock.json')): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const root = join(f.work, `root-${Math.random().toString(36).slice(2)}`);
  return runCli(['install', lockFile, '--root', root, '--keyring', f.keyring, ...extra], { env: { REPRO_OCI_CACHE: cache, REPRO_OCI_RETRY_DELAY_MS: '1' } });
}

test('signed packages verify, are cached, and pacman records pgp validation', async (t) => {
  const f = await signedArchive(t);
  const cache = join(f.work, 'cache');
  const r = await install(f, cache);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(cacheBlobs(cache), f.packages.map((p) => p.sha256).sort());
  const root = readdirSync(f.work).find((n) => n.startsWith('root-'))!;
  assert.match(readFileSync(join(f.work, root, 'var/lib/pacman/local/alpha-1.0-1/desc'), 'utf8'), /%VALIDATION%\npgp\n/);
  // The lock pins the keyring: another keyring is refused.
  writeFileSync(join(f.keyring, 'test-trusted'), '');
  const other = await install(f, join(f.work, 'cache2'));
  assert.equal(other.code, 2);
  assert.match(other.stderr, /keyring .* is not the one the lock pins/);
});

test('bytes that do not match the sha256 are refused and never cached', async (t) => {
  const f = await signedArchive(t);
  const cache = join(f.work, 'cache');
  const target = join(f.work, 'archive', SNAPSHOT, f.packages[0]!.filename);
  const bytes = readFileSync(target);
  bytes[bytes.length - 10]! ^= 0xff;
  writeFileSync(target, bytes);
  writeFileSync(join(f.work, 'archive', 'packages'), ''); // the archive's second location is absent too
  const r = await install(f, cache);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^repro-oci: package alpha 1\.0-1: could not be downloaded: .*content has digest sha256:[0-9a-f]{64}, expected sha256:[0-9a-f]{64}/m);
  assert.deepEqual(cacheBlobs(cache), []);
  assert.deepEqual(partials(cache), []);
});

test('a bad signature, a missing one under Required, and a revoked key are refused by name and reason', async (t) => {
  const f = await signedArchive(t);
  const lockPath = join(f.work, 'spec.lock.json');
  const lock = JSON.parse(readFileSync(lockPath, 'utf8')) as { packages: { name: string; signature?: string }[] };

  const bad = structuredClone(lock);
  bad.packages[0]!.signature = (await f.gpg.detachSign(f.signer, Buffer.from('something else'))).toString('base64');
  writeFileSync(join(f.work, 'bad.json'), JSON.stringify(bad));
  const cacheBad = join(f.work, 'cache-bad');
  const rBad = await install(f, cacheBad, [], join(f.work, 'bad.json'));
  assert.equal(rBad.code, 2);
  assert.match(rBad.stderr, /package alpha 1\.0-1: bad signature from key [0-9A-F]{40}.*the data does not match/);
  assert.deepEqual(cacheBlobs(cacheBad), []);

  const missing = structuredClone(lock);
  delete missing.packages[0]!.signature;
  writeFileSync(join(f.work, 'missing.json'), JSON.stringify(missing));
  const cacheMissing = join(f.work, 'cache-missing');
  const rMissing = await install(f, cacheMissing, [], join(f.work, 'missing.json'));
  assert.equal(rMissing.code, 2);
  assert.match(rMissing.stderr, /package alpha 1\.0-1: missing required signature/);
  assert.deepEqual(cacheBlobs(cacheMissing), []);

  const revoked = await signedArchive(t, { revoke: true });
  const cacheRevoked = join(revoked.work, 'cache');
  const rRevoked = await install(revoked, cacheRevoked);
  assert.equal(rRevoked.code, 2);
  assert.match(rRevoked.stderr, /package alpha 1\.0-1: .*revoked/);
  assert.deepEqual(cacheBlobs(cacheRevoked), []);
});

test('a truncated download resumes with a Range request; 404 and persistent truncation are clear errors with a consistent cache', async (t) => {
  const f = await signedArchive(t);
  const cache = join(f.work, 'cache');
  const name = f.packages[0]!.filename;
  assert.ok(f.packages[0]!.csize > 10000);
  f.server.faults.push({ path: name, times: 1, kind: 'truncate', after: 1000 });
  const before = f.server.requests.length;
  const ok = await install(f, cache);
  assert.equal(ok.code, 0, ok.stderr);
  const requests = f.server.requests.slice(before).filter((r) => r.includes(name));
  assert.deepEqual(requests.map((r) => r.replace(/^GET \S+/, 'GET')), ['GET', 'GET bytes=1000-'], requests.join(' ; ') + ok.stderr);

  const cache2 = join(f.work, 'cache2');
  f.server.faults.push({ path: name, times: 1000, kind: 'truncate', after: 10 });
  const broken = await install(f, cache2);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /package alpha 1\.0-1: could not be downloaded: .*connection lost/);
  assert.deepEqual(cacheBlobs(cache2), []);
  f.server.faults.length = 0;

  const cache3 = join(f.work, 'cache3');
  const gone = join(f.work, 'archive', SNAPSHOT, name);
  writeFileSync(gone + '.moved', readFileSync(gone));
  unlinkSync(gone);
  const missing = await install(f, cache3);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /package alpha 1\.0-1: could not be downloaded: .*HTTP 404 \(not found\)/);
  assert.deepEqual(cacheBlobs(cache3), []);
});

test('a signed package whose cache entry was replaced by other bytes is evicted, fetched again and verified', async (t) => {
  const f = await signedArchive(t);
  const cache = join(f.work, 'cache');
  const first = await install(f, cache);
  assert.equal(first.code, 0, first.stderr);
  // Another package, whose bytes carry a valid signature of their own, takes alpha's place.
  const entry = join(cache, 'blobs', 'sha256', f.packages[0]!.sha256);
  writeFileSync(entry, f.packages[1]!.bytes);
  const again = await install(f, cache);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, new RegExp(`^cache: ${entry} was corrupt \\(.*\\): removed, fetching again$`, 'm'));
  assert.ok(readFileSync(entry).equals(f.packages[0]!.bytes));
});
