import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Gpg } from './support/gpg.js';
import { serveDirectory, type FileServer } from './support/http-server.js';
import { runCli, tempDirFor, type RunResult } from './support/cli.js';
import { writeSyncDb, type FixturePackage } from './support/syncdb-fixture.js';

/**
 * `repro-oci lock` checks `<repo>.db.sig` as the database side of pacman's SigLevel says: Never does not look,
 * Optional accepts an absent signature but not a failing one, Required demands a good one. Signatures are made by
 * the real gpg; the repository is served from a directory (file:) or over loopback HTTP.
 */

const CORE: FixturePackage[] = [
  { name: 'glibc', version: '2.39-1', arch: 'x86_64' },
  { name: 'bash', version: '5.2.026-2', arch: 'x86_64', depends: ['glibc'] },
];

interface Fixture {
  gpg: Gpg;
  /** Trusted: a master key of the test keyring. */
  signer: string;
  /** In the keyring, but certified by no trusted key. */
  untrusted: string;
  /** In no keyring. */
  stranger: string;
  db: Buffer;
  sig: Record<'good' | 'untrusted' | 'stranger' | 'stale', Buffer>;
}

let fx: Fixture;

before(async () => {
  const gpg = await Gpg.create();
  const scratch = await tempDirFor(after, 'db-signature-fixture');
  const signer = await gpg.genKey('Repo Signer <repo@example.invalid>');
  const untrusted = await gpg.genKey('Untrusted <untrusted@example.invalid>');
  const stranger = await gpg.genKey('Stranger <stranger@example.invalid>');
  await writeSyncDb(join(scratch, 'core.db'), CORE);
  await writeSyncDb(join(scratch, 'older.db'), CORE.slice(0, 1));
  const db = readFileSync(join(scratch, 'core.db'));
  fx = {
    gpg,
    signer,
    untrusted,
    stranger,
    db,
    sig: {
      good: await gpg.detachSign(signer, db),
      untrusted: await gpg.detachSign(untrusted, db),
      stranger: await gpg.detachSign(stranger, db),
      // A good signature of the database as it was before it changed.
      stale: await gpg.detachSign(signer, readFileSync(join(scratch, 'older.db'))),
    },
  };
});

after(async () => {
  await fx?.gpg.dispose();
});

interface CaseOptions {
  /** Written as `repo/core.db.sig` when given. */
  sig?: Buffer;
  /** The spec's sigLevel; omitted from the spec when undefined (the default applies). */
  sigLevel?: string;
  /** Whether the spec names the keyring (default true). */
  keyring?: boolean;
  /** Serve the work directory over loopback HTTP instead of giving the repository as a relative path. */
  http?: boolean;
  /** Servers before `repo` in the repository's list (directories of the work dir, e.g. one without core.db). */
  serversBefore?: string[];
}

interface Case {
  work: string;
  lockPath: string;
  server?: FileServer;
  lock(): Promise<RunResult>;
}

async function lockCase(t: { after(fn: () => Promise<void>): void }, options: CaseOptions): Promise<Case> {
  const work = await tempDirFor(t, 'db-signature');
  mkdirSync(join(work, 'repo'));
  writeFileSync(join(work, 'repo', 'core.db'), fx.db);
  if (options.sig) writeFileSync(join(work, 'repo', 'core.db.sig'), options.sig);
  for (const dir of options.serversBefore ?? []) mkdirSync(join(work, dir));
  await fx.gpg.writeKeyring(join(work, 'keyring'), 'test', [fx.signer, fx.untrusted], { trusted: [fx.signer] });
  const server = options.http ? await serveDirectory(work) : undefined;
  if (server) t.after(() => server.close());
  const servers = [...(options.serversBefore ?? []), 'repo'].map((dir) => (server ? `${server.url}/${dir}` : dir));
  writeFileSync(
    join(work, 'spec.yaml'),
    [
      `repositories: [{ name: core, servers: ${JSON.stringify(servers)} }]`,
      'packages: [bash]',
      ...(options.sigLevel === undefined ? [] : [`sigLevel: ${options.sigLevel}`]),
      ...(options.keyring === false ? [] : ['keyring: { dir: keyring, name: test }']),
      '',
    ].join('\n'),
  );
  const lockPath = join(work, 'out.lock.json');
  return { work, lockPath, ...(server ? { server } : {}), lock: () => runCli(['lock', join(work, 'spec.yaml'), '-o', lockPath], { env: { REPRO_OCI_RETRY_DELAY_MS: '1' } }) };
}

