import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PackageStatus, StatusReport } from '../src/status/model.js';
import { makeTempDir, removeDir, runCli } from './support/cli.js';
import { makeKeyPair, makeRebuilderdLink, rebuilderdPublicKeyPem, securesystemslibPublicKey, tamperLink, zstdCompressed } from './support/in-toto.js';
import { sampleLock } from './support/raw-lock.js';
import { signing, startRebuilder, type FakeRebuilder, type FakeRow } from './support/rebuilderd.js';

/**
 * `status` checks the attestation behind every GOOD: keys given, or published and pinned on first use; links
 * verified against the locked file; wrong keys, tampered links and changed keys never pass as GOOD.
 */

const PACKAGES = [
  { name: 'bash', version: '5.2.026-2', arch: 'x86_64', repo: 'core' },
  { name: 'iana-etc', version: '20240305-1', arch: 'any', repo: 'core' },
  { name: 'ncurses', version: '6.5-3', arch: 'x86_64', repo: 'core' },
];
const LOCKED = new Map(PACKAGES.map((p, i) => [p.name, { fileName: `${p.name}-${p.version}-${p.arch}.pkg.tar.zst`, sha256: `${'abc'[i]}`.repeat(64) }]));
const good = (p: (typeof PACKAGES)[number]): FakeRow => ({ name: p.name, version: p.version, arch: p.arch, repo: p.repo, status: 'GOOD' });

function link(name: string, worker = makeKeyPair(), sha256 = LOCKED.get(name)!.sha256): Buffer {
  const file = LOCKED.get(name)!;
  return makeRebuilderdLink({
    fileName: file.fileName,
    content: Buffer.alloc(0),
    worker: worker.privateKey,
    edit: (signed) => void ((signed.products as Record<string, { sha256: string }>)[file.fileName]!.sha256 = sha256),
  });
}

interface StoreEntry {
  line: Record<string, unknown>;
  body: Buffer;
}

/** A rebuilder's kept attestations as the cache holds them: an HttpCache entry whose body is the store. */
function readStore(path: string): Map<string, StoreEntry> {
  const bytes = readFileSync(path);
  const format = 'repro-oci-attestations-1\n';
  let at = bytes.indexOf(0x0a) + 1;
  assert.equal(bytes.subarray(at, at + format.length).toString(), format);
  at += format.length;
  const entries = new Map<string, StoreEntry>();
  while (at < bytes.length) {
    const newline = bytes.indexOf(0x0a, at);
    const line = JSON.parse(bytes.subarray(at, newline).toString()) as { url: string; size: number };
    entries.set(line.url, { line, body: bytes.subarray(newline + 1, newline + 1 + line.size) });
    at = newline + 1 + line.size;
  }
  return entries;
}

/** Writes a store as another process with write access to the cache could: a consistent header, any content. */
function writeStore(path: string, entries: Map<string, StoreEntry>): void {
  const parts: Buffer[] = [Buffer.from('repro-oci-attestations-1\n')];
  for (const [url, { line, body }] of entries) parts.push(Buffer.from(`${JSON.stringify({ ...line, url, size: body.length })}\n`), body);
  const body = Buffer.concat(parts);
  const header = { format: 'repro-oci-http-cache-1', url: JSON.parse(readFileSync(path).subarray(0, readFileSync(path).indexOf(0x0a)).toString()).url as string, lastModified: null, size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
  writeFileSync(path, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), body]));
}

