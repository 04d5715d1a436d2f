import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildPackage } from '../src/example/package-writer.js';
import { repoPackageFromBuilt, writeRepo } from '../src/example/repo-writer.js';
import { Gpg } from './support/gpg.js';
import { fakeClockEnv, runCli, runOk, tempDirFor } from './support/cli.js';
import { pacmanKeyFrom, pacmanSync, pacmanUnavailable, reproLockInstall, withoutInstallDate } from './support/pacman.js';

/**
 * A package and its database signed by a key that expired after signing (issue 10 item 18). repro-oci judges a
 * key's expiry when the signature was made (`--key-expiry at-signature`, the default), so that archive snapshots
 * stay verifiable; real pacman 6.0.2 (gpgme) judges it now: an expired key is not valid, so TrustedOnly refuses its
 * signatures ("unknown trust") and TrustAll takes them — as `--key-expiry now` does.
 */

const SDE = 1700000000; // 2023-11-14
const KEY_CREATED = SDE - 100;

function iso(date: Date): string {
  return date.toISOString().replace('.000Z', 'Z');
}

test('a key that expired after signing: at-signature (default) accepts; --key-expiry now judges it as pacman does', async (t) => {
  const why = pacmanUnavailable();
  if (why !== undefined) return t.skip(why);
  const work = await tempDirFor(t, 'key-expiry');
  const gpg = await Gpg.create();
  t.after(() => gpg.dispose());
  // Valid for a year from 2023-11-14: expired long before this test runs; the signatures are made while it is valid.
  const signer = await gpg.genKey('Expired Packager <expired@example.invalid>', { at: KEY_CREATED, expire: '1y' });
  const expired = iso(new Date((KEY_CREATED + 365 * 86400) * 1000));
  assert.ok(Date.parse(expired) < Date.now(), 'the key has expired by now');

  const repo = join(work, 'repo');
  mkdirSync(repo);
  const pkg = await buildPackage({ pkgname: 'demo-expired', pkgver: '1.0', pkgrel: 1, arch: 'any', pkgdesc: 'key expiry', entries: [{ path: 'usr/share/demo-expired', type: 'file', content: 'x\n' }], sourceDateEpoch: SDE });
  const file = join(repo, pkg.filename);
  writeFileSync(file, pkg.bytes);
  writeFileSync(`${file}.sig`, await gpg.detachSign(signer, pkg.bytes, SDE)); // repo-add puts it into %PGPSIG%
  await runOk('repo-add', ['-q', join(repo, 'x.db.tar.gz'), file], { cwd: repo, env: { LC_ALL: 'C' } });
  // The database's signature, made while the key was valid (repo-add --sign would sign with today's clock).
  writeFileSync(join(repo, 'x.db.sig'), await gpg.detachSign(signer, readFileSync(join(repo, 'x.db.tar.gz')), SDE));
  const keyring = { dir: join(work, 'keyring'), name: 'thirdparty' };
  await gpg.writeKeyring(keyring.dir, keyring.name, [signer], { trusted: [signer] });
  const repos = [{ name: 'x', server: repo }];

  // pacman's keyring, populated by real pacman-key while the key was valid (gpg cannot locally sign it now).
  const gpgdir = join(work, 'pacman-key', 'gnupg');
  mkdirSync(gpgdir, { recursive: true });
  const pacmanKey = pacmanKeyFrom(keyring.dir, join(work, 'pacman-key'));
  const before = { LC_ALL: 'C', ...fakeClockEnv('2024-01-01 00:00:00') };
  await runOk(pacmanKey, ['--gpgdir', gpgdir, '--init'], { env: before });
  assert.match((await runOk(pacmanKey, ['--gpgdir', gpgdir, '--populate', keyring.name], { env: before })).stdout, /Locally signed 1 keys/);

  const unknownTrust = (what: string): RegExp => new RegExp(`error: ${what}: signature from "Expired Packager <expired@example\\.invalid>" is unknown trust`);
  const oneLine = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('repro-oci: '));
  const refusal = (what: string): string =>
    `repro-oci: ${what}: key ${signer} (Expired Packager <expired@example.invalid>) expired ${expired}: --key-expiry now trusts no expired key (pacman: "unknown trust"); at-signature, the default, accepts signatures made before it expired`;

  // TrustedOnly (Arch's default): pacman refuses the database, and the package; so does --key-expiry now, by name.
  const theirsDb = await pacmanSync(join(work, 'pacman-db'), gpgdir, 'Required', repos, ['demo-expired']);
  assert.notEqual(theirsDb.result.code, 0);
  assert.match(theirsDb.result.stderr, unknownTrust('x'));
  const oursDb = await reproLockInstall(join(work, 'now-db'), keyring, 'Required', repos, ['demo-expired'], { extra: ['--key-expiry', 'now'] });
  assert.equal(oursDb.result.code, 2, oursDb.result.stderr);
  assert.deepEqual(oneLine(oursDb.result.stderr), [refusal('repository x database')]);

  const theirsPkg = await pacmanSync(join(work, 'pacman-pkg'), gpgdir, 'Required DatabaseNever', repos, ['demo-expired']);
  assert.notEqual(theirsPkg.result.code, 0);
  assert.match(theirsPkg.result.stderr, unknownTrust('demo-expired'));
  const oursPkg = await reproLockInstall(join(work, 'now-pkg'), keyring, 'Required DatabaseNever', repos, ['demo-expired'], { extra: ['--key-expiry', 'now'] });
  assert.equal(oursPkg.result.code, 2, oursPkg.result.stderr);
  assert.deepEqual(oneLine(oursPkg.result.stderr), [refusal('package demo-expired 1.0-1')]);
  assert.equal(oursPkg.desc('demo-expired-1.0-1'), undefined);

  // TrustAll asks no validity: pacman takes the signatures of the expired key, and so does --key-expiry now.
  const theirsAll = await pacmanSync(join(work, 'pacman-all'), gpgdir, 'Required TrustAll', repos, ['demo-expired']);
  assert.equal(theirsAll.result.code, 0, theirsAll.result.stderr);
  const oursAll = await reproLockInstall(join(work, 'now-all'), keyring, 'Required TrustAll', repos, ['demo-expired'], { extra: ['--key-expiry', 'now'] });
  assert.equal(oursAll.result.code, 0, oursAll.result.stderr);
  assert.equal(withoutInstallDate(oursAll.desc('demo-expired-1.0-1')!), withoutInstallDate(theirsAll.desc('demo-expired-1.0-1')!));

  // The default, at-signature: the signatures were made while the key was valid; both verify, and the output says how.
  const ours = await reproLockInstall(join(work, 'default'), keyring, 'Required', repos, ['demo-expired']);
  assert.equal(ours.result.code, 0, ours.result.stderr);
  assert.match(ours.result.stderr, /^verified 1 package signature\(s\); signing keys judged when each signature was made \(--key-expiry at-signature\)$/m);
  assert.equal(withoutInstallDate(ours.desc('demo-expired-1.0-1')!), withoutInstallDate(theirsAll.desc('demo-expired-1.0-1')!));
});

