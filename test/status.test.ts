import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LayerIndex } from '../src/compare/layer-index.js';
import { mergeLayers } from '../src/compare/image-diff.js';
import { generateExampleArchive } from '../src/example/generate.js';
import { packagesFromPacmanDb } from '../src/status/packages.js';
import { rebuilderFromUrl } from '../src/status/rebuilders.js';
import type { StatusReport } from '../src/status/model.js';
import type { Lock } from '../src/lock/lock.js';
import { startExampleRebuilders } from '../src/example/rebuilders.js';
import { makeTempDir, removeDir, REPO_ROOT, runCli, tempDirFor } from './support/cli.js';
import { sampleLock } from './support/raw-lock.js';
import { makeKeyPair } from './support/in-toto.js';
import { downRebuilderUrl, signing, startRebuilder, type FakeRebuilder, type FakeRow } from './support/rebuilderd.js';

// Pinned keys and the rebuilders cache of this file's runs: never the user's own.
const STATE = join(tmpdir(), `repro-oci-status-state-${process.pid}`);
const CACHE = join(tmpdir(), `repro-oci-status-cache-${process.pid}`);
const ENV = { REPRO_OCI_RETRY_DELAY_MS: '1', REPRO_OCI_PROGRESS: '0', XDG_CONFIG_HOME: '/nonexistent', REPRO_OCI_STATE: STATE, REPRO_OCI_CACHE: CACHE };
after(() => {
  rmSync(STATE, { recursive: true, force: true });
  rmSync(CACHE, { recursive: true, force: true });
});


/** Four packages over two repositories, one with an epoch. */
const PACKAGES = [
  { name: 'glibc', version: '2.39-1', arch: 'x86_64', repo: 'core' },
  { name: 'filesystem', version: '2024.04.07-1', arch: 'any', repo: 'core' },
  { name: 'zstd', version: '1:1.5.6-1', arch: 'x86_64', repo: 'extra' },
  { name: 'hello', version: '1.2-1', arch: 'x86_64', repo: 'extra' },
];

function writeLock(dir: string): string {
  const lock = sampleLock({ name: 'glibc', version: '2.39-1', filename: 'x.pkg.tar.zst', sha256: 'a'.repeat(64), csize: 10 }) as { packages: Record<string, unknown>[]; repositories: Record<string, unknown>[]; targets: string[] };
  const template = lock.packages[0]!;
  lock.repositories.push({ ...lock.repositories[0], name: 'extra', servers: ['repo/extra/os/x86_64'] });
  lock.targets = PACKAGES.map((p) => p.name);
  lock.packages = PACKAGES.map((p) => ({ ...template, name: p.name, version: p.version, arch: p.arch, repository: p.repo, filename: LOCKED.get(p.name)!.fileName, urls: [`${p.name}.pkg.tar.zst`], sha256: LOCKED.get(p.name)!.sha256 }));
  const path = join(dir, 'four.lock.json');
  writeFileSync(path, JSON.stringify(lock));
  return path;
}

const good = (p: (typeof PACKAGES)[number]): FakeRow => ({ name: p.name, version: p.version, arch: p.arch, repo: p.repo, status: 'GOOD' });

/** The files writeLock locks, by package name. */
const LOCKED = new Map(PACKAGES.map((p, i) => [p.name, { fileName: `${p.name}-${p.version.replace(':', '')}-${p.arch}.pkg.tar.zst`, sha256: String(i).repeat(64) }]));

async function status(args: string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string; report?: StatusReport }> {
  const r = await runCli(['status', ...args], { env: ENV, ...(timeoutMs ? { timeoutMs } : {}) });
  const report = args.includes('--json') && r.code !== 2 ? (JSON.parse(r.stdout) as StatusReport) : undefined;
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, ...(report ? { report } : {}) };
}

function cells(report: StatusReport, name: string): string[] {
  return report.packages.find((p) => p.name === name)!.cells.map((c) => c.state);
}

