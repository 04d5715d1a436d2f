import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Lock, LockedPackage } from '../src/lock/lock.js';
import { UserError } from '../src/errors.js';
import { applyUrlPolicy, ARCHIVE_URL, refusedPackageError, UrlPolicy } from '../src/verify/url-policy.js';

test('the archive is allowed by default; look-alike hosts, other schemes, credentials and escapes are not', () => {
  const policy = new UrlPolicy([]);
  for (const url of [
    'https://archive.archlinux.org/packages/b/bash/bash-5.2-1-x86_64.pkg.tar.zst',
    'HTTPS://Archive.ArchLinux.org:443/packages/b/bash/x',
    'https://archive.archlinux.org/repos/2024/03/20/core/os/x86_64/../x86_64/bash.pkg.tar.zst',
  ]) assert.equal(policy.allows(url), true, url);
  for (const url of [
    'http://archive.archlinux.org/packages/b/bash/x', // plain http only when allowed
    'https://archive.archlinux.org.evil.example/packages/x',
    'https://archive.archlinux.org@127.0.0.1/packages/x',
    'https://user:pass@archive.archlinux.org/packages/x',
    'https://archive.archlinux.org:8443/packages/x',
    'http://127.0.0.1:8080/x',
    'http://[::1]/x',
    'file:///etc/shadow',
    'ftp://archive.archlinux.org/x',
    'data:,x',
    'not a url',
    '/etc/shadow',
  ]) assert.equal(policy.allows(url), false, url);
});

test('--allow-url and --mirror prefixes end at a directory, after normalization', () => {
  const policy = new UrlPolicy(['http://127.0.0.1:8080/repo', 'file:///srv/pkgs/'], ['https://mirror.example/arch/']);
  for (const url of ['http://127.0.0.1:8080/repo/x.pkg.tar.zst', 'file:///srv/pkgs/x.pkg.tar.zst', 'file:///srv/pkgs/sub/../x', 'https://mirror.example/arch/core/x']) {
    assert.equal(policy.allows(url), true, url);
  }
  for (const url of [
    'http://127.0.0.1:8080/repository/x',
    'http://127.0.0.1:8081/repo/x',
    'https://127.0.0.1:8080/repo/x',
    'http://127.0.0.1:8080/repo/../secret',
    'http://127.0.0.1:8080/repo/%2e%2e/secret',
    'file:///srv/pkgs/../../etc/shadow',
    'file:///srv/pkgs/%2e%2e/%2e%2e/etc/shadow',
    'file:///srv/pkgsX/x',
    'file://otherhost/srv/pkgs/x',
  ]) assert.equal(policy.allows(url), false, url);
  assert.throws(() => new UrlPolicy(['127.0.0.1/repo']), /--allow-url "127\.0\.0\.1\/repo": not an absolute URL/);
  assert.throws(() => new UrlPolicy(['gopher://h/']), /only http, https and file URLs can be allowed/);
  assert.throws(() => new UrlPolicy(['http://u:p@h/']), /no query, fragment or credentials/);
});

test('property: whatever follows the archive prefix, an allowed URL stays on the archive host', () => {
  const policy = new UrlPolicy([]);
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('/', '.', '%', '2', 'e', '@', ':', '\\', '?', '#', 'a', '\u0000', ' ') }), (tail) => {
      const url = `${ARCHIVE_URL}${tail}`;
      if (policy.allows(url)) assert.equal(new URL(url).host, 'archive.archlinux.org');
    }),
    { numRuns: 5000 },
  );
});

function pkg(name: string, urls: unknown[]): LockedPackage {
  return { name, version: '1-1', arch: 'x86_64', repository: 'core', filename: `${name}-1-1-x86_64.pkg.tar.zst`, urls: urls as string[], sha256: '0'.repeat(64), csize: 1, isize: 1, builddate: 0, reason: 'explicit' };
}

test('applyUrlPolicy resolves relative paths, keeps allowed URLs in order, and reports packages left with none', () => {
  const lock = { packages: [pkg('a', ['repo/a.pkg', 'https://archive.archlinux.org/packages/a/a/a.pkg']), pkg('b', ['../b.pkg', 'http://127.0.0.1/b.pkg']), pkg('c', [7, null])] } as unknown as Lock;
  const { lock: out, refused, dropped } = applyUrlPolicy(lock, '/work/dir', new UrlPolicy([]));
  assert.deepEqual(out.packages.map((p) => p.urls), [['https://archive.archlinux.org/packages/a/a/a.pkg'], [], []]);
  assert.equal(dropped, 5);
  assert.deepEqual(refused.map((r) => [r.pkg.name, r.urls]), [['b', ['file:///work/b.pkg', 'http://127.0.0.1/b.pkg']], ['c', ['7', 'null']]]);
  const error = refusedPackageError(refused[0]!);
  assert.ok(error instanceof UserError);
  assert.equal(error.message, 'package b 1-1: none of the recipe\'s URLs is allowed ("file:///work/b.pkg", "http://127.0.0.1/b.pkg"); give --mirror URL or --allow-url file:///work/');
  assert.equal(lock.packages[0]!.urls.length, 2, 'the recorded lock is left as it was');
  const allowed = applyUrlPolicy(lock, '/work/dir', new UrlPolicy(['file:///work/dir/']));
  assert.deepEqual(allowed.lock.packages[0]!.urls, ['file:///work/dir/repo/a.pkg', 'https://archive.archlinux.org/packages/a/a/a.pkg']);
});
