import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildPackage } from '../src/example/package-writer.js';
import { parsePacmanConf } from '../src/pacman/pacman-conf.js';
import { formatSigLevel, repositorySigLevel } from '../src/pacman/siglevel.js';
import { checkSpec, repositorySources } from '../src/lock/spec.js';
import { Gpg } from './support/gpg.js';
import { detachSign } from './support/makepkg.js';
import { run, runOk, tempDirFor } from './support/cli.js';
import { pacmanSync, pacmanUnavailable, populatedGpgdir, reproLockInstall, withoutInstallDate, type RepoConf } from './support/pacman.js';

/**
 * SigLevel per repository (issue 10 item 15), as pacman.conf's `[repo]` SigLevel over `[options]`: in the spec
 * (`repositories: [{name, servers, sigLevel}]`), next to real pacman 6.0.2 on repositories made by real repo-add.
 */

const SDE = 1700000000;

test('a repository SigLevel resolves over the global one as pacman-conf resolves a [repo] section', async (t) => {
  const pairs: [string, string][] = [
    ['Required DatabaseOptional', 'Never'],
    ['Required DatabaseOptional', 'PackageNever'],
    ['Required DatabaseRequired', 'PackageOptional'],
    ['Never', 'Required'],
    ['Never', 'DatabaseRequired TrustAll'],
    ['Optional TrustAll', 'Required'],
    ['Required TrustAll', 'Never Required'],
    ['PackageRequired PackageTrustAll DatabaseNever', 'DatabaseOptional TrustedOnly'],
  ];
  const dir = await tempDirFor(t, 'siglevel-conf');
  const oracle = (await run('pacman-conf', ['--version'])).code === 0;
  for (const [index, [global, own]] of pairs.entries()) {
    const text = `[options]\nSigLevel = ${global}\n[core]\nSigLevel = ${own}\nServer = file:///srv\n[extra]\nServer = file:///srv\n`;
    const path = join(dir, `${index}.conf`);
    writeFileSync(path, text);
    const conf = await parsePacmanConf(path, { readFile: () => text, machine: 'x86_64' });
    const [core, extra] = conf.repos;
    assert.deepEqual(repositorySigLevel(global, own), core!.sigLevel, `${global} / [core] ${own}: as our pacman.conf reader`);
    assert.deepEqual(repositorySigLevel(global, undefined), extra!.sigLevel, `${global} / [extra]: the global level`);
    if (oracle) {
      const printed = (await runOk('pacman-conf', ['--config', path, '--repo', 'core', 'SigLevel'])).stdout.split('\n').filter((l) => l !== '');
      assert.deepEqual(formatSigLevel(repositorySigLevel(global, own)), printed, `${global} / [core] ${own}: as pacman-conf`);
    }
  }
});

test('the spec takes a sigLevel per repository, checks its tokens, and may leave servers to the archive', () => {
  const spec = checkSpec(
    { repositories: ['core', { name: 'extra', sigLevel: 'PackageNever' }, { name: 'own', servers: ['repo'], sigLevel: 'Never' }], packages: ['x'], archive: { url: 'https://archive.example/', date: '2024-03-20' } },
    'spec',
  );
  assert.deepEqual(repositorySources(spec), [
    { name: 'core', servers: ['https://archive.example/repos/2024/03/20/core/os/x86_64'] },
    { name: 'extra', servers: ['https://archive.example/repos/2024/03/20/extra/os/x86_64'], sigLevel: 'PackageNever' },
    { name: 'own', servers: ['repo'], sigLevel: 'Never' },
  ]);
  assert.throws(() => checkSpec({ repositories: [{ name: 'own', servers: ['r'], sigLevel: 'Sometimes' }], packages: ['x'] }, 'spec'), /^UserError: spec: repository own sigLevel: invalid SigLevel value "Sometimes"$/);
  assert.throws(() => checkSpec({ repositories: [{ name: 'own', sigLevel: 'Never' }], packages: ['x'] }, 'spec'), /repository own is given without servers, which needs an archive snapshot/);
});