/** Exit 2, exactly one line of error matching `pattern`, and no lock (nor a temporary) left behind. */
function assertRefused(c: Case, result: RunResult, pattern: RegExp): void {
  assert.equal(result.code, 2, `expected exit 2: ${result.stderr}`);
  assert.match(result.stderr, pattern);
  assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  assert.equal(existsSync(c.lockPath), false, 'a lock was written');
  assert.deepEqual(
    readdirSync(c.work).filter((n) => n.includes('out.lock')),
    [],
    'temporaries left beside the lock',
  );
}

function sigRequests(server: FileServer | undefined): string[] {
  return (server?.requests ?? []).filter((r) => r.includes('.sig'));
}

const DB_DIGEST = (): string => `sha256:${createHash('sha256').update(fx.db).digest('hex')}`;

test('DatabaseRequired: a good .db.sig from a trusted key locks, with the lock format unchanged', async (t) => {
  const signed = await lockCase(t, { sigLevel: 'Required', sig: fx.sig.good });
  const r = await signed.lock();
  assert.equal(r.code, 0, r.stderr);
  const lock = JSON.parse(readFileSync(signed.lockPath, 'utf8')) as Record<string, unknown> & { repositories: unknown; sigLevel: string };
  assert.deepEqual(Object.keys(lock).sort(), ['architecture', 'keyring', 'lockVersion', 'packages', 'repositories', 'sigLevel', 'specDigest', 'targets']);
  assert.equal(lock.lockVersion, 1);
  assert.deepEqual(lock.repositories, [{ name: 'core', servers: ['repo'], database: DB_DIGEST() }]);
  assert.equal(lock.sigLevel, 'Required');

  // The same repository locked without looking at signatures gives the same lock but for the spec's own fields.
  const unchecked = await lockCase(t, { sigLevel: 'Required DatabaseNever', sig: fx.sig.good });
  assert.equal((await unchecked.lock()).code, 0);
  const other = JSON.parse(readFileSync(unchecked.lockPath, 'utf8')) as Record<string, unknown>;
  assert.deepEqual({ ...lock, specDigest: '', sigLevel: '' }, { ...other, specDigest: '', sigLevel: '' });
});

test('DatabaseRequired: the .db.sig comes from the server the database came from (HTTP)', async (t) => {
  const c = await lockCase(t, { sigLevel: 'Required', sig: fx.sig.good, http: true, serversBefore: ['empty'] });
  const r = await c.lock();
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(sigRequests(c.server), ['GET /repo/core.db.sig']);
});

test('DatabaseRequired: no .db.sig (HTTP 404, or no such file) is refused naming the repository, and no lock is written', async (t) => {
  for (const http of [true, false]) {
    const c = await lockCase(t, { sigLevel: 'Required', http });
    assertRefused(c, await c.lock(), /^repro-oci: repository core database: missing required signature\n$/);
    if (http) assert.deepEqual(sigRequests(c.server), ['GET /repo/core.db.sig']);
  }
});