test('build records and rebuild shows the key expiry policy; rebuild --key-expiry now refuses the expired key', async (t) => {
  const work = await tempDirFor(t, 'key-expiry-rebuild');
  const gpg = await Gpg.create();
  t.after(() => gpg.dispose());
  const signer = await gpg.genKey('Expired Packager <expired@example.invalid>', { at: KEY_CREATED, expire: '1y' });
  const repo = join(work, 'repo');
  mkdirSync(repo);
  const pkg = await buildPackage({ pkgname: 'demo-expired', pkgver: '1.0', pkgrel: 1, arch: 'any', pkgdesc: 'key expiry', entries: [{ path: 'usr/share/demo-expired', type: 'file', content: 'x\n' }], sourceDateEpoch: SDE });
  writeFileSync(join(repo, pkg.filename), pkg.bytes);
  await writeRepo(repo, 'x', [repoPackageFromBuilt(pkg, await gpg.detachSign(signer, pkg.bytes, SDE))], { symlinks: false });
  const keyring = join(work, 'keyring');
  await gpg.writeKeyring(keyring, 'thirdparty', [signer], { trusted: [signer] });
  const spec = join(work, 'spec.yaml');
  writeFileSync(spec, JSON.stringify({ repositories: [{ name: 'x', servers: ['repo'] }], packages: ['demo-expired'], sigLevel: 'Required DatabaseNever', keyring: { dir: 'keyring', name: 'thirdparty' } }));
  const env = { REPRO_OCI_CACHE: join(work, 'cache') };

  const built = await runCli(['build', spec, '-o', `oci:${join(work, 'image')}`], { env });
  assert.equal(built.code, 0, built.stderr);
  assert.match(built.stderr, /^verified 1 package signature\(s\); signing keys judged when each signature was made \(--key-expiry at-signature\)$/m);
  const refusedBuild = await runCli(['build', spec, '-o', `oci:${join(work, 'image-now')}`, '--key-expiry', 'now'], { env });
  assert.equal(refusedBuild.code, 2);
  assert.match(refusedBuild.stderr, /^repro-oci: package demo-expired 1\.0-1: key [0-9A-F]{40} \(Expired Packager <expired@example\.invalid>\) expired 2024-11-13T\d\d:\d\d:\d\dZ: --key-expiry now trusts no expired key/m);

  const rebuilt = await runCli(['rebuild', `oci:${join(work, 'image')}`, '--keyring', keyring], { env });
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.equal(rebuilt.stdout, `reproducible: ${built.stdout.trim()}\nsignatures: 1 package signature(s) verified; signing keys judged when each signature was made (--key-expiry at-signature)\n`);
  const json = await runCli(['rebuild', `oci:${join(work, 'image')}`, '--keyring', keyring, '--json'], { env });
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual((JSON.parse(json.stdout) as { signatures: unknown }).signatures, { verified: 1, keyExpiry: 'at-signature' });
  const now = await runCli(['rebuild', `oci:${join(work, 'image')}`, '--keyring', keyring, '--key-expiry', 'now'], { env });
  assert.equal(now.code, 2, now.stderr);
  assert.match(now.stderr, /^repro-oci: package demo-expired 1\.0-1: key [0-9A-F]{40} \(Expired Packager <expired@example\.invalid>\) expired .*: --key-expiry now trusts no expired key/m);
});
