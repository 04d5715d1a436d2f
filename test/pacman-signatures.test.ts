import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { keyringIdentity, loadKeyringFromDirectory } from '../src/pacman/keyring.js';
import { buildPackage } from '../src/example/package-writer.js';
import { Gpg } from './support/gpg.js';
import { detachSign } from './support/makepkg.js';
import { run, runOk, tempDirFor, type RunResult } from './support/cli.js';
import { pacmanKeyFrom, pacmanSync, pacmanUnavailable, populatedGpgdir, reproLockInstall, withoutInstallDate } from './support/pacman.js';

/**
 * Real pacman 6.0.2 next to repro-oci on repositories made by real repo-add and packages signed by real gpg:
 * the local database's %VALIDATION% (issue 10 item 13), and keyrings shipped as NAME.gpg alone, populated by real
 * pacman-key (item 14).
 */

const SDE = 1700000000;

interface Fixture {
  work: string;
  gpg: Gpg;
  signer: string;
  /**
   * Repositories by name: `embedded` (the signature in the database, %PGPSIG%, and its `.sig` still beside the
   * package), `detached` (only the `.sig` beside the package) and `unsigned` (no package signature at all).
   */
  repos: Record<'embedded' | 'detached' | 'unsigned', string>;
}

/** One-package repositories made by repo-add in a new work directory, databases signed, packages signed or not. */
async function fixture(t: TestContext, prefix: string): Promise<Fixture> {
  const work = await tempDirFor(t, prefix);
  const gpg = await Gpg.create();
  t.after(() => gpg.dispose());
  const signer = await gpg.genKey('Third Party <packager@example.invalid>', { at: SDE - 100 });
  const repos = { embedded: join(work, 'embedded'), detached: join(work, 'detached'), unsigned: join(work, 'unsigned') };
  for (const [name, dir] of Object.entries(repos)) {
    mkdirSync(dir);
    const pkg = await buildPackage({
      pkgname: `demo-${name}`,
      pkgver: '1.0',
      pkgrel: 1,
      epoch: 2,
      arch: 'any',
      pkgdesc: 'signature test',
      entries: [{ path: `usr/share/demo-${name}`, type: 'file', content: `${name}\n` }],
      sourceDateEpoch: SDE,
    });
    const file = join(dir, pkg.filename);
    writeFileSync(file, pkg.bytes);
    // repo-add 6.0 puts an existing `.sig` into %PGPSIG%: sign before for `embedded`, after for `detached`.
    if (name === 'embedded') await detachSign(file, gpg.home);
    await runOk('repo-add', ['-q', '--sign', '--key', signer, join(dir, `${name}.db.tar.gz`), file], { cwd: dir, env: { GNUPGHOME: gpg.home, LC_ALL: 'C' } });
    if (name === 'detached') await detachSign(file, gpg.home);
    const db = readFileSync(join(dir, `${name}.db.tar.gz`));
    assert.ok(db.length > 0);
  }
  return { work, gpg, signer, repos };
}

/** pacman -Sy then -S `pkg` from `repo` (at `server`) with that repository's SigLevel; the local desc or the failure. */
async function pacmanInstall(dir: string, gpgdir: string, repo: string, server: string, sigLevel: string, pkg: string): Promise<{ result: RunResult; desc?: string }> {
  const done = await pacmanSync(dir, gpgdir, 'Never', [{ name: repo, server, sigLevel }], [pkg]);
  const desc = done.desc(`${pkg}-2:1.0-1`);
  return { result: done.result, ...(desc !== undefined ? { desc } : {}) };
}

/** repro-oci lock + install of `pkg` from `server` with `sigLevel` and the keyring; the local desc or the failure. */
async function reproInstall(dir: string, keyringDir: string, name: string, repo: string, server: string, sigLevel: string, pkg: string): Promise<{ result: RunResult; desc?: string }> {
  const done = await reproLockInstall(dir, { dir: keyringDir, name }, sigLevel, [{ name: repo, server }], [pkg], { sourceDateEpoch: SDE });
  const desc = done.desc(`${pkg}-2:1.0-1`);
  return { result: done.result, ...(desc !== undefined ? { desc } : {}) };
}

function validation(desc: string | undefined): string[] {
  return /%VALIDATION%\n((?:.+\n)+)\n/.exec(desc ?? '')?.[1]!.trimEnd().split('\n') ?? [];
}