test('DatabaseRequired: a .db.sig by a key outside the keyring, a stale one or a corrupt one is refused with the reason', async (t) => {
  const cases: Array<[Buffer, RegExp]> = [
    [fx.sig.stranger, new RegExp(`^repro-oci: repository core database: signed by unknown key (${fx.stranger}|${fx.stranger.slice(-16)}) \\(not in the keyring\\)\\n$`)],
    [fx.sig.stale, new RegExp(`^repro-oci: repository core database: bad signature from key ${fx.signer} \\(Repo Signer <repo@example\\.invalid>\\): the data does not match\\n$`)],
    [Buffer.from('this is not a signature\n'), /^repro-oci: repository core database: not an OpenPGP signature: .*\n$/],
  ];
  for (const [sig, pattern] of cases) {
    const c = await lockCase(t, { sigLevel: 'Required', sig, http: true });
    assertRefused(c, await c.lock(), pattern);
  }
});

test('TrustedOnly refuses a database signed by a key the keyring holds but does not trust; DatabaseTrustAll accepts it', async (t) => {
  const strict = await lockCase(t, { sigLevel: 'Required', sig: fx.sig.untrusted });
  assertRefused(strict, await strict.lock(), new RegExp(`^repro-oci: repository core database: key ${fx.untrusted} \\(Untrusted <untrusted@example\\.invalid>\\) is not trusted: .*\\n$`));
  const trustAll = await lockCase(t, { sigLevel: 'Required DatabaseTrustAll', sig: fx.sig.untrusted });
  const r = await trustAll.lock();
  assert.equal(r.code, 0, r.stderr);
});

test('DatabaseOptional (the default, as in Arch pacman.conf): no .db.sig locks; a bad one or an unreadable one fails', async (t) => {
  const absent = await lockCase(t, { http: true });
  const r = await absent.lock();
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(readFileSync(absent.lockPath, 'utf8')) as { sigLevel: string }).sigLevel, 'Required DatabaseOptional');
  assert.deepEqual(sigRequests(absent.server), ['GET /repo/core.db.sig'], 'an optional signature is still looked for');

  const absentFile = await lockCase(t, { sigLevel: 'Required DatabaseOptional' });
  const rFile = await absentFile.lock();
  assert.equal(rFile.code, 0, rFile.stderr);

  const good = await lockCase(t, { sigLevel: 'Required DatabaseOptional', sig: fx.sig.good, http: true });
  assert.equal((await good.lock()).code, 0);

  const bad = await lockCase(t, { sig: fx.sig.stale, http: true });
  assertRefused(bad, await bad.lock(), /^repro-oci: repository core database: bad signature from key [0-9A-F]{40} .*: the data does not match\n$/);

  // A server that keeps failing on the signature has not said there is none.
  const flaky = await lockCase(t, { sig: fx.sig.good, http: true });
  flaky.server!.faults.push({ path: 'core.db.sig', times: 100, kind: 'status', status: 503 });
  assertRefused(flaky, await flaky.lock(), /^repro-oci: repository core database signature: http:\/\/127\.0\.0\.1:\d+\/repo\/core\.db\.sig: HTTP 503 \(after 5 attempts\)\n$/);
  assert.equal(sigRequests(flaky.server).length, 5);
});

test('DatabaseNever: a garbage .db.sig is neither fetched nor judged, and no keyring is needed', async (t) => {
  const c = await lockCase(t, { sigLevel: 'Required DatabaseNever', sig: Buffer.from('garbage'), http: true });
  const r = await c.lock();
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(sigRequests(c.server), []);
  assert.ok(c.server!.requests.includes('GET /repo/core.db'));

  const keyless = await lockCase(t, { sigLevel: 'Never', sig: Buffer.from('garbage'), keyring: false, http: true });
  const rKeyless = await keyless.lock();
  assert.equal(rKeyless.code, 0, rKeyless.stderr);
  assert.deepEqual(sigRequests(keyless.server), []);
});

test('a database signature check without a keyring in the spec is refused before anything is fetched', async (t) => {
  const c = await lockCase(t, { sig: fx.sig.good, keyring: false, http: true });
  assertRefused(c, await c.lock(), /^repro-oci: sigLevel "Required DatabaseOptional" checks repository database signatures \(optional\): give a keyring \(keyring\.dir in the spec\), or add DatabaseNever\n$/);
  assert.deepEqual(c.server!.requests, []);
});