test('a repository with Never next to one with Required: lock and install take and refuse what real pacman does', async (t) => {
  const why = pacmanUnavailable();
  if (why !== undefined) return t.skip(why);
  const work = await tempDirFor(t, 'siglevel-repos');
  const gpg = await Gpg.create();
  t.after(() => gpg.dispose());
  const signer = await gpg.genKey('Third Party <packager@example.invalid>', { at: SDE - 100 });

  // `loose`: an unsigned package in an unsigned database. `strict`: a signed and an unsigned package, database signed.
  const loose = join(work, 'loose');
  const strict = join(work, 'strict');
  const add = async (dir: string, name: string, pkgname: string, sign: boolean): Promise<void> => {
    mkdirSync(dir, { recursive: true });
    const pkg = await buildPackage({ pkgname, pkgver: '1.0', pkgrel: 1, arch: 'any', pkgdesc: 'siglevel test', entries: [{ path: `usr/share/${pkgname}`, type: 'file', content: `${pkgname}\n` }], sourceDateEpoch: SDE });
    const file = join(dir, pkg.filename);
    writeFileSync(file, pkg.bytes);
    if (sign) await detachSign(file, gpg.home); // before repo-add: the signature goes into %PGPSIG%
    const signDb = dir === strict ? ['--sign', '--key', signer] : [];
    await runOk('repo-add', ['-q', ...signDb, join(dir, `${name}.db.tar.gz`), file], { cwd: dir, env: { GNUPGHOME: gpg.home, LC_ALL: 'C' } });
  };
  await add(loose, 'loose', 'demo-loose', false);
  await add(strict, 'strict', 'demo-signed', true);
  await add(strict, 'strict', 'demo-unsigned', false);

  const keyring = { dir: join(work, 'keyring'), name: 'thirdparty' };
  await gpg.writeKeyring(keyring.dir, keyring.name, [signer], { trusted: [signer] });
  const { gpgdir, populate } = await populatedGpgdir(join(work, 'pacman-key'), keyring.dir, keyring.name);
  assert.equal(populate.code, 0, populate.stderr);

  let n = 0;
  const both = async (global: string, repos: RepoConf[], packages: string[]) => {
    n++;
    return { theirs: await pacmanSync(join(work, `pacman-${n}`), gpgdir, global, repos, packages), ours: await reproLockInstall(join(work, `ours-${n}`), keyring, global, repos, packages, { sourceDateEpoch: SDE }) };
  };
  const ARCH_DEFAULT = 'Required DatabaseOptional';
  const looseNever = { name: 'loose', server: loose, sigLevel: 'Never' };
  const strictRequired = { name: 'strict', server: strict, sigLevel: 'Required' };

  // Never next to Required: the unsigned package of `loose` and the signed one of `strict` install, the same.
  const mixed = await both(ARCH_DEFAULT, [looseNever, strictRequired], ['demo-loose', 'demo-signed']);
  assert.equal(mixed.theirs.result.code, 0, mixed.theirs.result.stderr);
  assert.equal(mixed.ours.result.code, 0, mixed.ours.result.stderr);
  for (const pkg of ['demo-loose-1.0-1', 'demo-signed-1.0-1']) {
    assert.equal(withoutInstallDate(mixed.ours.desc(pkg)!), withoutInstallDate(mixed.theirs.desc(pkg)!), `${pkg}: the local desc, byte for byte`);
  }
  assert.match(mixed.ours.desc('demo-loose-1.0-1')!, /%VALIDATION%\nsha256\n/, 'not checked under Never');
  assert.match(mixed.ours.desc('demo-signed-1.0-1')!, /%VALIDATION%\npgp\n/, 'checked under Required');
  const lock = JSON.parse(readFileSync(join(work, `ours-${n}`, 'spec.lock.json'), 'utf8')) as { repositories: { name: string; sigLevel?: string }[] };
  assert.deepEqual(lock.repositories.map((r) => [r.name, r.sigLevel]), [['loose', 'Never'], ['strict', 'Required']], 'the lock records each repository its own SigLevel');

  // The unsigned package of the Required repository: both refuse it.
  const unsigned = await both(ARCH_DEFAULT, [looseNever, strictRequired], ['demo-unsigned']);
  assert.notEqual(unsigned.theirs.result.code, 0);
  assert.match(unsigned.theirs.result.stderr, /failed retrieving file 'demo-unsigned-1\.0-1-any\.pkg\.tar\.zst\.sig'/);
  assert.equal(unsigned.ours.result.code, 2, unsigned.ours.result.stderr);
  assert.match(unsigned.ours.result.stderr, /^repro-oci: package demo-unsigned 1\.0-1: missing required signature$/m);

  // Without its own Never, `loose` has the global Required: both refuse its unsigned package.
  const global = await both(ARCH_DEFAULT, [{ name: 'loose', server: loose }, strictRequired], ['demo-loose']);
  assert.notEqual(global.theirs.result.code, 0);
  assert.match(global.theirs.result.stderr, /failed retrieving file 'demo-loose-1\.0-1-any\.pkg\.tar\.zst\.sig'/);
  assert.equal(global.ours.result.code, 2, global.ours.result.stderr);
  assert.match(global.ours.result.stderr, /^repro-oci: package demo-loose 1\.0-1: missing required signature$/m);

  // A partial override inherits the rest: under a global DatabaseRequired, `PackageNever` still requires the
  // database's signature (which `loose` lacks), while `Never` waives both sides.
  const partial = await both('Required DatabaseRequired', [{ ...looseNever, sigLevel: 'PackageNever' }, strictRequired], ['demo-loose']);
  assert.notEqual(partial.theirs.result.code, 0);
  assert.match(partial.theirs.result.stderr, /failed retrieving file 'loose\.db\.sig'/);
  assert.equal(partial.ours.result.code, 2, partial.ours.result.stderr);
  assert.match(partial.ours.result.stderr, /^repro-oci: repository loose database: missing required signature$/m);
  const full = await both('Required DatabaseRequired', [looseNever, strictRequired], ['demo-loose', 'demo-signed']);
  assert.equal(full.theirs.result.code, 0, full.theirs.result.stderr);
  assert.equal(full.ours.result.code, 0, full.ours.result.stderr);
  assert.equal(withoutInstallDate(full.ours.desc('demo-loose-1.0-1')!), withoutInstallDate(full.theirs.desc('demo-loose-1.0-1')!));
});