describe('status against fake rebuilders', () => {
  let dir: string;
  let lock: string;
  let a: FakeRebuilder;
  let b: FakeRebuilder;
  let c: FakeRebuilder;
  const servers: FakeRebuilder[] = [];
  before(async () => {
    dir = await makeTempDir('status');
    lock = writeLock(dir);
    // A: v1, everything GOOD, signed. B: v1 and signed, a BAD, zstd without its epoch (another version), hello
    // never built. C: v0 only and no key, so its GOODs stay unverified; hello GOOD but in another repository.
    a = await startRebuilder({ api: 'both', rows: PACKAGES.map(good), ...signing(makeKeyPair(), LOCKED) });
    b = await startRebuilder({
      api: 'v1',
      rows: [good(PACKAGES[0]!), { ...good(PACKAGES[1]!), status: 'BAD' }, { ...good(PACKAGES[2]!), version: '1.5.6-1' }, { ...good(PACKAGES[3]!), status: null }, { name: 'unrelated', version: '1-1', arch: 'any', repo: 'core', status: 'BAD' }],
      ...signing(makeKeyPair(), LOCKED),
    });
    c = await startRebuilder({ api: 'v0', rows: [good(PACKAGES[0]!), good(PACKAGES[1]!), good(PACKAGES[2]!), { ...good(PACKAGES[3]!), repo: 'core' }] });
    servers.push(a, b, c);
  });
  after(async () => {
    for (const s of servers) await s.close();
    await removeDir(dir);
  });
  const three = (): string[] => ['--rebuilder', a.url, '--rebuilder', b.url, '--rebuilder', c.url];

  test('three disagreeing rebuilders: exact matches only, a BAD fails, v0 detected per server', async () => {
    const r = await status([lock, ...three(), '--json']);
    assert.equal(r.code, 1, r.stderr);
    const report = r.report!;
    assert.deepEqual(report.rebuilders.map((x) => [x.api, x.error]), [['v1', null], ['v1', null], ['v0', null]]);
    assert.deepEqual(cells(report, 'glibc'), ['GOOD', 'GOOD', 'GOOD']);
    assert.deepEqual(cells(report, 'filesystem'), ['GOOD', 'BAD', 'GOOD']);
    assert.deepEqual(cells(report, 'zstd'), ['GOOD', 'other version', 'GOOD']);
    assert.deepEqual(cells(report, 'hello'), ['GOOD', 'not built', 'other version']);
    assert.deepEqual(report.packages.map((p) => p.verdict), ['ok', 'BAD', 'ok', 'ok']);
    assert.equal(report.summary.text, `3/4 packages meet the policy; 1 BAD on rebuilder ${new URL(b.url).host}`);
    const zstd = report.packages.find((p) => p.name === 'zstd')!;
    assert.deepEqual(zstd.cells[1]!.other, [{ version: '1.5.6-1', repository: 'extra', architecture: 'x86_64' }]);
    assert.equal(zstd.cells[0]!.row!.buildId, 1003);
    // A's and B's GOODs are verified by their pinned keys; C publishes no key, so its GOODs are its word alone.
    const glibc = report.packages.find((p) => p.name === 'glibc')!;
    assert.deepEqual(glibc.cells.map((x) => x.attestation?.state), ['verified', 'verified', 'unverified']);
    assert.deepEqual(report.rebuilders.map((x) => x.keys.source), ['pinned now', 'pinned now', 'none']);
    const verified = glibc.cells[0]!.attestation!;
    assert.ok(verified.state === 'verified' && verified.bound && verified.productSha256 === LOCKED.get('glibc')!.sha256);
    assert.match(verified.digest, /^sha256:[0-9a-f]{64}$/);
    // Asked by name, never for a whole list; C was asked v1 once, answered 404, then only v0.
    for (const s of servers) for (const q of s.requests.filter((x) => x.includes('/pkgs/') || x.includes('/packages/'))) assert.match(q, /[?&]name=/);
    assert.match(c.requests[0]!, /^\/api\/v1\/packages\/binary\?/);
    assert.ok(c.requests.slice(1).every((q) => q.startsWith('/api/v0/')), c.requests.join(' '));
    assert.ok(c.requests.some((q) => q.includes('name=zstd')));
  });

  test('a lock made from an image (repository unknown): rows of any repository count, the file digest still binds the attestation', async () => {
    const fromImage = JSON.parse(readFileSync(lock, 'utf8')) as Lock;
    fromImage.repositories = [{ name: 'archive', servers: [], database: fromImage.repositories[0]!.database }];
    for (const p of fromImage.packages) p.repository = 'archive';
    const imageLock = join(dir, 'from-image.lock.json');
    writeFileSync(imageLock, JSON.stringify(fromImage));
    const r = await status([imageLock, '--rebuilder', a.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.report!.packages.map((p) => [p.name, p.verdict, p.cells[0]!.attestation?.state]), PACKAGES.map((p) => [p.name, 'ok', 'verified']));
    assert.match((await status([imageLock, '--rebuilder', a.url])).stdout, /^packages locked from an image \(lock --from-image\), which names no repository: rows of any repository match/m);
    // A spec's repository that happens to be called "archive" (it has servers) is matched exactly, as any other.
    fromImage.repositories[0]!.servers = ['https://example.invalid/archive'];
    writeFileSync(imageLock, JSON.stringify(fromImage));
    const named = await status([imageLock, '--rebuilder', a.url, '--json']);
    assert.equal(named.code, 1);
    assert.ok(named.report!.packages.every((p) => p.cells[0]!.state !== 'GOOD'), 'rows in core/extra are not rows of a repository named archive');
    // Another file than the locked one in the attestation: GOOD, but not verified.
    fromImage.repositories[0]!.servers = [];
    fromImage.packages[0]!.sha256 = 'f'.repeat(64);
    writeFileSync(imageLock, JSON.stringify(fromImage));
    const other = await status([imageLock, '--rebuilder', a.url, '--json']);
    assert.equal(other.code, 1);
    assert.equal(other.report!.packages[0]!.cells[0]!.attestation?.state, 'invalid');
  });

  test('the table shows one column per rebuilder, other versions with their version, and the summary', async () => {
    const r = await status([lock, ...three()]);
    assert.equal(r.code, 1, r.stderr);
    const zstdLine = r.stdout.split('\n').find((l) => l.startsWith('zstd '))!;
    assert.match(zstdLine, /1:1\.5\.6-1\s+GOOD\s+other version \(1\.5\.6-1\)\s+GOOD \(unverified\)\s+ok$/);
    assert.match(r.stdout, /^hello .*other repository\/architecture \(core\/x86_64\)\s+ok$/m);
    assert.match(r.stdout, /\n3\/4 packages meet the policy; 1 BAD on rebuilder 127\.0\.0\.1:\d+\n$/);
    assert.match(r.stdout, /^rebuilder 127\.0\.0\.1:\d+ \(http:\/\/127\.0\.0\.1:\d+\): API v0, no key: it publishes no key: its GOODs cannot be verified/m);
    assert.match(r.stdout, /^rebuilder 127\.0\.0\.1:\d+: 3 GOODs unverified, no key to verify its attestation: glibc, filesystem, zstd$/m);
  });

  test('--require, --no-fail-on-bad and --attestations optional', async () => {
    assert.equal((await status([lock, ...three(), '--no-fail-on-bad'])).code, 0);
    // Two verified GOODs: only glibc has them (C's GOODs are unverified).
    const two = await status([lock, ...three(), '--require', '2', '--json']);
    assert.equal(two.code, 1);
    assert.deepEqual(two.report!.packages.map((p) => p.verdict), ['ok', 'BAD', 'pending', 'pending']);
    const lenient = await status([lock, ...three(), '--require', '2', '--no-fail-on-bad', '--json']);
    assert.deepEqual(lenient.report!.packages.map((p) => p.verdict), ['ok', 'pending', 'pending', 'pending']);
    assert.match(lenient.report!.summary.text, /^1\/4 packages meet the policy; 3 pending/);
    // Optional attestations count C's word too.
    const optional = await status([lock, ...three(), '--require', '2', '--no-fail-on-bad', '--attestations', 'optional', '--json']);
    assert.deepEqual(optional.report!.packages.map((p) => p.verdict), ['ok', 'ok', 'ok', 'pending']);
    // Per-package rules: the first matching glob wins, 0 exempts.
    const rules = await status([lock, ...three(), '--require', '2', '--require', 'z*=1', '--require', 'hello=0', '--require', 'h*=3', '--no-fail-on-bad', '--json']);
    assert.deepEqual(rules.report!.packages.map((p) => [p.verdict, p.require]), [['ok', 2], ['pending', 2], ['ok', 1], ['ok', 0]]);
    const four = await status([lock, ...three(), '--require', '4']);
    assert.equal(four.code, 2);
    assert.equal(four.stderr.trim().split('\n').length, 1);
  });

  test('a rebuilder that is down or too slow gives no answer, never GOOD', async () => {
    const slow = await startRebuilder({ api: 'v1', rows: PACKAGES.map(good), delayMs: 3000 });
    servers.push(slow);
    const down = await downRebuilderUrl();
    // A watchdog, not a stopwatch, bounds a hang; that --timeout was applied shows in the slow rebuilder's
    // "no answer … after N attempts" below (without it, its 3 s answers would arrive and count).
    const r = await status([lock, '--rebuilder', a.url, '--rebuilder', down, '--rebuilder', slow.url, '--timeout', '200ms', '--json'], 60_000);
    assert.notEqual(r.code, null, 'killed by the watchdog: --timeout was not applied');
    assert.equal(r.code, 0, r.stderr);
    for (const p of r.report!.packages) assert.deepEqual(p.cells.map((x) => x.state), ['GOOD', 'no answer', 'no answer']);
    assert.ok(r.report!.rebuilders[1]!.error!.length > 0);
    assert.match(r.report!.rebuilders[2]!.error!, /after \d+ attempts/);
    const strict = await status([lock, '--rebuilder', a.url, '--rebuilder', down, '--require', '2']);
    assert.equal(strict.code, 1);
    assert.match(strict.stdout, /\n0\/4 packages meet the policy; 4 pending, no answer from 127\.0\.0\.1:\d+\n$/);
  });

  test('hostile answers (huge, wrong types, not JSON, endless pages) are no answer, on one line', async () => {
    const huge = await startRebuilder({ api: 'v1', rows: [], rawBody: Buffer.alloc(17 * 1024 * 1024, 0x20) });
    const wrongType = await startRebuilder({ api: 'v1', rows: [], rawBody: JSON.stringify({ total: 1, records: [{ id: 1, name: 'glibc', version: 2, architecture: 'x86_64', component: 'core', status: 'GOOD', url: 'u' }] }) });
    const badStatus = await startRebuilder({ api: 'v0', rows: [], rawBody: JSON.stringify([{ name: 'glibc', version: '2.39-1', architecture: 'x86_64', suite: 'core', status: 'EXCELLENT', artifact_url: 'u', build_id: 1 }]) });
    const notJson = await startRebuilder({ api: 'v1', rows: [], rawBody: '<html>\u001b[31m' });
    const record = { id: 1, name: 'glibc', version: '2.39-1', architecture: 'x86_64', component: 'core', status: 'GOOD', url: 'u', build_id: 1 };
    const endless = await startRebuilder({ api: 'v1', rows: [], rawBody: JSON.stringify({ total: 5000, records: Array.from({ length: 1000 }, () => record) }) });
    servers.push(huge, wrongType, badStatus, notJson, endless);
    const r = await status([lock, ...[huge, wrongType, badStatus, notJson, endless].flatMap((s) => ['--rebuilder', s.url]), '--json']);
    assert.equal(r.code, 1, r.stderr);
    for (const p of r.report!.packages) assert.ok(p.cells.every((x) => x.state === 'no answer'));
    const errors = r.report!.rebuilders.map((x) => x.error ?? '');
    assert.match(errors[0]!, /the 16777216-byte limit/);
    assert.match(errors[1]!, /record 0: "version" is not a string/);
    assert.match(errors[2]!, /"status" is not GOOD, BAD or UNKWN/);
    assert.match(errors[3]!, /not valid JSON/);
    assert.match(errors[4]!, /record id 1 does not follow 1/);
    for (const e of errors) assert.ok(!e.includes('\n') && !e.includes('\u001b'), e);
  });

  test('v1 pages are followed: the exact row on the second page counts', async () => {
    const older = Array.from({ length: 1200 }, (_, i): FakeRow => ({ ...good(PACKAGES[0]!), version: `2.${i}-1` }));
    const paged = await startRebuilder({ api: 'v1', rows: [...older, ...PACKAGES.map(good)], ...signing(makeKeyPair(), LOCKED) });
    servers.push(paged);
    const r = await status([lock, '--rebuilder', paged.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(cells(r.report!, 'glibc'), ['GOOD']);
    const glibc = paged.requests.filter((q) => q.includes('name=glibc'));
    assert.equal(glibc.length, 2);
    assert.match(glibc[1]!, /[?&]after=1000(&|$)/);
  });

  test('another version with control characters is shown escaped', async () => {
    const odd = await startRebuilder({ api: 'v1', rows: [{ ...good(PACKAGES[0]!), version: '2.39-1\u001b[2J' }] });
    servers.push(odd);
    const r = await status([lock, '--rebuilder', odd.url]);
    assert.equal(r.code, 1);
    assert.ok(!r.stdout.includes('\u001b'));
    assert.match(r.stdout, /other version \("2\.39-1\\x1b\[2J"\)/);
  });

  test('a rebuilders file names the columns; mistakes in it and in the options are one-line errors (exit 2)', async () => {
    const file = join(dir, 'rebuilders.yaml');
    writeFileSync(file, `rebuilders:\n  - name: alpha\n    url: ${a.url}/\n  - name: gamma\n    url: ${c.url}\n`);
    const r = await status([lock, '--rebuilders', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^PACKAGE\s+VERSION\s+alpha\s+gamma\s+VERDICT$/m);
    assert.match(r.stdout, /rebuilder gamma \(http:\/\/127\.0\.0\.1:\d+\): API v0/);
    const cases: [string[], RegExp][] = [
      [[lock], /no rebuilders: give --rebuilder URL or --rebuilders FILE/],
      [[lock, '--rebuilder', 'ftp://x'], /only http and https/],
      [[lock, '--rebuilder', a.url, '--rebuilder', `${a.url}/`], /given twice/],
      [[lock, '--rebuilder', a.url, '--require', '0'], /--require "0"/],
      [[lock, '--rebuilder', a.url, '--timeout', 'soon'], /--timeout "soon"/],
      [[join(dir, 'missing.lock.json'), '--rebuilder', a.url], /cannot be read \(no such file\)/],
      [['oci:/nonexistent/layout', '--rebuilder', a.url], /./],
    ];
    writeFileSync(join(dir, 'bad.yaml'), 'rebuilders:\n  - name: "bad name"\n    url: http://x\n    key: k\n');
    cases.push([[lock, '--rebuilders', join(dir, 'bad.yaml')], /rebuilders file .*bad\.yaml: line 4, column 5: unknown key \/rebuilders\/0\/key \(did you mean keys\?\); line 2, column 11: \/rebuilders\/0\/name must match pattern/]);
    for (const [args, message] of cases) {
      const e = await status(args);
      assert.equal(e.code, 2, `${args.join(' ')}: ${e.stdout}`);
      assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
      assert.match(e.stderr, message);
    }
  });
});

describe('status of the bundled example: spec, lock and image agree', () => {
  test('spec, lock and the image (its recipe) list the same packages; an image without a recipe is read from its pacman database', async (t) => {
    const dir = await tempDirFor((fn) => t.after(fn), 'status-example');
    await generateExampleArchive(join(REPO_ROOT, 'examples', 'hello-arch', 'packages.yaml'), dir);
    copyFileSync(join(REPO_ROOT, 'examples', 'hello-arch', 'spec.yaml'), join(dir, 'spec.yaml'));
    const env = { ...ENV, REPRO_OCI_CACHE: join(dir, '.cache') };
    const cli = async (args: string[]): Promise<void> => {
      const r = await runCli(args, { cwd: dir, env });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    await cli(['lock', 'spec.yaml']);
    await cli(['build', 'spec.yaml', '-o', `oci:${join(dir, 'image')}:hello`]);
    await cli(['install', 'spec.lock.json', '--root', join(dir, 'root')]);
    await cli(['build', '--rootfs', join(dir, 'root'), '-o', `oci:${join(dir, 'plain')}:latest`]);
    const locked = (JSON.parse(readFileSync(join(dir, 'spec.lock.json'), 'utf8')) as { packages: { name: string; version: string; arch: string; repository: string; filename: string; sha256: string }[] }).packages;
    // One rebuilder reproduces all but the last package, which it lists under another version.
    const rows: FakeRow[] = locked.map((p, i) => ({ name: p.name, version: i === locked.length - 1 ? '0.1-1' : p.version, arch: p.arch, repo: p.repository, status: 'GOOD' }));
    const files = new Map(locked.map((p) => [p.name, { fileName: p.filename, sha256: p.sha256 }]));
    const rebuilder = await startRebuilder({ api: 'v1', rows, ...signing(makeKeyPair(), files) });
    t.after(() => rebuilder.close());
    const expected = locked.map((p, i) => [p.name, p.version, i === locked.length - 1 ? 'pending' : 'ok']);
    for (const input of ['spec.yaml', 'spec.lock.json', `oci:${join(dir, 'image')}:hello`, `oci:${join(dir, 'plain')}:latest`]) {
      const r = await runCli(['status', input, '--rebuilder', rebuilder.url, '--json'], { cwd: dir, env });
      assert.equal(r.code, 1, `${input}: ${r.stderr}`);
      const report = JSON.parse(r.stdout) as StatusReport;
      assert.equal(report.source, input.startsWith('oci:') ? (input.includes('plain') ? 'pacman-db' : 'recipe') : 'lock', input);
      const byName = (x: string[], y: string[]): number => (x[0]! < y[0]! ? -1 : 1);
      assert.deepEqual(report.packages.map((p) => [p.name, p.version, p.verdict]).sort(byName), [...expected].sort(byName), input);
      assert.equal(report.summary.text, `${locked.length - 1}/${locked.length} packages meet the policy; 1 pending`);
      if (report.source === 'pacman-db') assert.ok(report.packages.every((p) => p.repository === undefined));
      // Verified everywhere: bound to the locked digest where the input has one, to the file name from a pacman database.
      const attestations = report.packages.filter((p) => p.verdict === 'ok').map((p) => p.cells[0]!.attestation);
      assert.ok(attestations.every((a) => a?.state === 'verified' && a.bound === (report.source !== 'pacman-db')), input);
    }
  });
});

describe('status of the bundled example against its three emulated rebuilders (what `repro-oci example` shows)', () => {
  test('alpha verifies every package, beta\'s BAD fails one and its other version is shown, gamma\'s GOODs stay unverified', async (t) => {
    const dir = await tempDirFor((fn) => t.after(fn), 'status-example-rebuilders');
    await generateExampleArchive(join(REPO_ROOT, 'examples', 'hello-arch', 'packages.yaml'), dir);
    copyFileSync(join(REPO_ROOT, 'examples', 'hello-arch', 'spec.yaml'), join(dir, 'spec.yaml'));
    const env = { ...ENV, REPRO_OCI_CACHE: join(dir, '.cache'), REPRO_OCI_STATE: join(dir, 'state') };
    for (const args of [['lock', 'spec.yaml'], ['build', 'spec.yaml', '-o', 'oci:image:hello']]) {
      const r = await runCli(args, { cwd: dir, env });
      assert.equal(r.code, 0, r.stderr);
    }
    const lock = JSON.parse(readFileSync(join(dir, 'spec.lock.json'), 'utf8')) as Lock;
    const rebuilders = await startExampleRebuilders(lock, join(dir, 'rebuilders.yaml'));
    t.after(() => rebuilders.close());
    for (const input of ['spec.lock.json', 'oci:image:hello']) {
      const r = await runCli(['status', input, '--rebuilders', 'rebuilders.yaml', '--json'], { cwd: dir, env });
      assert.equal(r.code, 1, r.stderr);
      const report = JSON.parse(r.stdout) as StatusReport;
      assert.deepEqual(report.rebuilders.map((x) => [x.name, x.api, x.keys.source]), [['alpha', 'v1', input === 'spec.lock.json' ? 'pinned now' : 'pinned'], ['beta', 'v1', input === 'spec.lock.json' ? 'pinned now' : 'pinned'], ['gamma', 'v0', 'none']]);
      for (const p of report.packages) {
        const [alpha, beta, gamma] = p.cells;
        assert.ok(alpha!.state === 'GOOD' && alpha!.attestation?.state === 'verified' && alpha!.attestation.bound, p.name);
        if (p.name === rebuilders.bad) assert.equal(beta!.state, 'BAD');
        else if (p.name === rebuilders.otherVersion) assert.deepEqual([beta!.state, beta!.other?.map((o) => o.version)], ['other version', ['0.9-1']]);
        else assert.equal(beta!.attestation?.state, 'verified', p.name);
        assert.deepEqual([gamma!.state, gamma!.attestation?.state], ['GOOD', 'unverified']);
        assert.equal(p.verdict, p.name === rebuilders.bad ? 'BAD' : 'ok', p.name);
      }
      assert.equal(report.summary.text, `${lock.packages.length - 1}/${lock.packages.length} packages meet the policy; 1 BAD on rebuilder beta`);
    }
    // Two verified GOODs per package: beta's BAD and other version leave those two short; tolerating BAD changes one.
    const two = await runCli(['status', 'spec.lock.json', '--rebuilders', 'rebuilders.yaml', '--require', '2', '--no-fail-on-bad', '--json'], { cwd: dir, env });
    const verdicts = (JSON.parse(two.stdout) as StatusReport).packages.map((p) => [p.name, p.verdict]);
    assert.deepEqual(verdicts, lock.packages.map((p) => [p.name, p.name === rebuilders.bad || p.name === rebuilders.otherVersion ? 'pending' : 'ok']));
  });
});

test('the pacman database view honours whiteouts and opaque directories', () => {
  const desc = (name: string, version: string): Buffer => Buffer.from(`%NAME%\n${name}\n\n%VERSION%\n${version}\n\n%ARCH%\nx86_64\n\n`);
  const layer = (files: Record<string, Buffer | null>): LayerIndex => {
    const order = Object.keys(files);
    const pacmanDb = new Map<string, Buffer>();
    for (const [path, bytes] of Object.entries(files)) if (bytes) pacmanDb.set(path, bytes);
    const entries = new Map(order.map((path, index) => [path, { path, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, index }]));
    return { entries, order, pacmanDb };
  };
  const db = 'var/lib/pacman/local';
  const base = layer({ [`${db}/a-1-1/desc`]: desc('a', '1-1'), [`${db}/b-1-1/desc`]: desc('b', '1-1'), [`${db}/c-1-1/desc`]: desc('c', '1-1') });
  const upgrade = layer({ [`${db}/.wh.b-1-1`]: null, [`${db}/b-2-1/desc`]: desc('b', '2-1') });
  assert.deepEqual(packagesFromPacmanDb(mergeLayers([base, upgrade])).map((p) => `${p.name} ${p.version}`), ['a 1-1', 'b 2-1', 'c 1-1']);
  const reset = layer({ [`${db}/.wh..wh..opq`]: null, [`${db}/z-9-1/desc`]: desc('z', '9-1') });
  assert.deepEqual(packagesFromPacmanDb(mergeLayers([base, upgrade, reset])).map((p) => p.name), ['z']);
  assert.throws(() => packagesFromPacmanDb(mergeLayers([layer({ 'etc/hostname': null })])), /no recipe and no pacman database/);
  assert.throws(() => packagesFromPacmanDb(mergeLayers([layer({ [`${db}/x/desc`]: Buffer.from('%NAME%\nx\n\n') })])), /%VERSION% must have exactly one value/);
});

test('--rebuilder names: host and port, plus the path when there is one', () => {
  assert.deepEqual(rebuilderFromUrl('https://reproducible.archlinux.org/'), { name: 'reproducible.archlinux.org', url: 'https://reproducible.archlinux.org' });
  assert.deepEqual(rebuilderFromUrl('http://127.0.0.1:8484/arch/'), { name: '127.0.0.1:8484/arch', url: 'http://127.0.0.1:8484/arch' });
  assert.throws(() => rebuilderFromUrl('https://user:pw@x.org'), /no query, fragment or credentials/);
});
