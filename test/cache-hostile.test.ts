import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BuiltPackage } from '../src/example/package-writer.js';
import { decompressAuto } from '../src/compress/index.js';
import { installPackages } from '../src/install/installer.js';
import { runCli } from './support/cli.js';
import { buildInto, cacheEntry, noise, servedRepo, testPackage, type ServedRepo } from './support/package-repo.js';

/**
 * An attacker who can write into a shared cache replaces the entry of one locked package. Whatever they put
 * there, no forged byte may reach an output, and no verdict may be given on them: the entry is found out,
 * removed, and the genuine package fetched again.
 */

async function untar(pkg: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of decompressAuto((async function* () { yield pkg; })(), 'test')) chunks.push(c);
  return Buffer.concat(chunks);
}

/** The tar up to and including its two end-of-archive blocks. */
function cutAtEnd(tar: Buffer): Buffer {
  let at = 0;
  while (at + 512 <= tar.length && tar.subarray(at, at + 512).some((b) => b !== 0)) {
    const size = parseInt(tar.subarray(at + 124, at + 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return tar.subarray(0, at + 1024);
}

/** Forgeries of alpha's cache entry: same name and version, other content. */
async function forgeries(): Promise<Record<string, Buffer>> {
  const evil = await testPackage('alpha', noise('evil', 64 * 1024));
  const evilTar = cutAtEnd(await untar(evil.bytes));
  return {
    'another valid package': evil.bytes,
    'a tar that ends right after its end blocks': evilTar,
    'a tar that ends early, then padding': Buffer.concat([evilTar, Buffer.alloc(64 * 1024)]),
  };
}

/** Every way a cache entry goes bad on its own. */
function corruptions(genuine: Buffer): Record<string, (path: string) => void> {
  return {
    truncated: (p) => writeFileSync(p, genuine.subarray(0, genuine.length >> 1)),
    'bit-flipped': (p) => {
      const b = Buffer.from(genuine);
      b[b.length >> 1]! ^= 0x10;
      writeFileSync(p, b);
    },
    emptied: (p) => writeFileSync(p, ''),
    'a directory': (p) => mkdirSync(join(p, 'sub'), { recursive: true }),
    // Opening a FIFO for reading would wait for a writer for ever.
    'a named pipe': (p) => assert.equal(spawnSync('mkfifo', [p]).status, 0),
    'a symlink to the genuine package elsewhere': (p) => {
      writeFileSync(`${p}.elsewhere`, genuine);
      symlinkSync(`${p}.elsewhere`, p);
    },
  };
}

interface Reference {
  repo: ServedRepo;
  alpha: BuiltPackage;
  /** A cache holding both genuine packages. */
  cache: string;
  digest: string;
  image: string;
}

async function reference(t: { after: (fn: () => Promise<void>) => void }): Promise<Reference> {
  const repo = await servedRepo(t);
  const cache = join(repo.work, 'cache-genuine');
  const image = join(repo.work, 'genuine');
  const r = await buildInto(repo, cache, image);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  return { repo, alpha: repo.packages[0]!, cache, digest: r.stdout.trim(), image };
}

/** A copy of the genuine cache whose alpha entry `spoil` replaced. */
function spoiledCache(ref: Reference, name: string, spoil: (path: string) => void): string {
  const cache = join(ref.repo.work, `cache-${name.replace(/\W+/g, '-')}`);
  cpSync(ref.cache, cache, { recursive: true });
  const entry = cacheEntry(cache, ref.alpha);
  rmSync(entry);
  spoil(entry);
  return cache;
}

/** The cache was repaired: the genuine bytes are back, the run said which entry it threw away, nothing else left. */
function assertRepaired(ref: Reference, cache: string, stderr: string): void {
  const entry = cacheEntry(cache, ref.alpha);
  assert.ok(readFileSync(entry).equals(ref.alpha.bytes), 'the genuine package is back in the cache');
  const lines = stderr.split('\n').filter((l) => l.includes(entry));
  assert.equal(lines.length, 1, `one line names the evicted entry:\n${stderr}`);
  assert.match(lines[0]!, /^cache: .* was corrupt \(.*\): removed, fetching again$/);
  for (const dir of ['partial', 'trash']) {
    const path = join(cache, dir);
    assert.deepEqual(existsSync(path) ? readdirSync(path) : [], [], `${dir}/ is empty`);
  }
}

test('a forged cache entry is never built into an image, installed, or certified by rebuild', async (t) => {
  const ref = await reference(t);
  for (const [name, bytes] of Object.entries(await forgeries())) {
    await t.test(name, async () => {
      const spoil = (p: string): void => writeFileSync(p, bytes);
      const built = spoiledCache(ref, `build-${name}`, spoil);
      const b = await buildInto(ref.repo, built, join(ref.repo.work, `img-${name.replace(/\W+/g, '-')}`));
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.stdout.trim(), ref.digest, 'the build used the genuine package');
      assertRepaired(ref, built, b.stderr);

      const installed = spoiledCache(ref, `install-${name}`, spoil);
      const root = join(ref.repo.work, `root-${name.replace(/\W+/g, '-')}`);
      const i = await runCli(['install', ref.repo.spec.replace(/\.yaml$/, '.lock.json'), '--root', root, '--cache', installed]);
      assert.equal(i.code, 0, i.stderr);
      assert.ok(readFileSync(join(root, 'usr/share/alpha/data')).equals(noise('alpha', 64 * 1024)), 'the genuine file is installed');
      assertRepaired(ref, installed, i.stderr);

      const rebuilt = spoiledCache(ref, `rebuild-${name}`, spoil);
      // The image's recipe names a loopback server: a rebuild contacts it only when allowed (docs/trust-model.md).
      const r = await runCli(['rebuild', `oci:${ref.image}:t`, '--cache', rebuilt, '--allow-url', `${ref.repo.server.url}/`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(r.stdout, `reproducible: ${ref.digest}\n`);
      assertRepaired(ref, rebuilt, r.stderr);
    });
  }
});

test('a corrupt cache entry (truncated, bit-flipped, emptied, a directory, a FIFO, a symlink) is evicted with one line and fetched again', async (t) => {
  const ref = await reference(t);
  for (const [name, spoil] of Object.entries(corruptions(ref.alpha.bytes))) {
    await t.test(name, async () => {
      const cache = spoiledCache(ref, name, spoil);
      const b = await buildInto(ref.repo, cache, join(ref.repo.work, `img-${name.replace(/\W+/g, '-')}`));
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.stdout.trim(), ref.digest);
      assertRepaired(ref, cache, b.stderr);
    });
  }
});

test('the installer hashes a package to its last byte: a file swapped after the fetch checked it is refused', async (t) => {
  const ref = await reference(t);
  for (const [name, bytes] of Object.entries(await forgeries())) {
    await t.test(name, async () => {
      const file = join(ref.repo.work, `swapped-${name.replace(/\W+/g, '-')}.pkg.tar.zst`);
      writeFileSync(file, bytes);
      const pkg = { name: 'alpha', version: '1.0-1', file, sha256: ref.alpha.sha256, reason: 'explicit' as const, validation: ['sha256' as const], isize: ref.alpha.isize };
      await assert.rejects(installPackages([pkg], { sourceDateEpoch: 0 }), (err: Error) => {
        assert.equal(err.name, 'DigestMismatchError', err.stack);
        assert.match(err.message, new RegExp(`^package alpha \\(${file}\\): content has digest sha256:[0-9a-f]{64}, expected sha256:${ref.alpha.sha256}$`));
        return true;
      });
    });
  }
});