describe('status: attestations, keys and pinning', () => {
  let dir: string;
  let lock: string;
  let env: Record<string, string>;
  const servers: FakeRebuilder[] = [];
  const start = async (...args: Parameters<typeof startRebuilder>): Promise<FakeRebuilder> => {
    const server = await startRebuilder(...args);
    servers.push(server);
    return server;
  };
  const status = async (args: string[], state = join(dir, 'state')): Promise<{ code: number | null; stdout: string; stderr: string; report?: StatusReport }> => {
    const r = await runCli(['status', lock, ...args], { env: { ...env, REPRO_OCI_STATE: state } });
    return { ...r, ...(args.includes('--json') && r.code !== 2 && !args.includes('--explain') ? { report: JSON.parse(r.stdout) as StatusReport } : {}) };
  };
  const attestations = (report: StatusReport): string[][] => report.packages.map((p) => p.cells.map((c) => (c.state === 'GOOD' ? c.attestation!.state : c.state)));

  before(async () => {
    dir = await makeTempDir('status-attest');
    env = { REPRO_OCI_RETRY_DELAY_MS: '1', REPRO_OCI_PROGRESS: '0', XDG_CONFIG_HOME: '/nonexistent', REPRO_OCI_CACHE: join(dir, 'default-cache') };
    const raw = sampleLock({ name: 'bash', version: '5.2.026-2', filename: 'x.pkg.tar.zst', sha256: 'a'.repeat(64), csize: 10 }) as { packages: Record<string, unknown>[]; targets: string[] };
    raw.targets = PACKAGES.map((p) => p.name);
    raw.packages = PACKAGES.map((p) => ({ ...raw.packages[0], name: p.name, version: p.version, arch: p.arch, repository: p.repo, filename: LOCKED.get(p.name)!.fileName, urls: [LOCKED.get(p.name)!.fileName], sha256: LOCKED.get(p.name)!.sha256 }));
    lock = join(dir, 'three.lock.json');
    writeFileSync(lock, JSON.stringify(raw));
  });
  after(async () => {
    for (const s of servers) await s.close();
    await removeDir(dir);
  });

  test('wrong key, another file\'s hash, a compressed link, a v0 rebuilder with a key: each cell says what its attestation proves', async () => {
    const honest = makeKeyPair();
    const compressed = await zstdCompressed(link('ncurses', honest));
    // Signs bash with another key than it publishes; attests iana-etc with a hash that is not the locked file's;
    // serves ncurses' link zstd-compressed (as rebuilderd stores it).
    const mixed = await start({
      api: 'v1',
      rows: PACKAGES.map(good),
      publicKeys: [rebuilderdPublicKeyPem(honest.publicKey)],
      attestation: (row) => (row.name === 'bash' ? link('bash') : row.name === 'iana-etc' ? link('iana-etc', honest, 'f'.repeat(64)) : compressed),
    });
    const v0 = await start({ api: 'v0', rows: PACKAGES.map(good), ...signing(makeKeyPair(), LOCKED) });
    const r = await status(['--rebuilder', mixed.url, '--rebuilder', v0.url, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const report = r.report!;
    assert.deepEqual(attestations(report), [['invalid', 'verified'], ['invalid', 'verified'], ['verified', 'verified']]);
    const [bash, iana, ncurses] = report.packages as [PackageStatus, PackageStatus, PackageStatus];
    assert.match((bash.cells[0]!.attestation as { reason: string }).reason, /^no signature by a known key \(signed by key id [0-9a-f]+/);
    assert.match((iana.cells[0]!.attestation as { reason: string }).reason, new RegExp(`hash differs: got sha256 f{64}, locked b{64}$`));
    assert.deepEqual(report.packages.map((p) => p.verdict), ['BAD', 'BAD', 'ok']);
    assert.equal(report.summary.text, `1/3 packages meet the policy; 2 invalid attestations from rebuilder ${new URL(mixed.url).host}`);
    const verified = ncurses.cells[0]!.attestation!;
    assert.ok(verified.state === 'verified' && verified.bound && verified.productFile === LOCKED.get('ncurses')!.fileName);
    assert.deepEqual(report.rebuilders.map((x) => [x.api, x.keys.source]), [['v1', 'pinned now'], ['v0', 'pinned now']]);
    // v0 attestations are per build; v1 per artifact.
    assert.ok(v0.requests.some((q) => /^\/api\/v0\/builds\/\d+\/attestation$/.test(q)));
    assert.ok(mixed.requests.some((q) => /^\/api\/v1\/builds\/\d+\/artifacts\/\d+\/attestation$/.test(q)));
    // The text names the invalid ones on their own line; --no-fail-on-bad does not make them count.
    const text = await status(['--rebuilder', mixed.url, '--no-fail-on-bad']);
    assert.match(text.stdout, /^bash 5\.2\.026-2: rebuilder 127\.0\.0\.1:\d+ says GOOD, but its attestation is invalid: /m);
    assert.match(text.stdout, /^bash\s+5\.2\.026-2\s+GOOD \(INVALID\)\s+pending$/m);
  });

  test('keys pin on first use; the same key passes quietly; a changed key stops the command; a given key is used as given', async () => {
    const state = join(dir, 'pin-state');
    const first = makeKeyPair();
    const server = await start({ api: 'v1', rows: PACKAGES.map(good), ...signing(first, LOCKED) });
    const pinned = await status(['--rebuilder', server.url], state);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.match(pinned.stdout, /API v1, key sha256:[0-9a-f]{64} \(pinned now\): pinned on first use in .*rebuilder-keys\/[0-9a-f]{32}\.json/);
    const files = readdirSync(join(state, 'rebuilder-keys'));
    assert.equal(files.length, 1);
    const again = await status(['--rebuilder', server.url], state);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /API v1, key sha256:[0-9a-f]{64} \(pinned\)\n/);

    // The server now publishes (and signs with) another key: loud, one line, exit 2, nothing judged.
    const rotated = makeKeyPair();
    Object.assign(server.options, signing(rotated, LOCKED));
    const changed = await status(['--rebuilder', server.url], state);
    assert.equal(changed.code, 2);
    assert.equal(changed.stdout, '');
    assert.equal(changed.stderr.trim().split('\n').length, 1, changed.stderr);
    assert.match(changed.stderr, /now publishes key sha256:[0-9a-f]{64}, but sha256:[0-9a-f]{64} is pinned in .*rebuilder-keys\/[0-9a-f]{32}\.json: if the rebuilder rotated its key/);
    assert.equal(readFileSync(join(state, 'rebuilder-keys', files[0]!), 'utf8').includes('BEGIN PUBLIC KEY'), true);

    // A key given as URL=KEYFILE (PEM or in-toto JSON) is used as given: no pin is read or written.
    writeFileSync(join(dir, 'rotated.pub'), securesystemslibPublicKey(rotated.publicKey));
    const given = await status(['--rebuilder', `${server.url}=${join(dir, 'rotated.pub')}`, '--json'], state);
    assert.equal(given.code, 0, given.stderr);
    assert.equal(given.report!.rebuilders[0]!.keys.source, 'given');
    // The old key given as a file: every attestation is invalid.
    writeFileSync(join(dir, 'first.pem'), rebuilderdPublicKeyPem(first.publicKey));
    const stale = await status(['--rebuilder', `${server.url}=${join(dir, 'first.pem')}`, '--json'], state);
    assert.equal(stale.code, 1);
    assert.deepEqual(attestations(stale.report!), [['invalid'], ['invalid'], ['invalid']]);

    // A pin file that was tampered with is never silently replaced.
    writeFileSync(join(state, 'rebuilder-keys', files[0]!), '{"url":"http://elsewhere","keys":[]}');
    const corrupt = await status(['--rebuilder', server.url], state);
    assert.equal(corrupt.code, 2);
    assert.match(corrupt.stderr, /pinned keys .* not a pin of this rebuilder; it is never re-pinned silently/);
  });

  test('four processes pinning the same rebuilder at once agree on one pin', async () => {
    const state = join(dir, 'race-state');
    const server = await start({ api: 'v1', rows: PACKAGES.map(good), ...signing(makeKeyPair(), LOCKED) });
    const runs = await Promise.all([1, 2, 3, 4].map(() => status(['--rebuilder', server.url, '--json'], state)));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(state, 'rebuilder-keys')).filter((f) => !f.startsWith('.')).length, 1);
    assert.equal(new Set(runs.map((r) => r.report!.rebuilders[0]!.keys.fingerprints.join())).size, 1);
  });

  test('a rebuilders file gives keys relative to itself and a policy; the command line wins', async () => {
    const key = makeKeyPair();
    const server = await start({ api: 'v1', rows: [good(PACKAGES[0]!), { ...good(PACKAGES[1]!), status: 'BAD' }, good(PACKAGES[2]!)], ...signing(key, LOCKED), publicKeys: [] });
    const other = await start({ api: 'v1', rows: PACKAGES.map(good) });
    writeFileSync(join(dir, 'alpha.pem'), rebuilderdPublicKeyPem(key.publicKey));
    const file = join(dir, 'rebuilders.yaml');
    writeFileSync(file, `rebuilders:\n  - name: alpha\n    url: ${server.url}\n    keys: [alpha.pem]\n  - name: beta\n    url: ${other.url}\npolicy:\n  failOnBad: false\n  packages:\n    - match: "iana-*"\n      require: 0\n`);
    const r = await runCli(['status', lock, '--rebuilders', file, '--json'], { cwd: '/', env: { ...env, REPRO_OCI_STATE: join(dir, 'file-state') } });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as StatusReport;
    assert.deepEqual(report.rebuilders.map((x) => x.keys.source), ['given', 'none']);
    assert.deepEqual(report.policy, { require: 1, rules: [{ match: 'iana-*', require: 0 }], failOnBad: false, attestations: 'required' });
    const strict = await runCli(['status', lock, '--rebuilders', file, '--require', '2', '--json'], { env: { ...env, REPRO_OCI_STATE: join(dir, 'file-state') } });
    assert.equal(strict.code, 1);
    assert.deepEqual((JSON.parse(strict.stdout) as StatusReport).packages.map((p) => p.verdict), ['pending', 'ok', 'pending']);
    writeFileSync(join(dir, 'nokey.yaml'), `rebuilders:\n  - name: alpha\n    url: ${server.url}\n    keys: [missing.pem]\n`);
    const missing = await runCli(['status', lock, '--rebuilders', join(dir, 'nokey.yaml')], { env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /\/rebuilders\/0\/keys: key file .*missing\.pem: cannot be read \(no such file\)/);
  });

  test('--explain shows each rebuilder\'s row, log and diffoscope URLs, and the attestation', async () => {
    const key = makeKeyPair();
    const a = await start({ api: 'v1', rows: PACKAGES.map(good), ...signing(key, LOCKED) });
    const b = await start({ api: 'v0', rows: [{ ...good(PACKAGES[0]!), status: 'BAD' }] });
    const r = await status(['--rebuilder', a.url, '--rebuilder', b.url, '--explain', 'bash']);
    assert.equal(r.code, 1, r.stderr);
    const bUrl = b.url.replace(/\./g, '\\.');
    const aUrl = a.url.replace(/\./g, '\\.');
    assert.match(r.stdout, /^bash 5\.2\.026-2 x86_64 \[core\]: BAD \(1 of 1 GOOD needed, 1 against\)$/m);
    assert.match(r.stdout, new RegExp(`^  file bash-5\\.2\\.026-2-x86_64\\.pkg\\.tar\\.zst sha256:a{64}$`, 'm'));
    assert.match(r.stdout, new RegExp(`^  log: ${aUrl}/api/v1/builds/1001/log$`, 'm'));
    assert.match(r.stdout, new RegExp(`^  attestation: verified, ${aUrl}/api/v1/builds/1001/artifacts/2001/attestation$`, 'm'));
    assert.match(r.stdout, /^ {4}digest sha256:[0-9a-f]{64}, signed by sha256:[0-9a-f]{64}$/m);
    assert.match(r.stdout, /^ {4}product bash-5\.2\.026-2-x86_64\.pkg\.tar\.zst sha256:a{64} = the locked file$/m);
    assert.match(r.stdout, new RegExp(`^  diffoscope: ${bUrl}/api/v0/builds/1001/diffoscope$`, 'm'));
    const json = await status(['--rebuilder', a.url, '--explain', 'ncurses', '--json']);
    assert.equal(json.code, 0);
    const pkg = JSON.parse(json.stdout) as PackageStatus;
    assert.equal(pkg.name, 'ncurses');
    assert.equal(pkg.cells[0]!.attestation!.state, 'verified');
    const unknown = await status(['--rebuilder', a.url, '--explain', 'zsh']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--explain zsh: no such package in the input \(3 packages\)/);
  });

  test('with --cache, attestations are kept (one entry per rebuilder) and verified or their seal checked on every use; a kept one that does not verify is fetched afresh', async () => {
    const key = makeKeyPair();
    const server = await start({ api: 'v1', rows: PACKAGES.map(good), ...signing(key, LOCKED) });
    const cacheDir = join(dir, 'attest-cache');
    const state = join(dir, 'attest-cache-state');
    const attestationRequests = (): number => server.requests.filter((q) => q.endsWith('/attestation')).length;
    const run = async (stateDir = state): Promise<StatusReport> => {
      const r = await status(['--rebuilder', server.url, '--cache', cacheDir, '--json'], stateDir);
      assert.equal(r.code, 0, r.stderr);
      return r.report!;
    };
    const cold = await run();
    assert.equal(attestationRequests(), 3);
    const storePath = join(cacheDir, 'rebuilders', 'entries', createHash('sha256').update(`attestations ${server.url}`).digest('hex'));
    const kept = readStore(storePath);
    assert.deepEqual([...kept.keys()].sort(), cold.packages.map((p) => p.cells[0]!.attestation!.url!).sort());
    assert.ok([...kept.values()].every((e) => e.line.sealed !== undefined), 'verified attestations are sealed');
    const keyFile = statSync(join(state, 'attestation-seal.key'));
    assert.equal(keyFile.mode & 0o777, 0o600);
    assert.equal(keyFile.size, 32);
    const warm = await run();
    assert.equal(attestationRequests(), 3, 'the warm run reads the kept attestations');
    assert.deepEqual(warm.packages, cold.packages);
    // Another user's state (no seal key of theirs is ours): every kept attestation is verified in full, none fetched.
    const other = await run(join(dir, 'attest-cache-other-state'));
    assert.deepEqual(other.packages, cold.packages);
    assert.equal(attestationRequests(), 3);

    // Someone with write access to the cache forges a consistent store (right header, length and sha256): bash's
    // body replaced by a link signed with another key, its seal kept; iana-etc's seal made to vouch for another
    // file's hash; ncurses' body replaced and given a made-up seal. No seal checks, the two forged bodies do not
    // verify: they are dropped and fetched again, and every verdict is the true one.
    const [bash, iana, ncurses] = cold.packages.map((p) => p.cells[0]!.attestation!.url!) as [string, string, string];
    const forged = readStore(storePath);
    forged.get(bash)!.body = link('bash', makeKeyPair());
    const lie = forged.get(iana)!.line.sealed as { result: { productSha256: string } };
    lie.result.productSha256 = 'f'.repeat(64);
    forged.get(ncurses)!.body = link('ncurses', makeKeyPair());
    forged.get(ncurses)!.line.sealed = { ...(forged.get(ncurses)!.line.sealed as object), mac: '0'.repeat(64) };
    writeStore(storePath, forged);
    const again = await run();
    assert.deepEqual(again.packages, cold.packages);
    assert.equal(attestationRequests(), 5);
    // A store that is not one (any byte of its body changed consistently) is evicted with one line and refilled.
    writeStore(storePath, new Map([...readStore(storePath)].map(([url, e]) => [url.replace(server.url, 'http://elsewhere.invalid'), e])));
    const r = await status(['--rebuilder', server.url, '--cache', cacheDir, '--json'], state);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^cache: .* was corrupt \(an entry for another server at byte 0\): removed, fetching again$/m);
    assert.equal(attestationRequests(), 8);
    // A seal key that others may read is not used (one line), and the verdicts stay true.
    chmodSync(join(state, 'attestation-seal.key'), 0o644);
    const open = await status(['--rebuilder', server.url, '--cache', cacheDir, '--json'], state);
    assert.equal(open.code, 0, open.stderr);
    assert.match(open.stderr, /attestation-seal\.key: not a private 32-byte file of this user: attestations are verified in full/);
    assert.deepEqual(open.report!.packages, cold.packages);
    assert.equal(attestationRequests(), 8);
  });

  test('hostile attestation endpoints: oversized, not JSON, a link for another package: never a verified GOOD', async () => {
    const key = makeKeyPair();
    const huge = Buffer.alloc(2 * 1024 * 1024, 0x7b);
    const forOther = link('ncurses', key);
    const hostile = await start({
      api: 'v1',
      rows: PACKAGES.map(good),
      publicKeys: [rebuilderdPublicKeyPem(key.publicKey)],
      attestation: (row) => (row.name === 'bash' ? huge : row.name === 'iana-etc' ? forOther : tamperLink(link('ncurses', key), (doc) => void (doc.signatures = []))),
    });
    const r = await status(['--rebuilder', hostile.url, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const cells = r.report!.packages.map((p) => p.cells[0]!.attestation!);
    assert.equal(cells[0]!.state, 'unverified');
    assert.match((cells[0] as { reason: string }).reason, /could not be fetched: .*limit/);
    assert.equal(cells[1]!.state, 'invalid');
    assert.match((cells[1] as { reason: string }).reason, /^no product for iana-etc-20240305-1-any\.pkg\.tar\.zst \(products: ncurses/);
    assert.equal(cells[2]!.state, 'invalid');
    assert.match((cells[2] as { reason: string }).reason, /has no signatures$/);
    for (const c of cells) assert.ok(!('reason' in c) || !c.reason.includes('\n'));
    // An oversized answer is refused at its limit, not retried: each attestation was asked for once.
    assert.equal(hostile.requests.filter((q) => q.endsWith('/attestation')).length, 3, hostile.requests.join(' '));
  });
});