test('%VALIDATION% is what pacman 6.0.2 writes: signature in the database, detached or none, under Never, Optional and Required', async (t) => {
  const why = pacmanUnavailable();
  if (why !== undefined) return t.skip(why);
  const f = await fixture(t, 'validation');
  const work = f.work;
  const keyringDir = join(work, 'keyring');
  await f.gpg.writeKeyring(keyringDir, 'thirdparty', [f.signer], { trusted: [f.signer] });
  const { gpgdir, populate } = await populatedGpgdir(join(work, 'pacman-key'), keyringDir, 'thirdparty');
  assert.equal(populate.code, 0, populate.stderr);

  const expected: Record<string, string[] | 'refused'> = {
    'embedded Never': ['sha256'],
    'embedded Optional': ['pgp'],
    'embedded Required': ['pgp'],
    'detached Never': ['sha256'],
    'detached Optional': ['sha256', 'pgp'],
    'detached Required': ['sha256', 'pgp'],
    'unsigned Never': ['sha256'],
    'unsigned Optional': ['sha256'],
    'unsigned Required': 'refused',
  };
  for (const [i, [repo, server]] of Object.entries(f.repos).entries()) {
    for (const [j, level] of ['Never', 'Optional', 'Required'].entries()) {
      const pkg = `demo-${repo}`;
      const theirs = await pacmanInstall(join(work, `pacman-${i}-${j}`), gpgdir, repo, server, level, pkg);
      const ours = await reproInstall(join(work, `ours-${i}-${j}`), keyringDir, 'thirdparty', repo, server, level, pkg);
      if (expected[`${repo} ${level}`] === 'refused') {
        assert.notEqual(theirs.result.code, 0, `pacman ${repo} ${level} refuses`);
        // pacman 6.0.2 fails at the download: under Required the `.sig` must be fetched.
        assert.match(theirs.result.stderr, /failed retrieving file '[^']+\.sig'/);
        assert.equal(ours.result.code, 2, `repro-oci ${repo} ${level} refuses: ${ours.result.stderr}`);
        assert.match(ours.result.stderr, /demo-unsigned 2:1\.0-1: missing required signature/);
        assert.equal(ours.desc, undefined);
        continue;
      }
      assert.equal(theirs.result.code, 0, `pacman ${repo} ${level}: ${theirs.result.stderr}`);
      assert.equal(ours.result.code, 0, `repro-oci ${repo} ${level}: ${ours.result.stderr}`);
      assert.deepEqual(validation(theirs.desc), expected[`${repo} ${level}`], `pacman ${repo} ${level}`);
      assert.equal(withoutInstallDate(ours.desc!), withoutInstallDate(theirs.desc!), `${repo} ${level}: the local desc, byte for byte`);
    }
  }
});

test('a keyring of NAME.gpg alone loads as pacman-key --populate takes it: no key trusted, none revoked; TrustedOnly refuses its signatures, TrustAll takes them', async (t) => {
  const why = pacmanUnavailable();
  if (why !== undefined) return t.skip(why);
  const f = await fixture(t, 'keyring-alone');
  const work = f.work;
  const keyringDir = join(work, 'keyring');
  mkdirSync(keyringDir);
  writeFileSync(join(keyringDir, 'thirdparty.gpg'), await f.gpg.exportPublic([f.signer]));

  // pacman-key: populated without complaint; the key is in, but neither locally signed nor given owner trust.
  const { gpgdir, populate } = await populatedGpgdir(join(work, 'pacman-key'), keyringDir, 'thirdparty');
  assert.equal(populate.code, 0, populate.stderr);
  assert.doesNotMatch(populate.stderr, /error|Locally signing|Disabling/i);
  const listing = await runOk('gpg', ['--homedir', gpgdir, '--batch', '--with-colons', '--list-keys', f.signer], { env: { LC_ALL: 'C' } });
  const validity = /^pub:([^:]*):/m.exec(listing.stdout)?.[1];
  assert.ok(validity !== undefined && !['f', 'u'].includes(validity), `the key is not valid for pacman (gpg validity ${validity})`);

  // repro-oci: the same keyring — every key, none trusted, none revoked — whether -trusted is missing or empty.
  const alone = await loadKeyringFromDirectory(keyringDir, 'thirdparty');
  assert.deepEqual([[...alone.keys.keys()], alone.trusted.size, alone.revoked.size], [[f.signer], 0, 0]);
  const emptyDir = join(work, 'keyring-empty');
  await f.gpg.writeKeyring(emptyDir, 'thirdparty', [f.signer]);
  assert.deepEqual(keyringIdentity(await loadKeyringFromDirectory(emptyDir, 'thirdparty')), keyringIdentity(alone));
  // Only NAME.gpg is required, by both.
  await assert.rejects(loadKeyringFromDirectory(keyringDir, 'other'), /keyring: cannot read .*other\.gpg: ENOENT/);
  assert.notEqual((await run(pacmanKeyFrom(keyringDir, join(work, 'pacman-key')), ['--gpgdir', gpgdir, '--populate', 'other'])).code, 0);

  const server = f.repos.embedded;
  const pkg = 'demo-embedded';
  // TrustedOnly (the default): both refuse the package's signature. (The database side is not checked here.)
  const theirsStrict = await pacmanInstall(join(work, 'pacman-strict'), gpgdir, 'embedded', server, 'Required DatabaseNever', pkg);
  assert.notEqual(theirsStrict.result.code, 0, 'pacman refuses a signature by a key of unknown trust');
  assert.match(theirsStrict.result.stderr, /unknown trust|invalid or corrupted package/);
  const oursStrict = await reproInstall(join(work, 'ours-strict'), keyringDir, 'thirdparty', 'embedded', server, 'Required DatabaseNever', pkg);
  assert.equal(oursStrict.result.code, 2, oursStrict.result.stderr);
  assert.match(oursStrict.result.stderr, /is not trusted: certified by 0 of the 3 trusted master keys required/);
  assert.equal(oursStrict.desc, undefined);

  // TrustAll: both install, with the same local database entry.
  const theirs = await pacmanInstall(join(work, 'pacman-all'), gpgdir, 'embedded', server, 'Required TrustAll DatabaseNever', pkg);
  assert.equal(theirs.result.code, 0, theirs.result.stderr);
  const ours = await reproInstall(join(work, 'ours-all'), keyringDir, 'thirdparty', 'embedded', server, 'Required TrustAll DatabaseNever', pkg);
  assert.equal(ours.result.code, 0, ours.result.stderr);
  assert.equal(withoutInstallDate(ours.desc!), withoutInstallDate(theirs.desc!));
  const lock = JSON.parse(readFileSync(join(work, 'ours-all', 'spec.lock.json'), 'utf8')) as { keyring: { trusted: string[]; revoked: string[] } };
  assert.deepEqual([lock.keyring.trusted, lock.keyring.revoked], [[], []]);
});
